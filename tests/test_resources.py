"""Loihi 2 resource estimate: counts against the synapse matrices, cores, fan-in limit."""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from snn2hw import ir, snn
from snn2hw.hardware import profiles
from snn2hw.importer import graph_from_nodes as build
from snn2hw.quantize.qnet import IntSynapse, QuantizedNetwork, QuantLayer
from snn2hw.quantize import quantize
from snn2hw.hardware.resources import layer_usage, network_usage

LOIHI2 = profiles.load("loihi2")




def tiny_qnet() -> QuantizedNetwork:
    """Padded convs (border neurons have fewer synapses), a pooled conv, two terms into one
    layer, zero weights, and an avgpool+flatten+dense matrix."""
    rng = np.random.default_rng(5)
    w1 = rng.standard_normal((4, 1, 3, 3))
    w1[0, 0, 0] = 0.0  # a zero row of taps
    g = build([
        ir.Input("input", [], (1, 8, 8)),
        ir.Conv("c1", ["input"], weight=w1, padding=(1, 1, 1, 1)),
        ir.ReLU("r1", ["c1"]),
        ir.AvgPool("p", ["r1"], kernel=(2, 2), stride=(2, 2)),
        ir.Conv("c2", ["p"], weight=rng.standard_normal((3, 4, 3, 3)), padding=(1, 1, 1, 1)),
        ir.Conv("c3", ["r1"], weight=rng.standard_normal((3, 4, 2, 2)), stride=(2, 2)),
        ir.Add("sum", ["c2", "c3"]),
        ir.ReLU("r2", ["sum"]),
        ir.AvgPool("p2", ["r2"], kernel=(2, 2), stride=(2, 2)),
        ir.Flatten("f", ["p2"]),
        ir.Dense("out", ["f"], weight=rng.standard_normal((10, 12))),
    ])
    return quantize(snn.lower(g), {"input": 1.0, "r1": 3.0, "r2": 4.0, "out": 2.0},
                    profiles.load("loihi_sim"))


def independent_usage(la: QuantLayer) -> dict:
    rows = np.zeros(la.size, dtype=np.int64)
    for syn in la.synapses:
        m = syn.matrix()
        assert m.shape == (la.size, syn.in_size)
        rows += np.asarray((m != 0).sum(axis=1)).reshape(-1)
    synapses = int(rows.sum())
    memory = math.ceil(synapses * 9 / 8)
    return {"neurons": int(np.prod(la.shape)), "synapses": synapses, "memory_bytes": memory,
            "fan_in": int(rows.max()),
            "cores": max(math.ceil(la.size / 8192), math.ceil(memory / 131072), 1)}


def matrix_layer(name: str, out_size: int, in_size: int, density: float = 1.0,
                 seed: int = 0) -> QuantLayer:
    rng = np.random.default_rng(seed)
    dense = rng.integers(1, 256, size=(out_size, in_size)) * (rng.random((out_size, in_size))
                                                               < density)
    syn = IntSynapse("input", 1, (in_size,), (out_size,), "matrix",
                     csr=sp.csr_matrix(dense.astype(np.int32)))
    return QuantLayer(name, (out_size,), 1, [syn], 1000, None, is_output=True)


def test_tiny_network_usage_matches_the_synapse_matrices():
    q = tiny_qnet()
    kinds = {la.name: [s.kind for s in la.synapses] for la in q.layers}
    assert kinds == {"r1": ["conv"], "r2": ["conv", "conv"], "out": ["matrix"]}
    assert q.layers[1].synapses[0].pool == (2, 2)
    for la in q.layers:
        usage = layer_usage(la, LOIHI2)
        want = independent_usage(la)
        assert {k: usage[k] for k in want} == want, la.name
        assert usage["fan_in_ok"]


def test_padded_conv_border_neurons_have_fewer_synapses():
    la = tiny_qnet().layers[0]  # 3x3 conv, padding 1, on 8x8: 22 valid taps per axis
    nonzero_taps = int(np.count_nonzero(la.synapses[0].weight.reshape(4, 3, 3), axis=(1, 2))
                       .sum())
    assert nonzero_taps < 36  # the zeroed taps are not counted
    usage = layer_usage(la, LOIHI2)
    assert usage["synapses"] < nonzero_taps * 64
    assert usage["fan_in"] == int(np.count_nonzero(la.synapses[0].weight.reshape(4, -1),
                                                   axis=1).max())


def test_memory_limited_layer_needs_several_cores():
    la = matrix_layer("wide", 40, 3000)  # 120000 synapses * 9 bits = 135000 bytes
    usage = layer_usage(la, LOIHI2)
    assert usage["synapses"] == 120000 and usage["memory_bytes"] == 135000
    assert usage["cores"] == 2  # > 131072 bytes of one core


def test_neuron_limited_layer_needs_several_cores():
    la = matrix_layer("tall", 9000, 2, seed=1)
    usage = layer_usage(la, LOIHI2)
    assert usage["neurons"] == 9000 and usage["cores"] == 2  # > 8192 neurons of one core
    assert usage["fan_in"] == 2


def test_dense_layer_with_5000_inputs_violates_fan_in():
    la = matrix_layer("big", 3, 5000, seed=2)
    q = QuantizedNetwork("input", (5000,), 1.0, [la], "loihi_sim")
    usage = network_usage(q, LOIHI2)
    assert usage["layers"]["big"]["fan_in"] == 5000
    assert not usage["layers"]["big"]["fan_in_ok"]
    assert usage["fan_in_violations"] == ["big"] and not usage["fits_one_chip"]


def test_sparse_rows_below_the_limit_fit():
    la = matrix_layer("sparse", 50, 5000, density=0.5, seed=3)
    rows = np.diff(la.synapses[0].csr.indptr)
    assert rows.max() <= 4096
    usage = network_usage(QuantizedNetwork("input", (5000,), 1.0, [la], "x"), LOIHI2)
    assert usage["layers"]["sparse"]["fan_in"] == int(rows.max())
    assert usage["fan_in_violations"] == [] and usage["fits_one_chip"]


def test_network_totals_and_chips():
    q = tiny_qnet()
    usage = network_usage(q, LOIHI2)
    for key in ("neurons", "synapses", "memory_bytes", "cores"):
        assert usage["total"][key] == sum(independent_usage(la)[key] for la in q.layers)
    assert usage["total"]["neurons"] == 4 * 64 + 3 * 16 + 10
    assert usage["chips"] == 1 and usage["fits_one_chip"] and usage["profile"] == "loihi2"
