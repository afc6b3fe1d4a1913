"""Structural fan-out and multiply-accumulate counts of the linear chains of a spiking
network, for the sparsity analysis (:mod:`snn2hw.analysis.sparsity`).

The fan-out of a source neuron in a term is the number of the layer's neurons j whose
coefficient in the term's composed linear chain is structurally non-zero (some path of
non-zero weights connects i to j; zero weights are absent synapses; numerical cancellation
between paths is not looked for).

Fan-out is computed exactly per source neuron. Each op of the chain is replaced by its
*indicator* (weights -> 1 where non-zero, average pooling -> sum pooling), and the
transposed indicator chain applied to an all-ones output (one vector-Jacobian product)
gives, per source neuron, the number of *paths* to the layer. That equals the number of
distinct targets whenever no source reaches a target by two paths: always for one op
(a source/target pair fixes the kernel tap), and for chains whose ops before the last one
send every source to at most one element (flatten, non-overlapping pooling) - which is
checked. Any other chain (overlapping pooling before a conv, conv -> conv) is counted by
applying the indicator chain to one-hot basis vectors, block by block.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from .. import ann, ir
from ..quantize import chain
from ..snn import Term


# --------------------------------------------------------------------------- fan-out


def _indicator_ops(ops: list[ir.Node]) -> list[tuple[ir.Node, float]]:
    """Each op with non-zero weights set to 1; average pooling as sum pooling (an op and
    the factor its output is multiplied by)."""
    out = []
    for op in ops:
        op = copy.copy(op)
        factor = 1.0
        if isinstance(op, (ir.Conv, ir.Dense)):
            op.weight = (np.asarray(op.weight) != 0).astype(np.float64)
            op.bias = None
        elif isinstance(op, ir.AvgPool):
            op.divisor_override = 1  # a sum pool, also over partial (ceil-mode) windows
        out.append((op, factor))
    return out


def _apply_indicator(ind: list[tuple[ir.Node, float]], x: torch.Tensor) -> torch.Tensor:
    for op, factor in ind:
        x = ann.apply_linear(op, x, with_bias=False)
        if factor != 1.0:
            x = x * factor
    return x


def _path_counts(ind, in_shape) -> np.ndarray:
    """Per source element: the number of paths of non-zero weights to any output element
    (the transposed indicator chain applied to all ones)."""
    x = torch.zeros((1, *in_shape), dtype=torch.float64, requires_grad=True)
    y = _apply_indicator(ind, x)
    (grad,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    if grad is None:
        return np.zeros(int(np.prod(in_shape)), dtype=np.int64)
    return np.rint(grad.reshape(-1).numpy()).astype(np.int64)


def _reach_counts(ind, in_shape, widest: int, budget_bytes: float = 64e6) -> np.ndarray:
    """Per source element: the number of distinct output elements its one-hot vector
    reaches through the indicator chain (exact for any chain)."""
    n = int(np.prod(in_shape))
    block = max(1, int(budget_bytes // (8 * max(widest, n))))
    counts = np.empty(n, dtype=np.int64)
    for start, out in chain.probe_blocks(lambda x: _apply_indicator(ind, x), in_shape, block):
        counts[start:start + len(out)] = (out > 0).sum(dim=1).numpy()
    return counts


def fan_out(term: Term, in_shape: tuple[int, ...]) -> tuple[np.ndarray, str]:
    """Synapses each source neuron of ``term`` drives in the layer (flat, C-order), and
    how they were counted: ``identity``, ``transpose`` (paths are unique, one
    vector-Jacobian product) or ``basis`` (one-hot vectors)."""
    n = int(np.prod(in_shape))
    if not term.ops:
        return np.ones(n, dtype=np.int64), "identity"
    ind = _indicator_ops(term.ops)
    if len(ind) == 1 or _path_counts(ind[:-1], in_shape).max(initial=0) <= 1:
        return _path_counts(ind, in_shape), "transpose"
    widest = max([n] + [int(np.prod(op.shape)) for op in term.ops])
    return _reach_counts(ind, in_shape, widest), "basis"


# --------------------------------------------------------------------------- MACs


def op_macs(op: ir.Node) -> int:
    """ANN multiply-accumulates of one linear node per image: conv
    ``out_elements x C_in/groups x kh x kw``, dense ``out x in``, anything else 0."""
    if isinstance(op, ir.Conv):
        _, cin_per_group, kh, kw = op.weight.shape
        return int(np.prod(op.shape)) * int(cin_per_group * kh * kw)
    if isinstance(op, ir.Dense):
        return int(op.weight.shape[0] * op.weight.shape[1])
    return 0


def op_pool_adds(op: ir.Node) -> int:
    """Additions of an average pool per image (``out_elements x kh x kw``), else 0."""
    if isinstance(op, ir.AvgPool):
        return int(np.prod(op.shape)) * int(op.kernel[0] * op.kernel[1])
    return 0


def unique_ops(terms: list[Term]) -> list[ir.Node]:
    """The linear nodes of ``terms``, each once (a node shared by several terms)."""
    seen: dict[str, ir.Node] = {}
    for t in terms:
        for op in t.ops:
            seen.setdefault(op.name, op)
    return list(seen.values())
