"""SpikingJelly's ann2snn (``RateCodingRecipe``) on the same ANN, with its own conventions.

Conversion: ``ann2snn.FXConverter(RateCodingRecipe(dataloader, mode="99.9%"))``: each
ReLU becomes an IF neuron (threshold 1, soft reset: subtract) between two scalers, with the
scale the 99.9th percentile of that ReLU's activations on the calibration batches (the
whole calibration set in as few batches as ``torch.quantile`` takes; SpikingJelly's
running average joins them). Input: the analog image, every step. Read-out: the last
layer has no neuron; the class is the argmax of its summed analog output. No hop delay.
Accuracy at every T comes from the running sums of one causal run.
"""
from __future__ import annotations

import copy
import time
from typing import Sequence

import numpy as np
import torch

QUANTILE_LIMIT = 2 ** 24 - 1  # torch.quantile refuses larger inputs


def calibration_batches(x_cal: np.ndarray, widest: int) -> list[torch.Tensor]:
    """The calibration set in the fewest batches whose widest activation fits
    ``torch.quantile``."""
    per = max(1, QUANTILE_LIMIT // max(widest, 1))
    return [torch.as_tensor(np.asarray(x_cal[i:i + per], dtype=np.float32))
            for i in range(0, len(x_cal), per)]


def convert(model: torch.nn.Module, x_cal: np.ndarray, widest: int,
            percentile: float = 99.9) -> torch.nn.Module:
    from spikingjelly.activation_based import ann2snn

    recipe = ann2snn.RateCodingRecipe(dataloader=calibration_batches(x_cal, widest),
                                      mode=f"{percentile:g}%")
    return ann2snn.FXConverter(recipe=recipe, device="cpu").convert(copy.deepcopy(model))


def run(snn: torch.nn.Module, x: np.ndarray, timesteps: int, checkpoints: Sequence[int],
        batch: int, mode: str = "s", time_chunk: int = 64) -> dict[int, np.ndarray]:
    """Summed outputs (N, classes) at each checkpoint. ``mode`` "s": one call per step;
    "m": multi-step calls on (steps, batch, ...) inputs, ``time_chunk`` steps at a time
    (the neuron state carries over between calls)."""
    from spikingjelly.activation_based import functional

    functional.set_step_mode(snn, mode)
    points = sorted(set(checkpoints) | {timesteps})
    out = {t: [] for t in points}
    with torch.no_grad():
        for start in range(0, len(x), batch):
            xb = torch.as_tensor(np.asarray(x[start:start + batch], dtype=np.float32))
            functional.reset_net(snn)
            total = 0
            for t0 in range(0, timesteps, 1 if mode == "s" else time_chunk):
                steps = 1 if mode == "s" else min(time_chunk, timesteps - t0)
                if mode == "s":
                    sums = (total + snn(xb)).unsqueeze(0)
                else:
                    y = snn(xb.unsqueeze(0).expand(steps, *xb.shape).contiguous())
                    sums = total + torch.cumsum(y, dim=0)
                for t in points:
                    if t0 < t <= t0 + steps:
                        out[t].append(sums[t - t0 - 1].numpy().copy())
                total = sums[-1]
    functional.set_step_mode(snn, "s")
    return {t: np.concatenate(v) for t, v in out.items()}


def throughput(snn: torch.nn.Module, x: np.ndarray, timesteps: int, batch: int,
               mode: str) -> float:
    """Seconds to simulate ``x`` for ``timesteps`` steps."""
    start = time.perf_counter()
    run(snn, x, timesteps, [], batch, mode)
    return time.perf_counter() - start
