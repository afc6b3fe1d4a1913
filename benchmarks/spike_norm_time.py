"""Spike-Norm's calibration time against max-act's: the wall time of the whole command

    snn2hw calibrate MODEL --data DATA --method M --samples S --timesteps T
        [--eval-samples E] -o FILE

for M = max-act and M = spike-norm with the same samples, T and evaluation, each run in its
own process (import, calibration, the evaluation on the test split, the report, the file),
interleaved (max-act, spike-norm, max-act, spike-norm, ...) so that a shared machine's load
falls on both alike. Prints every run, the median of each and the ratio.

    .venv/bin/python benchmarks/spike_norm_time.py --model build/deep/vgg16.onnx
        [--data digits] [--samples 256] [--timesteps 256] [--eval-samples N]
        [--repeats 2] [--threads 1] [--baseline DIR] [--breakdown] [-- EXTRA OPTIONS]

``--baseline DIR`` also times the same two commands with the ``snn2hw`` package of another
checkout (DIR, its repository root, e.g. an earlier commit's ``git archive``) in the same
interleaved run. ``--breakdown`` then times, in this process, the Spike-Norm calibration
step alone and the evaluation simulator alone, in image-steps per second: the extra time
of Spike-Norm is its layer-by-layer SNN run over the calibration samples, so without the
commands' common costs the ratio would be 1 + (S / E) x (the simulator's speed / the
layer-wise run's).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("max-act", "spike-norm")


def timed_command(args: list[str], out: Path, threads: int, code: str) -> float:
    """Seconds of ``snn2hw ARGS -o OUT`` with the package of the checkout ``code`` (run from
    there: ``python -m`` puts the working directory first on the path)."""
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "PYTHONPATH": code}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "snn2hw", *args, "-o", str(out)], cwd=code,
                          env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"error: snn2hw {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return seconds


def breakdown(args: argparse.Namespace) -> None:
    """The Spike-Norm calibration step and the evaluation, timed apart in this process."""
    import torch

    from snn2hw import data, snn
    from snn2hw.calibrate import calibrate
    from snn2hw.formats import import_model
    from snn2hw.steps.evaluate import evaluate, load_data
    from snn2hw.steps.options import DataOptions
    from snn2hw.steps.settings import preprocess_for

    torch.set_num_threads(args.threads)
    graph = import_model(args.model, "refuse")
    dataset = load_data(graph, args.data, preprocess_for(graph, DataOptions(args.data)))
    net = snn.lower(graph)
    x = data.calibration_set(dataset, args.samples)
    start = time.perf_counter()
    cal = calibrate("spike-norm", net, x, timesteps=args.timesteps, seed=0)
    calib = time.perf_counter() - start
    xe, ye = data.take(dataset.x_test, dataset.y_test, args.eval_samples, "evaluation")
    start = time.perf_counter()
    evaluate(graph, net, cal.scales, xe, ye, [args.timesteps], 0,
             source_scales=cal.source_scales)
    ev = time.perf_counter() - start
    sn_rate = len(x) * args.timesteps / calib
    ev_rate = len(xe) * args.timesteps / ev
    print(f"breakdown ({args.threads} thread(s)): Spike-Norm calibration step {calib:.1f} s "
          f"({len(x)} x {args.timesteps} = {sn_rate:,.0f} image*steps/s, layer by layer); "
          f"evaluation {ev:.1f} s ({len(xe)} x {args.timesteps} = {ev_rate:,.0f} "
          f"image*steps/s, the simulator)")
    print(f"  Spike-Norm step / evaluation = {calib / ev:.2f}: the ratio of the commands "
          f"without their common costs (import, data, ANN statistics, report) would be "
          f"{1 + calib / ev:.2f}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", default="digits")
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--timesteps", type=int, default=256)
    p.add_argument("--eval-samples", type=int, help="default: the whole test split")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--baseline", help="another checkout's root, timed in the same run")
    p.add_argument("--breakdown", action="store_true")
    args = p.parse_args(argv)
    common = ["--data", args.data, "--samples", str(args.samples), "--timesteps",
              str(args.timesteps), *extra]
    if args.eval_samples:
        common += ["--eval-samples", str(args.eval_samples)]
    args.model = str(Path(args.model).resolve())
    codes = [("this checkout", str(ROOT))]
    if args.baseline:
        codes.append(("baseline", str(Path(args.baseline).resolve())))
    print(f"snn2hw calibrate {args.model} {' '.join(common)}; {args.threads} thread(s); "
          f"load average {os.getloadavg()[0]:.1f}")
    for label, path in codes:
        where = subprocess.run([sys.executable, "-c", "import snn2hw; print(snn2hw.__file__)"],
                               cwd=path, env=os.environ | {"PYTHONPATH": path},
                               capture_output=True, text=True).stdout.strip()
        print(f"  {label}: {where}")
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for label, path in codes:
                for method in METHODS:
                    seconds = timed_command(["calibrate", args.model, "--method", method,
                                             *common], Path(tmp) / "c.h5", args.threads, path)
                    times.setdefault((label, method), []).append(seconds)
                    print(f"  run {repeat + 1} {label:>13} {method:>10}: {seconds:7.1f} s",
                          flush=True)
    for label, _ in codes:
        ma = statistics.median(times[(label, "max-act")])
        sn = statistics.median(times[(label, "spike-norm")])
        print(f"{label}: max-act {ma:.1f} s, spike-norm {sn:.1f} s (medians of "
              f"{args.repeats}); spike-norm / max-act = {sn / ma:.2f}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.breakdown:
        breakdown(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
