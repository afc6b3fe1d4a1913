"""Bit-accurate fixed-point mode of the reference simulator (the rules of :mod:`snn2hw.qnet`,
i.e. Lava's ``fixed_pt`` LIF with du = 4095, dv = 0). Integers are held exactly in float64
(every sum stays far below 2**53), so convolutions and sparse products are exact.
"""
from __future__ import annotations

import numpy as np
import torch

from .qnet import QuantizedNetwork
from .profiles import check_reset
from .simulate import Prepared, PreparedLayer, Synapse


class FixedIFNeuron:
    """Bit-accurate Loihi/Lava LIF with du = 4095, dv = 0 (see :mod:`snn2hw.qnet`), on
    integer values held exactly in float64:
        u = wrap(a << shift);  v = clip(v + u + bias_v, +-v_max);  s = v > thr << shift;
    then v = 0 (``zero``) or v -= thr << shift (``subtract``) where s."""

    def __init__(self, threshold: int, bias_v: np.ndarray | None, shape, state_bits: int,
                 shift: int, device, threshold_shift: int | None = None,
                 reset: str = "zero") -> None:
        self.reset = check_reset(reset)
        self.threshold = float(threshold << (shift if threshold_shift is None
                                             else threshold_shift))
        self.bias = None if bias_v is None else torch.as_tensor(
            bias_v.reshape(shape), dtype=torch.float64, device=device)
        self.half = float(1 << (state_bits - 1))
        self.v_max = self.half - 1
        self.factor = float(1 << shift)
        self.saturated = 0  # neuron-steps where v hit the clip limit

    def initial(self, shape, device, dtype) -> torch.Tensor:
        return torch.zeros(shape, device=device, dtype=torch.float64)

    def integrate(self, current: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                  idle: int = 0) -> torch.Tensor:
        full = 2 * self.half
        # u = wrap(a << 6) and the bias term do not depend on v: compute them for all steps.
        drive = torch.remainder(current.double() * self.factor + self.half, full) - self.half
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


def prepare_fixed(qnet: QuantizedNetwork, device: str = "cpu") -> Prepared:
    dev = torch.device(device)
    layers = []
    for la in qnet.layers:
        syn = [Synapse(s.source, s.lag, s.apply) for s in la.synapses]
        neuron = FixedIFNeuron(int(la.threshold), la.bias_v(), la.shape, qnet.state_bits,
                               qnet.current_shift, dev, qnet.threshold_shift, qnet.reset)
        layers.append(PreparedLayer(la.name, la.shape, syn, None, neuron, la.is_output,
                                    la.depth))
    # Spike buffers and synapse products in float32 (exact, see IntSynapse.apply); the
    # membrane state in float64.
    return Prepared(qnet.input, qnet.input_shape, layers, dev, torch.float32)


def saturation(prep: Prepared) -> dict[str, int]:
    """Neuron-steps per layer where v was clipped to the state range during the run."""
    return {la.name: la.neuron.saturated for la in prep.layers}
