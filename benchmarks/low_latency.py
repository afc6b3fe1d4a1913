"""Issue 12's low-latency targets, measured on one trained ANN: the ``fast`` preset chosen on
a validation split, accuracy against T (paper, fast, the ablation), fixed point against
float, Lava against the reference, and SpikingJelly on the same ANN in the same run.

    .venv/bin/python benchmarks/low_latency.py build/deep/vgg16.onnx --data digits \\
        [--timesteps 16,32,64,128,256] [--choose-timesteps 32,64] \\
        [--methods max-act,spike-norm] [--samples 128] [--calib-timesteps 64] \\
        [--val-samples 200] [--eval-samples N] [--lava-samples 5] \\
        [--percentiles 99.9,99.99,99.999] [--candidates 'fast;fast - coding'] \\
        [--parts choose,table,fixed,lava,peers,ablation] [--set KEY=VALUE ...] \\
        [--seed 0] [-o out.json]

(a) ``choose``: the candidates of ``low_latency_plan.candidates`` (``fast``, ``fast`` with
    one option removed or one it leaves out added, ``fast`` at each percentile of
    ``--percentiles``; ``--candidates`` keeps only the labels given) are calibrated on the
    first ``--samples`` training images and scored on the LAST ``--val-samples`` training
    images (disjoint; never the test split; use a model trained without them, e.g.
    ``examples/deep_digits.py --train-samples``) at ``--choose-timesteps``; the best mean
    over the methods at the first of them wins (ties: the next T, then the current
    preset). ``benchmarks/choose_across.py`` applies the rule across networks.
(b) ``table`` and ``ablation``: on the test split (``--eval-samples``, default the whole
    split), accuracy at every T for the paper's configuration (``--preset paper``,
    unchanged) and ``fast`` (``table``), and the ablation (``ablation``: ``fast``, or the
    validation's choice when ``choose`` ran, with one option back at the paper's value or
    one it leaves out added, after a ``fast`` row of its own when ``table`` does not run),
    each with every method;
    one calibration and one causal run at the largest T per row.
(c) ``fixed``: ``fast`` quantised for ``loihi_sim`` against the float SNN at T = 32 on the
    same input (the export step's comparison), on the test split or, with ``--fixed-on
    validation``, on the validation images.
(d) ``lava``: each method's export run on Lava and on the reference simulator,
    ``--lava-samples`` test images at T = 32, compared spike for spike (the run step).
(e) ``peers``: SpikingJelly ann2snn (``benchmarks/peers_spikingjelly.py``, 99.9 %, analog
    input, soft reset) on the same ANN at ``--timesteps``; skipped with the reason when it
    is not installed (``make peers``) or the ANN is not a plain chain.

``--set KEY=VALUE`` changes a setting of ``fast`` for every part (a diagnostic: e.g.
fixed point without per-channel scales, ``--parts fixed --set per_channel=false``).

Time conventions: rows with ``window = pipelined`` count T as the window every layer
integrates (the result is there after T + depth steps: the latency, printed); rows with
``window = fill`` count every step from the first input (the paper's). SpikingJelly has no
hop delay: its T compares with the pipelined T.

Spike-Norm calibrates at ``--calib-timesteps`` (default the largest T). Calibration uses the
calibration stream of ``--seed``, evaluation the evaluation stream: same command, same
numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("TQDM_DISABLE", "1")

import low_latency_plan as plan  # noqa: E402
import low_latency_runs as runs  # noqa: E402


def _ints(text: str) -> list[int]:
    values = sorted({int(v) for v in text.split(",") if v.strip()})
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"positive integers expected, got {text!r}")
    return values


def _names(choices):
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)}; got {bad}")
        return values
    return parse


def _setting(text: str) -> tuple[str, object]:
    try:
        return plan.setting(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


PARTS = ("choose", "table", "fixed", "lava", "peers", "ablation")


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--data", default="digits")
    p.add_argument("--timesteps", type=_ints, default=[16, 32, 64, 128, 256])
    p.add_argument("--choose-timesteps", type=_ints, default=[32, 64])
    p.add_argument("--methods", type=_names(("max-act", "spike-norm")),
                   default=["max-act", "spike-norm"])
    p.add_argument("--samples", type=int, default=128, help="calibration images (train)")
    p.add_argument("--calib-timesteps", type=int, default=None,
                   help="Spike-Norm's window (default: the largest T)")
    p.add_argument("--val-samples", type=int, default=200)
    p.add_argument("--candidates", type=lambda t: [v.strip() for v in t.split(";")],
                   default=None, help="compare only these candidates on validation "
                   "(labels as printed, separated by ';', e.g. 'fast;fast - coding')")
    p.add_argument("--percentiles", type=lambda t: tuple(float(v) for v in t.split(",")),
                   default=None, help="the percentile alternatives tried on validation "
                   "(default: " + ",".join(f"{v:g}" for v in plan.ALTERNATIVES["percentile"])
                   + ")")
    p.add_argument("--eval-samples", type=int, default=None)
    p.add_argument("--lava-samples", type=int, default=5)
    p.add_argument("--fixed-timesteps", type=int, default=32)
    p.add_argument("--fixed-on", choices=("test", "validation"), default="test",
                   help="the images of the fixed part: the test split, or the validation "
                   "images of --val-samples (to judge an export option without the test "
                   "split)")
    p.add_argument("--parts", type=_names(PARTS), default=list(PARTS))
    p.add_argument("--set", dest="overrides", type=_setting, action="append", default=[],
                   metavar="KEY=VALUE", help="change a setting of fast for every part "
                   "(a diagnostic, e.g. per_channel=false); repeatable")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("-o", "--output", type=Path, default=None)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    if args.percentiles:
        plan.ALTERNATIVES["percentile"] = args.percentiles
    from snn2hw.errors import Snn2hwError

    try:
        report = run(args)
    except Snn2hwError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    if args.output:
        from snn2hw.fileio import write_text

        write_text(args.output, json.dumps(report, indent=1, default=str) + "\n")
        print(f"wrote {args.output}")
    return 0


def _save(args, report: dict) -> None:
    """Write what is measured so far (a long run keeps its finished parts)."""
    if args.output:
        from snn2hw.fileio import write_text

        write_text(args.output, json.dumps(report, indent=1, default=str) + "\n")


def _guarded(part, *a):
    """A part that fails is reported (its error in the JSON) and the next parts still run."""
    try:
        return part(*a)
    except Exception as exc:  # noqa: BLE001 - a benchmark part, reported and recorded
        print(f"  {part.__name__} failed: {type(exc).__name__}: {exc}", flush=True)
        return {"error": f"{type(exc).__name__}: {exc}"}


def _rows(ctx, args, report: dict, rows: list) -> None:
    for label, kind, settings in rows:
        for method in args.methods:
            report["table"].append(runs.test_row(ctx, args, label, kind, settings, method))
            _save(args, report)


def run(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    ctx = runs.Context.load(args)
    fast = ctx.fast
    print(ctx.header(), flush=True)
    report = {"model": str(args.model), "data": args.data, "seed": args.seed,
              "depth": ctx.net.depth, "calibration_samples": len(ctx.x_cal),
              "calibration_timesteps": ctx.calib_timesteps,
              "validation_samples": len(ctx.x_val), "test_samples": len(ctx.x),
              "ann_test_accuracy": ctx.ann_test, "ann_validation_accuracy": ctx.ann_val,
              "fast_preset": fast, "unsupported": ctx.unsupported}
    # Cheapest and most decisive first, so that a run cut short keeps the targets' figures:
    # fast and paper on the test split, fixed point, Lava, the peer, then the validation
    # choice and the ablation.
    report["table"] = []
    if "table" in args.parts:
        _rows(ctx, args, report, [("fast", "fast", fast), ("paper", "paper", dict(plan.PAPER))])
    if "fixed" in args.parts or "lava" in args.parts:
        report["fixed"] = _guarded(runs.fixed_and_lava, ctx, args, fast, "fixed" in args.parts,
                                   "lava" in args.parts)
        _save(args, report)
    if "peers" in args.parts:
        report["peers"] = _guarded(runs.peers, ctx, args)
        _save(args, report)
    if "choose" in args.parts:
        report["choice"] = runs.choose(ctx, args)
        _save(args, report)
        if report["choice"]["changed"]:
            print("the validation choice differs from the preset: the rows above are the "
                  "preset's; the ablation below is around the choice")
        fast = report["choice"]["settings"]
    if "ablation" in args.parts:
        head = [] if "table" in args.parts else [("fast", "ablation", fast)]
        _rows(ctx, args, report, head + [(label, "ablation", s)
                                         for label, s in plan.ablation(fast)])
    if report["table"]:
        print("\n" + runs.render_table(ctx, report["table"], args.timesteps))
    report["seconds"] = round(time.monotonic() - ctx.started, 1)
    return report


if __name__ == "__main__":
    sys.exit(main())
