"""Peak memory (RSS) of ``snn2hw calibrate`` on two VGG networks, each run in a child
process and measured with ``os.wait4`` (the child's ``ru_maxrss``).

Networks, with random but seeded weights (Kaiming initialisation, ``--seed``; memory does
not depend on what the weights have learnt, only on the layer sizes):

- ``vgg16-digits``: ``snn2hw.models.vgg16`` at width 1/8 for 1 x 32 x 32 inputs, the
  network of ``examples/deep_digits.py`` (13 convolutions, 3 dense layers, 16 spiking
  layers, 0.53 M parameters, widest layer 8 x 32 x 32 = 8,192 neurons), on ``digits``;
- ``vgg5-28``: 5 convolutions (32, 32, pool, 64, 64, pool, 128) and two dense layers
  (64, 10) for 1 x 28 x 28 inputs (0.54 M parameters, widest layer 32 x 28 x 28 = 25,088
  neurons), on random data of Fashion-MNIST's shape written to an ``.npz`` (uniform
  [0, 1), ``--seed``).

Each network is calibrated with Spike-Norm and with max-act: ``snn2hw calibrate MODEL
--data D --method M --timesteps 256 --samples 256 --eval-samples 32`` (the evaluation
after calibration uses the bounded simulator; ``--eval-samples`` keeps it short). The
table gives the peak RSS of each run and, for reference, of a process that only imports
snn2hw and torch.

Usage::

    .venv/bin/python benchmarks/memory.py [--timesteps 256] [--samples 256]
        [--eval-samples 32] [--nets vgg16-digits,vgg5-28] [--methods spike-norm,max-act]
        [--seed 0]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from snn2hw import models
from snn2hw.data import Preprocess


def vgg16_digits(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return models.vgg16(num_classes=10, in_channels=1, input_size=32, width=0.125,
                        dropout=0.0)


def vgg5_28(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    conv = [nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.ReLU()]
    model = nn.Sequential(*conv, nn.Flatten(), nn.Linear(128 * 7 * 7, 64, bias=False),
                          nn.ReLU(), nn.Linear(64, 10, bias=False))
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    return model


NETS = {"vgg16-digits": (vgg16_digits, (1, 32, 32)), "vgg5-28": (vgg5_28, (1, 28, 28))}


def fashion_shaped_data(path: Path, seed: int, n: int = 512, n_test: int = 64) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(path, x=rng.random((n, 1, 28, 28), dtype=np.float32),
             y=rng.integers(0, 10, n), x_test=rng.random((n_test, 1, 28, 28),
                                                         dtype=np.float32),
             y_test=rng.integers(0, 10, n_test))
    return path


def peak_rss(cmd: list[str]) -> tuple[int, float, int]:
    """Run ``cmd``; its peak RSS in bytes, wall seconds and exit status."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        print(stderr.decode(errors="replace")[-2000:], file=sys.stderr)
    return usage.ru_maxrss * 1024, time.monotonic() - start, proc.returncode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timesteps", type=int, default=256)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--eval-samples", type=int, default=32)
    p.add_argument("--nets", default=",".join(NETS))
    p.add_argument("--methods", default="spike-norm,max-act")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rows = []
    base, _, _ = peak_rss([sys.executable, "-c", "import torch, snn2hw.cli"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in args.nets.split(","):
            build, shape = NETS[name]
            model = build(args.seed)
            params = sum(q.numel() for q in model.parameters())
            onnx_path = models.export_onnx(model, tmp / f"{name}.onnx", shape,
                                           Preprocess((0.0,), (1.0,)))
            data = ("digits" if name == "vgg16-digits"
                    else str(fashion_shaped_data(tmp / "fashion.npz", args.seed)))
            for method in args.methods.split(","):
                cmd = [sys.executable, "-m", "snn2hw.cli", "calibrate", str(onnx_path),
                       "--data", data, "--method", method, "--timesteps",
                       str(args.timesteps), "--samples", str(args.samples),
                       "--eval-samples", str(args.eval_samples), "--seed", str(args.seed),
                       "-o", str(tmp / f"{name}.{method}.calib.h5")]
                rss, seconds, code = peak_rss(cmd)
                rows.append((name, params, method, rss, seconds, code))
                print(f"{name} {method}: {rss / 2**20:.0f} MiB, {seconds:.0f} s"
                      + (f", exit {code}" if code else ""), flush=True)
    print(f"\nsnn2hw calibrate --timesteps {args.timesteps} --samples {args.samples} "
          f"--eval-samples {args.eval_samples}, seed {args.seed}; import torch + snn2hw "
          f"alone: {base / 2**20:.0f} MiB")
    print(f"{'network':<14} {'params':>8}  {'method':<10} {'peak RSS':>9}  {'time':>6}")
    for name, params, method, rss, seconds, code in rows:
        print(f"{name:<14} {params:>8}  {method:<10} {rss / 2**20:>5.0f} MiB  "
              f"{seconds:>5.0f} s" + ("" if code == 0 else f"  (exit {code})"))
    return 0 if all(r[-1] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
