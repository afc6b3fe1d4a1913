"""The calibrated float SNN as a NIR graph (no NIR import here: plain arrays and specs,
turned into ``nir`` nodes by :mod:`.write`).

Every spiking layer becomes one ``IF`` node (r = 1, v_threshold = 1, v_reset = 0: the
thresholds are normalised, and each synapse's gain source_scale / scale is folded into
its last weighted op, see :mod:`snn2hw.snn`); every term of a layer becomes a chain of
``Conv2d`` / ``Affine`` / ``SumPool2d`` / ``AvgPool2d`` / ``Flatten`` nodes from the source
node to the IF node, so a residual junction is several edges into one IF node. Average
pooling followed by a weighted op is written as ``SumPool2d`` with 1/k² folded into that
op (every NIR reader has SumPool2d; sinabs has no AvgPool2d); a trailing one stays
``AvgPool2d``. A term without a weighted op (an identity shortcut) whose gain is not 1
gets a diagonal 1x1 ``Conv2d`` (or a diagonal ``Affine``) holding the gain (not a
grouped conv: nir 1.0.8's type check reads a grouped conv's input channels wrongly). The layer's
bias current (bias / scale) goes into the last op of its first term. Weighted ops without
bias get a zero bias (``Affine``, never ``Linear``: sinabs reads no ``Linear``).

Time: with ``time="same-step"`` (default) nothing is added: every reader (sinabs, snnTorch)
moves a spike through the whole network within one step. With ``time="hop"`` each term
ends in a ``Delay`` node of 1 + delay steps: snn2hw's own convention (one step per hop and
the shortcut alignment), the one Lava runs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from snn2hw import ir
from snn2hw.errors import InputError

TIMES = ("same-step", "hop")


@dataclass
class Spec:
    """One NIR node to be: its kind and fields (arrays)."""
    kind: str
    fields: dict = field(default_factory=dict)


@dataclass
class Built:
    nodes: dict[str, Spec]
    edges: list[tuple[str, str]]


def _names(net) -> dict[str, str]:
    """Our names as identifiers (nirtorch makes torch modules of them: no dots), unique."""
    out, used = {}, set()
    for name in [net.input] + [la.name for la in net.layers]:
        base = re.sub(r"\W", "_", name) or "node"
        base = base if not base[0].isdigit() else f"n_{base}"
        cand, k = base, 1
        while cand in used:
            cand, k = f"{base}_{k}", k + 1
        used.add(cand)
        out[name] = cand
    return out


def _op_spec(op: ir.Node, in_shape: tuple[int, ...], where: str) -> Spec:
    if isinstance(op, ir.Conv):
        top, left, bottom, right = op.padding
        if (top, left) != (bottom, right):
            raise InputError(f"{where}: conv {op.name} has asymmetric padding {op.padding}; "
                             "NIR's Conv2d pads both sides alike")
        return Spec("Conv2d", {"input_shape": tuple(in_shape[1:]),
                               "weight": ungrouped(op.weight, op.groups),
                               "stride": op.stride, "padding": (top, left),
                               "dilation": op.dilation, "groups": 1,
                               "bias": np.zeros(op.weight.shape[0])})
    if isinstance(op, ir.Dense):
        return Spec("Affine", {"weight": op.weight.copy(), "bias": np.zeros(op.weight.shape[0])})
    if isinstance(op, ir.AvgPool):
        if any(op.padding) or op.ceil_mode or op.divisor_override:
            raise InputError(f"{where}: average pooling {op.name} with padding or ceil_mode "
                             "has no NIR form")
        return Spec("AvgPool2d", {"kernel_size": op.kernel, "stride": op.stride,
                                  "padding": (0, 0)})
    if isinstance(op, ir.Flatten):
        return Spec("Flatten", {"input_type": {"input": np.array(in_shape)}, "start_dim": 0,
                                "end_dim": -1})
    raise InputError(f"{where}: {op.kind} {op.name} (a channel concatenation) has no NIR "
                     "form in snn2hw yet")


def ungrouped(weight: np.ndarray, groups: int) -> np.ndarray:
    """A grouped conv's kernel as the equivalent full one (zeros between the groups):
    nir 1.0.8's type check takes a Conv2d's input channels from weight.shape[1] alone, so
    a grouped conv makes ``nir.NIRGraph`` and ``nir.read`` fail."""
    if groups == 1:
        return weight.copy()
    c_out, c_in_g = weight.shape[:2]
    out_g = c_out // groups
    full = np.zeros((c_out, c_in_g * groups, *weight.shape[2:]))
    for g in range(groups):
        full[g * out_g:(g + 1) * out_g, g * c_in_g:(g + 1) * c_in_g] = \
            weight[g * out_g:(g + 1) * out_g]
    return full


def _gain_spec(shape: tuple[int, ...], gain: float) -> Spec:
    if len(shape) == 3:
        c = shape[0]
        return Spec("Conv2d", {"input_shape": tuple(shape[1:]),
                               "weight": np.eye(c)[:, :, None, None] * gain,
                               "stride": (1, 1), "padding": (0, 0), "dilation": (1, 1),
                               "groups": 1, "bias": np.zeros(c)})
    n = int(np.prod(shape))
    return Spec("Affine", {"weight": np.eye(n) * gain, "bias": np.zeros(n)})


def _chain(term, shapes: dict, layer, gain: float, bias: np.ndarray | None,
           where: str) -> list[Spec]:
    """The NIR nodes of one term, gain and bias folded in."""
    specs, shape = [], tuple(shapes[term.source])
    ops = list(term.ops)
    for i, op in enumerate(ops):
        spec = _op_spec(op, shape, where)
        later = [s for s in ops[i + 1:] if isinstance(s, (ir.Conv, ir.Dense))]
        if spec.kind == "AvgPool2d" and later:
            spec.kind = "SumPool2d"
            spec.fields["pending"] = 1.0 / float(np.prod(op.kernel))
        specs.append(spec)
        shape = tuple(op.shape)
    factor = 1.0
    for spec in specs:  # each SumPool's 1/k² goes into the next weighted op
        factor *= spec.fields.pop("pending", 1.0)
        if "weight" in spec.fields:
            spec.fields["weight"] = spec.fields["weight"] * factor
            factor = 1.0
    weighted = [s for s in specs if "weight" in s.fields]
    if weighted:  # the chain is linear: the gain can go into any of its weighted ops
        weighted[-1].fields["weight"] = weighted[-1].fields["weight"] * gain
        gain = 1.0
    if gain != 1.0 or (bias is not None and not (specs and "weight" in specs[-1].fields)):
        specs.append(_gain_spec(tuple(layer.shape), gain))
    if bias is not None:
        last = specs[-1]
        if last.kind == "Conv2d":
            per = bias.reshape(layer.shape[0], -1)
            if not np.all(per == per[:, :1]):
                raise InputError(f"{where}: its bias differs within a channel; NIR's Conv2d "
                                 "has one bias per channel")
            last.fields["bias"] = per[:, 0].copy()
        else:
            last.fields["bias"] = bias.reshape(-1).copy()
    return specs


def build(net, scales: dict[str, float], source_scales: dict[str, float],
          time: str = "same-step") -> Built:
    """The NIR nodes and edges of ``net`` under ``time`` (see the module docstring)."""
    if time not in TIMES:
        raise InputError(f"unknown NIR time convention {time!r}; known: {', '.join(TIMES)}")
    names = _names(net)
    shapes = {net.input: tuple(net.input_shape)} | {la.name: tuple(la.shape)
                                                   for la in net.layers}
    nodes = {"input": Spec("Input", {"input_type": {"input": np.array(net.input_shape)}})}
    names[net.input] = "input"
    edges: list[tuple[str, str]] = []
    for layer in net.layers:
        scale = scales[layer.name]
        target = names[layer.name]
        ones = np.ones(layer.shape)
        nodes[target] = Spec("IF", {"r": ones, "v_threshold": ones.copy(),
                                    "v_reset": np.zeros(layer.shape)})
        for j, term in enumerate(layer.terms):
            bias = None if (j or layer.bias is None) else layer.bias / scale
            specs = _chain(term, shapes, layer, source_scales[term.source] / scale, bias,
                           f"layer {layer.name}")
            if time == "hop":
                specs.append(Spec("Delay", {"delay": np.full(layer.shape,
                                                             float(1 + term.delay))}))
            prev = names[term.source]
            for k, spec in enumerate(specs):
                name = f"{target}_t{j}_{k}_{spec.kind.lower()}"
                nodes[name] = spec
                edges.append((prev, name))
                prev = name
            edges.append((prev, target))
    out = names[net.output]
    nodes["output"] = Spec("Output", {"output_type": {"output": np.array(shapes[net.output])}})
    edges.append((out, "output"))
    return Built(nodes, edges)
