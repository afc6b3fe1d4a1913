"""Per-channel scales folded into the weights, so that hardware keeps one threshold per layer.

A ReLU is positively homogeneous: dividing channel c of a layer's pre-activation by
``k[c] > 0`` (that channel's incoming weights and bias) and multiplying that channel's
outgoing weights (every synapse that reads it) by ``k[c]`` leaves the ANN's function
unchanged, while channel c's activation, in the layer's new units, is ``a[c] / k[c]``. With
``k[c] = scale[c] / max(scale)``, every channel of the layer has the same scale ``max(scale)``:
one threshold per layer on hardware, and each channel fires at the rate its own scale would
give it. :func:`fold_channels` does this on a :class:`SpikingNetwork` (each term's chain is a
copy; the ANN graph is left as it is), :func:`calibrated_network` applies a calibration's
factors and bias corrections to a freshly lowered network.

Where a chain has a weighted op (conv or dense) on the way, the factor goes into its output
rows (incoming side) or input columns (outgoing side), through average pooling, flatten and
channel placement. A chain without one cannot carry it: a pure-identity shortcut into a
residual junction (``relu(conv(b) + a)``) or a chain of pooling only. Such a term gets a
diagonal op of its own, a 1x1 depthwise convolution (a dense diagonal for flat layers) with
weight ``k_source[c] / k_junction[c]``, placed at its end. It keeps the identity's
connectivity (one synapse per neuron) and lets the junction and its identity source keep
their own factors; the quantiser rounds it with the junction's one joint scale like any other
synapse into the junction. A term whose source is the input carries no source factor (the
input has one scale).

The output layer keeps one scale: per-class scales would change which class wins.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import ir
from ..snn import SpikingLayer, SpikingNetwork, Term


def channels(shape) -> int:
    """Channels of a layer: the first axis (a flat layer: every neuron is a channel)."""
    return int(shape[0])


def per_channel(values: np.ndarray, shape) -> np.ndarray:
    """A per-channel vector shaped to broadcast over a layer of ``shape``."""
    return np.asarray(values, dtype=np.float64).reshape((-1,) + (1,) * (len(shape) - 1))


# The smallest per-channel factor. A channel's incoming weights are divided by its factor,
# and a fixed-point export rounds every weight into a layer with one joint scale set by the
# largest: a channel with a tiny scale (a dense layer's neuron active on one or two of the
# calibration images) would inflate its weights hundreds of times and leave the others a
# few integer levels. The floor bounds that spread to 16 (4 of the weight bits); such a
# channel fires at scale[c] / (FACTOR_FLOOR * max(scale)) < 1 of full rate at its scale.
FACTOR_FLOOR = 1.0 / 16


def factors_from_scales(scales: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-channel factors ``max(scale[c] / max(scale), FACTOR_FLOOR)`` and the layer's one
    scale ``max(scale)``. A channel without a positive scale (it never activates) keeps
    factor 1."""
    scales = np.asarray(scales, dtype=np.float64)
    top = float(scales.max(initial=0.0))
    if top <= 0:
        return np.ones_like(scales), top
    return np.where(scales > 0, np.maximum(scales / top, FACTOR_FLOOR), 1.0), top


def _diagonal(name: str, source: str, shape, diag: np.ndarray) -> ir.Node:
    """A channel-wise multiplication by ``diag`` as a standard op: a 1x1 depthwise conv, or
    a diagonal dense layer for a flat shape."""
    if len(shape) == 3:
        return ir.Conv(name, [source], tuple(shape), weight=diag.reshape(-1, 1, 1, 1),
                       groups=int(shape[0]))
    return ir.Dense(name, [source], tuple(shape), weight=np.diag(diag.reshape(-1)))


def _scale_rows(ops: list[ir.Node], in_shape, factors: np.ndarray, name: str, source: str,
                out_shape) -> list[ir.Node]:
    """The chain with its output channel c multiplied by ``factors[c]``: in the output rows
    of its last conv or dense op if only average pooling, placement and flatten (of
    channel-constant factors) follow it, else by a diagonal op appended to it."""
    f = np.asarray(factors, dtype=np.float64)
    for i in range(len(ops) - 1, -1, -1):
        op = ops[i]
        op_in = tuple(ops[i - 1].shape) if i else tuple(in_shape)
        if isinstance(op, ir.Conv | ir.Dense):
            shape = (-1,) + (1,) * (op.weight.ndim - 1)
            bias = None if op.bias is None else op.bias * f
            new = replace(op, weight=op.weight * f.reshape(shape), bias=bias)
            return ops[:i] + [new] + ops[i + 1:]
        if isinstance(op, ir.Place):      # channels outside the placed range are zeros
            f = f[op.offset:op.offset + op_in[0]]
        elif isinstance(op, ir.Flatten):
            grid = f.reshape(op_in[0], -1)
            if not np.all(grid == grid[:, :1]):
                break
            f = grid[:, 0]
        elif not isinstance(op, ir.AvgPool):
            break
    return list(ops) + [_diagonal(name, source, out_shape, np.asarray(factors, np.float64))]


def _scale_columns(ops: list[ir.Node], in_shape, factors: np.ndarray, name: str,
                   source: str) -> list[ir.Node]:
    """The chain with its input channel c multiplied by ``factors[c]``: in the input columns
    of its first conv or dense op (through average pooling, placement and flatten), else
    by a diagonal op appended to it."""
    g = np.broadcast_to(per_channel(factors, in_shape), in_shape)  # per input element
    shape = tuple(in_shape)
    for i, op in enumerate(ops):
        if isinstance(op, ir.Conv):
            grid = g.reshape(shape[0], -1)
            if not np.all(grid == grid[:, :1]):     # a conv reads channels, never a flatten
                raise ValueError(f"{name}: factors vary within a channel before a conv")
            chan = grid[:, 0]
            c_out, c_in_g = op.weight.shape[:2]
            index = (np.arange(c_out)[:, None] // (c_out // op.groups)) * c_in_g \
                + np.arange(c_in_g)[None, :]
            new = replace(op, weight=op.weight * chan[index][:, :, None, None])
            return ops[:i] + [new] + ops[i + 1:]
        if isinstance(op, ir.Dense):
            new = replace(op, weight=op.weight * g.reshape(1, -1))
            return ops[:i] + [new] + ops[i + 1:]
        if isinstance(op, ir.AvgPool):
            g = np.broadcast_to(g.reshape(shape[0], -1)[:, :1, None], op.shape)
        elif isinstance(op, ir.Place):
            full = np.ones((op.shape[0],) + (1,) * (len(op.shape) - 1))
            full[op.offset:op.offset + shape[0]] = g.reshape(shape[0], -1)[:, :1].reshape(
                (-1,) + (1,) * (len(op.shape) - 1))
            g = np.broadcast_to(full, op.shape)
        elif isinstance(op, ir.Flatten):
            g = g.reshape(-1)
        shape = tuple(op.shape)
    per_elem = g.reshape(shape[0], -1)
    diag = per_elem[:, 0] if np.all(per_elem == per_elem[:, :1]) else None
    if diag is None:  # only a flatten and placement can spread a channel: one per element
        diag = g.reshape(-1)
    return list(ops) + [_diagonal(name, source, shape, diag)]


def fold_channels(net: SpikingNetwork, layer: str, factors: np.ndarray) -> SpikingNetwork:
    """``net`` with channel c of ``layer`` divided by ``factors[c]`` (incoming weights and
    bias) and multiplied back in every synapse that reads it (see the module docstring)."""
    factors = np.asarray(factors, dtype=np.float64)
    shapes = {net.input: net.input_shape} | {la.name: la.shape for la in net.layers}
    if factors.shape != (channels(shapes[layer]),) or np.any(factors <= 0):
        raise ValueError(f"layer {layer}: need {channels(shapes[layer])} positive factors")
    layers = []
    for la in net.layers:
        terms = []
        for t in la.terms:
            ops = list(t.ops)
            if t.source == layer:
                ops = _scale_columns(ops, shapes[layer], factors,
                                     f"{layer}->{la.name}:scale", t.source)
            if la.name == layer:
                ops = _scale_rows(ops, shapes[t.source], 1.0 / factors,
                                  f"{t.source}->{la.name}:scale", t.source, la.shape)
            terms.append(Term(t.source, ops, t.delay))
        bias = la.bias
        if la.name == layer and bias is not None:
            bias = bias / per_channel(factors, la.shape)
        layers.append(SpikingLayer(la.name, la.shape, terms, bias, la.depth, la.is_output))
    return SpikingNetwork(net.input, net.input_shape, layers, net.output, net.graph)


def add_bias(net: SpikingNetwork, layer: str, offsets: np.ndarray) -> SpikingNetwork:
    """``net`` with ``offsets[c]`` (ANN units) added to every neuron of channel c of
    ``layer``'s bias; a layer without a bias gets one."""
    layers = []
    for la in net.layers:
        if la.name == layer:
            base = np.zeros(la.shape) if la.bias is None else la.bias
            la = replace(la, bias=base + per_channel(offsets, la.shape))
        layers.append(la)
    return replace(net, layers=layers)


def fold_all(net: SpikingNetwork, factors: dict[str, np.ndarray]) -> SpikingNetwork:
    """Every layer's factors folded in, in the network's order."""
    for la in net.layers:
        if la.name in factors:
            net = fold_channels(net, la.name, factors[la.name])
    return net


def calibrated_network(net: SpikingNetwork, cal) -> SpikingNetwork:
    """The network a calibration's scales are for (``cal``: a
    :class:`snn2hw.calibrate.result.Calibration`): its per-channel factors folded in and its
    bias offsets added. Without either it is ``net`` itself."""
    net = fold_all(net, cal.channel_factors or {})
    for name, offsets in (cal.bias_offsets or {}).items():
        net = add_bias(net, name, offsets)
    return net
