"""Lowering of the ANN graph to a spiking network description.

Every ReLU becomes a layer of integrate-and-fire (IF) neurons, and so does the graph output
(the classifier, read out by spike count). Between spiking layers the ANN is linear: each
spiking layer's pre-activation is a sum of *terms*, each a chain of linear ops (conv, dense,
average pooling, flatten) applied to the spikes of one source layer (or of the input spike
train). A residual Add simply contributes several terms.

Time convention (identical to Lava's, one step per synapse hop): a spike emitted by a source
at step t reaches the layer at step t + 1 + ``delay``. ``delay`` aligns the terms of a
junction: a source fewer hops from the input than the junction's deepest source is delayed
by the difference, so all terms carry spikes caused by the same input steps.

A layer ``depth`` hops from the input is idle (v = 0, no spikes, no bias current) during
steps t < depth (0-based), when no input spike can have reached it yet; it integrates from
step ``depth`` on. For bias-free networks this changes nothing; with biases it makes every
layer's start well defined, and it is what the Lava graph does when it runs many samples
back to back (each layer is reset when the new sample's first spikes reach it).

Neuron (threshold normalised to 1, no leak, no refractory period, reset to zero):
    v[t] = v[t-1] + a[t];  s[t] = v[t] > 1;  v[t] = 0 where s[t]
with input current a[t] = sum_j g_j * chain_j(s_j[t-1-d_j]) + b / scale.
``scale`` (Lambda) of a layer is its threshold in ANN units: the ANN pre-activation at
which the neuron fires at every step. ``source_scale`` of a spike train is the ANN
activation that one spike per step of it stands for, and g_j = source_scale(source_j) /
scale(layer). For the input and by default, source_scale = scale; Spike-Norm can measure
it instead (rate matching, see :mod:`snn2hw.calibrate`). Calibration chooses both.

Residual junctions: a junction layer receives several terms, and each term's gain uses its
own source's scale over the junction's single scale, so the identity input and the residual
input arrive in the same unit (the junction's threshold) whatever their sources' thresholds
were; quantisation then gives both branches' weights the junction's one joint scale.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .. import ann, ir
from ..errors import InputError
from .placement import simplify


@dataclass
class Term:
    source: str
    ops: list[ir.Node]
    delay: int = 0


@dataclass
class SpikingLayer:
    name: str
    shape: tuple[int, ...]
    terms: list[Term]
    bias: np.ndarray | None
    depth: int
    is_output: bool = False

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def sources(self) -> list[str]:
        return [t.source for t in self.terms]


@dataclass
class SpikingNetwork:
    input: str
    input_shape: tuple[int, ...]
    layers: list[SpikingLayer]
    output: str
    graph: ir.Graph = field(repr=False, default=None)

    def layer(self, name: str) -> SpikingLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def depth(self) -> int:
        return self.layer(self.output).depth

    def last_use(self) -> dict[str, int]:
        """Index of the last layer that reads each source's spikes."""
        last: dict[str, int] = {}
        for index, layer in enumerate(self.layers):
            for src in layer.sources:
                last[src] = index
        return last


def _expand(graph: ir.Graph, name: str, stops: set[str], root: bool) -> list[Term]:
    node = graph.nodes[name]
    if not root and (name in stops or isinstance(node, ir.Input)):
        return [Term(name, [])]
    if isinstance(node, ir.Add):
        return [t for i in node.inputs for t in _expand(graph, i, stops, False)]
    if isinstance(node, ir.ReLU):  # only reached as root: its pre-activation
        return _expand(graph, node.inputs[0], stops, False)
    if node.linear:
        return [Term(t.source, t.ops + [node]) for t in _expand(graph, node.inputs[0], stops,
                                                                False)]
    if isinstance(node, ir.Input):
        return [Term(name, [])]
    raise InputError(f"node {name} ({node.kind}) cannot be lowered to a spiking layer")


def _bias(graph: ir.Graph, name: str, stops: set[str]) -> np.ndarray | None:
    """The constant part of a layer's pre-activation: evaluate it with all sources at 0."""
    memo: dict[str, torch.Tensor] = {}
    has_bias = [False]

    def value(n: str, root: bool) -> torch.Tensor:
        if n in memo:
            return memo[n]
        node = graph.nodes[n]
        if (not root and n in stops) or isinstance(node, ir.Input):
            out = torch.zeros((1, *node.shape), dtype=torch.float64)
        elif isinstance(node, ir.ReLU):
            out = value(node.inputs[0], False)
        elif isinstance(node, ir.Add):
            out = sum(value(i, False) for i in node.inputs)
        else:
            has_bias[0] |= getattr(node, "bias", None) is not None
            out = ann.apply_linear(node, value(node.inputs[0], False), with_bias=True)
        memo[n] = out
        return out

    result = value(name, True)[0].numpy()
    return result.copy() if has_bias[0] and np.any(result != 0) else None


def lower(graph: ir.Graph) -> SpikingNetwork:
    """Turn an ANN graph into spiking layers, terms and delays (see module docstring)."""
    spiking = [n for n, node in graph.nodes.items() if isinstance(node, ir.ReLU)]
    if graph.output not in spiking:
        spiking.append(graph.output)
    stops = set(spiking)
    depth: dict[str, int] = {graph.input: 0}
    layers = []
    for name in graph.nodes:
        if name not in stops:
            continue
        terms = _expand(graph, name, stops, root=True)
        if not terms:
            raise InputError(f"spiking layer {name} has no inputs")
        deepest = max(depth[t.source] for t in terms)
        for t in terms:
            t.delay = deepest - depth[t.source]
            t.ops = simplify(t.ops, graph.nodes[t.source].shape)
        depth[name] = deepest + 1
        layers.append(SpikingLayer(name, graph.nodes[name].shape, terms,
                                   _bias(graph, name, stops), depth[name],
                                   is_output=(name == graph.output)))
    return SpikingNetwork(graph.input, graph.input_shape, layers, graph.output, graph)
