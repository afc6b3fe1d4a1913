"""ANN activation statistics per spiking layer, streamed over the calibration set in
batches: running maxima, sums and counts, and exact percentiles from a second pass
(:class:`snn2hw.calibrate.streaming.OrderStatistics`). Nothing is kept per activation, so memory does
not grow with the number of samples."""
from __future__ import annotations

import numpy as np
import torch

from .. import ann, distributed, precision
from ..snn import SpikingNetwork
from .streaming import (OrderStatistics, higher_percentile_rank, lerp_like_numpy,
                        linear_percentile_ranks)


def ann_statistics(net: SpikingNetwork, x: np.ndarray, *, batch_size: int = 256,
                   device: str = "cpu", percentile: float = 100.0,
                   quantiles: bool = True) -> dict[str, dict[str, float]]:
    """Per spiking layer: max, mean and 99.9th percentile of the ANN activation, the
    fraction of positive activations, and ``top``: the ``percentile`` of the positive
    activations (the max at 100), over ``x``. Streamed batch by batch: the percentiles
    are exact (equal to ``numpy.percentile`` of the float32 activations) from a second
    pass over the data (:class:`snn2hw.calibrate.streaming.OrderStatistics`), made only with
    ``quantiles``; without it ``p99.9`` is absent and ``top`` is the max."""
    names = [layer.name for layer in net.layers]
    top = {name: float("-inf") for name in names}
    sums: dict[str, dict[int, float]] = {name: {} for name in names}  # batch -> sum
    count = {name: 0 for name in names}
    positive = {name: 0 for name in names}
    order = {name: OrderStatistics() for name in names} if quantiles else {}
    for index, acts in _ann_batches(net, x, batch_size, device, names):
        for name in names:
            a = acts[name]
            top[name] = max(top[name], float(a.max()))
            sums[name][index] = distributed.fixed_order_sum(a)  # any thread count
            count[name] += a.numel()
            positive[name] += int((a > 0).sum())
            if quantiles:
                order[name].count(a.float())
    total = _combine_ranks(names, top, sums, count, positive, order, len(x), batch_size)
    stats = {}
    for name in names:
        stats[name] = {"max": top[name], "mean": total[name] / max(count[name], 1),
                       "top": top[name],
                       "active_fraction": positive[name] / max(count[name], 1)}
        if not count[name]:  # as numpy on one zero
            stats[name] |= {"active_fraction": 0.0, "p99.9": 0.0} if quantiles else {}
    if quantiles and len(x):
        _percentiles(net, x, batch_size, device, percentile, stats, order, positive)
    return stats


def _combine_ranks(names, top, sums, count, positive, order, n, batch_size):
    """Statistics of all ranks' batches (:mod:`snn2hw.distributed`), in place; returns the
    sums added in batch order, as one process adds them."""
    top.update(zip(names, distributed.all_max(top[name] for name in names)))
    counts = distributed.all_sum([count[name] for name in names]
                                 + [positive[name] for name in names])
    count.update(zip(names, counts[:len(names)]))
    positive.update(zip(names, counts[len(names):]))
    distributed.sum_tensors_([st.high for st in order.values()])
    return distributed.ordered_sums(sums, -(-n // batch_size))


def _ann_batches(net: SpikingNetwork, x: np.ndarray, batch_size: int, device: str,
                 names: list[str]):
    """(batch index, activations) of this rank's batches (all of them in one process)."""
    dtype = precision.ann_dtype(device)
    lo, hi = distributed.owned(len(x), batch_size)
    with torch.no_grad():
        for start in range(lo, hi, batch_size):
            xb = torch.as_tensor(x[start:start + batch_size], dtype=dtype, device=device)
            yield start // batch_size, ann.forward(net.graph, xb, keep=set(names))


def _percentiles(net, x, batch_size, device, percentile, stats, order, positive) -> None:
    """Second pass: the exact 99.9th percentile of all activations (numpy's linear rule)
    and the ``percentile`` of the positive ones (numpy's "higher" rule): the positive
    values are the top ``positive`` of the sorted activations."""
    ranks = {}
    for name, st in order.items():
        n = st.total
        lo, hi, gamma = linear_percentile_ranks(n, 99.9)
        wanted = [lo, hi]
        if percentile < 100 and positive[name]:
            wanted.append(n - positive[name]
                          + higher_percentile_rank(positive[name], percentile))
        st.want(wanted)
        ranks[name] = (wanted, gamma)
    for _, acts in _ann_batches(net, x, batch_size, device, list(order)):
        for name, st in order.items():
            st.refine(acts[name].float())
    distributed.sum_tensors_([c for st in order.values() for c in st.low.values()])
    for name, st in order.items():
        wanted, gamma = ranks[name]
        stats[name]["p99.9"] = lerp_like_numpy(st.value(wanted[0]), st.value(wanted[1]),
                                               gamma)
        if len(wanted) > 2:
            stats[name]["top"] = st.value(wanted[2])
