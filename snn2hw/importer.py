"""ONNX -> IR. Scan everything first and fail once, listing every unsupported node."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnx.helper
import onnx.numpy_helper
import torch

from . import ann, ceilshape, ir, normalise, onnx_ops
from .errors import InputError, ModelFileError, UnsupportedModelError, UnsupportedNode
from .modelcheck import check_finite, check_graph_memory, file_hash  # noqa: F401 - re-exported
from .modelfile import load_model

MIN_OPSET, MAX_OPSET = 11, 20


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _node_name(node: onnx.NodeProto, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"


@dataclass
class ScanInfo:
    """What a validator may ask about the model before conversion."""

    model: onnx.ModelProto
    consts: dict[str, tuple[int, ...]]  # constant tensors and their shapes (if known)
    values: dict[str, np.ndarray]       # constant tensors whose values are known now
    shapes: dict[str, list[int] | None]  # inferred shapes of all tensors, batch included
    outputs: set[str]
    inference_error: str | None = None  # what strict ONNX shape inference refused
    options: dict = field(default_factory=dict)  # import options, e.g. {"maxpool": "avg"}

    @property
    def opset(self) -> int:
        return opset_of(self.model)

    def attrs(self, node):
        return _attrs(node)

    def is_const(self, name: str) -> bool:
        return name in self.consts

    def const_shape(self, name: str):
        return self.consts.get(name)

    def const_value(self, name: str):
        return self.values.get(name)

    def tensor_shape(self, name: str):
        return self.shapes.get(name)

    def is_graph_output(self, name: str) -> bool:
        return name in self.outputs


def opset_of(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ModelFileError("model declares no ai.onnx opset")


def _inferred_shapes(model: onnx.ModelProto) -> tuple[dict[str, list[int] | None], str | None]:
    """Shapes from ONNX shape inference, and the error strict inference gives (a malformed
    attribute, inconsistent shapes or types) on one line, if any. Non-strict inference is
    the fallback, so the scan can still list every unsupported node first."""
    error = None
    try:
        inferred = onnx.shape_inference.infer_shapes(ceilshape.for_shape_inference(model),
                                                     check_type=True, strict_mode=True)
    except Exception as exc:  # noqa: BLE001 - reported after the scan
        error = " ".join(str(exc).split()) or exc.__class__.__name__
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
        except Exception:  # noqa: BLE001 - best effort; conversion computes its own shapes
            inferred = model
    shapes: dict[str, list[int] | None] = {}
    g = inferred.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in dims] \
            if vi.type.tensor_type.HasField("shape") else None
    for init in g.initializer:
        shapes[init.name] = list(init.dims)
    return shapes, error


def _constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    """The value of a ``Constant`` node, when it is a plain tensor or number(s)."""
    for attr in node.attribute:
        if attr.name == "value":
            return onnx.numpy_helper.to_array(attr.t)
        if attr.name in ("value_float", "value_floats", "value_int", "value_ints"):
            return np.asarray(onnx.helper.get_attribute_value(attr))
    return None


def _constants(model: onnx.ModelProto, shapes: dict | None = None) -> tuple[dict, dict]:
    g = model.graph
    shapes = shapes or {}
    consts = {i.name: tuple(i.dims) for i in g.initializer}
    values = {i.name: onnx.numpy_helper.to_array(i) for i in g.initializer}
    for node in g.node:
        inputs = [n for n in node.input if n]
        if node.op_type == "Constant" and node.output:
            value = _constant_value(node)
            if value is not None:
                consts[node.output[0]] = tuple(value.shape)
                values[node.output[0]] = value
                continue
        if node.op_type in ("Constant", "Shape") or (inputs and all(n in consts for n in inputs)):
            for out in node.output:  # the shape, when inference knows it
                known = shapes.get(out)
                consts[out] = tuple(known) if known and min(known) >= 0 else ()
    return consts, values


def graph_input(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    init = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init]
    if len(inputs) != 1:
        raise ModelFileError(f"model has {len(inputs)} data inputs; exactly one image or "
                             "feature tensor is supported")
    return inputs[0]


def static_batch(model: onnx.ModelProto) -> int | None:
    """The input's batch size when the model fixes it, else None."""
    dims = graph_input(model).type.tensor_type.shape.dim
    if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
        return int(dims[0].dim_value)
    return None


def input_shape(model: onnx.ModelProto) -> tuple[int, ...]:
    """The static per-sample input shape; the batch dimension may be symbolic."""
    vi = graph_input(model)
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        raise ModelFileError(f"input {vi.name!r} has no shape")
    dims = tt.shape.dim
    if len(dims) not in (2, 4):
        raise ModelFileError(f"input {vi.name!r} has rank {len(dims)}; expected (N, C, H, W) "
                             "or (N, features)")
    if dims[0].HasField("dim_value") and dims[0].dim_value <= 0:
        raise ModelFileError(f"input {vi.name!r} has batch dimension {dims[0].dim_value}; use "
                             "a positive or a symbolic batch size")
    shape = []
    for axis, d in enumerate(dims[1:], start=1):
        if not d.HasField("dim_value") or d.dim_value <= 0:
            raise ModelFileError(f"input {vi.name!r} dimension {axis} is not a fixed positive "
                                 f"size ({d.dim_param or d.dim_value}); re-export with a fixed "
                                 "input shape (only the batch dimension may be dynamic)")
        shape.append(int(d.dim_value))
    return tuple(shape)


def _scan(model: onnx.ModelProto, options: dict | None = None
          ) -> tuple[ScanInfo, list[dict], list[UnsupportedNode]]:
    opset = opset_of(model)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ModelFileError(f"model uses opset {opset}; supported opsets are {MIN_OPSET} to "
                             f"{MAX_OPSET}", hint=f"re-export with opset_version={MAX_OPSET}")
    shapes, inference_error = _inferred_shapes(model)
    consts, values = _constants(model, shapes)
    info = ScanInfo(model, consts, values, shapes, {o.name for o in model.graph.output},
                    inference_error, dict(options or {}))
    problems: list[UnsupportedNode] = []
    rows = []
    for index, node in enumerate(model.graph.node):
        domain = node.domain if node.domain != "ai.onnx" else ""
        conv = onnx_ops.lookup(node.op_type, opset, domain)
        reason = None if conv else "op is not supported"
        if conv and conv.validate:
            reason = conv.validate(info, node)
        if reason:
            problems.append(UnsupportedNode(_node_name(node, index),
                                            (domain + "::" if domain else "") + node.op_type,
                                            opset, reason, onnx_ops.hint_for(node.op_type)))
        shape = info.shapes.get(node.output[0]) if node.output else None
        n_params = sum(int(np.prod(consts[n])) for n in node.input
                       if n in consts and n in values)
        rows.append({"name": _node_name(node, index), "op": node.op_type,
                     "shape": tuple(shape[1:]) if shape else None, "params": n_params,
                     "supported": reason is None,
                     "action": ("folded" if normalise.in_chain(info, node) else conv.action)
                     if conv and not reason else "unsupported"})
    return info, rows, problems


def scan(model: onnx.ModelProto, source: str = "model", options: dict | None = None
         ) -> tuple[ScanInfo, list[dict]]:
    """Check every node; return scan facts and the layer table, or raise once. A model
    whose every node is supported must then also pass strict ONNX shape inference."""
    info, rows, problems = _scan(model, options)
    if problems:
        raise UnsupportedModelError(problems)
    if info.inference_error:
        text = info.inference_error
        raise ModelFileError(f"{source}: fails ONNX shape inference: "
                             + (text if len(text) <= 300 else text[:300] + "…"))
    return info, rows


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
        return _attrs(node)

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
        base = _node_name(node, self.current_index)
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
        name = _node_name(node, self.current_index) if node is not None else "<model>"
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
    :mod:`snn2hw.modelfile` for the default. ``maxpool="avg"`` converts MaxPool as
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
    _, rows, problems = _scan(model, {"maxpool": maxpool})
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
