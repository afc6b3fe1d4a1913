"""Spike-Norm computes each layer's input current once (snn2hw/calibrate/currentcache.py):
the pass that finds the largest current keeps the blocks it computed, within a byte budget,
and the pass that integrates takes them back. The thresholds and spikes must be those of
the paper's algorithm, bit for bit, whatever the budget and the block size."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from snn2hw import calibrate, ir, snn
from snn2hw.calibrate import currentcache, layerwise, spikestore
from snn2hw.importer import graph_from_nodes as build
from snn2hw.snn.encoders import make_encoder
from snn2hw.snn.options import Conversion

T, SEED, N = 24, 5, 20


def dyadic_chain():
    """input(6) -> dense+bias -> relu -> dense+bias -> relu -> dense, 8 neurons each.
    Weights are multiples of 1/8 and biases of 1/16: every current is a short sum of dyadic
    numbers, exact in float32 in any order, so the reference below can add them its own
    way."""
    rng = np.random.default_rng(11)
    w1 = rng.integers(-4, 9, (8, 6)) / 8
    w2 = rng.integers(-3, 9, (8, 8)) / 8
    w3 = rng.integers(-2, 9, (8, 8)) / 8
    return build([
        ir.Input("input", [], (6,)),
        ir.Dense("d1", ["input"], weight=w1, bias=rng.integers(-2, 4, 8) / 16),
        ir.ReLU("r1", ["d1"]),
        ir.Dense("d2", ["r1"], weight=w2, bias=rng.integers(-2, 4, 8) / 16),
        ir.ReLU("r2", ["d2"]),
        ir.Dense("d3", ["r2"], weight=w3)]), (w1, w2, w3)


def samples() -> np.ndarray:
    x = np.random.default_rng(3).uniform(-1, 1, (N, 6)).astype(np.float32)
    x[0, 0] = 1.0  # input scale 1
    return x


def reference_spike_norm(net, weights, x, reset: str) -> list[float]:
    """Sengupta et al.'s Algorithm 1 written out step by step in numpy (no rate matching,
    the maximum): layer k's current at step t is gain * W s(t - 1) + b from step k on
    (a layer k hops deep is idle before), its threshold the largest current, and its IF
    neurons integrate current / threshold and fire above 1."""
    enc = make_encoder("poisson", x, input_scale=1.0, seed=SEED, indices=np.arange(len(x)))
    spikes = np.moveaxis(enc.full(0, len(x), T), 1, 0).astype(np.float64)  # (T, N, 6)
    gain, tops = 1.0, []
    for depth, (layer, w) in enumerate(zip(net.layers, weights), start=1):
        bias = np.zeros(w.shape[0]) if layer.bias is None else layer.bias.reshape(-1)
        current = np.zeros((T, len(x), w.shape[0]))
        for t in range(depth, T):
            current[t] = spikes[t - 1] @ (gain * w).T + bias
        top = float(current.max())
        tops.append(top)
        scaled = torch.from_numpy(current.astype(np.float32)).div_(top).numpy()
        v = np.zeros((len(x), w.shape[0]), dtype=np.float32)
        out = np.zeros_like(current)
        for t in range(T):
            v = v + scaled[t]
            fired = v > 1.0
            out[t] = fired
            v = np.where(fired, v - 1.0 if reset == "subtract" else 0.0, v).astype(np.float32)
        spikes, gain = out, top
    return tops


@pytest.fixture
def count_currents(monkeypatch):
    """Counts every computation of a block's current."""
    calls = []
    real = layerwise.layer_current

    def counted(prepared, inputs):
        calls.append(prepared.name)
        return real(prepared, inputs)

    monkeypatch.setattr(layerwise, "layer_current", counted)
    return calls


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("cache_blocks", [None, 3, 0])  # everything, some blocks, none
def test_thresholds_equal_the_step_by_step_reference(monkeypatch, count_currents, reset,
                                                    cache_blocks):
    graph, weights = dyadic_chain()
    net = snn.lower(graph)
    x = samples()
    monkeypatch.setattr(spikestore, "BLOCK_BYTES", 4 * 8 * 8 * 5)  # 5 steps of 8 samples
    if cache_blocks is not None:
        monkeypatch.setattr(currentcache, "CACHE_BYTES", cache_blocks * 4 * 5 * 8 * 8)
    cal = calibrate.calibrate("spike-norm", net, x, timesteps=T, seed=SEED, batch_size=8,
                              rate_match=False, reset=reset)
    want = reference_spike_norm(net, weights, x, reset)
    assert [cal.scales[la.name] for la in net.layers] == want
    assert len(set(want)) == 3 and min(want) > 0  # every layer reached, not a constant
    blocks = 3 * 5 * len(net.layers)  # 3 batches (8, 8, 4 samples) x 5 blocks of steps
    # the first 3 blocks of a layer (5 steps x 8 samples x 8 neurons) fill the small cache
    computed = {None: blocks, 3: 2 * blocks - 3 * len(net.layers), 0: 2 * blocks}
    assert len(count_currents) == computed[cache_blocks]


def conv_net():
    rng = np.random.default_rng(4)
    return build([
        ir.Input("input", [], (2, 6, 6)),
        ir.Conv("c1", ["input"], weight=rng.normal(0, 0.5, (4, 2, 3, 3)),
                bias=rng.normal(0, 0.1, 4), padding=(1, 1, 1, 1)),
        ir.ReLU("r1", ["c1"]),
        ir.Conv("c2", ["r1"], weight=rng.normal(0, 0.4, (3, 4, 3, 3)), padding=(1, 1, 1, 1)),
        ir.ReLU("r2", ["c2"]),
        ir.Flatten("f", ["r2"]),
        ir.Dense("out", ["f"], weight=rng.normal(0, 0.3, (4, 108)))])


def _fingerprint(cal) -> tuple:
    factors = {k: v.tolist() for k, v in (cal.channel_factors or {}).items()}
    offsets = {k: v.tolist() for k, v in (cal.bias_offsets or {}).items()}
    return cal.scales, cal.source_scales, factors, offsets


@pytest.mark.parametrize("options", [
    dict(percentile=99.0, reset="subtract"),
    dict(conversion=Conversion(per_channel=True, bias_calibration=True, coding="direct",
                               window="pipelined", v_init=0.5)),
    dict(conversion=Conversion(per_channel=True), percentile=99.5)])
def test_kept_currents_change_nothing(monkeypatch, count_currents, options):
    """Real-valued weights (float rounding follows the kernel): with and without the kept
    currents, the same float operations on the same blocks. Per channel, a layer whose
    factors are folded in after its maximum must compute its currents again from the
    folded weights, not take back the unfolded ones."""
    net = snn.lower(conv_net())
    x = np.random.default_rng(9).uniform(-1, 1, (30, 2, 6, 6)).astype(np.float32)
    args = dict(timesteps=16, seed=2, batch_size=16) | options
    kept = calibrate.calibrate("spike-norm", net, x, **args)
    once = len(count_currents)
    monkeypatch.setattr(currentcache, "CACHE_BYTES", 0)
    del count_currents[:]
    again = calibrate.calibrate("spike-norm", net, x, **args)
    assert _fingerprint(kept) == _fingerprint(again)
    assert once < len(count_currents)
    if "conversion" in options:
        assert kept.channel_factors  # folding happened: those layers computed twice
        assert once > len(count_currents) // 2


def test_cache_keeps_within_its_budget_and_only_for_its_layer():
    cache = currentcache.CurrentCache(budget=3 * 4 * 10)
    a, b = object(), object()
    blocks = [(0, 1, t, t + 1) for t in range(4)]
    cache.start(a)
    for block in blocks:
        cache.keep(a, block, torch.full((10,), float(block[2])))
    assert cache.take(b, blocks[0]) is None          # another layer's prepared currents
    assert torch.equal(cache.take(a, blocks[1]), torch.full((10,), 1.0))
    assert cache.take(a, blocks[1]) is None          # given up once
    assert cache.take(a, blocks[3]) is None          # did not fit
    cache.start(b)
    assert cache.take(a, blocks[0]) is None          # forgotten at the next layer
