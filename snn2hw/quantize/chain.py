"""The one fold of a term's chain of linear ops (conv, dense, average pooling, flatten,
channel placement) into a single synapse, and the synapse's exact matrix. Everything that
needs the matrix of a chain uses this module: the quantiser (:func:`fold`), the quantised
synapse (:meth:`snn2hw.quantize.qnet.IntSynapse.matrix`, which the Lava backend connects),
and the fan-out analysis (:func:`probe_blocks` on the chain's indicator).

Two forms of synapse (``IntSynapse.kind``):

- ``conv``: the chain ``[Conv]`` or ``[AvgPool k (stride k, no padding)] -> Conv``. The pooled
  conv is a sum-pool followed by the conv with weights ``W / k^2`` (after scaling and
  rounding the same integers as the folded conv ``kron(W, ones(k, k)) / k^2`` with stride
  ``k * s``). Its matrix is built by index arithmetic (:func:`conv_matrix`), so float
  weights stay unrounded and integer weights stay exact.
- ``matrix``: any other chain, as the exact sparse matrix of its response to one-hot basis
  vectors (:func:`chain_matrix`: float64, the chain applied by :func:`snn2hw.ann.apply_linear`).

Matrices are (out_size, in_size), rows and columns in flattened (C, H, W) order, with sorted
indices and no stored zeros.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse as sp
import torch

from .. import ann, ir

CONV = "conv"
MATRIX = "matrix"
KINDS = (CONV, MATRIX)


def probe_blocks(apply: Callable[[torch.Tensor], torch.Tensor], in_shape, block: int
                 ) -> Iterator[tuple[int, torch.Tensor]]:
    """``(start, out)`` for consecutive blocks of one-hot input vectors: ``out`` (rows,
    out_size) is ``apply`` of the basis vectors ``start, start + 1, ...`` (float64)."""
    n_in = int(np.prod(in_shape))
    with torch.no_grad():
        for start in range(0, n_in, block):
            stop = min(n_in, start + block)
            basis = torch.zeros((stop - start, n_in), dtype=torch.float64)
            basis[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
            out = apply(basis.reshape(stop - start, *in_shape))
            yield start, out.reshape(stop - start, -1)


def probe_matrix(apply: Callable[[torch.Tensor], torch.Tensor], in_shape, out_size: int,
                 block: int = 256) -> sp.csr_matrix:
    """The exact float64 matrix (out_size, in_size) of a linear map, from its response to
    one-hot basis vectors, block by block."""
    rows, cols, vals = [], [], []
    for start, out in probe_blocks(apply, in_shape, block):
        nz = torch.nonzero(out, as_tuple=True)
        cols.append((nz[0] + start).numpy())
        rows.append(nz[1].numpy())
        vals.append(out[nz].numpy())
    n_in = int(np.prod(in_shape))
    if not vals:
        return sp.csr_matrix((out_size, n_in), dtype=np.float64)
    mat = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                        shape=(out_size, n_in), dtype=np.float64)
    mat.sort_indices()
    return mat


def apply_chain(ops: list[ir.Node], x: torch.Tensor) -> torch.Tensor:
    """The chain of linear ops applied to a batch, without biases."""
    for op in ops:
        x = ann.apply_linear(op, x, with_bias=False)
    return x


def chain_matrix(ops: list[ir.Node], in_shape, out_shape, block: int = 256) -> sp.csr_matrix:
    """The exact float64 matrix of a chain of linear ops (biases left out)."""
    return probe_matrix(lambda x: apply_chain(ops, x), in_shape, int(np.prod(out_shape)),
                        block)


def _conv_form(ops: list[ir.Node], in_shape) -> dict | None:
    """The conv form's fields for ``[Conv]`` or ``[AvgPool(k, stride k, no pad)] + Conv``
    whose input divides into the pooling windows; None for any other chain."""
    if len(ops) == 1 and isinstance(ops[0], ir.Conv):
        c = ops[0]
        return {"kind": CONV, "out_shape": c.shape,
                "weight": np.asarray(c.weight, dtype=np.float64), "stride": c.stride,
                "padding": c.padding, "dilation": c.dilation, "groups": c.groups}
    if len(ops) == 2 and isinstance(ops[0], ir.AvgPool) and isinstance(ops[1], ir.Conv):
        pool, c = ops
        kh, kw = pool.kernel
        _, h, w = in_shape
        if pool.stride != pool.kernel or any(pool.padding) or h % kh or w % kw:
            return None
        return {"kind": CONV, "out_shape": c.shape,
                "weight": np.asarray(c.weight, dtype=np.float64) / (kh * kw),
                "stride": c.stride, "padding": c.padding, "dilation": c.dilation,
                "groups": c.groups, "pool": (kh, kw)}
    return None


def fold(ops: list[ir.Node], in_shape, out_shape) -> dict:
    """A chain folded into one float synapse: the ``IntSynapse`` fields after source, lag
    and in_shape (``kind``, ``out_shape`` and the conv's fields, or ``csr``)."""
    form = _conv_form(ops, in_shape)
    if form is not None:
        return form
    return {"kind": MATRIX, "out_shape": tuple(out_shape),
            "csr": chain_matrix(ops, in_shape, out_shape)}


def conv_matrix(weight: np.ndarray, in_shape, out_shape, stride=(1, 1),
                padding=(0, 0, 0, 0), dilation=(1, 1), groups: int = 1, pool=(1, 1),
                dtype=np.float64) -> sp.csr_matrix:
    """The exact matrix (out_size, in_size) of a conv (torch layout and semantics:
    cross-correlation, padding (top, left, bottom, right)), optionally after sum-pooling
    ``pool`` (window = stride, the input divisible into windows), by index arithmetic."""
    w = np.asarray(weight)
    c_out, c_in_g, kh, kw = w.shape
    c_in, h_in, w_in = in_shape
    ph, pw = pool
    h, wid = h_in // ph, w_in // pw      # the conv's own (pooled) input size
    _, ho, wo = out_shape
    c_out_g = c_out // groups
    co = np.arange(c_out)[:, None, None]
    oy = np.arange(ho)[None, :, None]
    ox = np.arange(wo)[None, None, :]
    row = np.broadcast_to(co * ho * wo + oy * wo + ox, (c_out, ho, wo))
    rows, cols, vals = [], [], []
    for cil in range(c_in_g):
        ci = (co // c_out_g) * c_in_g + cil
        for ky in range(kh):
            iy = oy * stride[0] - padding[0] + ky * dilation[0]
            for kx in range(kw):
                ix = ox * stride[1] - padding[1] + kx * dilation[1]
                val = np.broadcast_to(w[:, cil, ky, kx][:, None, None], (c_out, ho, wo))
                ok = np.broadcast_to((iy >= 0) & (iy < h) & (ix >= 0) & (ix < wid)
                                     & (val != 0), (c_out, ho, wo))
                for py in range(ph):     # every input element of the pooling window
                    for px in range(pw):
                        col = ci * h_in * w_in + (iy * ph + py) * w_in + ix * pw + px
                        rows.append(row[ok])
                        cols.append(np.broadcast_to(col, (c_out, ho, wo))[ok])
                        vals.append(val[ok])
    shape = (int(c_out * ho * wo), int(c_in * h_in * w_in))
    if not vals:
        return sp.csr_matrix(shape, dtype=dtype)
    mat = sp.csr_matrix((np.concatenate(vals).astype(dtype),
                         (np.concatenate(rows), np.concatenate(cols))), shape=shape)
    mat.sum_duplicates()
    mat.sort_indices()
    return mat
