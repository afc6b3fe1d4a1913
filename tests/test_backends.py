"""The backend registry (snn2hw/backends.py): the core reaches a backend only through it, a
backend parses its own section of a profile, and Lava stays inside exporters/lava/."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from snn2hw import backends
from snn2hw.hardware import profiles
from snn2hw.cli import main
from snn2hw.errors import ProfileError

ROOT = Path(__file__).resolve().parent.parent


def sim_doc() -> dict:
    text = resources.files("snn2hw.hw_profiles").joinpath("loihi_sim.toml").read_text()
    return tomllib.loads(text)


class FakeBackend:
    """A second backend with its own profile table, as a new backend would add."""
    name = "fake"
    profile_tables = ("fake",)

    def parse_profile(self, doc, where, quantize):
        return {"lanes": doc["fake"]["lanes"], "quantize": quantize}

    def describe(self, profile):
        return {}


@pytest.fixture
def fake_registered(monkeypatch):
    backends.known()  # the shipped ones first
    monkeypatch.setitem(backends._REGISTRY, "fake", FakeBackend())


def test_lava_is_registered_under_the_name_the_profiles_use():
    from snn2hw.exporters import lava

    assert backends.known() == ["lava"]
    assert backends.get("lava") is lava.BACKEND
    assert profiles.load("loihi_sim").backend == "lava"


def test_a_registered_backend_parses_its_own_section(fake_registered):
    doc = sim_doc()
    doc["backend"], doc["fake"] = "fake", {"lanes": 3}
    del doc["lava_tag"], doc["messages"]       # Lava's section is Lava's business only
    profile = profiles.parse(doc, "mine")
    assert profile.backend == "fake"
    assert profile.settings == {"lanes": 3, "quantize": True}


def test_lava_parses_its_section_into_settings():
    from snn2hw.exporters.lava.settings import LavaSettings, Messages

    settings = profiles.load("loihi_float").settings
    assert settings == LavaSettings("floating_pt", Messages(8, 1, 24))  # loihi_float.toml


def test_a_name_registered_twice_is_an_error(fake_registered):
    with pytest.raises(ValueError, match="'fake' is already taken"):
        backends.register(FakeBackend())


def test_none_cannot_be_registered():
    fake = FakeBackend()
    fake.name = backends.NONE
    with pytest.raises(ValueError, match="'none' is already taken"):
        backends.register(fake)


def test_unknown_backend_in_a_profile_is_a_profile_error():
    doc = sim_doc()
    doc["backend"] = "nir"
    with pytest.raises(ProfileError, match=r"field 'backend' = 'nir'; expected one of lava, "
                       r"none") as exc:
        profiles.parse(doc, "mine")
    assert exc.value.facts["field"] == "backend"


def test_get_of_an_unknown_backend_is_a_profile_error():
    with pytest.raises(ProfileError, match="unknown backend 'nir'; known backends: lava"):
        backends.get("nir")


def test_unknown_backend_fails_the_cli_with_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "mine.toml"
    text = resources.files("snn2hw.hw_profiles").joinpath("loihi_sim.toml").read_text()
    path.write_text(text.replace('backend = "lava"', 'backend = "nir"'))
    code = main(["export", str(tmp_path / "absent.onnx"), "--profile", str(path),
                 "-o", str(tmp_path / "out.h5")])
    err = capsys.readouterr().err
    assert code == 2
    assert [line for line in err.splitlines() if line] == [
        f"error: profile {path}: field 'backend' = 'nir'; expected one of lava, none"]


PROBE = """
import json, sys
import {module}
print(json.dumps({{
    "hook": any(type(f).__name__ == "_VarModelFinder" for f in sys.meta_path),
    "lava": sorted(m for m in sys.modules if m == "lava" or m.startswith("lava.")),
    "torch": "torch" in sys.modules}}))
"""


def probe(module: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], check=True,
                         capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_snn2hw_installs_no_lava_hook():
    got = probe("snn2hw.cli, snn2hw.steps.deploy, snn2hw.steps.run, snn2hw.cli.steps, "
                "snn2hw.cli.show, snn2hw.hardware.profiles")
    assert got["hook"] is False and got["lava"] == []


def test_the_lava_backend_installs_the_hook_and_imports_neither_lava_nor_torch():
    # The worker imports this package first, then Lava's runtime (which sets the start
    # method of multiprocessing), and only then torch: torch must not come with it.
    got = probe("snn2hw.exporters.lava")
    assert got == {"hook": True, "lava": [], "torch": False}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 1:
            names.add("snn2hw." + node.module)
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "snn2hw").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_imports_no_lava(path):
    for name in imported_modules(path):
        assert not (name == "lava" or name.startswith("lava.")), name
        if name.startswith("snn2hw.exporters"):
            # the one registration point of backends and output formats
            assert path.name == "backends.py" and name == "snn2hw.exporters", name


LAVA_IMPORTERS = {"exporters/netx/worker.py"}  # lava-dl's netx loader, in a child process


@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "exporters").rglob("*.py")
                                        if "lava" not in p.relative_to(ROOT).parts),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_lava_backend_and_the_netx_worker_import_lava(path):
    rel = str(path.relative_to(ROOT))
    lava = [n for n in imported_modules(path) if n == "lava" or n.startswith("lava.")]
    assert not lava or rel in LAVA_IMPORTERS, (rel, lava)
