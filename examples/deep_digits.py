"""Going deeper on digits: VGG-16 and ResNet-20 (reduced width) converted to spiking networks.

Trains the paper's two CIFAR architectures from :mod:`snn2hw.models` on scikit-learn's
digits, upsampled (bilinear) to 32 x 32 with one input channel and mean-subtracted as in
``examples/digits_vgg.py``: VGG-16 (13 convolutions with average pooling, a 3-layer
classifier: 15 ReLUs, 16 spiking layers) and ResNet-20 (19 convolutions with a ReLU each,
a ReLU after every junction, identity and 1x1 shortcuts: 20 spiking layers). Without
BatchNorm and biases, as the paper trains them, and narrower than the paper (width 0.125
and 0.25 by default) so that each trains in a few minutes on two CPU cores. Training uses
``examples/digits_vgg.py``'s loop: Adam, one-cycle learning rate, random shifts, seeded and
deterministic (two threads).

The models are written to ``WORKDIR/vgg16.onnx`` and ``WORKDIR/resnet20.onnx``; an
existing file is reused unless ``--force`` is given. Each is then calibrated with
Spike-Norm and with max-act (``snn2hw.steps.pipeline.calibrate_model``: calibration with
``--calib-timesteps`` steps on the first ``--calib-samples`` training images) and evaluated
on the test split at every T of ``--timesteps``; the calibrations are saved next to the
model (``WORKDIR/<net>.<method>.calib.h5``, ready for ``snn2hw export --calibration``).
The script ends with one table: ANN accuracy, SNN accuracy per method and T, the mean
spike rate and the time each conversion took.

Both methods run with reset by subtraction and the 99.9th percentile by default (``--reset
subtract --percentile 99.9``; ``--reset zero --percentile 100`` is the paper's rule). Measured
with the defaults (seed 0; 14 minutes on two CPU cores, models reused; the same figures as
``benchmarks/depth.py --eval-samples 450``)::

    network    spiking layers / hops  ANN      method      T=128    T=256    T=512    T=1024
    VGG-16     16 / 16                98.44 %  spike-norm  98.22 %  98.44 %  98.44 %  98.44 %
                                               max-act     98.44 %  98.44 %  98.44 %  98.44 %
    ResNet-20  20 / 20                98.67 %  spike-norm  74.00 %  93.11 %  96.44 %  97.78 %
                                               max-act     98.00 %  98.44 %  98.00 %  98.44 %

With the paper's rule (the largest current, reset to zero) Spike-Norm does not convert
ResNet-20 within 1,024 steps (10.00 / 10.00 / 14.22 / 12.44 %): at an identity junction
the largest current includes a whole shortcut spike on top of the branch's current, so the
firing rate roughly halves at every block and the last stage receives almost nothing
within the window. README, "Going deeper", has each option's share. Each network's
per-layer thresholds and rates are in the ``.calib.h5`` reports. Training is bit-for-bit
repeatable for a given ``--threads``; on a busy machine ``--threads 1`` is often much
faster than two threads (the weights then differ in their last bits).

Usage::

    .venv/bin/python examples/deep_digits.py [--workdir build/deep] [--seed 0] [--force]
        [--timesteps 128,256,512,1024] [--calib-timesteps 256] [--calib-samples 256]
        [--eval-samples N] [--nets vgg16,resnet20] [--vgg16-width 0.125]
        [--resnet20-width 0.25] [--epochs N] [--device cpu] [--threads 2]
        [--methods spike-norm,max-act] [--reset subtract] [--percentile 99.9]
        [--junction per-source|shared] [--train-samples N] [--train-only]

``--train-samples N`` trains on the first N training images only, so that the rest are a
validation split the network has never seen (``benchmarks/low_latency.py --parts choose``
scores conversion settings on the last ``--val-samples`` training images); the
mean-subtraction then uses those N images' mean. ``--train-only`` stops after training.

This file also holds the conversion and table helpers that ``examples/cifar10.py`` and
``examples/imagenet.py`` reuse.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

SIZE = 32
METHODS = ("spike-norm", "max-act")
# Per network: width multiplier, dropout, epochs and Adam learning rate that reach about
# 98-99 % on the digits test split with seed 0 in a few minutes each on two CPU cores.
NETS = {
    "vgg16": {"width": 0.125, "dropout": 0.0, "epochs": 20, "lr": 1e-3},
    "resnet20": {"width": 0.25, "dropout": 0.0, "epochs": 15, "lr": 2e-3},
}
LABELS = {"vgg16": "VGG-16", "resnet20": "ResNet-20", "resnet34": "ResNet-34"}
# Conversion settings for both methods: reset by subtraction and the 99.9th percentile
# (the paper's rule, --reset zero --percentile 100, fails on ResNet-20; see the docstring).
RESET, PERCENTILE = "subtract", 99.9
MAX_SHIFT = 3  # pixels at 32 x 32, about 3/4 of an original 8 x 8 pixel


def add_neuron_options(p: argparse.ArgumentParser, reset: str, percentile: float) -> None:
    """``--reset``, ``--percentile`` and ``--junction``, as ``snn2hw calibrate`` has them."""
    from snn2hw.cli import percentile_value
    from snn2hw.calibrate.junction import DEFAULT_JUNCTION, JUNCTIONS
    from snn2hw.hardware.profiles import RESETS

    p.add_argument("--reset", choices=RESETS, default=reset,
                   help=f"neuron reset after a spike (default {reset})")
    p.add_argument("--percentile", type=percentile_value, default=percentile,
                   help="threshold = this percentile of the positive currents/activations "
                   f"instead of the maximum, for both methods (default {percentile:g})")
    p.add_argument("--junction", choices=JUNCTIONS, default=DEFAULT_JUNCTION,
                   help="residual junction rule (default per-source; shared is the paper's); "
                   "a shared calibration is saved as <net>.<method>.shared.calib.h5")


def timesteps_list(text: str) -> list[int]:
    """``"128,256"`` -> ``[128, 256]``, for argparse."""
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"time steps must be positive integers, got {text!r}")
    return values


def methods_list(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in METHODS]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"methods are {', '.join(METHODS)}; got {text!r}")
    return values


def network_info(model: str | Path) -> dict:
    """Spiking layers, synapse hops, neurons and residual junctions of an ONNX model."""
    from snn2hw import ir
    from snn2hw.importer import import_onnx
    from snn2hw.snn import lower

    graph = import_onnx(model)
    net = lower(graph)
    return {"layers": len(net.layers), "depth": net.depth,
            "neurons": sum(layer.size for layer in net.layers),
            "junctions": sum(isinstance(n, ir.Add) for n in graph.nodes.values()),
            "params": sum(n.num_params() for n in graph.nodes.values()),
            "input_shape": tuple(graph.input_shape)}


def convert(model: str | Path, data_spec: str, *, methods: Sequence[str],
            timesteps: Sequence[int], calib_timesteps: int, calib_samples: int, seed: int,
            eval_samples: int | None = None, device: str = "cpu",
            save_dir: str | Path | None = None, reset: str = "zero",
            percentile: float = 100.0, junction: str = "per-source",
            log: Callable[[str], None] = print) -> dict[str, dict]:
    """Calibrate ``model`` with each method on ``data_spec`` (``digits`` or an .npz file),
    evaluate at every T, save ``<model>.<method>.calib.h5`` in ``save_dir`` (default: beside
    the model); the reports by method, each with the seconds it took added."""
    from snn2hw.artifacts.calibration import save_calibration
    from snn2hw.steps.options import CalibrationOptions, DataOptions, EvaluationOptions
    from snn2hw.steps.pipeline import calibrate_model

    model = Path(model)
    reports = {}
    for method in methods:
        start = time.monotonic()
        log(f"   {model.stem}: calibrate with {method} (T = {calib_timesteps}, "
            f"{calib_samples} samples), evaluate at T = {','.join(map(str, timesteps))} ...")
        art, _ = calibrate_model(
            model, data_options=DataOptions(data_spec, device=device),
            calibration=CalibrationOptions(method, calib_timesteps, calib_samples, seed,
                                           reset, percentile, junction),
            evaluation=EvaluationOptions(eval_samples, tuple(timesteps)))
        rule = "" if junction == "per-source" else f".{junction}"
        save_calibration(Path(save_dir or model.parent) / f"{model.stem}.{method}{rule}.calib.h5",
                         art)
        report = dict(art.report)
        report["seconds"] = time.monotonic() - start
        reports[method] = report
        ev = report["evaluation"]
        best = max(ev["snn_accuracy"].values())
        log(f"   {model.stem}: {method} done in {report['seconds']:.0f} s (ANN "
            f"{100 * ev['ann_accuracy']:.2f} %, best SNN {100 * best:.2f} %)")
        for warning in report.get("warnings", []):
            log(f"   warning: {warning}")
    return reports


def mean_rate(report: dict) -> float:
    """Spikes per neuron per step over the whole network (neuron-weighted) at max T."""
    total = neurons = 0
    for layer in report["layers"]:
        size = 1
        for d in layer["shape"]:
            size *= int(d)
        total += layer["spikes_per_neuron_per_step"] * size
        neurons += size
    return total / neurons if neurons else 0.0


def summary_table(rows: Sequence[tuple[str, dict, dict[str, dict]]],
                  timesteps: Sequence[int]) -> str:
    """One row per network and method: ``rows`` holds (label, network_info, reports)."""
    from snn2hw.cli.tables import percent, table

    body = []
    for label, info, reports in rows:
        for i, (method, rep) in enumerate(reports.items()):
            ev = rep["evaluation"]
            body.append([label if i == 0 else "",
                         f"{info['layers']} / {info['depth']}" if i == 0 else "",
                         percent(ev["ann_accuracy"]) if i == 0 else "", method]
                        + [percent(ev["snn_accuracy"][str(t)]) for t in timesteps]
                        + [f"{mean_rate(rep):.4f}", f"{rep['seconds']:.0f} s"])
    return table(["network", "spiking layers / hops", "ANN", "method"]
                 + [f"T={t}" for t in timesteps]
                 + [f"rate (T={max(timesteps)})", "time"], body)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=Path("build/deep"))
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--force", action="store_true", help="retrain even if a model file exists")
    p.add_argument("--nets", type=lambda s: [v.strip() for v in s.split(",") if v.strip()],
                   default=list(NETS), help="networks to run (default vgg16,resnet20)")
    p.add_argument("--vgg16-width", type=float, default=NETS["vgg16"]["width"])
    p.add_argument("--resnet20-width", type=float, default=NETS["resnet20"]["width"])
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs for every network (default: vgg16 "
                        f"{NETS['vgg16']['epochs']}, resnet20 {NETS['resnet20']['epochs']})")
    p.add_argument("--timesteps", type=timesteps_list, default=[128, 256, 512, 1024],
                   help="evaluation time steps, comma-separated (default 128,256,512,1024)")
    p.add_argument("--calib-timesteps", type=int, default=256,
                   help="time steps of the Spike-Norm calibration (default 256)")
    p.add_argument("--calib-samples", type=int, default=256,
                   help="training images used for calibration (default 256)")
    p.add_argument("--eval-samples", type=int, default=None,
                   help="test images evaluated (default: all 450)")
    add_neuron_options(p, RESET, PERCENTILE)
    p.add_argument("--methods", type=methods_list, default=list(METHODS),
                   help="calibration methods (default spike-norm,max-act)")
    p.add_argument("--device", default="cpu", help="simulator device (default cpu)")
    p.add_argument("--threads", type=int, default=2,
                   help="CPU threads for training and simulation (default 2; the trained "
                        "weights depend on it in their last bits)")
    p.add_argument("--train-samples", type=int, default=None,
                   help="train on the first N training images only (default: all 1,347); "
                        "the rest are then a held-out validation split")
    p.add_argument("--train-only", action="store_true",
                   help="stop after training (write the models, convert nothing)")
    args = p.parse_args(argv)
    unknown = [n for n in args.nets if n not in NETS]
    if unknown or not args.nets:
        p.error(f"--nets: choose from {', '.join(NETS)}; got {','.join(args.nets) or '(none)'}")
    if args.epochs is not None and args.epochs < 1:
        p.error(f"--epochs must be at least 1, got {args.epochs}")
    if min(args.calib_timesteps, args.calib_samples) < 1:
        p.error("--calib-timesteps and --calib-samples must be positive")
    if args.eval_samples is not None and args.eval_samples < 1:
        p.error("--eval-samples must be positive")
    if min(args.vgg16_width, args.resnet20_width) <= 0:
        p.error("widths must be positive")
    if args.threads < 1:
        p.error("--threads must be at least 1")
    if args.train_samples is not None and args.train_samples < 1:
        p.error("--train-samples must be positive")
    return args


def build(net: str, width: float, dropout: float, seed: int):
    """The digits variant of ``net`` (1 channel, 32 x 32, 10 classes), seeded weights."""
    import torch

    from snn2hw import models

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return models.BUILDERS[net](num_classes=10, in_channels=1, input_size=SIZE,
                                    width=width, dropout=dropout)


def _check_existing(path: Path, model) -> str | None:
    """Why an existing file does not fit the requested network, or None if it does."""
    from snn2hw.errors import Snn2hwError

    try:
        info = network_info(path)
    except Snn2hwError as exc:
        return f"is not a usable model ({exc.message})"
    params = sum(p.numel() for p in model.parameters())
    if info["input_shape"] != (1, SIZE, SIZE) or info["params"] != params:
        return (f"has input {info['input_shape']} and {info['params']} parameters, not "
                f"(1, {SIZE}, {SIZE}) and {params} (another width?)")
    return None


def train_or_reuse(net: str, args, data, pre, dv, log=print) -> Path:
    from snn2hw import models

    settings = NETS[net]
    width = getattr(args, f"{net}_width")
    path = args.workdir / f"{net}.onnx"
    model = build(net, width, settings["dropout"], args.seed)
    if path.exists() and not args.force:
        why = _check_existing(path, model)
        if why:
            print(f"error: {path} exists but {why}; use --force to retrain", file=sys.stderr)
            raise SystemExit(2)
        log(f"   reused existing {path} (use --force to retrain)")
        return path
    epochs = args.epochs or settings["epochs"]
    params = sum(p.numel() for p in model.parameters())
    log(f"   training {LABELS[net]} (width {width}, {params} parameters) for {epochs} "
        f"epochs, Adam lr {settings['lr']}, seed {args.seed}")
    result = dv.train(model, data, epochs=epochs, seed=args.seed, lr=settings["lr"],
                      max_shift=MAX_SHIFT, blank=-pre.mean[0],
                      log=lambda line: log("     " + line))
    models.export_onnx(model, path, (1, SIZE, SIZE), pre, "digits")
    log(f"   {LABELS[net]}: ANN test accuracy {100 * result.test_accuracy:.2f} %, trained in "
        f"{result.seconds:.0f} s -> {path}")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    start = time.monotonic()
    import torch

    import digits_vgg as dv
    dv.THREADS = args.threads  # digits_vgg.train sets this thread count
    torch.set_num_threads(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    data, pre = dv.prepare_data(SIZE, args.train_samples)
    print(f"== 1. train or reuse: digits at {SIZE}x{SIZE}, {len(data.x_train)} train / "
          f"{len(data.x_test)} test images, mean {pre.mean[0]:.4f}, seed {args.seed}")
    paths = {net: train_or_reuse(net, args, data, pre, dv) for net in args.nets}
    trained = time.monotonic()
    if args.train_only:
        return 0

    print(f"\n== 2. convert to spiking networks ({', '.join(args.methods)})")
    rows = []
    for net, path in paths.items():
        info = network_info(path)
        print(f"   {LABELS[net]}: {info['layers']} spiking layers, {info['depth']} hops, "
              f"{info['neurons']} neurons, {info['junctions']} residual junctions")
        reports = convert(path, "digits", methods=args.methods, timesteps=args.timesteps,
                          calib_timesteps=args.calib_timesteps,
                          calib_samples=args.calib_samples, seed=args.seed,
                          eval_samples=args.eval_samples, device=args.device,
                          reset=args.reset, percentile=args.percentile,
                          junction=args.junction)
        rows.append((LABELS[net], info, reports))

    samples = rows[0][2][args.methods[0]]["evaluation"]["samples"]
    print(f"\n== Summary: digits {SIZE}x{SIZE} test split ({samples} images), seed "
          f"{args.seed}; calibration T = {args.calib_timesteps} on {args.calib_samples} "
          "training images")
    print(summary_table(rows, args.timesteps))
    end = time.monotonic()
    print(f"\ntrain/reuse {trained - start:.0f} s, convert {end - trained:.0f} s, "
          f"total {end - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
