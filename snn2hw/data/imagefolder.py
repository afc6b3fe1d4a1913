"""A user's image folder (``--data DIR``), read lazily in batches.

Layout (torchvision's ``ImageFolder`` convention): one sub-folder of images per class,
classes numbered in sorted order of the folder names. With ``DIR/train`` and ``DIR/val``
(or ``DIR/test``) those are the train and test splits (the test split's classes must have a
training folder); with only one of them, or neither, the folder that holds the class
folders is split: in each class, files sorted by name, every 4th (the 4th, 8th, ...) is a
test image. Files are images Pillow can decode (by extension: .png .jpg .jpeg .bmp .gif
.tif .tiff .webp .ppm .pgm .pbm); others and hidden files are skipped.

Each image is converted to the model's channel count (1: Pillow's "L" grey-scale, 3: "RGB"),
resized (bilinear) so that it covers the model's height x width with its aspect ratio kept,
centre-cropped to that size (the usual ImageNet evaluation transform; an image of the
model's aspect ratio is simply resized), and scaled to [0, 1] (byte / 255); the model's
preprocessing follows. The order of each split interleaves the classes (first image
of every class, then the second, ...), so the first N samples of a split cover the classes
evenly.

Nothing is decoded when the folder is opened: the splits are
:class:`snn2hw.data.samples.LazySamples`, read batch by batch by their consumers. Memory held for
the data: the file list (one path string per image), plus the batch being read (at most
256 images, the ANN's batch, of C x H x W float32), plus what a consumer keeps (the
calibration set, ``--samples`` images, is read into memory whole).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .samples import LazySamples

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                            ".ppm", ".pgm", ".pbm"})
TEST_EVERY = 4
MODES = {1: "L", 3: "RGB"}


def class_folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_SUFFIXES)


def _interleave(per_class: list[list[Path]]) -> tuple[list[str], np.ndarray]:
    """Files and labels, round robin over the classes."""
    files, labels = [], []
    for rank in range(max((len(f) for f in per_class), default=0)):
        for label, class_files in enumerate(per_class):
            if rank < len(class_files):
                files.append(str(class_files[rank]))
                labels.append(label)
    return files, np.asarray(labels, dtype=np.int64)


def _fit(img, width: int, height: int):
    """Resize (bilinear) so that the image covers width x height with its aspect ratio
    kept, then crop the centre; an image of the model's aspect ratio is just resized."""
    from PIL import Image

    if img.size == (width, height):
        return img
    scale = max(width / img.size[0], height / img.size[1])
    size = (max(width, round(img.size[0] * scale)), max(height, round(img.size[1] * scale)))
    img = img.resize(size, Image.Resampling.BILINEAR)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    return img.crop((left, top, left + width, top + height))


def read_image(path: str, input_shape: tuple[int, ...]) -> np.ndarray:
    """One image as (C, H, W) float32 in [0, 1], converted and resized for the model."""
    from PIL import Image, UnidentifiedImageError

    channels, height, width = input_shape
    try:
        with Image.open(path) as img:
            img = _fit(img.convert(MODES[channels]), width, height)
            pixels = np.asarray(img, dtype=np.float32) / np.float32(255)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the image ({exc.__class__.__name__}: "
                        f"{exc})") from None
    return pixels[None] if channels == 1 else np.moveaxis(pixels, -1, 0)


class _Reader:
    """``indices -> images`` over a split's file list (a class, so it pickles)."""

    def __init__(self, files: list[str], input_shape: tuple[int, ...]) -> None:
        self.files = files
        self.input_shape = input_shape

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty((len(indices), *self.input_shape), dtype=np.float32)
        for row, i in enumerate(indices):
            out[row] = read_image(self.files[int(i)], self.input_shape)
        return out


def _splits(root: Path) -> tuple[Path, Path | None]:
    """(folder of the training classes, folder of the test classes or None to split)."""
    train = root / "train"
    test = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
    if train.is_dir() and test is not None:
        return train, test
    return (train if train.is_dir() else test or root), None


def scan(root: str | Path) -> tuple[list[str], dict[str, tuple[list[str], np.ndarray]]]:
    """Class names, and per split (``train``, ``test``) the files and labels."""
    root = Path(root)
    train_dir, test_dir = _splits(root)
    classes = class_folders(train_dir)
    if not classes:
        raise DataError(f"{train_dir}: no class folders (expected one sub-folder of images "
                        "per class)")
    train = [_images(train_dir / c) for c in classes]
    if test_dir is None:
        test = [[f for i, f in enumerate(fs) if i % TEST_EVERY == TEST_EVERY - 1]
                for fs in train]
        train = [[f for i, f in enumerate(fs) if i % TEST_EVERY != TEST_EVERY - 1]
                 for fs in train]
    else:
        extra = sorted(set(class_folders(test_dir)) - set(classes))
        if extra:
            raise DataError(f"{test_dir}: class folder(s) {', '.join(extra)} have no training "
                            f"folder in {train_dir}")
        test = [_images(test_dir / c) if (test_dir / c).is_dir() else [] for c in classes]
    splits = {"train": _interleave(train), "test": _interleave(test)}
    for name, (files, _) in splits.items():
        if not files:
            raise DataError(f"{root}: no images for the {name} split (image files: "
                            f"{', '.join(sorted(IMAGE_SUFFIXES))})")
    return classes, splits


def from_folder(root: str | Path, input_shape, num_classes: int | None = None):
    """The folder as a :class:`snn2hw.data.Dataset` of lazy samples (not preprocessed);
    ``num_classes`` (if given) must cover the class folders. The class names are in the
    dataset's ``classes``."""
    from .sets import Dataset

    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) != 3 or input_shape[0] not in MODES:
        raise DataError(f"{root}: an image folder needs a model with 1- or 3-channel image "
                        f"input (C, H, W); the model expects {input_shape}")
    classes, splits = scan(root)
    if num_classes is not None and len(classes) > num_classes:
        raise DataError(f"{root}: {len(classes)} class folders, but the model has "
                        f"{num_classes} classes")
    xs = {name: LazySamples(_Reader(files, input_shape), len(files), input_shape)
          for name, (files, _) in splits.items()}
    return Dataset(Path(root).name, xs["train"], splits["train"][1], xs["test"],
                   splits["test"][1], tuple(classes))
