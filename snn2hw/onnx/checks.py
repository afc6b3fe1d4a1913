"""Checks of an imported graph and the model file's identity (used by the importer)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .. import ir
from ..errors import ModelFileError
from .load import BYTES_PER_VALUE, external_files, refuse_if_too_large


def file_hash(path: str | Path) -> str:
    """SHA-256 of the model file, then of each external data file it uses (so weights
    re-exported into a ``.onnx.data`` file change it too); a model without external data
    hashes as its file alone."""
    digest = hashlib.sha256()
    for index, name in enumerate([Path(path), *external_files(path)]):
        if index:
            digest.update(b"\0" + name.name.encode() + b"\0")
        with open(name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def check_graph_memory(graph: ir.Graph, path: str | Path, limit: int | None = None) -> None:
    """The memory check of :func:`snn2hw.onnx.load.check_memory` again, on the exact IR
    shapes (shape inference may not have known every tensor's shape)."""
    shapes = {name: node.shape for name, node in graph.nodes.items()}
    activations = sum(int(np.prod(s, dtype=object)) for s in shapes.values()) * BYTES_PER_VALUE
    weights = sum(node.num_params() for node in graph.nodes.values()) * BYTES_PER_VALUE
    largest = max(shapes.items(), key=lambda kv: int(np.prod(kv[1], dtype=object)))
    refuse_if_too_large(Path(path), weights, activations, largest, limit)


def check_finite(graph: ir.Graph, path: str | Path) -> None:
    """Weights can become NaN or infinite only by folding (a BatchNormalization epsilon that
    makes a variance zero or negative, huge alpha/beta): refuse, naming the node."""
    for node in graph.nodes.values():
        for key, value in node.params().items():
            if not np.isfinite(value).all():
                raise ModelFileError(f"{path}: node {node.name!r}: {key} is not finite after "
                                     "folding constants and attributes (check BatchNorm "
                                     "variance and epsilon, Gemm alpha and beta)",
                                     node=node.name)
