"""Direct (analog) input coding: the first layer receives the sample's value as a current
at every step of the window, instead of spikes.

The value of pixel x is ``v = clip(x / input_scale, -1, 1)``: one unit of input stands for
``input_scale``, as one Poisson spike does (:mod:`.poisson`, whose mean is the same v). With
``levels = L`` (a quantised network) it is the integer ``round(v * L)`` (half to even) in
[-L, L], and one unit stands for ``input_scale / L``; that integer is what the fixed-point
simulator adds and what the Lava backend sends as a graded spike every step. Without
``levels`` (the float simulator, calibration) v itself is used.

The input is the same at every step and draws no random numbers: ``seed`` and ``stream``
are ignored.
"""
from __future__ import annotations

import numpy as np

from ...data.samples import LazySamples
from .registry import EncoderSettings, register

LEVELS = 127   # a quantised network's full-scale input: 8-bit signed values (+-127)


@register("direct")
class DirectEncoder:
    constant = True  # the same values at every step (Spike-Norm stores one step)

    def __init__(self, x, settings: EncoderSettings) -> None:
        if not np.isfinite(settings.input_scale) or settings.input_scale <= 0:
            raise ValueError(f"input_scale must be positive, got {settings.input_scale}")
        if settings.levels is not None and settings.levels < 1:
            raise ValueError(f"levels must be at least 1, got {settings.levels}")
        self.x = x if isinstance(x, LazySamples) else np.asarray(x, dtype=np.float32)
        self.shape = tuple(self.x.shape[1:])
        self.input_scale = np.float32(settings.input_scale)
        self.levels = settings.levels
        self._batch: tuple[int, int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.x)

    def values(self, start: int, stop: int) -> np.ndarray:
        """The input of samples [start, stop) at every step: (B, *shape) float32."""
        if self._batch is None or self._batch[:2] != (start, stop):
            x = np.asarray(self.x[start:stop], dtype=np.float32)
            v = np.clip(x / self.input_scale, -1.0, 1.0)
            if self.levels is not None:
                v = np.rint(v * np.float32(self.levels))
            self._batch = (start, stop, v.astype(np.float32))
        return self._batch[2]

    def signs(self, start: int, stop: int) -> np.ndarray:
        return np.sign(self.values(start, stop)).astype(np.int8)

    def reset(self) -> None:
        pass

    def chunk(self, start: int, stop: int, t0: int, t1: int) -> np.ndarray:
        """(B, t1 - t0, *shape) float32: the values at every step."""
        v = self.values(start, stop)
        return np.broadcast_to(v[:, None], (len(v), t1 - t0, *self.shape)).copy()

    def full(self, start: int, stop: int, timesteps: int) -> np.ndarray:
        return self.chunk(start, stop, 0, timesteps)
