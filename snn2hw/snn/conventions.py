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
