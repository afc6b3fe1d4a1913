"""Bit-accurate fixed-point mode of the reference simulator: Lava's ``fixed_pt`` LIF with
du = 4095, dv = 0, as lava-nc 0.10.0 computes it, corner for corner.

What Lava does (``lava/proc/lif/models.py``, ``AbstractPyLifModelFixed`` and
``PyLifResetModelBitAcc``; ``lava/proc/sparse/models.py``, ``AbstractPySparseModelBitAcc``):

- Synapses. ``Sparse`` clips weights to [-256, 255] and truncates 8 - num_weight_bits + 1
  low bits (sparse/models.py:82-91; with num_weight_bits = 9 none), then sends the int32
  product ``weights.dot(s_in)`` computed on the previous step (sparse/models.py:96-107).
  The backend refuses weights outside the profile's range before a run, so the weights
  here are exact. Several synapses into one layer are summed by the input port
  (magma/core/model/py/ports.py:333-351) into an int32 ``a_in``.
- Current (lif/models.py:145-171). ``decayed = sign(u (4096 - du - 1)) (|.| >> 12)`` is 0
  for du = 4095; ``a_in << 6`` is computed in int32 (it wraps modulo 2**32 when
  |a_in| >= 2**25), then u is wrapped *once*: ``u - 2**24`` if u > 2**23, else ``u + 2**24``
  if u <= -2**23. The range is therefore (-2**23, 2**23] (not [-2**23, 2**23)), and a
  value beyond +-3 * 2**23 stays outside it.
- Voltage (lif/models.py:174-186). With dv = 0 the decay keeps v exactly;
  ``v + u + (bias_mant << bias_exp)`` is summed in int32 and clipped to
  [-(2**23 - 1), 2**23 - 1]. That sum cannot leave int32: after the wrap |u| <= 2**31 - 2**24,
  |v| < 2**23 and |bias| <= 2**12 << 7. ``bias_mant << bias_exp`` is recomputed every step
  (lif/models.py:110-122, 438).
- Spike (lif/models.py:422-424): ``v > vth << 6``, strict. Reset: ``v = 0`` at a spike
  (lif/models.py:188-192); with reset by subtraction ``v -= vth << 6``
  (:mod:`snn2hw.exporters.lava.procs.subtract_lif`). u is not reset; with du = 4095 it
  does not carry over anyway.
- ``LIFReset`` zeroes u and v on the step a sample's first input arrives, after receiving
  it and before integrating it (lif/models.py:432-436); this simulator starts each layer
  from v = 0 at that step (its ``depth``) and keeps it silent before.

The 24 of the state and the 6 of the shifts come from the network (its profile); the int32
registers are Lava's CPU model's NumPy dtype (lif/models.py:78-81, 261). Integers are held
exactly in float64; synapse products run in float32 when every partial sum stays below
2**24 (exact), else in float64.
"""
from __future__ import annotations

import numpy as np
import torch

from .profiles import check_reset
from .qnet import QuantizedNetwork
from .simulate import Prepared, PreparedLayer, Synapse

REGISTER_BITS = 32   # Lava's CPU LIF keeps a_in, u and v in np.int32
_REG_HALF = float(1 << (REGISTER_BITS - 1))
_FLOAT32_EXACT = 1 << 24


def wrap_register(x: torch.Tensor) -> torch.Tensor:
    """Two's-complement wrap of integer-valued float64 ``x`` into an int32 register."""
    return torch.remainder(x + _REG_HALF, 2 * _REG_HALF) - _REG_HALF


def lava_current(a: torch.Tensor, shift: int, state_bits: int) -> torch.Tensor:
    """u of Lava's fixed-point LIF with du = 4095 for summed synaptic input ``a``
    (lif/models.py:149-171): int32 ``a << shift``, then one wrap into (-half, half]."""
    x = a.double() * float(1 << shift)
    if x.numel() and float(x.abs().max()) >= _REG_HALF:
        x = wrap_register(x)
    half = float(1 << (state_bits - 1))
    return torch.where(x > half, x - 2 * half, torch.where(x <= -half, x + 2 * half, x))


class FixedIFNeuron:
    """Lava's bit-accurate LIF with du = 4095, dv = 0 (see the module docstring), on
    integer values held exactly in float64:
        u = lava_wrap(int32(a << shift));  v = clip(v + u + bias_v, +-v_max);
        s = v > thr << shift;  then v = 0 (``zero``) or v -= thr << shift (``subtract``)."""

    def __init__(self, threshold: int, bias_v: np.ndarray | None, shape, state_bits: int,
                 shift: int, device, threshold_shift: int | None = None,
                 reset: str = "zero") -> None:
        self.reset = check_reset(reset)
        self.threshold = float(threshold << (shift if threshold_shift is None
                                             else threshold_shift))
        self.bias = None if bias_v is None else torch.as_tensor(
            bias_v.reshape(shape), dtype=torch.float64, device=device)
        self.state_bits = state_bits
        self.v_max = float((1 << (state_bits - 1)) - 1)
        self.shift = shift
        self.saturated = 0  # neuron-steps where v hit the clip limit

    def initial(self, shape, device, dtype) -> torch.Tensor:
        return torch.zeros(shape, device=device, dtype=torch.float64)

    def integrate(self, current: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                  idle: int = 0) -> torch.Tensor:
        # u and the bias term do not depend on v: compute them for all steps at once.
        drive = lava_current(current, self.shift, self.state_bits)
        if self.bias is not None:
            drive += self.bias
        fired = torch.empty(v.shape, dtype=torch.bool, device=v.device)
        magnitude = torch.empty_like(v)
        over = torch.zeros(v.shape, dtype=torch.float64, device=v.device)
        out[:idle] = 0
        for t in range(idle, current.shape[0]):
            v.add_(drive[t])
            torch.abs(v, out=magnitude)
            over.add_(magnitude.gt_(self.v_max))  # counts the steps v is clipped
            v.clamp_(-self.v_max, self.v_max)
            torch.gt(v, self.threshold, out=fired)
            if self.reset == "zero":
                v.masked_fill_(fired, 0)
            else:  # v -= threshold << shift where fired (exact in float64)
                v.sub_(magnitude.copy_(fired), alpha=self.threshold)
            out[t] = fired
        self.saturated += int(over.sum())
        return v


def _needs_float64(qnet: QuantizedNetwork) -> bool:
    """True if some layer's one-step input can reach 2**24 (float32 would round it)."""
    from .budget import layer_input

    for la in qnet.layers:
        pos, neg = layer_input(la.synapses, [s.source == qnet.input for s in la.synapses],
                               la.size)
        if max(float(pos.max(initial=0)), float(neg.max(initial=0))) >= _FLOAT32_EXACT:
            return True
    return False


def prepare_fixed(qnet: QuantizedNetwork, device: str = "cpu") -> Prepared:
    dev = torch.device(device)
    layers = []
    for la in qnet.layers:
        syn = [Synapse(s.source, s.lag, s.apply) for s in la.synapses]
        neuron = FixedIFNeuron(int(la.threshold), la.bias_v(), la.shape, qnet.state_bits,
                               qnet.current_shift, dev, qnet.threshold_shift, qnet.reset)
        layers.append(PreparedLayer(la.name, la.shape, syn, None, neuron, la.is_output,
                                    la.depth))
    # Spike buffers and synapse products in float32 where that is exact (every export that
    # passes `snn2hw verify`: inputs stay below 2**17), else float64; v always in float64.
    dtype = torch.float64 if _needs_float64(qnet) else torch.float32
    return Prepared(qnet.input, qnet.input_shape, layers, dev, dtype)


def saturation(prep: Prepared) -> dict[str, int]:
    """Neuron-steps per layer where v was clipped to the state range during the run."""
    return {la.name: la.neuron.saturated for la in prep.layers}
