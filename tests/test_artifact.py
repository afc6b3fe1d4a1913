"""Calibration artifacts (HDF5): round trip, refusals with clear errors, atomic writes."""
from __future__ import annotations

import os
import stat

import h5py
import numpy as np
import pytest

from snn2hw import ann, ir
from snn2hw.artifacts import calibration as artifact
from snn2hw.artifacts.calibration import CalibrationArtifact, load_calibration, save_calibration
from snn2hw.calibrate import Calibration
from snn2hw.errors import ArtifactError
from snn2hw.fileio import atomic_path, write_text
from snn2hw.importer import graph_from_nodes as build

SHA = "ab" * 32


def every_kind_graph() -> ir.Graph:
    """Every node type, with non-default attributes where a node has them."""
    rng = np.random.default_rng(0)
    return build([
        ir.Input("input", [], (2, 8, 8)),
        ir.Conv("c1", ["input"], weight=rng.standard_normal((4, 1, 3, 3)),
                bias=rng.standard_normal(4), padding=(1, 1, 1, 1), groups=2),
        ir.ReLU("r1", ["c1"]),
        ir.Conv("c2", ["r1"], weight=rng.standard_normal((4, 4, 3, 3)), stride=(1, 1),
                padding=(2, 2, 2, 2), dilation=(2, 2)),
        ir.Add("a1", ["c2", "r1"]),
        ir.ReLU("r2", ["a1"]),
        ir.AvgPool("p", ["r2"], kernel=(2, 2), stride=(2, 2), padding=(0, 0, 1, 1),
                   count_include_pad=False),
        ir.Flatten("f", ["p"]),
        ir.Dense("out", ["f"], weight=rng.standard_normal((3, 64)),
                 bias=rng.standard_normal(3)),
    ], metadata={"onnx_sha256": SHA, "snn2hw.preprocess": '{"mean": [0.5], "std": [1.0]}'})


def make_artifact(scales=None) -> CalibrationArtifact:
    graph = every_kind_graph()
    scales = scales or {"input": 1.0, "r1": 2.5, "r2": 3.25, "out": 0.75}
    cal = Calibration("spike-norm", scales, {"timesteps": 64, "seed": 3, "samples": 10},
                      ["layer x: example warning"])
    return CalibrationArtifact(graph, cal, SHA, '{"mean": [0.5], "std": [1.0]}',
                               {"method": "spike-norm", "layers": [{"name": "r1"}]})


def test_round_trip_keeps_graph_and_calibration(tmp_path):
    art = make_artifact()
    path = tmp_path / "m.calib.h5"
    save_calibration(path, art)
    back = load_calibration(path, expected_sha256=SHA)
    g0, g1 = art.graph, back.graph
    assert list(g1.nodes) == list(g0.nodes)
    assert (g1.input, g1.output, g1.metadata) == (g0.input, g0.output, g0.metadata)
    for name, node in g0.nodes.items():
        other = g1.nodes[name]
        assert type(other) is type(node)
        assert other.inputs == node.inputs and other.shape == node.shape
        assert other.attrs() == node.attrs(), name
        assert other.params().keys() == node.params().keys(), name
        for key, value in node.params().items():
            np.testing.assert_array_equal(other.params()[key], value)
            assert other.params()[key].dtype == np.float64
    assert back.calibration.scales == art.calibration.scales
    assert list(back.calibration.scales) == list(art.calibration.scales)
    assert back.calibration.method == "spike-norm"
    assert back.calibration.params == art.calibration.params
    assert back.calibration.warnings == art.calibration.warnings
    assert (back.onnx_sha256, back.preprocess, back.report) == (SHA, art.preprocess,
                                                                 art.report)
    x = np.random.default_rng(1).standard_normal((3, 2, 8, 8))
    np.testing.assert_array_equal(ann.predict(g1, x), ann.predict(g0, x))


def test_saved_file_gets_the_usual_permissions(tmp_path):
    save_calibration(tmp_path / "a.h5", make_artifact())
    (tmp_path / "b.h5").write_bytes(b"")  # what a plain open() creates here
    mode = stat.S_IMODE(os.stat(tmp_path / "a.h5").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "b.h5").st_mode)


def test_wrong_format_version_is_refused_naming_the_version(tmp_path):
    path = tmp_path / "m.h5"
    save_calibration(path, make_artifact())
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(ArtifactError, match="version 99") as info:
        load_calibration(path)
    assert f"version {artifact.FORMAT_VERSION}" in str(info.value)


def test_other_format_is_refused(tmp_path):
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(ArtifactError, match="not a snn2hw-calibration file"):
        load_calibration(path)


def test_not_an_hdf5_file_is_refused(tmp_path):
    path = tmp_path / "m.h5"
    path.write_text("definitely not HDF5\n" * 100)
    with pytest.raises(ArtifactError, match="not an HDF5 file"):
        load_calibration(path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(ArtifactError, match="no such file"):
        load_calibration(tmp_path / "absent.h5")


def test_sha_mismatch_means_a_different_model(tmp_path):
    path = tmp_path / "m.h5"
    save_calibration(path, make_artifact())
    with pytest.raises(ArtifactError, match="different model"):
        load_calibration(path, expected_sha256="cd" * 32)


@pytest.mark.parametrize("bad", [0.0, -1.5, float("nan"), float("inf")])
def test_non_positive_or_non_finite_threshold_is_refused(tmp_path, bad):
    path = tmp_path / "m.h5"
    save_calibration(path, make_artifact({"input": 1.0, "r1": bad, "r2": 1.0, "out": 1.0}))
    with pytest.raises(ArtifactError, match="positive and finite"):
        load_calibration(path, expected_sha256=SHA)


def test_truncated_calibration_is_refused(tmp_path):
    path = tmp_path / "m.h5"
    save_calibration(path, make_artifact())
    with h5py.File(path, "a") as f:
        del f["scales"]
    with pytest.raises(ArtifactError, match="incomplete or corrupt"):
        load_calibration(path)


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_failed_save_leaves_previous_file_and_no_temp_files(tmp_path, monkeypatch, exc):
    path = tmp_path / "m.h5"
    save_calibration(path, make_artifact())
    before = path.read_bytes()

    def broken(group, graph):
        group.attrs["partial"] = 1
        raise exc("disk full")

    monkeypatch.setattr(artifact, "write_graph", broken)
    with pytest.raises(exc):
        save_calibration(path, make_artifact({"input": 2.0, "r1": 9.0, "r2": 9.0,
                                              "out": 9.0}))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5"]
    assert load_calibration(path).calibration.scales["r1"] == 2.5


def test_failed_atomic_write_of_a_new_file_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "new.json") as tmp:
            tmp.write_text("half")
            raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []
    write_text(tmp_path / "new.json", "whole")
    assert [p.name for p in tmp_path.iterdir()] == ["new.json"]
    assert (tmp_path / "new.json").read_text() == "whole"


@pytest.mark.parametrize("member", ["graph", "graph/nodes", "scales", "scales/values"])
def test_missing_group_is_named(tmp_path, member):
    path = tmp_path / "m.h5"
    save_calibration(path, make_artifact())
    with h5py.File(path, "a") as f:
        del f[member]
    with pytest.raises(ArtifactError, match=f"incomplete or corrupt calibration file: "
                                            f"missing .*{member}") as info:
        load_calibration(path)
    assert member in info.value.facts["missing"]


def test_missing_node_weight_is_named_not_defaulted(tmp_path):
    path = tmp_path / "m.h5"
    save_calibration(path, make_artifact())
    with h5py.File(path, "a") as f:
        del f["graph/nodes/0008/weight"]  # the dense output layer
    with pytest.raises(ArtifactError, match="graph node 'out' \\(dense\\) has no weight"):
        load_calibration(path)


def test_missing_graph_node_is_an_artifact_error(tmp_path):
    path = tmp_path / "m.h5"
    save_calibration(path, make_artifact())
    with h5py.File(path, "a") as f:
        del f["graph/nodes/0002"]  # r1: c2 then reads a node that is not there
    with pytest.raises(ArtifactError, match="graph node 'c2': inputs \\['r1'\\] are not nodes "
                                            "stored before it"):
        load_calibration(path)


def test_weight_of_the_wrong_shape_is_an_artifact_error(tmp_path):
    path = tmp_path / "m.h5"
    save_calibration(path, make_artifact())
    with h5py.File(path, "a") as f:
        del f["graph/nodes/0008/weight"]
        f["graph/nodes/0008"].create_dataset("weight", data=np.ones((3, 60)))
    with pytest.raises(ArtifactError, match="node out") as info:
        load_calibration(path)
    assert str(path) in str(info.value)


def test_stored_shape_that_does_not_match_the_weights_is_refused(tmp_path):
    path = tmp_path / "m.h5"
    save_calibration(path, make_artifact())
    with h5py.File(path, "a") as f:
        f["graph/nodes/0008"].attrs["shape"] = "[4]"
    with pytest.raises(ArtifactError, match="graph node 'out': stored shape \\(4,\\), its "
                                            "parameters give \\(3,\\)"):
        load_calibration(path)


def test_group_replaced_by_a_dataset_is_an_artifact_error(tmp_path):
    path = tmp_path / "m.h5"
    save_calibration(path, make_artifact())
    with h5py.File(path, "a") as f:
        del f["scales"]
        f.create_dataset("scales", data=np.ones(4))
    with pytest.raises(ArtifactError, match="incomplete or corrupt"):
        load_calibration(path)
