"""How the simulator cuts a run into batches and time chunks, and the spike buffers that
carry the last ``max_lag`` steps of one chunk into the next."""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from .simulate import Prepared


def chunks(total: int, size: int) -> Iterable[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(total, start + size)


CPU_CHUNK_BYTES = 4e6  # widest layer's current per chunk on a CPU: stays cache-friendly


def auto_time_chunk(prep: Prepared, batch: int, timesteps: int, budget_bytes: float) -> int:
    """Steps per chunk. On a GPU: as many as the memory budget allows (fewer, larger
    kernels). On a CPU: enough that (steps x batch) images make one efficient product, but
    the widest layer's chunk stays near ``CPU_CHUNK_BYTES``; larger chunks spill out of
    the caches and the IF loop becomes memory-bound (measured: benchmarks/simulate.py)."""
    sizes = [int(np.prod(prep.input_shape))] + [int(np.prod(la.shape)) for la in prep.layers]
    item = torch.tensor([], dtype=prep.dtype).element_size()
    per_step = batch * (sum(sizes) + 2 * max(sizes)) * item
    steps = budget_bytes // max(per_step, 1)
    if prep.device.type == "cpu":
        steps = min(steps, CPU_CHUNK_BYTES // max(batch * max(sizes) * item, 1))
    return int(max(1, min(timesteps, steps)))


class Buffers:
    """Per spike train, ``lag + chunk`` steps: history in front, the current chunk after."""

    def __init__(self, prep: Prepared, batch: int, chunk: int) -> None:
        self.lag = prep.max_lag
        self.buf = {name: torch.zeros((self.lag + chunk, batch, *prep.shape_of(name)),
                                      dtype=prep.dtype, device=prep.device)
                    for name in [prep.input] + [la.name for la in prep.layers]}

    def window(self, name: str, steps: int, lag: int = 0) -> torch.Tensor:
        return self.buf[name][self.lag - lag:self.lag - lag + steps]

    def advance(self, steps: int) -> None:
        """The last ``lag`` steps of the chunk become the next chunk's history."""
        for b in self.buf.values():
            history = b[steps:steps + self.lag]
            b[:self.lag] = history if steps >= self.lag else history.clone()  # no overlap
