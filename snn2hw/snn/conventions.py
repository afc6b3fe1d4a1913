"""Time conventions of the reference simulator.

snn2hw's own (and Lava's): one step per synapse hop. A spike emitted at step t reaches
the next layer at t + 1 (+ the alignment delay of a shortcut), and a layer ``depth`` hops
from the input is idle for its first ``depth`` steps (:mod:`snn2hw.snn`).

*Same-step* (:func:`same_step`): a spike crosses every synapse within the step it is
emitted, so the whole network sees input step t at step t and no layer idles. This is
what the NIR readers compute (sinabs, snnTorch, Norse: one forward pass of all layers
per time step) and what ``snn2hw export --format nir`` writes by default; the simulator
run this way gives their spikes for the same input spikes.
"""
from __future__ import annotations

from dataclasses import replace

from .simulate import Prepared

CONVENTIONS = ("hop", "same-step")


def same_step(prep: Prepared) -> Prepared:
    """``prep`` with every synapse lag 0 and no idle steps (see the module docstring)."""
    layers = [replace(layer, synapses=[replace(s, lag=0) for s in layer.synapses], depth=0)
              for layer in prep.layers]
    return replace(prep, layers=layers)


def with_convention(prep: Prepared, convention: str) -> Prepared:
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown time convention {convention!r}; known: "
                         f"{', '.join(CONVENTIONS)}")
    return prep if convention == "hop" else same_step(prep)


class SinabsIAF:
    """The neuron sinabs 2.0.3 builds for every NIR ``IF`` (``sinabs.from_nir``: an
    ``IAFSqueeze`` with its defaults), on normalised potentials (threshold 1), for
    comparing with what sinabs computes:

        v += input;  s = trunc(v / threshold) where v > 0, else 0   (MultiSpike: several
        spikes per step, the first at v >= threshold);  v -= s * threshold
        (MembraneSubtract, whatever v_reset says);  v = max(v, -threshold)  (min_v_mem)

    (sinabs/layers/functional/lif.py, activation/spike_generation.py,
    activation/reset_mechanism.py). NIR's IF instead emits one spike where v > threshold
    and sets v to v_reset."""

    def __init__(self, threshold: float = 1.0) -> None:
        self.threshold = threshold

    def initial(self, shape, device, dtype):
        import torch

        return torch.zeros(shape, device=device, dtype=dtype)

    def integrate(self, current, v, out, idle: int = 0, trace=None):
        """As :meth:`snn2hw.snn.neurons.Neuron.integrate` (``trace`` receives v)."""
        import torch

        out[:idle] = 0
        for t in range(idle, current.shape[0]):
            v.add_(current[t])
            spikes = torch.where(v > 0, torch.div(v, self.threshold, rounding_mode="trunc"),
                                 torch.zeros_like(v))
            v.sub_(spikes * self.threshold).clamp_(min=-self.threshold)
            out[t] = spikes
            if trace is not None:
                trace[t] = v
        return v


def as_sinabs(prep: Prepared) -> Prepared:
    """``prep`` in the same-step convention with sinabs's neuron in every layer."""
    prep = same_step(prep)
    return replace(prep, layers=[replace(layer, neuron=SinabsIAF(layer.neuron.threshold))
                                 for layer in prep.layers])
