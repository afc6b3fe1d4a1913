"""Peak memory of streaming an image folder (``--data DIR``), against its size.

Writes a folder of random RGB PNG images (``--side`` pixels square, 10 classes), opens it
with snn2hw's data layer for a model input of 3 x ``--input`` x ``--input``, and reads the
whole test split the way an evaluation does: ANN batches of 256 (``snn2hw.ann.predict``'s
batch) and the spike encoder's batches of 64, one time step each. Each image count runs in
a fresh process; the figure is the growth of the peak resident memory (``ru_maxrss``) over
the interpreter's after importing everything, beside what the split would take in memory
as float32.

Usage::

    .venv/bin/python benchmarks/imagefolder_memory.py [--images 1600,6400] [--side 64]
        [--input 224] [--workdir build/imagefolder_memory] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

CLASSES = 10


def write_folder(root: Path, images: int, side: int, seed: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(images):
        folder = root / f"class{i % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels, mode="RGB").save(folder / f"{i:06d}.png")


def measure(root: Path, size: int) -> dict:
    """Peak RSS growth while reading the test split as an evaluation does."""
    from snn2hw import data
    from snn2hw.snn.encoders import make_encoder

    shape = (3, size, size)
    ds = data.load(str(root), shape, CLASSES, data.Preprocess((0.5,) * 3, (0.5,) * 3))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    x = ds.x_test
    checksum = 0.0
    for start in range(0, len(x), 256):   # the ANN's batches
        checksum += float(np.asarray(x[start:start + 256]).sum())
    encoder = make_encoder("poisson", x, input_scale=1.0, seed=0, stream=1)
    for start in range(0, len(x), 64):    # the simulator's batches
        encoder.reset()
        checksum += float(encoder.chunk(start, min(len(x), start + 64), 0, 1).sum())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"test_images": len(x), "growth_mb": (peak - base) / 1024,
            "in_memory_mb": len(x) * int(np.prod(shape)) * 4 / 2 ** 20,
            "checksum": checksum}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", default="1600,6400")
    p.add_argument("--side", type=int, default=64)
    p.add_argument("--input", type=int, default=224)
    p.add_argument("--workdir", type=Path, default=Path("build/imagefolder_memory"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.input)))
        return 0
    print(f"{'images':>7} {'test split':>10} {'as float32':>11} {'peak RSS growth':>16}")
    for count in (int(v) for v in args.images.split(",")):
        root = args.workdir / f"n{count}"
        if not root.is_dir():
            write_folder(root, count, args.side, args.seed)
        out = subprocess.run([sys.executable, __file__, "--child", str(root),
                              "--input", str(args.input)], check=True, capture_output=True,
                             text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{count:>7} {r['test_images']:>10} {r['in_memory_mb']:>8.0f} MB "
              f"{r['growth_mb']:>13.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
