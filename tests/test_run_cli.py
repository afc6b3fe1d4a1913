"""`snn2hw run`: a small conv network goes ONNX -> export -> Lava and agrees with the
reference fixed-point simulator spike for spike, every neuron of every layer, on 20 test
images in one Lava run."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from snn2hw.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_builders import tiny_torch_onnx  # noqa: E402




@pytest.mark.lava
def test_run_agrees_spike_for_spike_on_20_samples(tmp_path, capsys):
    model, exported, report = (tmp_path / "m.onnx", tmp_path / "m.loihi.h5",
                               tmp_path / "run.json")
    tiny_torch_onnx(model, seed=3, two_convs=True)
    assert main(["export", str(model), "--profile", "loihi_sim", "--timesteps", "32",
                 "--samples", "32", "--eval-samples", "20", "-o", str(exported)]) == 0
    code = main(["run", str(exported), "--samples", "20", "--timesteps", "48",
                 "--report", str(report)])
    out, err = capsys.readouterr()
    assert code == 0, err
    rep = json.loads(report.read_text())
    assert rep["samples"] == 20 and rep["identical"] is True and rep["agreement"] == 1.0
    assert rep["first_mismatch"] is None
    assert all(rep["spike_counts_equal"].values())
    assert rep["lava_accuracy"] == rep["reference_accuracy"]
    assert "agree spike for spike" in out


def test_run_refuses_a_resources_only_profile(tmp_path, capsys):
    model, exported = tmp_path / "m.onnx", tmp_path / "m.loihi2.h5"
    tiny_torch_onnx(model, seed=3, two_convs=True)
    assert main(["export", str(model), "--profile", "loihi2", "--timesteps", "16",
                 "--samples", "16", "--eval-samples", "10", "-o", str(exported)]) == 0
    capsys.readouterr()
    assert main(["run", str(exported), "--samples", "2", "--timesteps", "8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: profile loihi2 describes resources only")
