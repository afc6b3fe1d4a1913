"""The membrane read-out in fixed point: the output layer fires and resets by subtraction,
and the read-out count * (thr << 6) + v is the accumulated potential even where that
passes the 24-bit state. Expected values come from integer models written here (the exact
sum of the drive; a per-step model with the clip) and from tests/lava_model.py (the
independent model of the Lava graph), and, in the ``lava`` test, from a real Lava run."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lava_model  # noqa: E402

from snn2hw import ir, snn  # noqa: E402
from snn2hw.hardware import profiles  # noqa: E402
from snn2hw.importer import graph_from_nodes as build  # noqa: E402
from snn2hw.quantize import quantize  # noqa: E402
from snn2hw.quantize.fixed import input_encoder, prepare_fixed, saturation  # noqa: E402
from snn2hw.quantize.qnet import IntSynapse, QuantizedNetwork, QuantLayer  # noqa: E402
from snn2hw.quantize.verify import verify_network  # noqa: E402
from snn2hw.snn.options import Conversion  # noqa: E402
from snn2hw.snn.simulate import simulate  # noqa: E402

SIM = profiles.load("loihi_sim")
V_MAX = (1 << 23) - 1
N_IN = 16
MEMBRANE = Conversion(readout="membrane")


def matrix(source: str, in_size: int, dense: np.ndarray) -> IntSynapse:
    return IntSynapse(source, 1, (in_size,), (dense.shape[0],), "matrix",
                      csr=sp.csr_matrix(dense.astype(np.int32)))


def output_weights(down: int) -> np.ndarray:
    """Row 0: all +255 (one step of +1 spikes adds 16 * 255 << 6 = 261,120, past 2**23 in
    33 steps); row 1: mixed; row 2: all -``down`` (drives v down)."""
    w = np.zeros((3, N_IN), dtype=np.int64)
    w[0] = 255
    w[1, :8], w[1, 8:] = 255, -131
    w[2] = -down
    return w


def one_layer_net(down: int, window: str = "fill", threshold: int = 5000) -> QuantizedNetwork:
    """input (16) -> out (3), membrane read-out, network reset to zero; threshold 5000 << 6
    = 320,000 >= the largest one-step rise (261,120 + bias 3 << 6)."""
    out = QuantLayer("out", (3,), 1, [matrix("input", N_IN, output_weights(down))],
                     threshold, np.array([3, -1, 0], dtype=np.int32), 6, is_output=True)
    return QuantizedNetwork("input", (N_IN,), 1.0, [out], "loihi_sim", reset="zero",
                            conversion=Conversion(readout="membrane", window=window))


def inputs() -> np.ndarray:
    """Sample 0: every input +1 (a spike every step); sample 1: random rates and signs."""
    rng = np.random.default_rng(7)
    return np.stack([np.ones(N_IN), rng.uniform(-1, 1, N_IN)]).astype(np.float32)


def run(qnet: QuantizedNetwork, timesteps: int):
    """(result, the input spikes (N, T, 16) it ran on)."""
    x = inputs()
    prep = prepare_fixed(qnet)
    res = simulate(prep, input_encoder(qnet, x, 3, 1), timesteps, record=[qnet.input])
    return res, res.records[qnet.input].astype(np.int64), prep


def integrated_steps(window: str, timesteps: int) -> slice:
    """The input steps the output layer (depth 1, lag 1) integrates in its window: it is
    idle at step 0 and gets step t - 1's input at step t; ``fill`` ends at step T - 1,
    ``pipelined`` runs steps 1 .. T."""
    return slice(0, timesteps - 1) if window == "fill" else slice(0, timesteps)


def exact_potential(qnet: QuantizedNetwork, spikes: np.ndarray, steps: slice) -> np.ndarray:
    """The accumulated potential: every step's (W @ s) << 6 + (bias_mant << bias_exp)."""
    layer = qnet.output
    w = layer.synapses[0].csr.toarray().astype(np.int64)
    bias = layer.bias_mant.astype(np.int64) << layer.bias_exp
    s = spikes[:, steps]
    return (np.einsum("ntj,cj->nc", s, w) << 6) + bias * s.shape[1]


def clipped_model(qnet: QuantizedNetwork, spikes: np.ndarray, steps: slice):
    """Per step: v = clip(v + drive, +-V_MAX), spike if v > thr << 6, v -= thr << 6.
    Returns (count * (thr << 6) + v, whether the true running sum ever left the range)."""
    layer = qnet.output
    w = layer.synapses[0].csr.toarray().astype(np.int64)
    bias = layer.bias_mant.astype(np.int64) << layer.bias_exp
    thr = int(layer.threshold) << 6
    n = spikes.shape[0]
    v, count, true = (np.zeros((n, 3), np.int64) for _ in range(3))
    left = np.zeros((n, 3), bool)
    for t in range(*steps.indices(spikes.shape[1])):
        drive = ((spikes[:, t] @ w.T) << 6) + bias
        true += drive
        left |= true < -V_MAX
        v = np.clip(v + drive, -V_MAX, V_MAX)
        fired = v > thr
        count += fired
        v -= fired * thr
    return count * thr + v, left


@pytest.mark.parametrize("window", ["fill", "pipelined"])
def test_readout_is_the_exact_potential_past_the_24_bit_state(window):
    qnet = one_layer_net(down=100, window=window)
    res, spikes, prep = run(qnet, 48)
    want = exact_potential(qnet, spikes, integrated_steps(window, 48))
    assert want[0, 0] > 1 << 23                    # no 24-bit v can hold it
    assert np.array_equal(res.scores(48), want)
    assert not np.array_equal(res.potentials[48], want)   # v alone (the old read-out) is not
    assert res.counts[48][0, 0] > 0 and saturation(prep)["out"] == 0


def test_readout_at_every_checkpoint_is_exact():
    qnet = one_layer_net(down=100)
    x = inputs()
    res = simulate(prepare_fixed(qnet), input_encoder(qnet, x, 3, 1), 40,
                   checkpoints=range(1, 41), record=["input"])
    spikes = res.records["input"].astype(np.int64)
    for t in range(1, 41):
        assert np.array_equal(res.scores(t), exact_potential(qnet, spikes, slice(0, t - 1)))


def test_a_potential_below_the_lower_clip_reads_above_the_true_value():
    """Row 2 falls past -(2**23 - 1): the clip only raises v, so its read-out lies above
    the true potential; every other read-out stays exact; the simulator counts the clip."""
    qnet = one_layer_net(down=200)
    res, spikes, prep = run(qnet, 128)
    steps = integrated_steps("fill", 128)
    want, left = clipped_model(qnet, spikes, steps)
    exact = exact_potential(qnet, spikes, steps)
    assert np.array_equal(res.scores(128), want)
    assert left[0, 2] and not left[:, :2].any()
    assert np.array_equal(want[~left], exact[~left])
    assert (want[left] > exact[left]).all()
    assert saturation(prep)["out"] > 0


def test_verify_certifies_the_readout_and_refuses_a_low_threshold():
    ok = verify_network(one_layer_net(down=100), SIM.fixed, "loihi_sim")
    assert ok.ok and ok.readout["exact"]
    assert ok.readout["rise"] == 16 * 255 * 64 + (3 << 6)
    # 4080 << 6 = 261,120 > 4000 << 6: v could climb to its clip
    low = verify_network(one_layer_net(down=100, threshold=4000), SIM.fixed, "loihi_sim")
    assert not low.ok and "membrane read-out" in low.problems[0]
    assert all(b.holds for b in low.budgets)   # only the read-out's guarantee fails


def dense_net(seed: int = 2):
    rng = np.random.default_rng(seed)
    g = build([ir.Input("input", [], (N_IN,)),
               ir.Dense("out", ["input"], weight=rng.uniform(-0.4, 0.6, (5, N_IN)),
                        bias=rng.uniform(-0.1, 0.1, 5))])
    return snn.lower(g), {"input": 1.0, "out": 1.0}


def readout_limits(layer: QuantLayer) -> tuple[int, int, int]:
    """(rise, fall, thr << 6) of a one-synapse output layer on signed input spikes."""
    w = np.abs(layer.synapses[0].matrix().toarray().astype(np.int64)).sum(axis=1) << 6
    b = layer.bias_mant.astype(np.int64) << layer.bias_exp
    return (int((w + np.maximum(b, 0)).max()), int((w + np.maximum(-b, 0)).max()),
            int(layer.threshold) << 6)


def test_quantiser_gives_the_output_the_largest_threshold_that_keeps_the_guarantee():
    net, scales = dense_net()
    out = quantize(net, scales, SIM, conversion=MEMBRANE).output
    rise, fall, thr = readout_limits(out)
    assert rise <= thr and thr + max(rise, fall) <= V_MAX
    assert thr + 64 + max(rise, fall) > V_MAX or out.threshold == SIM.fixed.threshold_max
    spikes = quantize(net, scales, SIM).output
    assert out.report["scale"] == spikes.report["scale"]    # same weights as ever


def test_quantiser_lowers_the_output_scale_when_the_threshold_cannot_cover_a_step():
    small = dataclasses.replace(SIM, fixed=dataclasses.replace(SIM.fixed, threshold_bits=8))
    net, scales = dense_net()
    usual = quantize(net, scales, small).output
    out = quantize(net, scales, small, conversion=MEMBRANE).output
    rise, fall, thr = readout_limits(out)
    assert readout_limits(usual)[0] > 255 << 6                 # the usual scale cannot
    assert rise <= thr and thr + max(rise, fall) <= V_MAX
    assert out.report["readout_scale_lowered_from"] == usual.report["scale"]
    assert out.report["scale"] < usual.report["scale"]


def test_a_profile_without_reset_by_subtraction_cannot_read_the_membrane():
    from snn2hw.errors import HardwareLimitError

    zero_only = dataclasses.replace(SIM, resets=("zero",))
    net, scales = dense_net()
    with pytest.raises(HardwareLimitError, match="reset 'subtract'"):
        quantize(net, scales, zero_only, conversion=MEMBRANE)


def two_layer_net() -> QuantizedNetwork:
    """input (16) -> h (32, threshold 40, the network's reset to zero) -> out (3, membrane
    read-out, resets by subtraction): h fires most steps, out passes 2**23 in ~20 steps."""
    rng = np.random.default_rng(11)
    wh = rng.integers(-20, 60, size=(32, N_IN))
    h = QuantLayer("h", (32,), 1, [matrix("input", N_IN, wh)], 40, None)
    wo = np.stack([np.full(32, 255), rng.integers(-256, 256, 32), np.full(32, -90)])
    out = QuantLayer("out", (3,), 2, [matrix("h", 32, wo)], 12000,
                     np.array([0, 40, -7], dtype=np.int32), 5, is_output=True)
    return QuantizedNetwork("input", (N_IN,), 1.0, [h, out], "loihi_sim", reset="zero",
                            conversion=Conversion(readout="membrane"))


def reference_and_model(qnet: QuantizedNetwork, timesteps: int):
    x = inputs()
    values = input_encoder(qnet, x, 3, 1).full(0, len(x), timesteps)
    values = values.reshape(len(x), timesteps, -1)
    res = simulate(prepare_fixed(qnet), input_encoder(qnet, x, 3, 1), timesteps,
                   record=[la.name for la in qnet.layers])
    pots: dict = {}
    got = lava_model.run_model(qnet, values, potentials=pots)
    thr = int(qnet.output.threshold) << 6
    model_readout = got["out"].sum(axis=1) * thr + pots["out"][:, -1]
    return values, res, got, model_readout


def test_two_layer_readout_matches_the_independent_lava_model():
    qnet = two_layer_net()
    assert verify_network(qnet, SIM.fixed, "loihi_sim").ok
    _, res, got, model_readout = reference_and_model(qnet, 40)
    for name in ("h", "out"):
        assert np.array_equal(got[name], res.records[name]), name
    assert np.array_equal(model_readout, res.scores(40))
    assert model_readout.max() > 1 << 23 and res.counts[40].max() > 0


@pytest.mark.lava
def test_lava_reads_the_same_accumulated_potential():
    from snn2hw.exporters.lava.watchdog import run_lava

    qnet = two_layer_net()
    values, res, got, model_readout = reference_and_model(qnet, 40)
    lava = run_lava(qnet, values, 40, profile=SIM)
    for name in ("h", "out"):
        assert np.array_equal(lava.spikes[name], res.records[name]), name
    thr = int(qnet.output.threshold) << 6
    lava_readout = lava.spikes["out"].sum(axis=1) * thr + lava.potentials["out"][:, -1]
    assert np.array_equal(lava_readout, res.scores(40))
    assert np.array_equal(lava_readout, model_readout)
    assert lava_readout.max() > 1 << 23
