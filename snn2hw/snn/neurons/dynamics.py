"""A neuron = a kind (:mod:`.registry`: initial potential, reset) run over an arithmetic
(the number format). One loop, :meth:`Neuron.integrate`, is the dynamics of every neuron
the simulators run, per time step ``t``:

    v = arithmetic.charge(v, drive[t])     integrate (float: v + I; fixed: decay, add, clip)
    fired = v > arithmetic.threshold       fire (strict, as Lava's spike test)
    kind.reset_spikes(v, fired, threshold) reset (fired: 1.0 or 0.0 in the spike buffer)

where ``drive = arithmetic.drive(current, state, idle)`` turns the synaptic current of a
whole chunk of steps into what is added to v each step (float: the current itself; Lava's
fixed point: the wrapped u register plus the bias). The state tensor is the arithmetic's:
v alone in float, (u, v) in fixed point; v starts at the kind's initial potential.
"""
from __future__ import annotations

from typing import Protocol

import torch

from .registry import NeuronKind, get


class Arithmetic(Protocol):
    threshold: float

    def initial(self, shape, device, dtype, v0: float) -> torch.Tensor:
        """A fresh state for ``shape`` neurons with potential ``v0``."""

    def potential_value(self, v: float) -> float:
        """``v`` as this arithmetic can hold it (fixed point: rounded down)."""

    def potential(self, state: torch.Tensor) -> torch.Tensor:
        """The view of ``state`` that is v."""

    def drive(self, current: torch.Tensor, state: torch.Tensor, idle: int) -> torch.Tensor:
        """(T, B, ...) input current of a chunk -> (T, B, ...) added to v each step; may
        overwrite ``current`` (its caller's statistics are taken before)."""

    def charge(self, v: torch.Tensor, drive: torch.Tensor) -> None:
        """One step's integration, in place."""

    def finish(self) -> None:
        """End of a chunk (statistics)."""

    def working(self, v: torch.Tensor) -> torch.Tensor:
        """The tensor the step loop updates for ``v`` (``v`` itself, or an exact copy in a
        faster dtype that :meth:`release` writes back)."""

    def release(self, v: torch.Tensor, work: torch.Tensor) -> None:
        """End of the step loop: ``work`` back into ``v`` (if it is a copy)."""


class FloatArithmetic:
    """Real numbers: v += I; the threshold as given."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def initial(self, shape, device, dtype, v0: float) -> torch.Tensor:
        v = torch.zeros(shape, device=device, dtype=dtype)
        return v if v0 == 0 else v.fill_(v0)

    def potential(self, state: torch.Tensor) -> torch.Tensor:
        return state

    def potential_value(self, v: float) -> float:
        return v

    def drive(self, current: torch.Tensor, state: torch.Tensor, idle: int) -> torch.Tensor:
        return current

    def charge(self, v: torch.Tensor, drive: torch.Tensor) -> None:
        v.add_(drive)

    def finish(self) -> None:
        pass

    def working(self, v: torch.Tensor) -> torch.Tensor:
        return v

    def release(self, v: torch.Tensor, work: torch.Tensor) -> None:
        pass


class Neuron:
    """A layer's neurons: ``kind`` (a registered name) over ``arithmetic``. Every sample
    starts (and, between samples, is reset) at the kind's initial potential plus
    ``v_init`` times the threshold (:class:`snn2hw.snn.options.Conversion` ``v_init``)."""

    def __init__(self, kind: str, arithmetic: Arithmetic, v_init: float = 0.0) -> None:
        self.kind: NeuronKind = get(kind)
        self.arithmetic = arithmetic
        self.v_init = float(v_init)

    @property
    def reset(self) -> str:
        return self.kind.name

    @property
    def threshold(self) -> float:
        return self.arithmetic.threshold

    def initial(self, shape, device, dtype) -> torch.Tensor:
        return self.arithmetic.initial(shape, device, dtype, self.initial_potential)

    @property
    def initial_potential(self) -> float:
        thr = self.arithmetic.threshold
        v0 = self.kind.initial_potential(thr) + (self.v_init * thr if self.v_init else 0.0)
        return self.arithmetic.potential_value(v0)

    def integrate(self, current: torch.Tensor, state: torch.Tensor, out: torch.Tensor,
                  idle: int = 0, trace: torch.Tensor | None = None) -> torch.Tensor:
        """current (T, B, ...) -> spikes written to ``out`` (T, B, ...; numbers 1/0, or
        booleans); ``state`` is updated in place and returned; ``current`` may be
        overwritten (:meth:`Arithmetic.drive`). The first ``idle`` steps are skipped: no
        integration, no spikes. ``trace`` (T, B, ...), if given, receives v after every
        step."""
        arith, kind = self.arithmetic, self.kind
        drive = arith.drive(current, state, idle)
        v = arith.potential(state)
        work = arith.working(v)
        threshold = arith.threshold
        reset = _resetter(kind, threshold, work, out.dtype)
        out[:idle] = 0
        for t in range(idle, current.shape[0]):
            arith.charge(work, drive[t])
            fired = out[t]                       # spikes written in place: 1/0 or True/False
            torch.gt(work, threshold, out=fired)
            reset(work, fired)
            if trace is not None:
                trace[t] = work
        arith.release(v, work)
        arith.finish()
        return state


def _resetter(kind: NeuronKind, threshold: float, v: torch.Tensor, spike_dtype: torch.dtype):
    """The kind's reset for spikes held as ``spike_dtype`` (numbers: one in-place op)."""
    if spike_dtype == torch.bool:
        scratch = torch.empty_like(v)
        return lambda work, fired: kind.reset(work, fired, threshold, scratch)
    return lambda work, fired: kind.reset_spikes(work, fired, threshold)
