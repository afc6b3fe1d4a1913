"""Three-way agreement on integer networks that drive Lava's fixed-point LIF to its edges:
the reference simulator (snn2hw.quantize.fixed), the independent model of tests/lava_model.py
(written from Lava's source, sharing no code with snn2hw) and, in the ``lava`` tests, a
real Lava run. Edges: near-limit weights, large fan-in (u at and beyond the wrap, and
a << 6 beyond int32), bias mantissa +-max with the largest exponent, v at its clip, the
threshold at its largest value, v exactly at the threshold, both reset modes, delays."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lava_model  # noqa: E402

from snn2hw.snn.encoders import make_encoder  # noqa: E402
from snn2hw.quantize.fixed import prepare_fixed  # noqa: E402
from snn2hw.quantize.qnet import IntSynapse, QuantizedNetwork, QuantLayer  # noqa: E402
from snn2hw.snn.simulate import simulate  # noqa: E402

QUICK = settings(max_examples=40, derandomize=True, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LAVA = settings(QUICK, max_examples=3)
HALF = 1 << 23
VTH_MAX = (1 << 17) - 1


def matrix(source: str, lag: int, in_size: int, dense: np.ndarray) -> IntSynapse:
    return IntSynapse(source, lag, (in_size,), (dense.shape[0],), "matrix",
                      csr=sp.csr_matrix(dense.astype(np.int32)))


def reference_spikes(qnet: QuantizedNetwork, x: np.ndarray, timesteps: int,
                     du: int = 4095, dv: int = 0, time_chunk: int | None = None):
    """(input spikes (N, T, in), {layer: reference spikes (N, T, size)})."""
    enc = make_encoder("poisson", x, input_scale=1.0, seed=3, stream=1)
    spikes = enc.full(0, len(x), timesteps).reshape(len(x), timesteps, -1)
    names = [la.name for la in qnet.layers]
    res = simulate(prepare_fixed(qnet, du=du, dv=dv), make_encoder("poisson", x, input_scale=1.0,
                                                                   seed=3, stream=1),
                   timesteps, record=names, time_chunk=time_chunk)
    return spikes, {k: v.astype(np.int8) for k, v in res.records.items()}


def assert_same(got: dict, want: dict, what: str) -> None:
    for name, w in want.items():
        diff = np.argwhere(got[name] != w)
        assert diff.size == 0, f"{what}, layer {name}: {len(diff)} spikes differ, first " \
                               f"(sample, step, neuron) {diff[0].tolist()}"


# --------------------------------------------------------------------------------------
# A hand-made network at the edges (deterministic input: |x| = 1 spikes every step)
# --------------------------------------------------------------------------------------

FAN_IN = 1600


def edge_net(reset: str = "zero") -> QuantizedNetwork:
    """Layer "a" (threshold 2**17 - 1):
      0: 512 weights -256: a = +-2**17, a << 6 = +-2**23 (Lava's u range is (-2**23, 2**23])
      1: 1600 weights -256: |a << 6| > 3 * 2**23, outside the range even after the wrap
      2: bias 4095 << 7 and small weights: climbs to the upper clip and spikes there
      3: bias -4096 << 7: held at the lower clip
      4: near-limit mixed weights over the whole fan-in
    Layer "b" (threshold 100) from "a" and, delayed, from the input; v lands exactly on
    the threshold for neuron 0. Layer "out" from "b"."""
    rng = np.random.default_rng(4)
    wa = np.zeros((5, FAN_IN), dtype=np.int64)
    wa[0, :512] = -256
    wa[1, :] = -256
    wa[2, :4] = 3
    wa[4] = rng.choice([-256, -255, 254, 255, 0], size=FAN_IN)
    bias_a = np.array([0, 0, 4095, -4096, 0], dtype=np.int32)
    a = QuantLayer("a", (5,), 1, [matrix("input", 1, FAN_IN, wa)], VTH_MAX, bias_a, 7)
    wb = rng.integers(-40, 60, size=(6, 5))
    wb[0] = [100, 0, 0, 0, 0]
    skip = np.zeros((6, FAN_IN), dtype=np.int64)
    skip[1:, :64] = rng.integers(-3, 4, size=(5, 64))
    b = QuantLayer("b", (6,), 2, [matrix("a", 1, 5, wb), matrix("input", 2, FAN_IN, skip)],
                   100, rng.integers(-20, 20, size=6).astype(np.int32), 6)
    out = QuantLayer("out", (3,), 3, [matrix("b", 1, 6, rng.integers(-80, 120, size=(3, 6)))],
                     90, None, is_output=True)
    return QuantizedNetwork("input", (FAN_IN,), 1.0, [a, b, out], "edge", reset=reset)


def edge_input() -> np.ndarray:
    """Sample 0: every input -1 (a = +2**17 for neuron 0); sample 1: every input +1."""
    return np.stack([-np.ones(FAN_IN), np.ones(FAN_IN)]).astype(np.float32)


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_edge_network_reference_matches_the_independent_model(reset):
    qnet = edge_net(reset)
    spikes, ref = reference_spikes(qnet, edge_input(), 20)
    assert_same(lava_model.run_model(qnet, spikes), ref, "independent model")
    # Lava's one-time wrap, not a modulo: u = +2**23 for a << 6 = +-2**23 (a modulo wrap
    # gives -2**23), and a << 6 = 25,165,824 + 2**20 stays positive (modulo: negative).
    assert ref["a"][:, 1:, 0].all() and ref["a"][0, 1:, 1].all()
    assert not ref["a"][1, :, 1].any()
    assert not ref["a"][:, :, 3].any() and ref["a"][:, 1:, 2].any()


def test_input_beyond_int32_after_the_shift_wraps_like_lava():
    """a = 140,000 * 255: a << 6 leaves int32 (Lava shifts an int32 a_in)."""
    n_in = 140_000
    w = np.full((2, n_in), 255, dtype=np.int64)
    w[1, : n_in // 2] = -256
    layer = QuantLayer("a", (2,), 1, [matrix("input", 1, n_in, w)], 5, None, is_output=True)
    qnet = QuantizedNetwork("input", (n_in,), 1.0, [layer], "wide")
    x = np.stack([np.ones(n_in), -np.ones(n_in)]).astype(np.float32)
    spikes, ref = reference_spikes(qnet, x, 4)
    assert (int(w[0].sum()) << 6) >= 1 << 31
    assert_same(lava_model.run_model(qnet, spikes), ref, "independent model")


# --------------------------------------------------------------------------------------
# Random networks at the edges
# --------------------------------------------------------------------------------------

@st.composite
def edge_networks(draw):
    """input -> a -> b (+ delayed input -> b), weights small or at the limits, fan-in up
    to 2,100, bias mantissa and exponent anywhere in range (extremes likely), threshold
    small or maximal, either reset; input values in {-1, -0.5, 0, 0.5, 1}."""
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    n_in = draw(st.sampled_from([6, 30, 520, 2100]))
    sizes = (draw(st.integers(2, 8)), draw(st.integers(2, 6)))
    limit = draw(st.booleans())

    def weights(rows, cols, density):
        vals = (rng.choice([-256, -255, 255, 254], size=(rows, cols)) if limit
                else rng.integers(-60, 90, size=(rows, cols)))
        return vals * (rng.random((rows, cols)) < density)

    def bias(size):
        if not draw(st.booleans()):
            return None, 6
        mant = rng.choice([-4096, 4095, -1, 0, 7], size=size) if draw(st.booleans()) \
            else rng.integers(-4096, 4096, size=size)
        return mant.astype(np.int32), draw(st.sampled_from([0, 6, 7]))

    thr = [draw(st.sampled_from([1, 60, 2000, VTH_MAX])) for _ in range(2)]
    mant_a, exp_a = bias(sizes[0])
    a = QuantLayer("a", (sizes[0],), 1, [matrix("input", 1, n_in,
                                                weights(sizes[0], n_in, 0.7))],
                   thr[0], mant_a, exp_a)
    syn_b = [matrix("a", 1, sizes[0], weights(sizes[1], sizes[0], 0.8))]
    if draw(st.booleans()):
        syn_b.append(matrix("input", 2, n_in, weights(sizes[1], n_in, 0.3)))
    mant_b, exp_b = bias(sizes[1])
    b = QuantLayer("b", (sizes[1],), 2, syn_b, thr[1], mant_b, exp_b, is_output=True)
    reset = draw(st.sampled_from(["zero", "subtract"]))
    qnet = QuantizedNetwork("input", (n_in,), 1.0, [a, b], "edge", reset=reset)
    x = rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], size=(2, n_in)).astype(np.float32)
    if draw(st.booleans()):  # every input of a sample agrees: the largest one-step input
        x[0] = draw(st.sampled_from([-1.0, 1.0]))
    return qnet, x, draw(st.integers(4, 12))


@QUICK
@given(edge_networks())
def test_random_edge_network_reference_matches_the_independent_model(case):
    qnet, x, timesteps = case
    spikes, ref = reference_spikes(qnet, x, timesteps)
    assert_same(lava_model.run_model(qnet, spikes), ref, "independent model")


@QUICK
@given(edge_networks(), st.sampled_from([0, 1, 2048, 4000, 4095]),
       st.sampled_from([0, 1, 100, 4095]), st.sampled_from([None, 3]))
def test_leaky_neurons_match_the_independent_model(case, du, dv, time_chunk):
    """Lava's du/dv decay arithmetic (truncation toward zero, u carried over) in the
    reference, also across time chunks (the backend itself always runs du = 4095, dv = 0)."""
    qnet, x, timesteps = case
    spikes, ref = reference_spikes(qnet, x, timesteps, du, dv, time_chunk)
    assert_same(lava_model.run_model(qnet, spikes, du=du, dv=dv), ref, "independent model")


@QUICK
@given(st.integers(0, 2**16), st.sampled_from([0, 1, 7, 2048, 4000, 4095]),
       st.sampled_from([0, 1, 7, 100, 4095]), st.sampled_from(["zero", "subtract"]))
def test_neuron_state_matches_lavas_step_by_step(seed, du, dv, reset):
    """u and v after every step, not only the spikes: inputs up to +-2**18 weight units
    (beyond the wrap), bias at +-max << 7, threshold small or maximal."""
    import torch

    from snn2hw.quantize.fixed import FixedIFNeuron

    rng = np.random.default_rng(seed)
    n, steps = 24, 12
    a = rng.integers(-(1 << 18), 1 << 18, size=(steps, n)) // rng.choice([1, 64, 4096],
                                                                           size=(steps, n))
    bias = rng.choice([-4096, 4095, -3, 0, 5], size=n).astype(np.int32)
    thr = int(rng.choice([1, 3000, VTH_MAX]))
    model = lava_model.LifResetModel(n, du, dv, thr, bias, 7, steps + 5, 0,
                                     reset == "subtract")
    neuron = FixedIFNeuron(thr, bias.astype(np.int64) << 7, (n,), 24, 6, "cpu",
                           reset=reset, du=du, dv=dv)
    state = neuron.initial((1, n), "cpu", torch.float64)
    for t in range(steps):
        out = torch.zeros((1, 1, n), dtype=torch.bool)
        state = neuron.integrate(torch.as_tensor(a[t:t + 1, None], dtype=torch.float64),
                                 state, out)
        fired = model.step(t + 1, a[t].astype(np.int32))
        assert np.array_equal(state[0, 0].numpy(), model.u), f"u at step {t}"
        assert np.array_equal(state[1, 0].numpy(), model.v), f"v at step {t}"
        assert np.array_equal(out[0, 0].numpy(), fired), f"spikes at step {t}"


# --------------------------------------------------------------------------------------
# The same against a real Lava run (child process, watchdog)
# --------------------------------------------------------------------------------------

def three_way(qnet: QuantizedNetwork, x: np.ndarray, timesteps: int) -> dict:
    from snn2hw.hardware import profiles
    from snn2hw.exporters.lava.watchdog import run_lava

    spikes, ref = reference_spikes(qnet, x, timesteps)
    assert_same(lava_model.run_model(qnet, spikes), ref, "independent model")
    limits = profiles.load("loihi_sim").fixed
    lava = run_lava(qnet, spikes, timesteps, limits=limits)
    assert_same(lava.spikes, ref, "Lava")
    return ref


@pytest.mark.lava
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_edge_network_lava_reference_and_model_agree(reset):
    ref = three_way(edge_net(reset), edge_input(), 10)
    assert ref["a"][:, 1:, 0].all() and ref["a"][0, 1:, 1].all()  # the wrap corners


@pytest.mark.lava
@LAVA
@given(edge_networks())
def test_random_edge_network_lava_reference_and_model_agree(case):
    three_way(*case)


@st.composite
def conv_networks(draw):
    """input (C, H, W) -> conv (stride, asymmetric padding, dilation, groups, optional
    sum-pooling before it) -> matrix, with weights small or at the limits."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    groups = draw(st.sampled_from([1, 2]))
    c_in, c_out = 2 * draw(st.integers(1, 2)), 2 * draw(st.integers(1, 2))
    pool = draw(st.sampled_from([(1, 1), (2, 2), (2, 1)]))
    h, w = pool[0] * draw(st.integers(3, 5)), pool[1] * draw(st.integers(3, 5))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dil = (1, draw(st.integers(1, 2)))
    pad = tuple(draw(st.integers(0, 1)) for _ in range(4))   # top, left, bottom, right
    ho = (h // pool[0] + pad[0] + pad[2] - dil[0] * (k[0] - 1) - 1) // stride[0] + 1
    wo = (w // pool[1] + pad[1] + pad[3] - dil[1] * (k[1] - 1) - 1) // stride[1] + 1
    assume(ho >= 1 and wo >= 1)
    limit = draw(st.booleans())
    weight = (rng.choice([-256, 255, -255, 254, 0], size=(c_out, c_in // groups, *k)) if limit
              else rng.integers(-60, 90, size=(c_out, c_in // groups, *k)))
    conv = IntSynapse("input", 1, (c_in, h, w), (c_out, ho, wo), "conv",
                      weight=weight.astype(np.int32), stride=stride, padding=pad,
                      dilation=dil, groups=groups, pool=pool)
    a = QuantLayer("a", (c_out, ho, wo), 1, [conv], draw(st.sampled_from([40, 500])),
                   None)
    size = c_out * ho * wo
    b = QuantLayer("b", (3,), 2, [matrix("a", 1, size, rng.integers(-50, 80, size=(3, size)))],
                   60, None, is_output=True)
    qnet = QuantizedNetwork("input", (c_in, h, w), 1.0, [a, b], "conv",
                            reset=draw(st.sampled_from(["zero", "subtract"])))
    x = rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], size=(2, c_in, h, w)).astype(np.float32)
    return qnet, x, 8


@QUICK
@given(conv_networks())
def test_random_conv_network_reference_matches_the_independent_model(case):
    qnet, x, timesteps = case
    spikes, ref = reference_spikes(qnet, x, timesteps)
    assert_same(lava_model.run_model(qnet, spikes), ref, "independent model")
