"""Reference-simulator throughput: layer-wise over time (one batched product per layer per
time chunk) vs step by step (one small product per layer per step), in float and in the
bit-accurate fixed point of a profile (default ``loihi_sim``), on the demo network or any
``--model`` on digits (the 13-conv VGG: ``--model /work/models/deep/vgg16.onnx``).

    .venv/bin/python benchmarks/simulate.py [--model build/demo/digits_vgg.onnx]
        [--timesteps 256] [--samples 128] [--batch 16 64] [--device cpu] [--threads N]
        [--profile loihi_sim | --profile none]

Prints image x time-steps per second for each mode and the ratios, and checks that the
layer-wise and step-by-step runs produce identical output spike counts (float and fixed).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="build/demo/digits_vgg.onnx")
    parser.add_argument("--timesteps", type=int, default=256)
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own choice)")
    parser.add_argument("--profile", default="loihi_sim",
                        help="the fixed-point profile, or none for float only")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from snn2hw.snn import simulate
    from snn2hw import snn
    from snn2hw.calibrate import max_act
    from snn2hw.snn.encoders import make_encoder
    from snn2hw.importer import import_onnx
    from snn2hw.steps.evaluate import load_data
    from snn2hw.steps.settings import model_preprocess

    if not Path(args.model).is_file():
        print(f"{args.model} not found: run `make demo` first (it trains the demo network)")
        return 2
    graph = import_onnx(args.model)
    dataset = load_data(graph, "digits", model_preprocess(graph))
    x = dataset.x_test[:args.samples]
    net = snn.lower(graph)
    scales = max_act(net, dataset.x_train[:256]).scales
    preps = {"float": simulate.prepare_float(net, scales, args.device)}
    if args.profile != "none":
        from snn2hw.hardware import profiles
        from snn2hw.quantize import quantize
        from snn2hw.steps.evaluate import prepare_network

        qnet = quantize(net, scales, profiles.load(args.profile))
        preps[f"fixed {args.profile}"] = prepare_network(qnet, args.device)
    print(f"model {args.model}: {len(net.layers)} spiking layers, "
          f"{sum(la.size for la in net.layers)} neurons; {args.samples} images, "
          f"T = {args.timesteps}, device {args.device}, torch threads "
          f"{torch.get_num_threads()}")
    same = True
    for batch in args.batch:
        figures, counts = {}, {}
        for mode, prep in preps.items():
            for label, chunk in (("layer-wise", None), ("step-by-step", 1)):
                enc = make_encoder("poisson", x, input_scale=scales[net.input],
                                   seed=args.seed, stream=1)
                start = time.perf_counter()
                res = simulate.simulate(prep, enc, args.timesteps, batch_size=batch,
                                        time_chunk=chunk)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - start
                key = f"{mode} {label}"
                figures[key] = len(x) * args.timesteps / seconds
                counts[key] = res.counts[args.timesteps]
                print(f"batch {batch:4d} {key:>28}: {seconds:7.2f} s  "
                      f"{figures[key]:10,.0f} image*steps/s", flush=True)
            agree = np.array_equal(counts[f"{mode} layer-wise"], counts[f"{mode} step-by-step"])
            same &= agree
            print(f"batch {batch:4d} {mode}: speed-up of layer-wise over step-by-step: "
                  f"{figures[f'{mode} layer-wise'] / figures[f'{mode} step-by-step']:.2f}x; "
                  f"identical output spike counts: {agree}")
        if len(preps) == 2:
            fixed = f"fixed {args.profile} layer-wise"
            print(f"batch {batch:4d} fixed point / float, layer-wise: "
                  f"{figures[fixed] / figures['float layer-wise']:.2f}x")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
