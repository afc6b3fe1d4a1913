"""Calibrations, an evaluation and the sweep's measurements that tests/test_distributed.py
runs in one process and as the ranks of a gloo process group: ``python
tests/distributed_cases.py OUT`` is one rank (torchrun's environment variables say which)
and pickles its results to ``OUT.RANK``.

The cases cut the samples so that the ranks get unequal shares and several batches each:
300 samples are 5 shards of 64 for the SNN (ranks 0-2 and 3-4) and 2 of 256 for the ANN
statistics (one each).
"""
from __future__ import annotations

import os
import pickle
import sys

import numpy as np

from snn2hw import calibrate, distributed, ir, snn
from snn2hw.calibrate import currentcache, spikestore
from snn2hw.calibrate.annstats import ann_statistics
from snn2hw.importer import graph_from_nodes as build
from snn2hw.snn.options import Conversion
from snn2hw.steps.activity import measure
from snn2hw.steps.evaluate import evaluate

SAMPLES, TIMESTEPS, SEED = 300, 16, 3


def conv_net(rng):
    """conv (bias) -> relu -> avgpool -> dense (bias) -> relu -> dense."""
    return build([
        ir.Input("input", [], (2, 8, 8)),
        ir.Conv("c1", ["input"], weight=rng.normal(0, 0.5, (4, 2, 3, 3)),
                bias=rng.normal(0, 0.1, 4), padding=(1, 1, 1, 1)),
        ir.ReLU("r1", ["c1"]),
        ir.AvgPool("p1", ["r1"], kernel=(2, 2), stride=(2, 2)),
        ir.Flatten("f", ["p1"]),
        ir.Dense("d1", ["f"], weight=rng.normal(0, 0.3, (12, 64)), bias=rng.normal(0, 0.1, 12)),
        ir.ReLU("r2", ["d1"]),
        ir.Dense("out", ["r2"], weight=rng.normal(0.1, 0.5, (5, 12)))])


def residual_net(rng):
    """input -> d1 -> r1 -> d2 -> r2; r3 = relu(d3(r2) + d4(r1)); out = d5(r3)."""
    w = {k: rng.normal(0, 0.6, s) for k, s in
         {"d1": (8, 6), "d2": (8, 8), "d3": (5, 8), "d4": (5, 8), "d5": (3, 5)}.items()}
    return build([
        ir.Input("input", [], (6,)),
        ir.Dense("d1", ["input"], weight=w["d1"]), ir.ReLU("r1", ["d1"]),
        ir.Dense("d2", ["r1"], weight=w["d2"]), ir.ReLU("r2", ["d2"]),
        ir.Dense("d3", ["r2"], weight=w["d3"], bias=rng.normal(0, 0.1, 5)),
        ir.Dense("d4", ["r1"], weight=w["d4"], bias=rng.normal(0, 0.1, 5)),
        ir.Add("add", ["d3", "d4"]), ir.ReLU("r3", ["add"]),
        ir.Dense("d5", ["r3"], weight=w["d5"] + 0.3)])


def data(graph, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (SAMPLES, *graph.input_shape)).astype(np.float32)
    return x, rng.integers(0, 5, SAMPLES)


def _calibration(cal) -> dict:
    return {"scales": cal.scales, "source_scales": cal.source_scales,
            "params": cal.params, "warnings": cal.warnings}


def run_cases() -> dict[str, dict]:
    """Every case's results as plain Python values (compared with ==)."""
    rng = np.random.default_rng(7)
    conv, res = conv_net(rng), residual_net(rng)
    (xc, yc), (xr, _) = data(conv, 1), data(res, 2)
    cn, rn = snn.lower(conv), snn.lower(res)
    out = {
        "spike-norm max": _calibration(calibrate.calibrate(
            "spike-norm", cn, xc, timesteps=TIMESTEPS, seed=SEED)),
        "spike-norm percentile, subtract": _calibration(calibrate.calibrate(
            "spike-norm", rn, xr, timesteps=TIMESTEPS, seed=SEED, percentile=99.0,
            reset="subtract")),
        "max-act percentile": _calibration(calibrate.calibrate(
            "max-act", cn, xc, percentile=99.9, batch_size=32)),
        "max-act shared junction": _calibration(calibrate.calibrate(
            "max-act", rn, xr, junction="shared", batch_size=64)),
        "ann statistics": ann_statistics(cn, xc, batch_size=48),
    }
    ev = evaluate(conv, cn, out["spike-norm max"]["scales"], xc, yc, [4, 8, TIMESTEPS],
                  SEED, source_scales=out["spike-norm max"]["source_scales"])
    out["evaluation"] = {"ann": ev.ann_accuracy, "snn": ev.snn_accuracy, "ties": ev.ties,
                         "rates": ev.rates, "max_current": ev.max_current,
                         "samples": ev.samples}
    out.update(_sweep_cases(cn, out["spike-norm max"], xc, yc))
    # Memory caps that cut the layers into blocks of one step and 3 samples: batches that
    # do not divide the shard of 7 samples (batch_size) must stay inside their shards,
    # where one process has blocks of a single sample (a matrix-vector product, rounded
    # differently from a product of 3 rows).
    # The currents kept between Spike-Norm's two passes: room for 5 one-step blocks of a
    # layer, so most blocks are computed twice.
    caps = spikestore.BATCH_BYTES, spikestore.BLOCK_BYTES, currentcache.CACHE_BYTES
    spikestore.BATCH_BYTES, spikestore.BLOCK_BYTES = 4 * TIMESTEPS * 256 * 3, 1
    currentcache.CACHE_BYTES = 5 * 4 * 3 * 256
    try:
        out["spike-norm capped batches"] = _calibration(calibrate.calibrate(
            "spike-norm", cn, xc[:60], timesteps=TIMESTEPS, seed=SEED, batch_size=7,
            percentile=100.0))
    finally:
        spikestore.BATCH_BYTES, spikestore.BLOCK_BYTES, currentcache.CACHE_BYTES = caps
    return out


def _sweep_cases(net, cal: dict, x: np.ndarray, y: np.ndarray) -> dict[str, dict]:
    """The sweep's measurements (one run at the largest T, counted at every T), in chunks
    of 40 samples (a record budget of 40 samples' trains): 8 chunks, 4 per rank; with the
    paper's conversion and with the low-latency one (direct input, pipelined window,
    membrane read-out)."""
    sizes = int(np.prod(net.input_shape)) + sum(la.size for la in net.layers)
    out = {}
    for name, conversion in (("sweep activity", Conversion()),
                             ("sweep activity, fast", Conversion(
                                 coding="direct", v_init=0.5, readout="membrane",
                                 window="pipelined"))):
        act = measure(net, cal["scales"], x, y, [4, 8, TIMESTEPS], SEED,
                      source_scales=cal["source_scales"], conversion=conversion,
                      record_budget=40 * TIMESTEPS * sizes)
        out[name] = {"samples": act.samples, "correct": act.correct, "sops": act.sops,
                     "spikes": act.spikes, "neuron_steps": act.neuron_steps}
    return out


def main(out: str) -> int:
    distributed.init("cpu")
    try:
        results = run_cases()
        with open(f"{out}.{distributed.rank()}", "wb") as f:
            pickle.dump({"world": distributed.world(), "results": results}, f)
    finally:
        distributed.shutdown()
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1])   # an exception still ends the rank with its traceback
    sys.stdout.flush()
    sys.stderr.flush()
    # The results are written and the group destroyed; skip the interpreter's teardown, in
    # which gloo's threads sometimes abort ("terminate called without an active exception").
    os._exit(code)
