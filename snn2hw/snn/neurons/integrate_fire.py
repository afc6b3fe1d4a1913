"""The integrate-and-fire neuron's two kinds: after a spike, v is set to zero (``zero``,
the paper's and Loihi's stock neuron), or the threshold is subtracted from it
(``subtract``, which keeps the charge above threshold for the next spike, as in Rueckauer
et al. 2017; on Lava, :mod:`snn2hw.exporters.lava.procs.subtract_lif`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .registry import NeuronKind, register

if TYPE_CHECKING:  # torch only for the annotations: the CLI reads the names before torch
    import torch


@register("zero")
class ResetToZero(NeuronKind):
    """v = 0 where the neuron fired (lif/models.py:188-192 in Lava)."""

    bounded_reset = True

    def reset(self, v: torch.Tensor, fired: torch.Tensor, threshold: float,
              scratch: torch.Tensor) -> None:
        v.masked_fill_(fired, 0)

    def reset_spikes(self, v: torch.Tensor, fired: torch.Tensor, threshold: float) -> None:
        """v - v * fired: exactly 0 where fired (v > threshold, finite), v elsewhere."""
        v.addcmul_(v, fired, value=-1)


@register("subtract")
class ResetBySubtraction(NeuronKind):
    """v -= threshold where the neuron fired (exact on integers held in float64)."""

    bounded_reset = True

    def reset(self, v: torch.Tensor, fired: torch.Tensor, threshold: float,
              scratch: torch.Tensor) -> None:
        v.sub_(scratch.copy_(fired), alpha=threshold)

    def reset_spikes(self, v: torch.Tensor, fired: torch.Tensor, threshold: float) -> None:
        v.sub_(fired, alpha=threshold)
