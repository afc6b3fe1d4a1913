"""Test-only Lava processes that misbehave inside their ProcessModel (see
tests/test_lava_backend.py). Lava's compiler executes every .py file in this folder, so it
holds only this module, which does nothing on import but define classes."""
import time

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class RaisingProcess(AbstractProcess):
    """Receives spikes and raises on the third time step."""

    def __init__(self, *, shape):
        super().__init__(shape=shape)
        self.s_in = InPort(shape=shape)


class HangingProcess(AbstractProcess):
    """Receives spikes and sleeps forever on the third time step."""

    def __init__(self, *, shape):
        super().__init__(shape=shape)
        self.s_in = InPort(shape=shape)


@implements(proc=RaisingProcess, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "floating_pt")
class PyRaisingModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)

    def run_spk(self):
        self.s_in.recv()
        if self.time_step == 3:
            raise RuntimeError("deliberate failure in a test ProcessModel")


@implements(proc=HangingProcess, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "floating_pt")
class PyHangingModel(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)

    def run_spk(self):
        self.s_in.recv()
        while self.time_step == 3:
            time.sleep(1.0)
