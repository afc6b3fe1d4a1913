"""Reproduce the paper's CIFAR-10 experiments: VGG-16 or ResNet-20, converted with Spike-Norm.

Sengupta et al. 2019 train VGG-16 and ResNet-20 on CIFAR-10 without BatchNorm and without
biases, with average pooling and dropout, convert them with Spike-Norm and simulate the
spiking network for 2,500 time steps. This script does the same with the builders of
:mod:`snn2hw.models`: it trains the network (or loads one with ``--model``), exports it to
ONNX with its preprocessing, calibrates it with Spike-Norm (and optionally max-act) and
prints the ANN accuracy and the SNN accuracy at every T of ``--timesteps``, in the table
of ``examples/deep_digits.py``. A GPU is needed for the paper's sizes; ``--width`` and
``--epochs`` shrink the run.

Usage::

    python examples/cifar10.py --data cifar10.npz [--arch vgg16|resnet20]
        [--model trained.onnx] [-o model.onnx] [--force] [--width 1.0] [--epochs 100]
        [--batch-size 128] [--optimizer adam|sgd] [--lr LR] [--weight-decay WD]
        [--dropout P] [--batchnorm] [--bias] [--device auto|cpu|cuda] [--amp] [--seed 0]
        [--workdir build/cifar10] [--timesteps 2500] [--methods spike-norm]
        [--reset zero|subtract] [--percentile 100]
        [--calib-timesteps 512] [--calib-samples 256] [--eval-samples N]

``--reset`` and ``--percentile`` default to the paper's Spike-Norm (reset to zero, the
maximum current); ``--reset subtract --percentile 99.9`` is what converts ResNet-20 on
digits within 1,024 steps (see ``examples/deep_digits.py``).

Data (``--data``): an .npz file with ``x`` of shape (N, 3, 32, 32), uint8 (0-255) or float,
and ``y`` (N,) integer labels in [0, 10); ``x_test``/``y_test`` are the test split if
present, otherwise the last 25 % of ``x`` is (snn2hw's ``--data file.npz`` rules). From the
official "CIFAR-10 python version" archive::

    import pickle, numpy as np
    def part(f):
        d = pickle.load(open(f, "rb"), encoding="bytes")
        return d[b"data"].reshape(-1, 3, 32, 32), np.array(d[b"labels"])
    train = [part(f"cifar-10-batches-py/data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = part("cifar-10-batches-py/test_batch")
    np.savez("cifar10.npz", x=np.concatenate([p[0] for p in train]),
             y=np.concatenate([p[1] for p in train]), x_test=x_test, y_test=y_test)

Training: preprocessing is ``(x - mean) / std`` per channel with the training set's
statistics, in the file's units; it is stored in the ONNX metadata, so ``snn2hw`` commands
apply it too. Augmentation: random crops (zero padding of size/8) and horizontal flips.
Optimiser: Adam (default, lr 1e-3, no weight decay) or SGD with Nesterov momentum 0.9
(lr 0.05, weight decay 5e-4), one-cycle learning-rate schedule. ``--amp`` trains in
bfloat16 autocast on a GPU. Runs are seeded; on a CPU they are repeatable, on a GPU only
up to the non-determinism of its kernels. The model is written to ``-o`` (default
``WORKDIR/<arch>.onnx``) with the ``--data`` file as its data set (``snn2hw.dataset``), so
``snn2hw export``/``run`` find the data by themselves; an existing file is refused unless
``--force`` (retrain) is given: pass it as ``--model`` to convert it again without training.

Conversion: the calibration images (``--calib-samples``, a seeded random choice from the
training split) and the evaluation images (``--eval-samples``, a seeded random choice from
the test split; all by default) are written to ``WORKDIR/<model>.subset.npz`` and given to
``snn2hw.steps.pipeline.calibrate_model``; the calibrations are saved as
``WORKDIR/<model>.<method>.calib.h5`` (for ``snn2hw export --calibration``). Spike-Norm
keeps the spike trains still to be read bit-packed in memory: ``calib-timesteps x
calib-samples x neurons / 8`` bytes per layer (65,536 neurons for full-width VGG-16: 1.07 GB
at the defaults; a layer and its sources are held at a time in a chain), plus blocks of at
most 64 MiB per float tensor on the simulator's device (README, "Calibration"). The
evaluation costs ``max(timesteps) x eval-samples`` network passes.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np

import deep_digits  # a sibling script: examples/ is on sys.path

NUM_CLASSES = 10
INPUT_SHAPE = (3, 32, 32)
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.05}
DEFAULT_WEIGHT_DECAY = {"adam": 0.0, "sgd": 5e-4}



def add_arguments(p: argparse.ArgumentParser, *, archs: Sequence[str], epochs: int,
                  workdir: str, eval_samples: int | None) -> None:
    """The options cifar10.py and imagenet.py share."""
    p.add_argument("--arch", choices=list(archs), default=archs[0],
                   help=f"network to train (default {archs[0]})")
    p.add_argument("--model", type=Path, default=None,
                   help="convert this trained ONNX model instead of training one")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="ONNX file for the trained model (default WORKDIR/<arch>.onnx)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --output")
    p.add_argument("--workdir", type=Path, default=Path(workdir))
    p.add_argument("--width", type=float, default=1.0,
                   help="channel width multiplier (default 1.0, the paper's size)")
    p.add_argument("--epochs", type=int, default=epochs, help=f"default {epochs}")
    p.add_argument("--batch-size", type=int, default=128, help="default 128")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default 1e-3 for adam, 0.05 for sgd)")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="default 0 for adam, 5e-4 for sgd")
    p.add_argument("--dropout", type=float, default=None,
                   help="dropout probability (default: 0.2 for vgg16, 0 for ResNets)")
    p.add_argument("--batchnorm", action="store_true",
                   help="BatchNorm after every conv (snn2hw folds it)")
    p.add_argument("--bias", action="store_true", help="biases in conv and linear layers")
    p.add_argument("--device", default="auto",
                   help="training and simulation device: auto (cuda if available), cpu, cuda")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast while training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timesteps", type=deep_digits.timesteps_list, default=[2500],
                   help="evaluation time steps, comma-separated (default 2500, the paper's)")
    p.add_argument("--methods", type=deep_digits.methods_list, default=["spike-norm"],
                   help="calibration methods, comma-separated (default spike-norm; "
                        "spike-norm,max-act compares both)")
    deep_digits.add_neuron_options(p, "zero", 100.0)  # the paper's Spike-Norm by default
    p.add_argument("--calib-timesteps", type=int, default=512,
                   help="time steps of the Spike-Norm calibration (default 512)")
    p.add_argument("--calib-samples", type=int, default=256,
                   help="training images used for calibration (default 256)")
    p.add_argument("--eval-samples", type=int, default=eval_samples,
                   help="test images evaluated (default "
                        f"{'all' if eval_samples is None else eval_samples})")


def check_arguments(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.width <= 0:
        p.error(f"--width must be positive, got {args.width}")
    for name in ("epochs", "batch_size", "calib_timesteps", "calib_samples"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.eval_samples is not None and args.eval_samples < 1:
        p.error("--eval-samples must be positive")
    if args.dropout is not None and not 0 <= args.dropout < 1:
        p.error(f"--dropout must lie in [0, 1), got {args.dropout}")
    if args.model is not None and not args.model.is_file():
        p.error(f"--model {args.model}: no such file")
    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")


def channel_preprocess(x: np.ndarray):
    """Per-channel mean and std of ``x`` (N, C, H, W), in float64, chunk by chunk."""
    from snn2hw.data import Preprocess

    total = np.zeros(x.shape[1])
    squares = np.zeros(x.shape[1])
    for start in range(0, len(x), 1024):
        chunk = np.asarray(x[start:start + 1024], dtype=np.float64)  # lazy: read
        total += chunk.sum(axis=(0, 2, 3))
        squares += (chunk ** 2).sum(axis=(0, 2, 3))
    count = len(x) * x.shape[2] * x.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    std = np.where(std > 0, std, 1.0)
    return Preprocess(tuple(float(v) for v in mean), tuple(float(v) for v in std))


def augment(x, gen, pad: int, flip: bool):
    """Random crops of zero-padded images (zero = the mean pixel after preprocessing) and
    random horizontal flips, drawn from the CPU generator ``gen``."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad))
        offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen).to(x.device)
        rows = (offsets[:, :1] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (offsets[:, 1:] + torch.arange(w, device=x.device))[:, None, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = padded[batch, chan, rows, cols]
    if flip:
        mask = (torch.rand(n, generator=gen) < 0.5).to(x.device)[:, None, None, None]
        x = torch.where(mask, x.flip(3), x)
    return x


class TrainResult(NamedTuple):
    test_accuracy: float
    seconds: float


def train_classifier(model, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                     y_test: np.ndarray, preprocess, *, epochs: int, batch_size: int = 128,
                     optimizer: str = "adam", lr: float | None = None,
                     weight_decay: float | None = None, device: str = "cpu", seed: int = 0,
                     amp: bool = False, crop_pad: int | None = None, flip: bool = True,
                     log: Callable[[str], None] | None = print) -> TrainResult:
    """Train ``model`` in place on raw images (any dtype, preprocessed per batch on the
    device); returns the final test accuracy. See the module docstring for the recipe."""
    import torch
    from torch import nn

    dev = torch.device(device)
    model.to(dev)
    mean = torch.tensor(preprocess.mean, dtype=torch.float32, device=dev).view(1, -1, 1, 1)
    std = torch.tensor(preprocess.std, dtype=torch.float32, device=dev).view(1, -1, 1, 1)

    def prepare(xb: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(np.ascontiguousarray(xb)).to(dev).float() - mean) / std

    lr = DEFAULT_LR[optimizer] if lr is None else lr
    wd = DEFAULT_WEIGHT_DECAY[optimizer] if weight_decay is None else weight_decay
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True,
                              weight_decay=wd)
    n = len(x_train)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=epochs,
                                                steps_per_epoch=math.ceil(n / batch_size),
                                                pct_start=0.15)
    pad = x_train.shape[-1] // 8 if crop_pad is None else crop_pad
    gen = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    torch.manual_seed(seed)  # dropout
    start = time.perf_counter()
    test_acc = 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen).numpy()
        total, correct, seen = 0.0, 0, 0
        for i in range(0, n, batch_size):
            idx = np.sort(order[i:i + batch_size])
            if len(idx) < 2:  # BatchNorm cannot train on one image; the schedule steps on
                sched.step()
                continue
            xb = augment(prepare(x_train[idx]), gen, pad, flip)
            yb = torch.from_numpy(y_train[idx].astype(np.int64)).to(dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(xb)
            loss = loss_fn(logits.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
        test_acc = accuracy(model, x_test, y_test, prepare, batch_size=2 * batch_size)
        if log:
            log(f"epoch {epoch:3d}/{epochs}  loss {total / max(seen, 1):.4f}  "
                f"train {100 * correct / max(seen, 1):.2f} %  test {100 * test_acc:.2f} %  "
                f"({time.perf_counter() - start:.0f} s)")
    model.eval()
    return TrainResult(test_acc, time.perf_counter() - start)


def accuracy(model, x: np.ndarray, y: np.ndarray, prepare, batch_size: int = 256) -> float:
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(prepare(x[start:start + batch_size]))
            correct += int((logits.argmax(1).cpu().numpy() == y[start:start + batch_size]).sum())
    return correct / max(len(x), 1)


def write_subset(path: Path, x_train, y_train, x_test, y_test, calib_samples: int,
                 eval_samples: int | None, seed: int) -> Path:
    """The calibration images (a seeded random choice of the training split) as x/y and the
    evaluation images (a random choice of the test split, or all of it) as x_test/y_test,
    in their original units and dtype, written atomically."""
    from snn2hw.errors import DataError
    from snn2hw.fileio import atomic_path

    if calib_samples > len(x_train):
        raise DataError(f"{calib_samples} calibration samples asked for, but the training "
                        f"split has only {len(x_train)}")
    if eval_samples is not None and eval_samples > len(x_test):
        raise DataError(f"{eval_samples} evaluation samples asked for, but the test split "
                        f"has only {len(x_test)}")
    rng = np.random.default_rng([seed, 2])
    cal = np.sort(rng.choice(len(x_train), calib_samples, replace=False))
    ev = (np.arange(len(x_test)) if eval_samples is None
          else np.sort(rng.choice(len(x_test), eval_samples, replace=False)))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, x=x_train[cal], y=y_train[cal].astype(np.int64), x_test=x_test[ev],
                 y_test=y_test[ev].astype(np.int64))
    return path


def model_shape(model: Path) -> tuple[tuple[int, ...], int]:
    """Input shape and number of classes of an ONNX model."""
    from snn2hw.importer import import_onnx
    from snn2hw.steps.pipeline import num_classes

    graph = import_onnx(model)
    return tuple(graph.input_shape), num_classes(graph)


def reproduce(args: argparse.Namespace, data, input_shape: tuple[int, ...], classes: int,
              data_name: str, dataset_file: str | None = None,
              log: Callable[[str], None] = print) -> int:
    """Train (unless ``args.model``), export, convert, print the table. ``data`` is an
    snn2hw ``Dataset`` of raw images of ``input_shape``; ``dataset_file`` is stored as the
    model's ``snn2hw.dataset`` (default: the subset file written for the conversion)."""
    import torch

    from snn2hw import models

    start = time.monotonic()
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.model or args.output or args.workdir / f"{args.arch}.onnx"
    if args.model is None and path.exists() and not args.force:
        print(f"error: {path} exists; pass it as --model to convert it, or --force to "
              "retrain", file=sys.stderr)
        return 2
    subset = write_subset(args.workdir / f"{path.stem}.subset.npz", data.x_train, data.y_train,
                          data.x_test, data.y_test, args.calib_samples, args.eval_samples,
                          args.seed)
    if args.model is not None:
        log(f"== 1. convert the existing model {path}")
    else:
        pre = channel_preprocess(data.x_train)
        kwargs = {} if args.dropout is None else {"dropout": args.dropout}
        torch.manual_seed(args.seed)
        model = models.BUILDERS[args.arch](
            num_classes=classes, in_channels=input_shape[0], input_size=input_shape[1],
            width=args.width, batchnorm=args.batchnorm, bias=args.bias, **kwargs)
        params = sum(p.numel() for p in model.parameters())
        log(f"== 1. train {args.arch} (width {args.width}, {params} parameters, "
            f"batchnorm {args.batchnorm}, bias {args.bias}) on {data_name}: "
            f"{len(data.x_train)} train / {len(data.x_test)} test images "
            f"{'x'.join(map(str, input_shape))}, {args.epochs} epochs, {args.optimizer}, "
            f"device {args.device}, seed {args.seed}")
        result = train_classifier(model, data.x_train, data.y_train, data.x_test, data.y_test,
                                  pre, epochs=args.epochs, batch_size=args.batch_size,
                                  optimizer=args.optimizer, lr=args.lr,
                                  weight_decay=args.weight_decay, device=args.device,
                                  seed=args.seed, amp=args.amp,
                                  log=lambda line: log("   " + line))
        models.export_onnx(model.cpu(), path, input_shape, pre,
                           dataset_file or str(subset.resolve()))
        log(f"   ANN test accuracy {100 * result.test_accuracy:.2f} %, trained in "
            f"{result.seconds:.0f} s -> {path}")
    trained = time.monotonic()

    info = deep_digits.network_info(path)
    log(f"\n== 2. convert: {info['layers']} spiking layers, {info['depth']} hops, "
        f"{info['neurons']} neurons, {info['junctions']} residual junctions; "
        f"calibration and evaluation images in {subset}")
    reports = deep_digits.convert(path, str(subset), methods=args.methods,
                                  timesteps=args.timesteps,
                                  calib_timesteps=args.calib_timesteps,
                                  calib_samples=args.calib_samples, seed=args.seed,
                                  device=args.device, save_dir=args.workdir, log=log,
                                  reset=args.reset, percentile=args.percentile,
                                  junction=args.junction)
    samples = next(iter(reports.values()))["evaluation"]["samples"]
    log(f"\n== Summary: {data_name} test images ({samples}), seed {args.seed}; calibration "
        f"T = {args.calib_timesteps} on {args.calib_samples} training images")
    label = deep_digits.LABELS.get(args.arch, args.arch) if args.model is None else path.stem
    log(deep_digits.summary_table([(label, info, reports)], args.timesteps))
    end = time.monotonic()
    log(f"\ntrain {trained - start:.0f} s, convert {end - trained:.0f} s, total "
        f"{end - start:.0f} s")
    return 0


def run(main: Callable[[], int]) -> int:
    """Run ``main`` with snn2hw's error convention: one ``error:`` line, exit code."""
    from snn2hw.errors import Snn2hwError

    try:
        return main()
    except Snn2hwError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True,
                   help="cifar10.npz: x (N, 3, 32, 32) uint8 or float, y (N,)")
    p.add_argument("--classes", type=int, default=NUM_CLASSES,
                   help=f"number of classes (default {NUM_CLASSES})")
    add_arguments(p, archs=("vgg16", "resnet20"), epochs=100, workdir="build/cifar10",
                  eval_samples=None)
    args = p.parse_args(argv)
    check_arguments(p, args)

    def go() -> int:
        from snn2hw.data import from_npz

        shape, classes = (model_shape(args.model) if args.model is not None
                          else (INPUT_SHAPE, args.classes))
        data = from_npz(args.data, shape, classes)
        return reproduce(args, data, shape, classes, args.data.name,
                         dataset_file=str(args.data.resolve()))

    return run(go)


if __name__ == "__main__":
    sys.exit(main())
