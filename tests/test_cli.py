"""The ``snn2hw`` command, run in-process: output, exit codes and one-line errors."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from snn2hw import snn
from snn2hw.artifact import load_calibration
from snn2hw.cli import main
from snn2hw.importer import file_hash, import_onnx


def export(model: nn.Module, path) -> str:
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 1, 8, 8), str(path), dynamo=False,
                          opset_version=17, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    return str(path)


def tiny(pool: type[nn.Module] = nn.AvgPool2d) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.ReLU(), pool(2),
                             nn.Flatten(), nn.Linear(64, 10, bias=False))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {"ok": export(tiny(), d / "tiny.onnx"),
            "maxpool": export(tiny(nn.MaxPool2d), d / "maxpool.onnx")}


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
