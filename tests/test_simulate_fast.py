"""The simulator's faster forms give the same numbers as independent plain models.

- Float: a network whose weights, biases and scales are multiples of 1/16 with small sums,
  so every current and potential is exact in float32 in any summation order; the float32
  simulator (in-place spikes, one-op resets, strided pooling) must then equal the plain
  float64 step-by-step loop of tests/test_simulate.py exactly, for both resets.
- Fixed point: the float32 step loop (with and without the per-step clip test) and the
  general float64 path against the int32 model of tests/test_fixed.py, on the network
  built there to clip and wrap.
- Pooling and resets against torch's own ``avg_pool2d`` and a boolean mask.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snn2hw import ir, snn
from snn2hw.importer import graph_from_nodes as build
from snn2hw.quantize.fixed import prepare_fixed, saturation
from snn2hw.snn import fastops, simulate
from snn2hw.snn.encoders import make_encoder
from snn2hw.snn.neurons import get

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_fixed import T as FIXED_T  # noqa: E402  (the int32 model of Lava's LIF)
from test_fixed import hand_built, reference  # noqa: E402
from test_simulate import input_spikes, naive_run, np_avgpool, np_conv, past  # noqa: E402


def dyadic(rng, *shape, top=8):
    """Multiples of 1/16 in [-top/16, top/16]."""
    return rng.integers(-top, top + 1, size=shape) / 16.0


def dyadic_net(rng):
    """conv -> IF -> avgpool (first op after a spiking layer) -> conv -> IF -> dense."""
    c1, b1 = dyadic(rng, 4, 1, 3, 3), dyadic(rng, 4, top=2)
    c2, b2 = dyadic(rng, 6, 4, 3, 3, top=4), dyadic(rng, 6, top=1)
    dw = dyadic(rng, 3, 6 * 4 * 4, top=4)
    g = build([ir.Input("input", [], (1, 8, 8)),
               ir.Conv("c1", ["input"], weight=c1, bias=b1, padding=(1, 1, 1, 1)),
               ir.ReLU("r1", ["c1"]),
               ir.AvgPool("p1", ["r1"], kernel=(2, 2), stride=(2, 2)),
               ir.Conv("c2", ["p1"], weight=c2, bias=b2, padding=(1, 1, 1, 1)),
               ir.ReLU("r2", ["c2"]),
               ir.Flatten("f", ["r2"]),
               ir.Dense("out", ["f"], weight=dw)])
    scales = {"input": 1.0, "r1": 1.0, "r2": 1.0, "out": 1.0}

    def c1_current(s, t):
        return np_conv(past(s["input"], t, 1), c1, pad=(1, 1, 1, 1)) + b1[None, :, None, None]

    def c2_current(s, t):
        pooled = np_avgpool(past(s["r1"], t, 1), (2, 2), (2, 2))
        return np_conv(pooled, c2, pad=(1, 1, 1, 1)) + b2[None, :, None, None]

    def out_current(s, t):
        r2 = past(s["r2"], t, 1)
        return r2.reshape(len(r2), -1) @ dw.T

    layers = [("r1", (4, 8, 8), 1, c1_current), ("r2", (6, 4, 4), 2, c2_current),
              ("out", (3,), 3, out_current)]
    return g, scales, layers


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_float32_simulator_equals_plain_loop_where_sums_are_exact(reset):
    rng = np.random.default_rng(21)
    g, scales, layers = dyadic_net(rng)
    x = rng.uniform(-1, 1, (5, 1, 8, 8)).astype(np.float32)
    steps = 30
    prep = simulate.prepare_float(snn.lower(g), scales, reset=reset)   # float32
    assert prep.dtype == torch.float32
    enc = make_encoder("poisson", x, input_scale=1.0, seed=3, stream=1)
    res = simulate.simulate(prep, enc, steps, record=["r1", "r2", "out"], batch_size=3,
                            time_chunk=4)
    want = naive_run(layers, input_spikes(x, 1.0, steps), steps, reset)
    for name in ("r1", "r2", "out"):
        ref = want[name].reshape(len(x), steps, -1)
        assert 0 < ref.mean() < 1, f"{name} never or always fires: the test proves nothing"
        np.testing.assert_array_equal(res.records[name], ref, err_msg=name)


def test_float_pooling_after_spiking_layer_uses_the_fast_form_with_same_spikes():
    """The prepared float network pools spikes with strided sums; disabling that (the
    generic avg_pool2d) gives bit-identical currents and spikes on random real weights."""
    rng = np.random.default_rng(5)
    g, scales, _ = dyadic_net(rng)
    for node in g.nodes.values():   # real-valued weights: rounding now depends on order
        if getattr(node, "weight", None) is not None:
            node.weight = node.weight + rng.normal(0, 0.01, node.weight.shape)
    net = snn.lower(g)
    fast = simulate.prepare_float(net, scales)
    generic = simulate.prepare_float(net, scales)
    layer = next(la for la in net.layers if la.name == "r2")
    generic.layers[1] = simulate.prepare_float_layer(layer, scales, generic.device,
                                                     generic.dtype)   # no spiking sources
    spikes = (torch.rand(40, 4, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.3)
    a = fast.layers[1].synapses[0].apply(spikes.float())
    b = generic.layers[1].synapses[0].apply(spikes.float())
    assert torch.equal(a, b)
    x = rng.uniform(-1, 1, (4, 1, 8, 8)).astype(np.float32)
    runs = [simulate.simulate(p, make_encoder("poisson", x, input_scale=1.0, seed=3, stream=1),
                              24, record=["r1", "r2", "out"]) for p in (fast, generic)]
    for name in ("r1", "r2", "out"):
        assert np.array_equal(runs[0].records[name], runs[1].records[name]), name


@pytest.mark.parametrize("kernel", [(2, 2), (4, 4), (2, 1), (1, 2)])
@pytest.mark.parametrize("values", [(0, 1), (-1, 0, 1), (0, 1, 2, 3, 7)])
def test_sum_pool_equals_avg_pool2d(kernel, values):
    gen = torch.Generator().manual_seed(1)
    choice = torch.tensor(values, dtype=torch.float32)
    x = choice[torch.randint(len(values), (6, 3, 9, 10), generator=gen)]  # odd: floor crop
    want = F.avg_pool2d(x, kernel, kernel)
    node = ir.AvgPool("p", ["x"], kernel=kernel, stride=kernel)
    assert fastops.exact_pool(node)
    assert torch.equal(fastops.pool_spikes(node, x), want)
    assert torch.equal(fastops.sum_pool(x, kernel), F.avg_pool2d(x, kernel, kernel,
                                                                 divisor_override=1))


@pytest.mark.parametrize("node", [
    ir.AvgPool("p", ["x"], kernel=(3, 3), stride=(3, 3)),          # divides by 9
    ir.AvgPool("p", ["x"], kernel=(2, 2), stride=(1, 1)),          # overlapping windows
    ir.AvgPool("p", ["x"], kernel=(2, 2), stride=(2, 2), padding=(1, 1, 1, 1)),
    ir.AvgPool("p", ["x"], kernel=(2, 2), stride=(2, 2), ceil_mode=True),
], ids=["3x3", "stride1", "padded", "ceil"])
def test_pools_the_fast_form_cannot_reproduce_are_left_to_avg_pool2d(node):
    assert not fastops.exact_pool(node)


@pytest.mark.parametrize("kind", ["zero", "subtract"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reset_on_spike_numbers_equals_reset_on_a_mask(kind, dtype):
    gen = torch.Generator().manual_seed(2)
    v = (torch.rand(500, generator=gen, dtype=torch.float64) * 4 - 1).to(dtype)
    threshold = 1.25
    fired = v > threshold
    want = torch.where(fired, torch.zeros_like(v) if kind == "zero" else v - threshold, v)
    got = v.clone()
    get(kind).reset_spikes(got, fired.to(torch.float32), threshold)
    assert fired.any() and (~fired).any()
    assert torch.equal(got, want)


# --------------------------------------------------------------------------- fixed point


def _fixed_run(qnet, general: bool, time_chunk: int):
    prep = prepare_fixed(qnet)
    for la in prep.layers:
        if general:
            la.neuron.arithmetic._float32 = False   # every chunk on the float64 path
    x = np.random.default_rng(11).uniform(-1, 1, size=(5, 1, 8, 8)).astype(np.float32)
    res = simulate.simulate(prep, make_encoder("poisson", x, input_scale=1.0, seed=3,
                                               stream=1), FIXED_T, record=["a", "b"],
                            batch_size=2, time_chunk=time_chunk)
    return prep, res


@pytest.fixture(scope="module")
def fixed_reference():
    qnet = hand_built()
    x = np.random.default_rng(11).uniform(-1, 1, size=(5, 1, 8, 8)).astype(np.float32)
    s_in = make_encoder("poisson", x, input_scale=1.0, seed=3, stream=1).full(0, len(x),
                                                                               FIXED_T)
    ref, sat, *_ = reference(qnet, s_in)
    return qnet, ref, sat


@pytest.mark.parametrize("general", [False, True], ids=["float32-loop", "float64-path"])
@pytest.mark.parametrize("time_chunk", [1, 7, FIXED_T])
def test_fixed_paths_match_the_int32_model(fixed_reference, general, time_chunk):
    qnet, ref, sat = fixed_reference
    prep, res = _fixed_run(qnet, general, time_chunk)
    for name in ("a", "b"):
        assert np.array_equal(res.records[name].astype(np.int64), ref[name]), name
    assert saturation(prep) == sat and sat["a"] > 0


def test_fixed_fast_path_holds_v_in_float32_where_exact(fixed_reference):
    """Layer "a" (clips, never wraps) runs the float32 loop; layer "b" (wraps) cannot
    hold its u in float32 on every chunk but its state is float32 (exact below 2**24)."""
    qnet, *_ = fixed_reference
    prep, _ = _fixed_run(qnet, False, 7)
    arith = prep.layers[0].neuron.arithmetic
    assert arith._float32 and arith._work == torch.float32
    assert prep.layers[0].neuron.initial((1, 48), "cpu", torch.float32).dtype == torch.float32
