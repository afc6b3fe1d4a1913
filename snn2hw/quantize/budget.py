"""The fixed-point budget of a layer, computed on its final integers.

One step of a layer on Lava's bit-accurate LIF (``du = 4095, dv = 0``; see
:mod:`snn2hw.quantize.fixed`) is

    u = wrap(a << s),   v = clip(v + u + bias_v, +-v_max),   spike if v > thr << s

with ``s = current_shift``, ``bias_v = bias_mant << bias_exp`` and ``v_max = 2**(bits-1) - 1``.
Per neuron, the largest input one step can bring is the sum of its positive weights
(binary spike sources) or of all its |weights| (the signed input spikes), and likewise
for negative input. The *budget* of a neuron is

    worst = max((pos << s) + max(bias_v, 0), (neg << s) + max(-bias_v, 0)) + (thr << s)

and the layer's guarantee is ``worst <= v_max`` for every neuron. (With current memory,
du < 4095, u can hold up to 4096 / (du + 1) steps' input: the inputs are scaled by that.)
Then u cannot wrap (Lava's u range is (-2**(bits-1), 2**(bits-1)]: lif/models.py:161-170)
and a neuron at or below its threshold cannot reach the clip of v in one step, whatever
spikes arrive (a leak of v, dv > 0, only shrinks v). The bound is checked on the rounded, clipped integers that are exported or read from a file,
never on the float weights they came from.

Not covered (and said so in the README): v driven down over many steps by negative input
can reach the lower clip, and with reset by subtraction a neuron whose input exceeds one
threshold per step can climb to the upper clip; both are simulated bit-exactly and counted
as clipped neuron-steps. The membrane read-out's output layer is covered separately: its
threshold is at least one step's largest rise (:mod:`snn2hw.quantize.readout`), so it
cannot climb.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from ..errors import HardwareLimitError
from .qnet import IntSynapse


def row_sums(syn: IntSynapse, signed_source: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per target neuron, the largest positive and negative input one step can bring
    through ``syn`` (binary sources: sums of positive / negative weights; signed sources:
    both are the sum of |w|). Exact for integer weights (float64 sums of integers)."""
    import torch

    if syn.is_conv:
        w = np.asarray(syn.weight, dtype=np.float64)
        pos = replace(syn, weight=np.maximum(w, 0))
        neg = replace(syn, weight=np.maximum(-w, 0))
        ones = torch.ones((1, *syn.in_shape), dtype=torch.float64)
        with torch.no_grad():
            p = pos.apply(ones).reshape(-1).numpy()
            n = neg.apply(ones).reshape(-1).numpy()
    else:
        csr = syn.csr.astype(np.float64)
        p = np.asarray(csr.maximum(0).sum(axis=1)).reshape(-1)
        n = np.asarray((-csr).maximum(0).sum(axis=1)).reshape(-1)
    if signed_source:  # True, or the largest input magnitude (an analog input's levels)
        p = n = (p + n) * float(signed_source)
    return p, n


def layer_input(syns: list[IntSynapse], signed: list[bool], size: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron, the largest positive and negative one-step input of all synapses."""
    pos, neg = np.zeros(size), np.zeros(size)
    for syn, sgn in zip(syns, signed):
        p, n = row_sums(syn, sgn)
        pos, neg = pos + p, neg + n
    return pos, neg


@dataclass(frozen=True)
class LayerBudget:
    """A layer's worst case in v units (integers), against the state range."""
    name: str
    input_pos: int        # largest positive u: one step's input << s (over neurons), times
                          # 4096 / (du + 1) if u carries over (du < 4095)
    input_neg: int        # largest negative u, as a magnitude
    bias: int             # largest |bias_mant << bias_exp|
    threshold: int        # thr << s
    worst: int            # max over neurons of input + bias (same sign) + threshold
    v_max: int            # 2**(state_bits - 1) - 1

    @property
    def u_wraps(self) -> bool:
        """Can u leave Lava's range (-2**(bits-1), 2**(bits-1)] and wrap?"""
        half = self.v_max + 1
        return self.input_pos > half or self.input_neg >= half

    @property
    def v_clips(self) -> bool:
        """Can one step take a neuron at or below threshold past the clip of v?"""
        return self.worst > self.v_max

    @property
    def holds(self) -> bool:
        return not (self.u_wraps or self.v_clips)

    @property
    def headroom_bits(self) -> float:
        """log2(v_max / worst): how many bits of state are left over (negative: missing)."""
        return math.log2(self.v_max / max(self.worst, 1))

    def as_dict(self) -> dict:
        return asdict(self) | {"u_wraps": self.u_wraps, "v_clips": self.v_clips,
                               "headroom_bits": round(self.headroom_bits, 4)}


DECAY_UNITY = 4096  # Lava's 12-bit current decay: u keeps (4096 - du - 1) / 4096 per step


def current_gain(du: float) -> tuple[int, int]:
    """(numerator, denominator) of the largest multiple of one step's input that u can
    hold: 1 for du = 4095 (no current memory), else the geometric sum 4096 / (du + 1)
    (lif/models.py:145-153; truncation toward zero only lowers it)."""
    if du != int(du) or not 0 <= du < DECAY_UNITY:
        raise HardwareLimitError(f"neuron.du = {du} is not an integer in [0, 4095] (Lava's "
                                 "12-bit current decay)", field="neuron.du")
    return DECAY_UNITY, int(du) + 1


def layer_budget(name: str, syns: list[IntSynapse], signed: list[bool], size: int,
                 bias_v: np.ndarray | None, threshold: int, state_bits: int,
                 current_shift: int, threshold_shift: int | None = None,
                 du: float = 4095) -> LayerBudget:
    """The budget of one layer from its integer synapses, bias (v units) and threshold
    (compared as ``threshold << threshold_shift``, by default the current shift); with
    current memory (du < 4095) the input is u's largest value, a multiple of one step's."""
    num, den = current_gain(du)
    pos, neg = layer_input(syns, signed, size)
    pos = -(-(np.rint(pos).astype(np.int64) << current_shift) * num // den)  # rounded up
    neg = -(-(np.rint(neg).astype(np.int64) << current_shift) * num // den)
    b = np.zeros(size, np.int64) if bias_v is None else np.asarray(bias_v, np.int64).reshape(-1)
    thr = int(threshold) << (current_shift if threshold_shift is None else threshold_shift)
    per_neuron = np.maximum(pos + np.maximum(b, 0), neg + np.maximum(-b, 0)) + thr
    return LayerBudget(name, int(pos.max(initial=0)), int(neg.max(initial=0)),
                       int(np.abs(b).max(initial=0)), thr, int(per_neuron.max(initial=thr)),
                       (1 << (state_bits - 1)) - 1)


def network_budgets(qnet, du: float = 4095) -> list[LayerBudget]:
    """:func:`layer_budget` of every layer of a :class:`snn2hw.quantize.qnet.QuantizedNetwork` (the
    input spikes are signed, up to the input's levels for an analog input; every other
    source is binary)."""
    levels = max(1, int(getattr(qnet, "input_levels", 1)))
    return [layer_budget(la.name, la.synapses,
                         [levels if s.source == qnet.input else False for s in la.synapses],
                         la.size, la.bias_v(), int(la.threshold), qnet.state_bits,
                         qnet.current_shift, qnet.threshold_shift, du) for la in qnet.layers]
