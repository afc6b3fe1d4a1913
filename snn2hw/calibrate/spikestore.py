"""Spike trains kept between Spike-Norm's layers, and the block sizes that bound its memory.

Spike-Norm balances one layer at a time from the stored spikes of the layers before it.
Every train is kept on the CPU bit-packed along the neurons (one bit per neuron-step); the
input's signed spikes are kept as their 0/1 magnitude plus each pixel's sign, which is
fixed for a sample (a pixel's spikes carry the sign of its value,
:meth:`snn2hw.snn.encoders.Encoder.signs`). An analog input (direct coding) is the same at
every step: one step of its values is kept.
A layer's current is computed block by block, ``(steps, batch, neurons)`` at a time, so
that no float tensor exceeds ``BLOCK_BYTES`` (one step of one batch where that is larger;
``CPU_BLOCK_BYTES`` on a CPU).
"""
from __future__ import annotations

import numpy as np
import torch

from ..snn.encoders import Encoder

BATCH_BYTES = 1 << 30   # a (T, batch, neurons) float32 tensor: caps the samples per batch
BLOCK_BYTES = 64 << 20  # a (steps, batch, neurons) float32 block: caps the steps per block
# On a CPU a block is kept near the size of the caches: a 64 MiB block made Spike-Norm's
# convolutions and IF loop memory-bound (about 2x slower on the digits VGG-16,
# benchmarks/spike_norm_time.py); a GPU takes fewer, larger blocks.
CPU_BLOCK_BYTES = 1 << 20


def block_bytes(device) -> int:
    """The cap on a block's float32 bytes on ``device`` (``BLOCK_BYTES``, smaller on a CPU)."""
    if torch.device(device).type == "cpu":
        return min(BLOCK_BYTES, CPU_BLOCK_BYTES)
    return BLOCK_BYTES


def layer_batch(batch_size: int, timesteps: int, neurons: int) -> int:
    """Samples per batch for a layer: ``batch_size``, fewer where one (T, batch, neurons)
    float32 tensor would exceed ``BATCH_BYTES`` (full-size networks)."""
    return max(1, min(batch_size, BATCH_BYTES // max(1, 4 * timesteps * neurons)))


def block_steps(timesteps: int, batch: int, neurons: int, cap: int | None = None) -> int:
    """Time steps per block: a (steps, batch, neurons) float32 block stays within ``cap``
    bytes (default ``BLOCK_BYTES``), or is one step."""
    cap = BLOCK_BYTES if cap is None else cap
    return max(1, min(timesteps, cap // max(1, 4 * batch * neurons)))


class SpikeStore:
    """Spike trains (T, N, *shape), bit-packed along the neurons: an eighth of a byte per
    neuron-step, plus one sign byte per input pixel and sample."""

    def __init__(self) -> None:
        self._trains: dict[str, tuple[np.ndarray, tuple[int, ...], np.ndarray | None]] = {}
        # an analog input (a ``constant`` encoder): (N, size) float32 values, every step
        self._constant: dict[str, tuple[np.ndarray, tuple[int, ...], int]] = {}

    def names(self) -> list[str]:
        return list(self._trains) + list(self._constant)

    def new_binary(self, name: str, timesteps: int, n: int, shape: tuple[int, ...],
                   sign: np.ndarray | None = None) -> None:
        size = int(np.prod(shape))
        self._trains[name] = (np.zeros((timesteps, n, (size + 7) // 8), np.uint8),
                              tuple(shape), sign)

    def put_input(self, name: str, encoder: Encoder, timesteps: int,
                  batch: int) -> None:
        """Draw the input spikes of every sample of ``encoder``, ``batch`` samples at a
        time, and keep their magnitude packed and their sign per pixel; of an analog
        input (``encoder.constant``), the values of one step, which every step repeats."""
        n, shape = len(encoder), tuple(encoder.shape)
        if getattr(encoder, "constant", False):
            values = np.empty((n, int(np.prod(shape))), dtype=np.float32)
            for start in range(0, n, batch):
                stop = min(n, start + batch)
                values[start:stop] = encoder.chunk(start, stop, 0, 1).reshape(stop - start, -1)
            self._constant[name] = (values, shape, timesteps)
            return
        sign = np.empty((n, int(np.prod(shape))), dtype=np.int8)
        self.new_binary(name, timesteps, n, shape, sign)
        for start in range(0, n, batch):
            stop = min(n, start + batch)
            spikes = np.moveaxis(encoder.full(start, stop, timesteps), 1, 0)
            sign[start:stop] = encoder.signs(start, stop).reshape(stop - start, -1)
            self.write(name, start, 0, torch.from_numpy(spikes != 0))

    def write(self, name: str, start: int, t0: int, spikes: torch.Tensor) -> None:
        """Spikes (steps, batch, *shape) of samples from ``start``, steps from ``t0``."""
        packed = self._trains[name][0]
        steps, batch = spikes.shape[:2]
        bits = spikes.to(torch.uint8).cpu().numpy().reshape(steps, batch, -1)
        packed[t0:t0 + steps, start:start + batch] = np.packbits(bits, axis=-1)

    def window(self, name: str, start: int, stop: int, t0: int, t1: int, dev,
               dtype) -> torch.Tensor:
        """Spikes of samples [start, stop) at steps [t0, t1) as (t1 - t0, batch, *shape);
        steps before 0 (a delayed synapse's first steps) are zeros."""
        if name in self._constant:
            return self._constant_window(name, start, stop, t0, t1, dev, dtype)
        data, shape, sign = self._trains[name]
        size = int(np.prod(shape))
        out = torch.zeros((t1 - t0, stop - start, size), dtype=dtype, device=dev)
        first = max(t0, 0)
        if first < t1:
            bits = np.unpackbits(data[first:t1, start:stop], axis=-1, count=size)
            part = out[first - t0:]
            part.copy_(torch.from_numpy(bits))
            if sign is not None:
                part.mul_(torch.from_numpy(sign[start:stop]).to(dev, dtype))
        return out.reshape(t1 - t0, stop - start, *shape)

    def _constant_window(self, name: str, start: int, stop: int, t0: int, t1: int, dev,
                         dtype) -> torch.Tensor:
        values, shape, timesteps = self._constant[name]
        out = torch.zeros((t1 - t0, stop - start, values.shape[1]), dtype=dtype, device=dev)
        first, last = max(t0, 0), min(t1, timesteps)
        if first < last:
            out[first - t0:last - t0] = torch.from_numpy(values[start:stop]).to(dev, dtype)
        return out.reshape(t1 - t0, stop - start, *shape)

    def drop(self, name: str) -> None:
        self._trains.pop(name, None)
        self._constant.pop(name, None)
