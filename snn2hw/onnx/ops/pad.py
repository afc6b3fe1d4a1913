"""Pad with constant zeros, folded into the padding of the Conv or AveragePool after it.

The TorchScript exporter computes ``pads`` from constants (ConstantOfShape, Transpose, ...);
those are evaluated here too. Any other Pad mode, a non-zero value, padding of the batch or
channel axes, cropping (negative pads) or a Pad whose output feeds anything but a Conv or
AveragePool is refused, naming the reason.
"""
from __future__ import annotations

import numpy as np

from .registry import register
from .elementwise import _validate_const_only

FOLDS_INTO = ("Conv", "AveragePool")


def _mode(attrs) -> str:
    mode = attrs.get("mode", b"constant")
    return mode.decode(errors="replace") if isinstance(mode, bytes) else str(mode)


def _validate_pad(info, node):
    if all(info.is_const(n) for n in node.input if n):
        return None
    mode = _mode(info.attrs(node))
    if mode != "constant":
        return f"Pad mode {mode!r} is not supported (only constant zero padding)"
    if len(node.input) < 2 or not info.is_const(node.input[1]):
        return "pads are not constant"
    if len(node.input) > 2 and node.input[2] and not info.is_const(node.input[2]):
        return "the padding value is not a constant"
    users = [n.op_type for n in info.model.graph.node if node.output[0] in n.input]
    if info.is_graph_output(node.output[0]) or not users or \
            any(u not in FOLDS_INTO for u in users):
        return (f"a Pad folds only into the padding of a following Conv or AveragePool "
                f"(here used by {', '.join(users) or 'the graph output'})")
    return None


def spatial_pads(ctx, node) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of a zero Pad of an image; anything else fails."""
    rank = 1 + len(ctx.shape_of(node.input[0]))
    pads = [int(p) for p in ctx.const(node.input[1]).reshape(-1)]
    axes = list(range(rank))
    if len(node.input) > 3 and node.input[3]:
        axes = [int(a) % rank for a in ctx.const(node.input[3]).reshape(-1)]
    if len(pads) != 2 * len(axes):
        ctx.fail(node, f"{len(pads)} pads for {len(axes)} axes")
    begin, end = [0] * rank, [0] * rank
    for i, axis in enumerate(axes):
        begin[axis], end[axis] = pads[i], pads[i + len(axes)]
    if len(node.input) > 2 and node.input[2] and \
            np.any(np.asarray(ctx.const(node.input[2])) != 0):
        ctx.fail(node, f"pads with the constant {ctx.const(node.input[2]).tolist()} (only "
                       "zero padding folds into a Conv or AveragePool)")
    if rank != 4 or any(begin[:2]) or any(end[:2]) or min(begin + end) < 0:
        ctx.fail(node, f"pads {pads}: only non-negative padding of the two spatial axes of "
                       "an image is supported")
    return begin[2], begin[3], end[2], end[3]


@register("Pad", since=11, action="folded", validate=_validate_pad)
def convert_pad(ctx, node):
    if all(ctx.is_const(n) for n in node.input if n):
        ctx.fail(node, "padding a constant is not supported")
    spatial_pads(ctx, node)  # checked now, applied by the Conv or AveragePool after it
    ctx.alias(node.output[0], node.input[0])


def folded_pads(ctx, tensor: str) -> tuple[int, int, int, int]:
    """The zero padding of ``tensor`` when a Pad produced it, else zeros."""
    for node in ctx.model.graph.node:
        if node.op_type == "Pad" and node.output and node.output[0] == tensor:
            return spatial_pads(ctx, node)
    return (0, 0, 0, 0)


@register("ConstantOfShape", since=9, action="constant")
def convert_constant_of_shape(ctx, node):
    import onnx.numpy_helper

    value = ctx.attrs(node).get("value")
    fill = onnx.numpy_helper.to_array(value) if value is not None else np.zeros(1, np.float32)
    shape = ctx.const(node.input[0]).astype(np.int64).reshape(-1)
    ctx.set_const(node.output[0], np.full(tuple(shape), fill.reshape(-1)[0], dtype=fill.dtype))


@register("Transpose", since=1, action="constant", validate=_validate_const_only)
def convert_transpose(ctx, node):
    perm = ctx.attrs(node).get("perm")
    ctx.set_const(node.output[0], np.transpose(ctx.const(node.input[0]),
                                               None if perm is None else list(perm)))
