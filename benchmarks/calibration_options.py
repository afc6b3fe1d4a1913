"""What per-channel scales and bias calibration contribute: one trained model, each
calibration method with each combination of the two options (``--per-channel``,
``--bias-calibration`` of :class:`snn2hw.snn.options.Conversion`), SNN accuracy on the test
split at every T of ``--timesteps`` from one run of the largest T.

    .venv/bin/python benchmarks/calibration_options.py build/deep/vgg16.onnx \\
        [--data digits] [--timesteps 32,64] [--methods max-act,spike-norm] \\
        [--reset subtract] [--percentile 99.9] [--samples 256] [--calib-timesteps T] \\
        [--eval-samples N] [--seed 0]

Calibration runs on the first ``--samples`` training images (``--calib-timesteps``, default
the largest T); the test images are the first ``--eval-samples``. T counts every step from
the first input step (the time convention of ``snn2hw calibrate``): a layer ``depth`` hops
deep integrates T - depth steps. Prints one table; the time column is calibration plus
evaluation.
"""
from __future__ import annotations

import argparse
import itertools
import time

import numpy as np


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--data", default="digits")
    p.add_argument("--timesteps", default="32,64")
    p.add_argument("--methods", default="max-act,spike-norm")
    p.add_argument("--reset", default="subtract")
    p.add_argument("--percentile", type=float, default=99.9)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--calib-timesteps", type=int, default=None)
    p.add_argument("--eval-samples", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from snn2hw import data, snn
    from snn2hw.calibrate import calibrate
    from snn2hw.importer import import_onnx
    from snn2hw.snn.options import Conversion
    from snn2hw.steps.evaluate import evaluate, load_data
    from snn2hw.steps.options import DataOptions
    from snn2hw.steps.settings import preprocess_for
    from snn2hw.calibrate.channels import calibrated_network
    from snn2hw.cli.tables import percent, table

    steps = sorted({int(t) for t in args.timesteps.split(",")})
    graph = import_onnx(args.model)
    dataset = load_data(graph, args.data, preprocess_for(graph, DataOptions(spec=args.data)))
    net = snn.lower(graph)
    x_cal = data.calibration_set(dataset, args.samples)
    x_ev, y_ev = data.take(dataset.x_test, dataset.y_test, args.eval_samples, "evaluation")
    rows, ann_acc = [], None
    for method in args.methods.split(","):
        for per_channel, bias in itertools.product((False, True), repeat=2):
            start = time.monotonic()
            conversion = Conversion(per_channel=per_channel, bias_calibration=bias)
            cal = calibrate(method, net, x_cal, conversion=conversion, reset=args.reset,
                            percentile=args.percentile, seed=args.seed,
                            timesteps=args.calib_timesteps or max(steps))
            ev = evaluate(graph, calibrated_network(net, cal), cal.scales, x_ev, y_ev, steps,
                          args.seed, source_scales=cal.source_scales, reset=cal.reset)
            ann_acc = ev.ann_accuracy
            rows.append([method, "yes" if per_channel else "-", "yes" if bias else "-",
                         *(percent(ev.snn_accuracy[t]) for t in steps),
                         f"{time.monotonic() - start:.0f} s"])
            print(" ".join(map(str, rows[-1])), flush=True)
    print(f"\n{args.model}: ANN {percent(ann_acc)} on {len(x_ev)} test images; calibration "
          f"on {len(x_cal)} training images; reset {args.reset}, percentile "
          f"{args.percentile:g}, seed {args.seed}; T counts the pipeline fill")
    print(table(["method", "per-channel", "bias calibration",
                 *(f"T={t}" for t in steps), "time"], rows))


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
