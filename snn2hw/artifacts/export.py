"""Export artifacts (``.loihi.h5``): the quantised network for one hardware profile.

Format ``snn2hw-export`` version 1, HDF5:
  attrs     format, format_version, snn2hw_version, profile, profile_toml, onnx_sha256,
            calibration (method, params JSON), seed, preprocess, input, input_shape,
            input_scale, state_bits, threshold_shift, current_shift, reset (zero or
            subtract; absent in older files: zero), report (JSON)
  graph/    the ANN IR (as in calibration files), scales/ the calibrated layer scales
            (values) and source scales (source_values, when they differ)
  layers/NNNN   attrs name, shape, depth, threshold, bias_exp, is_output, scale, report;
                dataset bias_mant (optional); synapses/MMMM with attrs source, lag,
                in_shape, out_shape, kind, stride, padding, dilation, groups, pool and
                datasets weight (conv) or data/indices/indptr (+ attr matrix_shape)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse as sp

from .. import ir
from ..errors import ArtifactError, InputError
from .graph import read_graph, write_graph
from .hdf5 import CORRUPT, dataset, open_artifact, require, write_artifact
from ..hardware.profiles import RESETS
from ..quantize.qnet import IntSynapse, QuantizedNetwork, QuantLayer
from ..quantize.quantizer import input_levels
from ..snn.options import Conversion

EXPORT_FORMAT = "snn2hw-export"
FORMAT_VERSION = 1


@dataclass
class ExportArtifact:
    qnet: QuantizedNetwork
    graph: ir.Graph
    scales: dict[str, float]          # thresholds in ANN units (plus the input's)
    profile_toml: str
    onnx_sha256: str
    method: str
    params: dict
    seed: int
    preprocess: str
    report: dict = field(default_factory=dict)
    source_scales: dict[str, float] | None = None  # when calibration measured them


def _tuple_json(value) -> str:
    return json.dumps([int(v) for v in value])


def _write_synapse(g: h5py.Group, syn: IntSynapse) -> None:
    g.attrs["source"] = syn.source
    g.attrs["lag"] = syn.lag
    g.attrs["kind"] = syn.kind
    for key in ("in_shape", "out_shape", "stride", "padding", "dilation", "pool"):
        g.attrs[key] = _tuple_json(getattr(syn, key))
    g.attrs["groups"] = syn.groups
    if syn.is_conv:
        dataset(g, "weight", syn.weight)
    else:
        csr = syn.csr.tocsr()
        g.attrs["matrix_shape"] = _tuple_json(csr.shape)
        for key in ("data", "indices", "indptr"):
            dataset(g, key, getattr(csr, key))


def _read_synapse(g: h5py.Group) -> IntSynapse:
    t = {k: tuple(json.loads(g.attrs[k])) for k in
         ("in_shape", "out_shape", "stride", "padding", "dilation", "pool")}
    kind = str(g.attrs["kind"])
    if kind == "conv":
        return IntSynapse(str(g.attrs["source"]), int(g.attrs["lag"]), t["in_shape"],
                          t["out_shape"], kind, g["weight"][()], t["stride"], t["padding"],
                          t["dilation"], int(g.attrs["groups"]), t["pool"])
    if kind != "matrix":
        raise ArtifactError(f"unknown synapse kind {kind!r}")
    shape = tuple(json.loads(g.attrs["matrix_shape"]))
    csr = sp.csr_matrix((g["data"][()], g["indices"][()], g["indptr"][()]), shape=shape)
    return IntSynapse(str(g.attrs["source"]), int(g.attrs["lag"]), t["in_shape"],
                      t["out_shape"], kind, csr=csr)


def save_export(path: str | Path, art: ExportArtifact) -> None:
    q = art.qnet
    with write_artifact(path, EXPORT_FORMAT, FORMAT_VERSION) as f:
        f.attrs["profile"] = q.profile
        f.attrs["profile_toml"] = art.profile_toml
        f.attrs["onnx_sha256"] = art.onnx_sha256
        f.attrs["method"] = art.method
        f.attrs["params"] = json.dumps(art.params, sort_keys=True)
        f.attrs["seed"] = art.seed
        f.attrs["preprocess"] = art.preprocess
        f.attrs["input"] = q.input
        f.attrs["input_shape"] = _tuple_json(q.input_shape)
        f.attrs["input_scale"] = q.input_scale
        for key in ("state_bits", "threshold_shift", "current_shift", "reset"):
            f.attrs[key] = getattr(q, key)
        f.attrs["report"] = json.dumps(art.report, sort_keys=True)
        write_graph(f.create_group("graph"), art.graph)
        scales = f.create_group("scales")
        scales.attrs["names"] = json.dumps(list(art.scales))
        dataset(scales, "values", list(art.scales.values()))
        if art.source_scales is not None:
            dataset(scales, "source_values", [art.source_scales[n] for n in art.scales])
        layers = f.create_group("layers", track_order=True)
        for i, la in enumerate(q.layers):
            g = layers.create_group(f"{i:04d}")
            g.attrs["name"] = la.name
            g.attrs["shape"] = _tuple_json(la.shape)
            g.attrs["depth"] = la.depth
            g.attrs["threshold"] = la.threshold
            g.attrs["bias_exp"] = la.bias_exp
            g.attrs["is_output"] = la.is_output
            g.attrs["scale"] = la.scale
            g.attrs["report"] = json.dumps(la.report, sort_keys=True)
            if la.bias_mant is not None:
                dataset(g, "bias_mant", la.bias_mant)
            syns = g.create_group("synapses", track_order=True)
            for j, syn in enumerate(la.synapses):
                _write_synapse(syns.create_group(f"{j:04d}"), syn)



def _read_layer(g: h5py.Group) -> QuantLayer:
    threshold = g.attrs["threshold"]
    threshold = int(threshold) if np.issubdtype(type(threshold), np.integer) else float(
        threshold)
    if not np.isfinite(threshold) or threshold <= 0:
        raise ArtifactError(f"layer {g.attrs['name']}: threshold {threshold} must be positive")
    syns = [_read_synapse(g["synapses"][k]) for k in sorted(g["synapses"])]
    return QuantLayer(str(g.attrs["name"]), tuple(json.loads(g.attrs["shape"])),
                      int(g.attrs["depth"]), syns, threshold,
                      g["bias_mant"][()] if "bias_mant" in g else None,
                      int(g.attrs["bias_exp"]), bool(g.attrs["is_output"]),
                      float(g.attrs["scale"]), json.loads(g.attrs["report"]))


def _check_connections(path, qnet: QuantizedNetwork) -> None:
    """Every layer is fed, by the input or another stored layer, with matching shapes: a
    deleted layer or synapse is refused, not run as a silent network."""
    shapes = {qnet.input: tuple(qnet.input_shape)}
    for la in qnet.layers:
        if la.name in shapes:
            raise ArtifactError(f"{path}: layer name {la.name!r} is used twice")
        shapes[la.name] = tuple(la.shape)
    for la in qnet.layers:
        if not la.synapses:
            raise ArtifactError(f"{path}: layer {la.name!r} has no synapses")
        for syn in la.synapses:
            if syn.source not in shapes:
                raise ArtifactError(f"{path}: layer {la.name!r} reads from {syn.source!r}, "
                                    "which is not the input or a stored layer")
            if (tuple(syn.in_shape), tuple(syn.out_shape)) != (shapes[syn.source],
                                                               shapes[la.name]):
                raise ArtifactError(f"{path}: synapse {syn.source!r} -> {la.name!r} maps "
                                    f"{tuple(syn.in_shape)} -> {tuple(syn.out_shape)}, but "
                                    f"the layers have shapes {shapes[syn.source]} and "
                                    f"{shapes[la.name]}")


def _restore_conversion(qnet: QuantizedNetwork, params: dict) -> None:
    """The conversion options the export was made with (recorded in its calibration
    ``params``; a file without them was made with the defaults) and its input levels."""
    try:
        qnet.conversion = Conversion.from_params(params)
    except InputError as exc:
        raise ArtifactError(f"conversion options: {exc.message}") from None
    integer = all(isinstance(la.threshold, (int, np.integer)) for la in qnet.layers)
    qnet.input_levels = input_levels(qnet.conversion, quantized=integer)


def load_export(path: str | Path) -> ExportArtifact:
    f = open_artifact(path, EXPORT_FORMAT, FORMAT_VERSION)
    with f:
        require(f, path, ("graph", "graph/nodes", "scales", "scales/values", "layers"),
                "export")
        try:
            layers = [_read_layer(f["layers"][k]) for k in sorted(f["layers"])]
            qnet = QuantizedNetwork(str(f.attrs["input"]),
                                    tuple(json.loads(f.attrs["input_shape"])),
                                    float(f.attrs["input_scale"]), layers,
                                    str(f.attrs["profile"]), int(f.attrs["state_bits"]),
                                    int(f.attrs["threshold_shift"]),
                                    int(f.attrs["current_shift"]),
                                    str(f.attrs.get("reset", "zero")))
            if qnet.reset not in RESETS:
                raise ArtifactError(f"{path}: unknown neuron reset {qnet.reset!r}; known: "
                                    f"{', '.join(RESETS)}")
            names = json.loads(f["scales"].attrs["names"])
            scales = dict(zip(names, map(float, f["scales"]["values"][()])))
            sources = (dict(zip(names, map(float, f["scales"]["source_values"][()])))
                       if "source_values" in f["scales"] else None)
            _restore_conversion(qnet, json.loads(f.attrs["params"]))
            art = ExportArtifact(qnet, read_graph(f["graph"]), scales,
                                 str(f.attrs["profile_toml"]), str(f.attrs["onnx_sha256"]),
                                 str(f.attrs["method"]), json.loads(f.attrs["params"]),
                                 int(f.attrs["seed"]), str(f.attrs["preprocess"]),
                                 json.loads(f.attrs["report"]), sources)
        except ArtifactError as exc:
            raise ArtifactError(f"{path}: {exc.message}") from None
        except CORRUPT as exc:
            raise ArtifactError(f"{path}: incomplete or corrupt export file "
                                f"({exc.__class__.__name__}: {exc})") from None
    if not layers or sum(la.is_output for la in layers) != 1:
        raise ArtifactError(f"{path}: export must have exactly one output layer")
    _check_connections(path, qnet)
    if not np.isfinite(qnet.input_scale) or qnet.input_scale <= 0:
        raise ArtifactError(f"{path}: input scale {qnet.input_scale} must be positive")
    return art
