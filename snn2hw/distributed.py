"""Calibration and evaluation across processes and machines with ``torch.distributed``.

``torchrun`` starts one process per rank and tells each its place through the environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``);
:func:`init` joins the process group: gloo for CPU devices, nccl for CUDA ones. Without
torchrun (or with one rank) every function here is the identity and nothing is imported
or initialised, so a single process runs exactly the code it always ran.

Bit-identical to one process. Every rank computes exactly the tensors that one process
would compute for the same samples, and the ranks combine only results whose combination
does not depend on the order:

- The samples are cut into *shards* of a fixed number of samples (the batch size of the
  step), numbered from sample 0; each rank owns a contiguous run of whole shards
  (:func:`owned`), and every batch of a computation lies inside one shard
  (:func:`shard_batches`). One process cuts its batches the same way, so each batch has the
  same samples and the same shape on whichever rank runs it (float products are not
  batch-invariant: a batch of one takes another kernel than a batch of seven).
- Maxima are combined with MAX; counts (integers, or float64 holding integers below 2^53)
  with SUM; float sums behind means are kept per batch and added in batch order on every
  rank (:func:`ordered_sums`), the order one process adds them in.
- Input spikes come from per-sample random streams (:mod:`snn2hw.snn.encoding`), so a rank
  draws for its own samples exactly the spikes one process draws for them.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable

import torch

ENV_WORLD, ENV_RANK, ENV_LOCAL_RANK = "WORLD_SIZE", "RANK", "LOCAL_RANK"
ENV_LOCAL_WORLD = "LOCAL_WORLD_SIZE"


def launched() -> bool:
    """True in a process that torchrun started as one of several ranks."""
    return int(os.environ.get(ENV_WORLD, "1")) > 1


def active() -> bool:
    """True once this process has joined a process group of more than one rank."""
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world() -> int:
    return torch.distributed.get_world_size() if active() else 1


def rank() -> int:
    return torch.distributed.get_rank() if active() else 0


def is_main() -> bool:
    """True on rank 0, the one rank that prints and writes files (and in a single process).
    Before the group is joined, the launcher's ``RANK`` decides."""
    if active():
        return rank() == 0
    return not launched() or os.environ.get(ENV_RANK, "0") == "0"


def backend_for(device: str) -> str:
    """The collective backend for a torch device: nccl on CUDA, gloo elsewhere."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def rank_device(device: str) -> str:
    """This rank's device: a plain ``cuda`` becomes the GPU of the rank's local index
    (one GPU per process, as nccl requires); anything else is kept."""
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None and launched():
        return f"cuda:{int(os.environ.get(ENV_LOCAL_RANK, '0'))}"
    return device


def init(device: str) -> str:
    """Join torchrun's process group (once) with the backend for ``device``; returns the
    device this rank computes on."""
    device = rank_device(device)
    if launched() and not torch.distributed.is_initialized():
        if torch.device(device).type == "cuda":
            torch.cuda.set_device(torch.device(device))
        torch.distributed.init_process_group(backend_for(device))
    return device


def shutdown() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def owned(n: int, unit: int) -> tuple[int, int]:
    """The samples [lo, hi) of this rank: a contiguous run of whole shards of ``unit``
    samples, as even as whole shards allow (with fewer shards than ranks, the last ranks
    get none)."""
    shards = math.ceil(n / max(unit, 1))
    r, w = rank(), world()
    lo = min(n, -(-shards * r // w) * unit)
    hi = min(n, -(-shards * (r + 1) // w) * unit)
    return lo, hi


def shard_batches(n: int, unit: int, batch: int) -> list[tuple[int, int]]:
    """Batches [start, stop) of at most ``batch`` samples over ``n`` samples that never
    cross a multiple of ``unit``; ``n`` counts from a shard boundary (a rank's own samples
    from ``owned``). Where ``batch`` divides ``unit`` these are the plain batches."""
    out = []
    for lo in range(0, n, unit):
        hi = min(n, lo + unit)
        out += [(s, min(hi, s + batch)) for s in range(lo, hi, batch)]
    return out


# ------------------------------------------------------------------------- reductions

def _comm_device() -> torch.device:
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _all_reduce(values: torch.Tensor, op) -> torch.Tensor:
    """All-reduce a tensor (any device) across the ranks; returns the result on the
    tensor's own device."""
    comm = values.to(_comm_device())
    torch.distributed.all_reduce(comm, op=op)
    return comm.to(values.device)


def all_max(values: Iterable[float]) -> list[float]:
    """Element-wise maximum over the ranks (float64: every float32 and float64 exactly)."""
    values = [float(v) for v in values]
    if not active() or not values:
        return values
    reduced = _all_reduce(torch.tensor(values, dtype=torch.float64),
                          torch.distributed.ReduceOp.MAX)
    return reduced.tolist()


def all_sum(values: Iterable[float]) -> list[float]:
    """Element-wise sum over the ranks of counts: integers, or float64 holding integers,
    exact in any order below 2^53. Sent as float64 whatever each rank holds (so the ranks
    always agree on the type); an int comes back as an int."""
    values = list(values)
    if not active() or not values:
        return values
    reduced = _all_reduce(torch.tensor([float(v) for v in values], dtype=torch.float64),
                          torch.distributed.ReduceOp.SUM).tolist()
    return [int(r) if isinstance(v, int) else r for v, r in zip(values, reduced)]


def sum_tensors_(tensors: list[torch.Tensor]) -> None:
    """Sum count tensors (int64, or float64 holding integers) over the ranks, in place, in
    one collective per dtype."""
    if not active():
        return
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    for group in by_dtype.values():
        flat = torch.cat([t.reshape(-1).to("cpu") for t in group])
        flat = _all_reduce(flat, torch.distributed.ReduceOp.SUM)
        offset = 0
        for t in group:
            t.copy_(flat[offset:offset + t.numel()].reshape(t.shape))
            offset += t.numel()


SERIAL_ELEMENTS = 1 << 14  # torch sums fewer than 2^15 elements in one thread


def fixed_order_sum(values: torch.Tensor) -> float:
    """The float64 sum of a tensor, the same for any number of threads: torch splits a
    larger sum across its threads (so the rounding follows the thread count), but sums
    fewer than 2^15 elements serially. Larger tensors are summed in chunks of 2^14,
    added in order; smaller ones exactly as ``values.double().sum()``."""
    flat = values.detach().reshape(-1).double()
    if flat.numel() < 2 * SERIAL_ELEMENTS:
        return float(flat.sum())
    total = 0.0
    for value in torch.stack([part.sum() for part in flat.split(SERIAL_ELEMENTS)]).tolist():
        total += value  # one transfer from a GPU, then in order
    return total


def ordered_sums(parts: dict[str, dict[int, float]], batches: int) -> dict[str, float]:
    """Per name, the float sum of its per-batch parts (batch index -> value; each rank
    holds its own batches) added in batch order from 0.0: the order, and so the rounding,
    of one process adding batch after batch. Ranks exchange the parts (8 bytes per batch
    and name), zeros elsewhere: adding zeros is exact."""
    names = list(parts)
    table = torch.zeros((len(names), batches), dtype=torch.float64)
    for row, name in enumerate(names):
        for index, value in parts[name].items():
            table[row, index] = value
    if active() and names:
        table = _all_reduce(table, torch.distributed.ReduceOp.SUM)
    totals = {}
    for row, name in enumerate(names):
        total = 0.0
        for value in table[row].tolist():
            total += value
        totals[name] = total
    return totals


def merge_layer_stats(stats: dict) -> None:
    """A simulation's per-layer statistics (:class:`snn2hw.snn.simulate.LayerStats`) over
    all ranks, in place: spikes and neuron-steps summed (float64 integers), the largest
    current maximised."""
    names = list(stats)
    counts = all_sum([float(stats[n].spikes) for n in names]
                     + [float(stats[n].neuron_steps) for n in names])
    tops = all_max(stats[n].max_current for n in names)
    for i, name in enumerate(names):
        st = stats[name]
        st.spikes, st.neuron_steps, st.max_current = counts[i], counts[len(names) + i], tops[i]
