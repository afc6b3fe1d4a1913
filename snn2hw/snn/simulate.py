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
from . import fastops
from .encoders import Encoder
from .network import SpikingNetwork
from .neurons import Neuron, float_neuron
from .options import Conversion
from .results import LayerStats, SimResult, decode  # noqa: F401  (their historical home)
from .results import readout_step
from .timechunks import CPU_CHUNK_BYTES, Buffers, auto_time_chunk, chunks  # noqa: F401

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
    current_unit: float = 1.0   # the synapses give the current times this (a power of two)


@dataclass
class Prepared:
    input: str
    input_shape: tuple[int, ...]
    layers: list[PreparedLayer]
    device: torch.device
    dtype: torch.dtype
    window: str = "fill"        # Conversion.window: what T means (see run_steps)
    readout: str = "spikes"     # Conversion.readout: spike counts or the output's v

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

    def offset(self, layer: PreparedLayer) -> int:
        """The step at which ``layer``'s window of T steps starts: 0 for the ``fill``
        window (T counts from the first input step; the layer is idle before its depth),
        its depth for the ``pipelined`` window (every layer integrates T steps)."""
        return layer.depth if self.window == "pipelined" else 0

    def run_steps(self, timesteps: int) -> int:
        """Steps simulated for a window of ``timesteps``: T (``fill``), or T + the deepest
        layer's depth (``pipelined``: the input's last step reaches it that much later;
        the latency of one sample)."""
        return timesteps + max(self.offset(la) for la in self.layers)


def float_synapse(ops: list[ir.Node], gain: float, device, dtype, spikes: bool = False
                  ) -> SynapseFn:
    """The linear chain without bias, times ``gain``; parameters cached on the device.
    The gain is folded into the last weighted op, so it costs nothing per step. With
    ``spikes`` (the source is a spiking layer: its values are 0 or 1) a leading average
    pooling is :func:`fastops.pool_spikes`, which gives the same numbers faster."""
    cached = [copy.copy(op) for op in ops]
    weighted = [op for op in cached if hasattr(op, "weight")]
    for op in weighted:
        scale = gain if op is weighted[-1] else 1.0
        op.weight = torch.as_tensor(op.weight * scale, dtype=dtype, device=device)
    leftover = 1.0 if weighted else gain
    first = fastops.pool_spikes if spikes and cached and fastops.exact_pool(cached[0]) \
        else None

    def apply(x: torch.Tensor) -> torch.Tensor:
        for i, op in enumerate(cached):
            x = first(op, x) if i == 0 and first else ann.apply_linear(op, x, with_bias=False)
        return x if leftover == 1.0 else x * leftover

    return apply


def prepare_float_layer(layer, scales: dict[str, float], device: torch.device,
                        dtype: torch.dtype, source_scales: dict[str, float] | None = None,
                        reset: str = "zero", conversion: Conversion | None = None,
                        spiking: frozenset[str] = frozenset()) -> PreparedLayer:
    """One float layer, threshold normalised to 1: gains source_scale(source)/scale(layer)
    (``source_scales`` defaults to ``scales``; see :mod:`snn2hw.snn`). With the membrane
    read-out the output layer never fires (threshold +inf): its v accumulates. ``spiking``
    names the sources whose trains hold only 0 and 1 (the network's spiking layers)."""
    conversion = conversion or Conversion()
    source_scales = scales if source_scales is None else source_scales
    scale = scales[layer.name]
    syn = [Synapse(t.source, 1 + t.delay,
                   float_synapse(t.ops, source_scales[t.source] / scale, device, dtype,
                                 spikes=t.source in spiking))
           for t in layer.terms]
    bias = None if layer.bias is None else torch.as_tensor(layer.bias / scale, dtype=dtype,
                                                          device=device)
    membrane = layer.is_output and conversion.readout == "membrane"
    neuron = (float_neuron(float("inf"), "zero") if membrane
              else float_neuron(1.0, reset, conversion.layer_v_init(layer.is_output)))
    return PreparedLayer(layer.name, layer.shape, syn, bias, neuron, layer.is_output,
                         layer.depth)


def idle_steps(depth: int, t0: int, steps: int) -> int:
    """How many steps of the chunk starting at ``t0`` lie before step ``depth``: a layer
    ``depth`` hops from the input is idle until the first input spike can reach it."""
    return min(max(depth - t0, 0), steps)


def prepare_float(net: SpikingNetwork, scales: dict[str, float], device: str = "cpu",
                  dtype: torch.dtype = torch.float32,
                  source_scales: dict[str, float] | None = None,
                  reset: str = "zero", conversion: Conversion | None = None) -> Prepared:
    """Float SNN with thresholds normalised to 1 (see :mod:`snn2hw.snn`), with the
    ``conversion``'s initial potential, read-out and window (default: the paper's)."""
    conversion = conversion or Conversion()
    dev = torch.device(device)
    spiking = frozenset(layer.name for layer in net.layers)
    layers = [prepare_float_layer(layer, scales, dev, dtype, source_scales, reset, conversion,
                                  spiking) for layer in net.layers]
    return Prepared(net.input, net.input_shape, layers, dev, dtype, conversion.window,
                    conversion.readout)


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
        if total is None and _shares_memory(out, x):
            out = out.clone()   # an identity synapse returns its input: never add into it
        total = out if total is None else total.add_(out)
    if layer.bias is not None:
        total.add_(layer.bias)
    return total


def _shares_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def simulate(prep: Prepared, encoder: Encoder, timesteps: int,
             checkpoints: Iterable[int] = (), batch_size: int = 64,
             time_chunk: int | None = None, record: Iterable[str] = (),
             memory_budget: float = 256e6, progress: Callable[[int], None] | None = None
             ) -> SimResult:
    """Run the SNN on every sample of ``encoder`` for a window of ``timesteps`` steps
    (``prep.window``: see :meth:`Prepared.offset`). Records, counts and potentials are
    indexed by the step of each layer's window; ``progress`` gets simulated steps."""
    checkpoints = sorted(set(checkpoints) | {timesteps})
    if checkpoints[0] <= 0 or checkpoints[-1] > timesteps:
        raise ValueError(f"checkpoints must lie in 1..{timesteps}")
    n = len(encoder)
    classes = int(np.prod(prep.output.shape))
    potentials = {cp: np.zeros((n, classes)) for cp in checkpoints} \
        if prep.readout == "membrane" else {}
    res = SimResult({cp: np.zeros((n, classes), dtype=np.int64) for cp in checkpoints},
                    {layer.name: LayerStats() for layer in prep.layers},
                    {name: np.zeros((n, timesteps, int(np.prod(prep.shape_of(name)))),
                                    dtype=_record_dtype(prep, name, encoder))
                     for name in set(record)},
                    potentials, prep.readout, readout_step(prep.output.neuron))
    steps = prep.run_steps(timesteps)
    with torch.no_grad():
        for start, stop in chunks(n, batch_size):
            tc = time_chunk or auto_time_chunk(prep, stop - start, steps, memory_budget)
            _run_batch(prep, encoder, res, (start, stop), timesteps, tc, progress)
    return res


def _record_dtype(prep: Prepared, name: str, encoder: Encoder) -> type:
    """int8 spikes, but an analog input (a ``constant`` encoder) is recorded as float32."""
    analog = name == prep.input and getattr(encoder, "constant", False)
    return np.float32 if analog else np.int8


def _input_chunk(encoder: Encoder, start: int, stop: int, t0: int, t1: int,
                 timesteps: int) -> np.ndarray:
    """(steps, B, ...) input of steps [t0, t1); zero after the window's ``timesteps``."""
    b = stop - start
    if t1 <= timesteps:
        return np.moveaxis(encoder.chunk(start, stop, t0, t1), 1, 0)
    out = np.zeros((t1 - t0, b, *encoder.shape), dtype=np.float32)
    if t0 < timesteps:
        out[:timesteps - t0] = np.moveaxis(encoder.chunk(start, stop, t0, timesteps), 1, 0)
    return out


def _record(res: SimResult, name: str, rows: slice, t0: int, offset: int,
            values: torch.Tensor | np.ndarray, timesteps: int) -> None:
    """Store steps [t0, t0 + len) of a train (steps, B, ...) at its window's indices."""
    lo, hi = max(t0 - offset, 0), min(t0 - offset + values.shape[0], timesteps)
    if lo < hi:
        part = values[lo + offset - t0:hi + offset - t0]
        if isinstance(part, torch.Tensor):
            part = part.to(torch.int8).cpu().numpy()
        else:
            part = part.astype(res.records[name].dtype, copy=False)
        res.records[name][rows, lo:hi] = np.moveaxis(part, 0, 1).reshape(
            part.shape[1], hi - lo, -1)


def _run_batch(prep: Prepared, encoder: Encoder, res: SimResult, rows: tuple[int, int],
               timesteps: int, tc: int, progress: Callable[[int], None] | None) -> None:
    """Samples [start, stop) for the window of ``timesteps`` steps, ``tc`` simulated steps
    at a time, into ``res``."""
    start, stop = rows
    b, out_layer, sel = stop - start, prep.output, slice(*rows)
    classes = int(np.prod(out_layer.shape))
    out_offset = prep.offset(out_layer)
    encoder.reset()
    bufs = Buffers(prep, b, tc)
    v = {layer.name: layer.neuron.initial((b, *layer.shape), prep.device, prep.dtype)
         for layer in prep.layers}
    running = torch.zeros((b, classes), dtype=torch.int64, device=prep.device)
    for t0, t1 in chunks(prep.run_steps(timesteps), tc):
        steps = t1 - t0
        spikes = _input_chunk(encoder, start, stop, t0, t1, timesteps)
        bufs.window(prep.input, steps).copy_(torch.from_numpy(spikes))
        if prep.input in res.records:
            _record(res, prep.input, sel, t0, 0, spikes, timesteps)
        trace = None
        for layer in prep.layers:
            inputs = [bufs.window(s.source, steps, s.lag) for s in layer.synapses]
            current = layer_current(layer, inputs)
            idle = idle_steps(layer.depth, t0, steps)
            out = bufs.window(layer.name, steps)
            if layer is out_layer and res.potentials:
                trace = torch.zeros(current.shape, dtype=torch.float64,
                                    device=current.device)
            stats = res.stats[layer.name]
            if idle < steps:   # before integrating: the neuron may reuse the current's memory
                top = float(current[idle:].max()) / layer.current_unit   # exact
                stats.max_current = max(stats.max_current, top)
            v[layer.name] = layer.neuron.integrate(current, v[layer.name], out, idle,
                                                   trace if layer is out_layer else None)
            _spike_stats(stats, out, _window_part(prep, layer, t0, steps, timesteps))
            if layer.name in res.records:
                _record(res, layer.name, sel, t0, prep.offset(layer), out, timesteps)
        cum = torch.cumsum(bufs.window(out_layer.name, steps).reshape(steps, b, classes),
                           dim=0).to(torch.int64)
        for cp, counts in res.counts.items():
            end = out_offset + cp           # the checkpoint's last step is end - 1
            if t0 < end <= t1:
                counts[sel] = (running + cum[end - t0 - 1]).cpu().numpy()
                if trace is not None:
                    res.potentials[cp][sel] = trace[end - t0 - 1].reshape(b, classes).cpu()
        running = running + cum[-1]
        bufs.advance(steps)
        if progress:
            progress(b * steps)


def _window_part(prep: Prepared, layer: PreparedLayer, t0: int, steps: int,
                 timesteps: int) -> slice:
    """The steps of this chunk that the layer's statistics count: all of them for the
    ``fill`` window (as always), those inside the layer's window for ``pipelined``."""
    if prep.window != "pipelined":
        return slice(0, steps)
    lo = min(max(layer.depth - t0, 0), steps)
    return slice(lo, min(max(layer.depth + timesteps - t0, lo), steps))


def _spike_stats(st: LayerStats, out: torch.Tensor, part: slice) -> None:
    counted = out[part]
    st.spikes += float(counted.sum())
    st.neuron_steps += counted.numel()
