"""The reference simulator, lowering and input encoding against independent numpy code.

Every expected value here comes from plain numpy written in this file, following the
equations in the :mod:`snn2hw.snn` docstring step by step (all layers advance one time
step at a time), never from the simulator's own synapse or lowering helpers.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from snn2hw import ir, snn
from snn2hw.snn import simulate
from snn2hw.snn.encoders import make_encoder
from snn2hw.snn.neurons import float_neuron
from snn2hw.errors import InputError
from snn2hw.importer import graph_from_nodes as build

F64 = torch.float64


# --------------------------------------------------------------------------- helpers




def np_conv(x, w, b=None, stride=(1, 1), pad=(0, 0, 0, 0)):
    """Plain conv2d on (N, C, H, W); pad = (top, left, bottom, right); groups = 1."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[2]), (pad[1], pad[3])))
    _, _, h, wd = xp.shape
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride[0] + 1, (wd - kw) // stride[1] + 1
    out = np.zeros((x.shape[0], o, oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + stride[0] * oh:stride[0], j:j + stride[1] * ow:stride[1]]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    if b is not None:
        out += b[None, :, None, None]
    return out


def np_avgpool(x, k, s, pad=(0, 0, 0, 0)):
    """Average pooling, zero padding counted in the divisor (count_include_pad=True)."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[2]), (pad[1], pad[3])))
    _, _, h, w = xp.shape
    oh, ow = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
    out = np.zeros((x.shape[0], x.shape[1], oh, ow))
    for i in range(k[0]):
        for j in range(k[1]):
            out += xp[:, :, i:i + s[0] * oh:s[0], j:j + s[1] * ow:s[1]]
    return out / (k[0] * k[1])


def past(train: np.ndarray, t: int, lag: int) -> np.ndarray:
    """Spikes of a (N, T, ...) train at step t - lag (zeros before step 0)."""
    if t - lag < 0:
        return np.zeros((train.shape[0], *train.shape[2:]))
    return train[:, t - lag].astype(np.float64)


def naive_run(layers, s_in: np.ndarray, timesteps: int, reset: str = "zero"
              ) -> dict[str, np.ndarray]:
    """Step-by-step IF simulation: ``layers`` = [(name, shape, depth, current(spikes, t))].

    v += a; spike where v > 1; reset to 0 (or v -= 1 with ``subtract``). All layers
    advance together, one step at a time, so a layer at step t sees only spikes of steps
    < t. A layer ``depth`` hops from
    the input is idle (no current, bias included) during steps t < depth."""
    n = s_in.shape[0]
    spikes = {"input": s_in.astype(np.float64)}
    v = {}
    for name, shape, _, _ in layers:
        spikes[name] = np.zeros((n, timesteps, *shape))
        v[name] = np.zeros((n, *shape))
    for t in range(timesteps):
        for name, _, depth, current in layers:
            if t < depth:
                continue
            v[name] = v[name] + current(spikes, t)
            fired = v[name] > 1.0
            spikes[name][:, t] = fired
            if reset == "subtract":
                v[name][fired] -= 1.0
            else:
                v[name][fired] = 0.0
    return spikes


def run_sim(graph, scales, x, timesteps, seed=3, reset="zero", **kw):
    prep = simulate.prepare_float(snn.lower(graph), scales, dtype=F64, reset=reset)
    enc = make_encoder("poisson", x, input_scale=scales["input"], seed=seed, stream=1)
    return simulate.simulate(prep, enc, timesteps, **kw)


def input_spikes(x, scale, timesteps, seed=3):
    return make_encoder("poisson", x, input_scale=scale, seed=seed, stream=1).full(0, len(x),
                                                                                   timesteps)


def rng_normal(rng, *shape, scale=1.0):
    return rng.standard_normal(shape) * scale


# --------------------------------------------------------------------------- networks


def dense_net(rng):
    w1, b1 = rng_normal(rng, 10, 12, scale=0.6), rng_normal(rng, 10, scale=0.1)
    w2, b2 = rng_normal(rng, 4, 10, scale=0.6), rng_normal(rng, 4, scale=0.1)
    g = build([ir.Input("input", [], (12,)),
               ir.Dense("d1", ["input"], weight=w1, bias=b1),
               ir.ReLU("r1", ["d1"]),
               ir.Dense("d2", ["r1"], weight=w2, bias=b2)])
    scales = {"input": 1.0, "r1": 0.9, "d2": 0.7}

    def layers(sc):
        return [
            ("r1", (10,), 1, lambda s, t: (sc["input"] / sc["r1"]) * past(s["input"], t, 1) @ w1.T
             + b1 / sc["r1"]),
            ("d2", (4,), 2, lambda s, t: (sc["r1"] / sc["d2"]) * past(s["r1"], t, 1) @ w2.T
             + b2 / sc["d2"]),
        ]
    return g, scales, layers


def conv_net(rng):
    cw, cb = rng_normal(rng, 3, 2, 3, 3, scale=0.5), rng_normal(rng, 3, scale=0.1)
    dw, db = rng_normal(rng, 5, 48, scale=0.4), rng_normal(rng, 5, scale=0.1)
    g = build([ir.Input("input", [], (2, 8, 8)),
               ir.Conv("c1", ["input"], weight=cw, bias=cb, padding=(1, 1, 1, 1)),
               ir.ReLU("r1", ["c1"]),
               ir.AvgPool("p1", ["r1"], kernel=(2, 2), stride=(2, 2)),
               ir.Flatten("f", ["p1"]),
               ir.Dense("out", ["f"], weight=dw, bias=db)])
    scales = {"input": 1.0, "r1": 1.1, "out": 0.6}

    def layers(sc):
        def c1(s, t):
            x = past(s["input"], t, 1)
            return (sc["input"] / sc["r1"]) * np_conv(x, cw, pad=(1, 1, 1, 1)) \
                + cb[None, :, None, None] / sc["r1"]

        def out(s, t):
            pooled = np_avgpool(past(s["r1"], t, 1), (2, 2), (2, 2))
            return (sc["r1"] / sc["out"]) * pooled.reshape(len(pooled), -1) @ dw.T \
                + db / sc["out"]
        return [("r1", (3, 8, 8), 1, c1), ("out", (5,), 2, out)]
    return g, scales, layers


def residual_net(rng, input_skip=False):
    """input -> d1 -> r1 -> d2 -> r2; r3 = relu(d3(r2) + d4(r1) [+ d6(input)]); out = d5(r3)."""
    w = {k: rng_normal(rng, *s, scale=0.6) for k, s in
         {"d1": (8, 6), "d2": (8, 8), "d3": (5, 8), "d4": (5, 8), "d5": (3, 5),
          "d6": (5, 6)}.items()}
    w["d5"] += 0.3  # keep the output layer busy
    b3, b4 = rng_normal(rng, 5, scale=0.1), rng_normal(rng, 5, scale=0.1)
    nodes = [ir.Input("input", [], (6,)),
             ir.Dense("d1", ["input"], weight=w["d1"]), ir.ReLU("r1", ["d1"]),
             ir.Dense("d2", ["r1"], weight=w["d2"]), ir.ReLU("r2", ["d2"]),
             ir.Dense("d3", ["r2"], weight=w["d3"], bias=b3),
             ir.Dense("d4", ["r1"], weight=w["d4"], bias=b4)]
    add_inputs = ["d3", "d4"]
    if input_skip:
        nodes.append(ir.Dense("d6", ["input"], weight=w["d6"]))
        add_inputs.append("d6")
    nodes += [ir.Add("add", add_inputs), ir.ReLU("r3", ["add"]),
              ir.Dense("d5", ["r3"], weight=w["d5"])]
    g = build(nodes)
    scales = {"input": 1.0, "r1": 0.8, "r2": 0.9, "r3": 1.2, "d5": 0.7}

    def layers(sc):
        def r3(s, t):
            a = (sc["r2"] / sc["r3"]) * past(s["r2"], t, 1) @ w["d3"].T \
                + (sc["r1"] / sc["r3"]) * past(s["r1"], t, 2) @ w["d4"].T \
                + (b3 + b4) / sc["r3"]
            if input_skip:
                a = a + (sc["input"] / sc["r3"]) * past(s["input"], t, 3) @ w["d6"].T
            return a
        return [
            ("r1", (8,), 1, lambda s, t: (sc["input"] / sc["r1"]) * past(s["input"], t, 1)
             @ w["d1"].T),
            ("r2", (8,), 2, lambda s, t: (sc["r1"] / sc["r2"]) * past(s["r1"], t, 1) @ w["d2"].T),
            ("r3", (5,), 3, r3),
            ("d5", (3,), 4, lambda s, t: (sc["r3"] / sc["d5"]) * past(s["r3"], t, 1) @ w["d5"].T),
        ]
    return g, scales, layers


def check_against_naive(graph, scales, layers, x, timesteps, reset="zero", **sim_kw):
    names = [name for name, _, _, _ in layers]
    res = run_sim(graph, scales, x, timesteps, record=names, reset=reset, **sim_kw)
    ref = naive_run(layers, input_spikes(x, scales["input"], timesteps), timesteps, reset)
    for name in names:
        want = ref[name].reshape(len(x), timesteps, -1)
        assert want.sum() > 0, f"test network too quiet: {name} never spikes"
        assert want.sum() < want.size, f"test network saturated: {name}"
        np.testing.assert_array_equal(res.records[name], want, err_msg=name)
    out = names[-1]
    np.testing.assert_array_equal(res.counts[timesteps],
                                  ref[out].reshape(len(x), timesteps, -1).sum(axis=1))
    return res


# --------------------------------------------------------------------------- (a) naive


def test_dense_network_matches_naive_loop():
    rng = np.random.default_rng(10)
    g, scales, layers = dense_net(rng)
    x = rng.uniform(-1, 1, (6, 12)).astype(np.float32)
    check_against_naive(g, scales, layers(scales), x, 40)


def test_conv_pool_dense_network_matches_naive_loop():
    rng = np.random.default_rng(11)
    g, scales, layers = conv_net(rng)
    x = rng.uniform(-1, 1, (4, 2, 8, 8)).astype(np.float32)
    check_against_naive(g, scales, layers(scales), x, 32)


def test_float32_simulator_agrees_with_naive_loop_nearly_everywhere():
    """The default float32 simulator differs from float64 only by rounding at threshold."""
    rng = np.random.default_rng(10)
    g, scales, layers = dense_net(rng)
    x = rng.uniform(-1, 1, (6, 12)).astype(np.float32)
    prep = simulate.prepare_float(snn.lower(g), scales)  # float32
    res = simulate.simulate(prep, make_encoder("poisson", x, input_scale=1.0, seed=3, stream=1),
                            40, record=["r1", "d2"])
    ref = naive_run(layers(scales), input_spikes(x, 1.0, 40), 40)
    for name in ("r1", "d2"):
        agree = (res.records[name] == ref[name].reshape(6, 40, -1)).mean()
        assert agree > 0.99, name


# --------------------------------------------------------------------------- (b) chunking


@pytest.mark.parametrize("make", [conv_net, lambda rng: residual_net(rng, input_skip=True)],
                         ids=["conv", "residual"])
def test_results_independent_of_batch_size_and_time_chunk(make):
    rng = np.random.default_rng(12)
    g, scales, layers = make(rng)
    names = [name for name, _, _, _ in layers(scales)]
    x = rng.uniform(-1, 1, (5, *g.input_shape)).astype(np.float32)
    base = run_sim(g, scales, x, 29, batch_size=64, time_chunk=29, record=names)
    for batch_size, time_chunk in [(1, None), (2, 1), (3, 7), (64, None), (4, 2), (5, 5)]:
        other = run_sim(g, scales, x, 29, batch_size=batch_size, time_chunk=time_chunk,
                        record=names)
        np.testing.assert_array_equal(other.counts[29], base.counts[29])
        for name in names:
            np.testing.assert_array_equal(other.records[name], base.records[name],
                                          err_msg=f"{name} bs={batch_size} tc={time_chunk}")
        for name in names:
            assert other.stats[name].spikes == base.stats[name].spikes


# --------------------------------------------------------------------------- (c) residual


def test_residual_lowering_delays_shortcut_by_hop_difference():
    net = snn.lower(residual_net(np.random.default_rng(0))[0])
    assert [la.name for la in net.layers] == ["r1", "r2", "r3", "d5"]
    assert [la.depth for la in net.layers] == [1, 2, 3, 4]
    r3 = net.layer("r3")
    assert {t.source: t.delay for t in r3.terms} == {"r2": 0, "r1": 1}
    assert {t.source: [op.name for op in t.ops] for t in r3.terms} == {"r2": ["d3"],
                                                                        "r1": ["d4"]}
    assert net.layer("d5").terms[0].delay == 0 and net.layer("d5").is_output


def test_residual_with_input_shortcut_lowering():
    net = snn.lower(residual_net(np.random.default_rng(0), input_skip=True)[0])
    assert {t.source: t.delay for t in net.layer("r3").terms} == {"r2": 0, "r1": 1,
                                                                  "input": 2}


def test_residual_network_matches_naive_loop_with_delays():
    rng = np.random.default_rng(13)
    g, scales, layers = residual_net(rng)
    x = rng.uniform(-1, 1, (6, 6)).astype(np.float32)
    check_against_naive(g, scales, layers(scales), x, 40, time_chunk=3)


def test_reset_by_subtraction_matches_naive_loop_and_differs_from_reset_to_zero():
    rng = np.random.default_rng(13)
    g, scales, layers = residual_net(rng)
    x = rng.uniform(-1, 1, (6, 6)).astype(np.float32)
    sub = check_against_naive(g, scales, layers(scales), x, 40, reset="subtract",
                              time_chunk=3)
    zero = run_sim(g, scales, x, 40)
    assert not np.array_equal(sub.counts[40], zero.counts[40])


def test_if_neuron_reset_modes_by_hand():
    # constant current 0.75, threshold 1: v = .75 1.5* .75 1.5* ... with reset to zero
    # (5 spikes in 10 steps); .75 1.5*(.5) 1.25*(.25) 1.0 1.75*(.75) ... by subtraction
    # (7 spikes, the ideal rate 0.75 up to the charge still held).
    current = torch.full((10, 1, 1), 0.75, dtype=F64)
    for reset, want in (("zero", [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]),
                        ("subtract", [0, 1, 1, 0, 1, 1, 1, 0, 1, 1])):
        out = torch.empty_like(current)
        float_neuron(1.0, reset).integrate(current, torch.zeros((1, 1), dtype=F64), out)
        assert out.reshape(-1).tolist() == want, reset
    with pytest.raises(InputError, match="unknown reset mode 'soft'; known: zero, subtract"):
        float_neuron(1.0, "soft")


def test_residual_input_shortcut_matches_naive_loop():
    rng = np.random.default_rng(14)
    g, scales, layers = residual_net(rng, input_skip=True)
    x = rng.uniform(-1, 1, (6, 6)).astype(np.float32)
    check_against_naive(g, scales, layers(scales), x, 40, time_chunk=5)


# --------------------------------------------------------------------------- (d) bias


def test_bias_lowered_through_conv_pool_flatten_dense():
    rng = np.random.default_rng(15)
    cw1, cb1 = rng_normal(rng, 3, 2, 3, 3), rng_normal(rng, 3)
    cw2, cb2 = rng_normal(rng, 2, 3, 3, 3), rng_normal(rng, 2)
    dw, db = rng_normal(rng, 4, 8), rng_normal(rng, 4)
    g = build([ir.Input("input", [], (2, 6, 6)),
               ir.Conv("c1", ["input"], weight=cw1, bias=cb1, padding=(1, 1, 1, 1)),
               ir.AvgPool("p1", ["c1"], kernel=(3, 3), stride=(1, 1), padding=(1, 1, 1, 1),
                          count_include_pad=True),
               ir.ReLU("r1", ["p1"]),
               ir.Conv("c2", ["r1"], weight=cw2, bias=cb2),
               ir.AvgPool("p2", ["c2"], kernel=(2, 2), stride=(2, 2)),
               ir.Flatten("f", ["p2"]),
               ir.Dense("out", ["f"], weight=dw, bias=db)])
    net = snn.lower(g)
    zeros_in = np.zeros((1, 2, 6, 6))
    want_r1 = np_avgpool(np_conv(zeros_in, cw1, cb1, pad=(1, 1, 1, 1)), (3, 3), (1, 1),
                         (1, 1, 1, 1))[0]
    # corners see 4 of 9 real positions, edges 6 of 9: the bias is not uniform
    assert np.isclose(want_r1[0, 0, 0], cb1[0] * 4 / 9)
    np.testing.assert_allclose(net.layer("r1").bias, want_r1, rtol=1e-12, atol=1e-12)
    zeros_r1 = np.zeros((1, 3, 6, 6))
    pooled = np_avgpool(np_conv(zeros_r1, cw2, cb2), (2, 2), (2, 2))
    want_out = pooled.reshape(-1) @ dw.T + db
    np.testing.assert_allclose(net.layer("out").bias, want_out, rtol=1e-12, atol=1e-12)


def test_layer_without_bias_has_none():
    g = residual_net(np.random.default_rng(0))[0]
    net = snn.lower(g)
    assert net.layer("r1").bias is None and net.layer("r2").bias is None
    np.testing.assert_allclose(net.layer("r3").bias, g.nodes["d3"].bias + g.nodes["d4"].bias)


def test_bias_is_a_current_every_step_and_threshold_is_strict():
    """A lone bias is a current every step once the layer is active (from step depth = 1
    on; idle at step 0); v == 1 exactly does not fire (v > 1)."""
    bias = np.array([0.25, 0.5, 0.55, -0.2]) * 2.0  # scale 2: currents b / 2
    g = build([ir.Input("input", [], (1,)),
               ir.Dense("d", ["input"], weight=np.zeros((4, 1)), bias=bias)])
    res = run_sim(g, {"input": 1.0, "d": 2.0}, np.zeros((1, 1), np.float32), 20, record=["d"])
    want = np.zeros((20, 4))
    v = np.zeros(4)
    for t in range(1, 20):
        v += bias / 2.0
        want[t] = v > 1
        v[v > 1] = 0
    np.testing.assert_array_equal(res.records["d"][0], want)
    # 0.25: v reaches exactly 1.0 at step 4 and fires only at step 5 (every 5 steps)
    np.testing.assert_array_equal(np.flatnonzero(want[:, 0]), [5, 10, 15])
    np.testing.assert_array_equal(np.flatnonzero(want[:, 1]), [3, 6, 9, 12, 15, 18])
    assert want[:, 3].sum() == 0


# --------------------------------------------------------------------------- (e) encoder


def test_encoder_same_seed_identical_different_seed_differs():
    x = np.random.default_rng(0).uniform(-1, 1, (4, 3, 5)).astype(np.float32)
    a = make_encoder("poisson", x, input_scale=1.0, seed=7).full(0, 4, 50)
    b = make_encoder("poisson", x, input_scale=1.0, seed=7).full(0, 4, 50)
    c = make_encoder("poisson", x, input_scale=1.0, seed=8).full(0, 4, 50)
    d = make_encoder("poisson", x, input_scale=1.0, seed=7, stream=1).full(0, 4, 50)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any() and (a != d).any()
    assert a.dtype == np.int8 and a.shape == (4, 50, 3, 5)


def test_encoder_follows_documented_per_sample_generator():
    x = np.random.default_rng(1).uniform(-2, 2, (3, 6)).astype(np.float32)
    enc = make_encoder("poisson", x, input_scale=1.5, seed=5, stream=1, indices=np.array([10, 4,
                                                                                          7]))
    got = enc.full(0, 3, 30)
    for row, index in enumerate([10, 4, 7]):
        u = np.random.default_rng([5, 1, index]).random((30, 6), dtype=np.float32)
        p = np.minimum(np.abs(x[row]) / np.float32(1.5), 1)
        np.testing.assert_array_equal(got[row], (u < p) * np.sign(x[row]))


def test_encoder_rate_matches_magnitude_over_scale():
    x = np.array([[0.0, 0.1, 0.5, -0.3, -0.9, 1.0, 2.0, -3.0]], dtype=np.float32)
    spikes = make_encoder("poisson", x, input_scale=2.0, seed=1).full(0, 1,
                                                                      20000)[0].astype(np.float64)
    rate = np.abs(spikes).mean(axis=0)
    want = np.minimum(np.abs(x[0]) / 2.0, 1.0)
    np.testing.assert_allclose(rate, want, atol=0.02)
    assert rate[0] == 0 and rate[7] == 1.0  # p = 0 never fires, p >= 1 always fires


def test_encoder_negative_inputs_give_negative_spikes():
    x = np.array([[0.4, -0.4, -1.0, 0.0]], dtype=np.float32)
    spikes = make_encoder("poisson", x, input_scale=1.0, seed=2).full(0, 1, 500)[0]
    assert set(np.unique(spikes[:, 0])) == {0, 1}
    assert set(np.unique(spikes[:, 1])) == {0, -1}
    assert (spikes[:, 2] == -1).all() and (spikes[:, 3] == 0).all()


def test_encoder_chunked_draws_equal_one_full_draw():
    x = np.random.default_rng(3).uniform(-1, 1, (5, 2, 3, 3)).astype(np.float32)
    full = make_encoder("poisson", x, input_scale=1.0, seed=9).full(0, 5, 23)
    enc = make_encoder("poisson", x, input_scale=1.0, seed=9)
    parts = [enc.chunk(0, 5, t0, t1) for t0, t1 in [(0, 1), (1, 8), (8, 15), (15, 23)]]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), full)
    # a sub-batch gets the same spikes as in the full batch
    enc2 = make_encoder("poisson", x, input_scale=1.0, seed=9)
    np.testing.assert_array_equal(np.concatenate([enc2.chunk(2, 4, 0, 10),
                                                  enc2.chunk(2, 4, 10, 23)], axis=1),
                                  full[2:4])


def test_encoder_refuses_out_of_order_steps():
    enc = make_encoder("poisson", np.ones((1, 2), np.float32), input_scale=1.0, seed=0)
    with pytest.raises(ValueError):
        enc.chunk(0, 1, 3, 5)
    enc.chunk(0, 1, 0, 4)
    with pytest.raises(ValueError):
        enc.chunk(0, 1, 5, 6)


# --------------------------------------------------------------------------- (f) decode


def test_decode_ties_go_to_lowest_index_and_are_counted():
    counts = np.array([[1, 3, 3], [5, 0, 0], [0, 0, 0], [2, 1, 2], [0, 4, 1]])
    pred, ties = simulate.decode(counts)
    np.testing.assert_array_equal(pred, [1, 0, 0, 0, 1])
    assert ties == 3
    pred, ties = simulate.decode(np.array([[0, 2, 1, 2], [7, 1, 1, 1]]))
    np.testing.assert_array_equal(pred, [1, 0])
    assert ties == 1


# --------------------------------------------------------------------------- (g) checkpoints


def test_checkpoint_counts_equal_separate_shorter_runs():
    rng = np.random.default_rng(16)
    g, scales, _ = conv_net(rng)
    x = rng.uniform(-1, 1, (3, 2, 8, 8)).astype(np.float32)
    long = run_sim(g, scales, x, 128, checkpoints=[1, 64, 100], time_chunk=7, record=["out"])
    cum = long.records["out"].astype(np.int64).cumsum(axis=1)
    for cp in (1, 64, 100, 128):
        np.testing.assert_array_equal(long.counts[cp], cum[:, cp - 1])
    short = run_sim(g, scales, x, 64, time_chunk=64)
    np.testing.assert_array_equal(long.counts[64], short.counts[64])
    assert long.counts[64].sum() > 0 and (long.counts[128] > long.counts[64]).any()


def test_checkpoint_out_of_range_is_refused():
    g, scales, _ = dense_net(np.random.default_rng(0))
    x = np.zeros((1, 12), np.float32)
    with pytest.raises(ValueError):
        run_sim(g, scales, x, 10, checkpoints=[11])
    with pytest.raises(ValueError):
        run_sim(g, scales, x, 10, checkpoints=[0])
