"""Per-channel scales and bias calibration carried to hardware: the calibration file keeps
the factors and offsets (format version 2; files without them stay version 1), the export
of a calibrated network passes the fixed-point guarantees, and the reference simulator, the
independent model of tests/lava_model.py and (``lava`` tests) a real Lava run agree spike
for spike on it."""
from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lava_model  # noqa: E402
from test_channels import conv_graph  # noqa: E402
from test_lava_exact import assert_same, reference_spikes, three_way  # noqa: E402

from snn2hw import snn  # noqa: E402
from snn2hw.artifacts.calibration import (CalibrationArtifact, load_calibration,  # noqa: E402
                                          save_calibration)
from snn2hw.calibrate import calibrate  # noqa: E402
from snn2hw.calibrate.channels import calibrated_network  # noqa: E402
from snn2hw.errors import ArtifactError  # noqa: E402
from snn2hw.hardware import profiles  # noqa: E402
from snn2hw.quantize import quantize  # noqa: E402
from snn2hw.quantize.verify import verify_network  # noqa: E402
from snn2hw.snn.options import Conversion  # noqa: E402

ALL = Conversion(per_channel=True, bias_calibration=True)


def calibration_input() -> np.ndarray:
    return np.clip(np.random.default_rng(21).normal(0, 0.5, (24, 2, 8, 8)), -1, 1
                   ).astype(np.float32)


@pytest.fixture(scope="module")
def calibrated():
    g = conv_graph()
    cal = calibrate("spike-norm", snn.lower(g), calibration_input(), timesteps=16, seed=1,
                    reset="subtract", percentile=99.9, conversion=ALL)
    return g, cal


def test_calibration_file_keeps_factors_and_offsets(calibrated, tmp_path):
    g, cal = calibrated
    assert set(cal.channel_factors) <= {"a", "j"} and set(cal.bias_offsets) == {"a", "j"}
    path = tmp_path / "c.calib.h5"
    save_calibration(path, CalibrationArtifact(g, cal, "0" * 64, "{}"))
    with h5py.File(path) as f:
        assert f.attrs["format_version"] == 2
    back = load_calibration(path).calibration
    for key in ("channel_factors", "bias_offsets"):
        ours, theirs = getattr(cal, key), getattr(back, key)
        assert list(ours) == list(theirs)
        for name in ours:
            np.testing.assert_array_equal(ours[name], theirs[name])
    assert back.params["per_channel"] is True and back.params["bias_calibration"] is True


def test_calibration_without_the_options_stays_version_1(tmp_path):
    g = conv_graph()
    cal = calibrate("max-act", snn.lower(g), calibration_input())
    path = tmp_path / "c.calib.h5"
    save_calibration(path, CalibrationArtifact(g, cal, "0" * 64, "{}"))
    with h5py.File(path) as f:
        assert f.attrs["format_version"] == 1 and "channel_factors" not in f


def test_factors_of_an_unknown_layer_are_refused(calibrated, tmp_path):
    g, cal = calibrated
    path = tmp_path / "c.calib.h5"
    save_calibration(path, CalibrationArtifact(g, cal, "0" * 64, "{}"))
    with h5py.File(path, "r+") as f:
        f["bias_offsets"].attrs["names"] = '["nope", "j"]'
    with pytest.raises(ArtifactError, match="nope"):
        load_calibration(path)


def calibrated_qnet(calibrated):
    g, cal = calibrated
    net = calibrated_network(snn.lower(g), cal)
    return quantize(net, cal.scales, profiles.load("loihi_sim"), cal.source_scales, cal.reset)


def test_export_has_bias_currents_per_channel_weights_and_holds_its_guarantees(calibrated):
    qnet = calibrated_qnet(calibrated)
    hidden = [la for la in qnet.layers if not la.is_output]
    assert all(la.bias_mant is not None for la in hidden)
    j = next(la for la in qnet.layers if la.name == "j")
    assert sorted(s.kind for s in j.synapses) == ["conv", "conv"]  # identity: depthwise
    ver = verify_network(qnet, profiles.load("loihi_sim").fixed, "loihi_sim")
    assert ver.ok, ver.problems


def test_per_channel_export_reference_matches_the_independent_model(calibrated):
    qnet = calibrated_qnet(calibrated)
    spikes, ref = reference_spikes(qnet, calibration_input()[:4], 20)
    assert_same(lava_model.run_model(qnet, spikes), ref, "independent model")
    assert any(ref[la.name].any() for la in qnet.layers if not la.is_output)


@pytest.mark.lava
def test_per_channel_export_lava_reference_and_model_agree(calibrated):
    three_way(calibrated_qnet(calibrated), calibration_input()[:3], 20)
