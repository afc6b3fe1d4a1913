"""Threshold balancing: choose each spiking layer's scale (Lambda, the ANN activation that
one spike per step stands for; the threshold in ANN units). See :mod:`snn2hw.snn`.

Methods are small functions registered in ``METHODS``; each returns the scales of the input
and of every spiking layer. In the paper's terms (weights left as trained), the threshold
of a layer fed by one source is ``scale(layer) / scale(source)``.

- ``spike-norm`` (Sengupta et al. 2019, Algorithm 1): layers are balanced one after another;
  with the layers before it already balanced, the SNN runs on the calibration set and the
  layer's threshold is set to the largest input current (weighted input spikes plus bias
  current) any of its neurons receives at any step. Each layer's input spikes are computed
  once, from the stored spikes of its sources, so the cost is linear in depth
  (:mod:`snn2hw.calibrate.layerwise`).
- ``max-act`` (Diehl et al. 2015, data-based normalisation): scale = maximum ANN activation
  of the layer on the calibration set.

Both take ``percentile`` (default 100: the maximum, as the papers) to use a percentile of the
positive currents or activations instead, ``reset`` (``zero``, the default, or
``subtract``), the reset mode of the neurons to be deployed, and ``junction``
(``per-source``, the default, or ``shared``, the paper's), the rule for residual junctions
(:mod:`snn2hw.calibrate.junction`); all are recorded in the calibration's ``params`` and
carried into exports (the scales embody the junction rule, so export and simulation need
nothing else).

:func:`calibrate` also takes ``conversion`` (:class:`snn2hw.snn.options.Conversion`):
with ``per_channel`` both methods choose one scale per output channel of every hidden layer
and fold it into the weights (:mod:`snn2hw.calibrate.channels`); with ``bias_calibration``
the biases are then corrected layer by layer (:mod:`snn2hw.calibrate.biascal`). Its
options are recorded in ``params``; the calibration's factors and offsets apply to the
network through :func:`snn2hw.calibrate.channels.calibrated_network`.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .. import precision
from .annstats import ann_statistics
from .biascal import bias_offsets
from .channels import calibrated_network, factors_from_scales, fold_channels
from .result import Calibration, input_scale, record_params, thresholds  # noqa: F401
from ..errors import InputError
from .junction import DEFAULT_JUNCTION, check_junction, fan_in_groups, group_of
from .layerwise import LayerwiseRun
from .perchannel import ann_channel_statistics, folded_means, hidden_layers, max_act_channels
from .rates import source_rates
from ..snn.options import Conversion
from ..snn.neurons import check_reset
from ..snn.simulate import PreparedLayer, prepare_float_layer
from ..snn import SpikingNetwork
from .spikestore import BATCH_BYTES  # noqa: F401


def max_act(net: SpikingNetwork, x: np.ndarray, *, batch_size: int = 256,
            device: str = "cpu", reset: str = "zero", percentile: float = 100.0,
            junction: str = DEFAULT_JUNCTION, conversion: Conversion | None = None,
            **_: object) -> Calibration:
    """Scale = the largest ANN activation of each layer, or with ``percentile`` < 100 that
    percentile of its positive activations (Rueckauer et al. 2017's robust variant); per
    channel of the hidden layers with ``conversion.per_channel``. With
    ``junction="shared"`` the fan-in layers of each junction take the largest of their
    scales (:mod:`snn2hw.calibrate.junction`)."""
    top = {name: st["top"] for name, st in
           ann_statistics(net, x, batch_size=batch_size, device=device,
                          percentile=percentile, quantiles=percentile < 100).items()}
    factors = None
    if conversion is not None and conversion.per_channel:
        factors, channel_top = max_act_channels(net, x, batch_size=batch_size, device=device,
                                                percentile=percentile)
        top.update(channel_top)
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
                       warnings, channel_factors=factors)


def spike_norm(net: SpikingNetwork, x: np.ndarray, *, timesteps: int, seed: int,
               batch_size: int = 64, device: str = "cpu", rate_match: bool = True,
               percentile: float = 100.0, reset: str = "zero",
               junction: str = DEFAULT_JUNCTION, conversion: Conversion | None = None,
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
    (see :mod:`snn2hw.snn.neurons`); the calibration runs the neurons it will
    deploy. ``junction`` is the rule for residual junctions (:mod:`snn2hw.calibrate.junction`).
    Measured on ResNet-20 (``examples/deep_digits.py``), the paper's rule (maximum,
    reset to zero) leaves the last stage almost silent, while the 99.9th percentile with
    reset by subtraction keeps its accuracy within T = 1024 (README, "Going deeper").
    With ``conversion.per_channel`` each hidden layer's threshold is set per output channel
    (the largest or ``percentile`` current of each channel) and folded into the weights
    before the layer runs, so later layers see the folded network.

    Each layer's currents are computed once: the blocks of its maximum's pass are kept
    for its spikes' pass (:mod:`snn2hw.calibrate.currentcache`), except where folded
    per-channel factors changed its weights in between.

    Memory: the spikes of the layers still to be read, bit-packed, blocks of at most
    ``spikestore.block_bytes`` per float tensor, and the kept currents of one layer, at most
    ``currentcache.CACHE_BYTES`` (README, "Calibration")."""
    per_channel = conversion is not None and conversion.per_channel
    scales = {net.input: input_scale(x)}
    sources = dict(scales)  # source scales: what one spike per step stands for
    stats = ann_statistics(net, x, batch_size=256, device=device, quantiles=False)
    means = (ann_channel_statistics(net, x, layers=hidden_layers(net), device=device)
             if per_channel else {})
    run = LayerwiseRun(net, x, scales[net.input], timesteps, seed, batch_size, device,
                       conversion)
    groups = group_of(fan_in_groups(net)) if junction == "shared" else {}
    shared: dict[int, float] = {}  # group -> its unit, set by its first member
    if net.input in groups:
        shared[id(groups[net.input])] = scales[net.input]
    warnings: list[str] = []
    factors: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for index in range(len(net.layers)):
            top, net, ann_units = _balance(run, net, index, sources, percentile,
                                           per_channel and not net.layers[index].is_output,
                                           factors)
            layer = net.layers[index]
            if top <= 0:
                top = _silent_layer_scale(layer, stats[layer.name]["max"], sources,
                                          timesteps, warnings)
            scales[layer.name] = sources[layer.name] = top
            fired = float(run.spike(layer, ann_units, top, reset, progress).sum())
            mean = stats[layer.name]["mean"]
            if layer.name in factors:
                mean = float(folded_means(means[layer.name]["mean"], factors[layer.name]).mean())
            if rate_match and not layer.is_output:
                first = run.first_step(layer)  # rates count steps after idle ones
                rate = fired / max((timesteps - first) * len(x) * layer.size, 1)
                if rate > 0 and mean > 0:
                    sources[layer.name] = mean / rate
            if layer.name in groups:  # shared rule: one unit for the junction's fan-in
                group = id(groups[layer.name])
                sources[layer.name] = shared.setdefault(group, sources[layer.name])
            run.release(index, layer.name)  # free spike trains no later layer reads
    params = record_params(len(x), reset, percentile, junction, timesteps=timesteps, seed=seed,
                           rate_match=rate_match)
    return Calibration("spike-norm", scales, params, warnings,
                       sources if rate_match or groups else None, factors or None)


def _balance(run: LayerwiseRun, net: SpikingNetwork, index: int, sources: dict[str, float],
             percentile: float, per_channel: bool, factors: dict[str, np.ndarray]
             ) -> tuple[float, SpikingNetwork, PreparedLayer]:
    """Layer ``index``'s largest (or ``percentile``) input current in ANN units, the
    network, and the layer prepared with threshold 1 (its currents in ANN units) for its
    spikes; per channel, the channels' factors folded into the network (recorded in
    ``factors``), and then the layer is prepared again from its folded weights."""
    layer = net.layers[index]
    ann_units = _ann_units(layer, run, sources)
    top = run.largest_current(ann_units, layer, percentile, per_channel)
    if not per_channel:
        return top, net, ann_units
    k, top = factors_from_scales(top)
    if top > 0 and np.any(k != 1.0):
        factors[layer.name] = k
        net = fold_channels(net, layer.name, k)
        ann_units = _ann_units(net.layers[index], run, sources)
    return top, net, ann_units


def _ann_units(layer, run: LayerwiseRun, sources: dict[str, float]) -> PreparedLayer:
    """The layer with threshold 1: its currents come out in ANN units (with the
    simulator's exact fast forms of synapses from spiking layers)."""
    spiking = frozenset(la.name for la in run.net.layers)
    return prepare_float_layer(layer, {layer.name: 1.0}, run.dev, precision.snn_dtype(),
                               sources, spiking=spiking)


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


METHODS: dict[str, Callable[..., Calibration]] = {"spike-norm": spike_norm, "max-act": max_act}


def calibrate(method: str, net: SpikingNetwork, x: np.ndarray,
              conversion: Conversion | None = None, **options) -> Calibration:
    """Run ``method`` (a name in ``METHODS``) with ``options``, then the conversion's bias
    calibration if asked; the conversion's options are recorded in ``params``."""
    conversion = Conversion() if conversion is None else conversion
    check_reset(options.get("reset", "zero"))
    check_junction(options.get("junction", DEFAULT_JUNCTION))
    percentile = options.get("percentile", 100.0)
    if not 50.0 <= percentile <= 100.0:
        raise InputError(f"percentile must be between 50 and 100, got {percentile}")
    if method not in METHODS:
        raise InputError(f"unknown calibration method {method!r}; known: "
                         f"{', '.join(METHODS)}")
    for flag, what in (("bias_calibration", "bias calibration"),
                       ("rounding_bias", "the rounding-bias correction")):
        if getattr(conversion, flag) and not {"timesteps", "seed"} <= set(options):
            raise InputError(f"{what} runs the SNN on the calibration set: it needs "
                             "timesteps and seed")
    cal = METHODS[method](net, x, conversion=conversion, **options)
    if conversion.bias_calibration:
        cal.bias_offsets = bias_offsets(
            net, cal, x, timesteps=options["timesteps"], seed=options["seed"],
            batch_size=options.get("batch_size", 64), device=options.get("device", "cpu"),
            conversion=conversion, progress=options.get("progress"))
    if conversion.rounding_bias:
        cal.source_rates = source_rates(calibrated_network(net, cal), cal, x,
                                        timesteps=options["timesteps"], seed=options["seed"],
                                        conversion=conversion,
                                        device=options.get("device", "cpu"))
    cal.params.update(conversion.to_params())
    return cal
