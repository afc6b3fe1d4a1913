"""Fashion-MNIST: a VGG-style and a ResNet-style network converted to spiking networks.

Trains two networks under the conversion constraints of Sengupta et al. 2019 (ReLU only,
average pooling, no bias, no BatchNorm; dropout only while training) on Fashion-MNIST
(``--data fashion-mnist``; ``make data`` installs it, ``SNN2HW_DATA`` may point to its IDX
files instead) at its native 28 x 28, mean-subtracted with the training-set mean (std 1, as
``examples/digits_vgg.py``):

- ``vgg``: ``examples/digits_vgg.py``'s network at 28 x 28 (two blocks of two 3x3 convs,
  each block followed by a 2x2 average pool; widths 8 and 16; one linear classifier):
  5 spiking layers, 1.2 M multiply-accumulates per image.
- ``resnet``: :mod:`snn2hw.models`' residual network with a short stem (3x3 conv with 8
  channels, 2x2 average pool) and three basic blocks of 8, 16, 32 channels (strides 1, 2,
  2: one identity and two 1x1 stride-2 shortcuts), global average pool, one linear
  classifier: 8 spiking layers, 0.7 M multiply-accumulates per image.

The networks are small because the spiking simulation dominates the run time: every
configuration simulates ``eval-samples x max(T)`` network passes.

Training reuses ``examples/digits_vgg.py``'s loop (Adam, one-cycle learning rate, random
shifts of one pixel, seeded); the models go to ``WORKDIR/<net>.onnx`` and are reused unless
``--force``. Each is then converted with Spike-Norm and with max-act in two
configurations: the paper's (``paper``: reset to zero, threshold = the largest current /
activation) and the best one on the digits tables (``best``: reset by subtraction, the
99.9th percentile). Calibration uses the first ``--calib-samples`` training images;
accuracy is measured on the first ``--eval-samples`` test images at every T of
``--timesteps`` from ONE simulation of max(T) steps (checkpoints). For the ``best``
configuration each calibration is also quantised for ``loihi_sim`` (fixed-point accuracy
at ``--fixed-timesteps`` on ``--fixed-samples`` images, beside the float SNN on the same
spikes) and run on Lava's CPU backend for ``--lava-samples`` images at
``--lava-timesteps`` (agreement = samples whose every spike train matches the reference).
Everything lands in ``WORKDIR`` (calibrations in ``WORKDIR/<config>/``).
The measured table, its command and what it shows are in the README, "Real data:
Fashion-MNIST".

Usage::

    .venv/bin/python examples/fashion.py [--workdir build/fashion] [--seed 0] [--force]
        [--nets vgg,resnet] [--epochs N] [--train-samples N] [--train-only] [--threads 2]
        [--timesteps 32,64,128,256,512,1024] [--eval-samples 2000]
        [--calib-samples 256] [--calib-timesteps 256] [--configs paper,best]
        [--methods spike-norm,max-act] [--fixed-samples 500] [--fixed-timesteps 256]
        [--lava-samples 5] [--lava-timesteps 128]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import deep_digits as dd  # a sibling script: examples/ is on sys.path


DATA = "fashion-mnist"
SIZE = 28
# Per network: builder settings, epochs and Adam learning rate chosen so that each trains
# in minutes on two CPU cores.
NETS = {
    "vgg": {"label": "VGG-style", "widths": (8, 16), "dropout": 0.1, "epochs": 8, "lr": 3e-3},
    "resnet": {"label": "ResNet-style", "stages": ((8, 1, 1), (16, 1, 2), (32, 1, 2)),
               "epochs": 8, "lr": 3e-3},
}
CONFIGS = {"paper": ("zero", 100.0), "best": ("subtract", 99.9)}
MAX_SHIFT = 1


def _csv(choices):
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in choices]
        if not values or bad:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)}; got {text!r}")
        return values
    return parse


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=Path("build/fashion"))
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--force", action="store_true", help="retrain even if a model file exists")
    p.add_argument("--nets", type=_csv(NETS), default=list(NETS))
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: "
                   + ", ".join(f"{k} {v['epochs']}" for k, v in NETS.items()) + ")")
    p.add_argument("--train-samples", type=int, default=None,
                   help="train on the first N training images (default: all 60,000); "
                        "the rest are then a held-out validation split")
    p.add_argument("--train-only", action="store_true",
                   help="stop after training (write the models, convert nothing)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    p.add_argument("--timesteps", type=dd.timesteps_list, default=[32, 64, 128, 256, 512, 1024])
    p.add_argument("--eval-samples", type=int, default=2000)
    p.add_argument("--calib-samples", type=int, default=256)
    p.add_argument("--calib-timesteps", type=int, default=256)
    p.add_argument("--configs", type=_csv(CONFIGS), default=list(CONFIGS))
    p.add_argument("--methods", type=dd.methods_list, default=list(dd.METHODS))
    p.add_argument("--fixed-samples", type=int, default=500)
    p.add_argument("--fixed-timesteps", type=int, default=256)
    p.add_argument("--lava-samples", type=int, default=5, help="images run on Lava (default "
                   "5; 0 skips Lava)")
    p.add_argument("--lava-timesteps", type=int, default=128)
    args = p.parse_args(argv)
    for name in ("eval_samples", "calib_samples", "calib_timesteps", "fixed_samples",
                 "fixed_timesteps", "lava_timesteps", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.lava_samples < 0:
        p.error("--lava-samples must not be negative")
    if (args.epochs is not None and args.epochs < 1) or (args.train_samples or 1) < 1:
        p.error("--epochs and --train-samples must be positive")
    return args


def prepare(train_samples: int | None):
    """Fashion-MNIST at 28 x 28, mean-subtracted with the training mean (std 1)."""
    import numpy as np

    from snn2hw.data import Dataset, Preprocess, builtin

    raw = builtin(DATA, (1, SIZE, SIZE))
    x_train, y_train = raw.x_train[:train_samples], raw.y_train[:train_samples]
    mean = float(np.mean(x_train, dtype=np.float64))
    pre = Preprocess(mean=(mean,), std=(1.0,))
    return Dataset(DATA, pre.apply(x_train), y_train, pre.apply(raw.x_test), raw.y_test), pre


def build(net: str, seed: int):
    import torch
    from torch import nn

    from snn2hw import models

    s = NETS[net]
    if net == "vgg":
        import digits_vgg

        return digits_vgg.build_model(SIZE, s["widths"], s["dropout"], seed)
    c0 = s["stages"][0][0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        stem = [nn.Conv2d(1, c0, 3, padding=1, bias=False), nn.ReLU(), nn.AvgPool2d(2)]
        return models._resnet(stem, c0, s["stages"], 10, 1.0, False, False, 0.0)


def train_or_reuse(net: str, args, data, pre, dv) -> Path:
    from snn2hw import models

    path = args.workdir / f"{net}.onnx"
    model = build(net, args.seed)
    params = sum(p.numel() for p in model.parameters())
    if path.exists() and not args.force:
        info = dd.network_info(path)
        if info["params"] != params or info["input_shape"] != (1, SIZE, SIZE):
            from snn2hw.errors import InputError

            raise InputError(f"{path} exists but is another network ({info['params']} "
                             f"parameters, not {params}); use --force to retrain")
        print(f"   reused existing {path} (use --force to retrain)")
        return path
    s = NETS[net]
    epochs = args.epochs or s["epochs"]
    print(f"   training {s['label']} ({params} parameters) for {epochs} epochs, Adam lr "
          f"{s['lr']}, seed {args.seed}", flush=True)
    result = dv.train(model, data, epochs=epochs, seed=args.seed, lr=s["lr"], batch_size=64,
                      max_shift=MAX_SHIFT, blank=-pre.mean[0],
                      log=lambda line: print("     " + line, flush=True))
    models.export_onnx(model, path, (1, SIZE, SIZE), pre, DATA)
    print(f"   {s['label']}: ANN test accuracy {100 * result.test_accuracy:.2f} %, trained "
          f"in {result.seconds:.0f} s -> {path}", flush=True)
    return path


def deploy(path: Path, calib: Path, args) -> dict:
    """Fixed-point accuracy (loihi_sim) and Lava agreement for one calibration."""
    from snn2hw.steps.deploy import export_model, run_export
    from snn2hw.steps.options import (CalibrationOptions, DataOptions, EvaluationOptions,
                                      RunOptions)
    from snn2hw.artifacts.export import save_export

    art = export_model(path, "loihi_sim", calibration_file=calib,
                       data_options=DataOptions(DATA),
                       calibration=CalibrationOptions(timesteps=args.fixed_timesteps,
                                                      seed=args.seed),
                       evaluation=EvaluationOptions(samples=args.fixed_samples))
    exported = calib.with_suffix("").with_suffix(".loihi_sim.h5")
    save_export(exported, art)
    ev = art.report["evaluation"]
    result = {"float": ev["float_accuracy"], "fixed": ev["exported_accuracy"], "lava": None,
              "mismatch": None}
    if args.lava_samples:
        run = run_export(exported, RunOptions(DATA, args.lava_samples, args.lava_timesteps))
        result.update(lava=run.agreement, mismatch=run.first_mismatch)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    # snn2hw's error convention: one "error:" line and its exit code, no traceback.
    import cifar10

    return cifar10.run(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    import torch

    from snn2hw.cli.tables import percent, table

    import digits_vgg as dv
    dv.THREADS = args.threads
    torch.set_num_threads(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    data, pre = prepare(args.train_samples)
    print(f"== 1. train or reuse: {DATA} {SIZE}x{SIZE}, {len(data.x_train)} train / "
          f"{len(data.x_test)} test images, mean {pre.mean[0]:.4f}, seed {args.seed}",
          flush=True)
    paths = {net: train_or_reuse(net, args, data, pre, dv) for net in args.nets}
    trained = time.monotonic()
    if args.train_only:
        return 0
    rows, fixed = [], []
    for config in args.configs:
        reset, percentile = CONFIGS[config]
        print(f"\n== 2. convert ({config}: reset {reset}, percentile {percentile:g})",
              flush=True)
        for net, path in paths.items():
            info = dd.network_info(path)
            save_dir = args.workdir / config
            save_dir.mkdir(exist_ok=True)
            reports = dd.convert(path, DATA, methods=args.methods, timesteps=args.timesteps,
                                 calib_timesteps=args.calib_timesteps,
                                 calib_samples=args.calib_samples, seed=args.seed,
                                 eval_samples=args.eval_samples, save_dir=save_dir,
                                 reset=reset, percentile=percentile,
                                 log=lambda line: print(line, flush=True))
            rows.append((f"{NETS[net]['label']} ({config})", info, reports))
            if config != "best":
                continue
            for method in args.methods:
                print(f"   {net}: {method}: loihi_sim and Lava ...", flush=True)
                res = deploy(path, save_dir / f"{net}.{method}.calib.h5", args)
                fixed.append([NETS[net]["label"], method, percent(res["float"]),
                              percent(res["fixed"]),
                              "-" if res["lava"] is None else percent(res["lava"])])
                if res["mismatch"]:
                    print(f"   MISMATCH: {res['mismatch']}", flush=True)
    samples = rows[0][2][args.methods[0]]["evaluation"]["samples"]
    print(f"\n== Summary: {DATA} test split (first {samples} images), seed {args.seed}; "
          f"calibration T = {args.calib_timesteps} on {args.calib_samples} training images")
    print(dd.summary_table(rows, args.timesteps))
    if fixed:
        print(f"\nloihi_sim (best configuration): float and fixed-point SNN at T = "
              f"{args.fixed_timesteps} on {args.fixed_samples} test images; Lava agreement on "
              f"{args.lava_samples} images at T = {args.lava_timesteps}")
        print(table(["network", "method", "float SNN", "fixed-point", "Lava agreement"],
                    fixed))
    end = time.monotonic()
    print(f"\ntrain/reuse {trained - start:.0f} s, convert {end - trained:.0f} s, "
          f"total {end - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
