"""Registry of ONNX op converters, keyed by (domain, op type), each valid from an opset on.

A converter module registers functions with :func:`register`. Each converter receives the
:class:`~snn2hw.onnx.convert.ImportContext` and the ``onnx.NodeProto`` and either emits IR nodes,
records constants, or aliases its output to its input. ``validate`` (optional) returns a
reason string when a node of a registered type still cannot be converted (an attribute we do
not support), so the importer can list every problem before converting anything.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

ACTIONS = ("converted", "folded", "removed", "constant", "ignored")


@dataclass(frozen=True)
class Converter:
    op_type: str
    domain: str
    since: int
    action: str
    convert: Callable
    validate: Callable | None = None


_REGISTRY: dict[tuple[str, str], list[Converter]] = {}

# Hints for ops a user is likely to have, and what to do instead.
HINTS: dict[str, str] = {
    "MaxPool": "replace MaxPool with AveragePool and retrain: the paper's conversion needs "
               "average pooling (a max of spike trains is not a rate).",
    "GlobalMaxPool": "replace global max pooling with global average pooling and retrain.",
    "Sigmoid": "use ReLU: integrate-and-fire rates approximate ReLU only.",
    "Tanh": "use ReLU: integrate-and-fire rates approximate ReLU only.",
    "LeakyRelu": "use ReLU: negative slopes have no spiking equivalent here.",
    "PRelu": "use ReLU: negative slopes have no spiking equivalent here.",
    "Softmax": "Softmax is allowed only as the model's final node.",
    "LSTM": "recurrent layers are not supported; use a feed-forward CNN.",
    "GRU": "recurrent layers are not supported; use a feed-forward CNN.",
    "RNN": "recurrent layers are not supported; use a feed-forward CNN.",
    "Concat": "concatenate activations along the channel axis (axis 1) only.",
    "Pad": "use zero padding (nn.ZeroPad2d or the conv's own padding) right before a conv "
           "or average pool.",
    "BatchNormalization": "export the model in eval mode so BatchNorm has fixed statistics.",
}


def register(op_type: str, since: int = 1, domain: str = "", action: str = "converted",
             validate: Callable | None = None) -> Callable:
    if action not in ACTIONS:
        raise ValueError(f"unknown converter action {action!r}")

    def decorate(fn: Callable) -> Callable:
        key = (domain, op_type)
        entries = _REGISTRY.setdefault(key, [])
        if any(c.since == since for c in entries):
            raise ValueError(f"duplicate converter for {domain or 'ai.onnx'}::{op_type} "
                             f"since opset {since}")
        entries.append(Converter(op_type, domain, since, action, fn, validate))
        entries.sort(key=lambda c: c.since)
        return fn

    return decorate


def lookup(op_type: str, opset: int, domain: str = "") -> Converter | None:
    """The converter with the highest ``since`` not above ``opset``."""
    found = None
    for entry in _REGISTRY.get((domain or "", op_type), []):
        if entry.since <= opset:
            found = entry
    return found


def registered() -> list[Converter]:
    return [c for entries in _REGISTRY.values() for c in entries]


def hint_for(op_type: str) -> str:
    return HINTS.get(op_type, "retrain or re-export with supported ops "
                              "(see `snn2hw ops` for the list).")
