"""Conv and BatchNormalization (folded into the conv or dense before it)."""
from __future__ import annotations

import numpy as np

from ... import ir
from .registry import register


def _explicit_padding(ctx, node, in_hw, kernel, stride, dilation) -> tuple[int, int, int, int]:
    attrs = ctx.attrs(node)
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s, d in zip(in_hw, kernel, stride, dilation):
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small, large = total // 2, total - total // 2
            pads.append((small, large) if auto_pad == "SAME_UPPER" else (large, small))
        return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])
    p = list(attrs.get("pads", [0, 0, 0, 0]))
    return (int(p[0]), int(p[1]), int(p[2]), int(p[3]))


def spatial_attrs(ctx, node, in_hw, kernel):
    attrs = ctx.attrs(node)
    stride = tuple(int(s) for s in attrs.get("strides", [1, 1]))
    dilation = tuple(int(d) for d in attrs.get("dilations", [1, 1]))
    padding = _explicit_padding(ctx, node, in_hw, kernel, stride, dilation)
    return stride, dilation, padding


def padded_attrs(ctx, node, in_shape, kernel):
    """Stride, dilation and padding, including a zero Pad folded in from before the node."""
    from .pad import folded_pads

    extra = folded_pads(ctx, node.input[0])
    in_hw = (in_shape[1] + extra[0] + extra[2], in_shape[2] + extra[1] + extra[3])
    stride, dilation, padding = spatial_attrs(ctx, node, in_hw, kernel)
    return stride, dilation, tuple(p + e for p, e in zip(padding, extra))


AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def auto_pad_problem(info, node) -> str | None:
    mode = info.attrs(node).get("auto_pad", b"NOTSET")
    mode = mode.decode(errors="replace") if isinstance(mode, bytes) else str(mode)
    if mode not in AUTO_PADS:
        return f"auto_pad {mode!r} is not one of {', '.join(AUTO_PADS)}"
    return None


def _validate_conv(info, node):
    if auto_pad_problem(info, node):
        return auto_pad_problem(info, node)
    w = info.const_shape(node.input[1])
    if w is None:
        return "weights are not a constant initializer"
    if len(w) != 4:
        return f"only 2-D convolution is supported (weight rank {len(w)})"
    if len(node.input) > 2 and node.input[2]:
        b = info.const_shape(node.input[2])
        if b is None:
            return "bias is not a constant initializer"
        if b and tuple(b) != (w[0],):
            return f"bias of shape {tuple(b)} is not one value per output channel ({w[0]})"
    return None


@register("Conv", since=1, validate=_validate_conv)
def convert_conv(ctx, node):
    weight = ctx.const(node.input[1]).astype(np.float64)
    has_bias = len(node.input) > 2 and node.input[2]
    bias = ctx.const(node.input[2]).astype(np.float64) if has_bias else None
    src = ctx.source(node.input[0])
    in_shape = ctx.shape_of(node.input[0])
    if len(in_shape) != 3:
        ctx.fail(node, f"needs an image input (C, H, W), got shape {tuple(in_shape)}")
    stride, dilation, padding = padded_attrs(ctx, node, in_shape, weight.shape[2:])
    groups = int(ctx.attrs(node).get("group", 1))
    ctx.emit(ir.Conv(ctx.name(node), [src], weight=weight, bias=bias, stride=stride,
                     padding=padding, dilation=dilation, groups=groups), node.output[0])


def _validate_bn(info, node):
    shapes = [info.const_shape(name) for name in node.input[1:5]]
    if any(shape is None for shape in shapes):
        return "scale, bias, mean and variance must be constants (export in eval mode)"
    if any(len(shape) != 1 for shape in shapes) or len({tuple(s) for s in shapes}) != 1:
        return f"scale, bias, mean and variance must be 1-D of one length, have shapes {shapes}"
    x_shape = info.tensor_shape(node.input[0])
    if x_shape and len(x_shape) >= 2 and x_shape[1] and x_shape[1] != shapes[0][0]:
        return f"has {shapes[0][0]} scale values for an input of {x_shape[1]} channels"
    if (len(node.output) > 1 and any(node.output[1:])) or info.attrs(node).get("training_mode"):
        return "training-mode BatchNormalization (export in eval mode)"
    return None


@register("BatchNormalization", since=1, action="folded", validate=_validate_bn)
def convert_batchnorm(ctx, node):
    scale, beta, mean, var = (ctx.const(n).astype(np.float64) for n in node.input[1:5])
    eps = float(ctx.attrs(node).get("epsilon", 1e-5))
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN is refused after import
        gain = scale / np.sqrt(var + eps)
    shift = beta - mean * gain
    producer = ctx.producer(node.input[0])
    if isinstance(producer, (ir.Conv, ir.Dense)) and ctx.sole_consumer(node.input[0]):
        # y = gain * (W x + b) + shift: scale output channels of W, fold shift into b.
        shape = (-1,) + (1,) * (producer.weight.ndim - 1)
        producer.weight = producer.weight * gain.reshape(shape)
        old_bias = producer.bias if producer.bias is not None else 0.0
        producer.bias = old_bias * gain + shift
        ctx.alias(node.output[0], node.input[0])
        return
    # Not after a conv/dense: an exact per-channel affine map, i.e. a depthwise 1x1 conv
    # (or a diagonal dense layer on feature vectors).
    channels = gain.shape[0]
    if len(ctx.shape_of(node.input[0])) == 1:
        ctx.emit(ir.Dense(ctx.name(node), [ctx.source(node.input[0])], weight=np.diag(gain),
                          bias=shift), node.output[0])
        return
    ctx.emit(ir.Conv(ctx.name(node), [ctx.source(node.input[0])],
                     weight=gain.reshape(channels, 1, 1, 1), bias=shift, groups=channels),
             node.output[0])
