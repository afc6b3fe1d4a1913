"""Threshold balancing: choose each spiking layer's scale (Lambda, the ANN activation that
one spike per step stands for; the threshold in ANN units). See :mod:`snn2hw.snn`.

Methods are small functions registered in ``METHODS``; each returns the scales of the input
and of every spiking layer. In the paper's terms (weights left as trained), the threshold
of a layer fed by one source is ``scale(layer) / scale(source)``.

- ``spike-norm`` (Sengupta et al. 2019, Algorithm 1): layers are balanced one after another;
  with the layers before it already balanced, the SNN runs on the calibration set and the
  layer's threshold is set to the largest input current (weighted input spikes plus bias
  current) any of its neurons receives at any step. Each layer's input spikes are computed
  once, from the stored spikes of its sources, so the cost is linear in depth.
- ``max-act`` (Diehl et al. 2015, data-based normalisation): scale = maximum ANN activation
  of the layer on the calibration set.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from . import ann
from .encoding import PoissonEncoder
from .simulate import IFNeuron, delayed, idle_steps, layer_current, prepare_float_layer
from .snn import SpikingNetwork


@dataclass
class Calibration:
    method: str
    scales: dict[str, float]
    params: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    rate_scales: dict[str, float] | None = None  # measured source scales (rate matching)

    @property
    def source_scales(self) -> dict[str, float]:
        """What one spike per step of each spike train stands for (see snn2hw.snn)."""
        return self.rate_scales if self.rate_scales is not None else self.scales


def input_scale(x: np.ndarray) -> float:
    """The input value that fires a pixel at every step: the largest magnitude seen."""
    top = float(np.max(np.abs(x))) if len(x) else 0.0
    return top if top > 0 else 1.0


def thresholds(net: SpikingNetwork, scales: dict[str, float],
               source_scales: dict[str, float] | None = None) -> dict[str, float]:
    """Per-layer threshold in the paper's units (relative to the first source's scale)."""
    source_scales = scales if source_scales is None else source_scales
    return {layer.name: scales[layer.name] / source_scales[layer.terms[0].source]
            for layer in net.layers}


def ann_statistics(net: SpikingNetwork, x: np.ndarray, *, batch_size: int = 256,
                   device: str = "cpu") -> dict[str, dict[str, float]]:
    """Per spiking layer: max, mean and 99.9th percentile of the ANN activation, and the
    fraction of positive activations, over ``x``."""
    names = [layer.name for layer in net.layers]
    values: dict[str, list[np.ndarray]] = {name: [] for name in names}
    top = {name: float("-inf") for name in names}
    total = {name: 0.0 for name in names}
    count = {name: 0 for name in names}
    dtype = torch.float64 if device == "cpu" else torch.float32
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = torch.as_tensor(x[start:start + batch_size], dtype=dtype, device=device)
            acts = ann.forward(net.graph, xb, keep=set(names))
            for name in names:
                a = acts[name]
                top[name] = max(top[name], float(a.max()))
                total[name] += float(a.double().sum())
                count[name] += a.numel()
                # float32 copies only for the percentile and the active fraction
                values[name].append(a.reshape(-1).float().cpu().numpy())
    stats = {}
    for name in names:
        v = np.concatenate(values[name]) if values[name] else np.zeros(1, np.float32)
        stats[name] = {"max": top[name], "mean": total[name] / max(count[name], 1),
                       "p99.9": float(np.percentile(v, 99.9)),
                       "active_fraction": float((v > 0).mean())}
    return stats


def max_act(net: SpikingNetwork, x: np.ndarray, *, batch_size: int = 256,
            device: str = "cpu", **_: object) -> Calibration:
    top = {name: st["max"] for name, st in
           ann_statistics(net, x, batch_size=batch_size, device=device).items()}
    scales = {net.input: input_scale(x)}
    warnings = []
    for layer in net.layers:
        if top[layer.name] <= 0:
            warnings.append(f"layer {layer.name}: no positive activation on the calibration "
                            "set; it will never spike")
        scales[layer.name] = top[layer.name] if top[layer.name] > 0 else 1.0
    return Calibration("max-act", scales, {"samples": len(x)}, warnings)


def spike_norm(net: SpikingNetwork, x: np.ndarray, *, timesteps: int, seed: int,
               batch_size: int = 64, device: str = "cpu", rate_match: bool = True,
               progress: Callable[[float], None] | None = None, **_: object) -> Calibration:
    """Sengupta et al.'s Spike-Norm, layer by layer. With ``rate_match`` (default) each
    balanced layer's *source scale* is then measured on the calibration set: the mean ANN
    activation divided by the mean spike rate (steps after the layer's idle steps). An IF
    neuron that resets to zero loses the charge above threshold at every spike, so it fires
    somewhat less than activation / threshold; using the measured scale for the gains of
    the synapses it drives keeps each junction's branches and each layer's bias current in
    the right proportion to the spike input. In a plain bias-free chain it changes no spike
    (the next threshold scales along with the gains)."""
    dev = torch.device(device)
    dtype = torch.float32
    n = len(x)
    scales = {net.input: input_scale(x)}
    sources = dict(scales)  # source scales: what one spike per step stands for
    ann_mean = ({name: st["mean"] for name, st in
                 ann_statistics(net, x, batch_size=256, device=device).items()}
                if rate_match else {})
    encoder = PoissonEncoder(x, scales[net.input], seed)
    # Spikes of every layer still needed later, int8 on the CPU, time-major: (T, N, *shape).
    store = {net.input: torch.from_numpy(np.moveaxis(encoder.full(0, n, timesteps), 1, 0)
                                         .copy())}
    last_use = net.last_use()
    warnings = []
    with torch.no_grad():
        for index, layer in enumerate(net.layers):
            # Provisional threshold 1: the currents come out in ANN units.
            ann_units = prepare_float_layer(layer, {layer.name: 1.0}, dev, dtype, sources)
            top = float("-inf")
            for start in range(0, n, batch_size):
                current = _current(ann_units, store, start, start + batch_size, dev, dtype)
                top = max(top, float(current.max()))
            if top <= 0:
                warnings.append(f"layer {layer.name}: receives no positive input current; "
                                "it will never spike")
                top = 1.0
            scales[layer.name] = sources[layer.name] = top
            spikes = torch.empty((timesteps, n, *layer.shape), dtype=torch.int8)
            neuron = IFNeuron(1.0)
            for start in range(0, n, batch_size):
                stop = min(n, start + batch_size)
                current = _current(ann_units, store, start, stop, dev, dtype) / top
                v = neuron.initial((stop - start, *layer.shape), dev, dtype)
                out = torch.empty_like(current)
                neuron.integrate(current, v, out)
                spikes[:, start:stop] = out.to(torch.int8).cpu()
                if progress:
                    progress((stop - start) * timesteps)
            if rate_match and not layer.is_output:
                active = spikes[min(layer.depth, timesteps - 1):]
                rate = float(active.sum(dtype=torch.float64)) / max(active.numel(), 1)
                if rate > 0 and ann_mean[layer.name] > 0:
                    sources[layer.name] = ann_mean[layer.name] / rate
            store[layer.name] = spikes
            for src in list(store):  # free spike trains no later layer reads
                if last_use.get(src, -1) <= index and src != layer.name:
                    del store[src]
    params = {"timesteps": timesteps, "seed": seed, "samples": n, "rate_match": rate_match}
    return Calibration("spike-norm", scales, params, warnings,
                       sources if rate_match else None)


def _current(layer, store, start, stop, dev, dtype):
    inputs = [delayed(store[s.source][:, start:stop].to(dev, dtype), s.lag)
              for s in layer.synapses]
    current = layer_current(layer, inputs)
    current[:idle_steps(layer.depth, 0, current.shape[0])] = 0  # idle: nothing arrives yet
    return current


METHODS: dict[str, Callable[..., Calibration]] = {"spike-norm": spike_norm, "max-act": max_act}


def calibrate(method: str, net: SpikingNetwork, x: np.ndarray, **options) -> Calibration:
    if method not in METHODS:
        from .errors import InputError

        raise InputError(f"unknown calibration method {method!r}; known: "
                         f"{', '.join(METHODS)}")
    return METHODS[method](net, x, **options)
