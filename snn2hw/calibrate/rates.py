"""Mean source rates of a calibrated network, for the rounding-bias correction of a
fixed-point export (``Conversion.rounding_bias``; :mod:`snn2hw.quantize.roundingbias`).

Per spike train that feeds a layer, per neuron: its mean value per step over the
calibration images, in the float SNN's source units (one spike per step stands for the
source's scale, :mod:`snn2hw.snn`):

- the input: ``mean(clip(x / input_scale, -1, 1))``, the value a direct input sends every
  step and the mean of a signed Poisson spike (the same for both codings, and exact: no
  random draws);
- a hidden layer: its spikes per step over the steps it integrates, from one run of the
  float SNN of the calibrated network (per-channel factors and bias offsets applied), with
  the calibration's window, reset, initial potential and seed (``fill``: from the layer's
  first integrating step, ``depth``; ``pipelined``: its window of T steps).

Every process computes all of them on all the images (deterministic, so ranks under
``torch.distributed`` agree).
"""
from __future__ import annotations

import numpy as np

from ..snn import SpikingNetwork, simulate
from ..snn.encoders import make_encoder
from ..snn.options import Conversion

RECORD_BYTES = 256 * 2 ** 20   # int8 spike records held at once: samples are run in batches


def input_rate(x: np.ndarray, input_scale: float) -> np.ndarray:
    """Per input neuron (flattened): the mean of ``clip(x / input_scale, -1, 1)``."""
    v = np.clip(np.asarray(x, dtype=np.float64) / float(input_scale), -1.0, 1.0)
    return v.reshape(len(v), -1).mean(axis=0)


def source_rates(net: SpikingNetwork, cal, x: np.ndarray, *, timesteps: int, seed: int,
                 conversion: Conversion, device: str = "cpu", stream: int = 0
                 ) -> dict[str, np.ndarray]:
    """Per source of ``net`` (the calibrated network of ``cal``): mean value per step per
    neuron (float64, flattened) on the images ``x`` over a window of ``timesteps``."""
    sources = {t.source for la in net.layers for t in la.terms}
    hidden = [la for la in net.layers if la.name in sources]
    out = {net.input: input_rate(x, cal.scales[net.input])}
    if not hidden:
        return out
    prep = simulate.prepare_float(net, cal.scales, device, source_scales=cal.source_scales,
                                  reset=cal.reset, conversion=conversion)
    per_sample = timesteps * sum(la.size for la in hidden)
    batch = int(max(1, min(len(x), RECORD_BYTES // max(per_sample, 1))))
    sums = {la.name: np.zeros(la.size) for la in hidden}
    for lo in range(0, len(x), batch):
        enc = make_encoder(conversion.coding, x[lo:lo + batch],
                           input_scale=cal.scales[net.input], seed=seed, stream=stream,
                           indices=np.arange(lo, min(lo + batch, len(x))))
        res = simulate.simulate(prep, enc, timesteps, record=[la.name for la in hidden])
        for la in hidden:
            sums[la.name] += res.records[la.name].sum(axis=(0, 1), dtype=np.float64)
    for la in hidden:
        steps = timesteps - (0 if conversion.window == "pipelined" else la.depth)
        out[la.name] = sums[la.name] / (len(x) * max(steps, 1))
    return out
