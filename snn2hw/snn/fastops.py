"""Faster forms of the simulator's synapse ops that give the same numbers, bit for bit.

- Sum pooling over windows of whole spikes (:func:`sum_pool`): strided adds instead of
  ``avg_pool2d`` (about 6x faster on a CPU). On spikes (0/1, or -1/0/+1 at the input) or
  the fixed-point network's integers every window sum is an exact integer in any order, and
  a divisor that is a power of two divides it exactly, so the result equals
  ``avg_pool2d``'s. The float simulator uses it only where a pooling is the first op of a
  synapse from a spiking layer (:func:`exact_pool`); after a weighted op the values are
  real numbers and the order of the sum would matter.

The float simulator keeps the default layout and kernels for its weighted ops: oneDNN's
channels-last kernels sum in another order (measured: other float32 roundings for 32 and
more input channels), which would change its spikes.

Measured on the VGG-16 (width 1/8) with ``benchmarks/simulate.py``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .. import ir

if TYPE_CHECKING:
    from ..quantize.qnet import IntSynapse


def sum_pool(x: torch.Tensor, kernel: tuple[int, int]) -> torch.Tensor:
    """Sum of each ``kernel`` window, stride = kernel, no padding, floor mode, of
    ``x`` (M, C, H, W): the ``avg_pool2d`` windows, as strided adds (rows, then columns)."""
    kh, kw = kernel
    rows, cols = x.shape[-2] // kh, x.shape[-1] // kw
    x = x[..., :rows * kh, :cols * kw]
    total = x[..., 0::kh, :] if kh > 1 else x
    for i in range(1, kh):
        total = total + x[..., i::kh, :]
    out = total[..., 0::kw] if kw > 1 else total
    for j in range(1, kw):
        out = out + total[..., j::kw]
    return out if (kh > 1 or kw > 1) else out.clone()


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def exact_pool(op: ir.Node) -> bool:
    """True if ``op`` is an average pooling that :func:`sum_pool` and one exact division
    compute like ``avg_pool2d`` on whole numbers: stride = kernel, no padding, floor mode,
    a window of a power-of-two number of positions."""
    return (isinstance(op, ir.AvgPool) and tuple(op.stride) == tuple(op.kernel)
            and not any(op.padding) and not op.ceil_mode and not op.divisor_override
            and _power_of_two(op.kernel[0] * op.kernel[1]))


def pool_spikes(op: ir.AvgPool, x: torch.Tensor) -> torch.Tensor:
    """``op`` on whole numbers (see :func:`exact_pool`), equal to ``avg_pool2d``."""
    return sum_pool(x, op.kernel).div_(op.kernel[0] * op.kernel[1])


def integer_synapse(syn: IntSynapse, scale: int = 1) -> Callable[[torch.Tensor], torch.Tensor]:
    """``scale`` times ``syn.apply`` of a fixed-point synapse, the same integers faster:
    ``scale`` (a power of two, Lava's ``a << shift``) folded into a convolution's weights,
    its sum pooling by :func:`sum_pool`, the padding inside the convolution. Exact where
    ``syn.apply`` is: its partial sums are integers below 2**24, so times a power of two
    they are multiples of it with as few significant bits."""
    if not _power_of_two(scale):
        raise ValueError(f"scale {scale} is not a power of two")
    if not syn.is_conv:
        return _matrix_synapse(syn, scale)
    top, left, bottom, right = syn.padding
    pad = (top, left) if (top, left) == (bottom, right) else 0
    weights: dict = {}

    def apply(x: torch.Tensor) -> torch.Tensor:
        key = (x.dtype, x.device)
        if key not in weights:
            weights[key] = torch.as_tensor(syn.weight * scale).to(dtype=x.dtype,
                                                                  device=x.device)
        if syn.pool != (1, 1):
            x = sum_pool(x, syn.pool)
        if pad == 0:
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, weights[key], None, syn.stride, pad, syn.dilation, syn.groups)

    return apply


def _matrix_synapse(syn: IntSynapse, scale: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """A matrix synapse as ``F.linear`` with ``scale`` folded into its dense weights (the
    float simulator's own product) where ``syn.apply`` multiplies densely, else
    ``syn.apply`` times ``scale``."""
    from ..quantize.qnet import DENSE_LIMIT

    if syn.out_size * syn.in_size > DENSE_LIMIT:
        return syn.apply if scale == 1 else lambda x: syn.apply(x).mul_(scale)
    weights: dict = {}

    def apply(x: torch.Tensor) -> torch.Tensor:
        key = (x.dtype, x.device)
        if key not in weights:
            weights[key] = torch.as_tensor(syn.csr.toarray() * scale).to(dtype=x.dtype,
                                                                        device=x.device)
        out = F.linear(x.reshape(x.shape[0], -1), weights[key])
        return out.reshape(x.shape[0], *syn.out_shape)

    return apply
