"""The quantised (integer) network that a fixed-point backend runs.

All quantities are integers in *weight units*; the hardware view of a layer is:

    a[t]  = sum over synapses of  W_int @ s_source[t - lag]      (exact integer sums)
    u[t]  = wrap24(a[t] << 6)                                    (du = 4095: no current memory)
            (Lava's wrap: 2**24 subtracted or added once, into (-2**23, 2**23]; see fixed.py)
    v[t]  = clip(v[t-1] + u[t] + (bias_mant << bias_exp), +-(2**23 - 1))   (dv = 0: no leak)
    s[t]  = v[t] > (threshold << 6);   v[t] = 0 where s[t]        (reset="zero")
                                   or v[t] -= threshold << 6      (reset="subtract")
            (the membrane read-out's output layer always subtracts: quantize/readout.py)

with the loihi_sim profile's numbers (24 = ``state_bits``, 6 = ``current_shift`` and
``threshold_shift``; another profile's are stored in the network), which is Lava's
bit-accurate LIF (``fixed_pt``) with ``du=4095, dv=0, vth=threshold``. A
layer ``depth`` hops from the input is idle (v = 0, no spikes) for 0-based steps t < depth.
The input spike train (signed, -1/0/+1) is layer "input".

Each synapse is a linear map from the source's flattened (C, H, W) spikes to the layer's
flattened neurons, stored either as a convolution (torch layout, optionally preceded by
sum-pooling: average pooling folded into the next conv, the fastest form for the torch
reference) or as a sparse matrix; :meth:`IntSynapse.matrix` gives the matrix form of
either, which is what the Lava backend connects.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from ..hardware.profiles import default_fixed
from ..snn.options import Conversion
from . import chain

if TYPE_CHECKING:  # torch is imported lazily (see IntSynapse.apply)
    import torch


@dataclass
class IntSynapse:
    source: str
    lag: int                       # 1 + delay: one hop plus alignment delay
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kind: str                      # "conv" or "matrix" (chain.KINDS)
    weight: np.ndarray | None = None            # conv: int (C_out, C_in/groups, kH, kW)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    pool: tuple[int, int] = (1, 1)              # conv: sum-pooling (k, stride k) before it
    csr: sp.csr_matrix | None = None            # matrix: int (out_size, in_size)

    @property
    def in_size(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def out_size(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def is_conv(self) -> bool:
        """Stored as a convolution (``weight`` and geometry), else as a matrix (``csr``)."""
        return self.kind == chain.CONV

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """(M, *in_shape) integer-valued -> (M, *out_shape), exact: quantisation bounds every
        partial sum by 2**17 weight units, far inside float32's exact integer range."""
        import torch  # imported lazily: the Lava worker unpickles networks without torch
        import torch.nn.functional as F

        if self.is_conv:
            w = self._cached("conv", lambda: torch.as_tensor(self.weight), x)
            if self.pool != (1, 1):
                x = F.avg_pool2d(x, self.pool, self.pool, divisor_override=1)
            top, left, bottom, right = self.padding
            x = F.pad(x, (left, right, top, bottom))
            return F.conv2d(x, w, None, self.stride, 0, self.dilation, self.groups)
        m = x.reshape(x.shape[0], -1)
        if self.out_size * self.in_size <= DENSE_LIMIT:
            w = self._cached("dense", lambda: torch.as_tensor(self.csr.toarray()), x)
            return (m @ w.T).reshape(x.shape[0], *self.out_shape)
        w = self._cached("csr", lambda: _torch_csr(self.csr), x)
        return (w @ m.T).T.reshape(x.shape[0], *self.out_shape)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_tensors", None)  # device caches are rebuilt on demand
        return state

    def _cached(self, key: str, make, like: torch.Tensor) -> torch.Tensor:
        cache = self.__dict__.setdefault("_tensors", {})
        full = (key, like.dtype, str(like.device))
        if full not in cache:
            cache[full] = make().to(dtype=like.dtype, device=like.device)
        return cache[full]

    def matrix(self, dtype=np.int32) -> sp.csr_matrix:
        """The synapse as a CSR matrix (out_size, in_size) of ``dtype``: exact integers by
        default; ``np.float64`` keeps the weights of a float network unrounded."""
        if self.is_conv:
            return chain.conv_matrix(self.weight, self.in_shape, self.out_shape, self.stride,
                                     self.padding, self.dilation, self.groups, self.pool,
                                     dtype)
        return sp.csr_matrix(self.csr, dtype=dtype)

    def values(self) -> np.ndarray:
        """The stored weights, flat (a conv's kernel, a matrix's non-zero entries)."""
        return self.weight.reshape(-1) if self.is_conv else self.csr.data

    def with_values(self, values: np.ndarray, prune: bool = False) -> IntSynapse:
        """A copy with the stored weights replaced by ``values`` (same order and count as
        :meth:`values`); ``prune`` drops a matrix's entries that became zero."""
        values = np.asarray(values)
        if self.is_conv:
            return replace(self, weight=values.reshape(self.weight.shape))
        csr = sp.csr_matrix((values, self.csr.indices.copy(), self.csr.indptr.copy()),
                            shape=self.csr.shape)
        if prune:
            csr.eliminate_zeros()
        return replace(self, csr=csr)


DENSE_LIMIT = 1 << 24  # matrices up to this many entries are applied as dense products


def _torch_csr(csr: sp.csr_matrix) -> torch.Tensor:
    import torch

    with warnings.catch_warnings():  # torch flags sparse CSR as beta; the use here is plain
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.as_tensor(csr.indptr, dtype=torch.int64),
                                       torch.as_tensor(csr.indices, dtype=torch.int64),
                                       torch.as_tensor(csr.data, dtype=torch.float64),
                                       size=csr.shape)


@dataclass
class QuantLayer:
    name: str
    shape: tuple[int, ...]
    depth: int
    synapses: list[IntSynapse]
    threshold: int                 # vth in weight units (Lava applies << 6)
    bias_mant: np.ndarray | None   # int32 per neuron (flattened) or None
    bias_exp: int = field(default_factory=lambda: default_fixed().current_shift)
    is_output: bool = False
    scale: float = 1.0             # weight units per normalised unit (= float threshold)
    report: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def bias_v(self) -> np.ndarray | None:
        """Bias added to v each step, in v units (mantissa << exponent)."""
        if self.bias_mant is None:
            return None
        return self.bias_mant.astype(np.int64) << self.bias_exp


@dataclass
class QuantizedNetwork:
    input: str
    input_shape: tuple[int, ...]
    input_scale: float
    layers: list[QuantLayer]
    profile: str
    # Set from the profile by quantize() and load_export(); a hand-built network gets the
    # default fixed-point profile's (profiles.DEFAULT_FIXED_PROFILE).
    state_bits: int = field(default_factory=lambda: default_fixed().state_bits)
    threshold_shift: int = field(default_factory=lambda: default_fixed().threshold_shift)
    current_shift: int = field(default_factory=lambda: default_fixed().current_shift)
    reset: str = "zero"            # "zero" or "subtract" (see the module docstring)
    # The conversion options it was made with (input coding, v_init, read-out, window) and
    # the integer a full-scale input becomes (1: spikes of +-1; direct coding: its levels;
    # 0: the real values of an analog input on a float network).
    conversion: Conversion = field(default_factory=Conversion)
    input_levels: int = 1

    @property
    def output(self) -> QuantLayer:
        return next(layer for layer in self.layers if layer.is_output)

    @property
    def depth(self) -> int:
        return self.output.depth
