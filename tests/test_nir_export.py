"""`snn2hw export --format nir`: the file is read back with ``nir.read`` and run by a real
NIR reader (sinabs 2.0.3), whose output spike counts must equal our float simulator's on
the same input spikes under the reader's time convention (same step, no hop delay); what a
reader would get wrong is refused unless --force."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import nir
import sinabs  # a NIR reader; `make env` installs it (Makefile, constraints.txt)
from snn2hw import data, ir, snn
from snn2hw.snn import simulate
from snn2hw.calibrate import calibrate
from snn2hw.cli import main
from snn2hw.snn.conventions import same_step
from snn2hw.snn.encoders import make_encoder


def poisson(x, input_scale, seed, stream):  # the evaluation stream is 1
    return make_encoder("poisson", x, input_scale=input_scale, seed=seed, stream=stream)
from snn2hw.steps.exchange import FloatNetwork
from snn2hw.exporters.nir.write import write_nir
from snn2hw.formats import import_model, native_calibration

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_builders import export_torch  # noqa: E402
from test_export_cli import make_calibration, tiny  # noqa: E402



@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("nirx")
    path = export_torch(tiny(0), d / "tiny.onnx", {"snn2hw.dataset": "digits"})
    make_calibration(path, d / "tiny.calib.h5")
    return d, path


def float_net(path: str, reset: str) -> FloatNetwork:
    graph = import_model(path)
    net = snn.lower(graph)
    x = data.load("digits", graph.input_shape, 10, data.Preprocess()).x_train[:60]
    return FloatNetwork(net, calibrate("max-act", net, x, reset=reset),
                        data.Preprocess().to_json(), path)


def test_file_reads_back_with_nir_read(model, capsys):
    d, path = model
    out = d / "tiny.nir"
    assert main(["export", path, "--calibration", str(d / "tiny.calib.h5"), "--format",
                 "nir", "-o", str(out)]) == 0
    graph = nir.read(str(out))
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert sorted(kinds.values()) == sorted(["Input", "Conv2d", "IF", "SumPool2d", "Flatten",
                                             "Affine", "IF", "Output"])
    for node in graph.nodes.values():
        if isinstance(node, nir.IF):
            assert np.all(node.r == 1) and np.all(node.v_threshold == 1)
            assert np.all(node.v_reset == 0)
        if isinstance(node, nir.Flatten):
            assert node.start_dim == 0 and node.end_dim == -1  # batch-less shapes
    assert graph.metadata["snn2hw.reset"] == "zero"
    assert graph.metadata["snn2hw.time"] == "same-step"
    assert "sign(x)" in graph.metadata["snn2hw.input_coding"]


def sinabs_counts(path: Path, spikes: np.ndarray) -> np.ndarray:
    """Output spike counts of the file as sinabs runs it: (B*T, ...) batch-major."""
    b, t = spikes.shape[:2]
    reader = sinabs.from_nir(nir.read(str(path)), batch_size=b)
    with torch.no_grad():
        out = reader(torch.as_tensor(spikes.reshape(b * t, *spikes.shape[2:]),
                                     dtype=torch.float32))
    out = out[0] if isinstance(out, tuple) else out
    return out.reshape(b, t, -1).sum(axis=1).numpy().astype(np.int64)


def our_counts(fnet: FloatNetwork, x: np.ndarray, timesteps: int, reset: str) -> np.ndarray:
    cal = fnet.calibration
    prep = same_step(simulate.prepare_float(fnet.net, cal.scales, dtype=torch.float64,
                                            source_scales=cal.source_scales, reset=reset))
    enc = poisson(x, cal.scales[fnet.net.input], 3, 1)
    return simulate.simulate(prep, enc, timesteps).counts[timesteps]


def test_sinabs_runs_the_file_and_counts_match_ours_with_reset_by_subtraction(model):
    # sinabs reads IF as a neuron that resets by subtraction (exporters/nir/write.py), so
    # the network to compare is one calibrated for it, written with --force.
    d, path = model
    fnet = float_net(path, "subtract")
    out = d / "sub.nir"
    write_nir(out, fnet, {"force": True})
    x = data.load("digits", (1, 8, 8), 10, data.Preprocess()).x_test[:6]
    spikes = poisson(x, fnet.input_scale, 3, 1).full(0, len(x), 30)
    theirs = sinabs_counts(out, spikes)
    assert theirs.sum() > 30
    np.testing.assert_array_equal(theirs, our_counts(fnet, x, 30, "subtract"))


def test_sinabs_ignores_v_reset_the_documented_difference(model):
    d, path = model
    fnet = float_net(path, "zero")
    out = d / "zero.nir"
    write_nir(out, fnet, {})
    x = data.load("digits", (1, 8, 8), 10, data.Preprocess()).x_test[:6]
    spikes = poisson(x, fnet.input_scale, 3, 1).full(0, len(x), 30)
    theirs = sinabs_counts(out, spikes)
    assert not np.array_equal(theirs, our_counts(fnet, x, 30, "zero"))
    np.testing.assert_array_equal(theirs, our_counts(fnet, x, 30, "subtract"))


def test_sinabs_neuron_in_our_simulator_gives_sinabs_counts_for_the_default_file(model):
    from snn2hw.snn.conventions import as_sinabs

    d, path = model
    fnet = float_net(path, "zero")
    out = d / "zero_sinabs.nir"
    write_nir(out, fnet, {})
    x = data.load("digits", (1, 8, 8), 10, data.Preprocess()).x_test[:6]
    spikes = poisson(x, fnet.input_scale, 3, 1).full(0, len(x), 30)
    cal = fnet.calibration
    prep = as_sinabs(simulate.prepare_float(fnet.net, cal.scales, dtype=torch.float64,
                                            source_scales=cal.source_scales))
    ours = simulate.simulate(prep, poisson(x, fnet.input_scale, 3, 1), 30).counts[30]
    np.testing.assert_array_equal(sinabs_counts(out, spikes), ours)


def test_reset_by_subtraction_is_refused_without_force(model, tmp_path, capsys):
    d, path = model
    cal = tmp_path / "sub.calib.h5"
    from snn2hw.artifacts.calibration import CalibrationArtifact, save_calibration
    from snn2hw.importer import file_hash

    fnet = float_net(path, "subtract")
    save_calibration(cal, CalibrationArtifact(import_model(path), fnet.calibration,
                                              file_hash(path), fnet.preprocess))
    out = tmp_path / "sub.nir"
    args = ["export", path, "--calibration", str(cal), "--format", "nir", "-o", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: a NIR reader would compute this network differently: "
                             "its neurons reset by subtraction")
    assert not out.exists()
    assert main(args + ["--force"]) == 0
    assert nir.read(str(out)).metadata["snn2hw.reset"] == "subtract"


def residual_net() -> FloatNetwork:
    """input -> a (conv+relu) -> b (conv+relu) -> add(b, a) -> relu: a junction."""
    rng = np.random.default_rng(0)
    shape = (2, 4, 4)

    def conv(name, src):
        return ir.Conv(name, [src], shape, weight=rng.normal(0, 0.5, (2, 2, 3, 3)),
                       padding=(1, 1, 1, 1))
    nodes = [ir.Input("x", [], shape), conv("ca", "x"), ir.ReLU("a", ["ca"], shape),
             conv("cb", "a"), ir.ReLU("b", ["cb"], shape), ir.Add("sum", ["b", "a"], shape),
             ir.ReLU("out", ["sum"], shape)]
    graph = ir.Graph({n.name: n for n in nodes}, "x", "out")
    net = snn.lower(graph)
    cal = calibrate("max-act", net, rng.random((20, *shape)).astype(np.float32))
    return FloatNetwork(net, cal, data.Preprocess().to_json(), "res.onnx")


def test_a_residual_junction_is_two_edges_into_one_if_node(tmp_path):
    path = tmp_path / "res.nir"
    write_nir(path, residual_net(), {})
    graph = nir.read(str(path))
    into = [src for src, dst in graph.edges if dst == "out"]
    assert len(into) == 2
    # the shortcut from a: its identity term with a gain != 1 became a diagonal 1x1 conv
    shortcut = next(s for s in into if graph.nodes[s].weight.shape == (2, 2, 1, 1))
    weight = graph.nodes[shortcut].weight[:, :, 0, 0]
    assert weight[0, 1] == weight[1, 0] == 0 and weight[0, 0] == weight[1, 1] != 1


def test_hop_time_writes_delay_nodes_of_one_plus_the_alignment(tmp_path):
    path = tmp_path / "res_hop.nir"
    fnet = residual_net()
    write_nir(path, fnet, {"nir_time": "hop"})
    graph = nir.read(str(path))
    delays = sorted(float(np.unique(n.delay)[0]) for n in graph.nodes.values()
                    if isinstance(n, nir.Delay))
    # a, b and out's branch: one hop each; out's shortcut from a: one hop + 1 alignment
    assert delays == [1.0, 1.0, 1.0, 2.0]
    assert graph.metadata["snn2hw.time"] == "hop"


def test_our_own_file_imports_back_to_the_same_spikes(model, tmp_path):
    d, path = model
    fnet = float_net(path, "zero")
    out = tmp_path / "back.nir"
    write_nir(out, fnet, {})
    graph = import_model(out)
    back = FloatNetwork(snn.lower(graph), native_calibration(out, graph), fnet.preprocess,
                        str(out))
    x = data.load("digits", (1, 8, 8), 10, data.Preprocess()).x_test[:5]
    back.calibration.scales[back.net.input] = fnet.input_scale  # the same input spikes
    np.testing.assert_array_equal(our_counts(back, x, 25, "zero"),
                                  our_counts(fnet, x, 25, "zero"))


def test_a_grouped_conv_is_written_as_the_equivalent_full_kernel():
    from snn2hw.exporters.nir.build import ungrouped

    weight = np.random.default_rng(2).normal(size=(6, 2, 3, 3))
    x = torch.as_tensor(np.random.default_rng(3).normal(size=(2, 4, 5, 5)))
    grouped = torch.nn.functional.conv2d(x, torch.as_tensor(weight), groups=2)
    full = torch.nn.functional.conv2d(x, torch.as_tensor(ungrouped(weight, 2)))
    assert ungrouped(weight, 2).shape == (6, 4, 3, 3)
    torch.testing.assert_close(full, grouped, rtol=0, atol=1e-12)


@pytest.mark.parametrize("option, words", [({"v_init": 0.5}, "start at 0.5 of the threshold"),
                                           ({"coding": "direct"}, "input coding is 'direct'"),
                                           ({"readout": "membrane"}, "membrane potential")])
def test_conversion_options_a_reader_cannot_know_are_refused_without_force(tmp_path, option,
                                                                         words):
    from snn2hw.errors import InputError

    fnet = residual_net()
    fnet.calibration.params.update(option)
    with pytest.raises(InputError, match=words) as exc:
        write_nir(tmp_path / "o.nir", fnet, {})
    assert exc.value.exit_code == 2 and not (tmp_path / "o.nir").exists()
    write_nir(tmp_path / "o.nir", fnet, {"force": True})
    assert nir.read(str(tmp_path / "o.nir")).metadata["snn2hw.calibration"].find(
        next(iter(option))) > 0
