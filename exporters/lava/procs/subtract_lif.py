"""``LIFResetSubtract``: Lava's ``LIFReset`` whose neurons reset by subtraction.

The process is ``LIFReset`` unchanged (same Vars, ports and parameters, the same periodic
reset of u and v); its two process models are Lava's own ``LIFReset`` models
(``PyLifResetModelBitAcc`` for ``fixed_pt``, ``PyLifResetModelFloat`` for ``floating_pt``)
with one method replaced: after a spike the threshold is subtracted from v instead of v
being set to zero,

    fixed_pt:     v[s] -= vth << 6       (the effective threshold the model compares with)
    floating_pt:  v[s] -= vth

which is what the neuron kind ``subtract`` (:mod:`snn2hw.snn.neurons.integrate_fire`) does
in both of our simulators. v stays inside the 24-bit range: it was clipped before the spike
test and the subtraction moves it towards zero.
"""
from __future__ import annotations

from lava.magma.core.decorator import implements
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import PyLifResetModelBitAcc, PyLifResetModelFloat
from lava.proc.lif.process import LIFReset


class LIFResetSubtract(LIFReset):
    """``LIFReset`` with reset by subtraction (see the module docstring)."""


@implements(proc=LIFResetSubtract, protocol=LoihiProtocol)
class PyLifResetSubtractModelBitAcc(PyLifResetModelBitAcc):
    implements_process = None  # re-targeted by @implements (Lava forbids overwriting)

    def reset_voltage(self, spike_vector):
        self.v[spike_vector] -= self.effective_vth


@implements(proc=LIFResetSubtract, protocol=LoihiProtocol)
class PyLifResetSubtractModelFloat(PyLifResetModelFloat):
    implements_process = None

    def reset_voltage(self, spike_vector):
        self.v[spike_vector] -= self.vth
