"""Flatten and Reshape-to-2D, plus the shape arithmetic exporters emit around them.

Shape computations (Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as written by the
TorchScript exporter for ``x.view(x.size(0), -1)``) are folded to constants. The batch
dimension is represented there by the input's fixed batch size, or by 1 when it is dynamic
(``ctx.batch``); a Reshape whose target is (batch, features) becomes a Flatten.
"""
from __future__ import annotations

import numpy as np

from ... import ir
from .registry import register
from .elementwise import _validate_const_only

def _validate_flatten(info, node):
    axis = int(info.attrs(node).get("axis", 1))
    shape = info.tensor_shape(node.input[0])
    if axis < 0 and shape is not None:
        axis += len(shape)
    if axis != 1:
        return f"Flatten with axis={axis} (only axis=1 keeps the batch dimension)"
    return None


def _flatten(ctx, node, src_tensor):
    shape = ctx.shape_of(src_tensor)
    if len(shape) == 1:
        ctx.alias(node.output[0], src_tensor)
    else:
        ctx.emit(ir.Flatten(ctx.name(node), [ctx.source(src_tensor)]), node.output[0])


@register("Flatten", since=1, validate=_validate_flatten)
def convert_flatten(ctx, node):
    _flatten(ctx, node, node.input[0])


def _validate_reshape(info, node):
    if info.is_const(node.input[0]):
        return None
    if not info.is_const(node.input[1]):
        return "target shape is not a constant"
    target = info.const_value(node.input[1])
    if target is not None and target.ndim != 1:
        return f"target shape must be a 1-D tensor, has shape {tuple(target.shape)}"
    return None


@register("Reshape", since=5, validate=_validate_reshape)
def convert_reshape(ctx, node):
    if ctx.is_const(node.input[0]):
        ctx.set_const(node.output[0], np.reshape(ctx.const(node.input[0]),
                                                 ctx.const(node.input[1]).astype(np.int64)))
        return
    target = [int(v) for v in ctx.const(node.input[1]).reshape(-1)]
    shape = ctx.shape_of(node.input[0])
    features = int(np.prod(shape))
    # 0 copies the batch size unless allowzero=1, where it means an empty dimension.
    batch = (ctx.batch, -1) if ctx.attrs(node).get("allowzero", 0) else (ctx.batch, -1, 0)
    if target[1:] == list(shape) and target[0] in batch:
        ctx.alias(node.output[0], node.input[0])
    elif len(target) == 2 and target[0] in batch and target[1] in (-1, features):
        _flatten(ctx, node, node.input[0])
    else:
        ctx.fail(node, f"Reshape of {shape} to {target}: only (batch, features) is supported")


def _validate_squeeze(info, node):
    if all(info.is_const(n) for n in node.input if n):
        return None
    shape = info.tensor_shape(node.input[0])
    if shape is not None and (len(shape) != 4 or shape[2:] != [1, 1]):
        return f"Squeeze of an activation of shape {shape} (only (N, C, 1, 1) -> (N, C))"
    return None


def _axes(ctx, node):
    if "axes" in ctx.attrs(node):
        return [int(a) for a in ctx.attrs(node)["axes"]]
    if len(node.input) > 1 and node.input[1]:
        return [int(a) for a in ctx.const(node.input[1]).reshape(-1)]
    return None


@register("Squeeze", since=1, validate=_validate_squeeze)
def convert_squeeze(ctx, node):
    if ctx.is_const(node.input[0]):
        axes = _axes(ctx, node)
        value = ctx.const(node.input[0])
        ctx.set_const(node.output[0], np.squeeze(value, tuple(axes) if axes else None))
    else:
        shape, axes = ctx.shape_of(node.input[0]), _axes(ctx, node)
        if shape[1:] != (1, 1) or (axes is not None and sorted(a % 4 for a in axes) != [2, 3]):
            ctx.fail(node, f"Squeeze of an activation of shape {shape} over axes {axes} "
                           "(only (N, C, 1, 1) -> (N, C))")
        _flatten(ctx, node, node.input[0])


@register("Unsqueeze", since=1, action="constant", validate=_validate_const_only)
def convert_unsqueeze(ctx, node):
    value = np.asarray(ctx.const(node.input[0]))
    for axis in sorted(_axes(ctx, node)):
        value = np.expand_dims(value, axis if axis >= 0 else axis + value.ndim + 1)
    ctx.set_const(node.output[0], value)


@register("Shape", since=1, action="constant")
def convert_shape(ctx, node):
    if ctx.is_const(node.input[0]):
        full = list(np.shape(ctx.const(node.input[0])))
    else:
        full = [ctx.batch, *ctx.shape_of(node.input[0])]
    attrs = ctx.attrs(node)
    start, end = int(attrs.get("start", 0)), attrs.get("end")
    full = full[start:None if end is None else int(end)]
    ctx.set_const(node.output[0], np.asarray(full, dtype=np.int64))


@register("Gather", since=1, action="constant", validate=_validate_const_only)
def convert_gather(ctx, node):
    axis = int(ctx.attrs(node).get("axis", 0))
    ctx.set_const(node.output[0], np.take(ctx.const(node.input[0]),
                                          ctx.const(node.input[1]).astype(np.int64), axis=axis))


@register("Slice", since=10, action="constant", validate=_validate_const_only)
def convert_slice(ctx, node):
    data = np.asarray(ctx.const(node.input[0]))
    starts, ends = (ctx.const(n).astype(np.int64) for n in node.input[1:3])
    axes = (ctx.const(node.input[3]).astype(np.int64) if len(node.input) > 3 and node.input[3]
            else np.arange(len(starts)))
    steps = (ctx.const(node.input[4]).astype(np.int64) if len(node.input) > 4 and node.input[4]
             else np.ones(len(starts), dtype=np.int64))
    index = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(st))
    ctx.set_const(node.output[0], data[tuple(index)])
