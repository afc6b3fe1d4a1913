"""sinabs on the same ANN, as its conversion tutorial does it.

Conversion: ``sinabs.utils.normalize_weights`` (layer by layer, each Conv/Linear divided by
the ``percentile`` (default 99.99) of its ReLU's outputs on the calibration set, zeros
included; the last Linear by the percentile of its own output), then
``sinabs.from_model(add_spiking_output=True)``: IAF neurons with sinabs' defaults
(threshold 1, ``MultiSpike``: several spikes per step where the potential allows,
``MembraneSubtract`` reset, potential floored at -1) and a spiking output layer. Input:
snn2hw's signed Poisson encoder (the same spike trains as ours; a spike stands for the
calibration set's largest |pixel|, folded into the first layer's weights). Read-out:
output spike counts (ties to the lowest class, as ours). No hop delay. Accuracy at every T
comes from one causal run, ``time_chunk`` steps per call (the state carries over).
"""
from __future__ import annotations

import copy
import time
from typing import Sequence

import numpy as np
import torch
from torch import nn


def normalisation_layers(model: nn.Sequential) -> tuple[list[str], list[str]]:
    """(param_layers, output_layers) for ``normalize_weights``: every Conv/Linear and the
    ReLU right after it (or the layer itself where none follows, i.e. the classifier)."""
    names = [name for name, _ in model.named_children()]
    kids = dict(model.named_children())
    params, outputs = [], []
    for i, name in enumerate(names):
        if isinstance(kids[name], (nn.Conv2d, nn.Linear)):
            nxt = names[i + 1] if i + 1 < len(names) else None
            params.append(name)
            outputs.append(nxt if nxt and isinstance(kids[nxt], nn.ReLU) else name)
    return params, outputs


def convert(model: nn.Sequential, x_cal: np.ndarray, input_scale: float,
            percentile: float = 99.99, batch: int = 64) -> nn.Module:
    import sinabs
    from sinabs.utils import normalize_weights

    ann = copy.deepcopy(model)
    first = next(m for m in ann.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    first.weight.data *= input_scale  # a spike stands for input_scale
    params, outputs = normalisation_layers(ann)
    sample = torch.as_tensor(np.asarray(x_cal, dtype=np.float32) / input_scale)
    normalize_weights(ann, sample, outputs, params, percentile=percentile)
    return sinabs.from_model(ann, input_shape=tuple(x_cal.shape[1:]), batch_size=batch,
                             add_spiking_output=True).spiking_model


def run(snn: nn.Module, encoder, timesteps: int, checkpoints: Sequence[int], batch: int,
        time_chunk: int = 32) -> dict[int, np.ndarray]:
    """Output spike counts (N, classes) at each checkpoint; ``encoder`` is snn2hw's
    :func:`~snn2hw.snn.encoders.make_encoder`'s ``poisson`` encoder (its chunk is
    (B, steps, ...))."""
    import sinabs.utils

    points = sorted(set(checkpoints) | {timesteps})
    out = {t: [] for t in points}
    n = len(encoder)
    encoder.reset()
    with torch.no_grad():
        for start in range(0, n, batch):
            b = min(batch, n - start)
            sinabs.utils.set_batch_size(snn, b)
            sinabs.utils.reset_states(snn)
            total = 0
            for t0 in range(0, timesteps, time_chunk):
                steps = min(time_chunk, timesteps - t0)
                spikes = encoder.chunk(start, start + b, t0, t0 + steps)
                x = torch.as_tensor(spikes, dtype=torch.float32)
                y = snn(x.reshape(b * steps, *x.shape[2:])).reshape(b, steps, -1)
                counts = total + torch.cumsum(y, dim=1)
                for t in points:
                    if t0 < t <= t0 + steps:
                        out[t].append(counts[:, t - t0 - 1].numpy().copy())
                total = counts[:, -1:]
    return {t: np.concatenate(v) for t, v in out.items()}


def throughput(snn: nn.Module, encoder, timesteps: int, batch: int) -> float:
    """Seconds to simulate every sample of ``encoder`` for ``timesteps`` steps (the
    Poisson spikes drawn inside the timing, as ours draws them)."""
    start = time.perf_counter()
    run(snn, encoder, timesteps, [], batch)
    return time.perf_counter() - start
