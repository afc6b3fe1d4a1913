"""Per-channel statistics of the ANN's activations, for per-channel scales
(:mod:`snn2hw.calibrate.channels`) and bias calibration (:mod:`snn2hw.calibrate.biascal`).

Activations are (batch, *layer shape): the channel axis is 1. Per-channel percentiles are
read from :class:`snn2hw.calibrate.streaming.ChannelHistogram` (log2 bins, 1.1 %), not the
exact order statistics of the per-layer percentiles: exact ones would cost two 65,536-bin
arrays per channel.

Under ``torch.distributed`` each rank reads its own batches; maxima and histogram counts are
combined across ranks, and the per-batch channel sums added in batch order, as one process
adds them (:mod:`snn2hw.distributed`).
"""
from __future__ import annotations

import numpy as np
import torch

from .. import distributed
from ..snn import SpikingNetwork
from .annstats import _ann_batches
from .channels import factors_from_scales
from .streaming import ChannelHistogram


def ann_channel_statistics(net: SpikingNetwork, x: np.ndarray, *, layers: list[str],
                           batch_size: int = 256, device: str = "cpu",
                           percentile: float = 100.0) -> dict[str, dict[str, np.ndarray]]:
    """Per layer of ``layers``, per channel: ``max``, ``mean`` (over samples and positions)
    and ``top``: the ``percentile`` of the channel's positive activations (the max at
    100), over ``x``."""
    shapes = {la.name: la.shape for la in net.layers}
    top = {n: torch.full((int(shapes[n][0]),), float("-inf"), dtype=torch.float64)
           for n in layers}
    batches = -(-len(x) // batch_size)
    sums = {n: torch.zeros((batches, int(shapes[n][0])), dtype=torch.float64) for n in layers}
    hist = ({n: ChannelHistogram(int(shapes[n][0]), 1) for n in layers}
            if percentile < 100 else {})
    for index, acts in _ann_batches(net, x, batch_size, device, layers):
        for name in layers:
            a = acts[name]
            dims = [d for d in range(a.dim()) if d != 1]
            top[name] = torch.maximum(top[name], a.amax(dim=dims).double().cpu())
            sums[name][index] = a.double().sum(dim=dims).cpu()
            if name in hist:
                hist[name].add(a.float())
    for name in layers:  # the ranks' batches together (zeros elsewhere: exact)
        top[name] = torch.tensor(distributed.all_max(top[name].tolist()), dtype=torch.float64)
    distributed.sum_tensors_([sums[n] for n in layers] + [h.counts for h in hist.values()])
    stats = {}
    for name in layers:
        per_channel = int(np.prod(shapes[name])) // int(shapes[name][0])
        peak = top[name].numpy()
        best = peak
        if name in hist:
            best = np.where(peak > 0, np.minimum(peak, hist[name].quantiles(percentile / 100)),
                            peak)
        stats[name] = {"max": peak, "mean": _in_order(sums[name]) / max(len(x) * per_channel, 1),
                       "top": best}
    return stats


def hidden_layers(net: SpikingNetwork) -> list[str]:
    """The layers that take per-channel scales: all but the output (per-class scales would
    change which class wins)."""
    return [la.name for la in net.layers if not la.is_output]


def max_act_channels(net: SpikingNetwork, x: np.ndarray, *, batch_size: int, device: str,
                     percentile: float) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-channel max-act: each hidden layer's channel factors and its one scale (the
    largest channel scale), from each channel's largest (or ``percentile``) activation."""
    stats = ann_channel_statistics(net, x, layers=hidden_layers(net), batch_size=batch_size,
                                   device=device, percentile=percentile)
    factors, scales = {}, {}
    for name, st in stats.items():
        factors[name], scales[name] = factors_from_scales(st["top"])
    return factors, scales


def folded_means(means: np.ndarray, factors: np.ndarray | None) -> np.ndarray:
    """Per-channel mean activations in the units of a layer whose channels were divided by
    ``factors``."""
    return means if factors is None else means / factors


def _in_order(rows: torch.Tensor) -> np.ndarray:
    """Per channel, the batches' sums added in batch order from zero."""
    total = torch.zeros(rows.shape[1], dtype=torch.float64)
    for row in rows:
        total += row
    return total.numpy()
