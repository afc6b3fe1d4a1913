"""Average pooling: AveragePool (also with ceil_mode), GlobalAveragePool, ReduceMean over the
spatial axes, and MaxPool converted as average pooling when the user asks (``--maxpool avg``).
"""
from __future__ import annotations

from ... import ann, ir
from .registry import register
from .conv import auto_pad_problem, padded_attrs


def _validate_pool(info, node):
    attrs = info.attrs(node)
    if auto_pad_problem(info, node):
        return auto_pad_problem(info, node)
    if len(attrs.get("kernel_shape", [])) != 2:
        return f"only 2-D {node.op_type} is supported"
    if any(int(d) != 1 for d in attrs.get("dilations", [])):
        return f"dilated pooling is not supported (dilations={attrs['dilations']})"
    return None


def _pool(ctx, node, count_include_pad: bool) -> ir.AvgPool:
    """The average pool of ``node``'s window, with a preceding zero Pad folded in."""
    from .pad import folded_pads

    attrs = ctx.attrs(node)
    kernel = tuple(int(k) for k in attrs["kernel_shape"])
    in_shape = image_shape(ctx, node)
    stride, _, padding = padded_attrs(ctx, node, in_shape, kernel)
    if "strides" not in attrs:
        stride = (1, 1)
    extra = folded_pads(ctx, node.input[0])
    own = tuple(p - e for p, e in zip(padding, extra))
    ceil = bool(attrs.get("ceil_mode", 0))
    if any(extra):
        if any(own) and not count_include_pad:
            ctx.fail(node, "a zero Pad before an average pool that leaves its own padding "
                           "out of the divisor cannot be folded into it exactly")
        if ceil and _ceil_windows(in_shape, kernel, stride, padding) != _ceil_windows(
                (0, in_shape[1] + extra[0] + extra[2], in_shape[2] + extra[1] + extra[3]),
                kernel, stride, own):
            ctx.fail(node, "a zero Pad before a ceil-mode pool changes which partial windows "
                           "exist; it cannot be folded into the pool exactly")
        count_include_pad = True  # the Pad's zeros are data: they count
    return ir.AvgPool(ctx.name(node), [ctx.source(node.input[0])], kernel=kernel,
                      stride=stride, padding=padding, count_include_pad=count_include_pad,
                      ceil_mode=ceil)


def _ceil_windows(in_shape, kernel, stride, padding) -> tuple[int, int]:
    top, left, bottom, right = padding
    return (ann.pool_windows(in_shape[1], kernel[0], stride[0], top, bottom, True),
            ann.pool_windows(in_shape[2], kernel[1], stride[1], left, right, True))


@register("AveragePool", since=1, validate=_validate_pool)
def convert_avgpool(ctx, node):
    ctx.emit(_pool(ctx, node, bool(ctx.attrs(node).get("count_include_pad", 0))),
             node.output[0])


def _validate_maxpool(info, node):
    if info.options.get("maxpool", "refuse") != "avg":
        return ("MaxPool has no exact spiking form (a max of spike trains is not a rate); "
                "--maxpool avg converts it as average pooling of the same window")
    if len(node.output) > 1 and any(node.output[1:]):
        return "MaxPool with an indices output"
    return _validate_pool(info, node)


@register("MaxPool", since=1, validate=_validate_maxpool)
def convert_maxpool(ctx, node):
    # The window's average over its real positions: padding (-inf for a max) never counts.
    ctx.emit(_pool(ctx, node, False), node.output[0])
    ctx.metadata["snn2hw.maxpool"] = "avg"


def image_shape(ctx, node) -> tuple[int, int, int]:
    """The (C, H, W) input of a spatial op; anything else fails naming the node."""
    shape = ctx.shape_of(node.input[0])
    if len(shape) != 3:
        ctx.fail(node, f"needs an image input (C, H, W), got shape {tuple(shape)}")
    return shape


def _global(ctx, node, name, flatten: bool):
    c, h, w = image_shape(ctx, node)
    ctx.emit(ir.AvgPool(name, [ctx.source(node.input[0])], kernel=(h, w), stride=(h, w)),
             node.output[0] if not flatten else node.output[0] + "/pooled")
    if flatten:
        ctx.emit(ir.Flatten(name + "/flatten", [name]), node.output[0])


@register("GlobalAveragePool", since=1)
def convert_global_avgpool(ctx, node):
    _global(ctx, node, ctx.name(node), flatten=False)


def _reduce_axes(info_or_ctx, node):
    attrs = info_or_ctx.attrs(node)
    if "axes" in attrs:
        return [int(a) for a in attrs["axes"]]
    if len(node.input) > 1 and node.input[1]:
        value = info_or_ctx.const_value(node.input[1])
        return None if value is None else [int(a) for a in value.reshape(-1)]
    return None


def _validate_reduce_mean(info, node):
    axes = _reduce_axes(info, node)
    shape = info.tensor_shape(node.input[0])
    rank = len(shape) if shape is not None else 4
    if axes is None or sorted(a % rank for a in axes) != [2, 3] or rank != 4:
        return f"ReduceMean is supported only over the spatial axes (2, 3), got {axes}"
    return None


@register("ReduceMean", since=1, validate=_validate_reduce_mean)
def convert_reduce_mean(ctx, node):
    keepdims = bool(ctx.attrs(node).get("keepdims", 1))
    _global(ctx, node, ctx.name(node), flatten=not keepdims)
