"""Average pooling: AveragePool, GlobalAveragePool and ReduceMean over the spatial axes."""
from __future__ import annotations

from .. import ir
from . import register
from .conv import auto_pad_problem, spatial_attrs


def _validate_avgpool(info, node):
    attrs = info.attrs(node)
    if auto_pad_problem(info, node):
        return auto_pad_problem(info, node)
    if attrs.get("ceil_mode", 0):
        return "ceil_mode=1 is not supported (export with ceil_mode=False)"
    if len(attrs.get("kernel_shape", [])) != 2:
        return "only 2-D average pooling is supported"
    if any(int(d) != 1 for d in attrs.get("dilations", [])):
        return f"dilated average pooling is not supported (dilations={attrs['dilations']})"
    return None


@register("AveragePool", since=1, validate=_validate_avgpool)
def convert_avgpool(ctx, node):
    attrs = ctx.attrs(node)
    kernel = tuple(int(k) for k in attrs["kernel_shape"])
    in_shape = image_shape(ctx, node)
    stride, _, padding = spatial_attrs(ctx, node, in_shape[1:], kernel)
    if "strides" not in attrs:
        stride = (1, 1)
    ctx.emit(ir.AvgPool(ctx.name(node), [ctx.source(node.input[0])], kernel=kernel,
                        stride=stride, padding=padding,
                        count_include_pad=bool(attrs.get("count_include_pad", 0))),
             node.output[0])


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
