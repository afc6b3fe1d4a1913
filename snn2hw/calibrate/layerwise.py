"""The layer-by-layer SNN run that Spike-Norm and bias calibration share: each layer's input
current is computed from the stored spikes of its sources (the input's Poisson spikes and
the layers already converted), its IF neurons are run, and its spikes are stored for the
layers that read them (:class:`snn2hw.calibrate.spikestore.SpikeStore`, bit-packed). The
cost is linear in depth; memory is the spikes still to be read plus blocks of at most
``spikestore.BLOCK_BYTES`` per float tensor.

Currents are (steps, batch, *layer shape): the channel axis is 2.

The conversion's options (:class:`snn2hw.snn.options.Conversion`) shape the run: the input
coding, the neurons' initial potential and the time window (``fill``: every layer counts
steps from 0 and is idle until its depth; ``pipelined``: each layer integrates T steps from
its own depth, and its train is stored from there). Under ``torch.distributed`` each rank
runs its own shards of the samples (:mod:`snn2hw.distributed`) and the maxima, histogram
counts and spike counts are combined across ranks, bit-identical to one process.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .. import distributed, precision
from ..snn import SpikingLayer, SpikingNetwork
from ..snn.encoders import make_encoder
from ..snn.neurons import float_neuron
from ..snn.options import Conversion
from ..snn.simulate import idle_steps, layer_current
from .currentcache import CurrentCache
from .spikestore import SpikeStore, block_bytes, block_steps, layer_batch
from .streaming import ChannelHistogram, CurrentHistogram

CHANNEL_AXIS = 2


def other_axes(current: torch.Tensor) -> list[int]:
    return [d for d in range(current.dim()) if d != CHANNEL_AXIS]


class LayerwiseRun:
    """The stored spike trains of one calibration run over ``x`` (N samples, T steps; this
    rank's samples under ``torch.distributed``)."""

    def __init__(self, net: SpikingNetwork, x: np.ndarray, input_scale: float,
                 timesteps: int, seed: int, batch_size: int, device: str,
                 conversion: Conversion | None = None, cache_bytes: int | None = None) -> None:
        self.cache = CurrentCache(cache_bytes)  # currents kept from the maximum to the spikes
        self.conversion = conversion = conversion or Conversion()
        self.net, self.n, self.timesteps = net, len(x), timesteps
        self.batch_size, self.dev = batch_size, torch.device(device)
        lo, hi = distributed.owned(self.n, batch_size)  # all of them in one process
        self.local = hi - lo
        self.store = SpikeStore()
        self.store.put_input(net.input, make_encoder(conversion.coding, x[lo:hi],
                                                     input_scale=input_scale, seed=seed,
                                                     indices=np.arange(lo, hi)),
                             timesteps, batch_size)
        self.sizes = {net.input: int(np.prod(net.input_shape))} | {
            la.name: la.size for la in net.layers}
        self.last_use = net.last_use()

    def blocks(self, layer: SpikingLayer) -> list[tuple[int, int, int, int]]:
        """(first sample, end sample, first step, end step) of the blocks of a layer's run."""
        neurons = max([layer.size] + [self.sizes[s] for s in layer.sources])
        batch = layer_batch(self.batch_size, self.timesteps, neurons)
        steps = block_steps(self.timesteps, batch, neurons, block_bytes(self.dev))
        return [(start, stop, t0, min(self.timesteps, t0 + steps)) for start, stop
                in distributed.shard_batches(self.local, self.batch_size, batch)
                for t0 in range(0, self.timesteps, steps)]

    def first_step(self, layer: SpikingLayer) -> int:
        """The first step rates count: after the idle steps (``fill`` window); 0 for the
        ``pipelined`` window, whose trains are stored from each layer's window start."""
        if self.conversion.window == "pipelined":
            return 0
        return min(layer.depth, self.timesteps - 1)

    def current(self, prepared, block) -> torch.Tensor:
        """Input current (t1 - t0, batch, *shape) of samples [start, stop) at [t0, t1).
        ``pipelined``: every train is stored from its layer's window start, and a synapse's
        lag is exactly the depth between its ends (lowering aligns every term), so window
        step j reads window step j of each source and no step is idle."""
        start, stop, t0, t1 = block
        dtype = precision.snn_dtype()
        if self.conversion.window == "pipelined":
            inputs = [self.store.window(s.source, start, stop, t0, t1, self.dev, dtype)
                      for s in prepared.synapses]
            return layer_current(prepared, inputs)
        inputs = [self.store.window(s.source, start, stop, t0 - s.lag, t1 - s.lag, self.dev,
                                    dtype) for s in prepared.synapses]
        current = layer_current(prepared, inputs)
        current[:idle_steps(prepared.depth, t0, t1 - t0)] = 0  # idle: nothing arrives yet
        return current

    def largest_current(self, prepared, layer: SpikingLayer, percentile: float,
                        per_channel: bool = False) -> float | np.ndarray:
        """The layer's largest input current over the run, or the ``percentile`` of its
        positive currents where that is lower; per channel with ``per_channel``."""
        blocks = self.blocks(layer)
        self.cache.start(prepared)
        if per_channel:
            return self._largest_per_channel(prepared, layer, blocks, percentile)
        top = float("-inf")
        hist = CurrentHistogram() if percentile < 100 else None
        for block in blocks:
            current = self._computed(prepared, block)
            top = max(top, float(current.max()))
            if hist is not None:
                hist.add(current)
        top = distributed.all_max([top])[0]  # the ranks' blocks together
        if hist is not None:
            distributed.sum_tensors_([hist.counts])  # float64 integer counts: exact
        if hist is not None and top > 0:
            top = min(top, hist.quantile(percentile / 100))
        return top

    def _largest_per_channel(self, prepared, layer, blocks, percentile) -> np.ndarray:
        top = torch.full((int(layer.shape[0]),), float("-inf"), dtype=torch.float64)
        hist = ChannelHistogram(int(layer.shape[0]), CHANNEL_AXIS) if percentile < 100 else None
        for block in blocks:
            current = self._computed(prepared, block)
            top = torch.maximum(top, current.amax(dim=other_axes(current)).double().cpu())
            if hist is not None:
                hist.add(current)
        top = np.array(distributed.all_max(top.tolist()), dtype=np.float64)
        if hist is not None:
            distributed.sum_tensors_([hist.counts])
        if hist is not None:
            top = np.where(top > 0, np.minimum(top, hist.quantiles(percentile / 100)), top)
        return top

    def _computed(self, prepared, block) -> torch.Tensor:
        """The current of ``block``, kept for :meth:`spike` where the cache has room."""
        current = self.current(prepared, block)
        self.cache.keep(prepared, block, current)
        return current

    def spike(self, layer: SpikingLayer, prepared, top: float, reset: str,
              progress: Callable[[float], None] | None = None,
              keep: bool = True) -> np.ndarray:
        """Run the layer's IF neurons (threshold ``top`` on ``prepared``'s currents), store
        its spikes if ``keep``; returns how many each channel fired from its first step.
        The currents that :meth:`largest_current` kept for ``prepared`` are not computed
        again (:mod:`snn2hw.calibrate.currentcache`)."""
        if keep:
            self.store.new_binary(layer.name, self.timesteps, self.local, layer.shape)
        neuron = float_neuron(1.0, reset, self.conversion.layer_v_init(layer.is_output))
        first = self.first_step(layer)
        fired = torch.zeros(int(layer.shape[0]), dtype=torch.float64)
        v = None
        for block in self.blocks(layer):
            start, stop, t0, t1 = block
            current = self.cache.take(prepared, block)
            if current is None:
                current = self.current(prepared, block)
            current.div_(top)
            if t0 == 0:
                v = neuron.initial((stop - start, *layer.shape), self.dev, current.dtype)
            out = torch.empty_like(current)
            neuron.integrate(current, v, out)
            if keep:
                self.store.write(layer.name, start, t0, out)
            counted = out[max(first - t0, 0):]
            fired += counted.sum(dim=other_axes(counted), dtype=torch.float64).cpu()
            if progress:
                progress((stop - start) * (t1 - t0))
        self.cache.clear()
        # float64 integers: exact in any order
        return np.array(distributed.all_sum(fired.tolist()), dtype=np.float64)

    def rate_denominator(self, layer: SpikingLayer) -> int:
        """Neuron-steps a channel's spike count is divided by to give its rate."""
        per_channel = layer.size // int(layer.shape[0])
        return max((self.timesteps - self.first_step(layer)) * self.n * per_channel, 1)

    def release(self, index: int, keep: str) -> None:
        """Free the spike trains no layer after ``index`` reads (``keep`` stays)."""
        for src in self.store.names():
            if self.last_use.get(src, -1) <= index and src != keep:
                self.store.drop(src)
