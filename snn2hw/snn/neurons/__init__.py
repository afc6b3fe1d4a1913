"""Neuron kinds (registry), the arithmetics they run over, and the float neuron.

Registering a kind: one module with a :class:`NeuronKind` subclass decorated with
``@register(name)``, and its name in the import line below. The kinds and the registry do
not import torch (the CLI's parser lists the kinds before torch loads); the dynamics and
:func:`float_neuron` are loaded on first use."""
from __future__ import annotations

from . import integrate_fire  # noqa: F401  (the shipped kinds: zero, subtract)
from .registry import NeuronKind, check_reset, get, names, register  # noqa: F401

_DYNAMICS = ("Arithmetic", "FloatArithmetic", "Neuron")


def __getattr__(name: str):
    if name in _DYNAMICS:
        from . import dynamics

        return getattr(dynamics, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def float_neuron(threshold: float = 1.0, reset: str = "zero"):
    """The float IF neuron of the simulator and Spike-Norm."""
    from .dynamics import FloatArithmetic, Neuron

    return Neuron(reset, FloatArithmetic(threshold))
