"""The state budget holds for the rounded integers that are exported, not only for the
float weights theta was estimated from. Expected values are computed here with numpy from
the float weights and the profile's numbers."""
from __future__ import annotations

import numpy as np
import pytest

from snn2hw import ir, snn
from snn2hw.hardware import profiles
from snn2hw.calibrate import calibrate
from snn2hw.importer import graph_from_nodes
from snn2hw.quantize import quantize

SIM = profiles.load("loihi_sim")
V_MAX = (1 << 23) - 1
N_IN, N_OUT, BLOCK = 3700, 10, 370


def issue_example():
    """One dense layer, 3,700 inputs of equal weight 0.3, each of 10 neurons missing one
    block of 370 inputs; inputs near their maximum."""
    w = np.full((N_OUT, N_IN), 0.3)
    for i in range(N_OUT):
        w[i, i * BLOCK:(i + 1) * BLOCK] = 0
    g = graph_from_nodes([ir.Input("input", [], (N_IN,)),
                          ir.Dense("/1/MatMul", ["input"], weight=w),
                          ir.ReLU("/1/Relu", ["/1/MatMul"])])
    x = np.random.default_rng(0).uniform(0.95, 1.0, size=(8, N_IN)).astype(np.float32)
    return g, snn.lower(g), x


def integer_budget(weights: np.ndarray, theta: int) -> int:
    """(max_i sum_j |rint(theta * w_ij)| + theta) << 6 for a bias-free layer fed by the
    signed input, as the hardware sees it."""
    ints = np.rint(theta * weights)
    return int((np.abs(ints).sum(axis=1).max() + theta)) << 6


@pytest.fixture(scope="module")
def example():
    g, net, x = issue_example()
    cal = calibrate("spike-norm", net, x, timesteps=128, seed=0)
    q = quantize(net, cal.scales, SIM, cal.source_scales)
    gain = cal.source_scales["input"] / cal.scales["/1/Relu"]
    return q.layers[0], g.nodes["/1/MatMul"].weight * gain


def test_issue_example_keeps_the_budget_after_rounding(example):
    layer, _ = example
    ints = layer.synapses[0].matrix().toarray().astype(np.int64)
    worst = int(np.abs(ints).sum(axis=1).max())
    assert (worst + layer.threshold) << 6 <= V_MAX   # was 8,424,960 before the fix


def test_issue_example_theta_is_the_largest_that_fits_after_rounding(example):
    layer, normalised = example
    theta = layer.threshold
    assert integer_budget(normalised, theta) <= V_MAX
    assert integer_budget(normalised, theta + 1) > V_MAX
    # the float estimate alone would have allowed a larger theta
    estimate = int(np.floor(V_MAX / 64 / (1 + np.abs(normalised).sum(axis=1).max())))
    assert estimate > theta
    assert integer_budget(normalised, estimate) > V_MAX


def test_issue_example_report_names_the_limit(example):
    layer, normalised = example
    assert layer.report["limited_by"] == "24-bit state after rounding"
    assert layer.report["scale"] == layer.threshold
    assert layer.report["scale_before_rounding_check"] > layer.threshold


def test_theta_is_unchanged_and_unreported_where_rounding_fits():
    """Weights 1.0: rint(theta * w) = theta exactly, so the float estimate stands."""
    g = graph_from_nodes([ir.Input("input", [], (4000,)),
                          ir.Dense("out", ["input"], weight=np.ones((3, 4000)))])
    la = quantize(snn.lower(g), {"input": 1.0, "out": 1.0}, SIM).layers[0]
    assert la.threshold == (V_MAX // 64) // 4001
    assert la.report["limited_by"] == "24-bit state"
    assert "scale_before_rounding_check" not in la.report


def test_current_memory_multiplies_the_input_budget(tmp_path):
    """du = 1023: u keeps 3/4 of itself each step, so it can reach 4 steps' input; theta
    is the largest with (4000 * theta * 4 + theta) << 6 <= 2**23 - 1, i.e. 8."""
    from importlib import resources

    text = resources.files("snn2hw.hw_profiles").joinpath("loihi_sim.toml").read_text()
    assert "du = 4095" in text
    path = tmp_path / "leaky_current.toml"
    path.write_text(text.replace("du = 4095", "du = 1023").replace('"loihi_sim"', '"mem"'))
    g = graph_from_nodes([ir.Input("input", [], (4000,)),
                          ir.Dense("out", ["input"], weight=np.ones((3, 4000)))])
    la = quantize(snn.lower(g), {"input": 1.0, "out": 1.0}, profiles.load(str(path))).layers[0]
    assert la.threshold == 8
    assert ((4000 * 8 * 4 + 8) << 6) <= V_MAX < ((4000 * 9 * 4 + 9) << 6)
