"""Loihi 2 fit check and core estimate from a resources profile (``hw_profiles/loihi2``).

Per layer: neurons, synapses (non-zero weights of the folded synapses), synaptic memory at
the profile's weight bits, and the largest fan-in of one neuron. Cores = the larger of
neurons / neurons-per-core and memory / memory-per-core (an estimate: it ignores index and
routing overheads, which the real compiler adds). A neuron whose fan-in exceeds the per-core
axon limit cannot be placed at all and is flagged.
"""
from __future__ import annotations

import math

import numpy as np

from .profiles import Profile
from .qnet import IntSynapse, QuantizedNetwork, QuantLayer


def _synapse_counts(syn: IntSynapse) -> tuple[int, int]:
    """(non-zero synapses, largest fan-in of one target neuron)."""
    if syn.kind == "conv":
        area = syn.pool[0] * syn.pool[1]
        per_channel = np.count_nonzero(syn.weight.reshape(syn.weight.shape[0], -1), axis=1)
        out_positions = int(np.prod(syn.out_shape[1:]))
        return int(per_channel.sum()) * out_positions * area, int(per_channel.max()) * area
    row_nnz = np.diff(syn.csr.indptr)
    return int(syn.csr.nnz), int(row_nnz.max(initial=0))


def layer_usage(layer: QuantLayer, profile: Profile) -> dict:
    res = profile.resources
    counts = [_synapse_counts(s) for s in layer.synapses]
    synapses = sum(c[0] for c in counts)
    fan_in = sum(c[1] for c in counts)
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
