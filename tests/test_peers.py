"""benchmarks/peers.py: its pure logic (time conventions, tables, skip messages, our
options) on tiny networks without the peers; where a peer is installed, one tiny
conversion checked against an independent computation of that peer's documented rules."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from snn2hw import ann, ir, snn
from snn2hw.errors import InputError
from snn2hw.importer import graph_from_nodes, import_onnx
from snn2hw.snn import simulate
from snn2hw.snn.encoders import make_encoder
from snn2hw.steps.evaluate import load_data
from snn2hw.steps.options import DataOptions
from snn2hw.steps.settings import preprocess_for

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from onnx_builders import tiny_torch_onnx  # noqa: E402
import peers_install  # noqa: E402
import peers_ours  # noqa: E402
import peers_table as pt  # noqa: E402
import peers_torch  # noqa: E402


# --------------------------------------------------------------------- time conventions

def no_delay_run(w1, b1, w2, b2, s_in, timesteps, reset):
    """The peers' timing, written out: every layer integrates in the same step as its
    source spikes (no hop delay); v += a, spike where v > 1, reset. Output counts per T."""
    n = s_in.shape[0]
    v1, v2 = np.zeros((n, len(b1))), np.zeros((n, len(b2)))
    counts, out = np.zeros((n, len(b2))), {}
    for t in range(timesteps):
        for v, a in ((v1, s_in[:, t] @ w1.T + b1), (v2, None)):
            if a is None:
                a = s1 @ w2.T + b2
            v += a
            fired = v > 1.0
            if reset == "subtract":
                v[fired] -= 1.0
            else:
                v[fired] = 0.0
            s1 = fired.astype(np.float64)
        counts = counts + s1
        out[t + 1] = counts.copy()
    return out


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_fill_run_at_t_plus_depth_equals_the_peers_timing_at_t(reset):
    """The mapping the table relies on: our output count after T + depth steps (fill) is
    the count of a simulation without hop delay after T steps, biases included."""
    rng = np.random.default_rng(3)
    w1, b1 = rng.standard_normal((10, 12)) * 0.6, rng.standard_normal(10) * 0.1
    w2, b2 = rng.standard_normal((4, 10)) * 0.6, rng.standard_normal(4) * 0.1
    g = graph_from_nodes([ir.Input("input", [], (12,)),
                          ir.Dense("d1", ["input"], weight=w1, bias=b1),
                          ir.ReLU("r1", ["d1"]), ir.Dense("d2", ["r1"], weight=w2, bias=b2)])
    net = snn.lower(g)
    x = rng.uniform(-1, 1, (7, 12)).astype(np.float32)
    timesteps = [3, 10, 25]
    points = sorted(set(timesteps) | {pt.fill_equivalent(t, net.depth) for t in timesteps})
    prep = simulate.prepare_float(net, {"input": 1.0, "r1": 1.0, "d2": 1.0},
                                  dtype=torch.float64, reset=reset)
    enc = make_encoder("poisson", x, input_scale=1.0, seed=4, stream=1)
    res = simulate.simulate(prep, enc, max(points),
                            checkpoints=points)
    s_in = make_encoder("poisson", x, input_scale=1.0, seed=4, stream=1).full(
        0, len(x), max(timesteps)).astype(np.float64)
    ref = no_delay_run(w1, b1, w2, b2, s_in, max(timesteps), reset)
    assert net.depth == 2
    for t in timesteps:
        np.testing.assert_array_equal(res.counts[pt.fill_equivalent(t, net.depth)], ref[t])
    assert any(not np.array_equal(res.counts[t], ref[t]) for t in timesteps)


# ------------------------------------------------------------------ table and skipping

def test_table_states_each_convention_and_skip_reason():
    report = pt.Report("tiny", 16, 450, [16, 32], 0.98,
                       [pt.Row("SpikingJelly", pt.PEER, {16: 0.5, 32: 0.9}),
                        pt.Row("snn2hw best", "pipelined", {16: 0.4, 32: None}),
                        pt.Row("snn2hw best", "fill", {16: 0.1, 32: 0.2})],
                       {"sinabs": "sinabs is not installed; install it with: make peers"},
                       [{"simulator": "ours", "batch": 60, "images": 120, "timesteps": 256,
                         "seconds": 10.0, "rate": 3072.0}])
    text = pt.render(report)
    assert "read-out after T + 16 steps" in text and "compare with the peer at T - 16" in text
    lines = text.splitlines()
    peer = next(line for line in lines if line.startswith("SpikingJelly"))
    assert "peer T (no hop delay)" in peer and "50.00 %" in peer and "90.00 %" in peer
    window = next(line for line in lines if "pipelined window T" in line and "snn2hw" in line)
    assert "40.00 %" in window and " - " in window
    assert any("sinabs" in line and "skipped" in line and "make peers" in line
               for line in lines)
    assert "3,072 image*steps/s" in text
    assert pt.row_line(report.rows[1], [16, 32]) == (
        "   snn2hw best [pipelined window T]: T=16 40.00 %, T=32 -")
    data = report.as_dict()
    assert data["accuracy"][1] == {"converter": "snn2hw best", "convention": "pipelined",
                                   "note": "", "T": {"16": 0.4, "32": None}}
    assert data["skipped"] == report.skipped and data["throughput"] == report.speed


def test_missing_peer_names_the_exact_install_commands():
    why = peers_install.missing("spikingjelly", find=lambda name: None)
    assert why.startswith("spikingjelly is not installed")
    assert "make peers" in why
    assert "pip install -c constraints.txt -c benchmarks/peers-constraints.txt --no-deps " \
           "spikingjelly" in why
    assert "--no-deps" not in peers_install.missing("sinabs", find=lambda name: None)
    assert peers_install.missing("sinabs", find=lambda name: object()) is None


def test_constraints_pin_every_peer_at_its_benchmark_version():
    root = Path(__file__).resolve().parent.parent
    pins = dict(line.split("==") for line in
                (root / peers_install.CONSTRAINTS).read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    for peer in peers_install.PEERS.values():
        assert pins[peer.name] == peer.version
    assert "torch" not in pins  # the project's own constraints.txt pins torch


# ------------------------------------------------------------------------ our options

def test_options_become_the_calibrate_steps_options_with_explicit_keys_over_the_preset():
    from snn2hw.steps.settings import conversion_of, percentile_of, reset_of

    opts = peers_ours.calibration_options({"method": "max-act", "preset": "fast",
                                           "readout": "spikes", "percentile": 99.0},
                                          seed=3, timesteps=64, samples=10)
    assert (opts.method, opts.seed, opts.timesteps, opts.samples) == ("max-act", 3, 64, 10)
    conv = conversion_of(opts)
    assert conv.readout == "spikes" and conv.coding == "direct" and conv.window == "pipelined"
    assert reset_of(opts) == "subtract" and percentile_of(opts) == 99.0
    assert peers_ours.window_of(peers_ours.CONFIGS["fast"]) == "pipelined"
    assert peers_ours.window_of(peers_ours.CONFIGS["best"]) == "fill"
    assert peers_ours.window_of(peers_ours.CONFIGS["paper"]) == "fill"


def test_unknown_option_or_preset_is_skipped_with_the_reason():
    with pytest.raises(peers_ours.Unavailable, match="no option graded_spikes"):
        peers_ours.calibration_options({"graded_spikes": True}, 0, 8, 4)
    with pytest.raises(peers_ours.Unavailable, match="no preset 'faster'.*paper, fast"):
        peers_ours.calibration_options({"preset": "faster"}, 0, 8, 4)


# ------------------------------------------------------------------- the same ANN, torch

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tiny_torch_onnx(tmp_path_factory.mktemp("peers") / "tiny.onnx")
    graph = import_onnx(path)
    dataset = load_data(graph, "digits", preprocess_for(graph, DataOptions()))
    return graph, dataset


def test_rebuilt_torch_module_computes_the_onnx_model(tiny):
    graph, dataset = tiny
    model = peers_torch.to_sequential(graph)
    x = dataset.x_test[:20]
    ref = ann.predict(graph, x)
    with torch.no_grad():
        out = model(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert peers_torch.check_same(graph, model, x) < 1e-5
    assert [type(m).__name__ for m in model] == ["Conv2d", "ReLU", "AvgPool2d", "Flatten",
                                                 "Linear"]


def test_residual_network_is_refused_by_name():
    g = graph_from_nodes([ir.Input("input", [], (4,)),
                          ir.Dense("d1", ["input"], weight=np.eye(4)),
                          ir.ReLU("r1", ["d1"]), ir.Add("sum", ["r1", "input"]),
                          ir.Dense("d2", ["sum"], weight=np.ones((2, 4)))])
    with pytest.raises(InputError, match="sequential networks only.*sum \\(Add\\)"):
        peers_torch.to_sequential(g)


# ----------------------------------------------- optional: the peers, where installed

def _relu_conv(model, x):
    with torch.no_grad():
        return torch.relu(model[0](torch.as_tensor(x))).numpy().astype(np.float64)


def test_spikingjelly_conversion_follows_its_documented_rules(tiny):
    """99.9th percentile of the ReLU's activations (zeros included) as the scale, IF with
    threshold 1 and soft reset fed the analog image every step, the classifier's analog
    output summed: written out in numpy on the tiny net, compared per checkpoint."""
    pytest.importorskip("spikingjelly")
    import peers_spikingjelly as sj

    graph, dataset = tiny
    model = peers_torch.to_sequential(graph)
    x_cal, x = dataset.x_train[:40], dataset.x_test[:12]
    converted = sj.convert(model, x_cal, widest=4 * 8 * 8, percentile=99.9)
    out = sj.run(converted, x, 20, [5, 20], batch=5)
    scale = float(np.quantile(_relu_conv(model, x_cal), 0.999))  # torch.quantile: linear
    conv, lin = model[0], model[4]
    with torch.no_grad():
        current = (conv(torch.as_tensor(x)).numpy().astype(np.float64)) / scale
    w, b = lin.weight.numpy().astype(np.float64), lin.bias.numpy().astype(np.float64)
    v, total = np.zeros_like(current), np.zeros((len(x), 10))
    for t in range(1, 21):
        v += current
        spikes = (v >= 1.0).astype(np.float64)
        v -= spikes
        pooled = (spikes * scale).reshape(len(x), 4, 4, 2, 4, 2).mean(axis=(3, 5))
        total += pooled.reshape(len(x), -1) @ w.T + b
        if t in out:
            np.testing.assert_allclose(out[t], total, rtol=1e-4, atol=1e-3)
    multi = sj.run(converted, x, 20, [5, 20], batch=5, mode="m", time_chunk=7)
    np.testing.assert_allclose(multi[20], out[20], rtol=1e-5, atol=1e-4)


def test_sinabs_normalisation_and_spike_counts_follow_its_documented_rules(tiny):
    """Weights divided by the 99.99th percentile of the next ReLU's output (zeros included,
    layer by layer), multi-spike IAF (floor(v) spikes where v > 0, subtract, v >= -1),
    a spiking output layer, our Poisson spikes as input (one spike = input_scale)."""
    pytest.importorskip("sinabs")
    import peers_sinabs

    graph, dataset = tiny
    model = peers_torch.to_sequential(graph)
    x_cal, x = dataset.x_train[:40], dataset.x_test[:6]
    scale_in = float(np.max(np.abs(x_cal)))
    converted = peers_sinabs.convert(model, x_cal, scale_in, percentile=99.99, batch=3)
    enc = make_encoder("poisson", x, input_scale=scale_in, seed=2, stream=1)
    out = peers_sinabs.run(converted, enc, 16, [4, 16], batch=3, time_chunk=5)

    p1 = np.percentile(_relu_conv(model, x_cal), 99.99)
    w1 = model[0].weight.detach().numpy().astype(np.float64) / p1
    b1 = model[0].bias.detach().numpy().astype(np.float64) / p1
    wl = model[4].weight.detach().numpy().astype(np.float64)
    bl = model[4].bias.detach().numpy().astype(np.float64)
    with torch.no_grad():  # the classifier's output on the normalised first layer
        hidden = torch.relu(torch.nn.functional.conv2d(
            torch.as_tensor(x_cal, dtype=torch.float64), torch.as_tensor(w1),
            torch.as_tensor(b1), padding=1))
        logits = torch.nn.functional.avg_pool2d(hidden, 2).flatten(1) @ torch.as_tensor(wl).T \
            + torch.as_tensor(bl)
    p2 = np.percentile(logits.numpy(), 99.99)
    np.testing.assert_allclose(converted[0].weight.detach().numpy(), w1 * scale_in, rtol=1e-4)
    np.testing.assert_allclose(converted[-2].weight.detach().numpy(), wl / p2, rtol=1e-4)

    def iaf(v, current):
        v += current
        spikes = np.where(v > 0, np.trunc(v), 0.0)
        v -= spikes
        np.maximum(v, -1.0, out=v)
        return spikes

    s_in = enc.full(0, len(x), 16).astype(np.float64)
    v1, v2 = np.zeros((len(x), 4, 8, 8)), np.zeros((len(x), 10))
    counts, agree = np.zeros((len(x), 10)), []
    for t in range(16):
        with torch.no_grad():
            c1 = torch.nn.functional.conv2d(torch.as_tensor(s_in[:, t]),
                                            torch.as_tensor(w1 * scale_in),
                                            torch.as_tensor(b1), padding=1).numpy()
        s1 = iaf(v1, c1)
        pooled = s1.reshape(len(x), 4, 4, 2, 4, 2).mean(axis=(3, 5)).reshape(len(x), -1)
        counts += iaf(v2, pooled @ (wl / p2).T + bl / p2)
        if t + 1 in out:
            agree.append(np.mean(out[t + 1] == counts))
    assert min(agree) >= 0.95 and counts.sum() > 0  # float32 vs float64 at a threshold


def test_command_line_takes_none_and_refuses_unknown_names(capsys):
    import peers

    args = peers.parse(["--peers", "none", "--configs", "best,paper", "--timesteps", "32,16"])
    assert args.peers == [] and args.configs == ["best", "paper"] and args.timesteps == [16, 32]
    with pytest.raises(SystemExit) as exc:
        peers.parse(["--peers", "snntorch"])
    assert exc.value.code == 2 and "choose from spikingjelly, sinabs or none" in \
        capsys.readouterr().err


def test_our_rows_match_the_sweep_step_on_the_calibrated_network(tmp_path):
    """A `fast` row of the benchmark is what snn2hw's own sweep step measures with the same
    samples, seed and T: the benchmark evaluates the calibrated network (per-channel
    factors and bias offsets applied), not the freshly lowered one."""
    from snn2hw import data
    from snn2hw.data.samples import materialize
    from snn2hw.steps.evaluate import evaluate
    from snn2hw.steps.options import CalibrationOptions, SweepOptions
    from snn2hw.steps.sweep import sweep

    path = tiny_torch_onnx(tmp_path / "two.onnx", two_convs=True)
    steps = (8, 16)
    rep = sweep(path, calibration=CalibrationOptions(samples=32, seed=0),
                options=SweepOptions(presets=("fast",), methods=("max-act",),
                                     timesteps=steps, eval_samples=120))
    expected = {t: rep["runs"][0]["at"][str(t)]["accuracy"] for t in steps}
    graph = import_onnx(path)
    dataset = load_data(graph, "digits", preprocess_for(graph, DataOptions()))
    net = snn.lower(graph)
    x_cal = data.calibration_set(dataset, 32)
    x, y = data.take(dataset.x_test, dataset.y_test, 120, "evaluation")
    x, y = materialize(x), np.asarray(y)
    options = peers_ours.CONFIGS["fast"]
    res = peers_ours.run(graph, net, x_cal, x, y, options, list(steps), 0, max(steps))
    assert res.convention == "pipelined"
    assert res.accuracy == pytest.approx(expected, abs=1e-12)
    # the lowered network without the calibration's factors and offsets measures otherwise
    from snn2hw.steps.settings import conversion_of
    raw = evaluate(graph, net, res.calibration.scales, x, y, list(steps), 0,
                   source_scales=res.calibration.source_scales, reset=res.calibration.reset,
                   conversion=conversion_of(peers_ours.calibration_options(options, 0, 16,
                                                                           32)))
    assert dict(raw.snn_accuracy) != pytest.approx(expected, abs=1e-12)
