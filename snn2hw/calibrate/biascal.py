"""Bias calibration, SNN Calibration "light" (Li et al. 2021, "A Free Lunch From ANN:
Towards Efficient, Accurate Spiking Neural Networks Calibration", ICML).

After the scales are chosen, the hidden layers are visited in order, with the layers before
them already converted (their scales, per-channel factors and corrected biases): the SNN
runs on the calibration set, and each channel's bias is raised by what its spikes fall short
of the ANN on average,

    offset[c] = (mean ANN activation[c] - rate[c] * source_scale) * scale / source_scale

where ``rate[c]`` is the channel's spikes per neuron per step (from the layer's first
integrating step), ``source_scale`` what one spike per step stands for (the layer's scale,
or the rate-matched scale, :mod:`snn2hw.calibrate.methods`) and ``scale`` its threshold: a
bias of ``d`` raises the rate by ``d / scale`` per step, so the corrected layer's spikes carry
the ANN's mean to the next layer. Li et al. have ``source_scale = scale``. The layer is then
run again with its corrected bias, and its spikes feed the next layers.

Offsets are in ANN units of the network with the per-channel factors folded in; they apply
through :func:`snn2hw.calibrate.channels.calibrated_network`, and a layer without a bias
gets one. The output layer is left as it is: its ANN activation is a logit, not a rate,
and an offset per class would shift the decision.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .. import precision
from ..snn import SpikingNetwork
from ..snn.options import Conversion
from ..snn.simulate import prepare_float_layer
from .channels import add_bias, fold_all
from .layerwise import LayerwiseRun
from .perchannel import ann_channel_statistics, folded_means, hidden_layers


def bias_offsets(net: SpikingNetwork, cal, x: np.ndarray, *, timesteps: int, seed: int,
                 batch_size: int = 64, device: str = "cpu", conversion: Conversion | None = None,
                 progress: Callable[[float], None] | None = None
                 ) -> dict[str, np.ndarray]:
    """Per hidden layer, per channel: the bias offset (ANN units) of SNN Calibration
    "light", for the calibration ``cal`` (its scales, source scales, factors, reset)."""
    hidden = hidden_layers(net)
    means = ann_channel_statistics(net, x, layers=hidden, device=device)
    factors = cal.channel_factors or {}
    net = fold_all(net, factors)
    run = LayerwiseRun(net, x, cal.scales[net.input], timesteps, seed, batch_size, device,
                       conversion)
    dev, sources, offsets = torch.device(device), cal.source_scales, {}
    with torch.no_grad():
        for index, layer in enumerate(net.layers):
            if layer.is_output:
                break
            prepared = prepare_float_layer(layer, cal.scales, dev, precision.snn_dtype(), sources)
            fired = run.spike(layer, prepared, 1.0, cal.reset, progress, keep=False)
            rate = fired / run.rate_denominator(layer)
            target = folded_means(means[layer.name]["mean"], factors.get(layer.name))
            scale, source = cal.scales[layer.name], sources[layer.name]
            offsets[layer.name] = (target - rate * source) * (scale / source)
            net = add_bias(net, layer.name, offsets[layer.name])
            layer = net.layers[index]
            prepared = prepare_float_layer(layer, cal.scales, dev, precision.snn_dtype(), sources)
            run.spike(layer, prepared, 1.0, cal.reset, progress)
            run.release(index, layer.name)
    return {name: offsets[name] for name in hidden if name in offsets}

