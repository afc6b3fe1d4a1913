"""ONNX -> IR, in four parts: safe loading of the model file (:mod:`.load`), a scan that
checks every node before anything is converted (:mod:`.scan`), the conversion (:mod:`.convert`)
and the registry of op converters, one module per op family (:mod:`.ops`). :mod:`.checks`
checks the imported graph and hashes the file; :mod:`.ceilshape` restates ceil-mode pools for
ONNX's strict shape inference.

The import step's names are re-exported here and by :mod:`snn2hw.importer`.
"""
from __future__ import annotations

from .checks import file_hash
from .convert import graph_from_nodes, import_onnx, infer_shape, layer_table
from .scan import MAX_OPSET, MIN_OPSET

__all__ = ["file_hash", "graph_from_nodes", "import_onnx", "infer_shape", "layer_table",
           "MAX_OPSET", "MIN_OPSET"]
