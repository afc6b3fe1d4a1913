"""Reproduce the paper's ImageNet experiment: ResNet-34 (or VGG-16), converted with Spike-Norm.

Sengupta et al. 2019 convert ResNet-34 and VGG-16 trained on ImageNet without BatchNorm and
biases. This script trains :func:`snn2hw.models.resnet34` (plain 3x3 stem, average
pooling, a ReLU after every junction) or :func:`snn2hw.models.vgg16` on images you provide
(or loads a trained model with ``--model``), exports it, calibrates it with Spike-Norm
and prints the table of ``examples/deep_digits.py``. Training, export and conversion are
those of ``examples/cifar10.py`` (see there for the recipe, the options and the memory
cost of Spike-Norm); only the data loading differs. A GPU is needed for the paper's sizes.

Usage::

    python examples/imagenet.py --data DIR_OR_NPZ [--input-size 224] [--classes N]
        [--arch resnet34|vgg16] [--model trained.onnx] [--width 1.0] [--epochs 60]
        [--device auto] [--amp] [--timesteps 2500] [--eval-samples 1000] ...
        (all other options as in cifar10.py)

Data (``--data``):

- a directory of images with one sub-folder per class (torchvision's ``ImageFolder``
  convention), read by snn2hw's own image-folder path (:mod:`snn2hw.data.imagefolder`, the same
  as ``snn2hw ... --data DIR``): ``DIR/train/<class>/`` and ``DIR/val/<class>/`` (or
  ``test``) are the splits, otherwise every 4th image of each class (sorted by name) is a
  test image; classes are numbered in sorted order of the folder names. Images are decoded
  with Pillow, converted to RGB, resized (bilinear) to cover ``--input-size`` and
  centre-cropped, pixels scaled to [0, 1]. The folder is never loaded whole: images are
  read batch by batch (training, the preprocessing statistics) or only for the chosen
  subset (conversion), so an ImageNet-sized folder need not fit in memory.
- an ``.npz`` file with ``x`` (N, 3, H, W), uint8 or float, and ``y`` (N,) integer labels;
  ``x_test``/``y_test`` are the test split if present, else the last 25 % of ``x`` is. It
  is held in memory (uint8 images stay uint8).

Images of an ``.npz`` file whose size differs from ``--input-size`` are resized
(bilinear, antialiased) so that the shorter side matches, then centre-cropped. The number
of classes is that of the folders, or ``--classes``, or the largest label + 1. The calibration and evaluation
images (``--calib-samples``, ``--eval-samples``: seeded random choices, default 256 and
1,000) are written at the model's size to ``WORKDIR/<model>.subset.npz``, which the
exported model names as its data set, so ``snn2hw export``/``run`` work without ``--data``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

import cifar10  # a sibling script: examples/ is on sys.path

TEST_FRACTION = 0.25


def _chw_stack(a: np.ndarray, where: str) -> np.ndarray:
    """One image or a stack, channel-first or channel-last -> (n, 3, H, W)."""
    from snn2hw.errors import DataError

    if a.ndim == 2:
        a = a[None, None]
    elif a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise DataError(f"{where}: expected an image (C, H, W)/(H, W, C) or a stack of them, "
                        f"got shape {a.shape}")
    if a.shape[1] not in (1, 3) and a.shape[-1] in (1, 3):
        a = np.moveaxis(a, -1, 1)
    elif a.shape[1] not in (1, 3):
        raise DataError(f"{where}: cannot tell the channel axis of shape {a.shape}; use "
                        "(3, H, W) or (H, W, 3)")
    if a.shape[1] == 1:
        a = np.repeat(a, 3, axis=1)
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise DataError(f"{where}: dtype {a.dtype} is not a real number type")
    if a.dtype != np.uint8:
        a = a.astype(np.float32)
        if not np.all(np.isfinite(a)):
            raise DataError(f"{where}: contains NaN or Inf")
    return a


def fit_size(x: np.ndarray, size: int) -> np.ndarray:
    """(n, 3, H, W) -> (n, 3, size, size): resize the shorter side to ``size`` (bilinear,
    antialiased), then crop the centre. uint8 stays uint8."""
    if x.shape[2] == size and x.shape[3] == size:
        return x
    import torch
    import torch.nn.functional as F

    h, w = x.shape[2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    out = []
    for start in range(0, len(x), 256):
        t = torch.from_numpy(np.ascontiguousarray(x[start:start + 256])).float()
        if (nh, nw) != (h, w):
            t = F.interpolate(t, size=(nh, nw), mode="bilinear", align_corners=False,
                              antialias=True)
        top, left = (nh - size) // 2, (nw - size) // 2
        t = t[:, :, top:top + size, left:left + size]
        if x.dtype == np.uint8:
            t = t.round().clamp(0, 255).to(torch.uint8)
        out.append(t.numpy())
    return np.concatenate(out)


def load_dir(root: Path, size: int, classes: int | None):
    """An image folder through snn2hw's data layer (lazy; see the module docstring)."""
    from snn2hw.data.imagefolder import from_folder

    data = from_folder(root, (3, size, size), classes)
    return data, classes or len(data.classes)


def load_npz(path: Path, size: int, classes: int | None):
    """An .npz file (see the module docstring); images resized to ``size``."""
    from snn2hw.data import Dataset
    from snn2hw.errors import DataError

    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x", "y", "x_test", "y_test") if k in f.files}
    except Exception as exc:  # noqa: BLE001 - any parse failure of a user file
        raise DataError(f"{path}: not a readable .npz file ({exc.__class__.__name__})") from None
    if "x" not in arrays or "y" not in arrays:
        raise DataError(f"{path}: needs arrays 'x' (N, 3, H, W) and 'y' (N,)")
    pairs = [("x", "y")] + ([("x_test", "y_test")] if {"x_test", "y_test"} <= set(arrays)
                            else [])
    out = []
    for kx, ky in pairs:
        x, y = arrays[kx], arrays[ky]
        if x.ndim != 4 or len(x) == 0:
            raise DataError(f"{path}: {kx} must have shape (N, 3, H, W) with N > 0, has "
                            f"{x.shape}")
        x = fit_size(_chw_stack(x, f"{path}: {kx}"), size)
        if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise DataError(f"{path}: {ky} must hold {len(x)} non-negative integer labels")
        out += [x, y.astype(np.int64)]
    if len(out) == 2:
        cut = int(round(len(out[0]) * (1 - TEST_FRACTION)))
        if cut in (0, len(out[0])):
            raise DataError(f"{path}: too few samples to split; give x_test/y_test")
        out = [out[0][:cut], out[1][:cut], out[0][cut:], out[1][cut:]]
    found = int(max(out[1].max(), out[3].max())) + 1
    classes = classes or found
    if found > classes:
        raise DataError(f"{path}: labels go up to {found - 1}, but there are {classes} classes")
    return Dataset(path.name, *out), classes


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True,
                   help="directory of per-class folders of images, or an .npz file")
    p.add_argument("--input-size", type=int, default=224,
                   help="image height and width of the network (default 224)")
    p.add_argument("--classes", type=int, default=None,
                   help="number of classes (default: from the data)")
    cifar10.add_arguments(p, archs=("resnet34", "vgg16"), epochs=60, workdir="build/imagenet",
                          eval_samples=1000)
    args = p.parse_args(argv)
    cifar10.check_arguments(p, args)
    if args.input_size < 1 or (args.arch == "vgg16" and args.input_size < 32):
        p.error(f"--input-size {args.input_size} is too small for {args.arch}")
    if not args.data.exists():
        p.error(f"--data {args.data}: no such file or directory")

    def go() -> int:
        from snn2hw.errors import DataError

        size, classes = args.input_size, args.classes
        if args.model is not None:
            shape, classes = cifar10.model_shape(args.model)
            if len(shape) != 3 or shape[0] != 3 or shape[1] != shape[2]:
                raise DataError(f"{args.model}: input {shape} is not a square RGB image")
            size = shape[1]
        if args.data.is_dir():
            data, classes = load_dir(args.data, size, classes)
        else:
            data, classes = load_npz(args.data, size, classes)
        if args.eval_samples is not None:
            args.eval_samples = min(args.eval_samples, len(data.x_test))
        return cifar10.reproduce(args, data, (3, size, size), classes, args.data.name)

    return cifar10.run(go)


if __name__ == "__main__":
    sys.exit(main())
