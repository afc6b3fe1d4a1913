"""The membrane read-out's output layer in fixed point.

The class is the argmax of the output layer's accumulated potential: its initial v (0) plus
the sum of everything added to v over the window (u + bias each step). A 24-bit v cannot
hold that sum over a long window, so the output layer fires and resets *by subtraction*
(whatever the network's reset) and the read-out is

    readout = count * (thr << threshold_shift) + v

at the end of the output's window: the spike count and v, as a host reads a neuron's spike
counter and state on the chip. Each spike moves exactly one threshold out of v into the
count, so the read-out is the accumulated potential as long as v is never clipped.

The guarantee (checked on the final integers by ``snn2hw verify``): let ``rise`` be the
largest amount one step can add to v of an output neuron (its positive one-step input
``pos << current_shift``, times 4096 / (du + 1) with current memory, plus a positive bias)
and ``fall`` the largest amount it can take away. If ``rise <= thr << threshold_shift`` and
the layer's one-step budget holds (``max(rise, fall) + thr <= v_max``, see
:mod:`snn2hw.quantize.budget`), then v <= thr before every step (true at the start: v = 0),
so v + rise <= v_max cannot clip, and after a spike v - thr <= rise <= thr again. The read-out
is therefore exact unless the true potential falls below the lower clip, -(2**(bits-1) - 1),
at some step of the window (a losing class driven down hard); such a clip only raises v, so
the read-out is then above the true potential, and the simulator counts the clipped
neuron-steps (``saturated_neuron_steps``). With a leak of v (dv > 0) the read-out is the
leaky potential's, not the sum's.

The quantiser gives the output layer the largest threshold that keeps the budget (fewest
spikes to count); if even that is below ``rise``, it lowers the layer's scale (all its
weights and bias) until the guarantee holds.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from . import budget
from ..errors import HardwareLimitError
from ..hardware.profiles import FixedPoint
from .qnet import QuantLayer

READOUT_RESET = "subtract"   # the membrane read-out's output layer, whatever the network's


def one_step(layer: QuantLayer, signed: list, current_shift: int,
             du: float) -> tuple[int, int]:
    """(rise, fall): the largest amount one step can add to / take from v of a neuron of
    ``layer`` (integers, v units; ``signed``: per synapse, as :func:`budget.layer_budget`)."""
    num, den = budget.current_gain(du)
    pos, neg = budget.layer_input(layer.synapses, signed, layer.size)
    pos = -(-(np.rint(pos).astype(np.int64) << current_shift) * num // den)
    neg = -(-(np.rint(neg).astype(np.int64) << current_shift) * num // den)
    bias_v = layer.bias_v()
    b = np.zeros(layer.size, np.int64) if bias_v is None else \
        np.asarray(bias_v, np.int64).reshape(-1)
    return (int((pos + np.maximum(b, 0)).max(initial=0)),
            int((neg + np.maximum(-b, 0)).max(initial=0)))


def largest_threshold(rise: int, fall: int, fp: FixedPoint) -> int:
    """The largest threshold (threshold units) whose one-step budget holds: 0 if none."""
    room = fp.v_max - max(rise, fall)
    return max(0, min(fp.threshold_max, room >> fp.threshold_shift))


def guarantee(layer: QuantLayer, signed: list, state_bits: int, current_shift: int,
              threshold_shift: int, du: float) -> dict:
    """What the read-out of ``layer`` promises, from its integers: ``exact`` is True when v
    cannot reach its upper clip (``rise <= threshold``; with the one-step budget, which
    :mod:`snn2hw.quantize.verify` checks separately)."""
    rise, fall = one_step(layer, signed, current_shift, du)
    thr = int(layer.threshold) << threshold_shift
    return {"layer": layer.name, "threshold": thr, "rise": rise, "fall": fall,
            "exact": rise <= thr,
            "lower_clip": -((1 << (state_bits - 1)) - 1)}


def problem(readout: dict) -> str | None:
    """The broken guarantee of :func:`guarantee`'s result, or None."""
    if readout["exact"]:
        return None
    return (f"layer {readout['layer']}: membrane read-out: one step can add {readout['rise']} "
            f"to v, more than the threshold {readout['threshold']} (v could climb to its "
            f"clip and the read-out count * threshold + v would be wrong)")


def fit_output(quantize_at: Callable[[int | None], QuantLayer], signed: list,
               fp: FixedPoint, du: float) -> QuantLayer:
    """The output layer for the membrane read-out: ``quantize_at(cap)`` quantises it with
    its scale capped at ``cap`` (None: as any layer); the cap is lowered until the largest
    threshold keeping the budget is at least one step's rise."""
    out = quantize_at(None)
    first = int(out.threshold)
    while True:
        theta = int(out.threshold)
        rise, fall = one_step(out, signed, fp.current_shift, du)
        thr = largest_threshold(rise, fall, fp)
        if thr >= 1 and (thr << fp.threshold_shift) >= rise:
            out.threshold = thr
            out.report["readout_threshold"] = thr
            if theta != first:
                out.report["readout_scale_lowered_from"] = first
            return out
        # rise and fall grow about linearly with theta: jump close, then step down.
        need = max(rise + max(rise, fall), 1)
        ratio = min(fp.v_max / need,
                    (fp.threshold_max << fp.threshold_shift) / max(rise, 1))
        smaller = min(theta - 1, math.floor(theta * ratio))
        if smaller < 1:
            raise HardwareLimitError(
                f"layer {out.name}: the membrane read-out cannot fit: even a scale of 1 "
                f"lets one step add more to v than the largest threshold that fits the "
                f"{fp.state_bits}-bit state", layer=out.name, limit="membrane read-out")
        out = quantize_at(smaller)
