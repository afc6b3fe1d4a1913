"""Threshold balancing against independent computations.

max-act is checked against a torch ``nn`` model built from the same weights; spike-norm
against a plain numpy re-implementation of Algorithm 1 of Sengupta et al. 2019 (layer by
layer, each layer's threshold = the largest input current it receives while the layers
before it run with their already-determined thresholds).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from snn2hw import calibrate, ir, snn
from snn2hw.calibrate import spikestore, streaming
from snn2hw.snn import simulate
from snn2hw.calibrate import spikestore
from snn2hw.data import digits
from snn2hw.snn.encoders import make_encoder
from snn2hw.importer import graph_from_nodes as build




# --------------------------------------------------------------------------- max-act


def test_max_act_scales_equal_torch_forward_maxima():
    rng = np.random.default_rng(0)
    cw, cb = rng.standard_normal((3, 1, 3, 3)) * 0.5, rng.standard_normal(3) * 0.1
    dw, db = rng.standard_normal((6, 48)) * 0.3, rng.standard_normal(6) * 0.1
    ow = rng.standard_normal((4, 6)) * 0.5
    g = build([ir.Input("input", [], (1, 8, 8)),
               ir.Conv("c1", ["input"], weight=cw, bias=cb, padding=(1, 1, 1, 1)),
               ir.ReLU("r1", ["c1"]),
               ir.AvgPool("p1", ["r1"], kernel=(2, 2), stride=(2, 2)),
               ir.Flatten("f", ["p1"]),
               ir.Dense("d1", ["f"], weight=dw, bias=db),
               ir.ReLU("r2", ["d1"]),
               ir.Dense("out", ["r2"], weight=ow)])
    x = rng.uniform(-1, 1, (50, 1, 8, 8)).astype(np.float32)

    f64 = torch.float64
    conv = nn.Conv2d(1, 3, 3, padding=1, dtype=f64)
    lin1, lin2 = nn.Linear(48, 6, dtype=f64), nn.Linear(6, 4, bias=False, dtype=f64)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(cw)), conv.bias.copy_(torch.from_numpy(cb))
        lin1.weight.copy_(torch.from_numpy(dw)), lin1.bias.copy_(torch.from_numpy(db))
        lin2.weight.copy_(torch.from_numpy(ow))
        xt = torch.from_numpy(x).double()
        a1 = torch.relu(conv(xt))
        a2 = torch.relu(lin1(nn.Flatten()(nn.AvgPool2d(2)(a1))))
        a3 = lin2(a2)
    cal = calibrate.calibrate("max-act", snn.lower(g), x, batch_size=16)
    want = {"input": float(np.abs(x).max()), "r1": a1.max().item(), "r2": a2.max().item(),
            "out": a3.max().item()}
    assert cal.scales.keys() == want.keys()
    for name, value in want.items():
        assert cal.scales[name] == pytest.approx(value, rel=1e-9), name


def test_max_act_warns_for_a_layer_that_never_activates():
    g = build([ir.Input("input", [], (3,)),
               ir.Dense("d1", ["input"], weight=np.ones((2, 3)), bias=np.full(2, -10.0)),
               ir.ReLU("r1", ["d1"]),
               ir.Dense("out", ["r1"], weight=np.ones((2, 2)))])
    x = np.random.default_rng(0).uniform(-1, 1, (10, 3)).astype(np.float32)
    cal = calibrate.calibrate("max-act", snn.lower(g), x)
    assert cal.scales["r1"] == 1.0
    assert any("r1" in w for w in cal.warnings)


# --------------------------------------------------------------------------- spike-norm


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


def naive_spike_norm(layers, x, timesteps, seed, rate_match=False, reset="zero",
                     percentile=None, given=None):
    """Algorithm 1 in numpy: Poisson input from default_rng([seed, 0, i]) (the documented
    calibration stream), then per layer: current in ANN units, threshold = its maximum,
    spikes of an IF neuron (v += I / threshold; fire if v > 1; reset to 0, or v -= 1 with
    ``subtract``). The layer k hops from the input is idle (no current, no bias) during
    steps t < k. With ``percentile``, the threshold is instead that percentile of the
    positive currents (recorded as "pXX:" + name) and the run goes on with the thresholds
    ``given`` (the tool's, which are binned), so that each layer is checked on its own."""
    n = len(x)
    in_scale = float(np.abs(x).max())
    x_ann, a = {}, x.astype(np.float64)
    for name, w, b in layers:  # the ANN's activations, for rate matching
        a = a @ w.T + (0 if b is None else b)
        x_ann[name] = a
        a = np.maximum(a, 0)
    s = np.zeros((n, timesteps, x.shape[1]))
    for i in range(n):
        u = np.random.default_rng([seed, 0, i]).random((timesteps, x.shape[1]),
                                                       dtype=np.float32)
        p = np.minimum(np.abs(x[i]) / np.float32(in_scale), 1)
        s[i] = (u < p) * np.sign(x[i])
    scales = {"input": in_scale}
    src_scale = in_scale
    for depth, (name, w, b) in enumerate(layers, start=1):
        current = np.zeros((n, timesteps, w.shape[0]))
        current[:, 1:] = src_scale * s[:, :-1] @ w.T  # one hop: spikes of t-1 arrive at t
        if b is not None:
            current += b
        current[:, :depth] = 0
        top = current.max()
        if percentile is not None:
            scales["p:" + name] = np.percentile(current[current > 0], percentile,
                                                method="higher")
            scales["max:" + name] = top
            top = given[name]
        scales[name] = top
        v = np.zeros((n, w.shape[0]))
        out = np.zeros_like(current)
        for t in range(timesteps):
            v += current[:, t] / top
            out[:, t] = v > 1
            v[v > 1] -= 1 if reset == "subtract" else v[v > 1]
        assert 0 < out.mean() < 1, f"{name}: test network must spike, not saturate"
        s, src_scale = out, top
        if rate_match:  # what one spike per step stands for: mean activation / mean rate
            ann = np.maximum(x_ann[name], 0)
            src_scale = ann.mean() / out[:, depth:].mean()
            scales["source:" + name] = src_scale
    return scales


def test_spike_norm_matches_layer_by_layer_naive_simulation():
    g, layers = three_layer_net()
    x = np.random.default_rng(2).uniform(-1, 1, (24, 10)).astype(np.float32)
    cal = calibrate.calibrate("spike-norm", snn.lower(g), x, timesteps=48, seed=5,
                              batch_size=10, rate_match=False)
    want = naive_spike_norm(layers, x, 48, 5)
    assert cal.scales.keys() == want.keys()
    assert cal.rate_scales is None
    for name, value in want.items():
        assert cal.scales[name] == pytest.approx(value, rel=1e-5), name
    # the later layers depend on the earlier thresholds: they are not the ANN maxima
    ann_max = calibrate.calibrate("max-act", snn.lower(g), x).scales
    assert cal.scales["r2"] != pytest.approx(ann_max["r2"], rel=1e-3)


def test_spike_norm_rate_match_measures_source_scales():
    g, layers = three_layer_net()
    x = np.random.default_rng(2).uniform(-1, 1, (24, 10)).astype(np.float32)
    cal = calibrate.calibrate("spike-norm", snn.lower(g), x, timesteps=48, seed=5,
                              batch_size=10, rate_match=True)
    want = naive_spike_norm(layers, x, 48, 5, rate_match=True)
    for name in ("r1", "r2", "out"):
        assert cal.scales[name] == pytest.approx(want[name], rel=1e-5), name
    for name in ("r1", "r2"):  # the output layer drives nothing: no source scale needed
        assert cal.source_scales[name] == pytest.approx(want["source:" + name], rel=1e-5)
        assert cal.source_scales[name] != pytest.approx(cal.scales[name], rel=1e-3)


def test_spike_norm_with_reset_by_subtraction_matches_naive_simulation():
    g, layers = three_layer_net()
    x = np.random.default_rng(2).uniform(-1, 1, (24, 10)).astype(np.float32)
    cal = calibrate.calibrate("spike-norm", snn.lower(g), x, timesteps=48, seed=5,
                              batch_size=10, rate_match=True, reset="subtract")
    want = naive_spike_norm(layers, x, 48, 5, rate_match=True, reset="subtract")
    zero = naive_spike_norm(layers, x, 48, 5, rate_match=True)
    assert cal.params["reset"] == "subtract" and cal.reset == "subtract"
    for name in ("r1", "r2", "out"):
        assert cal.scales[name] == pytest.approx(want[name], rel=1e-5), name
    for name in ("r1", "r2"):
        assert cal.source_scales[name] == pytest.approx(want["source:" + name], rel=1e-5)
    # subtraction keeps the charge above threshold: more spikes, a smaller source scale
    assert want["source:r1"] < zero["source:r1"]


@pytest.mark.parametrize("percentile", [99.0, 90.0])
def test_spike_norm_percentile_is_the_percentile_of_positive_currents(percentile):
    g, layers = three_layer_net()
    x = np.random.default_rng(2).uniform(-1, 1, (24, 10)).astype(np.float32)
    cal = calibrate.calibrate("spike-norm", snn.lower(g), x, timesteps=48, seed=5,
                              batch_size=10, rate_match=False, percentile=percentile)
    want = naive_spike_norm(layers, x, 48, 5, percentile=percentile, given=cal.scales)
    assert cal.params["percentile"] == percentile
    for name in ("r1", "r2", "out"):
        exact = want["p:" + name]
        # the histogram has 64 log2 bins per octave; the upper bin edge is returned
        assert exact <= cal.scales[name] <= exact * 2 ** (1 / 64) * (1 + 1e-6), name
        assert cal.scales[name] < want["max:" + name], name  # below the maximum


def test_max_act_percentile_is_the_percentile_of_positive_activations():
    g, layers = three_layer_net()
    x = np.random.default_rng(4).uniform(-1, 1, (40, 10)).astype(np.float32)
    cal = calibrate.calibrate("max-act", snn.lower(g), x, percentile=99.0)
    a = x.astype(np.float64)
    for name, w, b in layers:
        a = a @ w.T + (0 if b is None else b)
        want = np.percentile(a[a > 0].astype(np.float32), 99.0, method="higher")
        assert cal.scales[name] == pytest.approx(want, rel=1e-6), name
        a = np.maximum(a, 0)
    assert cal.params == {"samples": 40, "reset": "zero", "percentile": 99.0}


@pytest.mark.parametrize("value", [49.9, 100.5, float("nan")])
def test_percentile_out_of_range_is_an_input_error(value):
    from snn2hw.errors import InputError

    g, _ = three_layer_net()
    with pytest.raises(InputError, match="percentile must be between 50 and 100"):
        calibrate.calibrate("spike-norm", snn.lower(g), np.zeros((2, 10), np.float32),
                            timesteps=4, seed=0, percentile=value)


def test_spike_norm_silent_layer_falls_back_to_its_ann_maximum():
    # T = 2: the layer two hops from the input is idle for both steps and receives no
    # current at all; its scale must not be a tiny default that makes it fire on anything.
    g, _ = three_layer_net()
    net = snn.lower(g)
    x = np.random.default_rng(2).uniform(-1, 1, (24, 10)).astype(np.float32)
    cal = calibrate.calibrate("spike-norm", net, x, timesteps=2, seed=5)
    ann_max = calibrate.calibrate("max-act", net, x).scales
    assert cal.scales["r2"] == pytest.approx(ann_max["r2"], rel=1e-9)
    assert any("r2: no positive input current in 2 calibration steps" in w and "max-act" in w
               for w in cal.warnings)


def test_spike_norm_dead_layer_gets_its_sources_scale_and_a_warning():
    g = build([ir.Input("input", [], (3,)),
               ir.Dense("d1", ["input"], weight=np.ones((2, 3)), bias=np.full(2, -10.0)),
               ir.ReLU("r1", ["d1"]),
               ir.Dense("out", ["r1"], weight=np.ones((2, 2)))])
    x = np.random.default_rng(0).uniform(-1, 1, (10, 3)).astype(np.float32)
    cal = calibrate.calibrate("spike-norm", snn.lower(g), x, timesteps=8, seed=0)
    assert cal.scales["r1"] == pytest.approx(cal.scales["input"])
    assert any("r1" in w and "will stay silent" in w for w in cal.warnings)


def test_spike_norm_is_deterministic_and_seed_dependent():
    g, _ = three_layer_net()
    net = snn.lower(g)
    x = np.random.default_rng(3).uniform(-1, 1, (16, 10)).astype(np.float32)
    a = calibrate.calibrate("spike-norm", net, x, timesteps=32, seed=11)
    b = calibrate.calibrate("spike-norm", net, x, timesteps=32, seed=11, batch_size=5)
    c = calibrate.calibrate("spike-norm", net, x, timesteps=32, seed=12)
    assert a.scales == b.scales
    assert a.scales != c.scales
    assert a.params == {"timesteps": 32, "seed": 11, "samples": 16, "rate_match": True,
                        "reset": "zero"}
    assert a.rate_scales == b.rate_scales


def test_unknown_method_is_an_input_error():
    from snn2hw.errors import InputError

    g, _ = three_layer_net()
    with pytest.raises(InputError, match="unknown calibration method"):
        calibrate.calibrate("nope", snn.lower(g), np.zeros((2, 10), np.float32))


# --------------------------------------------------------------------------- accuracy


def train_digits_mlp():
    """A bias-free 64-48-32-10 ReLU MLP on 8x8 digits, mean-subtracted input (a second)."""
    data = digits((1, 8, 8))
    mean = float(data.x_train.mean())
    xtr = torch.from_numpy(data.x_train - mean).reshape(len(data.x_train), -1)
    ytr = torch.from_numpy(data.y_train)
    gen = torch.Generator().manual_seed(0)
    sizes = [64, 48, 32, 10]
    ws = [(torch.randn(o, i, generator=gen) * (2 / i) ** 0.5).requires_grad_()
          for i, o in zip(sizes[:-1], sizes[1:])]
    opt = torch.optim.Adam(ws, lr=1e-2)
    for _ in range(200):
        h = xtr
        for k, w in enumerate(ws):
            h = h @ w.T
            if k < len(ws) - 1:
                h = torch.relu(h)
        loss = nn.functional.cross_entropy(h, ytr)
        opt.zero_grad()
        loss.backward()
        opt.step()
    nodes = [ir.Input("input", [], (1, 8, 8)), ir.Flatten("f", ["input"])]
    prev = "f"
    for k, w in enumerate(ws):
        nodes.append(ir.Dense(f"d{k}", [prev], weight=w.detach().double().numpy()))
        prev = f"d{k}"
        if k < len(ws) - 1:
            nodes.append(ir.ReLU(f"r{k}", [prev]))
            prev = f"r{k}"
    return build(nodes), data, mean


def test_spike_norm_snn_accuracy_close_to_ann_on_digits():
    torch.manual_seed(0)
    g, data, mean = train_digits_mlp()
    net = snn.lower(g)
    x_cal = data.x_train[:256] - mean
    x_te, y_te = data.x_test[:300] - mean, data.y_test[:300]
    from snn2hw import ann

    ann_acc = float((ann.predict(g, x_te).argmax(1) == y_te).mean())
    assert ann_acc > 0.9
    cal = calibrate.calibrate("spike-norm", net, x_cal, timesteps=256, seed=0)
    prep = simulate.prepare_float(net, cal.scales)
    res = simulate.simulate(prep, make_encoder("poisson", x_te, input_scale=cal.scales["input"],
                                               seed=0, stream=1), 256,
                            checkpoints=[32])
    pred, _ = res.predictions(256)
    snn_acc = float((pred == y_te).mean())
    print(f"ANN {ann_acc:.3f}  SNN T=256 {snn_acc:.3f}")
    assert snn_acc >= ann_acc - 0.04, (snn_acc, ann_acc)
    # and the SNN is still learning at T=32: accuracy grows with time
    pred32, _ = res.predictions(32)
    assert float((pred32 == y_te).mean()) <= snn_acc + 0.01


def test_current_histogram_quantile_is_chunk_independent_and_one_bin_above(monkeypatch):
    values = torch.from_numpy(np.random.default_rng(9).lognormal(0, 2, (50, 37)))
    values[::3] *= -1  # negative and zero currents are not counted
    values[1, :5] = 0
    whole = streaming.CurrentHistogram()
    whole.add(values)
    monkeypatch.setattr(streaming.CurrentHistogram, "CHUNK", 7)
    chunked = streaming.CurrentHistogram()
    chunked.add(values[:20])
    chunked.add(values[20:])
    assert torch.equal(whole.counts, chunked.counts)
    positive = values[values > 0].numpy()
    assert whole.counts.sum() == len(positive)
    for q in (0.5, 0.9, 0.999):
        exact = np.percentile(positive, 100 * q, method="higher")
        assert exact <= whole.quantile(q) <= exact * 2 ** (1 / 64) * (1 + 1e-9), q


def test_layer_batch_bounds_the_largest_float_tensor():
    assert spikestore.layer_batch(64, 256, 8192) == 64           # digits VGG-16: unchanged
    assert spikestore.layer_batch(64, 512, 64 * 32 * 32) == 8     # full-size VGG-16, T=512
    assert spikestore.layer_batch(64, 2500, 64 * 224 * 224) == 1  # never below one sample


def test_spike_store_round_trips_packed_trains_and_signed_input():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (5, 2, 3)).astype(np.float32)
    x[0, 0, 0] = 0
    store = spikestore.SpikeStore()
    store.put_input("in", make_encoder("poisson", x, input_scale=1.0, seed=4), 7, batch=2)
    want = np.moveaxis(make_encoder("poisson", x, input_scale=1.0, seed=4).full(0, 5, 7), 1,
                       0)  # (T, N, ...)
    assert set(np.unique(want)) == {-1, 0, 1}
    assert torch.equal(store.window("in", 0, 5, 0, 7, "cpu", torch.float32),
                       torch.from_numpy(want).float())
    delayed = store.window("in", 1, 3, -2, 5, "cpu", torch.float32)  # lag 2: zeros first
    assert torch.equal(delayed[:2], torch.zeros(2, 2, 2, 3))
    assert torch.equal(delayed[2:], torch.from_numpy(want[:5, 1:3]).float())
    binary = (rng.random((7, 5, 3, 5)) < 0.3).astype(np.float32)  # 15 neurons: not 8k
    store.new_binary("l", 7, 5, (3, 5))
    store.write("l", 0, 0, torch.from_numpy(binary[:4, :2]))
    store.write("l", 0, 4, torch.from_numpy(binary[4:, :2]))
    store.write("l", 2, 0, torch.from_numpy(binary[:, 2:]))
    got = store.window("l", 1, 4, 3, 7, "cpu", torch.float32)
    assert got.shape == (4, 3, 3, 5) and torch.equal(got, torch.from_numpy(binary[3:, 1:4]))
    store.drop("in")
    assert store.names() == ["l"]


def test_spike_norm_does_not_depend_on_the_batch_memory_cap(monkeypatch):
    g, _ = three_layer_net()
    net = snn.lower(g)
    x = np.random.default_rng(2).uniform(-1, 1, (24, 10)).astype(np.float32)
    full = calibrate.calibrate("spike-norm", net, x, timesteps=48, seed=5, percentile=99.0)
    monkeypatch.setattr(spikestore, "BATCH_BYTES", 4 * 48 * 16 * 3)  # 3 samples per batch
    assert spikestore.layer_batch(64, 48, 16) == 3
    small = calibrate.calibrate("spike-norm", net, x, timesteps=48, seed=5, percentile=99.0)
    for name, value in full.scales.items():
        assert small.scales[name] == pytest.approx(value, rel=1e-6), name
    for name, value in full.source_scales.items():
        assert small.source_scales[name] == pytest.approx(value, rel=1e-6), name
