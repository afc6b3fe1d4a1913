"""Rate coding of the input (Sengupta et al. 2019, section 4.1).

Each pixel emits a Bernoulli ("Poisson") spike train: at every step it spikes with
probability p = min(|x| / input_scale, 1), and the spike carries the sign of x, so
mean-subtracted (negative) pixels drive the first layer with negative spikes.

Spikes of sample ``i`` come from ``numpy.random.default_rng([seed, stream, i])`` (stream 0
for calibration, 1 for evaluation, so the two never share noise), drawn one time
step after another; they do not depend on batch size or time chunking, and the same seed
gives the same spikes on every device (the Lava backend gets the identical arrays).

``x`` may be an array or lazy samples (:class:`snn2hw.data.samples.LazySamples`): the encoder
reads the samples of one batch when it first draws their spikes and keeps only that batch.
"""
from __future__ import annotations

import numpy as np

from ...data.samples import LazySamples
from .registry import EncoderSettings, register


class PoissonEncoder:
    """The signed rate code above; one sample's input has ``shape``."""

    constant = False

    def __init__(self, x: np.ndarray, input_scale: float, seed: int, stream: int = 0,
                 indices: np.ndarray | None = None) -> None:
        if not np.isfinite(input_scale) or input_scale <= 0:
            raise ValueError(f"input_scale must be positive, got {input_scale}")
        self.x = x if isinstance(x, LazySamples) else np.asarray(x, dtype=np.float32)
        self.shape = tuple(self.x.shape[1:])
        self.input_scale = np.float32(input_scale)
        self._batch: tuple[int, int, np.ndarray, np.ndarray] | None = None
        self.seed = int(seed)
        self.stream = int(stream)
        self.indices = np.arange(len(x)) if indices is None else np.asarray(indices)
        self._rngs: dict[int, np.random.Generator] = {}
        self._next_t: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.x)

    def _prob_sign(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Spike probability and sign of samples [start, stop), read once per batch."""
        if self._batch is None or self._batch[:2] != (start, stop):
            x = np.asarray(self.x[start:stop], dtype=np.float32)
            prob = np.minimum(np.abs(x) / self.input_scale, 1.0).astype(np.float32)
            self._batch = (start, stop, prob, np.sign(x).astype(np.int8))
        return self._batch[2], self._batch[3]

    def signs(self, start: int, stop: int) -> np.ndarray:
        """The sign (-1, 0, +1, int8) of every pixel of samples [start, stop): each spike of
        a pixel carries it."""
        return self._prob_sign(start, stop)[1]

    def reset(self) -> None:
        self._rngs.clear()
        self._next_t.clear()

    def chunk(self, start: int, stop: int, t0: int, t1: int) -> np.ndarray:
        """Spikes of samples [start, stop) for steps [t0, t1): int8 (B, t1-t0, *shape).

        Steps must be requested in order for each sample (t0 continues where the last
        request stopped); a request from t0 = 0 restarts the sample's stream."""
        out = np.empty((stop - start, t1 - t0, *self.x.shape[1:]), dtype=np.int8)
        prob, sign = self._prob_sign(start, stop)
        for row, i in enumerate(range(start, stop)):
            if t0 == 0 or i not in self._rngs:
                if t0 != 0:
                    raise ValueError("spike trains must be drawn from step 0 on")
                self._rngs[i] = np.random.default_rng(
                    [self.seed, self.stream, int(self.indices[i])])
            elif self._next_t[i] != t0:
                raise ValueError(f"sample {i}: steps requested out of order")
            u = self._rngs[i].random((t1 - t0, *self.x.shape[1:]), dtype=np.float32)
            out[row] = (u < prob[row]) * sign[row]
            self._next_t[i] = t1
        return out

    def full(self, start: int, stop: int, timesteps: int) -> np.ndarray:
        """The whole window for samples [start, stop)."""
        return self.chunk(start, stop, 0, timesteps)


@register("poisson")
def poisson(x, settings: EncoderSettings) -> PoissonEncoder:
    return PoissonEncoder(x, settings.input_scale, settings.seed, settings.stream,
                          settings.indices)
