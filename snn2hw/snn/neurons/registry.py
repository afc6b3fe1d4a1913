"""The neuron kinds, by name: what a neuron does after it integrates and fires.

A kind is a :class:`NeuronKind` subclass registered under the name profiles, calibrations
and exports use for it (their ``reset`` field and ``neuron.reset`` in a profile). It
defines, once, the parts of the dynamics that do not depend on the number format: the
potential a sample starts from and the reset after a spike. The number format (float, or
Lava's fixed point with its u register, decays and clip) is an *arithmetic*
(:mod:`.dynamics`); :class:`.dynamics.Neuron` runs a kind over an arithmetic, so the float
simulator, Spike-Norm and the bit-accurate fixed-point simulator share one definition.

This module imports nothing of snn2hw but the errors: the hardware profiles read the known
names from it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import InputError

if TYPE_CHECKING:  # torch only for the annotations: the CLI reads the names before torch
    import torch


class NeuronKind:
    """One neuron kind. Subclasses set ``name`` (by :func:`register`) and define
    :meth:`reset`; :meth:`initial_potential` is 0 unless they say otherwise."""

    name: str = ""
    # True if the reset only acts where v > threshold > 0 and leaves v in [0, v] there: then
    # |v| never exceeds max(|v0|, threshold) + the sum of |input| (the fixed-point
    # simulator then skips the clip test on chunks that cannot reach the clip)
    bounded_reset: bool = False

    def initial_potential(self, threshold: float) -> float:
        """v at the start of every sample (before its first input), for ``threshold``."""
        return 0.0

    def reset(self, v: torch.Tensor, fired: torch.Tensor, threshold: float,
              scratch: torch.Tensor) -> None:
        """After the spike test: change ``v`` in place where ``fired`` (bool, v's shape).
        ``scratch`` is a tensor of v's shape and dtype the kind may overwrite. Must be
        exact in the arithmetic's integers (the fixed-point run holds integers in float64)."""
        raise NotImplementedError

    def reset_spikes(self, v: torch.Tensor, fired: torch.Tensor, threshold: float) -> None:
        """:meth:`reset` with ``fired`` as the simulator's spike buffer holds it (1.0 where
        the neuron fired, 0.0 elsewhere, any float dtype). Kinds override it with one
        in-place op; this default goes through :meth:`reset`."""
        self.reset(v, fired.bool(), threshold, v.new_empty(v.shape))


_KINDS: dict[str, NeuronKind] = {}


def register(name: str):
    """Class decorator: register one instance of the kind under ``name``; a second kind
    with the same name is an error at import time."""
    def add(cls: type[NeuronKind]) -> type[NeuronKind]:
        if name in _KINDS:
            raise ValueError(f"neuron kind {name!r} registered twice")
        cls.name = name
        _KINDS[name] = cls()
        return cls
    return add


def names() -> tuple[str, ...]:
    """The registered kinds, in registration order."""
    return tuple(_KINDS)


def get(name: str) -> NeuronKind:
    """The kind registered as ``name``; an InputError listing the known ones otherwise."""
    kind = _KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise InputError(f"unknown reset mode {name!r}; known: {', '.join(_KINDS)}")
    return kind


def check_reset(reset: str) -> str:
    """``reset`` if it names a registered kind, else the InputError of :func:`get`."""
    get(reset)
    return reset
