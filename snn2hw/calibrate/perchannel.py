"""Per-channel statistics of the ANN's activations, for per-channel scales
(:mod:`snn2hw.calibrate.channels`) and bias calibration (:mod:`snn2hw.calibrate.biascal`).

Activations are (batch, *layer shape): the channel axis is 1. Per-channel percentiles are
read from :class:`snn2hw.calibrate.streaming.ChannelHistogram` (log2 bins, 1.1 %), not the
exact order statistics of the per-layer percentiles: exact ones would cost two 65,536-bin
arrays per channel.
"""
from __future__ import annotations

import numpy as np
import torch

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
    total = {n: torch.zeros(int(shapes[n][0]), dtype=torch.float64) for n in layers}
    hist = ({n: ChannelHistogram(int(shapes[n][0]), 1) for n in layers}
            if percentile < 100 else {})
    for acts in _ann_batches(net, x, batch_size, device, layers):
        for name in layers:
            a = acts[name]
            dims = [d for d in range(a.dim()) if d != 1]
            top[name] = torch.maximum(top[name], a.amax(dim=dims).double().cpu())
            total[name] += a.double().sum(dim=dims).cpu()
            if name in hist:
                hist[name].add(a.float())
    stats = {}
    for name in layers:
        per_channel = int(np.prod(shapes[name])) // int(shapes[name][0])
        peak = top[name].numpy()
        best = peak
        if name in hist:
            best = np.where(peak > 0, np.minimum(peak, hist[name].quantiles(percentile / 100)),
                            peak)
        stats[name] = {"max": peak, "mean": total[name].numpy() / max(len(x) * per_channel, 1),
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
