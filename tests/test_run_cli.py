"""`snn2hw run`: a small conv network goes ONNX -> export -> Lava and agrees with the
reference fixed-point simulator spike for spike, every neuron of every layer, on 20 test
images in one Lava run."""
from __future__ import annotations

import json

import onnx
import pytest
import torch

from snn2hw.cli import main


def tiny_conv_model(path) -> None:
    torch.manual_seed(3)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 3, padding=1, bias=False), torch.nn.ReLU(),
        torch.nn.AvgPool2d(2), torch.nn.Conv2d(6, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 10)).eval()
    torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False,
                      opset_version=17)
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "snn2hw.dataset", "digits"
    onnx.save(proto, str(path))


@pytest.mark.lava
def test_run_agrees_spike_for_spike_on_20_samples(tmp_path, capsys):
    model, exported, report = (tmp_path / "m.onnx", tmp_path / "m.loihi.h5",
                               tmp_path / "run.json")
    tiny_conv_model(model)
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
    tiny_conv_model(model)
    assert main(["export", str(model), "--profile", "loihi2", "--timesteps", "16",
                 "--samples", "16", "--eval-samples", "10", "-o", str(exported)]) == 0
    capsys.readouterr()
    assert main(["run", str(exported), "--samples", "2", "--timesteps", "8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: profile loihi2 describes resources only")
