"""NIR import (snn2hw/nir/): a spiking network written with the ``nir`` package itself
becomes the IR with its thresholds; our simulator then computes what NIR's equations say
(checked against a direct NumPy implementation of them written here), it runs on Lava
spike for spike like its fixed-point reference, and what cannot be imported is listed in
one error."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import nir
from snn2hw import formats, snn
from snn2hw.snn import simulate
from snn2hw.cli import main
from snn2hw.snn.conventions import same_step
from snn2hw.snn.encoders import make_encoder


def poisson(x, input_scale, seed, stream):  # the evaluation stream is 1
    return make_encoder("poisson", x, input_scale=input_scale, seed=seed, stream=stream)


def foreign_graph(seed: int = 0) -> nir.NIRGraph:
    """A conv net as another tool would write it: per-channel thresholds, r != 1, a
    SumPool2d, a bias, a Flatten with the batch-less start_dim 0."""
    rng = np.random.default_rng(seed)
    th1 = np.repeat(np.array([0.8, 1.0, 1.3, 0.9])[:, None, None], 64, 1).reshape(4, 8, 8)
    return nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([1, 8, 8])}),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0.1, 0.5, (4, 1, 3, 3)),
                           stride=1, padding=1, dilation=1, groups=1,
                           bias=np.array([0.05, 0.0, -0.02, 0.1])),
        "if1": nir.IF(r=np.full((4, 8, 8), 1.25), v_threshold=th1,
                      v_reset=np.zeros((4, 8, 8))),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0,
                            end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(0.05, 0.3, (10, 64)), bias=rng.normal(0, 0.05, 10)),
        "if2": nir.IF(r=np.ones(10), v_threshold=np.full(10, 1.5), v_reset=np.zeros(10)),
        "out": nir.Output(output_type={"output": np.array([10])}),
    }, edges=[("in", "conv"), ("conv", "if1"), ("if1", "pool"), ("pool", "flat"),
              ("flat", "fc"), ("fc", "if2"), ("if2", "out")])


def nir_if_counts(graph: nir.NIRGraph, spikes: np.ndarray) -> np.ndarray:
    """NIR's IF equations, step by step, every edge within the step (the readers' time
    convention): v += r * input; spike where v > v_threshold; v = v_reset after it."""
    n = graph.nodes
    conv = torch.nn.functional.conv2d
    v1 = np.zeros((len(spikes), 4, 8, 8))
    v2 = np.zeros((len(spikes), 10))
    counts = np.zeros((len(spikes), 10), dtype=np.int64)
    for t in range(spikes.shape[1]):
        x = torch.as_tensor(spikes[:, t], dtype=torch.float64)
        i1 = conv(x, torch.as_tensor(n["conv"].weight), torch.as_tensor(n["conv"].bias),
                  padding=1).numpy()
        v1 += n["if1"].r * i1
        s1 = v1 > n["if1"].v_threshold
        v1[s1] = 0.0
        pooled = s1.reshape(len(spikes), 4, 4, 2, 4, 2).sum(axis=(3, 5))
        i2 = pooled.reshape(len(spikes), 64) @ n["fc"].weight.T + n["fc"].bias
        v2 += n["if2"].r * i2
        s2 = v2 > n["if2"].v_threshold
        v2[s2] = 0.0
        counts += s2
    return counts


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    path = tmp_path_factory.mktemp("nir") / "foreign.nir"
    nir.write(str(path), foreign_graph())
    return path


def test_imported_network_computes_nirs_if_equations(foreign):
    graph = formats.import_model(foreign)
    cal = formats.native_calibration(foreign, graph)
    net = snn.lower(graph)
    x = np.random.default_rng(1).random((5, 1, 8, 8)).astype(np.float32)
    spikes = poisson(x, 1.0, 7, 1).full(0, 5, 40)
    prep = same_step(simulate.prepare_float(net, cal.scales, dtype=torch.float64,
                                            source_scales=cal.source_scales))
    ours = simulate.simulate(prep, poisson(x, 1.0, 7, 1), 40).counts[40]
    expected = nir_if_counts(nir.read(str(foreign)), spikes)
    assert expected.sum() > 20   # the network is not silent
    np.testing.assert_array_equal(ours, expected)


def test_per_channel_thresholds_fold_into_the_conv_and_the_layer_keeps_one(foreign):
    graph = formats.import_model(foreign)
    cal = formats.native_calibration(foreign, graph)
    # r / v_threshold per channel: 1.25 / (0.8, 1.0, 1.3, 0.9); the scale is the smallest
    # threshold over r, and each channel's weights carry its ratio to it.
    assert cal.scales["if1"] == pytest.approx(0.8 / 1.25)
    rows = graph.nodes["conv"].weight / foreign_graph().nodes["conv"].weight
    np.testing.assert_allclose(rows[:, 0, 0, 0], 0.8 / np.array([0.8, 1.0, 1.3, 0.9]))
    assert cal.scales["if2"] == 1.5 and cal.method == "nir"


def test_every_unsupported_node_is_listed_in_one_error(tmp_path, capsys):
    g = foreign_graph()
    g.nodes["if1"] = nir.LIF(tau=np.full((4, 8, 8), 0.01), r=np.ones((4, 8, 8)),
                             v_leak=np.zeros((4, 8, 8)), v_threshold=np.ones((4, 8, 8)))
    g.nodes["if2"] = nir.IF(r=np.ones(10), v_threshold=np.ones(10), v_reset=np.full(10, 0.5))
    g.nodes["lag"] = nir.Delay(delay=np.ones(10))
    g.edges.remove(("fc", "if2"))
    g.edges += [("fc", "lag"), ("lag", "if2")]
    path = tmp_path / "bad.nir"
    nir.write(str(path), g)
    code = main(["export", str(path), "-o", str(tmp_path / "bad.h5")])
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert code == 2
    assert err[0].startswith("error: 3 unsupported node(s): ")
    for part in ("if1 (LIF): a leaky LIF", "if2 (IF): v_reset must be 0",
                 "lag (Delay): Delay nodes are not supported"):
        assert part in err[0]
    assert not (tmp_path / "bad.h5").exists()


def test_a_file_that_is_not_nir_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "x.nir"
    path.write_text("not hdf5")
    assert main(["export", str(path), "-o", str(tmp_path / "x.h5")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {path}: not a NIR file (not HDF5)"


@pytest.mark.lava
def test_run_quantises_a_nir_network_and_lava_agrees_spike_for_spike(foreign, capsys):
    code = main(["run", str(foreign), "--data", "digits", "--samples", "3",
                 "--timesteps", "12"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "samples identical in every spike train  100.00 %" in out
    assert "Lava and the reference simulator agree spike for spike" in out


def test_export_needs_no_calibration_and_keeps_the_files_thresholds(foreign, tmp_path):
    from snn2hw.artifacts.export import load_export

    out = tmp_path / "foreign.loihi_sim.h5"
    assert main(["export", str(foreign), "-o", str(out)]) == 0
    art = load_export(out)
    assert art.method == "nir"
    assert art.scales["if2"] == 1.5 and art.qnet.input_scale == 1.0
    assert main(["verify", str(out)]) == 0


def test_inspect_shows_a_nir_networks_spiking_layers(foreign, capsys):
    assert main(["inspect", str(foreign)]) == 0
    out = capsys.readouterr().out
    assert "2 spiking layers" in out and "if2" in out and "supported" not in out


def test_a_reset_other_than_the_files_neurons_is_one_line_naming_the_flag(foreign, tmp_path,
                                                                          capsys):
    out = tmp_path / "x.h5"
    assert main(["export", str(foreign), "--reset", "subtract", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {foreign}: its neurons reset 'zero', not 'subtract'\n"
    assert not out.exists()


def test_foreign_formats_refuse_report(foreign, tmp_path, capsys):
    out = tmp_path / "x.nir"
    assert main(["export", str(foreign), "--format", "nir", "-o", str(out), "--report",
                 str(tmp_path / "r.json")]) == 2
    assert capsys.readouterr().err.startswith("error: --report is written by --format h5")
    assert not out.exists()


def test_a_preset_the_files_neurons_do_not_follow_is_refused(foreign, tmp_path, capsys):
    out = tmp_path / "x.h5"
    assert main(["export", str(foreign), "--preset", "fast", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {foreign}: its neurons") and err.count("\n") == 1
    assert not out.exists()
