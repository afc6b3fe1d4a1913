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
positive currents or activations instead, ``reset`` (``zero``, the default, or
``subtract``), the reset mode of the neurons to be deployed, and ``junction``
(``per-source``, the default, or ``shared``, the paper's), the rule for residual junctions
(:mod:`snn2hw.calibrate.junction`); all are recorded in the calibration's ``params`` and carried into
exports (the scales embody the junction rule, so export and simulation need nothing else).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .. import distributed, precision
from .annstats import ann_statistics
from .result import Calibration, input_scale, record_params, thresholds  # noqa: F401
from ..snn.encoders import make_encoder
from ..errors import InputError
from .junction import DEFAULT_JUNCTION, check_junction, fan_in_groups, group_of
from ..snn.neurons import check_reset, float_neuron
from ..snn.simulate import idle_steps, layer_current, prepare_float_layer
from ..snn import SpikingNetwork
from ..snn.options import Conversion
from .spikestore import BATCH_BYTES, SpikeStore, block_steps, layer_batch  # noqa: F401
from .streaming import CurrentHistogram


def max_act(net: SpikingNetwork, x: np.ndarray, *, batch_size: int = 256,
            device: str = "cpu", reset: str = "zero", percentile: float = 100.0,
            junction: str = DEFAULT_JUNCTION, **_: object) -> Calibration:
    """Scale = the largest ANN activation of each layer, or with ``percentile`` < 100 that
    percentile of its positive activations (Rueckauer et al. 2017's robust variant). With
    ``junction="shared"`` the fan-in layers of each junction take the largest of their
    scales (:mod:`snn2hw.calibrate.junction`)."""
    top = {name: st["top"] for name, st in
           ann_statistics(net, x, batch_size=batch_size, device=device,
                          percentile=percentile, quantiles=percentile < 100).items()}
    scales = {net.input: input_scale(x)}
    warnings = []
    for layer in net.layers:
        if top[layer.name] <= 0:
            warnings.append(f"layer {layer.name}: no positive activation on the calibration "
                            "set; it will never spike")
        scales[layer.name] = top[layer.name] if top[layer.name] > 0 else 1.0
    if junction == "shared":
        for members in fan_in_groups(net):
            shared = max(scales[m] for m in members)
            scales.update({m: shared for m in members})
    return Calibration("max-act", scales, record_params(len(x), reset, percentile, junction),
                       warnings)


def spike_norm(net: SpikingNetwork, x: np.ndarray, *, timesteps: int, seed: int,
               batch_size: int = 64, device: str = "cpu", rate_match: bool = True,
               percentile: float = 100.0, reset: str = "zero",
               junction: str = DEFAULT_JUNCTION,
               progress: Callable[[float], None] | None = None,
               conversion: Conversion | None = None, **_: object) -> Calibration:
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
    (see :mod:`snn2hw.snn.neurons`); the calibration runs the neurons it will
    deploy. ``junction`` is the rule for residual junctions (:mod:`snn2hw.calibrate.junction`).
    Measured on ResNet-20 (``examples/deep_digits.py``), the paper's rule (maximum,
    reset to zero) leaves the last stage almost silent, while the 99.9th percentile with
    reset by subtraction keeps its accuracy within T = 1024 (README, "Going deeper").

    Memory: the spikes of the layers still to be read, bit-packed, and blocks of at most
    ``spikestore.BLOCK_BYTES`` per float tensor (README, "Calibration")."""
    dev = torch.device(device)
    n = len(x)
    scales = {net.input: input_scale(x)}
    sources = dict(scales)  # source scales: what one spike per step stands for
    stats = ann_statistics(net, x, batch_size=256, device=device, quantiles=False)
    store = SpikeStore()
    conversion = conversion or Conversion()
    lo, hi = distributed.owned(n, batch_size)  # this rank's samples (all in one process)
    store.put_input(net.input, make_encoder(conversion.coding, x[lo:hi],
                                            input_scale=scales[net.input], seed=seed,
                                            indices=np.arange(lo, hi)),
                    timesteps, batch_size)
    sizes = {net.input: int(np.prod(net.input_shape))} | {la.name: la.size
                                                         for la in net.layers}
    groups = group_of(fan_in_groups(net)) if junction == "shared" else {}
    shared: dict[int, float] = {}  # group -> its unit, set by its first member
    if net.input in groups:
        shared[id(groups[net.input])] = scales[net.input]
    last_use = net.last_use()
    warnings: list[str] = []
    with torch.no_grad():
        for index, layer in enumerate(net.layers):
            neurons = max([layer.size] + [sizes[s] for s in layer.sources])
            batch = layer_batch(batch_size, timesteps, neurons)
            steps = block_steps(timesteps, batch, neurons)
            blocks = [(start, stop, t0, min(timesteps, t0 + steps)) for start, stop
                      in distributed.shard_batches(hi - lo, batch_size, batch)
                      for t0 in range(0, timesteps, steps)]
            # Provisional threshold 1: the currents come out in ANN units.
            ann_units = prepare_float_layer(layer, {layer.name: 1.0}, dev,
                                            precision.snn_dtype(), sources)
            top = _largest_current(ann_units, store, blocks, percentile, dev,
                                   conversion.window)
            if top <= 0:
                top = _silent_layer_scale(layer, stats[layer.name]["max"], sources,
                                          timesteps, warnings)
            scales[layer.name] = sources[layer.name] = top
            fired = _spike(layer, ann_units, store, blocks, top, reset, timesteps, hi - lo,
                           dev, progress, conversion)
            fired = distributed.all_sum([fired])[0]  # float64 integers: exact in any order
            if rate_match and not layer.is_output:
                first = _first_step(layer, timesteps, conversion)
                rate = fired / max((timesteps - first) * n * layer.size, 1)
                if rate > 0 and stats[layer.name]["mean"] > 0:
                    sources[layer.name] = stats[layer.name]["mean"] / rate
            if layer.name in groups:  # shared rule: one unit for the junction's fan-in
                group = id(groups[layer.name])
                sources[layer.name] = shared.setdefault(group, sources[layer.name])
            for src in store.names():  # free spike trains no later layer reads
                if last_use.get(src, -1) <= index and src != layer.name:
                    store.drop(src)
    params = record_params(n, reset, percentile, junction, timesteps=timesteps, seed=seed,
                     rate_match=rate_match)
    return Calibration("spike-norm", scales, params, warnings,
                       sources if rate_match or groups else None)


def _largest_current(ann_units, store: SpikeStore, blocks, percentile: float, dev,
                     window: str = "fill") -> float:
    """The layer's largest input current over the calibration run (ANN units), or the
    ``percentile`` of its positive currents where that is lower."""
    top = float("-inf")
    hist = CurrentHistogram() if percentile < 100 else None
    for block in blocks:
        current = _current(ann_units, store, *block, dev, window)
        top = max(top, float(current.max()))
        if hist is not None:
            hist.add(current)
    top = distributed.all_max([top])[0]  # the ranks' blocks together
    if hist is not None:
        distributed.sum_tensors_([hist.counts])  # float64 integer counts: exact
    if hist is not None and top > 0:
        top = min(top, hist.quantile(percentile / 100))
    return top


def _first_step(layer, timesteps: int, conversion: Conversion) -> int:
    """The first step rates count: after the idle steps (``fill`` window); 0 for the
    ``pipelined`` window, whose trains are stored from each layer's window start."""
    return 0 if conversion.window == "pipelined" else min(layer.depth, timesteps - 1)


def _spike(layer, ann_units, store: SpikeStore, blocks, top: float, reset: str,
           timesteps: int, n: int, dev, progress, conversion: Conversion) -> float:
    """Run the layer's IF neurons with threshold ``top``, store its spikes; returns how
    many it fired after its idle steps."""
    store.new_binary(layer.name, timesteps, n, layer.shape)
    neuron = float_neuron(1.0, reset, conversion.layer_v_init(layer.is_output))
    first = _first_step(layer, timesteps, conversion)
    fired, v = 0.0, None
    for start, stop, t0, t1 in blocks:
        current = _current(ann_units, store, start, stop, t0, t1, dev,
                           conversion.window).div_(top)
        if t0 == 0:
            v = neuron.initial((stop - start, *layer.shape), dev, current.dtype)
        out = torch.empty_like(current)
        neuron.integrate(current, v, out)
        store.write(layer.name, start, t0, out)
        fired += float(out[max(first - t0, 0):].sum(dtype=torch.float64))
        if progress:
            progress((stop - start) * (t1 - t0))
    return fired


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


def _current(layer, store: SpikeStore, start: int, stop: int, t0: int, t1: int, dev,
             window: str = "fill"):
    """Input current (t1 - t0, batch, *shape) of samples [start, stop) at steps [t0, t1).
    ``pipelined``: every train is stored from its layer's window start (step = depth), and
    a synapse's lag is exactly the depth between its ends (lowering aligns every term), so
    window step j reads window step j of each source and no step is idle."""
    dtype = precision.snn_dtype()
    if window == "pipelined":
        inputs = [store.window(s.source, start, stop, t0, t1, dev, dtype)
                  for s in layer.synapses]
        return layer_current(layer, inputs)
    inputs = [store.window(s.source, start, stop, t0 - s.lag, t1 - s.lag, dev, dtype)
              for s in layer.synapses]
    current = layer_current(layer, inputs)
    current[:idle_steps(layer.depth, t0, t1 - t0)] = 0  # idle: nothing arrives yet
    return current


METHODS: dict[str, Callable[..., Calibration]] = {"spike-norm": spike_norm, "max-act": max_act}


def calibrate(method: str, net: SpikingNetwork, x: np.ndarray, **options) -> Calibration:
    check_reset(options.get("reset", "zero"))
    check_junction(options.get("junction", DEFAULT_JUNCTION))
    percentile = options.get("percentile", 100.0)
    if not 50.0 <= percentile <= 100.0:
        raise InputError(f"percentile must be between 50 and 100, got {percentile}")
    if method not in METHODS:
        raise InputError(f"unknown calibration method {method!r}; known: "
                         f"{', '.join(METHODS)}")
    cal = METHODS[method](net, x, **options)
    conversion = options.get("conversion")
    if conversion is not None:   # the options that differ from the paper's, for the files
        cal.params.update(conversion.to_params())
    return cal
