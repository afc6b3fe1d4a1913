"""The ``snn2hw`` command, run in-process: output, exit codes and one-line errors."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from snn2hw import snn
from snn2hw.artifacts.calibration import load_calibration
from snn2hw.cli import main
from snn2hw.importer import file_hash, import_onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_builders import export_torch  # noqa: E402


def tiny(pool: type[nn.Module] = nn.AvgPool2d) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.ReLU(), pool(2),
                             nn.Flatten(), nn.Linear(64, 10, bias=False))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {"ok": export_torch(tiny(), d / "tiny.onnx"),
            "maxpool": export_torch(tiny(nn.MaxPool2d), d / "maxpool.onnx")}


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_inspect_prints_layer_tables(models, capsys):
    assert main(["inspect", models["ok"]]) == 0
    out, err = capsys.readouterr()
    assert "Conv" in out and "AveragePool" in out and ("MatMul" in out or "Gemm" in out)
    assert "2 spiking layers, 2 synapse hops" in out
    assert "spiking layer" in out and "conv" in out and "avgpool+flatten+dense" in out
    assert error_lines(err) == []


def test_inspect_unsupported_maxpool_is_one_error_line(models, capsys):
    assert main(["inspect", models["maxpool"]]) == 2
    out, err = capsys.readouterr()
    lines = error_lines(err)
    assert len(lines) == 1 and "MaxPool" in lines[0]
    assert "Traceback" not in err and "Traceback" not in out
    assert "MaxPool" in out and "NO" in out  # the table still shows which node fails


def test_inspect_missing_model_is_an_error(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "absent.onnx")]) == 2
    assert len(error_lines(capsys.readouterr().err)) == 1


def test_calibrate_end_to_end_writes_artifact_and_report(models, tmp_path, capsys):
    out_h5, report = tmp_path / "x.h5", tmp_path / "r.json"
    code = main(["calibrate", models["ok"], "--timesteps", "32", "--samples", "32",
                 "--eval-samples", "40", "-o", str(out_h5), "--report", str(report)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out_h5.is_file() and report.is_file()
    assert "SNN accuracy at T = 32" in out and f"wrote {out_h5}" in out
    rep = json.loads(report.read_text())
    net = snn.lower(import_onnx(models["ok"]))
    art = load_calibration(out_h5, expected_sha256=file_hash(models["ok"]))
    scales, sources = art.calibration.scales, art.calibration.source_scales
    assert [la["name"] for la in rep["layers"]] == [la.name for la in net.layers]
    for entry, layer in zip(rep["layers"], net.layers):
        source = layer.terms[0].source
        assert entry["scale"] == pytest.approx(scales[layer.name])
        # the paper's threshold: relative to what one spike per step of the source means
        assert entry["threshold"] == pytest.approx(scales[layer.name] / sources[source])
        assert np.isfinite(entry["threshold"]) and entry["threshold"] > 0
    assert rep["method"] == "spike-norm" and rep["timesteps"] == 32
    assert rep["evaluation"]["samples"] == 40 and set(rep["evaluation"]["snn_accuracy"]) == {"32"}
    assert rep["params"]["samples"] == 32
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "x.h5"]


def test_calibrate_reset_and_percentile_reach_the_artifact(models, tmp_path, capsys):
    out_h5 = tmp_path / "x.h5"
    code = main(["calibrate", models["ok"], "--timesteps", "24", "--samples", "24",
                 "--eval-samples", "20", "--reset", "subtract", "--percentile", "99.9",
                 "-o", str(out_h5)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "spike-norm, 99.9th percentile, reset subtract: T = 24" in out
    cal = load_calibration(out_h5, expected_sha256=file_hash(models["ok"])).calibration
    assert cal.reset == "subtract" and cal.params["percentile"] == 99.9


@pytest.mark.parametrize("extra, hint", [
    ([], "deep networks often need --percentile 99.9 --reset subtract"),
    (["--reset", "subtract", "--percentile", "99.9"], "a longer window (T) may help")])
def test_calibrate_warns_when_hidden_layers_barely_fire(models, tmp_path, capsys,
                                                       monkeypatch, extra, hint):
    from snn2hw.steps import pipeline

    args = ["calibrate", models["ok"], "--timesteps", "16", "--samples", "16",
            "--eval-samples", "10", *extra, "-o", str(tmp_path / "x.h5")]
    monkeypatch.setattr(pipeline, "QUIET_RATE", 0.0)  # nothing fires below 0
    assert main(args) == 0
    assert "fire below" not in capsys.readouterr().out
    monkeypatch.setattr(pipeline, "QUIET_RATE", 1.0)  # every hidden layer fires below 1
    assert main(args) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "fire below 1 spikes" in ln]
    assert len(lines) == 1 and lines[0].startswith("warning: ") and hint in lines[0]
    assert "at T = 16:" in lines[0]


@pytest.mark.parametrize("args", [["--reset", "soft"], ["--percentile", "30"]])
def test_calibrate_bad_neuron_options_are_usage_errors(models, tmp_path, capsys, args):
    with pytest.raises(SystemExit) as info:
        main(["calibrate", models["ok"], *args, "-o", str(tmp_path / "x.h5")])
    assert info.value.code == 2
    assert args[0] in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-3", "abc"])
def test_non_positive_timesteps_is_an_argparse_error(models, tmp_path, capsys, value):
    with pytest.raises(SystemExit) as info:
        main(["calibrate", models["ok"], "--timesteps", value, "-o", str(tmp_path / "x.h5")])
    assert info.value.code == 2
    assert "--timesteps" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_missing_output_directory_is_an_error(models, tmp_path, capsys):
    out = tmp_path / "nowhere" / "x.h5"
    assert main(["calibrate", models["ok"], "--timesteps", "8", "-o", str(out)]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "does not exist" in lines[0]
    assert not out.parent.exists()


def test_output_equal_to_model_is_refused(models, capsys):
    before = open(models["ok"], "rb").read()
    assert main(["calibrate", models["ok"], "--timesteps", "8", "-o", models["ok"]]) == 2
    _, err = capsys.readouterr()
    lines = error_lines(err)
    assert len(lines) == 1 and "overwrite the input" in lines[0]
    assert open(models["ok"], "rb").read() == before


def test_report_equal_to_output_is_refused(models, tmp_path, capsys):
    out = str(tmp_path / "x.h5")
    assert main(["calibrate", models["ok"], "--timesteps", "8", "-o", out,
                 "--report", out]) == 2
    assert len(error_lines(capsys.readouterr().err)) == 1
    assert list(tmp_path.iterdir()) == []


def test_too_many_samples_is_an_error(models, tmp_path, capsys):
    out = tmp_path / "x.h5"
    code = main(["calibrate", models["ok"], "--timesteps", "8", "--samples", "5000",
                 "-o", str(out)])
    assert code == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "5000 calibration samples" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("command", [["inspect", "{model}"], ["ops"], ["profiles"],
                                     ["calibrate", "{model}", "-o", "{out}"],
                                     ["export", "{model}"], ["run", "{out}"],
                                     ["report", "{model}", "--calibration", "{out}",
                                      "-o", "{out}"]])
def test_unknown_option_is_a_usage_error(models, tmp_path, capsys, command):
    argv = [a.format(model=models["ok"], out=tmp_path / "x.h5") for a in command]
    with pytest.raises(SystemExit) as info:
        main(argv + ["--frobnicate", "3"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --frobnicate 3" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_unknown_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["convert", "model.onnx"])
    assert info.value.code == 2
    assert "invalid choice: 'convert'" in capsys.readouterr().err


@pytest.mark.parametrize(("option", "value"), [("--samples", "0"), ("--samples", "-5"),
                                               ("--eval-samples", "0"),
                                               ("--eval-timesteps", "8,0")])
def test_non_positive_counts_are_usage_errors(models, tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as info:
        main(["calibrate", models["ok"], option, value, "-o", str(tmp_path / "x.h5")])
    assert info.value.code == 2
    assert option in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_directory_is_an_error(models, tmp_path, capsys, monkeypatch):
    from snn2hw import fileio

    real_access = os.access
    monkeypatch.setattr(fileio.os, "access", lambda path, mode: (
        False if Path(path) == tmp_path and mode == os.W_OK else real_access(path, mode)))
    assert main(["calibrate", models["ok"], "--timesteps", "8", "-o",
                 str(tmp_path / "x.h5")]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "is not writable" in lines[0] and str(tmp_path) in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root ignores directory permissions")
def test_read_only_output_directory_is_an_error(models, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        assert main(["calibrate", models["ok"], "--timesteps", "8", "-o",
                     str(ro / "x.h5")]) == 2
    finally:
        ro.chmod(0o755)
    assert "is not writable" in error_lines(capsys.readouterr().err)[0]
    assert list(ro.iterdir()) == []


def test_export_output_equal_to_model_is_refused(models, capsys):
    before = open(models["ok"], "rb").read()
    assert main(["export", models["ok"], "-o", models["ok"]]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "overwrite the input file" in lines[0]
    assert open(models["ok"], "rb").read() == before


def test_report_output_equal_to_calibration_is_refused(models, tmp_path, capsys):
    calib = tmp_path / "m.calib.h5"
    calib.write_bytes(b"calibration")
    assert main(["report", models["ok"], "--calibration", str(calib), "-o", str(calib)]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and f"overwrite the input file {calib}" in lines[0]
    assert calib.read_bytes() == b"calibration"


def test_run_report_equal_to_the_data_file_is_refused(tmp_path, capsys):
    export_file, data_file = tmp_path / "net.h5", tmp_path / "d.npz"
    export_file.write_bytes(b"export")
    data_file.write_bytes(b"data")
    assert main(["run", str(export_file), "--data", str(data_file), "--report",
                 str(data_file)]) == 2
    assert "overwrite the input file" in error_lines(capsys.readouterr().err)[0]
    assert data_file.read_bytes() == b"data"


def test_debug_shows_the_traceback_of_a_user_error(tmp_path):
    from snn2hw.errors import ModelFileError

    with pytest.raises(ModelFileError, match="no such model file"):
        main(["--debug", "inspect", str(tmp_path / "absent.onnx")])


def test_internal_bug_is_not_turned_into_a_user_error(models, monkeypatch):
    """Only Snn2hwError becomes `error: ...` and exit 2; a bug propagates (exit 1 with a
    traceback from the interpreter)."""
    from snn2hw.cli import show

    def broken(model, *options):
        raise ZeroDivisionError("bug")
    monkeypatch.setattr(show, "inspect_model", broken)
    with pytest.raises(ZeroDivisionError):
        main(["inspect", models["ok"]])
