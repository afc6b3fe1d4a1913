"""The conversion options (snn2hw.snn.options.Conversion) in the float simulator, the
direct encoder and Spike-Norm's layer-wise run, against values worked out by hand or by an
independent numpy model written here. (Fixed point against Lava: tests/test_lava_options.py.)"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from snn2hw import calibrate, ir, snn
from snn2hw.importer import graph_from_nodes as build
from snn2hw.snn import simulate
from snn2hw.snn.encoders import make_encoder, names
from snn2hw.snn.neurons import float_neuron
from snn2hw.snn.options import CODINGS, Conversion

F64 = torch.float64


def chain(conversion: Conversion, thresholds=(1.0, 1.0), weights=(0.5, 1.0)) -> simulate.Prepared:
    """input (1) -> a (depth 1) -> out (depth 2), identity-like weights, no bias."""
    def layer(name, source, w, thr, depth, out):
        membrane = out and conversion.readout == "membrane"
        neuron = (float_neuron(float("inf")) if membrane
                  else float_neuron(thr, "zero", conversion.layer_v_init(out)))
        return simulate.PreparedLayer(name, (1,), [simulate.Synapse(source, 1,
                                                                    lambda x, w=w: x * w)],
                                      None, neuron, out, depth)
    layers = [layer("a", "in", weights[0], thresholds[0], 1, False),
              layer("out", "a", weights[1], thresholds[1], 2, True)]
    return simulate.Prepared("in", (1,), layers, torch.device("cpu"), F64,
                             conversion.window, conversion.readout)


def run(conversion: Conversion, timesteps: int, x=1.0, coding="poisson"):
    enc = make_encoder(coding, np.array([[x]], np.float32), input_scale=1.0)
    prep = chain(conversion)
    return simulate.simulate(prep, enc, timesteps, checkpoints=range(1, timesteps + 1),
                             record=["in", "a", "out"], time_chunk=3)


def test_fill_and_pipelined_windows_by_hand():
    # input spikes every step (x = 1); a: v += 0.5 per input spike; out: v += 1 per spike
    # of a (threshold 1 everywhere: v > 1 needs a's second spike).
    # fill, T = 6: a integrates steps 1..5: v = .5 1 1.5* .5 1 -> spikes at steps 3 (and
    # none at 5: v = 1.0 is not > 1); out integrates 2..5: a's spike at 3 arrives at 4:
    # v = 1 (no spike).
    fill = run(Conversion(), 6)
    assert fill.records["a"][0, :, 0].tolist() == [0, 0, 0, 1, 0, 0]
    assert fill.records["out"][0, :, 0].tolist() == [0] * 6
    # pipelined, T = 6: a integrates its steps 1..6 (window 0..5): .5 1 1.5* .5 1 1.5*;
    # out integrates 2..7 (window 0..5); a's window spikes at 2 and 5 arrive at out's
    # window steps 2 and 5: v = 1 at 2, 2 at 5 -> spike at window step 5.
    pipe = run(Conversion(window="pipelined"), 6)
    assert pipe.records["in"][0, :, 0].tolist() == [1] * 6
    assert pipe.records["a"][0, :, 0].tolist() == [0, 0, 1, 0, 0, 1]
    assert pipe.records["out"][0, :, 0].tolist() == [0, 0, 0, 0, 0, 1]
    assert pipe.counts[6].tolist() == [[1]] and pipe.counts[5].tolist() == [[0]]
    assert pipe.stats["a"].rate == pytest.approx(2 / 6)   # window steps only


def test_initial_potential_by_hand():
    # v_init = 0.5, a's input 0.5 per step: v = 1.0, 1.5* (-> 0 after the spike: only
    # the reset between samples restores v_init), .5, 1.0, 1.5*, .5 (without v_init the
    # spikes come at 2 and 5)
    pipe = run(Conversion(window="pipelined", v_init=0.5), 6)
    assert pipe.records["a"][0, :, 0].tolist() == [0, 1, 0, 0, 1, 0]
    # the reset between samples restores it: a second sample starts at 0.5 again
    enc = make_encoder("poisson", np.ones((2, 1), np.float32), input_scale=1.0)
    res = simulate.simulate(chain(Conversion(window="pipelined", v_init=0.5)), enc, 6,
                            record=["a"], batch_size=1)
    assert res.records["a"][1, :, 0].tolist() == [0, 1, 0, 0, 1, 0]


def test_membrane_readout_is_the_accumulated_potential():
    # out never fires; its v after window step j = sum of a's spikes arriving so far.
    res = run(Conversion(window="pipelined", readout="membrane"), 6)
    assert [res.potentials[t][0, 0] for t in range(1, 7)] == [0, 0, 1, 1, 1, 2]
    assert res.records["out"].sum() == 0
    assert res.readout == "membrane" and res.scores(6).tolist() == [[2.0]]


def test_membrane_readout_decides_the_class():
    # two output neurons, weights 1 and 0.6 from a single input spiking every step:
    # potentials T and 0.6 T; spike counts (threshold 1) would be equal-ish but potentials
    # are argmax 0; with the weights swapped the class flips.
    for w, want in (((1.0, 0.6), 0), ((0.6, 1.0), 1)):
        weight = torch.tensor(w, dtype=F64)
        out = simulate.PreparedLayer("out", (2,), [simulate.Synapse("in", 1,
                                                                    lambda x: x * weight)],
                                     None, float_neuron(float("inf")), True, 1)
        prep = simulate.Prepared("in", (1,), [out], torch.device("cpu"), F64, "pipelined",
                                 "membrane")
        enc = make_encoder("direct", np.ones((1, 1), np.float32), input_scale=1.0)
        res = simulate.simulate(prep, enc, 5)
        assert res.potentials[5][0].tolist() == pytest.approx([5 * w[0], 5 * w[1]])
        assert res.predictions(5)[0].tolist() == [want]


def test_direct_encoder_values_by_hand():
    x = np.array([[0.5, -0.25, 3.0, 0.0]], np.float32)
    real = make_encoder("direct", x, input_scale=2.0)
    assert real.full(0, 1, 3)[0].tolist() == [[0.25, -0.125, 1.0, 0.0]] * 3
    # 127 levels: 0.25 * 127 = 31.75 -> 32; -0.125 * 127 = -15.875 -> -16; clipped 1 -> 127
    ints = make_encoder("direct", x, input_scale=2.0, levels=127)
    assert ints.chunk(0, 1, 4, 6)[0].tolist() == [[32, -16, 127, 0]] * 2
    assert ints.signs(0, 1).tolist() == [[1, -1, 1, 0]]
    assert tuple(CODINGS) == names()


def test_direct_input_drives_the_first_layer_every_step():
    # x = 0.3: a's v += 0.15 per step -> the first spike when v > 1, at window step 6
    res = run(Conversion(window="pipelined", coding="direct"), 8, x=0.3, coding="direct")
    assert res.records["in"][0, :, 0].tolist() == pytest.approx([0.3] * 8)
    assert res.records["a"][0, :, 0].tolist() == [0, 0, 0, 0, 0, 0, 1, 0]


def test_latency_and_window_offsets():
    assert Conversion().latency(32, 15) == 32
    assert Conversion(window="pipelined").latency(32, 15) == 47
    assert chain(Conversion(window="pipelined")).run_steps(32) == 34
    assert chain(Conversion()).run_steps(32) == 32


# --------------------------------------------------------------------------------------
# Spike-Norm's layer-wise run with the options, against a numpy model written here
# --------------------------------------------------------------------------------------

def three_layer_net(seed=1):
    rng = np.random.default_rng(seed)
    w1, b1 = rng.standard_normal((16, 10)) * 0.5, rng.standard_normal(16) * 0.2
    w2 = rng.standard_normal((12, 16)) * 0.5
    w3, b3 = rng.standard_normal((5, 12)) * 0.5, rng.standard_normal(5) * 0.2
    g = build([ir.Input("input", [], (10,)),
               ir.Dense("d1", ["input"], weight=w1, bias=b1), ir.ReLU("r1", ["d1"]),
               ir.Dense("d2", ["r1"], weight=w2), ir.ReLU("r2", ["d2"]),
               ir.Dense("out", ["r2"], weight=w3, bias=b3)])
    return g, [("r1", w1, b1), ("r2", w2, None), ("out", w3, b3)]


def naive_spike_norm(layers, x, timesteps, seed, conv: Conversion):
    """Algorithm 1 in numpy with the options: input = Poisson spikes of the calibration
    stream default_rng([seed, 0, i]) or (direct) clip(x / scale, -1, 1) every step; v
    starts at v_init (each layer's own threshold units); fill: a layer k hops deep is idle
    for steps t < k and hears the previous layer's spikes one step later; pipelined: each
    layer's T-step window hears the previous layer's window step for step (no idle)."""
    n = len(x)
    in_scale = float(np.abs(x).max())
    if conv.coding == "direct":
        s = np.repeat(np.clip(x / np.float32(in_scale), -1, 1)[:, None], timesteps, axis=1)
    else:
        s = np.zeros((n, timesteps, x.shape[1]))
        for i in range(n):
            u = np.random.default_rng([seed, 0, i]).random((timesteps, x.shape[1]),
                                                           dtype=np.float32)
            s[i] = (u < np.minimum(np.abs(x[i]) / np.float32(in_scale), 1)) * np.sign(x[i])
    scales, src_scale = {"input": in_scale}, in_scale
    for depth, (name, w, b) in enumerate(layers, start=1):
        current = np.zeros((n, timesteps, w.shape[0]))
        if conv.window == "pipelined":
            current[:] = src_scale * s @ w.T
        else:
            current[:, 1:] = src_scale * s[:, :-1] @ w.T
        if b is not None:
            current += b
        if conv.window != "pipelined":
            current[:, :depth] = 0
        top = current.max()
        scales[name] = top
        v = np.full((n, w.shape[0]), conv.v_init)
        out = np.zeros_like(current)
        for t in range(timesteps):
            v += current[:, t] / top
            out[:, t] = v > 1
            v[v > 1] = 0
        assert 0 < out.mean() < 1, f"{name}: test network must spike, not saturate"
        s, src_scale = out, top
    return scales


@pytest.mark.parametrize("conv", [Conversion(window="pipelined"),
                                  Conversion(coding="direct", v_init=0.5),
                                  Conversion(coding="direct", v_init=0.5, window="pipelined",
                                             readout="membrane")])
def test_spike_norm_with_options_matches_the_numpy_model(conv):
    g, layers = three_layer_net()
    x = np.random.default_rng(2).uniform(-1, 1, (24, 10)).astype(np.float32)
    cal = calibrate.calibrate("spike-norm", snn.lower(g), x, timesteps=40, seed=5,
                              batch_size=10, rate_match=False, conversion=conv)
    want = naive_spike_norm(layers, x, 40, 5, conv)
    paper = naive_spike_norm(layers, x, 40, 5, Conversion())
    for name, value in want.items():
        assert cal.scales[name] == pytest.approx(value, rel=1e-5), name
    assert want["r2"] != pytest.approx(paper["r2"], rel=1e-3)   # the option matters
