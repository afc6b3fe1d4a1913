"""Lava CPU steps per second for the demo network, for each synapse-process choice, and
the reference fixed-point simulator's rate on the same work.

    .venv/bin/python benchmarks/lava_run.py [--export build/demo/digits_vgg.loihi_sim.h5]
        [--samples 4] [--timesteps 128]

Variants (all give identical spikes; the benchmark checks it):
  graded   Sparse, graded 1-bit messages between layers (the default: one CSR mat-vec)
  binary   Sparse, binary spikes between layers (as Loihi; column slicing per step)
  sink     graded, but read back through RingBuffer sinks instead of Extractors
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", default="build/demo/digits_vgg.loihi_sim.h5")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--timesteps", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not Path(args.export).is_file():
        print(f"{args.export} not found: run `make demo` first")
        return 2

    from snn2hw import data
    from snn2hw.hardware import profiles
    from snn2hw.snn import simulate
    from snn2hw.steps.deploy import prepare_network
    from snn2hw.snn.encoders import make_encoder
    from snn2hw.artifacts.export import load_export
    from snn2hw.exporters.lava.watchdog import run_lava

    art = load_export(args.export)
    q = art.qnet
    profile = profiles.load_stored(art.profile_toml, args.export)
    ds = data.load("digits", q.input_shape, q.output.size,
                   data.Preprocess.from_json(art.preprocess))
    x = ds.x_test[:args.samples]
    spikes = make_encoder("poisson", x, input_scale=q.input_scale, seed=args.seed,
                          stream=1).full(0, len(x), args.timesteps)
    spikes = spikes.reshape(len(x), args.timesteps, -1)
    steps = len(x) * args.timesteps
    neurons = sum(la.size for la in q.layers)
    print(f"{args.export}: {len(q.layers)} layers, {neurons} neurons; {len(x)} samples x "
          f"{args.timesteps} steps = {steps} Lava steps per run")

    start = time.perf_counter()
    enc = make_encoder("poisson", x, input_scale=q.input_scale, seed=args.seed, stream=1)
    ref = simulate.simulate(prepare_network(q), enc,
                            args.timesteps, record=[la.name for la in q.layers])
    ref_seconds = time.perf_counter() - start
    print(f"{'reference fixed-point':>22}: {steps / ref_seconds:9.1f} steps/s "
          f"({ref_seconds:.1f} s)")
    variants = {"graded": {}, "binary": {"hidden_message_bits": 0},
                "sink": {"reader": "sink"}}
    for label, options in variants.items():
        res = run_lava(q, spikes, args.timesteps, profile=profile, **options)
        same = all(np.array_equal(res.spikes[n], ref.records[n]) for n in res.spikes)
        print(f"{'Lava ' + label:>22}: {res.steps_per_second:9.1f} steps/s "
              f"(whole call {res.seconds:.1f} s), identical to reference: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
