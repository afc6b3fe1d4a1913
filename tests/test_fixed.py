"""The bit-accurate fixed-point simulator against a plain numpy integer implementation of
Lava's fixed_pt LIF (lava/proc/lif/models.py:145-192, written here with NumPy's own int32
registers as Lava does, not with the simulator's float64 remainders), spike for spike."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from snn2hw.snn.encoders import make_encoder
from snn2hw.quantize.fixed import prepare_fixed, saturation
from snn2hw.quantize.qnet import IntSynapse, QuantizedNetwork, QuantLayer
from snn2hw.snn.simulate import simulate

T = 40
HALF = 1 << 23
V_MAX = HALF - 1
CLIP_NEURON = 5     # layer "a": bias drives it down to the clip
WRAP_NEURON = 5     # layer "b": a << 6 leaves the 24-bit range and wraps


def sparse_ints(rng, shape, density, low=-256, high=256) -> sp.csr_matrix:
    dense = rng.integers(low, high, size=shape) * (rng.random(shape) < density)
    return sp.csr_matrix(dense.astype(np.int32))


def hand_built() -> QuantizedNetwork:
    rng = np.random.default_rng(7)
    conv = IntSynapse("input", 1, (1, 8, 8), (3, 4, 4), "conv",
                      weight=rng.integers(-256, 256, size=(3, 1, 3, 3)).astype(np.int32),
                      padding=(1, 1, 1, 1), pool=(2, 2))
    mant = rng.integers(-20, 21, size=48).astype(np.int32)
    mant[CLIP_NEURON] = -4095
    a = QuantLayer("a", (3, 4, 4), 1, [conv], 150, mant, bias_exp=7)
    from_a = IntSynapse("a", 1, (3, 4, 4), (6,), "matrix", csr=sparse_ints(rng, (6, 48), 0.5))
    skip = sparse_ints(rng, (6, 64), 0.3).toarray()
    skip[WRAP_NEURON] = 40000  # |a| * 64 >= 2**23 once a few input spikes agree in sign
    lag2 = IntSynapse("input", 2, (1, 8, 8), (6,), "matrix", csr=sp.csr_matrix(skip))
    b = QuantLayer("b", (6,), 2, [from_a, lag2], 400, None, is_output=True)
    return QuantizedNetwork("input", (1, 8, 8), 1.0, [a, b], "hand")


def conv_pooled_reference(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Sum-pool 2x2, zero-pad 1, 3x3 convolution, stride 1, in int64: (N, 1, 8, 8) ->
    (N, C_out * 16)."""
    n = len(x)
    pooled = x.reshape(n, 1, 4, 2, 4, 2).sum(axis=(3, 5))
    padded = np.zeros((n, 1, 6, 6), dtype=np.int64)
    padded[:, :, 1:5, 1:5] = pooled
    out = np.zeros((n, w.shape[0], 4, 4), dtype=np.int64)
    for o in range(w.shape[0]):
        for i in range(4):
            for j in range(4):
                out[:, o, i, j] = (padded[:, 0, i:i + 3, j:j + 3] * w[o, 0]).sum(axis=(1, 2))
    return out.reshape(n, -1)


def apply_reference(syn: IntSynapse, s: np.ndarray) -> np.ndarray:
    if syn.kind == "conv":
        return conv_pooled_reference(s.reshape(len(s), *syn.in_shape),
                                     syn.weight.astype(np.int64))
    return s @ syn.csr.toarray().astype(np.int64).T


def lava_u(a: np.ndarray) -> np.ndarray:
    """Lava's u for du = 4095 (lif/models.py:149-171): int32 a << 6, then one wrap."""
    x = np.left_shift(a.astype(np.int32), 6)          # int32, as Lava's a_in
    x = np.where(x > HALF, x - 2 * HALF, x)           # lines 161-165
    return np.where(x <= -HALF, x + 2 * HALF, x)      # lines 166-170 (x > HALF excluded)


def reference(qnet: QuantizedNetwork, s_in: np.ndarray):
    """Every layer's spikes (N, T, size), clipped neuron-steps, wrapped neuron-steps and
    neuron-steps where Lava's one-time wrap differs from a modulo-2**24 wrap."""
    n, steps = s_in.shape[:2]
    spikes = {qnet.input: s_in.reshape(n, steps, -1).astype(np.int64)}
    saturated, wrapped, not_modulo = {}, {}, {}
    for la in qnet.layers:
        v = np.zeros((n, la.size), dtype=np.int32)
        bias = np.zeros(la.size, np.int32) if la.bias_mant is None else np.left_shift(
            la.bias_mant.astype(np.int32), la.bias_exp)
        thr = np.int32(la.threshold << qnet.threshold_shift)
        out = np.zeros((n, steps, la.size), dtype=np.int64)
        saturated[la.name] = wrapped[la.name] = not_modulo[la.name] = 0
        for t in range(la.depth, steps):  # idle before: nothing can have arrived yet
            a = np.zeros((n, la.size), dtype=np.int64)
            for syn in la.synapses:
                if t - syn.lag >= 0:
                    a += apply_reference(syn, spikes[syn.source][:, t - syn.lag])
            u = lava_u(a)
            wrapped[la.name] += int((u != a * 64).sum())
            not_modulo[la.name] += int(((a * 64 > 3 * HALF) | (a * 64 <= -3 * HALF)
                                        | (a * 64 == HALF)).sum())
            total = v + u.astype(np.int32) + bias             # int32 sum, lines 185-186
            saturated[la.name] += int((np.abs(total) > V_MAX).sum())
            v = np.clip(total, -V_MAX, V_MAX).astype(np.int32)
            fired = v > thr
            if qnet.reset == "subtract":
                v[fired] -= thr
            else:
                v[fired] = 0
            out[:, t] = fired
        spikes[la.name] = out
    return spikes, saturated, wrapped, not_modulo


@pytest.fixture(scope="module")
def runs():
    qnet = hand_built()
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, size=(5, 1, 8, 8)).astype(np.float32)
    s_in = make_encoder("poisson", x, input_scale=1.0, seed=3, stream=1).full(0, len(x), T)
    ref, sat, wrapped, not_modulo = reference(qnet, s_in)
    prep = prepare_fixed(qnet)
    res = simulate(prep, make_encoder("poisson", x, input_scale=1.0, seed=3, stream=1), T,
                   record=["input", "a", "b"],
                   batch_size=2, time_chunk=7)
    return qnet, s_in, ref, sat, (wrapped, not_modulo), prep, res


def test_reference_case_exercises_every_rule(runs):
    _, s_in, ref, sat, (wrapped, not_modulo), _, _ = runs
    assert set(np.unique(s_in)) == {-1, 0, 1}
    for name in ("a", "b"):
        rate = ref[name].mean()
        assert 0.02 < rate < 0.9, (name, rate)
    assert sat["a"] > 0 and wrapped["b"] > 0
    assert not_modulo["b"] > 0  # where a modulo-2**24 wrap would differ from Lava's
    assert not ref["a"][:, :, CLIP_NEURON].any()  # held at the negative clip
    assert not ref["a"][:, 0].any() and not ref["b"][:, :2].any()  # idle steps


def test_fixed_simulator_matches_integer_reference_spike_for_spike(runs):
    _, s_in, ref, _, _, _, res = runs
    assert np.array_equal(res.records["input"], s_in.reshape(len(s_in), T, -1))
    for name in ("a", "b"):
        got = res.records[name].astype(np.int64)
        mismatch = np.argwhere(got != ref[name])
        assert len(mismatch) == 0, f"layer {name}: first mismatch (sample, step, neuron) " \
                                   f"{mismatch[0].tolist()}"
    assert np.array_equal(res.counts[T], ref["b"].sum(axis=1))


def test_fixed_simulator_counts_clipped_steps_like_the_reference(runs):
    _, _, _, sat, _, prep, _ = runs
    assert saturation(prep) == sat
    assert sat["a"] > 0


def test_time_chunking_and_batching_do_not_change_spikes(runs):
    qnet, _, ref, *_ = runs
    x = np.random.default_rng(11).uniform(-1, 1, size=(5, 1, 8, 8)).astype(np.float32)
    res = simulate(prepare_fixed(qnet), make_encoder("poisson", x, input_scale=1.0, seed=3,
                                                     stream=1), T, record=["a", "b"])
    for name in ("a", "b"):
        assert np.array_equal(res.records[name], ref[name])


def test_reset_by_subtraction_matches_integer_reference():
    qnet = hand_built()
    qnet.reset = "subtract"
    x = np.random.default_rng(12).uniform(-1, 1, size=(4, 1, 8, 8)).astype(np.float32)
    ref, *_ = reference(qnet, make_encoder("poisson", x, input_scale=1.0, seed=3,
                                           stream=1).full(0, len(x), T))
    res = simulate(prepare_fixed(qnet), make_encoder("poisson", x, input_scale=1.0, seed=3,
                                                     stream=1), T, record=["a", "b"],
                   batch_size=3, time_chunk=9)
    qnet.reset = "zero"
    zero, *_ = reference(qnet, make_encoder("poisson", x, input_scale=1.0, seed=3,
                                            stream=1).full(0, len(x), T))
    assert not np.array_equal(zero["a"], ref["a"])  # the reset mode matters here
    for name in ("a", "b"):
        assert np.array_equal(res.records[name].astype(np.int64), ref[name]), name
