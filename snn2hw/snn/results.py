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

    def scores(self, timesteps: int) -> np.ndarray:
        """What the class is the argmax of: spike counts, or potentials (membrane)."""
        return self.potentials[timesteps] if self.readout == "membrane" \
            else self.counts[timesteps]

    def predictions(self, timesteps: int) -> tuple[np.ndarray, int]:
        return decode(self.scores(timesteps))


def decode(counts: np.ndarray) -> tuple[np.ndarray, int]:
    """Class = argmax of output spike counts; ties go to the lowest class index.
    Returns the predictions and how many samples had a tie for the maximum."""
    pred = counts.argmax(axis=1)
    ties = int(((counts == counts.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())
    return pred, ties
