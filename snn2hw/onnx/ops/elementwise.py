"""ReLU, Add (residual junction or bias), input normalisation (Sub/Div/Mul/Add by constants
on the graph input, folded into the preprocessing: see :mod:`snn2hw.onnx.normalise`), and ops that
vanish at inference."""
from __future__ import annotations

import numpy as np

from ... import ir
from .. import normalise
from .registry import register


@register("Relu", since=1)
def convert_relu(ctx, node):
    ctx.emit(ir.ReLU(ctx.name(node), [ctx.source(node.input[0])]), node.output[0])


def _validate_bias_or_sum(info, node):
    if normalise.in_chain(info, node):
        return None
    consts = [info.is_const(name) for name in node.input]
    if all(consts):
        return None
    if any(consts):
        return None  # bias: checked against the producer when converting
    if node.op_type == "Sub":
        return "subtracting two activations has no spiking equivalent"
    return None


def _bias_fold(ctx, node, sign: float):
    tensor_in = next(n for n in node.input if not ctx.is_const(n))
    const_in = next(n for n in node.input if ctx.is_const(n))
    if node.op_type == "Sub" and node.input[0] != tensor_in:
        ctx.fail(node, "constant minus activation is not supported")
    producer = ctx.producer(tensor_in)
    if not isinstance(producer, (ir.Conv, ir.Dense)) or not ctx.sole_consumer(tensor_in):
        ctx.fail(node, "a constant is added to something other than a conv/dense output "
                       "used only here")
    value = np.asarray(ctx.const(const_in), dtype=np.float64)
    # ONNX broadcasting aligns trailing axes: only a constant that is the same at every
    # position and sample, for each channel, is a bias.
    out_shape = (1, *producer.shape)
    spatial = (1,) * (len(out_shape) - 2)
    try:
        full = np.broadcast_to(value, out_shape)
    except ValueError:
        full = None
    per_channel = None if full is None else full[(0, slice(None)) + (0,) * len(spatial)]
    if per_channel is None or (full != per_channel.reshape((1, -1) + spatial)).any():
        ctx.fail(node, f"constant of shape {value.shape} is not a per-channel bias")
    producer.bias = (producer.bias if producer.bias is not None else 0.0) + sign * per_channel
    ctx.alias(node.output[0], tensor_in)


@register("Add", since=1, validate=_validate_bias_or_sum)
def convert_add(ctx, node):
    if normalise.in_chain(ctx.info, node):
        normalise.apply(ctx, node)
    elif all(ctx.is_const(n) for n in node.input):
        ctx.set_const(node.output[0], ctx.const(node.input[0]) + ctx.const(node.input[1]))
    elif any(ctx.is_const(n) for n in node.input):
        _bias_fold(ctx, node, 1.0)
    else:
        a, b = (ctx.shape_of(n) for n in node.input)
        if a != b:
            ctx.fail(node, f"residual Add of shapes {a} and {b} (broadcasting is not supported)")
        ctx.emit(ir.Add(ctx.name(node), [ctx.source(n) for n in node.input]), node.output[0])


@register("Sub", since=1, validate=_validate_bias_or_sum)
def convert_sub(ctx, node):
    if normalise.in_chain(ctx.info, node):
        normalise.apply(ctx, node)
    elif all(ctx.is_const(n) for n in node.input):
        ctx.set_const(node.output[0], ctx.const(node.input[0]) - ctx.const(node.input[1]))
    else:
        _bias_fold(ctx, node, -1.0)


def _validate_const_only(info, node):
    if all(info.is_const(n) for n in node.input if n):
        return None
    return f"{node.op_type} of activations is not supported (only on constants)"


def _validate_scaling(info, node):
    if normalise.in_chain(info, node):
        return None
    reason = _validate_const_only(info, node)
    return reason and reason + " or as the model's input normalisation (by constants)"


@register("Mul", since=1, action="constant", validate=_validate_scaling)
def convert_mul(ctx, node):
    if normalise.in_chain(ctx.info, node):
        normalise.apply(ctx, node)
    else:
        ctx.set_const(node.output[0], ctx.const(node.input[0]) * ctx.const(node.input[1]))


@register("Div", since=1, action="constant", validate=_validate_scaling)
def convert_div(ctx, node):
    if normalise.in_chain(ctx.info, node):
        normalise.apply(ctx, node)
    else:
        ctx.set_const(node.output[0], ctx.const(node.input[0]) / ctx.const(node.input[1]))


@register("Cast", since=1, action="constant", validate=_validate_const_only)
def convert_cast(ctx, node):
    import onnx.helper

    to = onnx.helper.tensor_dtype_to_np_dtype(int(ctx.attrs(node)["to"]))
    ctx.set_const(node.output[0], np.asarray(ctx.const(node.input[0])).astype(to))


@register("Constant", since=1, action="constant")
def convert_constant(ctx, node):
    import onnx.numpy_helper

    for attr in node.attribute:
        if attr.name == "value":
            ctx.set_const(node.output[0], onnx.numpy_helper.to_array(attr.t))
        else:
            ctx.set_const(node.output[0], np.asarray(ctx.attrs(node)[attr.name]))


def _alias(ctx, node):
    if ctx.is_const(node.input[0]):
        ctx.set_const(node.output[0], ctx.const(node.input[0]))
    else:
        ctx.alias(node.output[0], node.input[0])


register("Identity", since=1, action="removed")(_alias)
register("Dropout", since=1, action="removed")(_alias)


def _validate_final(info, node):
    if not info.is_graph_output(node.output[0]):
        return "Softmax is allowed only as the model's final node"
    shape = info.tensor_shape(node.input[0])
    axis = int(info.attrs(node).get("axis", 1 if info.opset < 13 else -1))
    if axis == 0 or (shape is not None and axis == -len(shape)):
        return "Softmax over the batch axis changes each sample's class"
    return None


@register("Softmax", since=1, action="ignored", validate=_validate_final)
def convert_softmax(ctx, node):
    # Monotonic per sample: the class is the argmax with or without it.
    ctx.alias(node.output[0], node.input[0])


register("LogSoftmax", since=1, action="ignored", validate=_validate_final)(convert_softmax)
