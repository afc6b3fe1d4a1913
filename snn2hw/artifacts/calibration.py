"""HDF5 artifacts: the IR plus calibration (``.calib.h5``). Every file carries its format
name and version; a file of another format or version is refused with a clear error."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .. import __version__, ir
from ..calibrate import Calibration
from ..errors import ArtifactError, InputError
from ..fileio import atomic_path

CALIBRATION_FORMAT = "snn2hw-calibration"
FORMAT_VERSION = 1
# Version 2: a file with per-channel factors or bias offsets (groups "channel_factors",
# "bias_offsets"; snn2hw.calibrate.channels). Files without them stay version 1, byte for
# byte; a reader of version 1 only refuses a version 2 file instead of ignoring its groups.
CHANNELS_VERSION = 2
CHANNEL_GROUPS = ("channel_factors", "bias_offsets")


def _ds(group: h5py.Group, name: str, data) -> None:
    group.create_dataset(name, data=np.asarray(data), track_times=False)


def write_graph(group: h5py.Group, graph: ir.Graph) -> None:
    group.attrs["input"] = graph.input
    group.attrs["output"] = graph.output
    group.attrs["metadata"] = json.dumps(graph.metadata, sort_keys=True)
    nodes = group.create_group("nodes", track_order=True)
    for index, node in enumerate(graph.nodes.values()):
        g = nodes.create_group(f"{index:04d}")
        g.attrs["name"] = node.name
        g.attrs["kind"] = node.kind
        g.attrs["inputs"] = json.dumps(node.inputs)
        g.attrs["shape"] = json.dumps(list(node.shape))
        g.attrs["attrs"] = json.dumps({k: list(v) if isinstance(v, tuple) else v
                                       for k, v in node.attrs().items()})
        for key, value in node.params().items():
            _ds(g, key, value)


# Node parameters a stored node must have (bias is optional: None when absent).
REQUIRED_PARAMS = {"conv": ("weight",), "dense": ("weight",)}
# What h5py raises on a damaged file, besides a missing key.
CORRUPT = (KeyError, ValueError, TypeError, OSError, RuntimeError)


def require(f: h5py.File, path: str | Path, members: tuple[str, ...], fmt: str) -> None:
    """Refuse a file without one of ``members`` (groups or datasets), naming all missing."""
    missing = [m for m in members if m not in f]
    if missing:
        raise ArtifactError(f"{path}: incomplete or corrupt {fmt} file: missing "
                            f"{', '.join(missing)}", missing=missing)


def read_graph(group: h5py.Group) -> ir.Graph:
    """The stored IR; a node without its weights, with inconsistent shapes, or a graph that
    is not a DAG from input to output is an ArtifactError."""
    from ..onnx.convert import infer_shape

    nodes: dict[str, ir.Node] = {}
    try:
        for key in sorted(group["nodes"]):
            g = group["nodes"][key]
            kind = g.attrs["kind"]
            if kind not in ir.NODE_TYPES:
                raise ArtifactError(f"unknown node kind {kind!r} in artifact")
            missing = [p for p in REQUIRED_PARAMS.get(kind, ()) if p not in g]
            if missing:
                raise ArtifactError(f"graph node {g.attrs['name']!r} ({kind}) has no "
                                    f"{', '.join(missing)}")
            attrs = {k: tuple(v) if isinstance(v, list) else v
                     for k, v in json.loads(g.attrs["attrs"]).items()}
            params = {k: np.asarray(g[k][()], dtype=np.float64) for k in g}
            node = ir.NODE_TYPES[kind](str(g.attrs["name"]), json.loads(g.attrs["inputs"]),
                                       tuple(json.loads(g.attrs["shape"])), **attrs, **params)
            undefined = [i for i in node.inputs if i not in nodes]
            if undefined or (not node.inputs and not isinstance(node, ir.Input)):
                raise ArtifactError(f"graph node {node.name!r}: inputs {undefined or '[]'} "
                                    "are not nodes stored before it")
            if isinstance(node, ir.Add) and len({nodes[i].shape for i in node.inputs}) > 1:
                raise ArtifactError(f"graph node {node.name!r}: adds inputs of shapes "
                                    f"{[nodes[i].shape for i in node.inputs]}")
            if not isinstance(node, ir.Input):
                inferred = infer_shape(node, [nodes[i].shape for i in node.inputs])
                if inferred != tuple(node.shape):
                    raise ArtifactError(f"graph node {node.name!r}: stored shape "
                                        f"{tuple(node.shape)}, its parameters give {inferred}")
            nodes[node.name] = node
        return ir.Graph(nodes, str(group.attrs["input"]), str(group.attrs["output"]),
                        json.loads(group.attrs["metadata"]))
    except ArtifactError:
        raise
    except InputError as exc:  # the IR's own checks
        raise ArtifactError(f"invalid graph: {exc.message}") from None


@dataclass
class CalibrationArtifact:
    graph: ir.Graph
    calibration: Calibration
    onnx_sha256: str
    preprocess: str
    report: dict = field(default_factory=dict)


def save_calibration(path: str | Path, art: CalibrationArtifact) -> None:
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=True) as f:
            f.attrs["format"] = CALIBRATION_FORMAT
            f.attrs["format_version"] = (CHANNELS_VERSION if _channel_data(art.calibration)
                                         else FORMAT_VERSION)
            f.attrs["snn2hw_version"] = __version__
            f.attrs["onnx_sha256"] = art.onnx_sha256
            f.attrs["preprocess"] = art.preprocess
            f.attrs["method"] = art.calibration.method
            f.attrs["params"] = json.dumps(art.calibration.params, sort_keys=True)
            f.attrs["warnings"] = json.dumps(art.calibration.warnings)
            f.attrs["report"] = json.dumps(art.report, sort_keys=True)
            write_graph(f.create_group("graph"), art.graph)
            scales = f.create_group("scales", track_order=True)
            names = list(art.calibration.scales)
            scales.attrs["names"] = json.dumps(names)
            _ds(scales, "values", [art.calibration.scales[n] for n in names])
            if art.calibration.rate_scales is not None:
                _ds(scales, "source_values",
                    [art.calibration.rate_scales[n] for n in names])
            for key, per_layer in _channel_data(art.calibration).items():
                group = f.create_group(key, track_order=True)
                group.attrs["names"] = json.dumps(list(per_layer))
                for index, values in enumerate(per_layer.values()):
                    _ds(group, f"{index:04d}", np.asarray(values, dtype=np.float64))


def _channel_data(cal: Calibration) -> dict[str, dict[str, np.ndarray]]:
    return {key: getattr(cal, key) for key in CHANNEL_GROUPS if getattr(cal, key)}


def _read_channel_data(f: h5py.File, graph: ir.Graph) -> dict[str, dict[str, np.ndarray]]:
    """The per-channel groups of a version 2 file, checked against the graph's layers."""
    out = {}
    for key in CHANNEL_GROUPS:
        if key not in f:
            continue
        names = json.loads(f[key].attrs["names"])
        out[key] = {n: np.asarray(f[key][f"{i:04d}"][()], dtype=np.float64)
                    for i, n in enumerate(names)}
        for name, values in out[key].items():
            node = graph.nodes.get(name)
            if node is None or values.shape != (int(node.shape[0]),):
                raise ArtifactError(f"{key} of {name!r}: not one value per channel of a "
                                    "layer of the graph")
            if not np.all(np.isfinite(values)) or (key == "channel_factors"
                                                   and np.any(values <= 0)):
                raise ArtifactError(f"{key} of {name!r}: values must be finite"
                                    + (" and positive" if key == "channel_factors" else ""))
    return out


def open_artifact(path: str | Path, fmt: str, version: int | tuple[int, ...]) -> h5py.File:
    """Open a file of format ``fmt`` and one of the ``version`` (s) this snn2hw reads."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise ArtifactError(f"{path}: not an HDF5 file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot open HDF5 file ({exc})") from None
    found = f.attrs.get("format")
    if found != fmt:
        f.close()
        raise ArtifactError(f"{path}: not a {fmt} file (format {found!r})")
    got = f.attrs.get("format_version")
    versions = version if isinstance(version, tuple) else (version,)
    if got not in versions:
        f.close()
        raise ArtifactError(f"{path}: {fmt} format version {got}, this snn2hw reads version "
                            f"{' or '.join(map(str, versions))}; recreate the file with "
                            "this version")
    return f


def load_calibration(path: str | Path, expected_sha256: str | None = None
                     ) -> CalibrationArtifact:
    f = open_artifact(path, CALIBRATION_FORMAT, (FORMAT_VERSION, CHANNELS_VERSION))
    with f:
        require(f, path, ("graph", "graph/nodes", "scales", "scales/values"), "calibration")
        try:
            graph = read_graph(f["graph"])
            names = json.loads(f["scales"].attrs["names"])
            values = np.asarray(f["scales"]["values"][()], dtype=np.float64)
            rate = None
            if "source_values" in f["scales"]:
                rate = dict(zip(names, map(float, f["scales"]["source_values"][()])))
            channel_data = (_read_channel_data(f, graph)
                            if f.attrs["format_version"] == CHANNELS_VERSION else {})
            cal = Calibration(str(f.attrs["method"]), dict(zip(names, map(float, values))),
                              json.loads(f.attrs["params"]), json.loads(f.attrs["warnings"]),
                              rate, **channel_data)
            sha = str(f.attrs["onnx_sha256"])
            art = CalibrationArtifact(graph, cal, sha, str(f.attrs["preprocess"]),
                                      json.loads(f.attrs["report"]))
        except ArtifactError as exc:
            raise ArtifactError(f"{path}: {exc.message}") from None
        except CORRUPT as exc:
            raise ArtifactError(f"{path}: incomplete or corrupt calibration file "
                                f"({exc.__class__.__name__}: {exc})") from None
    if expected_sha256 is not None and sha != expected_sha256:
        raise ArtifactError(f"{path}: calibration was made for a different model "
                            f"(ONNX sha256 {sha[:12]}…, this model {expected_sha256[:12]}…)")
    bad = {k: v for k, v in (cal.scales | cal.source_scales).items()
           if not np.isfinite(v) or v <= 0}
    if bad:
        raise ArtifactError(f"{path}: thresholds must be positive and finite: {bad}")
    if len(values) != len(names):
        raise ArtifactError(f"{path}: {len(names)} layer names but {len(values)} thresholds")
    return art
