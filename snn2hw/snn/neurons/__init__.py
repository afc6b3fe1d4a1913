"""Neuron kinds (registry), the arithmetics they run over, and the float neuron.

Registering a kind: one module with a :class:`NeuronKind` subclass decorated with
``@register(name)``, and its name in the import line below."""
from . import integrate_fire  # noqa: F401  (the shipped kinds: zero, subtract)
from .dynamics import Arithmetic, FloatArithmetic, Neuron  # noqa: F401
from .registry import NeuronKind, check_reset, get, names, register  # noqa: F401


def float_neuron(threshold: float = 1.0, reset: str = "zero") -> Neuron:
    """The float IF neuron of the simulator and Spike-Norm."""
    return Neuron(reset, FloatArithmetic(threshold))
