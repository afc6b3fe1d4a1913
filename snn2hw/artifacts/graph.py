"""The IR graph inside an artifact (the ``graph/`` group of calibration and export files):
one group per node, in graph order, with its kind, inputs, shape, attributes and parameters.
A stored graph is validated when read (weights present, shapes consistent, a DAG)."""
from __future__ import annotations

import json

import h5py
import numpy as np

from .. import ir
from ..errors import ArtifactError, InputError
from .hdf5 import dataset


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
            dataset(g, key, value)


# Node parameters a stored node must have (bias is optional: None when absent).
REQUIRED_PARAMS = {"conv": ("weight",), "dense": ("weight",)}
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
