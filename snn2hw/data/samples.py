"""Samples read on demand: a data set that is never loaded into memory as a whole.

:class:`LazySamples` looks like a read-only float32 array of shape (N, *sample_shape) to
the code that consumes data (the encoder, the ANN, :func:`snn2hw.data.take`): ``len``,
``shape``, ``ndim``, ``dtype``; slicing (``x[a:b]``, ``x[indices]``) gives another lazy
view without reading anything; ``numpy.asarray(view)`` reads and preprocesses exactly the
samples of the view. Consumers read batch by batch, so the memory held for the data is one
batch of decoded samples (see README, "Data"), whatever N is.

The samples come from a ``reader(indices) -> float32 array`` over the source's own sample
indices (image files of a folder, rows of a memory-mapped ``.npz`` member), and are
preprocessed (``(x - mean) / std``) after reading.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .sets import Preprocess

Reader = Callable[[np.ndarray], np.ndarray]


class LazySamples:
    """A lazy (N, *sample_shape) float32 array; see the module docstring."""

    dtype = np.dtype(np.float32)

    def __init__(self, reader: Reader, count: int, sample_shape: tuple[int, ...],
                 preprocess: "Preprocess | None" = None,
                 index: np.ndarray | None = None) -> None:
        self.reader = reader
        self.sample_shape = tuple(int(d) for d in sample_shape)
        self.preprocess = preprocess
        self.index = np.arange(count, dtype=np.int64) if index is None else index

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.sample_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.sample_shape)

    def with_preprocess(self, preprocess: "Preprocess") -> "LazySamples":
        return LazySamples(self.reader, 0, self.sample_shape, preprocess, self.index)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return np.asarray(self[[int(key)]])[0]
        if isinstance(key, slice):
            return LazySamples(self.reader, 0, self.sample_shape, self.preprocess,
                               self.index[key])
        key = np.asarray(key)
        if key.dtype == bool or not np.issubdtype(key.dtype, np.integer) or key.ndim != 1:
            raise TypeError("lazy samples take an int, a slice or a 1-D integer index array")
        return LazySamples(self.reader, 0, self.sample_shape, self.preprocess, self.index[key])

    def read(self) -> np.ndarray:
        """Read, decode and preprocess every sample of this view."""
        x = np.asarray(self.reader(self.index), dtype=np.float32)
        if x.shape != self.shape:
            raise ValueError(f"reader returned {x.shape}, expected {self.shape}")
        return x if self.preprocess is None else self.preprocess.apply(x)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        x = self.read()
        return x if dtype is None else x.astype(dtype, copy=False)

    def batches(self, size: int) -> Iterator[np.ndarray]:
        for start in range(0, len(self), size):
            yield self[start:start + size].read()

    def __repr__(self) -> str:
        return f"LazySamples(shape={self.shape})"


def materialize(x) -> np.ndarray:
    """An in-memory float32 array of ``x`` (a numpy array or lazy samples)."""
    return np.asarray(x, dtype=np.float32)
