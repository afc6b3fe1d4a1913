"""A calibration's result: the scales of the input and of every spiking layer (see
:mod:`snn2hw.snn`), the options it was made with (``params``, recorded in the file) and the
measured source scales of rate matching."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .junction import DEFAULT_JUNCTION
from ..snn import SpikingNetwork
from ..snn.neurons import check_reset


@dataclass
class Calibration:
    method: str
    scales: dict[str, float]
    params: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    rate_scales: dict[str, float] | None = None  # measured source scales (rate matching)
    # Per hidden layer, per output channel (conversion options, snn2hw.calibrate.channels):
    # the factor folded into the weights, and the bias offset in ANN units.
    channel_factors: dict[str, np.ndarray] | None = None
    bias_offsets: dict[str, np.ndarray] | None = None
    # Per source (the input and every layer that feeds another), per neuron: its mean value
    # per step on the calibration images (Conversion.rounding_bias; snn2hw.calibrate.rates).
    source_rates: dict[str, np.ndarray] | None = None

    @property
    def reset(self) -> str:
        """The neurons' reset mode the thresholds were chosen for (older files: zero)."""
        return str(self.params.get("reset", "zero"))

    @property
    def junction(self) -> str:
        """The junction rule (snn2hw.calibrate.junction); files without it: per-source, the rule
        that every release before the option used."""
        return str(self.params.get("junction", DEFAULT_JUNCTION))

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


def record_params(samples: int, reset: str, percentile: float, junction: str,
            **extra: object) -> dict[str, object]:
    """The recorded options; percentile and junction only where they differ from the
    defaults, so that files made with the defaults stay as they were."""
    params: dict[str, object] = {**extra, "samples": samples, "reset": check_reset(reset)}
    if percentile < 100:
        params["percentile"] = percentile
    if junction != DEFAULT_JUNCTION:
        params["junction"] = junction
    return params
