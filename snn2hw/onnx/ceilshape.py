"""ONNX shape inference and ceil-mode pooling: a copy of the model that infers ONNX
Runtime's (and torch's) output sizes.

In ceil mode, ONNX Runtime and torch keep a last window only if it starts inside the input
or the leading padding; ONNX shape inference (onnx 1.23, every opset) keeps it anyway. A
torch model with, e.g., ``AvgPool2d(2, 2, padding=1, ceil_mode=True)`` on an odd size
then fails strict shape inference (the next layer's weights fit the real size), although
onnxruntime runs it. The importer's strict check runs on a copy where each such pool is
restated in floor mode with a trailing padding that gives the same number of windows; the
copy serves shape checking only, the model itself is converted unchanged.
"""
from __future__ import annotations

import copy

import onnx
import onnx.helper

POOLS = ("AveragePool", "MaxPool")


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _windows(size: int, k: int, s: int, before: int, after: int) -> tuple[int, int]:
    """(ONNX Runtime's, ONNX shape inference's) ceil-mode window counts along one axis."""
    inferred = -(-(size + before + after - k) // s) + 1
    kept = inferred - 1 if (inferred - 1) * s >= size + before else inferred
    return kept, inferred


def _restated(node: onnx.NodeProto, hw: list[int]) -> onnx.NodeProto | None:
    """``node`` in floor mode with the windows ONNX Runtime computes, if its ceil-mode
    windows differ from what shape inference assumes; else None."""
    attrs = _attrs(node)
    kernel = list(attrs.get("kernel_shape", []))
    if not attrs.get("ceil_mode") or len(kernel) != 2 or len(hw) != 2 or min(hw) <= 0:
        return None
    strides = list(attrs.get("strides", [1, 1]))
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    counts = [_windows(hw[a], kernel[a], strides[a], pads[a], pads[a + 2]) for a in (0, 1)]
    if all(kept == inferred for kept, inferred in counts):
        return None
    for axis, (kept, _) in enumerate(counts):
        # the smallest trailing pad whose floor-mode window count is ``kept``
        pads[axis + 2] = max(0, (kept - 1) * strides[axis] + kernel[axis] - hw[axis]
                             - pads[axis])
    fixed = copy.deepcopy(node)
    del fixed.attribute[:]
    fixed.attribute.extend(onnx.helper.make_attribute(k, v) for k, v in attrs.items()
                           if k not in ("ceil_mode", "pads", "auto_pad"))
    fixed.attribute.extend([onnx.helper.make_attribute("pads", pads),
                            onnx.helper.make_attribute("ceil_mode", 0)])
    return fixed


def for_shape_inference(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model``, or a copy whose ceil-mode pools infer ONNX Runtime's output sizes."""
    pools = [i for i, n in enumerate(model.graph.node)
             if n.op_type in POOLS and _attrs(n).get("ceil_mode")]
    if not pools:
        return model
    patched = copy.deepcopy(model)
    for index in pools:  # in graph order: each fix makes the next pool's input size right
        try:
            inferred = onnx.shape_inference.infer_shapes(patched)
        except Exception:  # noqa: BLE001 - the strict check reports what is wrong
            return patched
        shapes = {vi.name: [d.dim_value if d.HasField("dim_value") else -1
                            for d in vi.type.tensor_type.shape.dim]
                  for vi in list(inferred.graph.input) + list(inferred.graph.value_info)}
        node = patched.graph.node[index]
        fixed = _restated(node, shapes.get(node.input[0], [])[2:])
        if fixed is not None:
            patched.graph.node[index].CopyFrom(fixed)
            # Shapes declared from ONNX's own (wrong) inference would contradict the fix.
            for vi in [v for v in patched.graph.value_info if v.name == node.output[0]]:
                patched.graph.value_info.remove(vi)
            for out in patched.graph.output:
                out.type.tensor_type.ClearField("shape")
    return patched
