"""Loihi 2 fit check and core estimate from a resources profile (``hw_profiles/loihi2``).

Per layer: neurons, synapses (non-zero weights of the folded synapses), synaptic memory at
the profile's weight bits, and the largest fan-in of one neuron. Cores = the larger of
neurons / neurons-per-core and memory / memory-per-core (an estimate: it ignores index and
routing overheads, which the real compiler adds). A neuron whose fan-in exceeds the per-core
axon limit cannot be placed at all and is flagged.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from .profiles import Profile
from ..quantize.qnet import IntSynapse, QuantizedNetwork, QuantLayer


def _row_counts(syn: IntSynapse) -> np.ndarray:
    """Non-zero synapses into each target neuron (the row nnz of ``syn.matrix()``). A conv
    entry is one kernel tap, so the counts are the indicator kernel applied to all-ones
    input: exact at padded borders, without building the matrix."""
    if syn.is_conv:
        mask = replace(syn, weight=(np.asarray(syn.weight) != 0).astype(np.float64))
        ones = torch.ones((1, *syn.in_shape), dtype=torch.float64)
        return np.rint(mask.apply(ones).reshape(-1).numpy()).astype(np.int64)
    return np.diff(syn.csr.indptr)


def layer_usage(layer: QuantLayer, profile: Profile) -> dict:
    res = profile.resources
    rows = sum((_row_counts(s) for s in layer.synapses), np.zeros(layer.size, np.int64))
    synapses = int(rows.sum())
    fan_in = int(rows.max(initial=0))
    memory = math.ceil(synapses * profile.fixed.weight_bits / 8)
    cores = max(math.ceil(layer.size / res["neurons_per_core"]),
                math.ceil(memory / res["synaptic_memory_bytes_per_core"]), 1)
    return {"neurons": layer.size, "synapses": synapses, "memory_bytes": memory,
            "fan_in": fan_in, "fan_in_ok": fan_in <= res["fan_in_per_core"], "cores": cores}


def network_usage(qnet: QuantizedNetwork, profile: Profile) -> dict:
    layers = {la.name: layer_usage(la, profile) for la in qnet.layers}
    res = profile.resources
    total = {key: sum(u[key] for u in layers.values())
             for key in ("neurons", "synapses", "memory_bytes", "cores")}
    chips = max(math.ceil(total["cores"] / res["cores_per_chip"]),
                math.ceil(total["neurons"] / res["neurons_per_chip"]),
                math.ceil(total["synapses"] / res["synapses_per_chip"]), 1)
    return {"profile": profile.name, "layers": layers, "total": total, "chips": chips,
            "fits_one_chip": chips == 1 and all(u["fan_in_ok"] for u in layers.values()),
            "fan_in_violations": [n for n, u in layers.items() if not u["fan_in_ok"]]}
