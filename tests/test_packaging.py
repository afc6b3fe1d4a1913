"""pyproject.toml lists every package: a folder with an ``__init__.py`` under snn2hw/ or
exporters/ that is missing from ``[tool.setuptools] packages`` would be left out of a
(non-editable) install, which the editable install of the tests would never show."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package_names() -> set[str]:
    """The dotted name of every folder with an ``__init__.py``, as installed
    (exporters/ is installed as snn2hw.exporters, see pyproject.toml)."""
    names = set()
    for top, installed in (("snn2hw", "snn2hw"), ("exporters", "snn2hw.exporters")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top).parts
            names.add(".".join((installed, *rel)))
    return names


def test_every_package_folder_is_listed_in_pyproject():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = package_names()
    assert {"snn2hw", "snn2hw.snn.neurons", "snn2hw.exporters.lava.procs"} <= found
    assert sorted(found - listed) == []


def test_every_listed_package_exists():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = setuptools["package-dir"]
    for name in setuptools["packages"]:
        base = next((k for k in sorted(dirs, key=len, reverse=True)
                     if name == k or name.startswith(k + ".")), None)
        folder = (ROOT / dirs[base] / Path(*name[len(base):].split(".")[1:]) if base
                  else ROOT / Path(*name.split(".")))
        assert folder.is_dir(), (name, folder)
