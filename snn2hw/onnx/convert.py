"""ONNX -> IR: convert a scanned model node by node through the op registry (:mod:`.ops`),
then check what came out. :func:`import_onnx` is the whole import step."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import torch

from .. import ann, ir
from . import normalise
from ..errors import InputError, ModelFileError, UnsupportedModelError, UnsupportedNode
from . import ops as onnx_ops
from .checks import check_finite, check_graph_memory, file_hash
from .load import load_model
from .scan import (ScanInfo, scan_nodes, attrs_of, graph_input, input_shape, node_name, opset_of,
                   scan, static_batch)


@dataclass
class ImportContext:
    model: onnx.ModelProto
    opset: int
    info: ScanInfo
    consts: dict[str, np.ndarray] = field(default_factory=dict)
    tensors: dict[str, str] = field(default_factory=dict)  # onnx tensor -> IR node name
    nodes: dict[str, ir.Node] = field(default_factory=dict)
    current: onnx.NodeProto | None = None
    current_index: int = 0
    batch: int = 1  # the batch size shape arithmetic sees: the input's, when it is fixed
    metadata: dict[str, str] = field(default_factory=dict)  # what converters record

    # --- questions converters ask ---
    def attrs(self, node):
        return attrs_of(node)

    def is_const(self, name: str) -> bool:
        return name in self.consts

    def const(self, name: str) -> np.ndarray:
        if name not in self.consts:
            self.fail(self.current, f"input {name!r} must be a constant")
        return self.consts[name]

    def source(self, tensor: str) -> str:
        if tensor not in self.tensors:
            self.fail(self.current, f"input {tensor!r} is not produced by any supported node")
        return self.tensors[tensor]

    def producer(self, tensor: str) -> ir.Node:
        return self.nodes[self.source(tensor)]

    def shape_of(self, tensor: str) -> tuple[int, ...]:
        return self.producer(tensor).shape

    def n_consumers(self, tensor: str) -> int:
        uses = sum(list(n.input).count(tensor) for n in self.model.graph.node)
        return uses + sum(o.name == tensor for o in self.model.graph.output)

    def sole_consumer(self, tensor: str) -> bool:
        """Whether the current node is the only user of the IR node behind ``tensor``, also
        through other tensors aliased to it (Identity, Dropout, a folded bias)."""
        target = self.source(tensor)
        mapped = {t for t, n in self.tensors.items() if n == target}
        uses = sum(self.n_consumers(t) for t in mapped)
        aliases = sum(1 for n in self.model.graph.node[:self.current_index]
                      if any(o in mapped for o in n.output) and any(i in mapped for i in n.input))
        return uses - aliases == 1

    def name(self, node: onnx.NodeProto) -> str:
        base = node_name(node, self.current_index)
        name, k = base, 1
        while name in self.nodes:
            name, k = f"{base}_{k}", k + 1
        return name

    # --- what converters do ---
    def set_const(self, tensor: str, value) -> None:
        self.consts[tensor] = np.asarray(value)

    def alias(self, tensor: str, existing: str) -> None:
        self.tensors[tensor] = self.source(existing)

    def emit(self, node: ir.Node, tensor: str) -> None:
        node.shape = infer_shape(node, [self.nodes[i].shape for i in node.inputs])
        self.nodes[node.name] = node
        self.tensors[tensor] = node.name

    def fail(self, node, reason: str):
        name = node_name(node, self.current_index) if node is not None else "<model>"
        op = node.op_type if node is not None else "?"
        raise UnsupportedModelError([UnsupportedNode(name, op, self.opset, reason,
                                                     onnx_ops.hint_for(op))])


def infer_shape(node: ir.Node, input_shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """Output shape of ``node`` without computing anything (torch meta tensors)."""
    if isinstance(node, (ir.ReLU, ir.Add)):
        return tuple(input_shapes[0])
    x = torch.empty((1, *input_shapes[0]), device="meta")
    try:
        with torch.no_grad():
            y = _meta_apply(node, x)
    except RuntimeError as exc:
        raise InputError(f"node {node.name}: cannot apply {node.kind} to input shape "
                         f"{tuple(input_shapes[0])}: {str(exc).splitlines()[0]}") from None
    shape = tuple(int(d) for d in y.shape[1:])
    if any(d <= 0 for d in shape):
        raise InputError(f"node {node.name}: output shape {shape} has an empty dimension")
    return shape


def _meta_apply(node: ir.Node, x: torch.Tensor) -> torch.Tensor:
    return ann.apply_linear(node, x, with_bias=True)


def convert(model: onnx.ModelProto, info: ScanInfo) -> ir.Graph:
    ctx = ImportContext(model, opset_of(model), info, batch=static_batch(model) or 1)
    for init in model.graph.initializer:
        ctx.consts[init.name] = onnx.numpy_helper.to_array(init)
    vi = graph_input(model)
    ctx.nodes["input"] = ir.Input("input", [], input_shape(model))
    ctx.tensors[vi.name] = "input"
    for index, node in enumerate(model.graph.node):
        ctx.current, ctx.current_index = node, index
        conv = onnx_ops.lookup(node.op_type, ctx.opset, node.domain if node.domain != "ai.onnx"
                               else "")
        if all(ctx.is_const(name) for name in node.input if name):
            _fold(ctx, conv, node)
        else:
            conv.convert(ctx, node)
    if len(model.graph.output) != 1:
        raise ModelFileError(f"model has {len(model.graph.output)} outputs; one is supported")
    ctx.current = None
    out = ctx.source(model.graph.output[0].name)
    return prune(ir.Graph(ctx.nodes, "input", out, ctx.metadata))


def _fold(ctx: ImportContext, conv: onnx_ops.Converter, node: onnx.NodeProto) -> None:
    """Evaluate a node whose inputs are all constants. numpy's complaints about the user's
    constants (shapes that do not fit, bad indices) are reported as that node's problem."""
    try:
        conv.convert(ctx, node)
    except (ValueError, IndexError, TypeError, ArithmeticError) as exc:
        ctx.fail(node, f"cannot evaluate it on its constant inputs: "
                       f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def prune(graph: ir.Graph) -> ir.Graph:
    """Drop nodes the output does not depend on."""
    needed = {graph.output}
    for name in reversed(list(graph.nodes)):
        if name in needed:
            needed.update(graph.nodes[name].inputs)
    needed.add(graph.input)
    nodes = {n: node for n, node in graph.nodes.items() if n in needed}
    return ir.Graph(nodes, graph.input, graph.output, dict(graph.metadata))


def import_onnx(path: str | Path, memory_limit: int | None = None,
                maxpool: str = "refuse") -> ir.Graph:
    """Load, scan and convert an ONNX model file to the IR. ``memory_limit`` (bytes) bounds
    the estimated memory of the weights and one sample's activations; see
    :mod:`snn2hw.onnx.load` for the default. ``maxpool="avg"`` converts MaxPool as
    average pooling of the same window (recorded as ``snn2hw.maxpool`` in the metadata)."""
    model = load_model(path, memory_limit)
    input_shape(model)
    info, _ = scan(model, str(path), {"maxpool": maxpool})
    graph = convert(model, info)
    check_finite(graph, path)
    check_graph_memory(graph, path, memory_limit)
    graph.metadata.update({"onnx_sha256": file_hash(path), "opset": str(opset_of(model)),
                           "producer": f"{model.producer_name} {model.producer_version}".strip()})
    declared = {p.key: p.value for p in model.metadata_props if p.key.startswith("snn2hw.")}
    graph.metadata.update(normalise.fold_input_normalisation(graph.metadata, declared))
    return graph


def layer_table(path: str | Path, maxpool: str = "refuse"
                ) -> tuple[list[dict], Exception | None]:
    """Rows for ``snn2hw inspect``; the scan error, if any, is returned, not raised."""
    model = load_model(path)
    _, rows, problems = scan_nodes(model, {"maxpool": maxpool})
    return rows, (UnsupportedModelError(problems) if problems else None)


def graph_from_nodes(nodes: list[ir.Node], metadata: dict[str, str] | None = None
                     ) -> ir.Graph:
    """A graph from IR nodes in topological order, for building networks in code: the first
    node is the input (its shape set), the last the output; other shapes are inferred."""
    named: dict[str, ir.Node] = {}
    for node in nodes:
        if not isinstance(node, ir.Input):
            node.shape = infer_shape(node, [named[i].shape for i in node.inputs])
        named[node.name] = node
    return ir.Graph(named, nodes[0].name, nodes[-1].name, dict(metadata or {}))
