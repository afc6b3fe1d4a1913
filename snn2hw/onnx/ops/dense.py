"""Gemm and MatMul (a constant right-hand matrix) as Dense layers."""
from __future__ import annotations

import numpy as np

from ... import ir
from .registry import register


def _validate_gemm(info, node):
    attrs = info.attrs(node)
    if attrs.get("transA", 0):
        return "transA=1 is not supported"
    if info.const_shape(node.input[1]) is None:
        return "B must be a constant initializer"
    if len(node.input) > 2 and node.input[2]:
        c, b = info.const_shape(node.input[2]), info.const_shape(node.input[1])
        if c is None:
            return "C must be a constant"
        n = (b[0] if attrs.get("transB", 0) else b[1]) if len(b) == 2 else None
        if c and n is not None and not _is_bias(c, n):
            return f"C of shape {tuple(c)} is not a bias of the {n} outputs"
    return None


def _is_bias(c_shape, n: int) -> bool:
    """C broadcasts to (batch, n) as one value per output: (), (1,), (n,), (1, 1), (1, n)."""
    size = int(np.prod(c_shape))
    return len(c_shape) <= 2 and (len(c_shape) < 2 or c_shape[0] == 1) and size in (1, n)


@register("Gemm", since=1, validate=_validate_gemm)
def convert_gemm(ctx, node):
    attrs = ctx.attrs(node)
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    b = ctx.const(node.input[1]).astype(np.float64)
    weight = alpha * (b if attrs.get("transB", 0) else b.T)
    bias = None
    if len(node.input) > 2 and node.input[2]:
        c = ctx.const(node.input[2]).astype(np.float64)
        n = weight.shape[0]
        if not _is_bias(c.shape, n):
            ctx.fail(node, f"C of shape {c.shape} is not a bias of the {n} outputs")
        bias = beta * np.broadcast_to(c.reshape(-1), (n,)).copy()
    ctx.emit(ir.Dense(ctx.name(node), [ctx.source(node.input[0])], weight=weight, bias=bias),
             node.output[0])


def _validate_matmul(info, node):
    b = info.const_shape(node.input[1])
    if b is None or len(b) != 2:
        return "only activation x constant 2-D matrix is supported"
    a = info.tensor_shape(node.input[0])
    if a is not None and len(a) != 2:
        return f"left operand must be 2-D (batch, features), has rank {len(a)}"
    return None


@register("MatMul", since=1, validate=_validate_matmul)
def convert_matmul(ctx, node):
    weight = ctx.const(node.input[1]).astype(np.float64).T
    ctx.emit(ir.Dense(ctx.name(node), [ctx.source(node.input[0])], weight=weight),
             node.output[0])
