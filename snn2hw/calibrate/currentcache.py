"""One computation of each layer's input current for Spike-Norm.

Spike-Norm needs a layer's currents twice: first for their largest value (the threshold),
then to integrate them with that threshold. The first pass keeps the blocks it computes,
as long as they fit in ``CACHE_BYTES`` (one layer's cache at a time); the second pass takes
each kept block back instead of computing it again, and computes only the blocks that did
not fit. A kept block is the very tensor the second pass would have computed (same inputs,
same batch, same kernels), so the thresholds and spikes are those of two computations, bit
for bit; only the time and the memory change.

On a CPU the kept blocks are copied into one buffer of ``CACHE_BYTES``, allocated once per
calibration and reused by every layer: fresh memory costs a page fault per 4 KiB on its
first write (about 0.7 s per GiB, measured), and the kept currents of the digits VGG-16 at
T = 256 and 256 samples add up to 6.7 GiB over its layers. A GPU keeps the blocks as they
are (its allocator reuses its memory).

A cache belongs to the prepared layer whose currents it holds: a layer whose weights
changed between the passes (per-channel factors folded in after its maximum) gets a new
prepared layer, finds no cache and computes its currents again.
"""
from __future__ import annotations

import torch

CACHE_BYTES = 1 << 30  # currents kept between Spike-Norm's two passes over one layer


class CurrentCache:
    """Blocks of one prepared layer's currents, keyed by block, within a byte budget."""

    ALIGN = 64  # bytes: every kept block starts on a cache line

    def __init__(self, budget: int | None = None) -> None:
        self.budget = CACHE_BYTES if budget is None else budget
        self._owner: object | None = None
        self._blocks: dict[tuple[int, int, int, int], torch.Tensor] = {}
        self._bytes = 0
        self._arena: torch.Tensor | None = None  # CPU: the bytes every layer reuses
        self.hits = self.misses = 0   # blocks taken back / computed again (for benchmarks)

    def start(self, owner: object) -> None:
        """Forget every kept block; keep from now on the currents of ``owner``."""
        self.clear()
        self._owner = owner

    def keep(self, owner: object, block: tuple[int, int, int, int],
             current: torch.Tensor) -> None:
        """Keep ``current`` (``owner``'s, of ``block``) if it fits in what is left."""
        size = current.numel() * current.element_size()
        if owner is not self._owner or self._bytes + size > self.budget:
            return
        if current.device.type == "cpu":
            if self._arena is None:
                self._arena = torch.empty(self.budget, dtype=torch.uint8)
            slot = self._arena[self._bytes:self._bytes + size].view(current.dtype)
            current = slot.view(current.shape).copy_(current)
        self._blocks[block] = current
        self._bytes += -(-size // self.ALIGN) * self.ALIGN

    def take(self, owner: object, block: tuple[int, int, int, int]) -> torch.Tensor | None:
        """The kept current of ``block`` (given up by the cache: the caller may change it
        in place), or None where it was not kept or ``owner`` is another layer."""
        current = self._blocks.pop(block, None) if owner is self._owner else None
        if current is None:
            self.misses += 1
            return None
        self.hits += 1
        return current  # its bytes stay taken until the next layer starts

    def clear(self) -> None:
        """Forget every kept block (the CPU buffer stays, for the next layer)."""
        self._owner, self._blocks, self._bytes = None, {}, 0
