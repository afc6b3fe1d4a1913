"""The imported ANN (snn2hw's graph IR) as a flat ``torch.nn.Sequential`` for the peers.

SpikingJelly's ann2snn and sinabs' ``from_model`` take a torch module whose ReLUs they
replace with IF neurons; sinabs' weight normalisation also walks the module's named
children. Rebuilding the module from the very graph snn2hw converts (weights copied from
the ONNX file) makes "the same ANN" literal: :func:`check_same` compares its outputs with
snn2hw's own ANN evaluation.

Supported: a chain of Conv, Dense (Linear), AvgPool, Flatten and ReLU nodes, which covers
VGG-style networks. Residual junctions (Add) and concatenations are refused with the
names of the nodes.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from snn2hw import ann, ir
from snn2hw.errors import InputError

SEQUENTIAL = (ir.Conv, ir.Dense, ir.AvgPool, ir.Flatten, ir.ReLU)


def _param(array: np.ndarray) -> nn.Parameter:
    return nn.Parameter(torch.as_tensor(np.asarray(array), dtype=torch.float32),
                        requires_grad=False)


def _symmetric(node: ir.Node, padding: tuple[int, int, int, int]) -> tuple[int, int]:
    top, left, bottom, right = padding
    if top != bottom or left != right:
        raise InputError(f"node {node.name}: asymmetric padding {padding} has no "
                         "torch.nn layer the peers convert", node=node.name)
    return top, left


def _conv(node: ir.Conv) -> nn.Module:
    out_c, in_per_group = node.weight.shape[:2]
    conv = nn.Conv2d(in_per_group * node.groups, out_c, node.weight.shape[2:],
                     stride=node.stride, padding=_symmetric(node, node.padding),
                     dilation=node.dilation, groups=node.groups, bias=node.bias is not None)
    conv.weight = _param(node.weight)
    if node.bias is not None:
        conv.bias = _param(node.bias)
    return conv


def _dense(node: ir.Dense) -> nn.Module:
    lin = nn.Linear(node.weight.shape[1], node.weight.shape[0], bias=node.bias is not None)
    lin.weight = _param(node.weight)
    if node.bias is not None:
        lin.bias = _param(node.bias)
    return lin


def _avgpool(node: ir.AvgPool) -> nn.Module:
    if node.ceil_mode or node.divisor_override:
        raise InputError(f"node {node.name}: ceil-mode average pooling is not converted "
                         "for the peers", node=node.name)
    return nn.AvgPool2d(node.kernel, node.stride, _symmetric(node, node.padding),
                        count_include_pad=node.count_include_pad)


BUILDERS = {ir.Conv: _conv, ir.Dense: _dense, ir.AvgPool: _avgpool,
            ir.Flatten: lambda node: nn.Flatten(), ir.ReLU: lambda node: nn.ReLU()}


def to_sequential(graph: ir.Graph) -> nn.Sequential:
    """The graph as ``nn.Sequential`` (children named "0", "1", ...), float32, eval mode."""
    nodes = [n for n in graph.nodes.values() if not isinstance(n, ir.Input)]
    bad = [f"{n.name} ({type(n).__name__})" for n in nodes if not isinstance(n, SEQUENTIAL)]
    prev = graph.input
    for n in nodes:
        if n.inputs != [prev] and not bad:
            bad.append(f"{n.name} (not a chain: inputs {', '.join(n.inputs)})")
        prev = n.name
    if bad:
        raise InputError("the peers' converters are run on sequential networks only; not "
                         f"converted: {', '.join(bad)}")
    return nn.Sequential(*[BUILDERS[type(n)](n) for n in nodes]).eval()


def check_same(graph: ir.Graph, model: nn.Module, x: np.ndarray, atol: float = 1e-4
               ) -> float:
    """Largest difference between the module's and snn2hw's ANN outputs on ``x``; raises
    if it exceeds ``atol`` times the output range (then it is not the same ANN)."""
    with torch.no_grad():
        ours = ann.predict(graph, x)
        theirs = model(torch.as_tensor(np.asarray(x, dtype=np.float32))).numpy()
    diff = float(np.max(np.abs(ours - theirs))) if len(x) else 0.0
    scale = max(float(np.max(np.abs(ours))) if len(x) else 0.0, 1.0)
    if diff > atol * scale:
        raise RuntimeError(f"the rebuilt torch module differs from the ONNX model by {diff}")
    return diff
