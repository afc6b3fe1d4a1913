"""HDF5 artifacts: the IR plus calibration (``.calib.h5``). Every file carries its format
name and version; a file of another format or version is refused with a clear error."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import ir
from ..calibrate import Calibration
from ..errors import ArtifactError
from .graph import read_graph, write_graph
from .hdf5 import CORRUPT, dataset, open_artifact, require, write_artifact

CALIBRATION_FORMAT = "snn2hw-calibration"
FORMAT_VERSION = 1
# Version 2: a file with per-channel factors or bias offsets (groups "channel_factors",
# "bias_offsets"; snn2hw.calibrate.channels). Files without them stay version 1, byte for
# byte; a reader of version 1 only refuses a version 2 file instead of ignoring its groups.
CHANNELS_VERSION = 2
CHANNEL_GROUPS = ("channel_factors", "bias_offsets")
# Version 3: a file with source rates (group "source_rates", one value per neuron of the
# input and of every layer that feeds another: Conversion.rounding_bias). Files without
# them keep versions 1 and 2; readers of those refuse a version 3 file.
RATES_VERSION = 3
RATES_GROUP = "source_rates"


@dataclass
class CalibrationArtifact:
    graph: ir.Graph
    calibration: Calibration
    onnx_sha256: str
    preprocess: str
    report: dict = field(default_factory=dict)


def save_calibration(path: str | Path, art: CalibrationArtifact) -> None:
    version = (RATES_VERSION if art.calibration.source_rates else
               CHANNELS_VERSION if _channel_data(art.calibration) else FORMAT_VERSION)
    with write_artifact(path, CALIBRATION_FORMAT, version) as f:
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
        dataset(scales, "values", [art.calibration.scales[n] for n in names])
        if art.calibration.rate_scales is not None:
            dataset(scales, "source_values",
                    [art.calibration.rate_scales[n] for n in names])
        groups = _channel_data(art.calibration)
        if art.calibration.source_rates:
            groups[RATES_GROUP] = art.calibration.source_rates
        for key, per_layer in groups.items():
            group = f.create_group(key, track_order=True)
            group.attrs["names"] = json.dumps(list(per_layer))
            for index, values in enumerate(per_layer.values()):
                dataset(group, f"{index:04d}", np.asarray(values, dtype=np.float64))


def _channel_data(cal: Calibration) -> dict[str, dict[str, np.ndarray]]:
    return {key: getattr(cal, key) for key in CHANNEL_GROUPS if getattr(cal, key)}


def _read_group(f, key: str) -> dict[str, np.ndarray]:
    """A group of per-node arrays as ``save_calibration`` writes it: names, then 0000...."""
    names = json.loads(f[key].attrs["names"])
    return {n: np.asarray(f[key][f"{i:04d}"][()], dtype=np.float64)
            for i, n in enumerate(names)}


def _read_channel_data(f, graph: ir.Graph) -> dict[str, dict[str, np.ndarray]]:
    """The per-channel groups of a version 2 file, checked against the graph's layers."""
    out = {}
    for key in CHANNEL_GROUPS:
        if key not in f:
            continue
        out[key] = _read_group(f, key)
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


def _read_rates(f, graph: ir.Graph) -> dict[str, np.ndarray]:
    """The source rates of a version 3 file: finite, one value per neuron of a node."""
    if RATES_GROUP not in f:
        return {}
    rates = _read_group(f, RATES_GROUP)
    for name, values in rates.items():
        node = graph.nodes.get(name)
        if node is None or values.shape != (int(np.prod(node.shape)),):
            raise ArtifactError(f"source_rates of {name!r}: not one value per neuron of a "
                                "node of the graph")
        if not np.all(np.isfinite(values)):
            raise ArtifactError(f"source_rates of {name!r}: values must be finite")
    return {"source_rates": rates}


def load_calibration(path: str | Path, expected_sha256: str | None = None
                     ) -> CalibrationArtifact:
    f = open_artifact(path, CALIBRATION_FORMAT, (FORMAT_VERSION, CHANNELS_VERSION,
                                                 RATES_VERSION))
    with f:
        require(f, path, ("graph", "graph/nodes", "scales", "scales/values"), "calibration")
        try:
            graph = read_graph(f["graph"])
            names = json.loads(f["scales"].attrs["names"])
            values = np.asarray(f["scales"]["values"][()], dtype=np.float64)
            rate = None
            if "source_values" in f["scales"]:
                rate = dict(zip(names, map(float, f["scales"]["source_values"][()])))
            version = int(f.attrs["format_version"])
            channel_data = _read_channel_data(f, graph) if version >= CHANNELS_VERSION else {}
            if version >= RATES_VERSION:
                channel_data |= _read_rates(f, graph)
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
