"""The simulator and calibration on a CUDA device against the CPU. Marked ``gpu``: skipped
without CUDA; ``benchmarks/gpu_check.py`` runs them on a GPU machine (``-m gpu``).

In float64 (:func:`snn2hw.precision.use`) a spike-driven current is a sum of float32
weights, which float64 holds exactly here, so the spikes and the Spike-Norm thresholds do
not depend on the device's summation order; ANN activations (max-act, the rate-matching
means) are real-valued sums and agree to rounding.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from snn2hw import calibrate, precision, snn
from snn2hw.snn import simulate
from snn2hw.snn.encoders import make_encoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
import distributed_cases as cases  # noqa: E402

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture(scope="module")
def conv():
    graph = cases.conv_net(np.random.default_rng(7))
    x, y = cases.data(graph, 1)
    return snn.lower(graph), x[:96], y[:96]


def _spike_norm(net, x, device):
    with precision.use(torch.float64):
        return calibrate.calibrate("spike-norm", net, x, timesteps=16, seed=3, device=device)


def test_spike_norm_thresholds_identical_on_cuda_in_float64(conv):
    net, x, _ = conv
    cpu, gpu = _spike_norm(net, x, "cpu"), _spike_norm(net, x, "cuda")
    assert gpu.scales == cpu.scales
    for name, value in cpu.source_scales.items():
        assert gpu.source_scales[name] == pytest.approx(value, rel=1e-12), name


def test_max_act_scales_agree_on_cuda_in_float64(conv):
    net, x, _ = conv
    with precision.use(torch.float64):
        cpu = calibrate.calibrate("max-act", net, x, device="cpu", percentile=99.9)
        gpu = calibrate.calibrate("max-act", net, x, device="cuda", percentile=99.9)
    for name, value in cpu.scales.items():
        assert gpu.scales[name] == pytest.approx(value, rel=1e-12), name


def test_simulated_spikes_identical_on_cuda_in_float64(conv):
    net, x, _ = conv
    scales = _spike_norm(net, x, "cpu").scales
    runs = {}
    for device in ("cpu", "cuda"):
        prep = simulate.prepare_float(net, scales, device, torch.float64)
        encoder = make_encoder("poisson", x, input_scale=scales[net.input], seed=5, stream=1)
        runs[device] = simulate.simulate(prep, encoder, 16, record=[la.name for la in
                                                                    net.layers])
    for name, spikes in runs["cpu"].records.items():
        np.testing.assert_array_equal(runs["cuda"].records[name], spikes, err_msg=name)
    np.testing.assert_array_equal(runs["cuda"].counts[16], runs["cpu"].counts[16])


def test_cuda_float32_accuracy_close_to_cpu(conv):
    from snn2hw.steps.evaluate import evaluate

    net, x, y = conv
    cal = calibrate.calibrate("spike-norm", net, x, timesteps=16, seed=3)
    acc = {d: evaluate(net.graph, net, cal.scales, x, y, [16], 3, device=d,
                       source_scales=cal.source_scales) for d in ("cpu", "cuda")}
    assert acc["cuda"].ann_accuracy == acc["cpu"].ann_accuracy
    # float32 currents are summed in another order on the GPU: a few spikes may move
    assert abs(acc["cuda"].snn_accuracy[16] - acc["cpu"].snn_accuracy[16]) <= 0.05
