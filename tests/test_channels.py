"""Per-channel scales folded into the weights (snn2hw/calibrate/channels.py): the folded
network computes the same function, channel c of a folded layer is the original divided by
its factor, an identity shortcut gets its own diagonal op, and per-channel max-act picks the
scales computed here by hand."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snn2hw import ir, snn
from snn2hw.calibrate import calibrate
from snn2hw.calibrate.channels import calibrated_network, factors_from_scales, fold_channels
from snn2hw.errors import InputError
from snn2hw.importer import graph_from_nodes
from snn2hw.quantize import float_network
from snn2hw.snn.options import Conversion


def conv_graph() -> ir.Graph:
    """input (2, 8, 8) -> conv+bias -> relu a -> grouped conv+bias, + a (identity shortcut)
    -> relu j -> avgpool 2 -> flatten -> dense out."""
    rng = np.random.default_rng(11)
    return graph_from_nodes([
        ir.Input("input", [], (2, 8, 8)),
        ir.Conv("c1", ["input"], weight=rng.normal(0, 0.5, (4, 2, 3, 3)),
                bias=rng.normal(0, 0.2, 4), padding=(1, 1, 1, 1)),
        ir.ReLU("a", ["c1"]),
        ir.Conv("c2", ["a"], weight=rng.normal(0, 0.5, (4, 2, 3, 3)),
                bias=rng.normal(0, 0.2, 4), padding=(1, 1, 1, 1), groups=2),
        ir.Add("s", ["c2", "a"]), ir.ReLU("j", ["s"]),
        ir.AvgPool("p", ["j"], kernel=(2, 2), stride=(2, 2)), ir.Flatten("f", ["p"]),
        ir.Dense("out", ["f"], weight=rng.normal(0, 0.5, (3, 64)), bias=rng.normal(0, .1, 3))])


def mlp_graph(bias: bool = True) -> ir.Graph:
    rng = np.random.default_rng(3)
    return graph_from_nodes([
        ir.Input("input", [], (3,)),
        ir.Dense("d1", ["input"], weight=rng.normal(0, 1, (4, 3)),
                 bias=rng.normal(0, 0.3, 4) if bias else None),
        ir.ReLU("h", ["d1"]),
        ir.Dense("out", ["h"], weight=rng.normal(0, 1, (2, 4)))])


def run_terms(net: snn.SpikingNetwork, x: np.ndarray) -> dict[str, np.ndarray]:
    """The spiking network read as an ANN: each layer's terms (chains applied with torch's
    own functions, written here) plus bias, through ReLU except at the output."""
    acts = {net.input: torch.as_tensor(x, dtype=torch.float64)}
    for la in net.layers:
        pre = 0
        for t in la.terms:
            y = acts[t.source]
            for op in t.ops:
                y = apply_op(op, y)
            pre = pre + y
        if la.bias is not None:
            pre = pre + torch.as_tensor(la.bias)
        acts[la.name] = pre if la.is_output else torch.relu(pre)
    return {k: v.numpy() for k, v in acts.items()}


def apply_op(op: ir.Node, y: torch.Tensor) -> torch.Tensor:
    if isinstance(op, ir.Conv):
        top, left, bottom, right = op.padding
        return F.conv2d(F.pad(y, (left, right, top, bottom)), torch.as_tensor(op.weight), None,
                        op.stride, 0, op.dilation, op.groups)
    if isinstance(op, ir.Dense):
        return y @ torch.as_tensor(op.weight).T
    if isinstance(op, ir.AvgPool):
        return F.avg_pool2d(y, op.kernel, op.stride)
    if isinstance(op, ir.Flatten):
        return y.reshape(len(y), -1)
    raise AssertionError(f"unexpected op {op.kind}")


def test_folding_keeps_the_function_and_divides_each_channel_by_its_factor():
    net = snn.lower(conv_graph())
    x = np.random.default_rng(0).normal(size=(5, 2, 8, 8))
    before = run_terms(net, x)
    ka, kj = np.array([0.5, 1.0, 0.25, 0.8]), np.array([1.0, 0.3, 0.6, 0.9])
    folded = fold_channels(fold_channels(net, "a", ka), "j", kj)
    after = run_terms(folded, x)
    np.testing.assert_allclose(after["out"], before["out"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(after["a"], before["a"] / ka[None, :, None, None], rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(after["j"], before["j"] / kj[None, :, None, None], rtol=1e-10,
                               atol=1e-12)
    assert all(t.ops[0] is not o for t, u in zip(folded.layer("a").terms,
                                                 net.layer("a").terms) for o in u.ops)


def test_identity_shortcut_gets_a_depthwise_op_with_both_factors():
    net = snn.lower(conv_graph())
    ka, kj = np.array([0.5, 1.0, 0.25, 0.8]), np.array([1.0, 0.3, 0.6, 0.9])
    folded = fold_channels(fold_channels(net, "a", ka), "j", kj)
    identity = [t for t in folded.layer("j").terms if len(t.ops) == 1
                and t.ops[0].groups == 4]
    assert len(identity) == 1
    np.testing.assert_allclose(identity[0].ops[0].weight.reshape(-1), ka / kj, rtol=1e-12)
    syn = float_network(folded, {n: 1.0 for n in ("input", "a", "j", "out")}, "f").layers[1]
    assert sorted(s.kind for s in syn.synapses) == ["conv", "conv"]


def test_factors_are_scale_over_the_largest_and_dead_channels_keep_one():
    k, top = factors_from_scales(np.array([2.0, 4.0, 0.0, 1.0]))
    assert top == 4.0
    np.testing.assert_array_equal(k, [0.5, 1.0, 1.0, 0.25])


def test_factors_have_a_floor_of_one_sixteenth():
    k, top = factors_from_scales(np.array([100.0, 1.0, 6.25, 0.0, 50.0]))
    assert top == 100.0
    np.testing.assert_array_equal(k, [1.0, 0.0625, 0.0625, 1.0, 0.5])


def test_a_nearly_silent_neuron_is_floored_and_the_fixed_point_keeps_its_resolution():
    """Hidden neuron 0 barely activates: its factor is floored at 1/16 (by hand), so the
    hidden layer's joint integer scale is set by a weight at most 16 times the others'
    largest, not ~1000 times."""
    from snn2hw.hardware import profiles
    from snn2hw.quantize import quantize

    g = mlp_graph(bias=False)
    g.nodes["d1"].weight[0] *= 1e-3
    x = np.random.default_rng(5).normal(size=(64, 3)).astype(np.float32)
    net = snn.lower(g)
    cal = calibrate("max-act", net, x, conversion=Conversion(per_channel=True))
    act = np.maximum(x.astype(np.float64) @ g.nodes["d1"].weight.T, 0)
    channel = act.max(axis=0)
    assert channel[0] < channel.max() / 500
    expect = np.maximum(channel / channel.max(), 0.0625)
    np.testing.assert_allclose(cal.channel_factors["h"], expect, rtol=1e-6)
    folded = g.nodes["d1"].weight * np.abs(x).max() / (expect * channel.max())[:, None]
    q = quantize(calibrated_network(net, cal), cal.scales, profiles.load("loihi_sim"),
                 cal.source_scales)
    hidden = q.layers[0]
    assert hidden.report["limited_by"] == "weight range"
    # the weight range -256..255: the largest positive weight -> 255, the most negative -> -256
    assert hidden.threshold == int(min(255 / folded.max(), 256 / -folded.min()))
    assert hidden.threshold > 100


def test_per_channel_max_act_scales_and_folded_weights_by_hand():
    g = mlp_graph()
    x = np.random.default_rng(5).normal(size=(64, 3)).astype(np.float32)
    net = snn.lower(g)
    cal = calibrate("max-act", net, x, conversion=Conversion(per_channel=True))
    w1, b1, w2 = g.nodes["d1"].weight, g.nodes["d1"].bias, g.nodes["out"].weight
    act = np.maximum(x.astype(np.float64) @ w1.T + b1, 0)
    channel = act.max(axis=0)                         # per-channel max-act, by hand
    lam_in, lam_h = np.abs(x).max(), channel.max()
    lam_out = (act @ w2.T).max()
    assert cal.scales["h"] == pytest.approx(lam_h, rel=1e-6)
    np.testing.assert_allclose(cal.channel_factors["h"], channel / lam_h, rtol=1e-6)
    assert cal.params["per_channel"] is True
    fl = float_network(calibrated_network(net, cal), cal.scales, "f")
    hidden, out = fl.layers
    np.testing.assert_allclose(hidden.synapses[0].matrix(np.float64).toarray(),
                               w1 * lam_in / channel[:, None], rtol=1e-5)
    np.testing.assert_allclose(hidden.bias_mant, b1 / channel, rtol=1e-5)
    np.testing.assert_allclose(out.synapses[0].matrix(np.float64).toarray(),
                               w2 * channel[None, :] / lam_out, rtol=1e-5)


def test_output_layer_keeps_one_scale_and_default_records_nothing():
    g = mlp_graph()
    x = np.random.default_rng(5).normal(size=(16, 3)).astype(np.float32)
    cal = calibrate("max-act", snn.lower(g), x, conversion=Conversion(per_channel=True))
    assert set(cal.channel_factors) == {"h"}
    plain = calibrate("max-act", snn.lower(g), x, conversion=Conversion())
    assert plain.channel_factors is None and "per_channel" not in plain.params


def test_fold_refuses_non_positive_factors():
    with pytest.raises(ValueError, match="positive"):
        fold_channels(snn.lower(mlp_graph()), "h", np.array([1.0, 0.0, 1.0, 1.0]))


def test_bias_calibration_needs_the_snn_run_options():
    with pytest.raises(InputError, match="timesteps"):
        calibrate("max-act", snn.lower(mlp_graph()), np.zeros((4, 3), np.float32),
                  conversion=Conversion(bias_calibration=True))


# --------------------------------------------------------------------------- bias calibration


def hand_bias_offsets(g: ir.Graph, x: np.ndarray, timesteps: int, seed: int,
                      reset: str) -> tuple[np.ndarray, float]:
    """SNN Calibration "light" for the hidden layer of ``mlp_graph(bias=False)`` under
    max-act, written out: the input's Poisson spikes (the encoder's own stream), the hidden
    IF neurons in float64 numpy (threshold 1, idle at step 0), each channel's rate from step
    1 on, and offset = mean ANN activation - rate * scale."""
    from snn2hw.snn.encoders import make_encoder

    w1 = g.nodes["d1"].weight
    lam_in = float(np.abs(x).max())
    act = np.maximum(x.astype(np.float64) @ w1.T, 0)
    lam_h = float(act.max())
    spikes = make_encoder("poisson", x, input_scale=lam_in, seed=seed).full(
        0, len(x), timesteps).astype(np.float64)
    v = np.zeros((len(x), 4))
    fired = np.zeros(4)
    for t in range(1, timesteps):
        v += (lam_in / lam_h) * spikes[:, t - 1] @ w1.T
        spiking = v > 1.0
        fired += spiking.sum(axis=0)
        v = np.where(spiking, v - 1.0 if reset == "subtract" else 0.0, v)
    rate = fired / ((timesteps - 1) * len(x))
    return act.mean(axis=0) - rate * lam_h, lam_h


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_bias_offsets_equal_the_hand_computation(reset):
    g = mlp_graph(bias=False)
    x = np.random.default_rng(8).normal(size=(40, 3)).astype(np.float32)
    net = snn.lower(g)
    assert net.layer("h").bias is None
    cal = calibrate("max-act", net, x, timesteps=24, seed=2, reset=reset,
                    conversion=Conversion(bias_calibration=True))
    want, lam_h = hand_bias_offsets(g, x, 24, 2, reset)
    assert cal.scales["h"] == pytest.approx(lam_h, rel=1e-6)
    assert set(cal.bias_offsets) == {"h"} and cal.params["bias_calibration"] is True
    np.testing.assert_allclose(cal.bias_offsets["h"], want, rtol=1e-5, atol=1e-9)
    # the layer had no bias: it gets one, the offsets
    np.testing.assert_allclose(calibrated_network(net, cal).layer("h").bias, want,
                               rtol=1e-5, atol=1e-9)


# --------------------------------------------------------------------------- Spike-Norm


def test_per_channel_spike_norm_threshold_is_each_channels_largest_current():
    """1 hidden layer: with the input balanced, channel c's threshold is the largest
    current W_c . s[t-1] * input_scale any of its neurons receives (by hand, from the
    encoder's spikes); the layer keeps the largest, the channels their ratios."""
    from snn2hw.snn.encoders import make_encoder

    g = mlp_graph(bias=False)
    x = np.random.default_rng(4).normal(size=(30, 3)).astype(np.float32)
    cal = calibrate("spike-norm", snn.lower(g), x, timesteps=12, seed=6,
                    conversion=Conversion(per_channel=True))
    lam_in = float(np.abs(x).max())
    spikes = make_encoder("poisson", x, input_scale=lam_in, seed=6).full(0, len(x), 12)
    current = lam_in * spikes[:, :-1].astype(np.float64) @ g.nodes["d1"].weight.T
    top = current.max(axis=(0, 1))
    assert cal.scales["h"] == pytest.approx(top.max(), rel=1e-5)
    np.testing.assert_allclose(cal.channel_factors["h"], top / top.max(), rtol=1e-5)


def test_channel_histogram_is_one_current_histogram_per_channel():
    """Each channel's quantile is what CurrentHistogram (tested against numpy in
    test_calibrate) gives on that channel's values alone."""
    from snn2hw.calibrate.streaming import ChannelHistogram, CurrentHistogram

    values = torch.from_numpy(np.random.default_rng(2).lognormal(0, 1.5, (40, 3, 5, 2)))
    values[:, 1] *= -1                               # channel 1: nothing positive
    values[::4, 2] *= -1                             # channel 2: some negative
    whole, parts = ChannelHistogram(3, 1), ChannelHistogram(3, 1)
    whole.add(values)
    parts.add(values[:15])
    parts.add(values[15:])
    assert torch.equal(whole.counts, parts.counts)
    for q in (0.5, 0.99):
        got = whole.quantiles(q)
        for c in range(3):
            single = CurrentHistogram()
            single.add(values[:, c])
            assert got[c] == single.quantile(q), (q, c)


# --------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize("method", ["max-act", "spike-norm"])
def test_per_channel_and_bias_calibration_keep_digits_accuracy(method):
    """The digits MLP of test_calibrate (ANN about 97 % on 300 test images): with both
    options, reset by subtraction and the 99.9th percentile, the SNN at T = 64 stays
    within 2 points of the ANN."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_calibrate import train_digits_mlp

    from snn2hw import ann
    from snn2hw.snn import simulate
    from snn2hw.snn.encoders import make_encoder

    torch.manual_seed(0)
    g, data, mean = train_digits_mlp()
    net = snn.lower(g)
    x_te, y_te = data.x_test[:300] - mean, data.y_test[:300]
    cal = calibrate(method, net, data.x_train[:256] - mean, timesteps=64, seed=0,
                    reset="subtract", percentile=99.9,
                    conversion=Conversion(per_channel=True, bias_calibration=True))
    prep = simulate.prepare_float(calibrated_network(net, cal), cal.scales,
                                  source_scales=cal.source_scales, reset="subtract")
    enc = make_encoder("poisson", x_te, input_scale=cal.scales["input"], seed=0, stream=1)
    pred, _ = simulate.simulate(prep, enc, 64).predictions(64)
    ann_acc = float((ann.predict(g, x_te).argmax(1) == y_te).mean())
    assert float((pred == y_te).mean()) >= ann_acc - 0.02
