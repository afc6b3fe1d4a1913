"""A custom hardware profile, written here to a temporary file, takes effect in every field
the code reads: in the exported integers, in the resource estimate, in the parameters of
the Lava process graph, or, where Lava cannot run the value, as a refusal with exit 3
that names the field.

Expected values come from the profile numbers written in each test (bounds, widths,
core counts), never from the quantiser's own arithmetic. The Lava graph's parameters are
checked in test_profile_lava_graph.py.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from snn2hw import data
from snn2hw.snn import simulate
from snn2hw.cli import main
from snn2hw.steps.deploy import prepare_network
from snn2hw.snn.encoders import make_encoder
from snn2hw.artifacts.export import load_export
from snn2hw.exporters.lava.settings import Messages
from snn2hw.steps.pipeline import EVALUATION_STREAM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_builders import tiny_torch_onnx  # noqa: E402
from profile_builders import write_profile  # noqa: E402



@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny conv net with biases and thresholds from one calibration (max-act, fast)."""
    root = tmp_path_factory.mktemp("custom_profile")
    onnx_path, calib = root / "m.onnx", root / "m.calib.h5"
    tiny_torch_onnx(onnx_path, seed=3)
    assert main(["calibrate", str(onnx_path), "--data", "digits", "--method", "max-act",
                 "--timesteps", "16", "--samples", "16", "--eval-samples", "4",
                 "-o", str(calib)]) == 0
    return onnx_path, calib


def export(model, profile: Path, out: Path, capsys) -> tuple[int, str, str]:
    """`snn2hw export` with ``profile``: exit code, stdout, stderr."""
    onnx_path, calib = model
    code = main(["export", str(onnx_path), "--calibration", str(calib), "--profile",
                 str(profile), "--eval-samples", "4", "--timesteps", "16", "-o", str(out)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def baseline(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("baseline")
    out = root / "base.h5"
    onnx_path, calib = model
    assert main(["export", str(onnx_path), "--calibration", str(calib), "--profile",
                 str(write_profile(root / "same.toml", {})), "--eval-samples", "4",
                 "--timesteps", "16", "-o", str(out)]) == 0
    return load_export(out).qnet


def all_weights(qnet) -> np.ndarray:
    return np.concatenate([s.values() for la in qnet.layers for s in la.synapses])


def biased(qnet) -> list:
    return [la for la in qnet.layers if la.bias_mant is not None]


# --------------------------------------------------------------------------------------
# Each field the quantiser and the resource estimate read
# --------------------------------------------------------------------------------------

def weight_range(q, base, report):
    w, wb = all_weights(q), all_weights(base)
    assert wb.max() > 100 or wb.min() < -100           # the default range was used
    assert w.min() >= -100 and w.max() <= 100
    assert w.max() == 100 or w.min() == -100           # and the new one is used fully


def weight_bits(q, base, report):
    assert all_weights(q).min() >= -128 and all_weights(q).max() <= 127
    assert all_weights(base).max() > 127 or all_weights(base).min() < -128


def threshold_bits(q, base, report):
    assert max(la.threshold for la in base.layers) > 127
    assert all(0 < la.threshold <= 127 for la in q.layers)
    assert any(la.report["limited_by"] == "threshold bits" for la in q.layers)


def state_bits(q, base, report):
    assert q.state_bits == 16 and base.state_bits == 24
    assert any(la.report["limited_by"] == "16-bit state" for la in q.layers)
    # (threshold + bias) << 6 must stay inside 16 bits: v_max = 2**15 - 1.
    for la in q.layers:
        bias = 0 if la.bias_mant is None else int(np.abs(la.bias_v()).max())
        assert (la.threshold << 6) + bias <= (1 << 15) - 1


def shifts(q, base, report):
    assert (q.threshold_shift, q.current_shift) == (4, 4)
    # A bias current b (weight units) is b << 4 in v units: smaller than with << 6, so it
    # needs a smaller (or equal) exponent for the same 13-bit mantissa.
    assert all(a.bias_exp <= b.bias_exp for a, b in zip(biased(q), biased(base)))


def bias_mantissa_bits(q, base, report):
    assert biased(q)
    assert all(np.abs(la.bias_mant).max() <= 31 for la in biased(q))   # 6 bits signed
    assert any(np.abs(la.bias_mant).max() > 31 for la in biased(base))
    assert any(a.bias_exp > b.bias_exp for a, b in zip(biased(q), biased(base)))


def bias_exp_min(q, base, report):
    assert any(la.bias_exp < 7 for la in biased(base))
    assert all(la.bias_exp == 7 for la in biased(q))


def bias_exp_max(q, base, report):
    assert any(la.bias_exp > 0 for la in biased(base))
    assert all(la.bias_exp == 0 for la in biased(q))
    assert all(np.abs(la.bias_mant).max() <= 4095 for la in biased(q))  # 13-bit mantissa
    assert any(la.report["limited_by"] == "bias range" for la in q.layers)


def resources_profile(q, base, report):
    usage = report["resources"]
    assert usage["profile"] == "mychip"
    for la in q.layers:   # 16 neurons per core in mychip.toml; memory is never the limit
        assert usage["layers"][la.name]["cores"] == math.ceil(la.size / 16)


EFFECTS = {
    "weights.min/max": ({"weights.min": -100, "weights.max": 100}, weight_range),
    "weights.bits": ({"weights.bits": 8, "weights.min": -128, "weights.max": 127},
                     weight_bits),
    "threshold.bits": ({"threshold.bits": 7}, threshold_bits),
    "state.bits": ({"state.bits": 16}, state_bits),
    "threshold.shift/state.current_shift": ({"threshold.shift": 4,
                                             "state.current_shift": 4}, shifts),
    "bias.mantissa_bits": ({"bias.mantissa_bits": 6}, bias_mantissa_bits),
    "bias.exp_min": ({"bias.exp_min": 7}, bias_exp_min),
    "bias.exp_max": ({"bias.exp_max": 0}, bias_exp_max),
    "resources_profile": ({"resources_profile": "mychip.toml"}, resources_profile),
}


@pytest.mark.parametrize("case", list(EFFECTS))
def test_profile_field_changes_the_export(case, model, baseline, tmp_path, capsys):
    changes, check = EFFECTS[case]
    write_profile(tmp_path / "mychip.toml", {"resources.neurons_per_core": 16,
                                             "resources.fan_in_per_core": 1 << 20},
                  base="loihi2")
    profile = write_profile(tmp_path / "custom.toml", changes)
    code, _, err = export(model, profile, tmp_path / "out.h5", capsys)
    assert code == 0, err
    art = load_export(tmp_path / "out.h5")
    assert art.qnet.profile == "custom" and art.profile_toml == profile.read_text()
    check(art.qnet, baseline, art.report)


# --------------------------------------------------------------------------------------
# Values Lava or the reference cannot run: exit 3, naming the field
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [("neuron.du", 2000), ("neuron.dv", 5)])
def test_export_refuses_a_neuron_that_is_not_integrate_and_fire(field, value, model,
                                                                tmp_path, capsys):
    profile = write_profile(tmp_path / "leaky.toml", {field: value})
    code, _, err = export(model, profile, tmp_path / "out.h5", capsys)
    assert code == 3
    assert err.startswith(f"error: profile leaky: {field} = {value}, but snn2hw runs only "
                          "integrate-and-fire neurons") and err.count("\n") == 1
    assert not (tmp_path / "out.h5").exists()


REFUSED = {
    "weights.bits": {"weights.bits": 10, "weights.min": -512, "weights.max": 511},
    "weights.max": {"weights.min": -200, "weights.max": 300},
    "threshold.bits": {"threshold.bits": 18},
    "threshold.shift": {"threshold.shift": 4, "state.current_shift": 4},
    "state.bits": {"state.bits": 16},
    "bias.mantissa_bits": {"bias.mantissa_bits": 14},
    "bias.exp_max": {"bias.exp_max": 8},
    "messages.input_bits": {"messages.input_bits": 1},
    "messages.hidden_bits": {"messages.hidden_bits": 32},
    "messages.relay_bits": {"messages.relay_bits": 12},
}


@pytest.mark.parametrize("field", list(REFUSED))
def test_run_refuses_a_field_lava_cannot_run(field, model, tmp_path, capsys):
    profile = write_profile(tmp_path / "odd.toml", REFUSED[field])
    code, out, err = export(model, profile, tmp_path / "out.h5", capsys)
    assert code == 0, err            # the target is valid; only Lava cannot run it
    value = REFUSED[field][field]
    assert f"warning: `snn2hw run` will refuse this export: profile odd: {field} = {value}" \
        in out
    code = main(["run", str(tmp_path / "out.h5"), "--samples", "2", "--timesteps", "8"])
    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith(f"error: profile odd: {field} = {value}, but ")
    assert err.count("\n") == 1


def edit_export(path: Path, **attrs) -> None:
    """Change top-level attributes of an export file, as a hand-edited file would."""
    import h5py

    with h5py.File(path, "r+") as f:
        for key, value in attrs.items():
            f.attrs[key] = value


def test_run_refuses_a_reset_mode_the_stored_profile_lacks(model, tmp_path, capsys):
    onnx_path, _ = model
    out = tmp_path / "sub.h5"
    assert main(["export", str(onnx_path), "--reset", "subtract", "--method", "max-act",
                 "--data", "digits", "--timesteps", "16", "--samples", "16",
                 "--eval-samples", "4", "-o", str(out)]) == 0
    edit_export(out, profile_toml=write_profile(tmp_path / "loihi_sim.toml",
                                                {"neuron.reset": "zero"}).read_text())
    capsys.readouterr()
    assert main(["run", str(out), "--samples", "2", "--timesteps", "8"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("error: profile loihi_sim has no neuron with reset 'subtract'")


def test_run_refuses_a_network_whose_numbers_differ_from_its_profile(model, tmp_path,
                                                                      capsys):
    profile = write_profile(tmp_path / "odd.toml", {})
    code, _, err = export(model, profile, tmp_path / "out.h5", capsys)
    assert code == 0, err
    edit_export(tmp_path / "out.h5", state_bits=20)   # the stored profile keeps 24
    assert main(["run", str(tmp_path / "out.h5"), "--samples", "2", "--timesteps", "8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the network has state_bits = 20, but its profile "
                          "odd has state.bits = 24")


# --------------------------------------------------------------------------------------
# End to end: a profile that differs in every field Lava can run still agrees bit for bit
# --------------------------------------------------------------------------------------

@pytest.mark.lava
def test_custom_profile_runs_on_lava_spike_for_spike(model, tmp_path, capsys):
    profile = write_profile(tmp_path / "narrow.toml", {
        "weights.bits": 8, "weights.min": -128, "weights.max": 127, "threshold.bits": 12,
        "bias.mantissa_bits": 8, "bias.exp_min": 1, "messages.input_bits": 16,
        "messages.hidden_bits": 0, "messages.relay_bits": 20})
    out, report = tmp_path / "out.h5", tmp_path / "run.json"
    code, _, err = export(model, profile, out, capsys)
    assert code == 0, err
    assert main(["run", str(out), "--samples", "6", "--timesteps", "32", "--report",
                 str(report)]) == 0, capsys.readouterr().err
    rep = json.loads(report.read_text())
    assert rep["profile"] == "narrow" and rep["identical"] is True
    # Agreement means something only if every layer fires (same samples and spikes as run).
    art = load_export(out)
    q = art.qnet
    ds = data.load("digits", q.input_shape, q.output.size,
                   data.Preprocess.from_json(art.preprocess))
    x, _ = data.take(ds.x_test, ds.y_test, 6, "evaluation")
    enc = make_encoder("poisson", x, input_scale=q.input_scale, seed=art.seed,
                       stream=EVALUATION_STREAM)
    ref = simulate.simulate(prepare_network(q), enc, 32,
                            record=[la.name for la in q.layers])
    assert all(r.sum() > 0 for r in ref.records.values())


# --------------------------------------------------------------------------------------
# Profiles stored in export files written before the [messages] table existed
# --------------------------------------------------------------------------------------

def test_stored_shipped_profile_without_messages_takes_the_shipped_ones(tmp_path):
    from snn2hw.hardware import profiles

    old = write_profile(tmp_path / "loihi_sim.toml", {"messages": None,
                                                      "resources_profile": None})
    text = old.read_text()
    assert "[messages]" not in text
    stored = profiles.load_stored(text, "old.h5")
    assert stored.settings.messages == Messages(8, 1, 24)   # hw_profiles/loihi_sim.toml


def test_stored_custom_profile_without_messages_is_refused(tmp_path):
    from snn2hw.hardware import profiles
    from snn2hw.errors import ProfileError

    text = write_profile(tmp_path / "mine.toml", {"messages": None}).read_text()
    with pytest.raises(ProfileError, match=r"missing field 'messages\.input_bits'"):
        profiles.load_stored(text, "old.h5")
