"""`snn2hw export` and `snn2hw profiles`, run in-process: exit codes, one-line errors and a
loadable export file."""
from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from snn2hw import data, snn
from snn2hw.artifacts.calibration import CalibrationArtifact, save_calibration
from snn2hw.calibrate import calibrate
from snn2hw.cli import main
from snn2hw.artifacts.export import load_export
from snn2hw.importer import file_hash, import_onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_builders import export_torch  # noqa: E402

SHIPPED = ("loihi_sim", "loihi_float", "loihi2")


def tiny(seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                             nn.Flatten(), nn.Linear(64, 10))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {"digits": export_torch(tiny(0), d / "digits.onnx", {"snn2hw.dataset": "digits"}),
            "plain": export_torch(tiny(0), d / "plain.onnx"),
            "other": export_torch(tiny(1), d / "other.onnx", {"snn2hw.dataset": "digits"})}


def make_calibration(model: str, path) -> dict[str, float]:
    """A max-act calibration file for ``model`` (fast, no simulation)."""
    graph = import_onnx(model)
    net = snn.lower(graph)
    x = data.load("digits", graph.input_shape, 10, data.Preprocess()).x_train[:20]
    cal = calibrate("max-act", net, x)
    save_calibration(path, CalibrationArtifact(graph, cal, file_hash(model),
                                               data.Preprocess().to_json()))
    return cal.scales


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_export_calibrates_with_the_models_dataset_and_writes_a_loadable_file(
        models, tmp_path, capsys):
    out, report = tmp_path / "tiny.loihi_sim.h5", tmp_path / "report.json"
    code = main(["export", models["digits"], "--profile", "loihi_sim", "--timesteps", "32",
                 "--samples", "32", "--eval-samples", "40", "-o", str(out),
                 "--report", str(report)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert f"wrote {out}" in stdout and "loihi2 estimate" in stdout
    assert "test split, 40 samples, T = 32" in stdout
    art = load_export(out)
    q = art.qnet
    assert q.profile == "loihi_sim" and art.method == "spike-norm"
    assert art.onnx_sha256 == file_hash(models["digits"])
    assert art.params == {"timesteps": 32, "seed": 0, "samples": 32, "rate_match": True,
                          "reset": "zero"}
    assert [la.is_output for la in q.layers] == [False, True]
    assert all(isinstance(la.threshold, int) and la.threshold > 0 for la in q.layers)
    for la in q.layers:
        assert all(s.values().min() >= -256 and s.values().max() <= 255 for s in la.synapses)
    shipped = resources.files("snn2hw.hw_profiles").joinpath("loihi_sim.toml").read_text()
    assert art.profile_toml == shipped
    ev = art.report["evaluation"]
    assert ev["samples"] == 40 and ev["timesteps"] == 32
    assert 0.0 <= ev["exported_accuracy"] <= 1.0
    assert art.report["resources"]["chips"] == 1
    assert art.report["resources"]["profile"] == "loihi2"  # loihi_sim's resources_profile
    assert json.loads(report.read_text()) == art.report


def test_export_without_calibration_or_data_is_exit_2(models, tmp_path, capsys):
    out = tmp_path / "x.h5"
    code = main(["export", models["plain"], "-o", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 2
    lines = error_lines(err)
    assert len(lines) == 1 and "--calibration" in lines[0] and "--data" in lines[0]
    assert "Traceback" not in err and not out.exists()


def test_export_with_calibration_of_another_model_is_exit_2(models, tmp_path, capsys):
    calib = tmp_path / "other.calib.h5"
    make_calibration(models["other"], calib)
    out = tmp_path / "x.h5"
    code = main(["export", models["digits"], "--calibration", str(calib), "-o", str(out)])
    _, err = capsys.readouterr()
    assert code == 2
    lines = error_lines(err)
    assert len(lines) == 1 and "different model" in lines[0]
    assert not out.exists()


def test_export_with_calibration_uses_its_scales(models, tmp_path, capsys):
    calib = tmp_path / "plain.calib.h5"
    scales = make_calibration(models["plain"], calib)
    out = tmp_path / "plain.h5"
    code = main(["export", models["plain"], "--calibration", str(calib), "-o", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    art = load_export(out)
    assert art.scales == scales and art.method == "max-act"
    assert "evaluation" not in art.report  # no data given, none in the model
    assert [la.scale for la in art.qnet.layers] == [float(la.threshold)
                                                   for la in art.qnet.layers]


def test_export_with_a_profile_file_embeds_that_file(models, tmp_path, capsys):
    calib = tmp_path / "plain.calib.h5"
    make_calibration(models["plain"], calib)
    text = resources.files("snn2hw.hw_profiles").joinpath("loihi_sim.toml").read_text()
    custom = tmp_path / "myprofile"  # load() accepts any existing file, not only *.toml
    custom.write_text("# my copy\n" + text.replace('name = "loihi_sim"', 'name = "mine"'))
    out = tmp_path / "mine.h5"
    code = main(["export", models["plain"], "--calibration", str(calib), "--profile",
                 str(custom), "-o", str(out)])
    _, err = capsys.readouterr()
    assert code == 0, err
    art = load_export(out)
    assert art.qnet.profile == "mine" and art.profile_toml == custom.read_text()


def test_profiles_lists_all_three(capsys):
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert set(SHIPPED) <= rows
    assert "[-256, 255]" in out and "128 cores x 8192 neurons" in out


def test_unknown_profile_is_exit_2_listing_known_profiles(models, tmp_path, capsys):
    code = main(["export", models["digits"], "--profile", "nosuch", "-o",
                 str(tmp_path / "x.h5")])
    _, err = capsys.readouterr()
    assert code == 2
    lines = error_lines(err)
    assert len(lines) == 1 and "nosuch" in lines[0]
    assert all(name in lines[0] for name in SHIPPED)


def test_float_profile_export_keeps_float_weights(models, tmp_path, capsys):
    calib = tmp_path / "plain.calib.h5"
    make_calibration(models["plain"], calib)
    out = tmp_path / "float.h5"
    code = main(["export", models["plain"], "--calibration", str(calib), "--profile",
                 "loihi_float", "-o", str(out)])
    _, err = capsys.readouterr()
    assert code == 0, err
    art = load_export(out)
    assert all(la.threshold == 1.0 for la in art.qnet.layers)
    assert "resources" not in art.report
    w = art.qnet.layers[0].synapses[0].weight
    assert not np.allclose(w, np.rint(w))  # not quantised


def test_export_with_reset_by_subtraction_carries_it_into_the_file(models, tmp_path, capsys):
    out = tmp_path / "sub.h5"
    code = main(["export", models["digits"], "--method", "max-act", "--reset", "subtract",
                 "--percentile", "99.5", "--samples", "20", "--eval-samples", "10",
                 "--timesteps", "32", "-o", str(out)])
    _, err = capsys.readouterr()
    assert code == 0, err
    art = load_export(out)
    assert art.qnet.reset == "subtract"
    assert art.params["reset"] == "subtract" and art.params["percentile"] == 99.5
    assert art.report["evaluation"]["reset"] == "subtract"


def test_export_reset_other_than_the_calibrations_is_exit_2(models, tmp_path, capsys):
    calib = tmp_path / "plain.calib.h5"
    make_calibration(models["plain"], calib)  # max-act, reset zero
    code = main(["export", models["plain"], "--calibration", str(calib), "--reset",
                 "subtract", "-o", str(tmp_path / "x.h5")])
    _, err = capsys.readouterr()
    assert code == 2
    assert error_lines(err) == [f"error: {calib}: thresholds were calibrated for reset "
                                "'zero', not 'subtract'; calibrate again with --reset subtract"]
    assert not (tmp_path / "x.h5").exists()


def test_export_to_a_profile_without_the_reset_mode_is_exit_3(models, tmp_path, capsys):
    text = resources.files("snn2hw.hw_profiles").joinpath("loihi_sim.toml").read_text()
    custom = tmp_path / "loihi1.toml"
    custom.write_text(text.replace('name = "loihi_sim"', 'name = "loihi1"')
                      .replace('reset = ["zero", "subtract"]', 'reset = "zero"'))
    code = main(["export", models["digits"], "--method", "max-act", "--reset", "subtract",
                 "--samples", "20", "--profile", str(custom), "-o", str(tmp_path / "x.h5")])
    _, err = capsys.readouterr()
    assert code == 3
    assert error_lines(err) == ["error: profile loihi1 has no neuron with reset 'subtract'; "
                                "it supports: zero"]
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize("value", ["49", "101", "x"])
def test_export_percentile_out_of_range_is_a_usage_error(models, tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exc:
        main(["export", models["digits"], "--percentile", value, "-o", str(tmp_path / "x.h5")])
    assert exc.value.code == 2
    assert "--percentile" in capsys.readouterr().err
