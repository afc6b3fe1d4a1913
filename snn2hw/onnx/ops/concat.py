"""Concat: of constants (shape arithmetic), or of activations along the channel axis.

A channel concatenation is the sum of its inputs each *placed* at its channel offset in the
concatenated tensor (:class:`snn2hw.ir.Place`, zeros elsewhere), i.e. an ``Add`` of
``Place`` nodes. Lowering then treats it like a residual junction: a layer that reads the
concatenation gets one synapse per source, each with its own source scale and delay, and
:mod:`snn2hw.snn.placement` folds each placement into the next conv or dense layer (the weights'
matching input-channel slice), so no extra neuron, synapse or time step is added.
"""
from __future__ import annotations

import numpy as np

from ... import ir
from .registry import register


def _axis(info_or_ctx, node, rank: int) -> int:
    axis = int(info_or_ctx.attrs(node).get("axis", 0))
    return axis + rank if axis < 0 else axis


def _validate_concat(info, node):
    consts = [info.is_const(n) for n in node.input if n]
    if all(consts):
        return None
    if any(consts):
        return "concatenating an activation with a constant is not supported"
    shape = info.tensor_shape(node.output[0]) or info.tensor_shape(node.input[0])
    rank = len(shape) if shape is not None else 4
    if _axis(info, node, rank) != 1:
        return (f"Concat along axis {info.attrs(node).get('axis')} of rank-{rank} activations "
                "(only the channel or feature axis 1 is supported)")
    return None


@register("Concat", since=1, validate=_validate_concat)
def convert_concat(ctx, node):
    inputs = [n for n in node.input if n]
    if all(ctx.is_const(n) for n in inputs):
        axis = int(ctx.attrs(node).get("axis", 0))
        parts = [np.atleast_1d(ctx.const(n)) for n in inputs]
        ctx.set_const(node.output[0], np.concatenate(parts, axis=axis))
        return
    shapes = [tuple(ctx.shape_of(n)) for n in inputs]
    if len({s[1:] for s in shapes}) > 1 or len({len(s) for s in shapes}) > 1:
        ctx.fail(node, f"concatenates activations of shapes {shapes} along channels (the "
                       "other dimensions must agree)")
    if len(inputs) == 1:
        ctx.alias(node.output[0], inputs[0])
        return
    name, total, offset, placed = ctx.name(node), sum(s[0] for s in shapes), 0, []
    for index, (tensor, shape) in enumerate(zip(inputs, shapes)):
        place = ir.Place(f"{name}/place{index}", [ctx.source(tensor)], offset=offset,
                         total=total)
        ctx.emit(place, f"{node.output[0]}/place{index}")
        placed.append(place.name)
        offset += shape[0]
    ctx.emit(ir.Add(name, placed), node.output[0])
