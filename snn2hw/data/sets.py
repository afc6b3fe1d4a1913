"""Data sets: the built-in digits, MNIST and Fashion-MNIST, or a user's ``.npz`` file.

``mnist``, ``fashion-mnist``: 60,000 train and 10,000 test images of 28 x 28, pixels in
[0, 1] (:mod:`snn2hw.data.builtin_data` says where they are found; ``make data`` installs them),
resized (bilinear) to the model's input size and repeated over its channels.
``digits``: scikit-learn's 1,797 handwritten 8x8 digits, pixels scaled to [0, 1], split
75/25 (stratified, fixed seed 0) into train and test, resized (bilinear) to the model's
input size. ``file.npz``: arrays ``x`` (N, C, H, W) or (N, F) float and ``y`` (N,) integer
labels; with ``x_test``/``y_test`` those are the test split, otherwise the last 25 % of
``x`` is; members saved uncompressed (``numpy.savez``) are memory-mapped and read batch by
batch (:mod:`snn2hw.data.npzmap`), compressed ones are read into memory. ``DIR``: a folder of
images, one sub-folder per class (:mod:`snn2hw.data.imagefolder`), read batch by batch.
Preprocessing ``(x - mean) / std`` per channel is then applied, with mean/std
taken from the model (ONNX metadata ``snn2hw.preprocess``) or given explicitly.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .builtin_data import BUILTIN, load_builtin
from ..errors import DataError
from .imagefolder import from_folder
from .npzmap import all_finite, open_npz, row_reader
from .samples import LazySamples, materialize

DIGITS = "digits"
TEST_FRACTION = 0.25


@dataclass(frozen=True)
class Preprocess:
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if any(not np.isfinite(s) or s <= 0 for s in self.std):
            raise DataError(f"preprocess std must be positive and finite, got {self.std}")

    def apply(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4:
            return ((x - self.mean[0]) / self.std[0]).astype(np.float32)
        shape = (1, -1, 1, 1)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(shape)
        std = np.asarray(self.std, dtype=np.float32).reshape(shape)
        if mean.size not in (1, x.shape[1]) or std.size not in (1, x.shape[1]):
            raise DataError(f"preprocess has {mean.size} means/{std.size} stds for "
                            f"{x.shape[1]} channels")
        return ((x - mean) / std).astype(np.float32)

    def to_json(self) -> str:
        return json.dumps({"mean": list(self.mean), "std": list(self.std)})

    @staticmethod
    def from_json(text: str) -> "Preprocess":
        try:
            d = json.loads(text)
            return Preprocess(tuple(float(v) for v in d["mean"]),
                              tuple(float(v) for v in d["std"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"invalid preprocess description {text!r}: {exc}") from None


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...] = ()  # class names where the source has them (image folders)

    def split(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        return (self.x_train, self.y_train) if which == "train" else (self.x_test, self.y_test)


def _resize(x: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if x.shape[2:] == tuple(hw):
        return x
    import torch
    import torch.nn.functional as F

    t = F.interpolate(torch.from_numpy(x), size=tuple(hw), mode="bilinear", align_corners=False)
    return t.numpy()


def fit_images(x: np.ndarray, input_shape, name: str) -> np.ndarray:
    """Grey-scale (N, 1, H, W) images resized to the model's size and repeated over its
    channels."""
    if len(input_shape) != 3:
        raise DataError(f"the {name} data set is images; the model expects input "
                        f"{tuple(input_shape)}")
    x = _resize(x, tuple(input_shape[1:]))
    return x if input_shape[0] == 1 else np.repeat(x, input_shape[0], axis=1)


def builtin(name: str, input_shape) -> Dataset:
    """MNIST or Fashion-MNIST, fitted to the model's input shape."""
    arrays = load_builtin(name)
    return Dataset(name, fit_images(arrays["x_train"], input_shape, name), arrays["y_train"],
                   fit_images(arrays["x_test"], input_shape, name), arrays["y_test"])


def digits(input_shape: tuple[int, ...]) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if len(input_shape) != 3 or input_shape[0] != 1:
        raise DataError(f"the digits data set is 1-channel images; the model expects "
                        f"{input_shape}")
    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=TEST_FRACTION, random_state=0,
                                              stratify=y)
    hw = input_shape[1:]
    return Dataset(DIGITS, _resize(x_tr, hw), y_tr, _resize(x_te, hw), y_te)


def _check_pair(path: Path, x, y, key_x: str, key_y: str, input_shape, num_classes) -> None:
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{path}: {key_x} has dtype {x.dtype}; expected a real number array")
    if x.ndim != len(input_shape) + 1:
        raise DataError(f"{path}: {key_x} has rank {x.ndim}; the model expects "
                        f"(N, {', '.join(map(str, input_shape))})")
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise DataError(f"{path}: {key_x} samples have shape {tuple(x.shape[1:])}; the model "
                        f"expects {tuple(input_shape)}")
    if len(x) == 0:
        raise DataError(f"{path}: {key_x} is empty")
    if not all_finite(x):
        raise DataError(f"{path}: {key_x} contains NaN or Inf")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{path}: {key_y} must have shape ({len(x)},), has {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0)):
            raise DataError(f"{path}: {key_y} must hold integer class labels ({y.dtype})")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"{path}: {key_y} has labels in [{int(y.min())}, {int(y.max())}]; the "
                        f"model has {num_classes} classes")


NPZ_KEYS = ("x", "y", "x_test", "y_test")


def _read_npz(path: Path) -> tuple[dict[str, np.ndarray], set[str]]:
    """The arrays of an .npz file that we use (memory-mapped where stored uncompressed; see
    :mod:`snn2hw.data.npzmap`), and which are mapped. Any failure to parse the user's file (not
    a zip, truncated or corrupt member, pickled object arrays, a bare .npy) is a DataError."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any parse failure of a user file
        raise DataError(f"{path}: not a readable .npz file ({exc.__class__.__name__}: "
                        f"{exc})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: not a readable .npz file (a single array); save 'x' and 'y' "
                        "with numpy.savez")
    loaded.close()
    return open_npz(path, NPZ_KEYS)


def _samples(x: np.ndarray, rows: slice, lazy: bool):
    """Rows of ``x`` as float32: lazy samples over a mapped array, else in memory."""
    if lazy:
        return LazySamples(row_reader(x), len(x), x.shape[1:])[rows]
    return np.array(x[rows], dtype=np.float32)  # a copy: not the read-only mapping


def from_npz(path: str | Path, input_shape, num_classes: int, lazy: bool = False) -> Dataset:
    """An ``.npz`` data set. ``lazy``: members stored uncompressed stay memory-mapped and
    are read batch by batch (:class:`snn2hw.data.samples.LazySamples`); otherwise, and for
    compressed members, ``x`` is read into memory as float32."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such data file")
    arrays, mapped = _read_npz(path)
    keys = set(arrays)
    missing = {"x", "y"} - keys
    if missing:
        raise DataError(f"{path}: missing array(s) {sorted(missing)}; expected 'x' (N, C, H, W) "
                        "and 'y' (N,)")
    x, y = arrays["x"], np.asarray(arrays["y"])
    _check_pair(path, x, y, "x", "y", input_shape, num_classes)
    if {"x_test", "y_test"} <= keys:
        xt, yt = arrays["x_test"], np.asarray(arrays["y_test"])
        _check_pair(path, xt, yt, "x_test", "y_test", input_shape, num_classes)
        return Dataset(path.name, _samples(x, slice(None), lazy and "x" in mapped),
                       y.astype(np.int64),
                       _samples(xt, slice(None), lazy and "x_test" in mapped),
                       yt.astype(np.int64))
    cut = int(round(len(x) * (1 - TEST_FRACTION)))
    if cut == 0 or cut == len(x):
        raise DataError(f"{path}: {len(x)} samples are too few to split into train and test; "
                        "give x_test/y_test")
    lazy = lazy and "x" in mapped
    y = y.astype(np.int64)
    return Dataset(path.name, _samples(x, slice(None, cut), lazy), y[:cut],
                   _samples(x, slice(cut, None), lazy), y[cut:])


def _preprocessed(x, preprocess: Preprocess):
    if isinstance(x, LazySamples):
        return x.with_preprocess(preprocess)
    return preprocess.apply(x)


def load(spec: str, input_shape, num_classes: int, preprocess: Preprocess) -> Dataset:
    """Load ``digits``, ``mnist``, ``fashion-mnist``, an image folder or an ``.npz`` path,
    preprocessed for the model. Folders, and ``.npz`` members stored uncompressed, give
    lazy samples (read batch by batch)."""
    if spec == DIGITS:
        raw = digits(input_shape)
    elif spec in BUILTIN:
        if num_classes < 10:
            raise DataError(f"{spec} has 10 classes; the model has only {num_classes}")
        raw = builtin(spec, input_shape)
    elif Path(spec).is_dir():
        raw = from_folder(spec, input_shape, num_classes)
    else:
        raw = from_npz(spec, input_shape, num_classes, lazy=True)
    return Dataset(raw.name, _preprocessed(raw.x_train, preprocess), raw.y_train,
                   _preprocessed(raw.x_test, preprocess), raw.y_test)


def take(x: np.ndarray, y: np.ndarray, samples: int | None, what: str):
    """The first ``samples`` of a split; fewer available is an error, not a silent cut."""
    if samples is None:
        return x, y
    if samples > len(x):
        raise DataError(f"{samples} {what} samples asked for, but the split has only {len(x)}")
    return x[:samples], y[:samples]


def calibration_set(dataset: Dataset, samples: int | None) -> np.ndarray:
    """The first ``samples`` training samples, in memory (calibration reads them often)."""
    x, _ = take(dataset.x_train, dataset.y_train, samples, "calibration")
    return materialize(x)
