"""Streamed statistics against straightforward computations on the whole data (numpy),
and independence from how the stream is cut."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from snn2hw import calibrate, ir, snn
from snn2hw.calibrate import annstats
from snn2hw.calibrate import spikestore, streaming
from snn2hw.importer import graph_from_nodes as build


def _values(seed: int, n: int = 5000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.lognormal(0, 2, n).astype(np.float32)
    v[::3] *= -1
    v[::7] = 0          # many ties, as a ReLU's zeros
    if n > 40:
        v[5:40] = v[4]  # a run of equal values
    return v


def _order_statistics(chunks: list[np.ndarray], ranks: list[int]) -> dict[int, float]:
    st = streaming.OrderStatistics()
    for c in chunks:
        st.count(torch.from_numpy(c))
    st.want(ranks)
    for c in chunks:
        st.refine(torch.from_numpy(c))
    return {r: st.value(r) for r in ranks}


@pytest.mark.parametrize("seed", [0, 1])
def test_order_statistics_are_the_sorted_values(seed):
    v = _values(seed)
    ranks = [0, 1, 17, 2500, 4998, 4999]
    got = _order_statistics([v], ranks)
    want = np.sort(v)
    assert all(got[r] == float(want[r]) for r in ranks)


def test_order_statistics_do_not_depend_on_the_chunks(monkeypatch):
    v = _values(2)
    ranks = [3, 1000, 4321]
    whole = _order_statistics([v], ranks)
    monkeypatch.setattr(streaming.OrderStatistics, "CHUNK", 13)
    assert _order_statistics([v[:1234], v[1234:3000], v[3000:]], ranks) == whole


@pytest.mark.parametrize("n", [1, 2, 7, 1001, 5000])
def test_percentile_rules_equal_numpy_bit_for_bit(n):
    v = _values(n, n)
    lo, hi, gamma = streaming.linear_percentile_ranks(n, 99.9)
    s = np.sort(v)
    assert streaming.lerp_like_numpy(float(s[lo]), float(s[hi]), gamma) == float(
        np.percentile(v, 99.9))
    for q in (50.0, 99.0, 99.9, 100.0):
        assert float(s[streaming.higher_percentile_rank(n, q)]) == float(
            np.percentile(v, q, method="higher"))


def _two_layer_graph():
    rng = np.random.default_rng(5)
    return build([ir.Input("input", [], (6,)),
                  ir.Dense("d1", ["input"], weight=rng.standard_normal((9, 6)),
                           bias=rng.standard_normal(9) * 0.3),
                  ir.ReLU("r1", ["d1"]),
                  ir.Dense("out", ["r1"], weight=rng.standard_normal((4, 9)))])


def test_ann_statistics_equal_the_statistics_of_all_activations():
    g = _two_layer_graph()
    net = snn.lower(g)
    x = np.random.default_rng(6).uniform(-1, 1, (300, 6)).astype(np.float32)
    stats = annstats.ann_statistics(net, x, batch_size=64, percentile=97.0)
    w1, b1 = g.nodes["d1"].weight, g.nodes["d1"].bias
    r1 = np.maximum(x.astype(np.float64) @ w1.T + b1, 0)
    out = r1 @ g.nodes["out"].weight.T
    for name, a in (("r1", r1), ("out", out)):
        v = a.reshape(-1).astype(np.float32)
        st = stats[name]
        assert st["max"] == pytest.approx(a.max(), rel=1e-12)
        assert st["mean"] == pytest.approx(a.mean(), rel=1e-12)
        assert st["p99.9"] == float(np.percentile(v, 99.9))
        assert st["active_fraction"] == float((v > 0).mean())
        assert st["top"] == float(np.percentile(v[v > 0], 97.0, method="higher"))


def test_ann_statistics_do_not_depend_on_the_batch_size():
    net = snn.lower(_two_layer_graph())
    x = np.random.default_rng(7).uniform(-1, 1, (100, 6)).astype(np.float32)
    whole = annstats.ann_statistics(net, x, batch_size=100, percentile=90.0)
    for name, st in annstats.ann_statistics(net, x, batch_size=7, percentile=90.0).items():
        for key in ("max", "p99.9", "active_fraction", "top"):
            assert st[key] == whole[name][key], (name, key)
        assert st["mean"] == pytest.approx(whole[name]["mean"], rel=1e-12)


def test_spike_norm_does_not_depend_on_the_block_size(monkeypatch):
    net = snn.lower(_two_layer_graph())
    x = np.random.default_rng(8).uniform(-1, 1, (20, 6)).astype(np.float32)
    options = dict(timesteps=40, seed=3, batch_size=8, percentile=99.0, reset="subtract")
    whole = calibrate.calibrate("spike-norm", net, x, **options)
    monkeypatch.setattr(spikestore, "BLOCK_BYTES", 4 * 8 * 9 * 3)  # 3 steps per block
    assert spikestore.block_steps(40, 8, 9) == 3
    blocked = calibrate.calibrate("spike-norm", net, x, **options)
    assert blocked.scales == whole.scales
    assert blocked.source_scales == whole.source_scales
