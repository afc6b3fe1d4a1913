"""``LIFResetInit``: Lava's ``LIFReset`` whose periodic reset (between samples) sets v to an
initial potential ``v_init`` instead of 0, and whose spike reset is to zero or, with
``subtract=True``, by subtraction (:mod:`.subtract_lif`).

The process is ``LIFReset`` with two more process parameters. Its models are Lava's own
``LIFReset`` models (``PyLifResetModelBitAcc``, ``PyLifResetModelFloat``) with ``run_spk``
copied from lif/models.py:365-383 (float) and 426-446 (fixed) and one line changed: at
``time_step % reset_interval == reset_offset`` u = 0 and v = ``v_init`` (Lava: u = v = 0,
lif/models.py:373-375, 432-434). ``v_init`` is in v units (fixed_pt: an integer on the
scale of ``vth << 6``; the reference uses floor(v_init * (vth << 6))). This is what
:class:`snn2hw.snn.neurons.Neuron` does with ``v_init`` in both of our simulators.
"""
from __future__ import annotations

from lava.magma.core.decorator import implements
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import PyLifResetModelBitAcc, PyLifResetModelFloat
from lava.proc.lif.process import LIFReset


class LIFResetInit(LIFReset):
    """``LIFReset`` that restores v = ``v_init`` between samples (see the module
    docstring); ``subtract`` selects reset by subtraction after a spike."""

    def __init__(self, *, v_init=0, subtract: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.proc_params["v_init"] = v_init
        self.proc_params["subtract"] = bool(subtract)


def _restore_at_sample_start(model) -> None:
    """LIFReset's reset step (lif/models.py:432-436), restoring v to v_init instead of 0."""
    if (model.time_step % model.reset_interval) == model.reset_offset:
        model.u *= 0
        model.v *= 0
        model.v += model.v_init


def _reset(model, spike_vector, vth) -> None:
    """After a spike: v -= vth (reset by subtraction) or v = 0 (Lava's stock reset)."""
    if model.subtract:
        model.v[spike_vector] -= vth
    else:
        model.v[spike_vector] = 0


@implements(proc=LIFResetInit, protocol=LoihiProtocol)
class PyLifResetInitModelBitAcc(PyLifResetModelBitAcc):
    implements_process = None  # re-targeted by @implements (Lava forbids overwriting)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.v_init = int(proc_params["v_init"])
        self.subtract = bool(proc_params["subtract"])

    def reset_voltage(self, spike_vector) -> None:
        _reset(self, spike_vector, self.effective_vth)

    def run_spk(self) -> None:
        a_in_data = self.a_in.recv()
        _restore_at_sample_start(self)
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        self.subthr_dynamics(activation_in=a_in_data)
        s_out = self.spiking_activation()
        self.reset_voltage(spike_vector=s_out)
        self.s_out.send(s_out)


@implements(proc=LIFResetInit, protocol=LoihiProtocol)
class PyLifResetInitModelFloat(PyLifResetModelFloat):
    implements_process = None

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.v_init = float(proc_params["v_init"])
        self.subtract = bool(proc_params["subtract"])

    def reset_voltage(self, spike_vector) -> None:
        _reset(self, spike_vector, self.vth)

    def run_spk(self) -> None:
        a_in_data = self.a_in.recv()
        _restore_at_sample_start(self)
        self.subthr_dynamics(activation_in=a_in_data)
        s_out = self.spiking_activation()
        self.reset_voltage(spike_vector=s_out)
        self.s_out.send(s_out)
