"""The accuracy cost of ``--maxpool avg`` on a trained network: a small digits CNN with two
3x3 stride-2 max pools (a branch concatenation, input normalisation in ``forward``) is
trained here with max pooling, exported with the TorchScript exporter, and calibrated with
``snn2hw calibrate --maxpool avg``, which prints the ANN accuracy with average pooling next
to the original's (onnxruntime) on the whole digits test split.

    .venv/bin/python benchmarks/maxpool_cost.py [--epochs 30] [--seed 0] [--out build/maxpool]

Same command, same numbers (seeded training on the CPU, one thread).
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path


def build(seed: int):
    import torch
    from torch import nn

    class MaxPoolNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(0.3))
            self.register_buffer("std", torch.tensor(0.4))
            self.a = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU())
            self.b = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                                   nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
            self.pool1 = nn.MaxPool2d(3, 2, padding=1)
            self.c = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.fc = nn.Linear(16 * 2 * 2, 10)

        def forward(self, x):
            x = (x - self.mean) / self.std
            y = self.pool1(torch.cat([self.a(x), self.b(x)], 1))
            return self.fc(torch.flatten(self.pool2(self.c(y)), 1))

    torch.manual_seed(seed)
    return MaxPoolNet()


def train(model, x, y, epochs: int, seed: int) -> None:
    import torch

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y, dtype=torch.long)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="build/maxpool")
    args = parser.parse_args(argv)

    import torch

    from snn2hw import data
    from snn2hw.cli import main as snn2hw

    torch.set_num_threads(1)
    ds = data.load("digits", (1, 8, 8), 10, data.Preprocess())
    model = build(args.seed)
    train(model, ds.x_train, ds.y_train, args.epochs, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "maxpool_digits.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False,
                          opset_version=17, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    command = ["calibrate", str(path), "--data", "digits", "--maxpool", "avg",
               "--timesteps", "64", "--samples", "128", "--seed", str(args.seed),
               "-o", str(out / "maxpool_digits.calib.h5")]
    print("snn2hw " + " ".join(command))
    return snn2hw(command)


if __name__ == "__main__":
    raise SystemExit(main())
