"""The steps as a library (snn2hw.steps): option dataclasses, settings resolved in one place,
errors that name options (the CLI says them as flags), the backend write step, and the one
HDF5 writer of the artifacts."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_builders import tiny_torch_onnx  # noqa: E402

from snn2hw import __version__, backends, data  # noqa: E402
from snn2hw.artifacts.hdf5 import open_artifact, write_artifact  # noqa: E402
from snn2hw.calibrate import Calibration  # noqa: E402
from snn2hw.cli import main  # noqa: E402
from snn2hw.cli.flags import as_flags  # noqa: E402
from snn2hw.errors import ArtifactError, InputError  # noqa: E402
from snn2hw.importer import import_onnx  # noqa: E402
from snn2hw.steps import settings  # noqa: E402
from snn2hw.steps.options import CalibrationOptions, DataOptions  # noqa: E402
from snn2hw.steps.write import write_network  # noqa: E402


def test_reset_and_junction_defaults_are_resolved_in_settings():
    assert settings.reset_of(CalibrationOptions()) == "zero"
    assert settings.reset_of(CalibrationOptions(reset="subtract")) == "subtract"
    assert settings.junction_of(CalibrationOptions()) == "per-source"
    assert settings.junction_of(CalibrationOptions(junction="shared")) == "shared"


def _calibration(reset: str, junction: str = "per-source") -> Calibration:
    params = {} if reset == "zero" else {"reset": reset}
    if junction != "per-source":
        params["junction"] = junction
    cal = Calibration("max-act", {"x": 1.0}, params, [])
    assert (cal.reset, cal.junction) == (reset, junction)
    return cal


def test_an_explicit_reset_must_match_the_calibration_and_the_error_names_the_option():
    settings.check_calibration(CalibrationOptions(), _calibration("subtract"), "c.h5")
    settings.check_calibration(CalibrationOptions(reset="subtract"), _calibration("subtract"),
                               "c.h5")
    with pytest.raises(InputError) as info:
        settings.check_calibration(CalibrationOptions(reset="subtract"), _calibration("zero"),
                                   "c.h5")
    assert "--" not in info.value.message          # the library names options, not flags
    assert "calibrate again with reset='subtract'" in info.value.message
    assert as_flags(info.value).endswith("calibrate again with --reset subtract")
    with pytest.raises(InputError) as info:
        settings.check_calibration(CalibrationOptions(junction="shared"), _calibration("zero"),
                                   "c.h5")
    assert as_flags(info.value).endswith("calibrate again with --junction shared")


def test_boolean_options_are_said_as_on_and_off_flags():
    exc = InputError("not available: per_channel=True, bias_calibration=False, v_init=0.5",
                     options=("per_channel", "bias_calibration", "v_init"))
    assert as_flags(exc) == ("not available: --per-channel, --no-bias-calibration, "
                             "--v-init 0.5")


def test_as_flags_leaves_messages_without_options_alone():
    exc = InputError("reset='zero' is not an option here")
    assert as_flags(exc) == exc.message


def test_preprocessing_given_replaces_the_stored_one_channel_by_channel(tmp_path):
    graph = import_onnx(tiny_torch_onnx(tmp_path / "m.onnx"))
    stored = data.Preprocess((0.5,), (2.0,)).to_json()
    same = settings.preprocess_for(graph, DataOptions(), stored=stored)
    assert (same.mean, same.std) == ((0.5,), (2.0,))
    mean = settings.preprocess_for(graph, DataOptions(mean=(0.25,)), stored=stored)
    assert (mean.mean, mean.std) == ((0.25,), (2.0,))
    std = settings.preprocess_for(graph, DataOptions(std=(4.0,)), stored=stored)
    assert (std.mean, std.std) == ((0.5,), (4.0,))


def test_export_without_thresholds_says_which_flags_to_give(tmp_path, capsys):
    model = tiny_torch_onnx(tmp_path / "m.onnx", dataset=None)
    capsys.readouterr()
    assert main(["export", str(model), "-o", str(tmp_path / "m.h5")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: export needs thresholds: give --calibration FILE.calib.h5, or "
                   "--data SET (digits or a .npz file) to calibrate now"]


class _Writer:
    def __init__(self, name: str, needs: str) -> None:
        self.name, self.suffix, self.needs = name, "." + name, needs
        self.calls = []

    def write(self, path, network, options):
        self.calls.append((path, network, options))
        path.write_text(f"{network}")
        return [f"wrote {self.name}"]


class _BackendWithWriter:
    name = "writing"
    profile_tables = ()

    def __init__(self, writer) -> None:
        self.writers = (writer,)


def test_a_backend_registers_its_writers_and_the_write_step_calls_them(tmp_path, monkeypatch):
    monkeypatch.setattr(backends, "_REGISTRY", dict(backends._REGISTRY))
    monkeypatch.setattr(backends, "_WRITERS", dict(backends._WRITERS))
    writer = _Writer("toyfmt", "float")
    backends.register(_BackendWithWriter(writer))
    assert "toyfmt" in backends.output_formats()
    out = tmp_path / "net.toyfmt"
    notes = write_network("toyfmt", "the float network", out, {"k": 1})
    assert notes == ["wrote toyfmt"] and out.read_text() == "the float network"
    assert writer.calls == [(out, "the float network", {"k": 1})]
    with pytest.raises(ValueError, match="already taken"):
        backends.register_writer(_Writer("toyfmt", "float"))
    with pytest.raises(ValueError, match="needs"):
        backends.register_writer(_Writer("other", "bits"))


def test_the_write_step_refuses_unknown_formats_wrong_networks_and_inputs(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(backends, "_WRITERS", dict(backends._WRITERS))
    backends.register_writer(_Writer("intfmt", "integer"))
    with pytest.raises(InputError, match="unknown output format 'nope'"):
        write_network("nope", object(), tmp_path / "x")
    with pytest.raises(InputError, match="writes the integer network, not the float one"):
        write_network("intfmt", object(), tmp_path / "x")
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model")
    backends.register_writer(_Writer("floatfmt", "float"))
    with pytest.raises(InputError):
        write_network("floatfmt", object(), model, inputs=(str(model),))
    assert model.read_bytes() == b"model"


def test_every_artifact_starts_with_the_same_header_and_other_versions_are_refused(tmp_path):
    path = tmp_path / "a.h5"
    with write_artifact(path, "snn2hw-test", 3) as f:
        f.attrs["payload"] = json.dumps([1, 2])
    with h5py.File(path, "r") as f:
        assert list(f.attrs)[:3] == ["format", "format_version", "snn2hw_version"]
        assert f.attrs["snn2hw_version"] == __version__
    open_artifact(path, "snn2hw-test", (2, 3)).close()
    with pytest.raises(ArtifactError, match="format version 3, this snn2hw reads version 4"):
        open_artifact(path, "snn2hw-test", 4)
    with pytest.raises(ArtifactError, match="not a snn2hw-other file"):
        open_artifact(path, "snn2hw-other", 3)


def test_a_failed_artifact_write_leaves_no_file(tmp_path):
    path = tmp_path / "a.h5"
    with pytest.raises(RuntimeError):
        with write_artifact(path, "snn2hw-test", 1):
            raise RuntimeError("fails while filling")
    assert not path.exists()


def test_the_command_is_ready_for_ctrl_c_before_torch_loads(monkeypatch, capsys):
    """Importing `snn2hw.cli` loads no heavy library (its modules import the library inside
    their functions), and Ctrl-C while the parser imports the modules of its choices is the
    one-line exit 130."""
    import subprocess

    from snn2hw.cli import app

    code = ("import sys, snn2hw.cli; "
            "print(sorted(m for m in ('torch', 'h5py', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == "[]"

    def interrupted():
        raise KeyboardInterrupt
    monkeypatch.setattr(app, "build_parser", interrupted)
    assert app.main(["ops"]) == 130
    assert capsys.readouterr().err == "error: interrupted\n"
