"""Residual junctions: every term into a junction is expressed in the junction's one scale
(gain = source scale / junction scale), in calibration, in the float SNN and, with one
joint integer scale, in quantisation. Checked against computations written here."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from snn2hw import ir, snn
from snn2hw.hardware import profiles
from snn2hw.snn import simulate
from snn2hw.importer import graph_from_nodes
from snn2hw.quantize import quantize


def residual_graph() -> ir.Graph:
    rng = np.random.default_rng(7)
    w1, w2, w3 = (rng.normal(0, 0.5, s) for s in ((6, 5), (6, 6), (4, 6)))
    b2 = rng.normal(0, 0.1, 6)
    return graph_from_nodes([
        ir.Input("input", [], (5,)),
        ir.Dense("d1", ["input"], weight=w1), ir.ReLU("a", ["d1"]),
        ir.Dense("d2", ["a"], weight=w2, bias=b2),
        ir.Add("sum", ["d2", "a"]), ir.ReLU("j", ["sum"]),       # identity shortcut from a
        ir.Dense("out", ["j"], weight=w3)])


SCALES = {"input": 1.0, "a": 2.0, "j": 5.0, "out": 3.0}
SOURCES = {"input": 1.0, "a": 2.6, "j": 5.5, "out": 3.0}


def test_junction_terms_have_aligned_delays():
    net = snn.lower(residual_graph())
    j = net.layer("j")
    assert sorted((t.source, t.delay) for t in j.terms) == [("a", 0), ("a", 0)]
    assert j.depth == 2


def test_float_junction_current_uses_each_sources_scale_over_the_junctions():
    g = residual_graph()
    net = snn.lower(g)
    prep = simulate.prepare_float(net, SCALES, dtype=torch.float64, source_scales=SOURCES)
    layer = next(la for la in prep.layers if la.name == "j")
    spikes = torch.tensor(np.random.default_rng(1).integers(0, 2, (3, 2, 6)),
                          dtype=torch.float64)  # (T, B, a's neurons)
    current = simulate.layer_current(layer, [spikes] * len(layer.synapses)).numpy()
    w2, b2 = g.nodes["d2"].weight, g.nodes["d2"].bias
    want = (SOURCES["a"] / SCALES["j"]) * (spikes.numpy() @ w2.T + spikes.numpy()) \
        + b2 / SCALES["j"]
    np.testing.assert_allclose(current, want, rtol=1e-12)


def expected_junction_theta(g: ir.Graph) -> int:
    """theta of the junction from the loihi_sim rules, written out here: the largest
    integer that maps the largest normalised weight of either branch to at most 255 (or
    the most negative to at least -256); the 17-bit, state and bias limits are larger."""
    gain = SOURCES["a"] / SCALES["j"]
    normalised = np.concatenate([gain * g.nodes["d2"].weight.reshape(-1), [gain]])
    theta = int(np.floor(min(255 / normalised.max(), 256 / -normalised.min())))
    rows = np.abs(gain * g.nodes["d2"].weight).sum(axis=1) + gain   # binary source a
    b = np.abs(g.nodes["d2"].bias / SCALES["j"])
    assert theta < (1 << 17) - 1
    # even with all 7 weights of a row rounded up by 1/2 and the bias by one weight unit,
    # one step's input plus bias plus threshold stays inside the 24-bit state
    assert (theta * (rows + b).max() + 7 * 0.5 + 1 + theta) * 64 <= (1 << 23) - 1
    assert theta * b.max() * 64 < 4095 * 2 ** 7
    return theta


def expected_bias(theta: int, bias: np.ndarray) -> tuple[np.ndarray, int]:
    """Mantissa and the smallest exponent (0..7) for which the 13-bit mantissa fits."""
    v = theta * bias * 64
    for exp in range(8):
        mant = np.rint(v / 2 ** exp)
        if np.abs(mant).max() <= 4095:
            return mant, exp
    raise AssertionError("bias does not fit")


def test_quantised_junction_shares_one_integer_scale_across_both_branches():
    g = residual_graph()
    net = snn.lower(g)
    q = quantize(net, SCALES, profiles.load("loihi_sim"), SOURCES)
    j = next(la for la in q.layers if la.name == "j")
    theta = expected_junction_theta(g)
    assert j.threshold == theta
    gain = SOURCES["a"] / SCALES["j"]
    got = {syn.source + str(i): syn.matrix().toarray() for i, syn in enumerate(j.synapses)}
    residual = np.rint(theta * gain * g.nodes["d2"].weight)
    identity = np.rint(theta * gain * np.eye(6))
    assert len(got) == 2
    mats = sorted(got.values(), key=lambda m: np.count_nonzero(m))
    np.testing.assert_array_equal(mats[0], identity)
    np.testing.assert_array_equal(mats[1], residual)
    mant, exp = expected_bias(theta, g.nodes["d2"].bias / SCALES["j"])
    np.testing.assert_array_equal(j.bias_mant, mant)
    assert j.bias_exp == exp
    assert max(np.abs(m).max() for m in mats) in (255, 256)


@pytest.mark.parametrize("name", ["a", "j"])
def test_every_layer_gets_one_threshold(name):
    q = quantize(snn.lower(residual_graph()), SCALES, profiles.load("loihi_sim"), SOURCES)
    layer = next(la for la in q.layers if la.name == name)
    assert isinstance(layer.threshold, int) and layer.threshold > 0
