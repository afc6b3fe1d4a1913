"""Scan an ONNX model before converting anything: every node is looked up in the op
registry (:mod:`.ops`) and validated, and one error lists every unsupported node with a
hint. Also the model-level facts the converters ask about (opset, input shape, constants,
inferred shapes)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx.helper
import onnx.numpy_helper

from . import normalise
from ..errors import ModelFileError, UnsupportedModelError, UnsupportedNode
from . import ceilshape
from . import ops as onnx_ops

MIN_OPSET, MAX_OPSET = 11, 20


def attrs_of(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def node_name(node: onnx.NodeProto, index: int) -> str:
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
        return attrs_of(node)

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


def scan_nodes(model: onnx.ModelProto, options: dict | None = None
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
            problems.append(UnsupportedNode(node_name(node, index),
                                            (domain + "::" if domain else "") + node.op_type,
                                            opset, reason, onnx_ops.hint_for(node.op_type)))
        shape = info.shapes.get(node.output[0]) if node.output else None
        n_params = sum(int(np.prod(consts[n])) for n in node.input
                       if n in consts and n in values)
        rows.append({"name": node_name(node, index), "op": node.op_type,
                     "shape": tuple(shape[1:]) if shape else None, "params": n_params,
                     "supported": reason is None,
                     "action": ("folded" if normalise.in_chain(info, node) else conv.action)
                     if conv and not reason else "unsupported"})
    return info, rows, problems


def scan(model: onnx.ModelProto, source: str = "model", options: dict | None = None
         ) -> tuple[ScanInfo, list[dict]]:
    """Check every node; return scan facts and the layer table, or raise once. A model
    whose every node is supported must then also pass strict ONNX shape inference."""
    info, rows, problems = scan_nodes(model, options)
    if problems:
        raise UnsupportedModelError(problems)
    if info.inference_error:
        text = info.inference_error
        raise ModelFileError(f"{source}: fails ONNX shape inference: "
                             + (text if len(text) <= 300 else text[:300] + "…"))
    return info, rows
