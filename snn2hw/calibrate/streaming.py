"""Statistics over streams of tensors in bounded memory: calibration never keeps a copy of
the activations or currents it summarises.

- :class:`OrderStatistics`: exact order statistics (and so exact percentiles, equal to
  ``numpy.percentile`` bit for bit) of a float32 stream seen twice. Every float32 maps to a
  32-bit key in the same order; the first pass counts the keys' upper 16 bits, the second
  counts the lower 16 bits inside the few upper bins that hold the wanted ranks. Memory:
  two 65,536-bin count arrays, whatever the stream's length.
- :class:`CurrentHistogram`: one pass, positive values on fixed log2 bins, quantiles to
  1.1 % (Spike-Norm's percentile thresholds).

Both results are independent of how the stream is cut into tensors (counts are exact).
"""
from __future__ import annotations

import math

import numpy as np
import torch

BINS = 1 << 16


def _keys(values: torch.Tensor) -> torch.Tensor:
    """float32 -> int64 keys in [0, 2^32) with the same order (IEEE-754 sign-magnitude)."""
    bits = values.detach().to(torch.float32).reshape(-1).cpu().view(torch.int32).to(torch.int64)
    negative = bits < 0
    key = torch.where(negative, -(bits & 0x7FFFFFFF) - 1, bits)  # -0.0 sorts just below +0.0
    return key + (1 << 31)


def _value(key: int) -> float:
    bits = np.array([key - (1 << 31)], dtype=np.int64)
    if bits[0] < 0:
        bits = -(bits + 1) | np.int64(0x80000000)
    return float(bits.astype(np.uint32).view(np.float32)[0])


class OrderStatistics:
    """Exact k-th smallest values of a float32 stream: feed every chunk to :meth:`count`,
    call :meth:`want` with the ranks, feed the same stream again to :meth:`refine`, then
    read :meth:`value`. NaN is not expected (the importer refuses it)."""

    CHUNK = 1 << 22  # elements per pass: bounds the int64 temporaries to ~100 MB

    def __init__(self) -> None:
        self.high = torch.zeros(BINS, dtype=torch.int64)
        self.low: dict[int, torch.Tensor] = {}
        self._rank_in_bin: dict[int, tuple[int, int]] = {}

    @property
    def total(self) -> int:
        return int(self.high.sum())

    def _parts(self, values: torch.Tensor):
        flat = values.reshape(-1)
        for start in range(0, flat.numel(), self.CHUNK):
            yield _keys(flat[start:start + self.CHUNK])

    def count(self, values: torch.Tensor) -> None:
        for key in self._parts(values):
            self.high += torch.bincount(key >> 16, minlength=BINS)

    def want(self, ranks: list[int]) -> None:
        """Ranks (0-based, in [0, total)) whose values :meth:`value` will return."""
        cum = torch.cumsum(self.high, 0)
        for rank in ranks:
            if not 0 <= rank < self.total:
                raise ValueError(f"rank {rank} outside [0, {self.total})")
            upper = int(torch.searchsorted(cum, torch.tensor(rank), right=True))
            below = int(cum[upper - 1]) if upper else 0
            self._rank_in_bin[rank] = (upper, rank - below)
            self.low.setdefault(upper, torch.zeros(BINS, dtype=torch.int64))

    def refine(self, values: torch.Tensor) -> None:
        for key in self._parts(values):
            upper = key >> 16
            for bin_, counts in self.low.items():
                inside = key[upper == bin_] & 0xFFFF
                if inside.numel():
                    counts += torch.bincount(inside, minlength=BINS)

    def value(self, rank: int) -> float:
        upper, within = self._rank_in_bin[rank]
        cum = torch.cumsum(self.low[upper], 0)
        lower = int(torch.searchsorted(cum, torch.tensor(within), right=True))
        return _value((upper << 16) | lower)


def linear_percentile_ranks(n: int, q: float) -> tuple[int, int, float]:
    """numpy.percentile's ``linear`` method on n values: the two ranks it reads and the
    interpolation weight, computed as numpy 1.26 does (``numpy/lib/function_base.py``,
    ``_quantile``/``_get_indexes``/``_get_gamma``)."""
    virtual = (n - 1) * (q / 100)
    previous = math.floor(virtual)
    nxt = previous + 1
    if virtual >= n - 1:
        previous = nxt = -1
    elif virtual < 0:
        previous = nxt = 0
    gamma = virtual - previous
    return previous % n, nxt % n, gamma


def lerp_like_numpy(a: float, b: float, gamma: float) -> float:
    """numpy's ``_lerp`` on two float32 order statistics: the difference in float32, the
    interpolation in float64, from the nearer end."""
    diff = float(np.float32(b) - np.float32(a))
    if gamma >= 0.5:
        return float(b) - diff * (1 - gamma)
    return float(a) + diff * gamma


def higher_percentile_rank(n: int, q: float) -> int:
    """numpy.percentile's ``higher`` method: the rank it reads among n values."""
    return int(np.ceil((n - 1) * (q / 100)))


class CurrentHistogram:
    """Streaming histogram of positive currents on fixed log2 bins (64 per octave, 2^-64 to
    2^64): quantiles to 1.1 % relative resolution, independent of batch order."""

    PER_OCTAVE, LOW, HIGH = 64, -64, 64

    def __init__(self) -> None:
        self.bins = (self.HIGH - self.LOW) * self.PER_OCTAVE
        self.counts = torch.zeros(self.bins, dtype=torch.float64)

    CHUNK = 1 << 22  # elements per pass: bounds the float64/int64 temporaries to ~32 MB

    def add(self, current: torch.Tensor) -> None:
        flat = current.reshape(-1)
        for start in range(0, flat.numel(), self.CHUNK):
            part = flat[start:start + self.CHUNK]
            pos = part[part > 0].double()
            if pos.numel() == 0:
                continue
            index = ((torch.log2(pos) - self.LOW) * self.PER_OCTAVE).floor_()
            index = index.clamp_(0, self.bins - 1).long()
            self.counts += torch.bincount(index, minlength=self.bins).double().cpu()

    def quantile(self, q: float) -> float:
        """Upper edge of the bin holding the ``q`` quantile (a slight over-estimate)."""
        total = float(self.counts.sum())
        if total == 0:
            return 0.0
        cum = torch.cumsum(self.counts, 0)
        index = int(torch.searchsorted(cum, torch.tensor(q * total, dtype=torch.float64)))
        return float(2.0 ** (self.LOW + (min(index, self.bins - 1) + 1) / self.PER_OCTAVE))


class ChannelHistogram:
    """:class:`CurrentHistogram` per channel: positive values of tensors whose axis ``axis``
    is the channel, on the same log2 bins; quantiles per channel to the same 1.1 %."""

    def __init__(self, channels: int, axis: int) -> None:
        self.channels, self.axis = channels, axis
        self.bins = (CurrentHistogram.HIGH - CurrentHistogram.LOW) * CurrentHistogram.PER_OCTAVE
        self.counts = torch.zeros(channels * self.bins, dtype=torch.float64)

    def add(self, values: torch.Tensor) -> None:
        per_channel = values.movedim(self.axis, 0).reshape(self.channels, -1)
        step = max(1, CurrentHistogram.CHUNK // max(per_channel.shape[1], 1))
        for start in range(0, self.channels, step):
            part = per_channel[start:start + step]
            chan = torch.arange(start, start + len(part), device=part.device)[:, None]
            keep = part > 0
            if not bool(keep.any()):
                continue
            pos = part[keep].double()
            index = ((torch.log2(pos) - CurrentHistogram.LOW) * CurrentHistogram.PER_OCTAVE)
            index = index.floor_().clamp_(0, self.bins - 1).long()
            flat = chan.expand_as(part)[keep] * self.bins + index
            self.counts += torch.bincount(flat, minlength=self.counts.numel()).double().cpu()

    def quantiles(self, q: float) -> np.ndarray:
        """Per channel: the upper edge of the bin holding the ``q`` quantile of its positive
        values (0 for a channel without one)."""
        counts = self.counts.reshape(self.channels, self.bins)
        total = counts.sum(dim=1, keepdim=True)
        cum = torch.cumsum(counts, 1)
        index = (cum < q * total).sum(dim=1).clamp_(max=self.bins - 1)
        edge = 2.0 ** (CurrentHistogram.LOW + (index.double() + 1) / CurrentHistogram.PER_OCTAVE)
        return torch.where(total[:, 0] > 0, edge, torch.zeros_like(edge)).numpy()
