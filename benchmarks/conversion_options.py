"""What each conversion option of the spiking simulator contributes (issue 12): accuracy
against T for the paper's configuration, each option alone on top of it, all of them,
and all but one (the ablation), on one ONNX model and data set.

The options measured here are the simulator's: direct input, initial potential theta/2,
membrane read-out and the pipelined window (``snn2hw.snn.options.Conversion``); per-channel
scales and bias calibration are the calibration's and are left off. Every row is one
calibration and one evaluation run at the largest T; smaller T come from the same causal
run. For the pipelined window the table gives the latency (T + depth) beside each figure.

    .venv/bin/python benchmarks/conversion_options.py MODEL.onnx --data digits \\
        --method max-act --reset subtract --percentile 99.9 --timesteps 8,16,32,64
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

OPTIONS = {"direct": {"coding": "direct"}, "v_init": {"v_init": 0.5},
           "membrane": {"readout": "membrane"}, "pipelined": {"window": "pipelined"}}


def configurations() -> list[tuple[str, dict]]:
    everything = {k: v for opt in OPTIONS.values() for k, v in opt.items()}
    rows = [("paper (fill window, Poisson, v0 = 0, spike count)", {})]
    rows += [(f"+ {name}", opt) for name, opt in OPTIONS.items()]
    rows.append(("all four", everything))
    for name, opt in OPTIONS.items():
        rows.append((f"all but {name}", {k: v for k, v in everything.items() if k not in opt}))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--data", default="digits")
    ap.add_argument("--method", default="max-act", choices=["max-act", "spike-norm"])
    ap.add_argument("--reset", default="subtract")
    ap.add_argument("--percentile", type=float, default=99.9)
    ap.add_argument("--samples", type=int, default=200, help="calibration samples")
    ap.add_argument("--eval-samples", type=int, default=300)
    ap.add_argument("--timesteps", default="8,16,32,64")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from snn2hw import data, snn
    from snn2hw.calibrate import calibrate
    from snn2hw.onnx import import_onnx
    from snn2hw.snn.options import Conversion
    from snn2hw.steps.evaluate import evaluate, load_data
    from snn2hw.steps.options import DataOptions
    from snn2hw.steps.settings import preprocess_for

    steps = sorted(int(t) for t in args.timesteps.split(","))
    graph = import_onnx(args.model)
    dataset = load_data(graph, args.data, preprocess_for(graph, DataOptions()))
    net = snn.lower(graph)
    x_cal = data.calibration_set(dataset, args.samples)
    x_ev, y_ev = data.take(dataset.x_test, dataset.y_test, args.eval_samples, "evaluation")
    print(f"{args.model}: {args.method}, reset {args.reset}, p{args.percentile:g}, "
          f"{args.samples} calibration / {len(x_ev)} test samples, seed {args.seed}, "
          f"depth {net.depth}")
    head = ["configuration"] + [f"T={t}" for t in steps]
    rows = []
    for label, opts in configurations():
        conv = replace(Conversion(), **opts)
        cal = calibrate(args.method, net, x_cal, timesteps=max(steps), seed=args.seed,
                        reset=args.reset, percentile=args.percentile, conversion=conv)
        ev = evaluate(graph, net, cal.scales, x_ev, y_ev, steps, args.seed,
                      source_scales=cal.source_scales, reset=args.reset, conversion=conv,
                      label=label)
        cells = [f"{100 * ev.snn_accuracy[t]:.2f} %"
                 + (f" ({ev.latency[t]})" if ev.latency else "") for t in steps]
        rows.append([label] + cells)
        ann = ev.ann_accuracy
    from snn2hw.cli.tables import table

    print(table(head, rows))
    print(f"ANN accuracy {100 * ann:.2f} %; (n): latency in steps, pipelined window")


if __name__ == "__main__":
    main()
