"""The neuron reset modes: what an integrate-and-fire neuron does to its potential after a
spike. Every simulator (float, fixed-point) and backend implements each mode listed here;
a hardware profile says which of them its target runs (``neuron.reset``).

- ``zero``: ``v = 0`` (the paper's neuron; the charge above threshold is lost);
- ``subtract``: ``v -= threshold`` (reset by subtraction; the charge above threshold is
  kept for the next spike).
"""
from __future__ import annotations

from ..errors import InputError

RESETS = ("zero", "subtract")
DEFAULT_RESET = "zero"


def check_reset(reset: str) -> str:
    """``reset`` if it is a known mode, else an InputError listing the known ones."""
    if reset not in RESETS:
        raise InputError(f"unknown reset mode {reset!r}; known: {', '.join(RESETS)}")
    return reset
