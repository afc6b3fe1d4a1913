"""Build and run the Lava (lava-nc 0.10.0) process graph of a :class:`QuantizedNetwork`.

Only standard lava-nc processes are used, except for networks whose neurons reset by
subtraction (``qnet.reset == "subtract"``): their layers are
:class:`snn2hw.exporters.lava_procs.subtract_lif.LIFResetSubtract`, ``LIFReset`` with Lava's
own models but for the one line that resets v.

* input  -- ``lava.proc.io.source.RingBuffer`` holding the signed input spikes of all
  samples back to back: column ``k*T + j`` is sample ``k``, 0-based step ``j``; at Lava
  step ``t`` (1-based) it emits column ``(t - 1) mod N*T`` (source.py:41-43).
* synapse -- ``lava.proc.sparse.process.Sparse`` (CSR weights) for ``lag == 1``; for
  ``lag > 1`` either ``DelaySparse`` with every delay ``lag - 1`` (the Loihi mapping; a
  spike received at step t is delivered at t+1+d, sparse/models.py:359-372) or, by
  default because DelaySparse's CPU model is ~50x slower, ``Sparse`` followed by
  ``lag - 1`` identity ``Sparse`` relays (see :func:`_connection`).
* layer -- ``lava.proc.lif.process.LIFReset`` (or ``LIFResetSubtract``) with du=4095,
  dv=0 (fixed_pt) or du=1, dv=0 (floating_pt), ``reset_interval=T`` and
  ``reset_offset=(depth + 1) % T``.
* output -- per recorded layer either a ``lava.proc.io.extractor.Extractor`` (default:
  streams one spike vector per step to this process, drained while the run goes on) or a
  ``lava.proc.io.sink.RingBuffer`` (buffer N*T, read with ``data.get()`` after the run).
  The sink is simple but reading it is slow: ``Var.get`` transfers a Var one element per
  channel message (magma/runtime/runtime.py:603-611), ~25 us per value, i.e. 30 s for
  12k neurons x 100 steps; the Extractor moves whole vectors.

Time mapping (one hop = one Lava step: a synapse sends the buffer computed on the previous
step, then receives): sample k's 0-based local step t is Lava step ``k*T + t + 1`` for
*every* layer, and the sink stores it in column ``k*T + t``. A layer ``depth`` hops from
the input sees sample k's first input at local step ``depth``; LIFReset zeroes u and v at
exactly that step (``time_step % T == (depth + 1) % T``, before the step's input,
lif/models.py:432-436). At local steps ``t < depth`` the layer is still integrating the
tail of the previous sample (or, for sample 0, only its bias), which the reference
simulator treats as idle: those steps are reported as silent. Spikes emitted there cannot
leak into the current sample, because every downstream layer is reset when they would
arrive (depth(target) >= depth(source) + lag, checked in :func:`check_network`).

Importing this module imports no Lava (Lava's runtime sets the multiprocessing start
method on import); Lava is imported inside the functions that run it, normally only in
the child process :mod:`snn2hw.exporters.lava_worker`.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from snn2hw.errors import BackendError, HardwareLimitError

TAGS = ("fixed_pt", "floating_pt")

# The fixed-point limits checked before a run (weights, vth, bias mantissa/exponent) come
# from the hardware profile (hw_profiles/loihi_sim.toml), which states what Lava's
# bit-accurate models represent (lif/models.py:250-258, weightutils.py:250-295).
DEFAULT_PROFILE = "loihi_sim"

# Message bits of the synapses fed by the (signed, graded) input spikes.
INPUT_MESSAGE_BITS = 8
# Message bits of synapses fed by LIF layers. LIF spikes are 0/1, so binary (0) and graded
# (> 0) interpretation give identical sums (the fixed model sums int32 weights either way).
# On the CPU backend the binary path is slower: it slices the CSR matrix by a boolean
# column mask every step (``weights[:, s].sum(axis=1)``, sparse/models.py:101-102), while
# the graded path is one CSR mat-vec (``weights.dot(s)``, sparse/models.py:97-99).
# Measured on a 5-layer, 12k-neuron, 2.2M-synapse net (2 cores): 80-95 steps/s binary
# vs 190-260 graded, identical spikes.
# Loihi hardware would receive binary spikes from LIF neurons; pass 0 to build that graph.
HIDDEN_MESSAGE_BITS = 1
# How spikes leave Lava: "extractor" (streamed, fast) or "sink" (RingBuffer + Var.get).
READER = "extractor"
# How a lag > 1 is realised: "relay" (Sparse + identity Sparse relays, fast) or
# "delaysparse" (Lava's DelaySparse, the Loihi mapping, ~50x slower on the CPU).
DELAY = "relay"


@dataclass
class LavaRun:
    """What one Lava execution produced (in the process that ran Lava)."""
    spikes: dict[str, np.ndarray]            # name -> (N, T, size) int8
    timing: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# Checks and data layout (no Lava needed)
# ---------------------------------------------------------------------------------------

def layer_sizes(qnet) -> dict[str, int]:
    sizes = {qnet.input: int(np.prod(qnet.input_shape))}
    for layer in qnet.layers:
        sizes[layer.name] = layer.size
    return sizes


def _is_integral(values: np.ndarray) -> bool:
    values = np.asarray(values)
    if values.size == 0 or np.issubdtype(values.dtype, np.integer):
        return True
    return bool(np.all(np.isfinite(values)) and np.all(values == np.rint(values)))


def _synapse_values(syn) -> np.ndarray:
    if syn.kind == "conv":
        return np.asarray(syn.weight).reshape(-1)
    return np.asarray(syn.csr.data)


def check_network(qnet, tag: str = "fixed_pt", record: list[str] | None = None,
                  limits=None) -> None:
    """Raise before any Lava work if the network cannot run exactly on the Lava backend:
    ``ValueError`` for a malformed network, :class:`HardwareLimitError` for a value that
    does not fit the fixed-point registers (fixed_pt only) described by ``limits`` (a
    :class:`snn2hw.profiles.FixedPoint`; default: the loihi_sim profile's)."""
    if tag not in TAGS:
        raise ValueError(f"unknown Lava tag {tag!r}; expected one of {', '.join(TAGS)}")
    sizes = layer_sizes(qnet)
    depth = {qnet.input: 0}
    names = [layer.name for layer in qnet.layers]
    if len(set(names)) != len(names) or qnet.input in names:
        raise ValueError("layer names must be unique and differ from the input name")
    for layer in qnet.layers:
        depth[layer.name] = int(layer.depth)
    for layer in qnet.layers:
        if not layer.synapses:
            raise ValueError(f"layer {layer.name} has no synapses")
        if layer.bias_mant is not None and np.asarray(layer.bias_mant).size != layer.size:
            raise ValueError(f"layer {layer.name}: bias_mant has "
                             f"{np.asarray(layer.bias_mant).size} values for {layer.size} "
                             "neurons")
        for syn in layer.synapses:
            if syn.source not in sizes:
                raise ValueError(f"layer {layer.name}: unknown synapse source {syn.source!r}")
            if syn.in_size != sizes[syn.source] or syn.out_size != layer.size:
                raise ValueError(f"layer {layer.name}: synapse from {syn.source} maps "
                                 f"{syn.in_size} -> {syn.out_size}, expected "
                                 f"{sizes[syn.source]} -> {layer.size}")
            if int(syn.lag) < 1:
                raise ValueError(f"layer {layer.name}: synapse lag {syn.lag} from "
                                 f"{syn.source} must be at least 1 (one hop)")
            if depth[layer.name] < depth[syn.source] + int(syn.lag):
                raise ValueError(
                    f"layer {layer.name} (depth {depth[layer.name]}) is fed from "
                    f"{syn.source} (depth {depth[syn.source]}) with lag {syn.lag}: a layer "
                    "must be at least source depth + lag hops from the input")
    if record is not None:
        unknown = [name for name in record if name not in names]
        if unknown:
            raise ValueError(f"cannot record unknown layer(s): {', '.join(unknown)}")
    if tag != "fixed_pt":
        return
    if limits is None:
        from snn2hw.profiles import load

        limits = load(DEFAULT_PROFILE).fixed
    WEIGHT_MIN, WEIGHT_MAX = limits.weight_min, limits.weight_max
    VTH_MAX = limits.threshold_max
    BIAS_MANT_MAX = limits.bias_mant_max
    BIAS_MANT_MIN = -BIAS_MANT_MAX - 1
    BIAS_EXP_MIN, BIAS_EXP_MAX = limits.bias_exp_min, limits.bias_exp_max
    for layer in qnet.layers:
        where = f"layer {layer.name}"
        for syn in layer.synapses:
            w = _synapse_values(syn)
            if not _is_integral(w):
                raise HardwareLimitError(f"{where}: synapse from {syn.source} has "
                                         "non-integer weights (fixed_pt needs integers)")
            if w.size and (w.min() < WEIGHT_MIN or w.max() > WEIGHT_MAX):
                raise HardwareLimitError(
                    f"{where}: synapse from {syn.source} has weights in "
                    f"[{int(w.min())}, {int(w.max())}], outside the profile's weight range "
                    f"[{WEIGHT_MIN}, {WEIGHT_MAX}]")
        thr = layer.threshold
        if not _is_integral(np.asarray([thr])) or not 0 <= thr <= VTH_MAX:
            raise HardwareLimitError(f"{where}: threshold {thr} is not an integer in "
                                     f"[0, {VTH_MAX}] (the profile's vth range)")
        if layer.bias_mant is not None:
            b = np.asarray(layer.bias_mant)
            if not _is_integral(b) or (b.size and (b.min() < BIAS_MANT_MIN
                                                   or b.max() > BIAS_MANT_MAX)):
                raise HardwareLimitError(
                    f"{where}: bias mantissas must be integers in [{BIAS_MANT_MIN}, "
                    f"{BIAS_MANT_MAX}] (the profile's range), got [{b.min()}, {b.max()}]")
            if not BIAS_EXP_MIN <= int(layer.bias_exp) <= BIAS_EXP_MAX:
                raise HardwareLimitError(f"{where}: bias exponent {layer.bias_exp} is "
                                         f"outside [{BIAS_EXP_MIN}, {BIAS_EXP_MAX}]")


def check_spikes(qnet, spikes: np.ndarray, timesteps: int) -> np.ndarray:
    """Validate the input spike array (N, T, in_size) and return it as int8."""
    in_size = layer_sizes(qnet)[qnet.input]
    spikes = np.asarray(spikes)
    if spikes.ndim != 3 or spikes.shape[1] != timesteps or spikes.shape[2] != in_size:
        raise ValueError(f"input spikes must have shape (N, {timesteps}, {in_size}), got "
                         f"{spikes.shape}")
    if spikes.shape[0] < 1 or timesteps < 1:
        raise ValueError("need at least one sample and one time step")
    if spikes.size and not np.isin(spikes, (-1, 0, 1)).all():
        raise ValueError("input spikes must be -1, 0 or +1")
    return spikes.astype(np.int8)


def pack_input(spikes: np.ndarray, dtype=np.int32) -> np.ndarray:
    """(N, T, in_size) -> RingBuffer data (in_size, N*T): column k*T + j = sample k, step j."""
    n, t, size = spikes.shape
    return np.ascontiguousarray(spikes.reshape(n * t, size).T.astype(dtype))


def unpack_output(data: np.ndarray, n: int, t: int, depth: int) -> np.ndarray:
    """Sink buffer (size, N*T) -> (N, T, size) int8 spikes, with the idle steps t < depth
    (the previous sample's tail, see the module docstring) reported as silent."""
    size = data.shape[0]
    out = (np.asarray(data).T.reshape(n, t, size) != 0).astype(np.int8)
    out[:, :min(depth, t)] = 0
    return out


def conv_csr(syn, dtype=np.float64) -> sp.csr_matrix:
    """The exact matrix (out_size, in_size) of a conv synapse (torch layout and semantics:
    cross-correlation, padding (top, left, bottom, right)), built by index arithmetic in
    numpy, so float weights stay unrounded. Integer weights give the same matrix as
    :meth:`IntSynapse.matrix`."""
    w = np.asarray(syn.weight)
    c_out, c_in_g, kh, kw = w.shape
    c_in, h, wid = syn.in_shape
    _, ho, wo = syn.out_shape
    sh, sw = syn.stride
    top, left, _, _ = syn.padding
    dh, dw = syn.dilation
    groups = syn.groups
    c_out_g = c_out // groups
    co = np.arange(c_out)[:, None, None]
    oy = np.arange(ho)[None, :, None]
    ox = np.arange(wo)[None, None, :]
    rows_all, cols_all, vals_all = [], [], []
    row = np.broadcast_to(co * ho * wo + oy * wo + ox, (c_out, ho, wo))
    for cil in range(c_in_g):
        ci = (co // c_out_g) * c_in_g + cil
        for ky in range(kh):
            iy = oy * sh - top + ky * dh
            for kx in range(kw):
                ix = ox * sw - left + kx * dw
                val = np.broadcast_to(w[:, cil, ky, kx][:, None, None], (c_out, ho, wo))
                ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < wid) & (val != 0)
                ok = np.broadcast_to(ok, (c_out, ho, wo))
                col = np.broadcast_to(ci * h * wid + iy * wid + ix, (c_out, ho, wo))
                rows_all.append(row[ok])
                cols_all.append(col[ok])
                vals_all.append(val[ok])
    mat = sp.csr_matrix((np.concatenate(vals_all).astype(dtype),
                         (np.concatenate(rows_all), np.concatenate(cols_all))),
                        shape=(syn.out_size, syn.in_size))
    mat.sum_duplicates()
    mat.sort_indices()
    return mat


def synapse_matrix(syn, tag: str) -> sp.csr_matrix:
    """CSR weights (out_size, in_size) for the Lava Sparse process: exact int32 for
    fixed_pt (:meth:`IntSynapse.matrix`), float64 for floating_pt."""
    if tag == "fixed_pt":
        mat = sp.csr_matrix(syn.matrix())
        return sp.csr_matrix(mat, dtype=np.int32)
    if syn.kind == "conv":
        return conv_csr(syn, np.float64)
    return sp.csr_matrix(syn.csr, dtype=np.float64)


def estimate_step_cost(qnet) -> float:
    """A rough estimate (seconds, 2-5x what was measured on a 2-core machine) of one Lava
    CPU step of ``qnet``: every process is an OS process synchronised each step, and the
    synapses do one CSR mat-vec each. Used to scale timeouts."""
    procs = 2 + sum(2 + sum(int(s.lag) for s in layer.synapses) for layer in qnet.layers)
    nnz = 0
    for layer in qnet.layers:
        for syn in layer.synapses:
            if syn.kind == "conv":
                nnz += int(np.count_nonzero(syn.weight)) * int(np.prod(syn.out_shape[1:]))
            else:
                nnz += int(syn.csr.nnz)
    neurons = sum(layer.size for layer in qnet.layers)
    return 1e-3 * procs + 5e-9 * nnz + 2e-7 * neurons


# ---------------------------------------------------------------------------------------
# Process graph (imports Lava)
# ---------------------------------------------------------------------------------------

@dataclass
class Graph:
    source: Any
    neurons: dict[str, Any]
    synapses: list[Any]
    readers: dict[str, Any]       # name -> Extractor or sink RingBuffer
    reader: str                   # "extractor" or "sink"
    num_steps: int


def _connection(weights: sp.csr_matrix, lag: int, message_bits: int, tag: str,
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

    ``num_weight_bits=9`` with ``sign_mode=SignMode.MIXED`` go into ``proc_params``
    (Sparse takes no such named arguments but forwards **kwargs to AbstractProcess,
    sparse/process.py:59-70; the fixed model reads them, sparse/models.py:82-91): it then
    clips to [-256, 255] and truncates 8 - 9 + 1 = 0 low bits (weightutils.py:230-247,
    275-290), so integer weights stay exact. Without them a mixed-sign matrix loses its
    lowest bit, and num_weight_bits=9 with an inferred EXCITATORY mode (all weights >= 0)
    shifts by -1, which numpy turns into all-zero weights -- so MIXED is always given.
    """
    from lava.proc.sparse.process import DelaySparse, Sparse
    from lava.utils.weightutils import SignMode

    def kwargs(bits: int) -> dict[str, Any]:
        kw: dict[str, Any] = {"num_message_bits": bits}
        if tag == "fixed_pt":
            kw.update(num_weight_bits=9, sign_mode=SignMode.MIXED, weight_exp=0)
        return kw

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
    for _ in range(lag - 1):
        relay = Sparse(weights=eye, **kwargs(RELAY_MESSAGE_BITS))
        chain[-1].a_out.connect(relay.s_in)
        chain.append(relay)
    return chain


RELAY_MESSAGE_BITS = 24     # relays carry dendritic sums (24-bit on Loihi), graded


def build_graph(qnet, spikes: np.ndarray, timesteps: int, tag: str = "fixed_pt",
                record: list[str] | None = None,
                hidden_message_bits: int = HIDDEN_MESSAGE_BITS,
                reader: str = READER, delay: str = DELAY) -> Graph:
    from lava.proc.io.extractor import Extractor
    from lava.proc.io.sink import RingBuffer as SinkBuffer
    from lava.proc.io.source import RingBuffer as SourceBuffer
    from lava.proc.lif.process import LIFReset

    if qnet.reset == "subtract":
        from .lava_procs.subtract_lif import LIFResetSubtract as LIFReset

    n, t, _ = spikes.shape
    num_steps = n * t
    fixed = tag == "fixed_pt"
    data = pack_input(spikes, np.int32 if fixed else np.float64)
    source = SourceBuffer(data=data)
    outports = {qnet.input: source.s_out}
    neurons: dict[str, Any] = {}
    for layer in sorted(qnet.layers, key=lambda la: la.depth):
        size = layer.size
        if fixed:
            bias = (np.zeros(size, np.int32) if layer.bias_mant is None
                    else np.asarray(layer.bias_mant).reshape(-1).astype(np.int32))
            params = dict(du=4095, dv=0, vth=int(layer.threshold), bias_mant=bias,
                          bias_exp=int(layer.bias_exp))
        else:
            bias = (np.zeros(size) if layer.bias_mant is None
                    else np.asarray(layer.bias_mant, dtype=np.float64).reshape(-1))
            params = dict(du=1.0, dv=0.0, vth=float(layer.threshold), bias_mant=bias,
                          bias_exp=0)
        neurons[layer.name] = LIFReset(shape=(size,), reset_interval=t,
                                       reset_offset=(int(layer.depth) + 1) % t,
                                       name=f"lif:{layer.name}", **params)
        outports[layer.name] = neurons[layer.name].s_out
    synapses = []
    for layer in qnet.layers:
        for syn in layer.synapses:
            bits = INPUT_MESSAGE_BITS if syn.source == qnet.input else hidden_message_bits
            chain = _connection(synapse_matrix(syn, tag), int(syn.lag), bits, tag, delay)
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
    return Graph(source, neurons, synapses, readers, reader, num_steps)


EXTRACTOR_BUFFER = 64
END_GRACE = 2.0  # seconds to keep draining after the run ended with steps still missing


def _run_config(tag: str):
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel

    # The Extractor has two untagged models (Loihi and async protocol); with a select_tag
    # Lava refuses to choose (run_configs.py:312-325), so name the synchronous one.
    return Loihi2SimCfg(select_tag=tag,
                        exception_proc_model_map={Extractor: PyLoihiExtractorModel})


def _actor_failure(runtime) -> str | None:
    """One line describing a Lava actor (ProcessModel/RuntimeService process) that raised
    or died, or None. A failing ProcessModel does not make ``run()`` raise when it is
    connected (the others deadlock), so the run is watched from outside."""
    infra = getattr(runtime, "_messaging_infrastructure", None)
    for actor in list(getattr(infra, "actors", []) or []):
        try:
            exc = actor.exception
        except (OSError, EOFError, ValueError):
            exc = None
        if exc:
            err, tb = exc if isinstance(exc, tuple) and len(exc) == 2 else (exc, "")
            lines = [ln.strip() for ln in str(tb).splitlines() if ln.strip()]
            return lines[-1] if lines else f"{type(err).__name__}: {err}"
        try:
            dead = actor.exitcode is not None and actor.exitcode != 0
        except (ValueError, AssertionError):
            dead = False
        if dead:
            return f"a Lava process exited with status {actor.exitcode}"
    return None


def _bounded(fn: Callable[[], Any], seconds: float) -> bool:
    """Run fn in a daemon thread; True if it returned within ``seconds``."""
    th = threading.Thread(target=fn, daemon=True)
    th.start()
    th.join(seconds)
    return not th.is_alive()


def run_graph(graph: Graph, tag: str, poll: float = 0.05, stop_timeout: float = 30.0,
              failed_stop_timeout: float = 2.0
              ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Compile, run ``graph.num_steps`` steps and collect every recorded layer as
    (size, N*T) spikes. The blocking ``run()`` goes in a thread while this thread drains
    the extractors and watches the Lava processes for failures. Always stops the runtime
    (bounded: ``stop()`` hangs after a ProcessModel failure)."""
    from lava.magma.core.run_conditions import RunSteps

    proc = graph.source
    timing: dict[str, float] = {}
    steps = graph.num_steps
    t0 = time.perf_counter()
    ok = False
    try:
        proc.create_runtime(run_cfg=_run_config(tag))
        t1 = time.perf_counter()
        timing["compile_seconds"] = t1 - t0
        errors: list[BaseException] = []

        def target() -> None:
            try:
                proc.run(condition=RunSteps(num_steps=steps))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        streams = {}
        if graph.reader == "extractor":
            streams = {name: (ext.out_port.external_pipe_csp_recv_port,
                              np.zeros((steps, ext.in_port.shape[0]), np.int8))
                       for name, ext in graph.readers.items()}
        got = dict.fromkeys(streams, 0)
        runner = threading.Thread(target=target, daemon=True, name="lava-run")
        runner.start()
        last_check = 0.0
        ended_at = None  # when the run was first seen finished with steps still missing
        while True:
            # Read "finished" before draining: the run may end (its last messages landing
            # in the pipes) while we drain, and only a drain that starts after the end is
            # sure to see every message sent before it.
            finished = not runner.is_alive()
            moved = False
            for name, (port, buf) in streams.items():
                while got[name] < steps and port.probe():
                    buf[got[name]] = port.recv() != 0
                    got[name] += 1
                    moved = True
            done = all(n == steps for n in got.values())
            if finished and done:
                break
            now = time.perf_counter()
            if not moved or now - last_check > poll:
                last_check = now
                failure = _actor_failure(proc.runtime)
                if failure:
                    raise BackendError(f"a Lava process failed: {failure}")
                if finished and errors:
                    raise BackendError(f"Lava run failed: {errors[0]}") from errors[0]
                if finished and not done and not moved:
                    ended_at = now if ended_at is None else ended_at
                    if now - ended_at > END_GRACE:
                        raise BackendError("Lava run ended before every step was received "
                                           f"({min(got.values())} of {steps})")
                if not moved:
                    if finished:
                        time.sleep(0.005)
                    else:
                        runner.join(0.005 if streams else poll)
        if errors:
            raise BackendError(f"Lava run failed: {errors[0]}") from errors[0]
        t2 = time.perf_counter()
        timing["run_seconds"] = t2 - t1
        timing["steps"] = float(steps)
        timing["steps_per_second"] = steps / max(t2 - t1, 1e-9)
        if graph.reader == "extractor":
            data = {name: buf.T for name, (_, buf) in streams.items()}
        else:
            data = {name: np.asarray(sink.data.get()) for name, sink in graph.readers.items()}
        timing["read_seconds"] = time.perf_counter() - t2
        ok = True
    finally:
        # After a ProcessModel failure stop() blocks on the dead process's reply: give it
        # a short chance only (the parent kills what is left).
        ts = time.perf_counter()
        if not _bounded(proc.stop, stop_timeout if ok else failed_stop_timeout):
            timing["stop_hung"] = 1.0
        timing["stop_seconds"] = time.perf_counter() - ts
    return data, timing


def run_network(qnet, spikes: np.ndarray, timesteps: int, tag: str = "fixed_pt",
                record: list[str] | None = None,
                extra: Callable[[Graph], None] | None = None,
                hidden_message_bits: int = HIDDEN_MESSAGE_BITS,
                reader: str = READER, delay: str = DELAY) -> LavaRun:
    """Run ``qnet`` on Lava in *this* process (call it from a child process: see
    :mod:`snn2hw.exporters.watchdog`). ``extra`` may add processes to the graph (tests)."""
    check_network(qnet, tag, record)
    spikes = check_spikes(qnet, spikes, timesteps)
    n, t, _ = spikes.shape
    t0 = time.perf_counter()
    graph = build_graph(qnet, spikes, timesteps, tag, record, hidden_message_bits, reader,
                        delay)
    if extra is not None:
        extra(graph)
    build_seconds = time.perf_counter() - t0
    data, timing = run_graph(graph, tag)
    timing["build_seconds"] = build_seconds
    depth = {la.name: int(la.depth) for la in qnet.layers}
    out = {name: unpack_output(arr, n, t, depth[name]) for name, arr in data.items()}
    return LavaRun(out, timing)
