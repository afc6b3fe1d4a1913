"""Presets, the conversion flags and `snn2hw sweep` (issue 12): the override rules, and the
sweep's figures against independent computations on a tiny model."""
from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_builders import tiny_torch_onnx  # noqa: E402

from snn2hw import data, snn  # noqa: E402
from snn2hw.cli import build_parser, main  # noqa: E402
from snn2hw.cli.options import calibration_options, sweep_calibration  # noqa: E402
from snn2hw.snn.options import Conversion  # noqa: E402
from snn2hw.steps import settings  # noqa: E402
from snn2hw.steps.presets import PRESETS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FAST = {"coding": "direct", "v_init": 0.5, "per_channel": True, "bias_calibration": True,
        "readout": "membrane", "window": "pipelined", "rounding_bias": True}


def _options(*flags: str):
    return calibration_options(build_parser().parse_args(["calibrate", "m.onnx", "-o", "x",
                                                          *flags]))


def test_without_a_preset_every_setting_is_the_papers():
    opts = _options()
    assert settings.requested_conversion(opts) == Conversion()
    assert (settings.reset_of(opts), settings.percentile_of(opts)) == ("zero", 100.0)
    assert settings.requested_conversion(_options("--preset", "paper")) == Conversion()


def test_the_fast_preset_and_explicit_flags_override_it():
    fast = _options("--preset", "fast")
    assert settings.requested_conversion(fast) == Conversion(**FAST)
    assert (settings.reset_of(fast), settings.percentile_of(fast)) == ("subtract", 99.5)
    mixed = _options("--preset", "fast", "--coding", "poisson", "--no-per-channel",
                     "--reset", "zero", "--percentile", "99")
    assert settings.requested_conversion(mixed) == Conversion(**(FAST | {"coding": "poisson",
                                                                  "per_channel": False}))
    assert (settings.reset_of(mixed), settings.percentile_of(mixed)) == ("zero", 99.0)
    alone = _options("--readout", "membrane", "--v-init", "0.5")
    assert settings.requested_conversion(alone) == Conversion(readout="membrane", v_init=0.5)


def test_every_conversion_field_has_a_flag_and_presets_live_in_one_module():
    given = _options("--coding", "direct", "--v-init", "0.5", "--per-channel",
                     "--bias-calibration", "--readout", "membrane", "--window", "pipelined",
                     "--rounding-bias")
    assert given.conversion == FAST
    parser = build_parser()
    for command in ("calibrate", "export"):
        args = parser.parse_args([command, "m.onnx", "-o", "x", "--preset", "fast"])
        assert args.preset == "fast"
    with pytest.raises(SystemExit):
        parser.parse_args(["calibrate", "m.onnx", "-o", "x", "--preset", "slow"])
    args = parser.parse_args(["sweep", "m.onnx", "-o", "x", "--presets", "paper,fast",
                              "--reset", "subtract"])
    assert args.presets == tuple(PRESETS) == ("paper", "fast")
    assert sweep_calibration(args).reset == "subtract"   # overrides every preset


def test_an_explicit_paper_preset_writes_the_same_file_as_none(tmp_path):
    model = tiny_torch_onnx(tmp_path / "m.onnx")
    common = [str(model), "--timesteps", "8", "--samples", "8", "--eval-samples", "10"]
    assert main(["calibrate", *common, "-o", str(tmp_path / "a.h5")]) == 0
    assert main(["calibrate", *common, "--preset", "paper", "-o", str(tmp_path / "b.h5")]) == 0
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


def test_export_refuses_a_preset_its_calibration_was_not_made_with(tmp_path, capsys):
    model = tiny_torch_onnx(tmp_path / "m.onnx")
    cal = tmp_path / "m.calib.h5"
    assert main(["calibrate", str(model), "--timesteps", "8", "--samples", "8",
                 "--eval-samples", "10", "-o", str(cal)]) == 0
    capsys.readouterr()
    assert main(["export", str(model), "--calibration", str(cal), "--preset", "fast",
                 "-o", str(tmp_path / "m.h5")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "calibrate again with --" in err
    assert not (tmp_path / "m.h5").exists()


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    model = tiny_torch_onnx(tmp / "m.onnx")
    out, png = tmp / "sweep.json", tmp / "sweep.png"
    code = main(["sweep", str(model), "--presets", "paper", "--methods", "max-act",
                 "--timesteps", "3,6,12", "--samples", "16", "--eval-samples", "30",
                 "--seed", "2", "-o", str(out), "--plot", str(png)])
    assert code == 0
    return model, json.loads(out.read_text()), png


def _calibrated(model, conversion: Conversion | None = None):
    from snn2hw.calibrate import calibrate
    from snn2hw.importer import import_onnx

    graph = import_onnx(model)
    ds = data.load("digits", graph.input_shape, 10, data.Preprocess())
    net = snn.lower(graph)
    extra = {} if conversion is None else {"conversion": conversion}
    cal = calibrate("max-act", net, ds.x_train[:16], timesteps=12, seed=2, **extra)
    x, y = ds.x_test[:30], ds.y_test[:30]
    return graph, net, cal, x, y


def test_sweep_accuracy_at_each_t_equals_a_separate_run_at_that_t(swept):
    from snn2hw.steps.evaluate import evaluate

    model, rep, png = swept
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    graph, net, cal, x, y = _calibrated(model)
    run = rep["runs"][0]
    assert (run["preset"], run["method"], rep["eval_samples"]) == ("paper", "max-act", 30)
    for t in (3, 6, 12):
        alone = evaluate(graph, net, cal.scales, x, y, [t], 2, reset=cal.reset)
        assert run["at"][str(t)]["accuracy"] == alone.snn_accuracy[t]
    assert rep["ann_accuracy"] == alone.ann_accuracy


def _counted(net, cal, x, t: int) -> tuple[float, float, float]:
    """SOPs, spikes and neuron updates per inference of the tiny net (conv 3x3 pad 1 -> 4x8x8
    neurons -> avgpool 2 -> dense 10), counted here from the recorded spike trains: an
    input pixel drives 4 channels at each of its in-range 3x3 neighbours, a hidden neuron
    the 10 outputs; a spike at step s is delivered within T if s + 1 < T."""
    from snn2hw.snn import simulate
    from snn2hw.snn.encoders import make_encoder
    from snn2hw.steps.settings import EVALUATION_STREAM

    hidden, out = [la.name for la in net.layers]
    prep = simulate.prepare_float(net, cal.scales, source_scales=cal.source_scales)
    enc = make_encoder("poisson", x, input_scale=cal.scales[net.input], seed=2,
                       stream=EVALUATION_STREAM)
    res = simulate.simulate(prep, enc, t, record=[net.input, hidden, out])
    rows = np.array([min(i + 1, 7) - max(i - 1, 0) + 1 for i in range(8)])
    fan_in = 4 * np.outer(rows, rows).ravel()
    sent_in = np.abs(res.records[net.input][:, :t - 1]).sum(axis=(0, 1))
    sent_hidden = res.records[hidden][:, :t - 1].sum()
    sops = float(sent_in @ fan_in + 10 * sent_hidden) / len(x)
    spikes = float(res.records[hidden].sum() + res.records[out].sum()) / len(x)
    return sops, spikes, float((4 * 8 * 8 + 10) * t)


def test_sweep_operations_and_energy_against_the_profiles_figures(swept):
    model, rep, _ = swept
    _, net, cal, x, _ = _calibrated(model)
    figures = tomllib.loads((ROOT / "hw_profiles" / "loihi2.toml").read_text())["energy"]
    assert rep["energy_model"]["source"] == figures["source"]
    run = rep["runs"][0]
    for t in (3, 6, 12):
        sops, spikes, updates = _counted(net, cal, x, t)
        got = run["at"][str(t)]
        assert got["sops"] == pytest.approx(sops, rel=1e-12)
        assert got["spikes"] == pytest.approx(spikes, rel=1e-12)
        assert got["neuron_updates"] == updates
        pj = (sops * figures["synaptic_op_pj"]
              + spikes * (figures["neuron_update_active_pj"] + figures["spike_pj"])
              + (updates - spikes) * figures["neuron_update_inactive_pj"])
        assert got["energy_uj"] == pytest.approx(pj / 1e6, rel=1e-12)


def test_sweep_errors_are_one_line(tmp_path, capsys):
    model = tiny_torch_onnx(tmp_path / "m.onnx")
    capsys.readouterr()
    assert main(["sweep", str(model), "--profile", "loihi_float", "--timesteps", "4",
                 "-o", str(tmp_path / "s.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: profile loihi_float has no [energy]")
    assert not (tmp_path / "s.json").exists()


def test_sweep_under_the_pipelined_window_counts_each_layers_window(tmp_path):
    """Pipelined window: every layer integrates T steps from its own window start; a spike
    sent at window step s is delivered within the window if s < T. Counted here from the
    recorded trains, against the sweep's figures."""
    from snn2hw.snn import simulate
    from snn2hw.snn.encoders import make_encoder
    from snn2hw.steps.evaluate import evaluate
    from snn2hw.steps.settings import EVALUATION_STREAM

    model = tiny_torch_onnx(tmp_path / "m.onnx")
    out = tmp_path / "s.json"
    assert main(["sweep", str(model), "--presets", "paper", "--methods", "max-act",
                 "--window", "pipelined", "--timesteps", "3,6,12", "--samples", "16",
                 "--eval-samples", "30", "--seed", "2", "-o", str(out)]) == 0
    run = json.loads(out.read_text())["runs"][0]
    assert run["settings"]["window"] == "pipelined"
    graph, net, cal, x, y = _calibrated(model, Conversion(window="pipelined"))
    conv = Conversion(window="pipelined")
    hidden, last = [la.name for la in net.layers]
    rows = np.array([min(i + 1, 7) - max(i - 1, 0) + 1 for i in range(8)])
    fan_in = 4 * np.outer(rows, rows).ravel()
    for t in (3, 6, 12):
        prep = simulate.prepare_float(net, cal.scales, source_scales=cal.source_scales,
                                      conversion=conv)
        enc = make_encoder("poisson", x, input_scale=cal.scales[net.input], seed=2,
                           stream=EVALUATION_STREAM)
        res = simulate.simulate(prep, enc, t, record=[net.input, hidden, last])
        sops = float(np.abs(res.records[net.input]).sum(axis=(0, 1)) @ fan_in
                     + 10 * res.records[hidden].sum()) / len(x)
        assert run["at"][str(t)]["sops"] == pytest.approx(sops, rel=1e-12)
        alone = evaluate(graph, net, cal.scales, x, y, [t], 2, reset=cal.reset,
                         conversion=conv)
        assert run["at"][str(t)]["accuracy"] == alone.snn_accuracy[t]
