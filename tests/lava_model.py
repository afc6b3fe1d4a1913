"""An independent integer model of the Lava process graph that snn2hw's backend builds,
written from lava-nc 0.10.0's own source (paths inside the installed ``lava`` package).

It shares no code with ``snn2hw.quantize.fixed``, ``snn2hw.quantize.qnet`` (no ``IntSynapse.apply`` or
``matrix``) or the backend: it reads only the dataclass fields of a ``QuantizedNetwork``
and runs, Lava step by Lava step, with NumPy int32 registers as Lava's CPU models do:

* ``RingBuffer`` source (proc/io/source.py:41-43): at step ts it sends column
  ``(ts - 1) mod buffer``; the backend packs sample k's step j into column ``k*T + j``.
* ``Sparse`` fixed_pt (proc/sparse/models.py:77-107): on its first step the weights are
  clipped to [-2**8, 2**8 - 1] (mixed sign; utils/weightutils.py:250-295) and truncated by
  ``8 - num_weight_bits + 1`` low bits (weightutils.py:203-247); every step it first sends
  the buffer computed on the previous step (initially 0), then receives and computes the
  int32 product ``weights.dot(s_in)`` (graded) or the sum of the columns of the spiking
  inputs (binary). A synapse with lag L > 1 is one Sparse plus L - 1 identity relays.
  Neither Sparse nor Dense (proc/dense/models.py:77-107, the same arithmetic) nor
  DelaySparse (proc/sparse/models.py:313-372) wraps or saturates the sum at 24 bits;
  only the int32 of the ``a_out`` channel bounds it.
* The LIF input port sums every connected ``a_out`` (magma/core/model/py/ports.py:333-351)
  into an int32 vector.
* ``LIFReset`` fixed_pt (proc/lif/models.py, ``AbstractPyLifModelFixed`` lines 72-216 and
  ``PyLifResetModelBitAcc`` lines 386-449): receive; if ``ts % T == offset`` zero u and v;
  effective bias ``bias_mant << bias_exp`` (bias_mant stored as int16, lines 84, 116-121);
  effective threshold ``vth << 6`` (lines 414-420); u = decayed u + (a_in << 6) in int32,
  wrapped once (lines 145-171); v = clip(decayed v + u + bias, +-(2**23 - 1))
  (lines 174-186); spike if v > effective threshold (line 424); reset v = 0 (line 192) or,
  for ``LIFResetSubtract``, v -= effective threshold.
* Output: the spikes of every step, sample-major; steps t < depth of each sample are
  reported silent, as the backend does.

The conversion options (``qnet.conversion``), as the backend maps them onto Lava
(exporters/lava/conversion.py, procs/init_lif.py), written here again from Lava's source:

* direct coding: the RingBuffer holds integers in [-L, L] instead of spikes; the first
  Sparse is graded, so they multiply the weights (sparse/models.py:96-99).
* v_init: the periodic reset sets v = floor(v_init * (vth << 6)) instead of 0 (0 for the
  output layer of a membrane read-out).
* membrane read-out: a Monitor reads the output layer's v after each step's spike and
  reset (monitor/models.py:34-47, post-management phase); in the fill window the steps
  before the layer's depth (the previous sample's tail) are reported as 0.
* pipelined window: N*T + D steps (D the deepest layer; zero input after the last sample);
  layer ``depth`` d's window for sample k is steps k*T + d .. k*T + d + T - 1 (0-based),
  nothing is reported silent.
"""
from __future__ import annotations

import numpy as np

UV_BITS = 24          # lif/models.py:101 (uv_bitwidth)
MAX_UV = 1 << (UV_BITS - 1)
DECAY_SHIFT = 12      # lif/models.py:104
SHIFT = 6             # lif/models.py:107-108 (vth_shift, act_shift)


def conv_weights(syn) -> np.ndarray:
    """Dense (out_size, in_size) int64 matrix of a conv synapse (torch layout: cross-
    correlation; padding top, left, bottom, right; optional sum-pooling before), by loops."""
    w = np.asarray(syn.weight, dtype=np.int64)
    c_out, c_in_g, kh, kw = w.shape
    c_in, h, wid = syn.in_shape
    _, ho, wo = syn.out_shape
    ph, pw = syn.pool
    top, left = syn.padding[0], syn.padding[1]
    per_group = c_out // syn.groups
    mat = np.zeros((c_out * ho * wo, c_in * h * wid), dtype=np.int64)
    for co in range(c_out):
        for oy in range(ho):
            for ox in range(wo):
                row = (co * ho + oy) * wo + ox
                for cl in range(c_in_g):
                    ci = (co // per_group) * c_in_g + cl
                    for ky in range(kh):
                        for kx in range(kw):
                            py = oy * syn.stride[0] - top + ky * syn.dilation[0]
                            px = ox * syn.stride[1] - left + kx * syn.dilation[1]
                            if not (0 <= py < h // ph and 0 <= px < wid // pw):
                                continue  # zero padding
                            for a in range(ph):      # the pooled pixel's inputs
                                for b in range(pw):
                                    col = (ci * h + py * ph + a) * wid + px * pw + b
                                    mat[row, col] += w[co, cl, ky, kx]
    return mat


def synapse_weights(syn) -> np.ndarray:
    if syn.kind == "conv":
        return conv_weights(syn)
    return np.asarray(syn.csr.toarray(), dtype=np.int64)


def lava_sparse_weights(w: np.ndarray, num_weight_bits: int = 9) -> np.ndarray:
    """clip_weights(MIXED, num_bits=8) then truncate_weights(MIXED, num_weight_bits)."""
    w = np.clip(w.astype(np.int32), -(2 ** 8), 2 ** 8 - 1)
    drop = 8 - num_weight_bits + 1
    return (w >> drop) << drop


class SparseModel:
    """One Sparse process: send the previous product, then compute this step's."""

    def __init__(self, weights: np.ndarray, graded: bool) -> None:
        self.w = weights.astype(np.int64)
        self.graded = graded
        self.buff = np.zeros(weights.shape[0], dtype=np.int32)

    def send(self) -> np.ndarray:
        return self.buff

    def receive(self, s_in: np.ndarray) -> None:
        s = s_in.astype(np.int64) if self.graded else (s_in != 0).astype(np.int64)
        self.buff = (self.w @ s).astype(np.int32)   # int32 product (wraps modulo 2**32)


class LifResetModel:
    """LIFReset fixed_pt with du, dv, vth, bias_mant, bias_exp, reset interval/offset."""

    def __init__(self, size, du, dv, vth, bias_mant, bias_exp, interval, offset,
                 subtract: bool, v_init: int = 0) -> None:
        self.u = np.zeros(size, dtype=np.int32)
        self.v = np.zeros(size, dtype=np.int32)
        self.du, self.dv, self.vth = du, dv, vth
        self.bias_mant = np.asarray(bias_mant).astype(np.int16)   # the Var's dtype
        self.bias_exp = np.full(size, bias_exp, dtype=np.int16)
        self.interval, self.offset = interval, offset % interval
        self.subtract = subtract
        self.v_init = int(v_init)

    @staticmethod
    def _decay(x: np.ndarray, keep: int) -> np.ndarray:
        d = np.int64(1) * x.astype(np.int64) * keep
        return (np.sign(d) * np.right_shift(np.abs(d), DECAY_SHIFT)).astype(np.int32)

    def step(self, ts: int, a_in: np.ndarray) -> np.ndarray:
        if ts % self.interval == self.offset:
            self.u[:] = 0
            self.v[:] = self.v_init
        bias = np.left_shift(self.bias_mant.astype(np.int32), self.bias_exp)
        vth = np.left_shift(np.int32(self.vth), SHIFT)
        curr = self._decay(self.u, (1 << DECAY_SHIFT) - (self.du + 1))
        curr += np.left_shift(a_in.astype(np.int32), SHIFT)
        wrapped = np.where(curr > MAX_UV, curr - 2 * MAX_UV, curr)
        wrapped = np.where(wrapped <= -MAX_UV, curr + 2 * MAX_UV, wrapped)
        self.u[:] = wrapped
        volt = self._decay(self.v, (1 << DECAY_SHIFT) - self.dv) + self.u + bias
        self.v[:] = np.clip(volt, -np.int32(MAX_UV) + 1, np.int32(MAX_UV) - 1)
        spikes = self.v > vth
        if self.subtract:
            self.v[spikes] -= vth
        else:
            self.v[spikes] = 0
        return spikes


def _v_init(qnet, la) -> int:
    """floor(fraction * (vth << 6)), 0 for the membrane read-out's output layer."""
    conv = getattr(qnet, "conversion", None)
    if conv is None or (la.is_output and conv.readout == "membrane"):
        return 0
    return (int(conv.v_init * 2) * (int(la.threshold) << SHIFT)) // 2   # v_init is 0 or 1/2


def _subtracts(qnet, la) -> bool:
    """Reset by subtraction: the network's choice, and always for the membrane read-out's
    output layer (its read-out is count * (vth << 6) + v)."""
    conv = getattr(qnet, "conversion", None)
    membrane_out = conv is not None and la.is_output and conv.readout == "membrane"
    return qnet.reset == "subtract" or membrane_out


def run_model(qnet, spikes: np.ndarray, du: int = 4095, dv: int = 0,
              hidden_graded: bool = True, potentials: dict | None = None
              ) -> dict[str, np.ndarray]:
    """Every layer's spikes (N, T, size) int8 for the input (N, T, in_size) of -1/0/+1
    spikes (or graded integers: direct coding), all samples back to back in one run, as
    the backend's Lava graph computes them. With the membrane read-out, ``potentials``
    (a dict) receives the output layer's v (N, T, size) after each step of its window."""
    conv = getattr(qnet, "conversion", None)
    pipelined = conv is not None and conv.window == "pipelined"
    n, t, in_size = spikes.shape
    extra = max(int(la.depth) for la in qnet.layers) if pipelined else 0
    total = n * t + extra
    data = np.zeros((in_size, total), dtype=np.int32)
    data[:, :n * t] = spikes.reshape(n * t, in_size).T      # column k*T + j
    lifs = {la.name: LifResetModel(la.size, du, dv, int(la.threshold),
                                   np.zeros(la.size) if la.bias_mant is None
                                   else np.asarray(la.bias_mant).reshape(-1),
                                   int(la.bias_exp), t, int(la.depth) + 1,
                                   _subtracts(qnet, la), _v_init(qnet, la))
            for la in qnet.layers}
    chains = []   # (source, target, [Sparse, relay, ...])
    for la in qnet.layers:
        for syn in la.synapses:
            w = lava_sparse_weights(synapse_weights(syn))
            chain = [SparseModel(w, syn.source == qnet.input or hidden_graded)]
            chain += [SparseModel(np.eye(la.size, dtype=np.int64), True)
                      for _ in range(int(syn.lag) - 1)]
            chains.append((syn.source, la.name, chain))
    out = {la.name: np.zeros((total, la.size), dtype=np.int8) for la in qnet.layers}
    trace = np.zeros((total, qnet.output.size), dtype=np.int64)
    for ts in range(1, total + 1):
        sent = [[proc.send() for proc in chain] for _, _, chain in chains]
        a_in = {la.name: np.zeros(la.size, dtype=np.int32) for la in qnet.layers}
        for (_, target, _), outs in zip(chains, sent):
            a_in[target] = a_in[target] + outs[-1]
        fired = {qnet.input: data[:, ts - 1]}
        for la in qnet.layers:
            fired[la.name] = lifs[la.name].step(ts, a_in[la.name])
            out[la.name][ts - 1] = fired[la.name]
        trace[ts - 1] = lifs[qnet.output.name].v        # what the Monitor reads
        for (source, _, chain), outs in zip(chains, sent):
            chain[0].receive(fired[source])
            for relay, upstream in zip(chain[1:], outs[:-1]):
                relay.receive(upstream)
    result = {}
    for la in qnet.layers:
        start = int(la.depth) if pipelined else 0
        cols = [k * t + start + j for k in range(n) for j in range(t)]
        s = out[la.name][cols].reshape(n, t, la.size)
        if not pipelined:
            s[:, :min(int(la.depth), t)] = 0
        result[la.name] = s
        if la.is_output and potentials is not None:
            v = trace[cols].reshape(n, t, la.size).astype(np.float64)
            if not pipelined:   # reported as the backend does: 0 before the layer's depth
                v[:, :min(int(la.depth), t)] = 0
            potentials[la.name] = v
    return result
