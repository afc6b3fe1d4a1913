"""Read a NIR file and check every node before converting anything: one error lists every
node snn2hw cannot take, with the reason (as :mod:`snn2hw.onnx.scan` does for ONNX).

Supported: ``Input`` (one), ``Output`` (one, fed by a neuron node), ``Conv2d``, ``Affine``,
``Linear``, ``SumPool2d`` / ``AvgPool2d`` without padding, ``Flatten`` of a whole
(batch-less) shape, ``IF`` with ``v_reset = 0``, and ``LIF`` without leak (``tau`` and
``r`` infinite, ``v_leak = 0``: how snnTorch writes a ``Leaky`` neuron with ``beta = 1``,
whose input gain ``r dt / tau`` is 1). Several edges into one node are summed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelFileError, UnsupportedModelError, UnsupportedNode

NEURONS = ("IF", "LIF")
LINEAR = ("Conv2d", "Affine", "Linear", "SumPool2d", "AvgPool2d", "Flatten")


@dataclass(frozen=True)
class UnsupportedNirNode(UnsupportedNode):
    def describe(self) -> str:
        return f"{self.name} ({self.op_type}): {self.reason}"


def read(path: str | Path):
    """The NIR graph of ``path`` (ModelFileError if it cannot be read)."""
    import h5py
    import nir

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise ModelFileError(f"{path}: not a NIR file (not HDF5)")
    try:
        graph = nir.read(str(path))
    except Exception as exc:  # noqa: BLE001 - nir raises anything on a malformed file
        raise ModelFileError(f"{path}: cannot read NIR graph ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise ModelFileError(f"{path}: the file holds a single {type(graph).__name__} node, "
                             "not a NIR graph")
    return graph


def _all(value, test) -> bool:
    return bool(np.all(test(np.asarray(value, dtype=np.float64))))


def _neuron_reason(node) -> str | None:
    kind = type(node).__name__
    if kind == "IF":
        if not _all(node.v_reset, lambda v: v == 0):
            return "v_reset must be 0 (snn2hw's neurons reset to zero)"
        if not _all(node.r, lambda r: np.isfinite(r) & (r > 0)):
            return "r must be positive and finite"
    else:
        if not _all(node.tau, np.isinf) or not _all(node.r, np.isinf):
            return "a leaky LIF (finite tau) is not supported: only IF or a LIF with " \
                   "infinite tau and r (no leak)"
        if not _all(node.v_leak, lambda v: v == 0):
            return "v_leak must be 0"
    if not _all(node.v_threshold, lambda v: np.isfinite(v) & (v > 0)):
        return "v_threshold must be positive and finite"
    return None


def _padding_reason(node) -> str | None:
    pad = node.padding
    if isinstance(pad, str):
        return None if pad == "valid" else f"padding {pad!r} (give explicit padding)"
    return None


def node_reason(name: str, node, inputs: list[str], nodes: dict) -> str | None:
    """Why ``node`` cannot be converted, or None."""
    kind = type(node).__name__
    if kind in NEURONS:
        return _neuron_reason(node)
    if kind == "Conv2d":
        if np.asarray(node.weight).ndim != 4:
            return "weight must be 4-D (C_out, C_in/groups, kH, kW)"
        return _padding_reason(node)
    if kind in ("SumPool2d", "AvgPool2d"):
        if np.any(np.asarray(node.padding) != 0):
            return "pooling with padding is not supported"
        return None
    if kind in ("Affine", "Linear"):
        return None if np.asarray(node.weight).ndim == 2 else "weight must be 2-D"
    if kind == "Flatten":
        return None  # the shape is checked when converting (whole-shape flatten only)
    if kind == "Input":
        return None
    if kind == "Output":
        if len(inputs) != 1 or type(nodes[inputs[0]]).__name__ not in NEURONS:
            return "the output must be fed by exactly one IF (or non-leaky LIF) node: " \
                   "snn2hw reads a spiking layer's spike counts"
        return None
    if kind == "Delay":
        return "Delay nodes are not supported (snn2hw adds its own one-step-per-hop delays)"
    if kind == "NIRGraph":
        return "nested graphs are not supported"
    return f"{kind} nodes are not supported"


def hint_for(kind: str) -> str:
    if kind in ("LIF", "CubaLIF", "LI"):
        return "Only integrate-and-fire neurons run exactly: export IF neurons (or LIF " \
               "with beta = 1)."
    return ""


def scan(graph, source: str) -> dict[str, list[str]]:
    """The inputs of every node; raises UnsupportedModelError listing every node that
    cannot be converted, or ModelFileError for a malformed graph."""
    inputs: dict[str, list[str]] = {name: [] for name in graph.nodes}
    for src, dst in graph.edges:
        for end in (src, dst):
            if end not in graph.nodes:
                raise ModelFileError(f"{source}: edge ({src!r}, {dst!r}) names an unknown "
                                     "node")
        inputs[dst].append(src)
    bad = []
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    for kind in ("Input", "Output"):
        if kinds.count(kind) != 1:
            bad.append(UnsupportedNirNode("<graph>", "NIRGraph", 0,
                                          f"{kinds.count(kind)} {kind} nodes (need one)",
                                          ""))
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        reason = node_reason(name, node, inputs[name], graph.nodes)
        if reason is None and kind not in ("Input",) and not inputs[name]:
            reason = "the node has no inputs"
        if reason:
            bad.append(UnsupportedNirNode(name, kind, 0, reason, hint_for(kind)))
    if bad:
        raise UnsupportedModelError(bad)
    return inputs
