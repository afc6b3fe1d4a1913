"""Bit-accurate fixed-point mode of the reference simulator: Lava's ``fixed_pt`` LIF as
lava-nc 0.10.0 computes it, corner for corner; du = 4095, dv = 0 (the IF neuron of every
export) by default, any 12-bit du, dv on request.

What Lava does (``lava/proc/lif/models.py``, ``AbstractPyLifModelFixed`` and
``PyLifResetModelBitAcc``; ``lava/proc/sparse/models.py``, ``AbstractPySparseModelBitAcc``):

- Synapses. ``Sparse`` clips weights to [-256, 255] and truncates 8 - num_weight_bits + 1
  low bits (sparse/models.py:82-91; with num_weight_bits = 9 none), then sends the int32
  product ``weights.dot(s_in)`` computed on the previous step (sparse/models.py:96-107).
  The backend refuses weights outside the profile's range before a run, so the weights
  here are exact. Several synapses into one layer are summed by the input port
  (magma/core/model/py/ports.py:333-351) into an int32 ``a_in``.
- Current (lif/models.py:145-171). ``decayed = sign(u (4096 - du - 1)) (|.| >> 12)`` (0
  for du = 4095); ``decayed + (a_in << 6)`` is computed in int32 (``a_in << 6`` wraps
  modulo 2**32 when |a_in| >= 2**25), then u is wrapped *once*: ``u - 2**24`` if
  u > 2**23, else ``u + 2**24`` if u <= -2**23. The range is therefore (-2**23, 2**23]
  (not [-2**23, 2**23)), and a value beyond +-3 * 2**23 stays outside it.
- Voltage (lif/models.py:174-186). ``sign(v (4096 - dv)) (|.| >> 12)`` (v itself for
  dv = 0) ``+ u + (bias_mant << bias_exp)`` is summed in int32 and clipped to
  [-(2**23 - 1), 2**23 - 1]. That sum cannot leave int32: after the wrap
  |u| <= 2**31 - 2**24, |v| < 2**23 and |bias| <= 2**12 << 7. ``bias_mant << bias_exp``
  is recomputed every step (lif/models.py:110-122, 438).
- Spike (lif/models.py:422-424): ``v > vth << 6``, strict. Reset: ``v = 0`` at a spike
  (lif/models.py:188-192); with reset by subtraction ``v -= vth << 6``
  (:mod:`snn2hw.exporters.lava.procs.subtract_lif`). u is not reset at a spike.
- ``LIFReset`` zeroes u and v on the step a sample's first input arrives, after receiving
  it and before integrating it (lif/models.py:432-436); this simulator starts each layer
  from u = v = 0 at that step (its ``depth``) and keeps it silent before.

The 24 of the state and the 6 of the shifts come from the network (its profile); the int32
registers are Lava's CPU model's NumPy dtype (lif/models.py:78-81, 261). Integers are held
exactly in float32 or float64: synapse products (with the ``<< shift`` folded into their
weights) in float32 when every partial sum stays below 2**24 (exact), else in float64; the
state (u, v) in float32 where :class:`LavaFixedArithmetic` shows that exact, else float64.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .qnet import QuantizedNetwork
from ..snn.encoders import Encoder, make_encoder
from ..snn.fastops import integer_synapse
from ..snn.neurons import Neuron
from ..snn.simulate import Prepared, PreparedLayer, Synapse

REGISTER_BITS = 32   # Lava's CPU LIF keeps a_in, u and v in np.int32
_REG_HALF = float(1 << (REGISTER_BITS - 1))
_FLOAT32_EXACT = 1 << 24
_INF = float("inf")


def wrap_register(x: torch.Tensor) -> torch.Tensor:
    """Two's-complement wrap of integer-valued float64 ``x`` into an int32 register."""
    return torch.remainder(x + _REG_HALF, 2 * _REG_HALF) - _REG_HALF


def lava_wrap(x: torch.Tensor, state_bits: int) -> torch.Tensor:
    """u of Lava's fixed-point LIF from the exact sum ``x`` = decayed u + (a << shift)
    (lif/models.py:149-171): the int32 register wraps, then 2**bits is subtracted or
    added once, into (-half, half]."""
    if x.numel() and float(x.abs().max()) >= _REG_HALF:
        x = wrap_register(x)
    half = float(1 << (state_bits - 1))
    return torch.where(x > half, x - 2 * half, torch.where(x <= -half, x + 2 * half, x))


def lava_decay(x: torch.Tensor, keep: int) -> torch.Tensor:
    """``sign(x * keep) * (|x * keep| >> 12)`` (lif/models.py:149-153, 180-184): the
    product over 4096, rounded toward zero (exact in float64: |x * keep| < 2**36)."""
    return torch.trunc(x * (keep / DECAY_UNITY))


DECAY_UNITY = 4096   # Lava's 12-bit decays: du, dv in 0..4095 (lif/models.py:94-105)


class LavaFixedArithmetic:
    """Lava's bit-accurate LIF arithmetic (see the module docstring) on integer values held
    exactly in float64 or float32 (below); the state is (u, v), and per step
        u = lava_wrap(decay(u, 4096 - du - 1) + (a << shift));
        v = clip(decay(v, 4096 - dv) + u + bias_v, +-v_max);
    the spike test ``v > thr << shift`` and the reset are the neuron kind's
    (:class:`snn2hw.snn.neurons.Neuron`). du = 4095, dv = 0 (the default) is the IF neuron:
    u = wrapped a << shift, no leak.

    Fast path (same integers): for the IF neuron, when a chunk's currents are float32 and
    no ``a << shift`` reaches the wrap (checked per chunk), u is ``a << shift`` itself and
    the step loop runs on a float32 copy of v. That is exact: v, the threshold, the bias
    and every drive are integers below 2**24 (checked), and a sum ``v + drive`` beyond
    2**24 that float32 rounds still lies beyond the clip (rounding is monotonic and v_max
    is a float32), so the clip, the clip count and the spikes are the same."""

    def __init__(self, threshold: int, bias_v: np.ndarray | None, shape, state_bits: int,
                 shift: int, device, threshold_shift: int | None = None,
                 du: int = 4095, dv: int = 0) -> None:
        if not (0 <= du < DECAY_UNITY and 0 <= dv < DECAY_UNITY):
            raise ValueError(f"du = {du}, dv = {dv}: Lava's decays are 12-bit (0..4095)")
        self.keep_u, self.keep_v = DECAY_UNITY - (du + 1), DECAY_UNITY - dv
        self.threshold = float(threshold << (shift if threshold_shift is None
                                             else threshold_shift))
        self.bias = None if bias_v is None else torch.as_tensor(
            bias_v.reshape(shape), dtype=torch.float64, device=device)
        self.state_bits = state_bits
        self.v_max = float((1 << (state_bits - 1)) - 1)
        self.shift = shift
        self.saturated = 0  # neuron-steps where v hit the clip limit
        self.input_peak: float | None = None  # largest |a| any step can bring (weight units)
        self.shifted = False  # the currents arrive as a << shift (the synapses shift them)
        self._bias_peak = 0.0 if bias_v is None else float(np.abs(bias_v).max(initial=0))
        self._float32 = (self.keep_u == 0 and self.keep_v == DECAY_UNITY
                         and max(self.v_max, self.threshold, self._bias_peak) < _FLOAT32_EXACT)
        self._work = torch.float64   # the step loop's dtype for the current chunk
        self._clip_free = False      # this chunk provably never reaches the clip
        # the clip test's bounds: max v and -min v when last measured (at steps _high_at,
        # _low_at of the chunk), the largest |drive| of a step; _step: steps done
        self._high = self._low = self._step_peak = _INF
        self._step = self._high_at = self._low_at = 0
        self._clipping_low = False   # the last measurement found v below the clip
        self.bounded_reset = False   # the kind's reset keeps v in [min(v, 0), v] (see drive)

    def initial(self, shape, device, dtype, v0: float) -> torch.Tensor:
        """(u, v), in float32 where the fast path may hold (its integers are exact there),
        else float64."""
        state = torch.zeros((2, *shape), device=device,  # u, v
                            dtype=torch.float32 if self._float32 else torch.float64)
        if v0:
            state[1] = v0
        return state

    def potential(self, state: torch.Tensor) -> torch.Tensor:
        return state[1]

    def potential_value(self, v: float) -> float:
        return float(math.floor(v))

    def drive(self, current: torch.Tensor, state: torch.Tensor, idle: int) -> torch.Tensor:
        """u + bias for every step (u carries over only if du < 4095); the fast path
        computes it in ``current``'s memory."""
        u = state[0]
        self._clip_free, self._step, self._high_at, self._low_at = False, 0, 0, 0
        self._high = self._low = self._step_peak = _INF
        self._clipping_low = False
        if self._fast(current, state[1]):
            drive = current if self.shifted else current.mul_(float(1 << self.shift))
            if current.shape[0]:
                u.copy_(drive[-1])
            return drive if self.bias is None else drive.add_(self._bias(drive))
        a_shifted = current.double() * float(1 if self.shifted else 1 << self.shift)
        if self.keep_u == 0:  # du = 4095: u does not depend on its past
            drive = lava_wrap(a_shifted, self.state_bits)
        else:
            drive = torch.zeros_like(a_shifted)
            for t in range(idle, current.shape[0]):
                u.copy_(lava_wrap(lava_decay(u, self.keep_u) + a_shifted[t], self.state_bits))
                drive[t] = u
        if drive.shape[0]:
            u.copy_(drive[-1])
        return drive if self.bias is None else drive + self.bias

    def _fast(self, current: torch.Tensor, state_v: torch.Tensor) -> bool:
        """True if the fast path holds for this chunk (see the class docstring). The
        layer's static bound on |a| (``input_peak``) spares measuring the chunk where it
        proves that u does not wrap; the clip test then works from that bound."""
        self._work = torch.float64
        if not (self._float32 and current.dtype == torch.float32 and current.numel()):
            return False
        scale, half = float(1 << self.shift), float(1 << (self.state_bits - 1))
        peak = _INF if self.input_peak is None else self.input_peak * scale
        if not (peak < half and peak + self._bias_peak < _FLOAT32_EXACT):
            low, high = torch.aminmax(current)
            peak = max(-float(low), float(high)) * (1.0 if self.shifted else scale)
            if not (peak < half and peak + self._bias_peak < _FLOAT32_EXACT):
                return False
        self._work, self._peak = torch.float32, peak
        self._clip_free = self._no_clip(state_v, current.shape[0])
        return True

    def _no_clip(self, v: torch.Tensor, steps: int) -> bool:
        """True if v cannot reach the clip during this chunk: with a reset that keeps v in
        [min(v, 0), v] (to zero, or minus a positive threshold, only where v > threshold),
        |v| stays below max(|v0|, threshold) + the sum of the steps' |drive|."""
        if not (self.bounded_reset and self.threshold > 0 and v.numel()):
            return False
        low, high = torch.aminmax(v)
        drive = self._peak + self._bias_peak   # the chunk's largest |a << shift| + |bias|
        self._high, self._low = max(float(high), self.threshold), max(-float(low), 0.0)
        self._step_peak = drive
        return max(self._high, self._low) + steps * drive <= self.v_max

    def _bias(self, like: torch.Tensor) -> torch.Tensor:
        if self.bias.dtype != like.dtype:
            self.bias = self.bias.to(like.dtype)  # integers below 2**24: exact either way
        return self.bias

    def working(self, v: torch.Tensor) -> torch.Tensor:
        return v if self._work == v.dtype else v.to(self._work)

    def release(self, v: torch.Tensor, work: torch.Tensor) -> None:
        if work is not v:
            v.copy_(work)

    def charge(self, v: torch.Tensor, drive: torch.Tensor) -> None:
        if self.keep_v != DECAY_UNITY:
            v.copy_(lava_decay(v, self.keep_v))
        v.add_(drive)
        self._step += 1
        if self._clip_free or not v.numel():
            return
        # One-sided bounds since each side was last measured (see _no_clip): max v stays
        # below max(max v, threshold) + steps * peak, -min v below max(-min v, 0) + same.
        high_ok = self._high + (self._step - self._high_at) * self._step_peak <= self.v_max
        low_ok = self._low + (self._step - self._low_at) * self._step_peak <= self.v_max
        if high_ok and low_ok:
            return
        if high_ok and self._clipping_low and self._clip(v, -self.v_max):
            self._low, self._low_at = self.v_max, self._step   # clipped again, as expected
            return
        low, high = torch.aminmax(v)
        self._high, self._low = max(float(high), self.threshold), max(-float(low), 0.0)
        self._high_at = self._low_at = self._step
        self._clipping_low = float(low) < -self.v_max
        if self._clipping_low:
            self._clip(v, -self.v_max)
            self._low = self.v_max
        if float(high) > self.v_max:
            self._clip(v, self.v_max)
            self._high = self.v_max

    def _clip(self, v: torch.Tensor, limit: float) -> bool:
        """Clip v beyond ``limit`` (its sign says the side) and count those neuron-steps;
        True if there were any."""
        count = int((torch.lt(v, limit) if limit < 0 else torch.gt(v, limit)).sum())
        if count:
            self.saturated += count
            if limit < 0:
                v.clamp_(min=limit)
            else:
                v.clamp_(max=limit)
        return count > 0

    def finish(self) -> None:
        pass


class FixedIFNeuron(Neuron):
    """The neuron kind ``reset`` over :class:`LavaFixedArithmetic` (same arguments)."""

    def __init__(self, threshold: int, bias_v: np.ndarray | None, shape, state_bits: int,
                 shift: int, device, threshold_shift: int | None = None,
                 reset: str = "zero", du: int = 4095, dv: int = 0,
                 v_init: float = 0.0) -> None:
        super().__init__(reset, LavaFixedArithmetic(threshold, bias_v, shape, state_bits,
                                                    shift, device, threshold_shift, du, dv),
                         v_init)
        self.arithmetic.bounded_reset = self.kind.bounded_reset

    @property
    def saturated(self) -> int:
        return self.arithmetic.saturated


def _input_peaks(qnet: QuantizedNetwork) -> dict[str, float]:
    """Per layer, the largest |one-step input| any neuron can receive (weight units); an
    input synapse's sums grow with the input's levels (direct coding)."""
    from .budget import layer_input

    levels = max(1, int(qnet.input_levels))
    peaks = {}
    for la in qnet.layers:
        pos, neg = np.zeros(la.size), np.zeros(la.size)
        for syn in la.synapses:
            is_input = syn.source == qnet.input
            p, n = layer_input([syn], [is_input], la.size)
            pos, neg = pos + p * (levels if is_input else 1), neg + n * (levels if is_input else 1)
        peaks[la.name] = max(float(pos.max(initial=0)), float(neg.max(initial=0)))
    return peaks


def _needs_float64(qnet: QuantizedNetwork) -> bool:
    """True if some layer's one-step input can reach 2**24 (float32 would round it)."""
    return any(peak >= _FLOAT32_EXACT for peak in _input_peaks(qnet).values())


def input_encoder(qnet: QuantizedNetwork, x, seed: int, stream: int,
                  indices: np.ndarray | None = None) -> Encoder:
    """The input of ``qnet`` for samples ``x``: its coding's encoder with its input scale
    and, for an analog coding, its integer levels (what the fixed-point simulator adds and
    the backend sends; real values where ``input_levels`` is 0, a float network)."""
    return make_encoder(qnet.conversion.coding, x, input_scale=qnet.input_scale, seed=seed,
                        stream=stream, indices=indices,
                        levels=int(qnet.input_levels) or None)


def prepare_fixed(qnet: QuantizedNetwork, device: str = "cpu", du: int = 4095,
                  dv: int = 0) -> Prepared:
    """The reference simulator of ``qnet`` on Lava's fixed-point LIF with decays ``du``,
    ``dv`` (default: the IF neuron every export uses)."""
    dev = torch.device(device)
    conversion = qnet.conversion
    layers, peaks = [], _input_peaks(qnet)
    for la in qnet.layers:
        shift = 1 << qnet.current_shift   # folded into the synapses: a << shift arrives
        syn = [Synapse(s.source, s.lag, integer_synapse(s, shift)) for s in la.synapses]
        neuron = FixedIFNeuron(int(la.threshold), la.bias_v(), la.shape, qnet.state_bits,
                               qnet.current_shift, dev, qnet.threshold_shift,
                               conversion.layer_reset(qnet.reset, la.is_output),
                               du, dv, conversion.layer_v_init(la.is_output))
        neuron.arithmetic.input_peak, neuron.arithmetic.shifted = peaks[la.name], True
        layers.append(PreparedLayer(la.name, la.shape, syn, None, neuron, la.is_output,
                                    la.depth, current_unit=float(shift)))
    # Spike buffers and synapse products in float32 where that is exact (every export that
    # passes `snn2hw verify`: inputs stay below 2**17), else float64.
    dtype = torch.float64 if max(peaks.values(), default=0) >= _FLOAT32_EXACT else torch.float32
    return Prepared(qnet.input, qnet.input_shape, layers, dev, dtype, conversion.window,
                    conversion.readout)


def saturation(prep: Prepared) -> dict[str, int]:
    """Neuron-steps per layer where v was clipped to the state range during the run."""
    return {la.name: la.neuron.saturated for la in prep.layers}
