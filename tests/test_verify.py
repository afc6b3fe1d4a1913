"""`snn2hw verify EXPORT`: every export `export` writes passes; hand-made files that break
a guarantee fail with exit 3 (budgets worked out by hand here); `export` refuses to write
a file that would fail."""
from __future__ import annotations

import dataclasses
import json
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from snn2hw import data, snn
from snn2hw.artifacts.calibration import CalibrationArtifact, save_calibration
from snn2hw.calibrate import calibrate
from snn2hw.cli import main
from snn2hw.artifacts.export import load_export, save_export
from snn2hw.importer import file_hash, import_onnx
from snn2hw.quantize.qnet import IntSynapse, QuantizedNetwork, QuantLayer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lava_model import synapse_weights  # noqa: E402  (loops, not IntSynapse.apply)
from onnx_builders import tiny_torch_onnx  # noqa: E402

V_MAX = (1 << 23) - 1


def calibration_file(model: str, path: Path, reset: str) -> str:
    graph = import_onnx(model)
    x = data.load("digits", graph.input_shape, 10, data.Preprocess()).x_train[:20]
    cal = calibrate("max-act", snn.lower(graph), x, reset=reset)
    save_calibration(path, CalibrationArtifact(graph, cal, file_hash(model),
                                               data.Preprocess().to_json()))
    return str(path)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Every kind of file `snn2hw export` writes: loihi_sim with either reset, a custom
    profile file, the float profile; one model with a bias and one with two convs."""
    d = tmp_path_factory.mktemp("verify")
    custom = d / "custom.toml"
    text = resources.files("snn2hw.hw_profiles").joinpath("loihi_sim.toml").read_text()
    custom.write_text(text.replace('"loihi_sim"', '"custom"').replace("max = 255", "max = 127")
                      .replace("min = -256", "min = -128"))
    out = {}
    for name, two in (("one", False), ("two", True)):
        model = str(tiny_torch_onnx(d / f"{name}.onnx", dataset=None, two_convs=two))
        for reset in ("zero", "subtract"):
            cal = calibration_file(model, d / f"{name}.{reset}.calib.h5", reset)
            for profile in ("loihi_sim", str(custom), "loihi_float"):
                path = d / f"{name}.{reset}.{Path(profile).stem}.h5"
                assert main(["export", model, "--calibration", cal, "--profile", profile,
                             "-o", str(path)]) == 0
                out[path.name] = path
    return out


def test_verify_passes_on_every_export_that_export_writes(exports, capsys):
    capsys.readouterr()
    for name, path in exports.items():
        assert main(["verify", str(path)]) == 0, name
        text = capsys.readouterr().out
        if "loihi_float" in name:
            assert "floating point" in text
        else:
            assert "every guarantee holds" in text and "yes" not in text


def test_verify_json_figures_match_the_files_integers(exports, capsys):
    path = exports["two.zero.loihi_sim.h5"]
    art = load_export(path)
    capsys.readouterr()
    assert main(["verify", "--json", str(path)]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] and rep["state_bits"] == 24
    for la, got in zip(art.qnet.layers, rep["layers"]):
        pos = neg = 0
        for syn in la.synapses:
            m = synapse_weights(syn)
            if syn.source == art.qnet.input:  # signed input spikes
                pos = neg = pos + np.abs(m).sum(axis=1)
            else:
                pos, neg = pos + np.maximum(m, 0).sum(axis=1), neg + np.maximum(-m, 0).sum(1)
        b = np.zeros(la.size, np.int64) if la.bias_mant is None else \
            la.bias_mant.astype(np.int64) * 2 ** la.bias_exp
        worst = np.maximum(pos * 64 + np.maximum(b, 0), neg * 64 + np.maximum(-b, 0))
        assert got["name"] == la.name
        assert got["input_pos"] == int(pos.max()) * 64
        assert got["worst"] == int(worst.max()) + la.threshold * 64
        assert got["headroom_bits"] == pytest.approx(np.log2(V_MAX / got["worst"]), abs=1e-3)


# --------------------------------------------------------------------------------------
# Hand-made files
# --------------------------------------------------------------------------------------

def hand_made(template: Path, path: Path, *, more: tuple[int, ...] = (), bias0: int = 63,
              state_bits: int = 24, weight: int = 255, du: int = 4095) -> Path:
    """One dense layer on 600 signed inputs, threshold 1,071. Neuron 0: 509 weights of
    ``weight``, one of 205 and then ``more`` (sum of |w| 130,000 + sum(more)), bias
    ``bias0`` << 0: (130,000 + 1,071) << 6 + 63 = 8,388,607 = 2**23 - 1, exactly the
    state range."""
    w = np.zeros((2, 600), dtype=np.int32)
    w[0, :509] = weight
    w[0, 509] = 205
    w[0, 510:510 + len(more)] = more
    w[1, :10] = [3, -4, 5, 0, 9, -9, 1, 1, 2, -7]
    layer = QuantLayer("out", (2,), 1, [IntSynapse("input", 1, (600,), (2,), "matrix",
                                                   csr=sp.csr_matrix(w))],
                       1071, np.array([bias0, -3], dtype=np.int32), 0, is_output=True)
    art = load_export(template)
    qnet = QuantizedNetwork("input", (600,), 1.0, [layer], "loihi_sim", state_bits, 6, 6)
    toml = art.profile_toml.replace("du = 4095", f"du = {du}")
    save_export(path, dataclasses.replace(art, qnet=qnet, profile_toml=toml))
    return path


@pytest.fixture()
def template(exports):
    return exports["one.zero.loihi_sim.h5"]


def verify_json(path: Path, capsys) -> tuple[int, dict, str]:
    capsys.readouterr()
    code = main(["verify", "--json", str(path)])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_hand_made_file_exactly_at_the_state_range_passes(template, tmp_path, capsys):
    code, rep, _ = verify_json(hand_made(template, tmp_path / "edge.h5"), capsys)
    assert code == 0
    assert rep["layers"][0]["worst"] == V_MAX
    assert rep["layers"][0]["headroom_bits"] == 0


def test_one_more_bias_unit_breaks_the_budget_exit_3(template, tmp_path, capsys):
    code, rep, err = verify_json(hand_made(template, tmp_path / "over.h5", bias0=64), capsys)
    assert code == 3
    layer = rep["layers"][0]
    assert layer["worst"] == V_MAX + 1 and layer["v_clips"] and not layer["u_wraps"]
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "layer out" in lines[0]


def test_input_past_lavas_u_range_is_reported_as_a_wrap(template, tmp_path, capsys):
    # sum of |w| = 130,000 + 4 * 255 + 53 = 2**17 + 1: (a << 6) > 2**23
    path = hand_made(template, tmp_path / "wrap.h5", more=(255, 255, 255, 255, 53))
    code, rep, _ = verify_json(path, capsys)
    assert code == 3
    assert rep["layers"][0]["input_pos"] == ((1 << 17) + 1) * 64
    assert rep["layers"][0]["u_wraps"]


def test_current_memory_in_the_files_profile_scales_the_input(template, tmp_path, capsys):
    # du = 2047: u can hold 4096 / 2048 = 2 steps' input, 2 * 130,000 << 6 > 2**23
    code, rep, _ = verify_json(hand_made(template, tmp_path / "du.h5", du=2047), capsys)
    assert code == 3
    assert rep["layers"][0]["input_pos"] == 2 * 130_000 * 64
    assert rep["layers"][0]["u_wraps"] and rep["layers"][0]["v_clips"]


def test_weight_outside_the_profile_range_is_exit_3(template, tmp_path, capsys):
    capsys.readouterr()
    assert main(["verify", str(hand_made(template, tmp_path / "w.h5", weight=256))]) == 3
    assert "outside [-256, 255]" in capsys.readouterr().err


def test_state_bits_other_than_the_profiles_are_exit_3(template, tmp_path, capsys):
    capsys.readouterr()
    assert main(["verify", str(hand_made(template, tmp_path / "s.h5", state_bits=23))]) == 3
    assert "state_bits = 23" in capsys.readouterr().err


def test_export_refuses_to_write_a_file_that_fails(exports, tmp_path, monkeypatch, capsys):
    import snn2hw.steps.deploy as deploy

    real = deploy.quantize

    def broken(*args, **kwargs):
        q = real(*args, **kwargs)
        q.layers[0].threshold = (1 << 17) - 1   # threshold << 6 alone fills the state
        return q

    monkeypatch.setattr(deploy, "quantize", broken)
    model = tiny_torch_onnx(tmp_path / "m.onnx", dataset=None)
    cal = calibration_file(str(model), tmp_path / "m.calib.h5", "zero")
    out = tmp_path / "m.h5"
    capsys.readouterr()
    assert main(["export", str(model), "--calibration", cal, "-o", str(out)]) == 3
    assert not out.exists()
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: export: fixed-point guarantee broken")


def test_unreadable_file_is_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    assert main(["verify", str(bad)]) == 2
