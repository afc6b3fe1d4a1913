"""Accuracy and activity at several T from ONE causal run of the float SNN at the largest T
(the sweep's measurements): per T, the accuracy, the synaptic operations, spikes and neuron
updates per inference.

Counting conventions (as :mod:`snn2hw.analysis.sparsity`, per window of T steps):
- a synaptic operation (SOP) is one spike delivered through one synapse; a spike of source
  neuron i sent at step t through a term of lag l is delivered if t + l < T (``fill``
  window; ``pipelined``: if it is sent in the source's first T window steps), and costs
  fan-out(i) operations (:func:`snn2hw.analysis.fanout.fan_out`); input spikes count once
  whatever their sign, a direct (analog) input value once per step where it is not zero;
- spikes are those of the spiking layers (hidden and output) at steps t < T;
- neuron updates are the spiking layers' neurons times T (every neuron is updated at
  every step, idle or not).
Input spikes are those of :func:`snn2hw.steps.evaluate.evaluate` (same seed and stream, per
sample), so the accuracy at T is the one a separate evaluation at T gives.

Under ``torch.distributed`` each rank runs its own whole chunks of samples (the chunks one
process runs, so every batch is the same) and the counts are summed across ranks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import distributed, snn
from ..analysis.fanout import fan_out
from ..snn import simulate
from ..snn.encoders import make_encoder
from ..snn.options import Conversion
from .progress import ProgressFactory, silent
from .settings import EVALUATION_STREAM


@dataclass
class Activity:
    """Per T (keys: the requested T), totals over all samples; divide by ``samples``."""
    samples: int
    correct: dict[int, int]
    sops: dict[int, float]
    spikes: dict[int, int]
    neuron_steps: dict[int, int]

    def per_inference(self, t: int) -> dict[str, float]:
        n = self.samples
        return {"accuracy": self.correct[t] / n, "sops": self.sops[t] / n,
                "spikes": self.spikes[t] / n, "neuron_updates": self.neuron_steps[t] / n}


def _record_samples(sizes: list[int], timesteps: int, budget_bytes: float) -> int:
    return max(1, int(budget_bytes // max(1, timesteps * sum(sizes))))


def measure(net: snn.SpikingNetwork, scales: dict[str, float], x: np.ndarray, y: np.ndarray,
            timesteps: list[int], seed: int, *, device: str = "cpu",
            source_scales: dict[str, float] | None = None, reset: str = "zero",
            conversion: Conversion | None = None, record_budget: float = 64e6,
            progress: ProgressFactory = silent, label: str = "simulate") -> Activity:
    """Run the float SNN once for max(``timesteps``) steps and count at every T."""
    conversion = conversion or Conversion()
    prep = simulate.prepare_float(net, scales, device, source_scales=source_scales,
                                  reset=reset, conversion=conversion)
    shapes = {net.input: tuple(net.input_shape)} | {la.name: tuple(la.shape)
                                                    for la in net.layers}
    terms = [(t.source, 1 + t.delay, fan_out(t, shapes[t.source])[0])
             for la in net.layers for t in la.terms]
    names = list(shapes)
    ts, top = sorted(set(timesteps)), max(timesteps)
    neurons = sum(la.size for la in net.layers)
    act = Activity(len(x), {t: 0 for t in ts}, {t: 0.0 for t in ts}, {t: 0 for t in ts},
                   {t: neurons * t * len(x) for t in ts})
    chunk = _record_samples([int(np.prod(s)) for s in shapes.values()], top, record_budget)
    lo, hi = distributed.owned(len(x), chunk)  # this rank's chunks (all in one process)
    with progress(len(x) * top, label) as bar:
        for start in range(lo, hi, chunk):
            stop = min(hi, start + chunk)
            enc = make_encoder(conversion.coding, x[start:stop],
                               input_scale=scales[net.input], seed=seed,
                               stream=EVALUATION_STREAM, indices=np.arange(start, stop))
            res = simulate.simulate(prep, enc, top, checkpoints=ts, record=names,
                                    progress=bar)
            _count(act, res, terms, [la.name for la in net.layers], ts, y[start:stop],
                   conversion.window == "pipelined")
    _sum_over_ranks(act, ts)
    return act


def _sum_over_ranks(act: Activity, ts: list[int]) -> None:
    """The counts of all ranks (:mod:`snn2hw.distributed`), in place: correct predictions,
    spikes and synaptic operations are integers (SOPs: float64 sums of integer fan-outs,
    exact below 2^53), so their sum does not depend on the order."""
    total = distributed.all_sum([act.correct[t] for t in ts] + [act.spikes[t] for t in ts]
                                + [act.sops[t] for t in ts])
    k = len(ts)
    act.correct = dict(zip(ts, total[:k]))
    act.spikes = dict(zip(ts, total[k:2 * k]))
    act.sops = dict(zip(ts, total[2 * k:]))


def _count(act: Activity, res: simulate.SimResult, terms, layers: list[str], ts: list[int],
           y: np.ndarray, pipelined: bool) -> None:
    """Records are indexed by each layer's window step; with the ``pipelined`` window a
    spike at window step s reaches the next layer at its window step s (lags equal the
    depth differences), so it is delivered within T if s < T."""
    for t in ts:
        pred, _ = res.predictions(t)
        act.correct[t] += int((pred == y).sum())
        act.spikes[t] += sum(int(res.records[name][:, :t].sum(dtype=np.int64))
                             for name in layers)
        for source, lag, fan in terms:
            cut = t if pipelined else max(t - lag, 0)
            sent = np.count_nonzero(res.records[source][:, :cut], axis=(0, 1))
            act.sops[t] += float(np.dot(sent, fan))
