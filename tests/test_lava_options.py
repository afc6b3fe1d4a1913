"""The conversion options on integer networks: the fixed-point reference
(snn2hw.quantize.fixed) against the independent model of tests/lava_model.py, on random
edge networks with every combination of options, and three ways with a real Lava run
(child process, watchdog) on the edge network with the options on.

Each comparison covers spikes of every layer and, for the membrane read-out, the output
layer's potential after every step of its window."""
from __future__ import annotations

import itertools
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lava_model  # noqa: E402
from test_lava_exact import QUICK, assert_same, edge_input, edge_net, edge_networks  # noqa: E402

from snn2hw.quantize.fixed import input_encoder, prepare_fixed  # noqa: E402
from snn2hw.snn.options import Conversion  # noqa: E402
from snn2hw.snn.simulate import simulate  # noqa: E402

OPTIONS = [Conversion(coding=c, v_init=v, readout=r, window=w) for c, v, r, w in
           itertools.product(["poisson", "direct"], [0.0, 0.5], ["spikes", "membrane"],
                             ["fill", "pipelined"])]


def with_options(qnet, conv: Conversion, levels: int = 127):
    return replace(qnet, conversion=conv, input_levels=levels if conv.coding == "direct" else 1)


def reference(qnet, x: np.ndarray, timesteps: int):
    """(input (N, T, in), {layer: spikes}, output potentials (N, T, size) or None)."""
    enc = input_encoder(qnet, x, 3, 1)
    values = enc.full(0, len(x), timesteps).reshape(len(x), timesteps, -1)
    names = [la.name for la in qnet.layers]
    res = simulate(prepare_fixed(qnet), input_encoder(qnet, x, 3, 1), timesteps,
                   checkpoints=range(1, timesteps + 1), record=names, time_chunk=5)
    pots = None
    if res.potentials:
        pots = np.stack([res.potentials[t] for t in range(1, timesteps + 1)], axis=1)
    return values, {k: v.astype(np.int8) for k, v in res.records.items()}, pots


def model(qnet, values):
    pots = {}
    spikes = lava_model.run_model(qnet, values, potentials=pots)
    return spikes, pots.get(qnet.output.name)


def check(qnet, x, timesteps):
    values, ref, ref_v = reference(qnet, x, timesteps)
    got, got_v = model(qnet, values)
    assert_same(got, ref, f"independent model, {qnet.conversion}")
    if qnet.conversion.readout == "membrane":
        assert np.array_equal(got_v, ref_v), f"potentials, {qnet.conversion}"
    return values, ref, ref_v


@QUICK
@given(edge_networks(), st.sampled_from(OPTIONS), st.sampled_from([3, 127]))
def test_options_reference_matches_the_independent_model(case, conv, levels):
    qnet, x, timesteps = case
    qnet = with_options(qnet, conv, levels)
    if conv.coding == "direct":  # analog values, not only +-1 and +-0.5
        x = np.random.default_rng(timesteps).uniform(-1.2, 1.2, x.shape).astype(np.float32)
    check(qnet, x, timesteps)


@pytest.mark.parametrize("conv", OPTIONS[1:], ids=str)
def test_each_option_changes_the_edge_network(conv):
    """Every combination gives other spikes or potentials than the paper's configuration
    on the edge network (so the comparisons above exercise it)."""
    x = edge_input() * np.float32(0.4)
    base = check(with_options(edge_net("subtract"), Conversion()), x, 12)
    other = check(with_options(edge_net("subtract"), conv), x, 12)
    differs = any(not np.array_equal(base[1][k], other[1][k]) for k in base[1])
    assert differs or other[2] is not None


def test_direct_input_must_fit_the_graded_payload():
    from snn2hw.errors import HardwareLimitError
    from snn2hw.exporters.lava.checks import check_network
    from snn2hw.hardware import profiles

    qnet = with_options(edge_net(), Conversion(coding="direct"), levels=200)
    with pytest.raises(HardwareLimitError, match="messages.input_bits = 8"):
        check_network(qnet, profile=profiles.load("loihi_sim"))
    check_network(with_options(edge_net(), Conversion(coding="direct"), 127),
                  profile=profiles.load("loihi_sim"))


@pytest.mark.lava
@pytest.mark.parametrize("conv", [
    Conversion(coding="direct", v_init=0.5, readout="membrane", window="pipelined"),
    Conversion(v_init=0.5, window="pipelined"),
    Conversion(coding="direct", readout="membrane")], ids=str)
def test_options_lava_reference_and_model_agree(conv):
    from snn2hw.exporters.lava.watchdog import run_lava
    from snn2hw.hardware import profiles

    qnet = with_options(edge_net("subtract"), conv)
    x = edge_input() * np.float32(0.4)
    values, ref, ref_v = check(qnet, x, 10)
    lava = run_lava(qnet, values, 10, profile=profiles.load("loihi_sim"))
    assert_same(lava.spikes, ref, f"Lava, {conv}")
    if conv.readout == "membrane":
        assert np.array_equal(lava.potentials[qnet.output.name], ref_v), "Lava potentials"


@pytest.mark.lava
def test_options_on_floating_pt_match_the_float_reference():
    """Lava's float models (LIFResetInit's float model, a Monitor of float v, real direct
    input) against the float reference of an exported float network; dyadic weights,
    thresholds and inputs keep every float sum exact."""
    from test_lava_backend import conv_net

    from snn2hw.exporters.lava.watchdog import run_lava
    from snn2hw.quantize.quantizer import NEVER_FIRES
    from snn2hw.steps.deploy import prepare_network

    conv = Conversion(coding="direct", v_init=0.5, readout="membrane", window="pipelined")
    qnet, _ = conv_net(seed=6, fixed=False)
    qnet = replace(qnet, conversion=conv, input_levels=0)
    qnet.output.threshold = NEVER_FIRES
    x = np.random.default_rng(3).choice([-1, -0.5, -0.25, 0, 0.25, 0.75, 1],
                                        size=(2, *qnet.input_shape)).astype(np.float32)
    steps = 9
    values = input_encoder(qnet, x, 0, 1).full(0, 2, steps)
    assert np.array_equal(values[:, 0], x)   # real values, every step
    names = [la.name for la in qnet.layers]
    ref = simulate(prepare_network(qnet), input_encoder(qnet, x, 0, 1), steps,
                   checkpoints=range(1, steps + 1), record=names)
    ref_v = np.stack([ref.potentials[t] for t in range(1, steps + 1)], axis=1)
    lava = run_lava(qnet, values.reshape(2, steps, -1), steps, tag="floating_pt")
    assert_same(lava.spikes, {k: v.astype(np.int8) for k, v in ref.records.items()}, "Lava")
    assert np.array_equal(lava.potentials[qnet.output.name], ref_v)
    assert ref.records["c1"].any() and ref_v[:, -1].any()


@pytest.mark.lava
def test_options_go_from_calibrate_through_export_to_a_lava_run(tmp_path, capsys):
    """The CLI path: the calibration records the options, the export quantises with them
    and restores them on load, and `run` compares Lava with the reference (spikes and the
    membrane read-out's potentials)."""
    from onnx_builders import tiny_torch_onnx

    from snn2hw.artifacts.calibration import load_calibration
    from snn2hw.artifacts.export import load_export
    from snn2hw.cli import main

    model, cal, exp = tmp_path / "m.onnx", tmp_path / "m.calib.h5", tmp_path / "m.h5"
    tiny_torch_onnx(model, seed=3)
    options = ["--coding", "direct", "--v-init", "0.5", "--readout", "membrane",
               "--window", "pipelined", "--reset", "subtract"]
    assert main(["calibrate", str(model), "--data", "digits", "--method", "max-act",
                 "--samples", "30", "--eval-samples", "10", "--timesteps", "8", *options,
                 "-o", str(cal)]) == 0
    params = load_calibration(cal).calibration.params
    assert {k: params[k] for k in ("coding", "v_init", "readout", "window")} == {
        "coding": "direct", "v_init": 0.5, "readout": "membrane", "window": "pipelined"}
    assert main(["export", str(model), "--profile", "loihi_sim", "--calibration", str(cal),
                 "--timesteps", "8", "--eval-samples", "10", "-o", str(exp)]) == 0
    qnet = load_export(exp).qnet
    assert qnet.conversion == Conversion(coding="direct", v_init=0.5, readout="membrane",
                                         window="pipelined")
    assert qnet.input_levels == 127
    capsys.readouterr()
    assert main(["run", str(exp), "--samples", "3", "--timesteps", "8"]) == 0
    assert "agree spike for spike" in capsys.readouterr().out
