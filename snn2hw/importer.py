"""The import step (ONNX -> IR) under its historical name: the implementation is the package
:mod:`snn2hw.onnx` (loading, scan, conversion, op registry)."""
from __future__ import annotations

from .onnx.checks import check_finite, check_graph_memory, file_hash
from .onnx.convert import (ImportContext, convert, graph_from_nodes, import_onnx, infer_shape,
                           layer_table, prune)
from .onnx.scan import (MAX_OPSET, MIN_OPSET, ScanInfo, graph_input, input_shape, opset_of,
                        scan, static_batch)

__all__ = ["check_finite", "check_graph_memory", "file_hash", "ImportContext", "convert",
           "graph_from_nodes", "import_onnx", "infer_shape", "layer_table", "prune",
           "MAX_OPSET", "MIN_OPSET", "ScanInfo", "graph_input", "input_shape", "opset_of",
           "scan", "static_batch"]
