"""Export artifacts (HDF5): round trip, refusals with clear errors, reproducible bytes."""
from __future__ import annotations

import time
from importlib import resources

import h5py
import numpy as np
import pytest
import torch

from snn2hw import ir, snn
from snn2hw.hardware import profiles
from snn2hw.snn import simulate
from snn2hw.artifacts.calibration import CalibrationArtifact, save_calibration
from snn2hw.calibrate import Calibration
from snn2hw.steps.deploy import prepare_network
from snn2hw.snn.encoders import make_encoder
from snn2hw.errors import ArtifactError
from snn2hw.artifacts.export import ExportArtifact, load_export, save_export
from snn2hw.importer import graph_from_nodes as build
from snn2hw.quantize import float_network, quantize

SHA = "cd" * 32
SCALES = {"input": 1.0, "r1": 3.0, "out": 2.5}




def graph() -> ir.Graph:
    rng = np.random.default_rng(0)
    return build([
        ir.Input("input", [], (1, 8, 8)),
        ir.Conv("c1", ["input"], weight=rng.standard_normal((4, 1, 3, 3)),
                bias=rng.standard_normal(4) * 0.1, padding=(1, 1, 1, 1)),
        ir.ReLU("r1", ["c1"]),
        ir.AvgPool("p", ["r1"], kernel=(2, 2), stride=(2, 2)),
        ir.Flatten("f", ["p"]),
        ir.Dense("out", ["f"], weight=rng.standard_normal((10, 64)),
                 bias=rng.standard_normal(10) * 0.1),
    ])


def make(quantised: bool = True) -> ExportArtifact:
    g = graph()
    net = snn.lower(g)
    name = "loihi_sim" if quantised else "loihi_float"
    q = quantize(net, SCALES, profiles.load(name)) if quantised else float_network(
        net, SCALES, name)
    toml = resources.files("snn2hw.hw_profiles").joinpath(f"{name}.toml").read_text()
    report = {"profile": name, "layers": {la.name: la.report for la in q.layers},
              "evaluation": {"samples": 3, "float_accuracy": 0.5}}
    return ExportArtifact(q, g, dict(SCALES), toml, SHA, "spike-norm",
                          {"timesteps": 32, "seed": 1, "samples": 8}, 1,
                          '{"mean": [0.0], "std": [1.0]}', report)


def assert_same_export(a: ExportArtifact, b: ExportArtifact) -> None:
    qa, qb = a.qnet, b.qnet
    for key in ("input", "input_shape", "input_scale", "profile", "state_bits",
                "threshold_shift", "current_shift"):
        assert getattr(qa, key) == getattr(qb, key), key
    assert len(qa.layers) == len(qb.layers)
    for la, lb in zip(qa.layers, qb.layers):
        for key in ("name", "shape", "depth", "threshold", "bias_exp", "is_output", "scale",
                    "report"):
            assert getattr(la, key) == getattr(lb, key), (la.name, key)
        assert type(la.threshold) is type(lb.threshold)
        assert (la.bias_mant is None) == (lb.bias_mant is None)
        if la.bias_mant is not None:
            assert np.array_equal(la.bias_mant, lb.bias_mant)
            assert la.bias_mant.dtype == lb.bias_mant.dtype
        assert len(la.synapses) == len(lb.synapses)
        for sa, sb in zip(la.synapses, lb.synapses):
            for key in ("source", "lag", "in_shape", "out_shape", "kind", "stride", "padding",
                        "dilation", "groups", "pool"):
                assert getattr(sa, key) == getattr(sb, key), (la.name, key)
            if sa.kind == "conv":
                assert np.array_equal(sa.weight, sb.weight)
                assert sa.weight.dtype == sb.weight.dtype
            else:
                assert sa.csr.shape == sb.csr.shape
                for key in ("data", "indices", "indptr"):
                    assert np.array_equal(getattr(sa.csr, key), getattr(sb.csr, key)), key
                assert sa.csr.dtype == sb.csr.dtype
    ga, gb = a.graph, b.graph
    assert (ga.input, ga.output, ga.metadata) == (gb.input, gb.output, gb.metadata)
    assert list(ga.nodes) == list(gb.nodes)
    for name in ga.nodes:
        na, nb = ga.nodes[name], gb.nodes[name]
        assert (na.kind, na.inputs, na.shape, na.attrs()) == (nb.kind, nb.inputs, nb.shape,
                                                              nb.attrs())
        pa, pb = na.params(), nb.params()
        assert set(pa) == set(pb) and all(np.array_equal(pa[k], pb[k]) for k in pa)
    assert list(a.scales.items()) == list(b.scales.items())
    for key in ("profile_toml", "onnx_sha256", "method", "params", "seed", "preprocess",
                "report"):
        assert getattr(a, key) == getattr(b, key), key


def test_round_trip_keeps_everything(tmp_path):
    art = make()
    kinds = [[s.kind for s in la.synapses] for la in art.qnet.layers]
    assert kinds == [["conv"], ["matrix"]]
    assert all(la.bias_mant is not None for la in art.qnet.layers)
    path = tmp_path / "net.loihi_sim.h5"
    save_export(path, art)
    back = load_export(path)
    assert_same_export(art, back)
    assert isinstance(back.qnet.layers[0].threshold, int)


def test_round_trip_of_a_float_network(tmp_path):
    art = make(quantised=False)
    save_export(tmp_path / "f.h5", art)
    back = load_export(tmp_path / "f.h5")
    assert_same_export(art, back)
    assert all(la.threshold == 1.0 and isinstance(la.threshold, float)
               for la in back.qnet.layers)


def test_loaded_export_simulates_like_the_original(tmp_path):
    art = make()
    save_export(tmp_path / "net.h5", art)
    back = load_export(tmp_path / "net.h5")
    x = np.random.default_rng(2).uniform(0, 1, size=(4, 1, 8, 8)).astype(np.float32)
    names = [la.name for la in art.qnet.layers]
    runs = [simulate.simulate(prepare_network(a.qnet), make_encoder("poisson", x, input_scale=1.0,
                                                                    seed=0, stream=1), 24,
                              record=names) for a in (art, back)]
    assert runs[0].records["r1"].any()
    for name in names:
        assert np.array_equal(runs[0].records[name], runs[1].records[name])


def test_wrong_format_version_is_refused(tmp_path):
    path = tmp_path / "net.h5"
    save_export(path, make())
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(ArtifactError, match="version 99"):
        load_export(path)


def test_calibration_file_is_not_an_export(tmp_path):
    path = tmp_path / "model.calib.h5"
    save_calibration(path, CalibrationArtifact(graph(), Calibration("spike-norm", SCALES),
                                               SHA, '{"mean": [0.0], "std": [1.0]}'))
    with pytest.raises(ArtifactError, match="not a snn2hw-export file"):
        load_export(path)


def test_non_hdf5_file_is_refused(tmp_path):
    path = tmp_path / "junk.h5"
    path.write_bytes(b"not hdf5 at all")
    with pytest.raises(ArtifactError, match="not an HDF5 file"):
        load_export(path)


@pytest.mark.parametrize("threshold", [0, float("nan"), -5])
def test_non_positive_or_nan_threshold_is_refused(tmp_path, threshold):
    path = tmp_path / "net.h5"
    save_export(path, make())
    with h5py.File(path, "a") as f:
        f["layers"]["0001"].attrs["threshold"] = threshold
    with pytest.raises(ArtifactError, match="threshold"):
        load_export(path)


def test_missing_weights_are_an_artifact_error(tmp_path):
    path = tmp_path / "net.h5"
    save_export(path, make())
    with h5py.File(path, "a") as f:
        del f["layers"]["0000"]["synapses"]["0000"]["weight"]
    with pytest.raises(ArtifactError, match="incomplete or corrupt"):
        load_export(path)


def test_two_output_layers_are_refused(tmp_path):
    path = tmp_path / "net.h5"
    save_export(path, make())
    with h5py.File(path, "a") as f:
        f["layers"]["0000"].attrs["is_output"] = True
    with pytest.raises(ArtifactError, match="exactly one output layer"):
        load_export(path)


def test_same_inputs_give_byte_identical_files(tmp_path):
    first, second, other = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5"
    save_export(first, make())
    time.sleep(1.1)  # HDF5 timestamps, if any were written, have a resolution of 1 s
    save_export(second, make())
    assert first.read_bytes() == second.read_bytes()
    changed = make()
    changed.seed = 2
    save_export(other, changed)
    assert other.read_bytes() != first.read_bytes()


def test_prepare_network_picks_the_fixed_simulator_for_integer_thresholds():
    assert prepare_network(make().qnet).dtype == torch.float32
    assert hasattr(prepare_network(make().qnet).layers[0].neuron, "saturated")
    assert not hasattr(prepare_network(make(False).qnet).layers[0].neuron, "saturated")


@pytest.mark.parametrize("member", ["graph", "graph/nodes", "scales", "scales/values",
                                    "layers"])
def test_missing_group_is_named(tmp_path, member):
    path = tmp_path / "net.h5"
    save_export(path, make())
    with h5py.File(path, "a") as f:
        del f[member]
    with pytest.raises(ArtifactError, match=f"incomplete or corrupt export file: missing "
                                            f".*{member}"):
        load_export(path)


def test_missing_layer_is_refused(tmp_path):
    """Without layer 0000 (c1), the output layer reads from a layer that is not stored."""
    path = tmp_path / "net.h5"
    save_export(path, make())
    with h5py.File(path, "a") as f:
        del f["layers"]["0000"]
    with pytest.raises(ArtifactError, match="layer 'out' reads from 'r1', which is not the "
                                            "input or a stored layer"):
        load_export(path)


def test_layer_without_synapses_is_refused(tmp_path):
    path = tmp_path / "net.h5"
    save_export(path, make())
    with h5py.File(path, "a") as f:
        del f["layers"]["0001"]["synapses"]["0000"]
    with pytest.raises(ArtifactError, match="layer 'out' has no synapses"):
        load_export(path)


def test_synapse_shape_that_does_not_match_its_layers_is_refused(tmp_path):
    path = tmp_path / "net.h5"
    save_export(path, make())
    with h5py.File(path, "a") as f:
        f["layers"]["0001"]["synapses"]["0000"].attrs["out_shape"] = "[11]"
    with pytest.raises(ArtifactError, match="synapse 'r1' -> 'out' maps"):
        load_export(path)


def test_reset_mode_round_trips_and_older_files_mean_zero(tmp_path):
    art = make()
    art.qnet.reset = "subtract"
    path = tmp_path / "net.h5"
    save_export(path, art)
    assert load_export(path).qnet.reset == "subtract"
    with h5py.File(path, "a") as f:
        del f.attrs["reset"]  # files written before reset modes existed
    assert load_export(path).qnet.reset == "zero"
    with h5py.File(path, "a") as f:
        f.attrs["reset"] = "soft"
    with pytest.raises(ArtifactError, match="unknown neuron reset 'soft'; known: zero, "
                                            "subtract"):
        load_export(path)
