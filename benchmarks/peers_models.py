"""The trained ANNs that ``benchmarks/peers.py`` converts: each is trained by its example's
own code (same builder, data, seed and thread count as the example) and cached where the
example keeps it, so the benchmark, the example and the README tables share one file.

- ``deep-digits``: the VGG-16 (width 1/8) of ``examples/deep_digits.py`` on digits at
  32 x 32, ``build/deep/vgg16.onnx``.
- ``fashion``: the VGG-style network of ``examples/fashion.py`` on Fashion-MNIST at 28 x 28,
  ``build/fashion/vgg.onnx`` (needs the data set: ``make data``).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class ModelSpec:
    example: str     # examples/<example>.py trains it
    net: str         # the example's network name
    workdir: str     # the example's default work folder
    data: str        # the snn2hw data spec the model is evaluated on
    label: str
    samples: int     # test images evaluated by default


MODELS = {
    "deep-digits": ModelSpec("deep_digits", "vgg16", "build/deep", "digits",
                             "VGG-16 (width 1/8), digits 32x32", 450),
    "fashion": ModelSpec("fashion", "vgg", "build/fashion", "fashion-mnist",
                         "VGG-style (5 spiking layers), Fashion-MNIST 28x28", 500),
}


def load_example(name: str):
    """Import ``examples/<name>.py`` (examples are scripts, not a package)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))  # fashion.py imports deep_digits by name
    spec = importlib.util.spec_from_file_location(f"peers_example_{name}",
                                                  EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _example_args(spec: ModelSpec, workdir: Path, seed: int, threads: int):
    """The example's own defaults, as its parser gives them, with our folder/seed/threads."""
    ex = load_example(spec.example)
    args = ex._parse(["--workdir", str(workdir), "--seed", str(seed),
                      "--threads", str(threads)])
    return ex, args


def model_path(name: str, workdir: Path | None = None) -> Path:
    spec = MODELS[name]
    return Path(workdir or spec.workdir) / f"{spec.net}.onnx"


def train_or_reuse(name: str, seed: int = 0, threads: int = 2, workdir: Path | None = None,
                   log: Callable[[str], None] = print) -> Path:
    """The model file of ``name``: reused when it exists (the example checks that it is the
    same network), else trained by the example's own code with ``seed``."""
    import torch

    spec = MODELS[name]
    workdir = Path(workdir or spec.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ex, args = _example_args(spec, workdir, seed, threads)
    dd = ex if spec.example == "deep_digits" else ex.dd
    dv = importlib.import_module("digits_vgg")  # the examples' shared training loop
    dv.THREADS = threads
    torch.set_num_threads(threads)
    if spec.example == "deep_digits":
        data, pre = dv.prepare_data(dd.SIZE)
        return dd.train_or_reuse(spec.net, args, data, pre, dv, log=log)
    path = workdir / f"{spec.net}.onnx"
    if path.exists():  # the example reads the whole data set before it checks the file
        return ex.train_or_reuse(spec.net, args, None, None, dv)
    data, pre = ex.prepare(args.train_samples)
    return ex.train_or_reuse(spec.net, args, data, pre, dv)


def main(argv: list[str] | None = None) -> int:
    """Train (or reuse) one model: ``python benchmarks/peers_models.py deep-digits``."""
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("model", choices=MODELS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    print(train_or_reuse(args.model, args.seed, args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
