"""The rounding-bias correction (``Conversion.rounding_bias``): the calibration records the
sources' mean rates, the quantiser moves each neuron's mean weight-rounding error into its
bias current. Expected values are computed here: the rates by a numpy integrate-and-fire
loop, the corrected biases from the exported integers with numpy; and the corrected export
still runs spike for spike on the independent model and Lava."""
from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lava_model  # noqa: E402
from test_channel_export import calibration_input  # noqa: E402
from test_channels import conv_graph, mlp_graph  # noqa: E402
from test_lava_exact import assert_same, reference_spikes, three_way  # noqa: E402

from snn2hw import snn  # noqa: E402
from snn2hw.artifacts.calibration import (CalibrationArtifact, load_calibration,  # noqa: E402
                                          save_calibration)
from snn2hw.calibrate import calibrate  # noqa: E402
from snn2hw.calibrate.channels import calibrated_network  # noqa: E402
from snn2hw.errors import ArtifactError, InputError  # noqa: E402
from snn2hw.hardware import profiles  # noqa: E402
from snn2hw.quantize import float_network, quantize  # noqa: E402
from snn2hw.quantize.verify import verify_network  # noqa: E402
from snn2hw.snn.options import Conversion  # noqa: E402

T = 24
DIRECT = Conversion(coding="direct", v_init=0.5, window="pipelined", rounding_bias=True)


def mlp_input() -> np.ndarray:
    return np.random.default_rng(5).uniform(-1, 1, (40, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def mlp():
    net = snn.lower(mlp_graph())
    cal = calibrate("max-act", net, mlp_input(), timesteps=T, seed=2, reset="subtract",
                    conversion=DIRECT)
    return net, cal


def bias_of(b, size: int) -> np.ndarray:
    return np.zeros(size) if b is None else np.asarray(b, dtype=np.float64).reshape(-1)


def dense(syn) -> np.ndarray:
    return syn.matrix(np.float64).toarray()


def test_rates_are_those_of_an_integrate_and_fire_loop(mlp):
    """Input: mean of clip(x / scale); hidden layer h: its spikes per step over a window of
    T steps, from a numpy loop (theta/2 start, reset by subtraction, strict threshold) on
    the float network's threshold-1 weights."""
    net, cal = mlp
    x = mlp_input()
    v_in = np.clip(x.astype(np.float64) / cal.scales[net.input], -1, 1)
    np.testing.assert_allclose(cal.source_rates[net.input], v_in.mean(axis=0), rtol=1e-12)
    qf = float_network(net, cal.scales, "loihi_float", cal.source_scales, cal.reset, DIRECT)
    h = qf.layers[0]
    current = v_in @ dense(h.synapses[0]).T + np.asarray(h.bias_mant).reshape(-1)
    v, spikes = np.full(current.shape, 0.5), np.zeros(current.shape)
    for _ in range(T):
        v += current
        fired = v > 1.0
        spikes += fired
        v -= fired
    np.testing.assert_allclose(cal.source_rates["h"], spikes.mean(axis=0) / T, atol=1e-9)
    assert set(cal.source_rates) == {net.input, "h"}   # the output feeds nothing


def test_corrected_bias_cancels_the_mean_rounding_error(mlp):
    """Per neuron: the exported integers' mean current at the recorded rates equals the
    float network's to within half a bias step, where the uncorrected export is off by the
    weights' rounding error."""
    net, cal = mlp
    profile = profiles.load("loihi_sim")
    plain = quantize(net, cal.scales, profile, cal.source_scales, cal.reset,
                     Conversion(coding="direct", v_init=0.5, window="pipelined"))
    fixed = quantize(net, cal.scales, profile, cal.source_scales, cal.reset, DIRECT,
                     rates=cal.source_rates)
    qf = float_network(net, cal.scales, profile.name, cal.source_scales, cal.reset, DIRECT)
    shift = 1 << profile.fixed.current_shift
    for lf, lp, lc in zip(qf.layers, plain.layers, fixed.layers):
        assert lc.threshold == lp.threshold
        theta = float(lc.threshold)
        source = lf.synapses[0].source
        per = fixed.input_levels if source == net.input else 1   # integers per float unit
        r = cal.source_rates[source]
        want = dense(lf.synapses[0]) @ r + bias_of(lf.bias_mant, lf.size)
        for q, name in ((lc, "corrected"), (lp, "plain")):
            w_int = dense(q.synapses[0]) * per / theta
            got = w_int @ r + bias_of(q.bias_v(), lf.size) / (theta * shift)
            err = np.abs(got - want)
            half_step = 2.0 ** q.bias_exp / 2 / (theta * shift)
            if name == "corrected":
                assert np.all(err <= half_step * (1 + 1e-9)), (lf.name, err, half_step)
            else:
                assert np.any(err > 2 / (theta * shift)), (lf.name, err)  # > 2 bias units
        np.testing.assert_array_equal(dense(lc.synapses[0]), dense(lp.synapses[0]))
        assert lc.report["rounding_bias_max_v"] > 0 and "rounding_bias_max_v" not in lp.report


def test_the_correction_needs_the_rates(mlp):
    net, cal = mlp
    with pytest.raises(InputError, match="--rounding-bias"):
        quantize(net, cal.scales, profiles.load("loihi_sim"), cal.source_scales, cal.reset,
                 DIRECT)
    short = dict(cal.source_rates, h=cal.source_rates["h"][:2])
    with pytest.raises(InputError, match="2 values for 4 neurons"):
        quantize(net, cal.scales, profiles.load("loihi_sim"), cal.source_scales, cal.reset,
                 DIRECT, rates=short)


def test_calibration_file_keeps_the_rates(mlp, tmp_path):
    net, cal = mlp
    path = tmp_path / "c.calib.h5"
    save_calibration(path, CalibrationArtifact(mlp_graph(), cal, "0" * 64, "{}"))
    with h5py.File(path) as f:
        assert f.attrs["format_version"] == 3
    back = load_calibration(path).calibration
    assert list(back.source_rates) == list(cal.source_rates)
    for name, r in cal.source_rates.items():
        np.testing.assert_array_equal(back.source_rates[name], r)
    assert back.params["rounding_bias"] is True
    with h5py.File(path, "r+") as f:
        del f["source_rates/0001"]
        f["source_rates"].create_dataset("0001", data=np.zeros(3))
    with pytest.raises(ArtifactError, match="one value per neuron"):
        load_calibration(path)


CONV = Conversion(per_channel=True, bias_calibration=True, rounding_bias=True)


@pytest.fixture(scope="module")
def conv_qnet():
    g = conv_graph()
    cal = calibrate("spike-norm", snn.lower(g), calibration_input(), timesteps=16, seed=1,
                    reset="subtract", percentile=99.9, conversion=CONV)
    net = calibrated_network(snn.lower(g), cal)
    return quantize(net, cal.scales, profiles.load("loihi_sim"), cal.source_scales, cal.reset,
                    CONV, rates=cal.source_rates)


def test_corrected_conv_export_holds_its_guarantees_and_matches_the_model(conv_qnet):
    """Per-neuron bias currents (a conv's border neurons see other rates) pass the
    fixed-point checks, and the reference agrees with the independent model."""
    hidden = [la for la in conv_qnet.layers if not la.is_output]
    assert all(len(np.unique(la.bias_mant)) > la.shape[0] for la in hidden)
    ver = verify_network(conv_qnet, profiles.load("loihi_sim").fixed, "loihi_sim")
    assert ver.ok, ver.problems
    spikes, ref = reference_spikes(conv_qnet, calibration_input()[:4], 20)
    assert_same(lava_model.run_model(conv_qnet, spikes), ref, "independent model")


@pytest.mark.lava
def test_corrected_export_lava_reference_and_model_agree(conv_qnet):
    three_way(conv_qnet, calibration_input()[:3], 20)


def test_cli_calibrate_and_export_carry_the_correction(tmp_path, capsys):
    """``calibrate --preset fast`` (``--rounding-bias``, given here too) writes the rates; ``export`` of that file
    corrects the biases (its report names the largest correction per layer), lowering
    theta where the corrected bias would leave its range, and an export
    asking for the correction of a calibration made without it is refused in one line."""
    from snn2hw.artifacts.export import load_export
    from snn2hw.cli import main
    from test_export_cli import tiny
    from onnx_builders import export_torch

    model = str(export_torch(tiny(0), tmp_path / "m.onnx", {"snn2hw.dataset": "digits"}))
    common = ["--method", "max-act", "--preset", "fast", "--samples", "20", "--timesteps", "16"]
    with_rb, without = tmp_path / "rb.calib.h5", tmp_path / "plain.calib.h5"
    assert main(["calibrate", model, *common, "--rounding-bias", "--eval-samples", "10",
                 "-o", str(with_rb)]) == 0
    assert main(["calibrate", model, *common, "--no-rounding-bias", "--eval-samples", "10",
                 "-o", str(without)]) == 0
    assert load_calibration(with_rb).calibration.source_rates
    assert load_calibration(without).calibration.source_rates is None
    out = tmp_path / "e.h5"
    assert main(["export", model, "--calibration", str(with_rb), "--eval-samples", "10",
                 "-o", str(out)]) == 0
    art = load_export(out)
    assert art.params["rounding_bias"] is True
    assert all(la.report["rounding_bias_max_v"] > 0 for la in art.qnet.layers)
    # this untrained model's first layer has its bias at the edge of its range: the
    # correction would take it past, so the quantiser lowered theta until it fits
    first = art.qnet.layers[0].report
    assert first["limited_by"] == "bias range after the rounding-bias correction"
    assert first["scale"] < first["scale_before_rounding_check"]
    ver = verify_network(art.qnet, profiles.load("loihi_sim").fixed, "loihi_sim")
    assert ver.ok, ver.problems
    capsys.readouterr()
    bad = tmp_path / "bad.h5"
    assert main(["export", model, "--calibration", str(without), "--rounding-bias",
                 "-o", str(bad)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "rounding_bias" in err[0] and not bad.exists()
