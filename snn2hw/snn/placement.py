"""Fold channel placements (one input of a concatenation, :class:`snn2hw.ir.Place`) into the
ops after them in a term's chain, so a synapse from a concatenated source is as cheap as any:

- two placements compose into one;
- average pooling works per channel: pool first, then place;
- a conv after a placement reads only the placed channels: the conv with the matching
  input-channel slice of its weights (with groups, the groups those channels belong to,
  then the placement of their output channels);
- flatten then dense: the dense layer's matching column slice.

Each rewrite is an identity of the linear maps (bias excluded: a layer's bias is computed
from the graph, not from its terms), so the folded chain equals the original exactly. New
nodes are named ``op[place]`` so that per-op counts (MACs, pooling additions) stay unique.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import ir


def _conv(place: ir.Place, conv: ir.Conv, channels: int) -> list[ir.Node] | None:
    name = f"{conv.name}[{place.name}]"
    if conv.groups == 1:
        weight = conv.weight[:, place.offset:place.offset + channels]
        return [replace(conv, name=name, weight=np.ascontiguousarray(weight), bias=None)]
    cin_g, cout_g = conv.weight.shape[1], conv.weight.shape[0] // conv.groups
    if place.offset % cin_g or channels % cin_g:
        return None  # the placed channels do not cover whole groups: leave it exact as is
    first, count = place.offset // cin_g, channels // cin_g
    weight = conv.weight[first * cout_g:(first + count) * cout_g]
    sliced = replace(conv, name=name, weight=np.ascontiguousarray(weight), bias=None,
                     groups=count, shape=(weight.shape[0], *conv.shape[1:]))
    return [sliced, ir.Place(f"{place.name}[{conv.name}]", [sliced.name], conv.shape,
                             offset=first * cout_g, total=conv.shape[0])]


def _step(ops: list[ir.Node], i: int, in_shape: tuple[int, ...]) -> list[ir.Node] | None:
    """The chain with the placement ``ops[i]`` moved or folded one step, or None."""
    place, rest = ops[i], ops[i + 1:]
    if not rest:
        return None
    nxt = rest[0]
    channels = in_shape[0]
    if isinstance(nxt, ir.Place):
        merged = replace(nxt, name=f"{nxt.name}[{place.name}]",
                         offset=nxt.offset + place.offset)
        return ops[:i] + [merged] + rest[1:]
    if isinstance(nxt, ir.AvgPool):
        pool = replace(nxt, name=f"{nxt.name}[{place.name}]", shape=(channels, *nxt.shape[1:]))
        moved = replace(place, name=f"{place.name}[{nxt.name}]", shape=nxt.shape)
        return ops[:i] + [pool, moved] + rest[1:]
    if isinstance(nxt, ir.Conv):
        folded = _conv(place, nxt, channels)
        return None if folded is None else ops[:i] + folded + rest[1:]
    dense, flat = (rest[1], [rest[0]]) if isinstance(nxt, ir.Flatten) and len(rest) > 1 \
        else (nxt, [])
    if isinstance(dense, ir.Dense):
        per = int(np.prod(in_shape[1:], dtype=np.int64))
        cols = slice(place.offset * per, (place.offset + channels) * per)
        flat = [replace(f, name=f"{f.name}[{place.name}]", shape=(channels * per,))
                for f in flat]
        sliced = replace(dense, name=f"{dense.name}[{place.name}]", bias=None,
                         weight=np.ascontiguousarray(dense.weight[:, cols]))
        return ops[:i] + flat + [sliced] + rest[1 + len(flat):]
    return None


def simplify(ops: list[ir.Node], in_shape: tuple[int, ...]) -> list[ir.Node]:
    """``ops`` (a term's chain from a source of shape ``in_shape``) with placements folded
    into later ops where an exact rewrite exists; other placements stay."""
    ops = list(ops)
    start = 0
    while True:
        index = next((k for k in range(start, len(ops)) if isinstance(ops[k], ir.Place)), None)
        if index is None:
            return ops
        shape = tuple(in_shape) if index == 0 else tuple(ops[index - 1].shape)
        stepped = _step(ops, index, shape)
        if stepped is None:
            start = index + 1
        else:
            ops = stepped
