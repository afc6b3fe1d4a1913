"""Train a small VGG-style network on scikit-learn's digits and export it to ONNX.

The network obeys the conversion constraints of Sengupta et al. 2019 ("Going Deeper in
Spiking Neural Networks"): ReLU is the only non-linearity (it maps onto integrate-and-fire
neurons), no conv/linear layer has a bias (a bias would be a constant input current the
threshold balancing does not account for), pooling is average pooling (max pooling has no
simple spiking equivalent) and there is no BatchNorm. Dropout is used for regularisation; it
is the identity in the exported (eval-mode) graph.

Input preprocessing is mean subtraction only (std = 1.0), as in the paper: with pixels in
[0, 1] the preprocessed input stays within [-1, 1], so it can be used directly as a spike
probability per time step by a rate (Poisson) encoder. Dividing by the training std
(about 0.4 here) would push inputs beyond 1 and saturate such an encoder.

Usage::

    python examples/digits_vgg.py -o build/demo/digits_vgg.onnx [--size 16] [--epochs N]
                                  [--seed 0] [--force]

An existing output file is reused unless ``--force`` is given, so a demo can call this to
"train or reuse". Training is seeded and deterministic: the same command on the same
software gives the same weights, accuracy and ONNX bytes.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import onnx
import torch
from torch import nn

from snn2hw.data import Dataset, Preprocess, digits

NUM_CLASSES = 10
DEFAULT_SIZE = 16
DEFAULT_EPOCHS = 30
DEFAULT_WIDTHS = (16, 32)
# Same thread count every run: CPU kernels may reduce in a different order with another
# count, which would change the low bits of the weights and break reproducibility.
THREADS = 2


def build_model(size: int = DEFAULT_SIZE, widths: Sequence[int] = DEFAULT_WIDTHS,
                dropout: float = 0.2, seed: int | None = 0) -> nn.Sequential:
    """The VGG-style network for ``size`` x ``size`` one-channel input.

    Two blocks of (conv3x3, ReLU, conv3x3, ReLU, avgpool2, dropout), then one bias-free
    linear layer to the 10 logits. ``seed`` fixes the initial weights (the global torch RNG
    is left untouched); ``None`` uses the current global RNG state.
    """
    if size < 4 or size % 4:
        raise ValueError(f"size must be a positive multiple of 4 (two 2x2 poolings), got {size}")
    if len(widths) != 2 or min(widths) < 1:
        raise ValueError(f"widths must be two positive channel counts, got {tuple(widths)}")
    w1, w2 = (int(w) for w in widths)

    def make() -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(1, w1, 3, padding=1, bias=False), nn.ReLU(),
            nn.Conv2d(w1, w1, 3, padding=1, bias=False), nn.ReLU(),
            nn.AvgPool2d(2), nn.Dropout(dropout),
            nn.Conv2d(w1, w2, 3, padding=1, bias=False), nn.ReLU(),
            nn.Conv2d(w2, w2, 3, padding=1, bias=False), nn.ReLU(),
            nn.AvgPool2d(2), nn.Dropout(dropout),
            nn.Flatten(),
            nn.Linear(w2 * (size // 4) ** 2, NUM_CLASSES, bias=False),
        )

    if seed is None:
        return make()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def prepare_data(size: int = DEFAULT_SIZE,
                 train_samples: int | None = None) -> tuple[Dataset, Preprocess]:
    """The digits split at ``size`` x ``size``, mean-subtracted with the training-set mean;
    with ``train_samples``, only the first that many training images (and their mean)."""
    raw = digits((1, size, size))
    x_train, y_train = raw.x_train[:train_samples], raw.y_train[:train_samples]
    # float64 sum so the mean (and thus the metadata and ONNX bytes) is the same every run.
    mean = float(np.mean(x_train, dtype=np.float64))
    pre = Preprocess(mean=(mean,), std=(1.0,))
    data = Dataset(raw.name, pre.apply(x_train), y_train, pre.apply(raw.x_test),
                   raw.y_test)
    return data, pre


def _shift(x: torch.Tensor, max_shift: int, gen: torch.Generator,
           fill: float) -> torch.Tensor:
    """Shift each image by up to ``max_shift`` pixels in each direction.

    The border is filled with ``fill`` (the preprocessed value of a blank pixel), so that a
    shifted digit looks like one drawn off-centre rather than one framed by a dark edge.
    """
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (max_shift,) * 4, value=fill)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=gen)
    out = torch.empty_like(x)
    for i, (dy, dx) in enumerate(offsets.tolist()):
        out[i] = padded[i, :, dy:dy + h, dx:dx + w]
    return out


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` (put in eval mode) on preprocessed ``x``."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(torch.from_numpy(x[start:start + batch_size]))
            correct += int((logits.argmax(1).numpy() == y[start:start + batch_size]).sum())
    return correct / len(x)


class TrainResult(NamedTuple):
    # A NamedTuple, not a dataclass: dataclasses look their module up in sys.modules, which
    # fails when this file is loaded with importlib without being registered there.
    test_accuracy: float
    seconds: float
    history: list[dict]


def train(model: nn.Module, data: Dataset, *, epochs: int = DEFAULT_EPOCHS, seed: int = 0,
          batch_size: int = 32, lr: float = 2e-3, max_shift: int = 1, blank: float = 0.0,
          log: Callable[[str], None] | None = print) -> TrainResult:
    """Train ``model`` in place with Adam and a one-cycle (warm-up, then cosine) learning rate.

    ``data`` must already be preprocessed; ``blank`` is the preprocessed value of an empty
    pixel (``-mean``), used to fill the border of shifted images. Shuffling, augmentation
    and dropout draw from generators seeded with ``seed``, so a run is repeatable.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    torch.set_num_threads(THREADS)
    x_train = torch.from_numpy(data.x_train)
    y_train = torch.from_numpy(data.y_train)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = (len(x_train) + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=epochs,
                                                steps_per_epoch=steps_per_epoch,
                                                pct_start=0.15)
    loss_fn = nn.CrossEntropyLoss()
    history: list[dict] = []
    start = time.perf_counter()
    # Dropout uses the global RNG; fork it so the caller's RNG state is not disturbed.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for epoch in range(1, epochs + 1):
            model.train()
            order = torch.randperm(len(x_train), generator=gen)
            total, correct, seen = 0.0, 0, 0
            for i in range(0, len(order), batch_size):
                idx = order[i:i + batch_size]
                xb = _shift(x_train[idx], max_shift, gen, blank)
                yb = y_train[idx]
                logits = model(xb)
                loss = loss_fn(logits, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
                correct += int((logits.argmax(1) == yb).sum())
                seen += len(idx)
            test_acc = accuracy(model, data.x_test, data.y_test)
            row = {"epoch": epoch, "loss": total / seen, "train_acc": correct / seen,
                   "test_acc": test_acc}
            history.append(row)
            if log:
                log(f"epoch {epoch:3d}/{epochs}  loss {row['loss']:.4f}  "
                    f"train {row['train_acc']:.2%}  test {test_acc:.2%}")
    seconds = time.perf_counter() - start
    model.eval()
    return TrainResult(history[-1]["test_acc"], seconds, history)


def export_onnx(model: nn.Module, path: str | Path, size: int, preprocess: Preprocess,
                dataset: str = "digits") -> Path:
    """Export ``model`` to ONNX (opset 17) with snn2hw metadata, written atomically."""
    from snn2hw.models import export_onnx as export

    return export(model, path, (1, size, size), preprocess, dataset)


def _existing_size(path: Path) -> int | None:
    """Input height of an existing model file, or None if it is unreadable."""
    try:
        model = onnx.load(str(path), load_external_data=False)
        dims = model.graph.input[0].type.tensor_type.shape.dim
        return int(dims[2].dim_value) if len(dims) == 4 else None
    except Exception:  # any unreadable file is reported the same way by the caller
        return None


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", required=True, type=Path, help="ONNX file to write")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE,
                   help=f"input height and width, a multiple of 4 (default {DEFAULT_SIZE})")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                   help=f"training epochs (default {DEFAULT_EPOCHS})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--force", action="store_true", help="retrain even if the output exists")
    args = p.parse_args(argv)
    if args.size < 4 or args.size % 4:
        p.error(f"--size must be a positive multiple of 4, got {args.size}")
    if args.epochs < 1:
        p.error(f"--epochs must be at least 1, got {args.epochs}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    out: Path = args.output
    if out.exists() and not args.force:
        found = _existing_size(out)
        if found != args.size:
            what = "is not a readable image model" if found is None else f"is {found}x{found}"
            print(f"error: {out} exists but {what}, not {args.size}x{args.size}; "
                  "use --force to retrain", file=sys.stderr)
            return 2
        print(f"reused existing model {out} (use --force to retrain)")
        return 0
    torch.set_num_threads(THREADS)
    data, pre = prepare_data(args.size)
    model = build_model(args.size, seed=args.seed)
    print(f"training on digits {args.size}x{args.size}: {len(data.x_train)} train / "
          f"{len(data.x_test)} test, mean {pre.mean[0]:.4f}, std 1.0, seed {args.seed}")
    result = train(model, data, epochs=args.epochs, seed=args.seed, blank=-pre.mean[0])
    export_onnx(model, out, args.size, pre)
    print(f"test accuracy {result.test_accuracy:.2%}, trained in {result.seconds:.1f} s")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
