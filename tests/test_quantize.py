"""Quantisation to a fixed-point profile: one joint integer scale per layer, folded
pooling chains, bias mantissa/exponent and the hardware limits, checked against matrices
computed independently in the tests."""
from __future__ import annotations

import copy
import math
from importlib import resources

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snn2hw import ir, snn
from snn2hw.hardware import profiles
from snn2hw.errors import HardwareLimitError
from snn2hw.importer import graph_from_nodes as build
from snn2hw.quantize import quantize

SIM = profiles.load("loihi_sim")
V_MAX_WEIGHT_UNITS = ((1 << 23) - 1) / 64  # the 24-bit state limit in weight units




def basis_matrix(fn, in_shape) -> np.ndarray:
    """(out_size, in_size) matrix of a linear map given as a torch function of (N, *in)."""
    n = int(np.prod(in_shape))
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *in_shape)
    with torch.no_grad():
        return fn(eye).reshape(n, -1).T.numpy()


def conv_fn(w, padding=0, stride=1):
    return lambda x: F.conv2d(x, torch.as_tensor(w), None, stride, padding)


def pool_matrix(c: int, h: int, w: int, k: int) -> np.ndarray:
    """Average pooling k x k, stride k, on a flattened (c, h, w) vector."""
    ho, wo = h // k, w // k
    p = np.zeros((c * ho * wo, c * h * w))
    for ch in range(c):
        for i in range(ho):
            for j in range(wo):
                for a in range(k):
                    for b in range(k):
                        p[(ch * ho + i) * wo + j, (ch * h + k * i + a) * w + k * j + b] = 1 / k**2
    return p


def dense_matrix(syn) -> np.ndarray:
    return syn.matrix().toarray().astype(np.float64)


def assert_scaled_rounding(q: np.ndarray, theta: int, normalised: np.ndarray) -> None:
    """Integer weights are theta times the normalised float weights, rounded."""
    assert q.shape == normalised.shape
    assert np.max(np.abs(q - theta * normalised)) <= 0.5 + 1e-9
    assert np.all(q[normalised == 0] == 0)


def weight_range_theta(normalised: list[np.ndarray]) -> int:
    top_pos = max(float(m.max()) for m in normalised)
    top_neg = max(float(-m.min()) for m in normalised)
    return math.floor(min(255 / top_pos, 256 / top_neg))


def three_layer_net():
    rng = np.random.default_rng(1)
    g = build([
        ir.Input("input", [], (1, 8, 8)),
        ir.Conv("c1", ["input"], weight=rng.standard_normal((4, 1, 3, 3)) * 0.3,
                bias=rng.standard_normal(4) * 0.05, padding=(1, 1, 1, 1)),
        ir.ReLU("r1", ["c1"]),
        ir.Conv("c2", ["r1"], weight=rng.standard_normal((4, 4, 3, 3)) * 0.3,
                padding=(1, 1, 1, 1)),
        ir.ReLU("r2", ["c2"]),
        ir.AvgPool("p", ["r2"], kernel=(2, 2), stride=(2, 2)),
        ir.Flatten("f", ["p"]),
        ir.Dense("out", ["f"], weight=rng.standard_normal((10, 64)) * 0.3),
    ])
    return g, snn.lower(g), {"input": 1.0, "r1": 4.0, "r2": 10.0, "out": 8.0}


def test_joint_scale_per_layer_matches_normalised_weights():
    g, net, scales = three_layer_net()
    q = quantize(net, scales, SIM)
    n = g.nodes
    gains = {"r1": scales["input"] / scales["r1"], "r2": scales["r1"] / scales["r2"],
             "out": scales["r2"] / scales["out"]}
    normalised = {
        "r1": basis_matrix(conv_fn(n["c1"].weight, 1), (1, 8, 8)) * gains["r1"],
        "r2": basis_matrix(conv_fn(n["c2"].weight, 1), (4, 8, 8)) * gains["r2"],
        "out": n["out"].weight @ pool_matrix(4, 8, 8, 2) * gains["out"],
    }
    assert [la.name for la in q.layers] == ["r1", "r2", "out"]
    for la in q.layers:
        m = normalised[la.name]
        # small weights, so the integer range can be reached: theta * top >= 254.5
        assert max(m.max(), -m.min()) < 0.5
        assert len(la.synapses) == 1
        assert la.report["limited_by"] == "weight range", la.report
        assert la.threshold == weight_range_theta([m]) == la.report["scale"]
        ints = dense_matrix(la.synapses[0])
        assert_scaled_rounding(ints, la.threshold, m)
        assert ints.max() == 255 or ints.min() == -256
        assert ints.max() <= 255 and ints.min() >= -256
        assert la.report["clipped_weights"] == 0
        assert la.report["max_abs_weight"] == int(np.abs(ints).max())


def test_avgpool_then_conv_folds_into_a_pooled_conv():
    rng = np.random.default_rng(2)
    w2 = rng.standard_normal((3, 2, 3, 3)) * 0.4
    g = build([
        ir.Input("input", [], (1, 8, 8)),
        ir.Conv("c1", ["input"], weight=rng.standard_normal((2, 1, 3, 3)), padding=(1, 1, 1, 1)),
        ir.ReLU("r1", ["c1"]),
        ir.AvgPool("p", ["r1"], kernel=(2, 2), stride=(2, 2)),
        ir.Conv("out", ["p"], weight=w2, padding=(1, 1, 1, 1)),
    ])
    scales = {"input": 1.0, "r1": 2.0, "out": 3.0}
    q = quantize(snn.lower(g), scales, SIM)
    syn = q.layers[1].synapses[0]
    assert (syn.kind, syn.pool, syn.source, syn.lag) == ("conv", (2, 2), "r1", 1)
    # avgpool(2) then conv(W, pad 1) == conv(kron(W, ones(2, 2)) / 4, stride 2, pad 2)
    big = np.stack([np.stack([np.kron(w2[o, i], np.ones((2, 2))) / 4 for i in range(2)])
                    for o in range(3)])
    normalised = basis_matrix(conv_fn(big, padding=2, stride=2), (2, 8, 8)) * (2.0 / 3.0)
    theta = q.layers[1].threshold
    assert theta == weight_range_theta([normalised])
    assert_scaled_rounding(dense_matrix(syn), theta, normalised)


def test_avgpool_flatten_dense_becomes_a_matrix_synapse():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 2 * 3 * 3)) * 0.5
    g = build([
        ir.Input("input", [], (2, 6, 6)),
        ir.Conv("c1", ["input"], weight=rng.standard_normal((2, 2, 1, 1))),
        ir.ReLU("r1", ["c1"]),
        ir.AvgPool("p", ["r1"], kernel=(2, 2), stride=(2, 2)),
        ir.Flatten("f", ["p"]),
        ir.Dense("out", ["f"], weight=w),
    ])
    scales = {"input": 1.0, "r1": 2.5, "out": 4.0}
    q = quantize(snn.lower(g), scales, SIM)
    out = q.layers[1]
    assert [s.kind for s in out.synapses] == ["matrix"]
    syn = out.synapses[0]
    assert syn.csr.shape == (5, 72) and syn.csr.dtype == np.int32
    normalised = w @ pool_matrix(2, 6, 6, 2) * (2.5 / 4.0)
    assert out.threshold == weight_range_theta([normalised])
    assert_scaled_rounding(syn.csr.toarray(), out.threshold, normalised)


def test_large_bias_gets_the_smallest_exponent_that_fits():
    rng = np.random.default_rng(4)
    w = rng.uniform(0.001, 0.01, size=(4, 16))
    b = np.array([0.25, -0.2, 0.01, 0.1])
    g = build([ir.Input("input", [], (16,)), ir.Dense("out", ["input"], weight=w, bias=b)])
    q = quantize(snn.lower(g), {"input": 1.0, "out": 1.0}, SIM)
    la = q.layers[0]
    assert la.report["limited_by"] == "weight range"
    theta = la.threshold
    assert theta == math.floor(255 / w.max())
    want = theta * b * 64  # bias in v units
    exp = la.bias_exp
    assert exp > 6 and la.report["bias_exp"] == exp
    assert np.abs(la.bias_mant).max() <= 4095
    assert np.abs(np.rint(want / 2 ** (exp - 1))).max() > 4095  # one less does not fit
    assert np.all(np.abs(la.bias_v() - want) <= 2 ** (exp - 1))
    assert np.array_equal(la.bias_v(), la.bias_mant.astype(np.int64) << exp)


def test_small_bias_uses_a_small_exponent():
    g = build([ir.Input("input", [], (4,)),
               ir.Dense("out", ["input"], weight=np.full((2, 4), 0.5),
                        bias=np.array([0.01, -0.02]))])
    q = quantize(snn.lower(g), {"input": 1.0, "out": 1.0}, SIM)
    la = q.layers[0]
    want = la.threshold * np.array([0.01, -0.02]) * 64
    assert np.abs(want).max() <= 4095  # fits the mantissa as it is: exponent 0, exact
    assert la.bias_exp == 0
    assert np.array_equal(la.bias_mant, np.rint(want))


def test_24_bit_state_limits_large_all_positive_fan_in():
    g = build([ir.Input("input", [], (4000,)),
               ir.Dense("out", ["input"], weight=np.ones((3, 4000)))])
    q = quantize(snn.lower(g), {"input": 1.0, "out": 1.0}, SIM)
    la = q.layers[0]
    assert la.report["limited_by"] == "24-bit state"
    theta = la.threshold
    ints = la.synapses[0].csr.toarray().astype(np.int64)
    # input spikes are signed: the worst case drive is the sum of |w| over the whole row
    worst = int(np.abs(ints).sum(axis=1).max())
    assert worst + theta < 1 << 17
    assert (worst + theta) * 64 <= (1 << 23) - 1
    assert 4000 * (theta + 1) + theta + 1 > V_MAX_WEIGHT_UNITS  # theta is the largest
    assert np.all(ints == theta) and la.report["clipped_weights"] == 0


def test_nothing_fits_a_tiny_state_raises_hardware_limit(tmp_path):
    text = resources.files("snn2hw.hw_profiles").joinpath("loihi_sim.toml").read_text()
    assert "bits = 24" in text
    path = tmp_path / "tiny_state.toml"
    path.write_text(text.replace("bits = 24", "bits = 8").replace('"loihi_sim"', '"tiny"'))
    tiny = profiles.load(str(path))
    assert tiny.fixed.state_bits == 8
    g = build([ir.Input("input", [], (4,)),
               ir.Dense("out", ["input"], weight=np.full((2, 4), 0.5))])
    with pytest.raises(HardwareLimitError) as exc:
        quantize(snn.lower(g), {"input": 1.0, "out": 1.0}, tiny)
    assert exc.value.exit_code == 3
    assert exc.value.facts["limit"] == "8-bit state"
    assert "8-bit state" in exc.value.message


def test_float_profile_cannot_be_quantised():
    g = build([ir.Input("input", [], (4,)), ir.Dense("out", ["input"], weight=np.ones((2, 4)))])
    with pytest.raises(HardwareLimitError, match="no fixed-point rules"):
        quantize(snn.lower(g), {"input": 1.0, "out": 1.0}, profiles.load("loihi_float"))


def test_quantize_returns_a_new_network_and_leaves_inputs_unchanged():
    g, net, scales = three_layer_net()
    before_net = copy.deepcopy(net)
    before_scales = dict(scales)
    params = {name: {k: v.copy() for k, v in node.params().items()}
              for name, node in g.nodes.items()}
    q = quantize(net, scales, SIM)
    assert scales == before_scales
    assert [la.name for la in net.layers] == [la.name for la in before_net.layers]
    for la, old in zip(net.layers, before_net.layers):
        assert la.depth == old.depth and la.shape == old.shape
        assert (la.bias is None) == (old.bias is None)
        if la.bias is not None:
            assert np.array_equal(la.bias, old.bias)
        for t, t_old in zip(la.terms, old.terms):
            assert (t.source, t.delay, [o.name for o in t.ops]) == (
                t_old.source, t_old.delay, [o.name for o in t_old.ops])
    for name, node in g.nodes.items():
        for k, v in node.params().items():
            assert np.array_equal(v, params[name][k]) and v.dtype == np.float64
    # the integer network owns its arrays: writing to them does not touch the float net
    for la in q.layers:
        for syn in la.synapses:
            vals = syn.values()
            assert all(not np.shares_memory(vals, v) for node in g.nodes.values()
                       for v in node.params().values())
            vals[...] = 0
    for name, node in g.nodes.items():
        for k, v in node.params().items():
            assert np.array_equal(v, params[name][k])
    assert q.input == net.input and q.input_scale == scales["input"]
    assert q.profile == "loihi_sim" and q.output.name == "out"
