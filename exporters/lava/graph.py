"""The Lava process graph of a :class:`QuantizedNetwork` (see :mod:`.backend` for the
layout and the time mapping). Lava is imported inside the functions only."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from snn2hw.hardware.profiles import Profile

from .checks import pack_input, resolve_profile, synapse_matrix
from .conversion import extra_steps, initial_potential
from .limits import weight_representation

# Message bits come from the profile (``[messages]``). For synapses fed by LIF layers
# (``hidden_bits``): LIF spikes are 0/1, so binary (0) and graded (> 0) interpretation give
# identical sums (the fixed model sums int32 weights either way). On the CPU backend the
# binary path is slower: it slices the CSR matrix by a boolean column mask every step
# (``weights[:, s].sum(axis=1)``, sparse/models.py:101-102), while the graded path is one
# CSR mat-vec (``weights.dot(s)``, sparse/models.py:97-99). Measured on a 5-layer,
# 12k-neuron, 2.2M-synapse net (2 cores): 80-95 steps/s binary vs 190-260 graded,
# identical spikes. Loihi hardware would receive binary spikes from LIF neurons
# (``hidden_bits = 0``, or ``hidden_message_bits=0`` for one run).
# How spikes leave Lava: "extractor" (streamed, fast) or "sink" (RingBuffer + Var.get).
READER = "extractor"
# How a lag > 1 is realised: "relay" (Sparse + identity Sparse relays, fast) or
# "delaysparse" (Lava's DelaySparse, the Loihi mapping, ~50x slower on the CPU).
DELAY = "relay"


@dataclass
class Graph:
    source: Any
    neurons: dict[str, Any]
    synapses: list[Any]
    readers: dict[str, Any]       # name -> Extractor or sink RingBuffer
    reader: str                   # "extractor" or "sink"
    num_steps: int
    monitor: Any = None           # membrane read-out: a Monitor of the output layer's v
    monitored: str = ""           # ... and that layer's name
    trace: Any = None             # after the run: the monitored v, (num_steps, size)


def _connection(weights: sp.csr_matrix, lag: int, message_bits: int, profile: Profile,
                delay: str = "relay") -> list[Any]:
    """The processes of one synapse, in signal order (first has ``s_in``, last ``a_out``).

    lag 1: one ``Sparse``. Sparse is chosen over Conv/Dense: a conv layer expressed as a
    CSR matrix is bit-identical and ~3x faster per step on the CPU backend (the Conv model
    runs a dense convolution every step; Dense does a dense mat-vec over every neuron
    pair), and Sparse has a bit-accurate Loihi model.

    lag > 1, ``delay="delaysparse"``: one ``DelaySparse`` with every delay ``lag - 1``
    (delivers at t+1+d: sparse/models.py:359-372; bit-exact). It is the Loihi mapping
    (synaptic delays) but its CPU model rebuilds the delay-stacked weight matrix every
    step (``get_delay_wgts_mat``, sparse/models.py:226-261, incl. a CSR element
    assignment): 5 steps/s instead of 260 on a 12k-neuron net.
    ``delay="relay"`` (default, fast): ``Sparse(W)`` followed by ``lag - 1`` graded
    ``Sparse(identity)`` relays. Each Sparse sends the previous step's product, so every
    relay adds exactly one step, and an identity mat-vec passes integer (or float)
    currents unchanged: bit-identical to DelaySparse, at the cost of one light process
    per extra step. (Synapse-to-synapse chaining is a CPU device, not a Loihi mapping.)

    fixed_pt: ``num_weight_bits`` = the profile's ``weights.bits``, ``weight_exp`` and
    ``sign_mode=SignMode.MIXED`` go into ``proc_params`` (Sparse takes no such named
    arguments but forwards **kwargs to AbstractProcess, sparse/process.py:59-70; the fixed
    model reads them, sparse/models.py:82-91). It clips to [-256, 255] and drops
    8 - bits + 1 low bits (weightutils.py:230-247, 275-290), so the weights go in shifted
    left by 9 - bits and ``weight_exp = -(9 - bits)`` shifts the sums back
    (:func:`.limits.weight_representation`): integer weights stay exact (for 9 bits,
    the loihi_sim profile, no shift at all). Without a sign mode a mixed-sign matrix loses
    its lowest bit, and an inferred EXCITATORY mode (all weights >= 0) with 9 bits shifts
    by -1, which numpy turns into all-zero weights -- so MIXED is always given.
    """
    from lava.proc.sparse.process import DelaySparse, Sparse
    from lava.utils.weightutils import SignMode

    def kwargs(bits: int) -> dict[str, Any]:
        kw: dict[str, Any] = {"num_message_bits": bits}
        if profile.fixed is not None:
            kw.update(num_weight_bits=weight_bits, sign_mode=SignMode.MIXED,
                      weight_exp=-shift)
        return kw

    weight_bits, shift = (9, 0) if profile.fixed is None else weight_representation(profile)
    if shift:
        weights = sp.csr_matrix(weights * (1 << shift), dtype=weights.dtype)

    if lag == 1:
        return [Sparse(weights=weights, **kwargs(message_bits))]
    if delay == "delaysparse":
        # Delays as a sparse matrix with the weights' pattern: an int ``delays`` would be
        # expanded by Lava's builder into a fully populated (out x in) matrix
        # (py_builder.py:406-409).
        delays = sp.csr_matrix((np.full(weights.nnz, lag - 1, dtype=np.int64),
                                weights.indices.copy(), weights.indptr.copy()),
                               shape=weights.shape)
        return [DelaySparse(weights=weights, delays=delays, max_delay=lag - 1,
                            **kwargs(message_bits))]
    if delay != "relay":
        raise ValueError(f"unknown delay mode {delay!r}")
    chain = [Sparse(weights=weights, **kwargs(message_bits))]
    eye = sp.identity(weights.shape[0], dtype=weights.dtype, format="csr")
    if shift:
        eye = sp.csr_matrix(eye * (1 << shift), dtype=weights.dtype)
    for _ in range(lag - 1):
        relay = Sparse(weights=eye, **kwargs(profile.settings.messages.relay_bits))
        chain[-1].a_out.connect(relay.s_in)
        chain.append(relay)
    return chain


def _lif_class(reset: str):
    """Lava's ``LIFReset``, or ``LIFResetSubtract`` for reset by subtraction (the kinds of
    checks.NEURON_KINDS, checked before)."""
    if reset == "subtract":
        from .procs.subtract_lif import LIFResetSubtract

        return LIFResetSubtract
    from lava.proc.lif.process import LIFReset

    return LIFReset


def _neurons(qnet, profile: Profile, t: int) -> dict[str, Any]:
    """One LIFReset (or LIFResetSubtract) per layer, in depth order, with the profile's
    decays; each reset when the next sample's first spikes reach it. A layer's reset is
    the network's, but by subtraction for the membrane read-out's output layer
    (:meth:`Conversion.layer_reset`)."""
    fixed = profile.settings.tag == "fixed_pt"
    v_init = {la.name: initial_potential(qnet, la, fixed) for la in qnet.layers}
    if any(v_init.values()):
        from .procs.init_lif import LIFResetInit
    number = int if fixed else float
    neurons: dict[str, Any] = {}
    for layer in sorted(qnet.layers, key=lambda la: la.depth):
        reset = qnet.conversion.layer_reset(qnet.reset, layer.is_output)
        if layer.bias_mant is None:
            bias = np.zeros(layer.size, np.int32 if fixed else np.float64)
        else:
            bias = np.asarray(layer.bias_mant).reshape(-1).astype(
                np.int32 if fixed else np.float64)
        kwargs = dict(shape=(layer.size,), du=number(profile.neuron_du),
                      dv=number(profile.neuron_dv), vth=number(layer.threshold),
                      bias_mant=bias, bias_exp=int(layer.bias_exp) if fixed else 0,
                      reset_interval=t, reset_offset=(int(layer.depth) + 1) % t,
                      name=f"lif:{layer.name}")
        if v_init[layer.name]:
            neurons[layer.name] = LIFResetInit(v_init=v_init[layer.name],
                                               subtract=reset == "subtract", **kwargs)
        else:
            neurons[layer.name] = _lif_class(reset)(**kwargs)
    return neurons


def build_graph(qnet, spikes: np.ndarray, timesteps: int, tag: str | None = None,
                record: list[str] | None = None, hidden_message_bits: int | None = None,
                reader: str = READER, delay: str = DELAY, *,
                profile: Profile | str | None = None) -> Graph:
    """The process graph of ``qnet`` under ``profile`` (see :func:`resolve_profile`):
    neuron decays, weight bits and message bits come from the profile;
    ``hidden_message_bits`` overrides ``messages.hidden_bits`` for this graph."""
    from lava.proc.io.extractor import Extractor
    from lava.proc.io.sink import RingBuffer as SinkBuffer
    from lava.proc.io.source import RingBuffer as SourceBuffer

    profile = resolve_profile(tag, profile)
    tag = profile.settings.tag
    msg = profile.settings.messages
    if hidden_message_bits is None:
        hidden_message_bits = msg.hidden_bits
    n, t, _ = spikes.shape
    extra = extra_steps(qnet)         # the pipelined window's tail after the last sample
    num_steps = n * t + extra
    data = pack_input(spikes, np.int32 if tag == "fixed_pt" else np.float64)
    if extra:
        data = np.concatenate([data, np.zeros((data.shape[0], extra), data.dtype)], axis=1)
    source = SourceBuffer(data=data)
    neurons = _neurons(qnet, profile, t)
    outports = {qnet.input: source.s_out} | {k: p.s_out for k, p in neurons.items()}
    synapses = []
    for layer in qnet.layers:
        for syn in layer.synapses:
            bits = msg.input_bits if syn.source == qnet.input else hidden_message_bits
            chain = _connection(synapse_matrix(syn, tag), int(syn.lag), bits, profile, delay)
            outports[syn.source].connect(chain[0].s_in)
            # Several synapses into one layer: Lava sums every connected a_out
            # (PyInPortVectorDense.recv, magma/core/model/py/ports.py:333-351).
            chain[-1].a_out.connect(neurons[layer.name].a_in)
            synapses.extend(chain)
    names = [la.name for la in qnet.layers] if record is None else list(record)
    if reader not in ("extractor", "sink"):
        raise ValueError(f"unknown reader {reader!r}")
    readers = {}
    for name in names:
        shape = (neurons[name].a_in.shape[0],)
        if reader == "sink":
            readers[name] = SinkBuffer(shape=shape, buffer=num_steps)
            neurons[name].s_out.connect(readers[name].a_in)
        else:
            # Shared-memory ring of EXTRACTOR_BUFFER vectors; drained during the run.
            readers[name] = Extractor(shape=shape,
                                      buffer_size=max(1, min(num_steps, EXTRACTOR_BUFFER)))
            neurons[name].s_out.connect(readers[name].in_port)
    graph = Graph(source, neurons, synapses, readers, reader, num_steps)
    if qnet.conversion.readout == "membrane":
        from lava.proc.monitor.process import Monitor

        graph.monitor, graph.monitored = Monitor(), qnet.output.name
        graph.monitor.probe(neurons[graph.monitored].v, num_steps)
    return graph


EXTRACTOR_BUFFER = 64
