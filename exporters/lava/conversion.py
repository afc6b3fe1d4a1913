"""The conversion options (:class:`snn2hw.snn.options.Conversion`, ``qnet.conversion``) on
the Lava graph. No Lava import.

- ``coding = "direct"``: the input RingBuffer sends the quantised input, integers in
  [-L, L] (L = ``qnet.input_levels``), every step, as graded spikes of the profile's
  ``messages.input_bits``; the first Sparse computes ``weights.dot(s_in)`` on them
  (sparse/models.py:96-99), exactly the integer product of the reference. The values must
  fit the payload: L <= 2**(input_bits - 1) - 1, checked here.
- ``v_init``: layers are ``procs.init_lif.LIFResetInit``, whose reset between samples sets
  v = floor(v_init * (vth << 6)) (fixed_pt) or v_init * vth (floating_pt), as the
  reference does (:meth:`Conversion.layer_v_init`: 0 for a membrane read-out's output).
- ``readout = "membrane"``: a ``Monitor`` probes the output layer's ``v`` after every step
  (proc/monitor/models.py:34-47: read in the post-management phase, after the step's
  spike and reset), as a host reads a neuron's state on the chip. That layer resets by
  subtraction (``LIFResetSubtract``, whatever the network's reset), its spikes are read as
  any layer's, and the class is the argmax of count * (vth << 6) + v at the end of the
  output's window (:mod:`snn2hw.quantize.readout`: the accumulated potential).
- ``window = "pipelined"``: the graph is the same (each layer is reset when a sample's
  first input reaches it, ``reset_offset = depth + 1``); a layer ``depth`` hops deep then
  integrates Lava columns k*T + depth .. k*T + depth + T - 1 for sample k, all of them that
  sample's. The run lasts N*T + D steps (D: the deepest layer; the input is 0 after the
  last sample) and each layer's spikes are read from its own window.
"""
from __future__ import annotations

import math

import numpy as np

from snn2hw.errors import HardwareLimitError


def check_conversion(qnet, profile) -> None:
    """HardwareLimitError if the profile cannot carry the network's input coding."""
    levels = int(qnet.input_levels)
    bits = profile.settings.messages.input_bits
    if levels > 1 or qnet.conversion.coding != "poisson":
        largest = (1 << (bits - 1)) - 1 if bits > 0 else 0
        if levels > largest:
            raise HardwareLimitError(
                f"profile {profile.name}: the {qnet.conversion.coding} input's values "
                f"(up to +-{levels}) do not fit graded spikes of messages.input_bits = {bits}"
                f" (largest {largest})", field="messages.input_bits")


def input_dtype(qnet) -> type:
    """int8 for +-1 spikes, int32 for graded integer values, float32 for the real values
    of an analog coding on a float network."""
    if qnet.conversion.coding == "poisson":
        return np.int8
    return np.int32 if int(qnet.input_levels) > 1 else np.float32


def check_values(qnet, values: np.ndarray) -> None:
    """ValueError unless every input value is a spike (-1, 0, +1), an integer in [-L, L]
    (a quantised analog input) or a real in [-1, 1] (an analog input, float network)."""
    levels = int(qnet.input_levels)
    if qnet.conversion.coding == "poisson":
        if values.size and not np.isin(values, (-1, 0, 1)).all():
            raise ValueError("input spikes must be -1, 0 or +1")
        return
    if levels <= 1:
        if values.size and not (np.all(np.isfinite(values))
                                and float(np.abs(values).max()) <= 1):
            raise ValueError("analog input values must lie in [-1, 1]")
        return
    if values.size and (not np.all(values == np.rint(values))
                        or float(np.abs(values).max()) > levels):
        raise ValueError(f"input values must be integers in [-{levels}, {levels}]")


def initial_potential(qnet, layer, fixed: bool) -> float | int:
    """v at the reset between samples, in the LIF's own units."""
    frac = qnet.conversion.layer_v_init(layer.is_output)
    if not fixed:
        return frac * float(layer.threshold)
    return int(math.floor(frac * float(int(layer.threshold) << qnet.threshold_shift)))


def window_offsets(qnet) -> dict[str, int]:
    """Per layer, the first local step of its window (0 for ``fill``, its depth for
    ``pipelined``)."""
    return {la.name: qnet.conversion.window_offset(int(la.depth)) for la in qnet.layers}


def extra_steps(qnet) -> int:
    """Steps run after the last sample's input: the deepest window offset."""
    return max(window_offsets(qnet).values(), default=0)


def unpack_window(data: np.ndarray, n: int, t: int, offset: int, depth: int) -> np.ndarray:
    """Reader columns (size, N*T + extra) -> (N, T, size) int8 spikes of each sample's
    window starting at local step ``offset``; with offset 0 (``fill``) the steps before
    ``depth`` (the previous sample's tail) are reported as silent."""
    data = np.asarray(data)
    cols = (np.arange(n)[:, None] * t + offset + np.arange(t)[None, :]).reshape(-1)
    out = (data[:, cols].T.reshape(n, t, data.shape[0]) != 0).astype(np.int8)
    if offset == 0:
        out[:, :min(depth, t)] = 0
    return out


def window_potentials(trace: np.ndarray, n: int, t: int, offset: int,
                      depth: int) -> np.ndarray:
    """Monitor data (steps, size) of v -> (N, T, size) float64: v after each step of each
    sample's window; with offset 0 (``fill``) the steps before ``depth`` (the previous
    sample's tail) are reported as 0, the read-out layer's initial potential."""
    cols = (np.arange(n)[:, None] * t + offset + np.arange(t)[None, :]).reshape(-1)
    out = np.asarray(trace, dtype=np.float64)[cols].reshape(n, t, -1)
    if offset == 0:
        out[:, :min(depth, t)] = 0
    return out
