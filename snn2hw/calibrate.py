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

Both take ``percentile`` (default 100: the maximum, as the papers) to use a percentile of the
positive currents or activations instead, and ``reset`` (``zero``, the default, or
``subtract``), the reset mode of the neurons to be deployed; both are recorded in the
calibration's ``params`` and carried into exports.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from . import ann
from .encoding import PoissonEncoder
from .errors import InputError
from .profiles import check_reset
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
    def reset(self) -> str:
        """The neurons' reset mode the thresholds were chosen for (older files: zero)."""
        return str(self.params.get("reset", "zero"))

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
                   device: str = "cpu", percentile: float = 100.0
                   ) -> dict[str, dict[str, float]]:
    """Per spiking layer: max, mean and 99.9th percentile of the ANN activation, the
    fraction of positive activations, and ``top``: the ``percentile`` of the positive
    activations (the max at 100), over ``x``."""
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
        positive = v[v > 0]
        stats[name] = {"max": top[name], "mean": total[name] / max(count[name], 1),
                       "top": (top[name] if percentile >= 100 or not len(positive) else
                               float(np.percentile(positive, percentile, method="higher"))),
                       "p99.9": float(np.percentile(v, 99.9)),
                       "active_fraction": float((v > 0).mean())}
    return stats


def max_act(net: SpikingNetwork, x: np.ndarray, *, batch_size: int = 256,
            device: str = "cpu", reset: str = "zero", percentile: float = 100.0,
            **_: object) -> Calibration:
    """Scale = the largest ANN activation of each layer, or with ``percentile`` < 100 that
    percentile of its positive activations (Rueckauer et al. 2017's robust variant)."""
    top = {name: st["top"] for name, st in
           ann_statistics(net, x, batch_size=batch_size, device=device,
                          percentile=percentile).items()}
    scales = {net.input: input_scale(x)}
    warnings = []
    for layer in net.layers:
        if top[layer.name] <= 0:
            warnings.append(f"layer {layer.name}: no positive activation on the calibration "
                            "set; it will never spike")
        scales[layer.name] = top[layer.name] if top[layer.name] > 0 else 1.0
    params = {"samples": len(x), "reset": check_reset(reset)}
    if percentile < 100:
        params["percentile"] = percentile
    return Calibration("max-act", scales, params, warnings)


def spike_norm(net: SpikingNetwork, x: np.ndarray, *, timesteps: int, seed: int,
               batch_size: int = 64, device: str = "cpu", rate_match: bool = True,
               percentile: float = 100.0, reset: str = "zero",
               progress: Callable[[float], None] | None = None, **_: object) -> Calibration:
    """Sengupta et al.'s Spike-Norm, layer by layer. With ``rate_match`` (default) each
    balanced layer's *source scale* is then measured on the calibration set: the mean ANN
    activation divided by the mean spike rate (steps after the layer's idle steps). An IF
    neuron that resets to zero loses the charge above threshold at every spike, so it fires
    somewhat less than activation / threshold; using the measured scale for the gains of
    the synapses it drives keeps each junction's branches and each layer's bias current in
    the right proportion to the spike input. In a plain bias-free chain it changes no spike
    (the next threshold scales along with the gains).

    ``percentile`` < 100 sets each threshold to that percentile of the positive input
    currents instead of their maximum (a robust Spike-Norm, in the spirit of Rueckauer et
    al. 2017's percentile normalisation): the maximum of a Poisson-driven current is a rare
    coincidence of input spikes, and a threshold set by it makes deep layers fire so rarely
    that little information arrives within T steps. ``reset`` is the neuron's reset mode
    (see :class:`snn2hw.simulate.IFNeuron`); the calibration runs the neurons it will
    deploy. Measured on ResNet-20 (``examples/deep_digits.py``), the paper's rule (maximum,
    reset to zero) leaves the last stage almost silent, while the 99.9th percentile with
    reset by subtraction keeps its accuracy within T = 1024 (README, "Going deeper")."""
    dev = torch.device(device)
    dtype = torch.float32
    n = len(x)
    scales = {net.input: input_scale(x)}
    sources = dict(scales)  # source scales: what one spike per step stands for
    stats = ann_statistics(net, x, batch_size=256, device=device)
    encoder = PoissonEncoder(x, scales[net.input], seed)
    # Spikes of every layer still needed later, on the CPU, time-major: (T, N, *shape).
    store = SpikeStore()
    store.put_signed(net.input, np.moveaxis(encoder.full(0, n, timesteps), 1, 0))
    sizes = {net.input: int(np.prod(net.input_shape))} | {la.name: la.size
                                                         for la in net.layers}
    last_use = net.last_use()
    warnings = []
    with torch.no_grad():
        for index, layer in enumerate(net.layers):
            # Provisional threshold 1: the currents come out in ANN units.
            ann_units = prepare_float_layer(layer, {layer.name: 1.0}, dev, dtype, sources)
            batch = layer_batch(batch_size, timesteps,
                                max([layer.size] + [sizes[s] for s in layer.sources]))
            top = float("-inf")
            hist = CurrentHistogram() if percentile < 100 else None
            for start in range(0, n, batch):
                current = _current(ann_units, store, start, start + batch, dev, dtype)
                top = max(top, float(current.max()))
                if hist is not None:
                    hist.add(current)
            if hist is not None and top > 0:
                top = min(top, hist.quantile(percentile / 100))
            if top <= 0:
                top = _silent_layer_scale(layer, stats[layer.name]["max"], sources,
                                          timesteps, warnings)
            scales[layer.name] = sources[layer.name] = top
            store.new_binary(layer.name, timesteps, n, layer.shape)
            neuron = IFNeuron(1.0, reset)
            first = min(layer.depth, timesteps - 1)  # rates count the steps after the idle ones
            fired = 0.0
            for start in range(0, n, batch):
                stop = min(n, start + batch)
                current = _current(ann_units, store, start, stop, dev, dtype) / top
                v = neuron.initial((stop - start, *layer.shape), dev, dtype)
                out = torch.empty_like(current)
                neuron.integrate(current, v, out)
                store.write(layer.name, start, out)
                fired += float(out[first:].sum(dtype=torch.float64))
                if progress:
                    progress((stop - start) * timesteps)
            if rate_match and not layer.is_output:
                rate = fired / max((timesteps - first) * n * layer.size, 1)
                if rate > 0 and stats[layer.name]["mean"] > 0:
                    sources[layer.name] = stats[layer.name]["mean"] / rate
            for src in store.names():  # free spike trains no later layer reads
                if last_use.get(src, -1) <= index and src != layer.name:
                    store.drop(src)
    params = {"timesteps": timesteps, "seed": seed, "samples": n, "rate_match": rate_match,
              "reset": reset}
    if percentile < 100:
        params["percentile"] = percentile
    return Calibration("spike-norm", scales, params, warnings,
                       sources if rate_match else None)


def _silent_layer_scale(layer, ann_max: float, sources: dict[str, float], timesteps: int,
                        warnings: list[str]) -> float:
    """Scale of a layer that received no positive current in the calibration run (its
    inputs were too sparse, or it is dead). Its largest ANN activation (the max-act rule)
    keeps it in proportion with the rest; a layer without positive ANN activation gets
    its largest source scale, so that no single input spike can make it fire."""
    if ann_max > 0:
        warnings.append(f"layer {layer.name}: no positive input current in {timesteps} "
                        f"calibration steps; its scale falls back to its largest ANN "
                        f"activation {ann_max:.6g} (max-act)")
        return ann_max
    warnings.append(f"layer {layer.name}: no positive input current and no positive ANN "
                    "activation on the calibration set; it will stay silent")
    return max(sources[t.source] for t in layer.terms)


class CurrentHistogram:
    """Streaming histogram of positive currents on fixed log2 bins (64 per octave, 2^-64 to
    2^64): quantiles to 1.1 % relative resolution, independent of batch order."""

    PER_OCTAVE, LOW, HIGH = 64, -64, 64

    def __init__(self) -> None:
        self.bins = (self.HIGH - self.LOW) * self.PER_OCTAVE
        self.counts = torch.zeros(self.bins, dtype=torch.float64)

    CHUNK = 1 << 22  # elements per pass: bounds the float64/int64 temporaries to ~32 MB

    def add(self, current: torch.Tensor) -> None:
        flat = current.reshape(-1)
        for start in range(0, flat.numel(), self.CHUNK):
            part = flat[start:start + self.CHUNK]
            pos = part[part > 0].double()
            if pos.numel() == 0:
                continue
            index = ((torch.log2(pos) - self.LOW) * self.PER_OCTAVE).floor_()
            index = index.clamp_(0, self.bins - 1).long()
            self.counts += torch.bincount(index, minlength=self.bins).double().cpu()

    def quantile(self, q: float) -> float:
        """Upper edge of the bin holding the ``q`` quantile (a slight over-estimate)."""
        total = float(self.counts.sum())
        if total == 0:
            return 0.0
        cum = torch.cumsum(self.counts, 0)
        index = int(torch.searchsorted(cum, torch.tensor(q * total, dtype=torch.float64)))
        return float(2.0 ** (self.LOW + (min(index, self.bins - 1) + 1) / self.PER_OCTAVE))


BATCH_BYTES = 1 << 30  # Spike-Norm: largest float32 (T, batch, neurons) tensor per layer


def layer_batch(batch_size: int, timesteps: int, neurons: int) -> int:
    """Samples per batch for a layer: ``batch_size``, fewer where one (T, batch, neurons)
    float32 current or input tensor would exceed ``BATCH_BYTES`` (full-size networks)."""
    return max(1, min(batch_size, BATCH_BYTES // max(1, 4 * timesteps * neurons)))


class SpikeStore:
    """Spike trains (T, N, *shape) kept on the CPU between layers: the signed input spikes
    as int8, the 0/1 spikes of layers bit-packed along the neurons (8 per byte), so that
    Spike-Norm's memory for stored trains is an eighth of a byte per neuron-step."""

    def __init__(self) -> None:
        self._trains: dict[str, tuple[np.ndarray, tuple[int, ...], bool]] = {}

    def names(self) -> list[str]:
        return list(self._trains)

    def put_signed(self, name: str, spikes: np.ndarray) -> None:
        self._trains[name] = (np.ascontiguousarray(spikes, dtype=np.int8),
                              tuple(spikes.shape[2:]), False)

    def new_binary(self, name: str, timesteps: int, n: int, shape: tuple[int, ...]) -> None:
        size = int(np.prod(shape))
        self._trains[name] = (np.zeros((timesteps, n, (size + 7) // 8), np.uint8),
                              tuple(shape), True)

    def write(self, name: str, start: int, spikes: torch.Tensor) -> None:
        packed, _, _ = self._trains[name]
        bits = spikes.to(torch.uint8).cpu().numpy().reshape(spikes.shape[0], spikes.shape[1], -1)
        packed[:, start:start + spikes.shape[1]] = np.packbits(bits, axis=-1)

    def window(self, name: str, start: int, stop: int, dev, dtype) -> torch.Tensor:
        data, shape, packed = self._trains[name]
        part = data[:, start:stop]
        if packed:
            part = np.unpackbits(part, axis=-1, count=int(np.prod(shape)))
        return torch.from_numpy(part.reshape(part.shape[0], part.shape[1], *shape)).to(
            dev, dtype)

    def drop(self, name: str) -> None:
        del self._trains[name]


def _current(layer, store: SpikeStore, start, stop, dev, dtype):
    inputs = [delayed(store.window(s.source, start, stop, dev, dtype), s.lag)
              for s in layer.synapses]
    current = layer_current(layer, inputs)
    current[:idle_steps(layer.depth, 0, current.shape[0])] = 0  # idle: nothing arrives yet
    return current


METHODS: dict[str, Callable[..., Calibration]] = {"spike-norm": spike_norm, "max-act": max_act}


def calibrate(method: str, net: SpikingNetwork, x: np.ndarray, **options) -> Calibration:
    check_reset(options.get("reset", "zero"))
    percentile = options.get("percentile", 100.0)
    if not 50.0 <= percentile <= 100.0:
        raise InputError(f"percentile must be between 50 and 100, got {percentile}")
    if method not in METHODS:
        raise InputError(f"unknown calibration method {method!r}; known: "
                         f"{', '.join(METHODS)}")
    return METHODS[method](net, x, **options)
