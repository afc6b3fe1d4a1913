"""Small IDX data sets for tests, written byte by byte (independently of snn2hw.data.idx)."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

STEMS = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
         "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    big = array.astype(array.dtype.newbyteorder(">"))
    return (bytes([0, 0, code, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
            + big.tobytes())


def make_arrays(n_train: int, n_test: int, seed: int = 0, side: int = 28) -> dict:
    """uint8 images with a class-dependent bright square (so a net can learn something)."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = (np.arange(n) % 10).astype(np.uint8)
        x = rng.integers(0, 60, (n, side, side), dtype=np.uint8)
        for i, label in enumerate(y):
            r, c = divmod(int(label), 4)
            x[i, 2 + 6 * r:6 + 6 * r, 2 + 6 * c:6 + 6 * c] = 250
        out[f"x_{split}"], out[f"y_{split}"] = x, y
    return out


def write_dataset(folder: Path, arrays: dict, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in STEMS.items():
        raw = idx_bytes(arrays[key])
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / stem).write_bytes(raw)
    return folder
