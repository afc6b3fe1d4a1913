"""How the spike trains that meet at a residual junction are weighed: two rules.

A junction layer J receives several terms (:mod:`snn2hw.snn`): the residual branch and the
shortcut (identity or 1x1 conv), each the spikes of one source layer. Each term's gain is
``source_scale(source) / scale(J)``. The rules differ in what the sources' scales are:

``per-source`` (the default; files without the key are read as this rule). Every source
keeps its own scale, balanced on its own, and each term is scaled by its own source's
scale over the junction's. The shortcut and the branch then arrive in one unit (the
junction's threshold) whatever their sources' thresholds were: in the paper's units the
identity shortcut gets weight scale(source)/scale(other source), not 1. This generalises
the shortcut normalisation of Hu et al. 2018 ("Spiking Deep Residual Network",
arXiv:1805.01352), which rescales the shortcut by the ratio of the thresholds it joins.

``shared`` (Sengupta et al. 2019, "Going Deeper in Spiking Neural Networks", section on
residual architectures). The layers whose spikes meet at a junction (its *fan-in layers*:
the shortcut's source and the branch's last spiking layer) use one and the same threshold,
so an identity shortcut keeps weight 1: every term of the junction has the same gain and
the junction's weights are the ANN's weights times one factor. Fan-in layers are grouped
(a layer that feeds two junctions joins both groups into one); a group's members all get
the group's scale, as threshold and as source scale (rate matching does not apply to
them: it would give them different units again). How the group's scale is set:

- ``max-act``: the largest of the members' own max-act scales (their largest ANN
  activation, or the percentile), so no member's activations exceed it;
- ``spike-norm``, layer by layer: the first member to be balanced (in topological order;
  the network input if it is a member) sets the group's threshold with Spike-Norm's own
  rule; every later member takes that threshold instead of its own largest current (the
  paper balances the junction, not the layers that feed it). A later member whose largest
  current (or percentile) exceeds the shared threshold gets a warning: it saturates.

The junction itself is balanced as any layer by both rules.
"""
from __future__ import annotations

from .errors import InputError
from .snn import SpikingNetwork

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
