"""`snn2hw calibrate` in one process against `torchrun` with N processes on this machine:
wall time of each, and whether every run's report and calibration file equal the
one-process run's byte for byte.

    .venv/bin/python benchmarks/distributed.py --model build/deep/vgg16.onnx
        [--nproc 2 4] [--threads-per-process 1] [--samples 256] [--timesteps 256]
        [--eval-samples 256] [--method spike-norm] [--device cpu] [--data digits]
        [-- EXTRA CALIBRATE OPTIONS]

The one-process run uses processes x threads threads, so that every configuration has the
same cores. Prints seconds, the speed-up over one process, and "identical" for each.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(launcher: list[str], common: list[str], out: Path, threads: int) -> float:
    env = os.environ | {"OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run(launcher + common + ["-o", f"{out}.h5", "--report", f"{out}.json"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(launcher)} failed:\n{done.stderr[-2000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--nproc", type=int, nargs="+", default=[2])
    p.add_argument("--threads-per-process", type=int, default=1)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--timesteps", type=int, default=256)
    p.add_argument("--eval-samples", type=int, default=256)
    p.add_argument("--method", default="spike-norm")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", default="digits")
    args = p.parse_args(argv)
    common = ["calibrate", args.model, "--data", args.data, "--method", args.method,
              "--samples", str(args.samples), "--timesteps", str(args.timesteps),
              "--eval-samples", str(args.eval_samples), "--device", args.device, *extra]
    print(f"{args.model}: {args.method}, {args.samples} samples, T = {args.timesteps}, "
          f"{args.eval_samples} evaluation images, device {args.device}")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "one"
        rows = []
        for nproc in args.nproc:
            threads = nproc * args.threads_per_process
            one = run([sys.executable, "-m", "snn2hw"], common, base, threads)
            out = Path(tmp) / f"ranks{nproc}"
            many = run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc-per-node", str(nproc), "-m", "snn2hw"], common, out,
                       args.threads_per_process)
            same = all(Path(f"{out}{ext}").read_bytes() == Path(f"{base}{ext}").read_bytes()
                       for ext in (".h5", ".json"))
            rows.append((nproc, threads, one, many, same))
            print(f"1 process x {threads} threads: {one:7.1f} s   {nproc} processes x "
                  f"{args.threads_per_process} thread(s): {many:7.1f} s   speed-up "
                  f"{one / many:4.2f}x   identical files: {same}")
    return 0 if all(r[4] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
