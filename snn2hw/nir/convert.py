"""NIR graph -> IR (:class:`snn2hw.ir.Graph`), thresholds kept as the network's scales.

Each neuron node (IF, or LIF without leak) becomes a ReLU node, i.e. a spiking layer of
snn2hw's IF neurons (reset to zero, no leak, spike where v > threshold). The NIR neuron

    v += r * (sum of its inputs);   spike where v > v_threshold;   v = 0 after a spike

is the same as snn2hw's with the synapses feeding it multiplied by r / v_threshold and a
normalised threshold of 1. When r / v_threshold is one number for the layer, it stays out
of the weights: the layer's scale is v_threshold / r (see :mod:`snn2hw.snn`: the gain of a
synapse is source_scale / scale, every source scale is 1 here). When it varies per channel
(conv) or per neuron (dense), it is folded into the rows of the one Conv2d/Affine/Linear
that feeds the neuron, exactly, and the layer's scale is the smallest v_threshold / r.

Pooling: ``AvgPool2d`` is average pooling; ``SumPool2d`` becomes a depthwise convolution
with a kernel of ones (the same sums, stored as any convolution).
"""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

from .. import ir
from ..errors import InputError, UnsupportedModelError
from ..onnx.convert import infer_shape
from .scan import NEURONS, UnsupportedNirNode

THRESHOLDS_KEY = "snn2hw.nir.thresholds"   # graph metadata: layer -> scale (JSON)
SOURCE_KEY = "snn2hw.source_format"


def _pair(value) -> tuple[int, int]:
    arr = np.atleast_1d(np.asarray(value)).astype(int).tolist()
    return (arr[0], arr[0]) if len(arr) == 1 else (arr[0], arr[1])


def order(nodes: dict, inputs: dict[str, list[str]], source: str) -> list[str]:
    """Topological order (ModelFileError-free: a cycle is an unsupported graph)."""
    done: list[str] = []
    waiting = {name: set(srcs) for name, srcs in inputs.items()}
    ready = [n for n in nodes if not waiting[n]]
    while ready:
        name = ready.pop(0)
        done.append(name)
        for other, srcs in waiting.items():
            if name in srcs:
                srcs.discard(name)
                if not srcs and other not in done and other not in ready:
                    ready.append(other)
    if len(done) != len(nodes):
        stuck = [n for n in nodes if n not in done]
        raise UnsupportedModelError([UnsupportedNirNode(n, type(nodes[n]).__name__, 0,
                                                        "part of a cycle (recurrent "
                                                        "connections are not supported)",
                                                        "") for n in stuck])
    return done


def _op(name: str, node, src: str, in_shape: tuple[int, ...]) -> ir.Node:
    kind = type(node).__name__
    if kind == "Conv2d":
        weight = np.asarray(node.weight, dtype=np.float64)
        bias = np.asarray(node.bias, dtype=np.float64).reshape(-1)
        pad = (0, 0) if isinstance(node.padding, str) else _pair(node.padding)
        return ir.Conv(name, [src], weight=weight, bias=bias if np.any(bias) else None,
                       stride=_pair(node.stride), padding=(pad[0], pad[1], pad[0], pad[1]),
                       dilation=_pair(node.dilation), groups=int(node.groups))
    if kind in ("Affine", "Linear"):
        bias = None if kind == "Linear" else np.asarray(node.bias, dtype=np.float64)
        return ir.Dense(name, [src], weight=np.asarray(node.weight, dtype=np.float64),
                        bias=bias if bias is not None and np.any(bias) else None)
    if kind == "AvgPool2d":
        return ir.AvgPool(name, [src], kernel=_pair(node.kernel_size),
                          stride=_pair(node.stride))
    if kind == "SumPool2d":
        kh, kw = _pair(node.kernel_size)
        channels = in_shape[0]
        return ir.Conv(name, [src], weight=np.ones((channels, 1, kh, kw)),
                       stride=_pair(node.stride), groups=channels)
    if kind == "Flatten":
        start, end = int(node.start_dim), int(node.end_dim)
        if start not in (0, -len(in_shape)) or end not in (-1, len(in_shape) - 1):
            raise InputError(f"node {name}: Flatten(start_dim={start}, end_dim={end}) of a "
                             f"{in_shape} tensor; snn2hw flattens whole (batch-less) "
                             "shapes only (start_dim=0, end_dim=-1)", node=name)
        return ir.Flatten(name, [src])
    raise InputError(f"node {name}: {kind} cannot be converted")  # the scan refused it


def _factor(node) -> np.ndarray:
    """r / v_threshold per neuron (r = 1 for a LIF without leak)."""
    r = 1.0 if type(node).__name__ == "LIF" else np.asarray(node.r, dtype=np.float64)
    return np.broadcast_to(r / np.asarray(node.v_threshold, dtype=np.float64),
                           np.shape(node.v_threshold)).astype(np.float64)


def _fold(name: str, factor: np.ndarray, shape, feeder: ir.Node | None,
          only_user: bool) -> tuple[float, ir.Node | None]:
    """The layer's scale and the feeding op with the per-neuron factors folded in."""
    flat = factor.reshape(-1) if factor.size > 1 else np.full(int(np.prod(shape)),
                                                              float(factor.reshape(-1)[0]))
    top = float(flat.max())
    if np.all(flat == top):
        return 1.0 / top, None
    rows = flat / top
    if isinstance(feeder, ir.Dense) and only_user:
        bias = None if feeder.bias is None else feeder.bias * rows
        return 1.0 / top, replace(feeder, weight=feeder.weight * rows[:, None], bias=bias)
    if isinstance(feeder, ir.Conv) and only_user:
        per_channel = rows.reshape(shape[0], -1)
        if np.all(per_channel == per_channel[:, :1]):
            scale = per_channel[:, 0]
            bias = None if feeder.bias is None else feeder.bias * scale
            return 1.0 / top, replace(feeder, weight=feeder.weight * scale[:, None, None,
                                                                           None], bias=bias)
    raise InputError(f"node {name}: r / v_threshold differs between neurons and cannot be "
                     "folded into the weights (it must be one value per layer, per channel "
                     "after a Conv2d, or per neuron after an Affine/Linear that feeds only "
                     "this node)", node=name)


def to_ir(graph, inputs: dict[str, list[str]], source: str) -> ir.Graph:
    users = {name: [d for d, srcs in inputs.items() if name in srcs] for name in graph.nodes}
    nodes: dict[str, ir.Node] = {}
    thresholds: dict[str, float] = {}
    input_name = output_name = ""
    for name in order(graph.nodes, inputs, source):
        node = graph.nodes[name]
        kind = type(node).__name__
        srcs = inputs[name]
        if kind == "Input":
            shape = tuple(int(d) for d in np.asarray(node.input_type["input"]).reshape(-1))
            nodes[name] = ir.Input(name, [], shape)
            input_name = name
            continue
        if kind == "Output":
            output_name = srcs[0]
            continue
        src = srcs[0]
        if len(srcs) > 1:  # several edges into one node: their sum
            src = f"{name}.sum"
            nodes[src] = ir.Add(src, list(srcs), nodes[srcs[0]].shape)
        in_shape = nodes[src].shape
        if kind in NEURONS:
            feeder = nodes.get(src) if len(srcs) == 1 else None
            scale, folded = _fold(name, _factor(node), in_shape, feeder,
                                  len(users.get(src, [])) == 1)
            if folded is not None:
                nodes[src] = folded
            thresholds[name] = scale
            op = ir.ReLU(name, [src])
        else:
            op = _op(name, node, src, in_shape)
        op.shape = infer_shape(op, [in_shape])
        nodes[name] = op
    metadata = {THRESHOLDS_KEY: json.dumps(thresholds), SOURCE_KEY: "nir",
                "snn2hw.preprocess": json.dumps({"mean": [0.0], "std": [1.0]})}
    return ir.Graph(nodes, input_name, output_name, metadata)
