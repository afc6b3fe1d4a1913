"""Reference simulator (torch, CPU or GPU), batched and layer-wise over time.

Within a time chunk, every layer is computed for all steps of the chunk at once: its input
spikes for the whole chunk are known once the layer before it is done (the network is
feed-forward), so each synapse is one large batched conv/matmul over (steps x batch)
instead of one small product per step. Only the IF integration itself loops over steps.

Tensors are time-major, ``(T, B, *shape)``: a window of steps is a contiguous block, so
``(T*B, ...)`` is a free view for the synapse and each IF step touches contiguous memory.
Every spike train lives in a buffer that keeps the last ``max_lag`` steps of the previous
chunk in front of the current chunk; a synapse with lag k reads the view shifted by k.
Memory is bounded by chunking the batch and the time window.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import ann, ir
from .encoders import Encoder
from .network import SpikingNetwork
from .neurons import Neuron, float_neuron

SynapseFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Synapse:
    source: str
    lag: int            # steps between a source spike and its arrival (1 + delay)
    apply: SynapseFn    # (M, *source_shape) -> (M, *layer_shape)


@dataclass
class PreparedLayer:
    name: str
    shape: tuple[int, ...]
    synapses: list[Synapse]
    bias: torch.Tensor | None   # current added every step, shape = layer shape
    neuron: Neuron
    is_output: bool = False
    depth: int = 1              # synapse hops from the input; idle for steps t < depth


@dataclass
class Prepared:
    input: str
    input_shape: tuple[int, ...]
    layers: list[PreparedLayer]
    device: torch.device
    dtype: torch.dtype

    @property
    def output(self) -> PreparedLayer:
        return next(layer for layer in self.layers if layer.is_output)

    def shape_of(self, name: str) -> tuple[int, ...]:
        if name == self.input:
            return self.input_shape
        for layer in self.layers:
            if layer.name == name:
                return layer.shape
        raise ValueError(f"no spike train named {name!r}; known: "
                         f"{', '.join([self.input] + [la.name for la in self.layers])}")

    @property
    def max_lag(self) -> int:
        return max(s.lag for layer in self.layers for s in layer.synapses)


def float_synapse(ops: list[ir.Node], gain: float, device, dtype) -> SynapseFn:
    """The linear chain without bias, times ``gain``; parameters cached on the device.
    The gain is folded into the last weighted op, so it costs nothing per step."""
    cached = [copy.copy(op) for op in ops]
    weighted = [op for op in cached if hasattr(op, "weight")]
    for op in weighted:
        scale = gain if op is weighted[-1] else 1.0
        op.weight = torch.as_tensor(op.weight * scale, dtype=dtype, device=device)
    leftover = 1.0 if weighted else gain

    def apply(x: torch.Tensor) -> torch.Tensor:
        for op in cached:
            x = ann.apply_linear(op, x, with_bias=False)
        return x if leftover == 1.0 else x * leftover

    return apply


def prepare_float_layer(layer, scales: dict[str, float], device: torch.device,
                        dtype: torch.dtype, source_scales: dict[str, float] | None = None,
                        reset: str = "zero") -> PreparedLayer:
    """One float layer, threshold normalised to 1: gains source_scale(source)/scale(layer)
    (``source_scales`` defaults to ``scales``; see :mod:`snn2hw.snn`)."""
    source_scales = scales if source_scales is None else source_scales
    scale = scales[layer.name]
    syn = [Synapse(t.source, 1 + t.delay,
                   float_synapse(t.ops, source_scales[t.source] / scale, device, dtype))
           for t in layer.terms]
    bias = None if layer.bias is None else torch.as_tensor(layer.bias / scale, dtype=dtype,
                                                          device=device)
    return PreparedLayer(layer.name, layer.shape, syn, bias, float_neuron(1.0, reset),
                         layer.is_output, layer.depth)


def idle_steps(depth: int, t0: int, steps: int) -> int:
    """How many steps of the chunk starting at ``t0`` lie before step ``depth``: a layer
    ``depth`` hops from the input is idle until the first input spike can reach it."""
    return min(max(depth - t0, 0), steps)


def prepare_float(net: SpikingNetwork, scales: dict[str, float], device: str = "cpu",
                  dtype: torch.dtype = torch.float32,
                  source_scales: dict[str, float] | None = None,
                  reset: str = "zero") -> Prepared:
    """Float SNN with thresholds normalised to 1 (see :mod:`snn2hw.snn`)."""
    dev = torch.device(device)
    layers = [prepare_float_layer(layer, scales, dev, dtype, source_scales, reset)
              for layer in net.layers]
    return Prepared(net.input, net.input_shape, layers, dev, dtype)


def delayed(window: torch.Tensor, lag: int) -> torch.Tensor:
    """Spikes at t - lag for every t of a whole window (T, B, ...) that starts at step 0."""
    pad = torch.zeros((lag, *window.shape[1:]), dtype=window.dtype, device=window.device)
    return torch.cat([pad, window[:window.shape[0] - lag]], dim=0)


def layer_current(layer: PreparedLayer, inputs: list[torch.Tensor]) -> torch.Tensor:
    """Input current (T, B, *shape) from each synapse's lagged source spikes (T, B, ...)."""
    total = None
    for syn, x in zip(layer.synapses, inputs):
        t, b = x.shape[:2]
        out = syn.apply(x.reshape(t * b, *x.shape[2:])).reshape(t, b, *layer.shape)
        total = out if total is None else total.add_(out)
    if layer.bias is not None:
        total = total + layer.bias
    return total


@dataclass
class LayerStats:
    spikes: float = 0.0
    max_current: float = float("-inf")
    neuron_steps: float = 0.0

    @property
    def rate(self) -> float:
        """Spikes per neuron per time step."""
        return self.spikes / self.neuron_steps if self.neuron_steps else 0.0


@dataclass
class SimResult:
    counts: dict[int, np.ndarray]             # checkpoint T -> (N, classes) output spikes
    stats: dict[str, LayerStats]
    records: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N, T, size) int8

    def predictions(self, timesteps: int) -> tuple[np.ndarray, int]:
        return decode(self.counts[timesteps])


def decode(counts: np.ndarray) -> tuple[np.ndarray, int]:
    """Class = argmax of output spike counts; ties go to the lowest class index.
    Returns the predictions and how many samples had a tie for the maximum."""
    pred = counts.argmax(axis=1)
    ties = int(((counts == counts.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())
    return pred, ties


def _chunks(total: int, size: int) -> Iterable[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(total, start + size)


CPU_CHUNK_BYTES = 4e6  # widest layer's current per chunk on a CPU: stays cache-friendly


def auto_time_chunk(prep: Prepared, batch: int, timesteps: int, budget_bytes: float) -> int:
    """Steps per chunk. On a GPU: as many as the memory budget allows (fewer, larger
    kernels). On a CPU: enough that (steps x batch) images make one efficient product, but
    the widest layer's chunk stays near ``CPU_CHUNK_BYTES``; larger chunks spill out of
    the caches and the IF loop becomes memory-bound (measured: benchmarks/simulate.py)."""
    sizes = [int(np.prod(prep.input_shape))] + [int(np.prod(la.shape)) for la in prep.layers]
    item = torch.tensor([], dtype=prep.dtype).element_size()
    per_step = batch * (sum(sizes) + 2 * max(sizes)) * item
    steps = budget_bytes // max(per_step, 1)
    if prep.device.type == "cpu":
        steps = min(steps, CPU_CHUNK_BYTES // max(batch * max(sizes) * item, 1))
    return int(max(1, min(timesteps, steps)))


class _Buffers:
    """Per spike train, ``lag + chunk`` steps: history in front, the current chunk after."""

    def __init__(self, prep: Prepared, batch: int, chunk: int) -> None:
        self.lag = prep.max_lag
        self.buf = {name: torch.zeros((self.lag + chunk, batch, *prep.shape_of(name)),
                                      dtype=prep.dtype, device=prep.device)
                    for name in [prep.input] + [la.name for la in prep.layers]}

    def window(self, name: str, steps: int, lag: int = 0) -> torch.Tensor:
        return self.buf[name][self.lag - lag:self.lag - lag + steps]

    def advance(self, steps: int) -> None:
        for b in self.buf.values():
            b[:self.lag] = b[steps:steps + self.lag].clone()


def simulate(prep: Prepared, encoder: Encoder, timesteps: int,
             checkpoints: Iterable[int] = (), batch_size: int = 64,
             time_chunk: int | None = None, record: Iterable[str] = (),
             memory_budget: float = 256e6, progress: Callable[[int], None] | None = None
             ) -> SimResult:
    """Run the SNN on every sample of ``encoder`` for ``timesteps`` steps."""
    checkpoints = sorted(set(checkpoints) | {timesteps})
    if checkpoints[0] <= 0 or checkpoints[-1] > timesteps:
        raise ValueError(f"checkpoints must lie in 1..{timesteps}")
    n = len(encoder)
    classes = int(np.prod(prep.output.shape))
    res = SimResult({cp: np.zeros((n, classes), dtype=np.int64) for cp in checkpoints},
                    {layer.name: LayerStats() for layer in prep.layers},
                    {name: np.zeros((n, timesteps, int(np.prod(prep.shape_of(name)))),
                                    dtype=np.int8) for name in set(record)})
    with torch.no_grad():
        for start, stop in _chunks(n, batch_size):
            tc = time_chunk or auto_time_chunk(prep, stop - start, timesteps, memory_budget)
            _run_batch(prep, encoder, res, start, stop, timesteps, tc, progress)
    return res


def _run_batch(prep: Prepared, encoder: Encoder, res: SimResult, start: int, stop: int,
               timesteps: int, tc: int, progress: Callable[[int], None] | None) -> None:
    """Samples [start, stop) for ``timesteps`` steps, ``tc`` steps at a time, into ``res``."""
    b, out_layer = stop - start, prep.output
    classes = int(np.prod(out_layer.shape))
    encoder.reset()
    bufs = _Buffers(prep, b, tc)
    v = {layer.name: layer.neuron.initial((b, *layer.shape), prep.device, prep.dtype)
         for layer in prep.layers}
    running = torch.zeros((b, classes), dtype=torch.int64, device=prep.device)
    for t0, t1 in _chunks(timesteps, tc):
        steps = t1 - t0
        spikes = np.moveaxis(encoder.chunk(start, stop, t0, t1), 1, 0)
        bufs.window(prep.input, steps).copy_(torch.from_numpy(spikes))
        if prep.input in res.records:
            res.records[prep.input][start:stop, t0:t1] = np.moveaxis(spikes, 0, 1).reshape(
                b, steps, -1)
        for layer in prep.layers:
            inputs = [bufs.window(s.source, steps, s.lag) for s in layer.synapses]
            current = layer_current(layer, inputs)
            idle = idle_steps(layer.depth, t0, steps)
            st = res.stats[layer.name]
            if idle < steps:
                st.max_current = max(st.max_current, float(current[idle:].max()))
            out = bufs.window(layer.name, steps)
            v[layer.name] = layer.neuron.integrate(current, v[layer.name], out, idle)
            st.spikes += float(out.sum())
            st.neuron_steps += out.numel()
            if layer.name in res.records:
                res.records[layer.name][start:stop, t0:t1] = (
                    out.reshape(steps, b, -1).movedim(0, 1).to(torch.int8).cpu().numpy())
        cum = torch.cumsum(bufs.window(out_layer.name, steps).reshape(steps, b, classes),
                           dim=0).to(torch.int64)
        for cp, counts in res.counts.items():
            if t0 < cp <= t1:
                counts[start:stop] = (running + cum[cp - t0 - 1]).cpu().numpy()
        running = running + cum[-1]
        bufs.advance(steps)
        if progress:
            progress(b * steps)
