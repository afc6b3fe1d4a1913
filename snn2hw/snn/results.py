"""What a simulation returns: output counts (or potentials) at checkpoints, per-layer
statistics and recorded spike trains; and the decoding of a class from them."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class LayerStats:
    spikes: float = 0.0
    max_current: float = float("-inf")
    neuron_steps: float = 0.0

    @property
    def rate(self) -> float:
        """Spikes per neuron per time step."""
        return self.spikes / self.neuron_steps if self.neuron_steps else 0.0


@dataclass
class SimResult:
    counts: dict[int, np.ndarray]             # checkpoint T -> (N, classes) output spikes
    stats: dict[str, LayerStats]
    records: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N, T, size) int8
    # membrane read-out: checkpoint T -> (N, classes) the output layer's v after T steps
    potentials: dict[int, np.ndarray] = field(default_factory=dict)
    readout: str = "spikes"
    # membrane read-out: what one output spike takes from v (its threshold, reset by
    # subtraction; 0 where the output never fires, the float simulator's)
    readout_step: float = 0.0

    def scores(self, timesteps: int) -> np.ndarray:
        """What the class is the argmax of: spike counts, or (membrane) the accumulated
        potential, count * threshold + v (:func:`membrane_readout`)."""
        if self.readout != "membrane":
            return self.counts[timesteps]
        return membrane_readout(self.counts[timesteps], self.potentials[timesteps],
                                self.readout_step)

    def predictions(self, timesteps: int) -> tuple[np.ndarray, int]:
        return decode(self.scores(timesteps))


def membrane_readout(counts: np.ndarray, v: np.ndarray, step: float) -> np.ndarray:
    """The output layer's accumulated potential from its spike counts and its v at the end
    of the window: ``counts * step + v`` (``step``: the threshold a spike subtracts; exact
    integers in float64 for fixed point, see :mod:`snn2hw.quantize.readout`)."""
    v = np.asarray(v, dtype=np.float64)
    return v + np.asarray(counts, dtype=np.float64) * step if step else v


def readout_step(neuron) -> float:
    """What one spike of the output ``neuron`` takes from v when it resets by subtraction
    (its threshold; 0 if it never fires, resets to zero or is another simulator's neuron
    without a reset kind, as :mod:`snn2hw.snn.conventions`' sinabs neuron)."""
    if getattr(neuron, "reset", None) != "subtract":
        return 0.0
    thr = float(neuron.threshold)
    return thr if np.isfinite(thr) else 0.0


def decode(counts: np.ndarray) -> tuple[np.ndarray, int]:
    """Class = argmax of output spike counts; ties go to the lowest class index.
    Returns the predictions and how many samples had a tie for the maximum."""
    pred = counts.argmax(axis=1)
    ties = int(((counts == counts.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())
    return pred, ties
