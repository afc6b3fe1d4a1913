"""How the spike trains that meet at a residual junction are weighed: two rules.

A junction layer J receives several terms (:mod:`snn2hw.snn`): the residual branch and the
shortcut (identity or 1x1 conv), each the spikes of one source layer. Each term's gain is
``source_scale(source) / scale(J)``. The rules differ in what the sources' scales are:

``per-source`` (the default; files without the key are read as this rule). Every source
keeps its own scale, balanced on its own, and each term is scaled by its own source's
scale over the junction's. The shortcut and the branch then arrive in one unit (the
junction's threshold) whatever their sources' thresholds were: beside the branch's
weights, an identity shortcut's weight 1 is multiplied by source_scale(shortcut source) /
source_scale(branch source). This is a generalisation in the spirit of the shortcut
normalisation of Hu et al. 2018 ("Spiking Deep Residual Network", arXiv:1805.01352),
which normalises the shortcut's weights with the scales of the layers it connects.

``shared`` (Sengupta et al. 2019, "Going Deeper in Spiking Neural Networks: VGG and
Residual Architectures", Frontiers in Neuroscience 13:95, section on residual
architectures). The paper keeps the ANN's weights and gives each layer one threshold; at a
junction that one threshold applies to the sum of everything that meets there, so an
identity shortcut keeps weight 1 beside the branch's trained weights. Here: the spike
trains that meet at a junction (its *fan-in layers*: the shortcut's source and the
branch's last spiking layer; a layer that feeds two junctions joins both groups into one)
are read in one unit, the group's source scale, so every term of the junction has the
same gain and the junction's weights are the ANN's weights times one factor. How the
group's unit is set:

- ``spike-norm``, layer by layer in topological order: every layer, fan-in layers
  included, gets its own Spike-Norm threshold (the largest current, or the percentile);
  the first member of a group to be balanced (the network input if it is a member) sets
  the group's unit to its own source scale (its scale, or its rate-matched scale), and
  every later member takes that unit as its source scale instead of its own. Spike-Norm
  measures each threshold from currents in the units its sources are read in, so in a
  bias-free network this is exactly the paper's Algorithm 1 run on the ANN's weights:
  the same spikes whichever member sets the unit.
- ``max-act``: a spike train's unit is its layer's threshold (its largest activation, or
  the percentile), so the members share the threshold itself: the largest of their own
  scales, so that no member's activation exceeds it.

The junction itself is balanced as any layer by both rules.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:  # the CLI imports this module for its option list: no torch at import
    from ..snn import SpikingNetwork

JUNCTIONS = ("per-source", "shared")
DEFAULT_JUNCTION = "per-source"


def check_junction(rule: str) -> str:
    if rule not in JUNCTIONS:
        raise InputError(f"unknown junction rule {rule!r}; known: {', '.join(JUNCTIONS)}")
    return rule


def fan_in_groups(net: SpikingNetwork) -> list[list[str]]:
    """The groups of spike trains that must share one scale under the ``shared`` rule:
    the distinct sources of every junction, merged where they overlap; each group lists
    its members in topological order (the input first)."""
    order = [net.input] + [layer.name for layer in net.layers]
    parent = {name: name for name in order}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for layer in net.layers:
        sources = list(dict.fromkeys(layer.sources))
        for other in sources[1:]:
            parent[root(other)] = root(sources[0])
    groups: dict[str, list[str]] = {}
    for name in order:
        groups.setdefault(root(name), []).append(name)
    return [members for members in groups.values() if len(members) > 1]


def group_of(groups: list[list[str]]) -> dict[str, list[str]]:
    """Member -> its group."""
    return {name: members for members in groups for name in members}
