"""snn2hw side by side with SpikingJelly and sinabs on the same trained ANN: accuracy
against T under both time conventions, and simulation throughput.

    .venv/bin/python benchmarks/peers.py [--model deep-digits|fashion]
        [--timesteps 16,32,64,128,256] [--samples N] [--seed 0]
        [--configs paper,best,fast|none] [--peers spikingjelly,sinabs|none]
        [--calib-samples 256] [--calib-timesteps 256] [--speed-samples 120]
        [--speed-batch 60] [--speed-rounds 2] [--no-speed | --speed-only] [--threads 2]
        [--json out.json]

The ANN is trained by its example's own code and seed and cached where the example keeps
it (``benchmarks/peers_models.py``: ``deep-digits`` = VGG-16 of examples/deep_digits.py,
``fashion`` = VGG of examples/fashion.py). The peers get it rebuilt as a torch module from
the same ONNX file (outputs checked against snn2hw's ANN). Everything is calibrated on the
first ``--calib-samples`` training images and evaluated on the first ``--samples`` test
images; nothing is chosen on the test split.

Rows (each from one causal run of the largest T it needs):
- SpikingJelly ann2snn (``benchmarks/peers_spikingjelly.py``): 99.9 % percentile scales,
  analog input every step, soft reset, the last layer's summed analog output read out
  (run in its multi-step mode, which gives the single-step sums up to float rounding).
- sinabs (``benchmarks/peers_sinabs.py``): ``normalize_weights`` at p99.99 and
  ``from_model``, signed Poisson input (snn2hw's encoder, the same spikes as ours), IAF
  with its defaults (multi-spike, subtract), output spike counts.
- snn2hw, one row pair per configuration of ``benchmarks/peers_ours.py``: ``paper``
  (spike-norm, reset zero, p100), ``best`` (max-act, reset subtract, p99.9), ``fast``
  (issue 12's preset, skipped with the reason until snn2hw has it).

Columns T (``benchmarks/peers_table.py`` has the derivation): ``peer T``: the peer
simulates T steps, all layers in the same step. ``pipelined window T``: ours, every layer
integrates T steps (snn2hw's ``window="pipelined"``; read-out after T + depth steps):
compare with the peer at the same T. ``fill T``: ours, T total steps including the
pipeline fill (``window="fill"``, the default; the output layer, ``depth`` hops from the
input, integrates T - depth steps): compare with the peer at T - depth. For our
feed-forward nets, pipelined T is exactly fill T + depth of the same run, so one run
gives both rows.

Throughput: image*steps/s of each simulator on the same network, the same
``--speed-samples`` test images, the same T (the largest) and batch, with
``torch.set_num_threads(--threads)``: ours float and fixed-point (``loihi_sim``, the
bit-accurate reference), SpikingJelly single-step and multi-step, sinabs, in
``--speed-rounds`` interleaved rounds (each simulator's best round is its figure), then the
ratios, the load average before and after, and ours as a percentage of the dense limit
(``benchmarks/peers_speed.py``). Ours and sinabs draw their Poisson spikes inside the
timing; SpikingJelly's input is analog. Wall-clock on whatever else the machine runs.

A peer that is not installed is skipped with the command that installs it (``make
peers``). Errors: one ``error:`` line and a non-zero exit (2 for input errors).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("TQDM_DISABLE", "1")  # SpikingJelly's calibration progress bars

import peers_install  # noqa: E402
import peers_models  # noqa: E402
import peers_ours  # noqa: E402
import peers_table as pt  # noqa: E402

def _csv(choices):
    def parse(text: str) -> list[str]:
        if text.strip() == "none":
            return []
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in choices]
        if not values or bad:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)} or none; "
                                             f"got {text!r}")
        return values
    return parse


def _timesteps(text: str) -> list[int]:
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"time steps must be positive, got {text!r}")
    return values


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=peers_models.MODELS, default="deep-digits")
    p.add_argument("--timesteps", type=_timesteps, default=[16, 32, 64, 128, 256])
    p.add_argument("--samples", type=int, default=None, help="test images (default: "
                   + ", ".join(f"{k} {v.samples}" for k, v in peers_models.MODELS.items())
                   + ")")
    p.add_argument("--seed", type=int, default=0, help="training, Poisson and calibration "
                   "seed (default 0)")
    p.add_argument("--configs", type=_csv(peers_ours.CONFIGS), default=["paper", "best",
                                                                         "fast"])
    p.add_argument("--peers", type=_csv(peers_install.PEERS), default=list(peers_install.PEERS))
    p.add_argument("--calib-samples", type=int, default=256)
    p.add_argument("--calib-timesteps", type=int, default=256,
                   help="Spike-Norm's calibration window (default 256)")
    p.add_argument("--speed-samples", type=int, default=120)
    p.add_argument("--speed-batch", type=int, default=60)
    p.add_argument("--speed-rounds", type=int, default=2,
                   help="interleaved timing rounds; each simulator's best counts (default 2)")
    p.add_argument("--no-speed", action="store_true", help="accuracy only")
    p.add_argument("--speed-only", action="store_true",
                   help="throughput only (convert, but no accuracy runs)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workdir", type=Path, default=None,
                   help="where the trained model is kept (default: the example's)")
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = p.parse_args(argv)
    for name in ("calib_samples", "calib_timesteps", "speed_samples", "speed_batch",
                 "speed_rounds", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.no_speed and args.speed_only:
        p.error("--no-speed and --speed-only exclude each other")
    if args.samples is not None and args.samples < 1:
        p.error("--samples must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    from snn2hw.errors import Snn2hwError

    try:
        return _run(args)
    except Snn2hwError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    import torch

    import peers_run

    torch.set_num_threads(args.threads)
    path = peers_models.train_or_reuse(args.model, args.seed, args.threads, args.workdir)
    ctx = peers_run.Context.load(args, path)
    print(f"{args.model}: {path}, {len(ctx.x)} test images, calibration on "
          f"{len(ctx.x_cal)} training images, seed {args.seed}, torch threads "
          f"{torch.get_num_threads()}", flush=True)
    report = peers_run.accuracy(ctx, args, simulate=not args.speed_only)
    if not args.no_speed:
        report.speed = peers_run.speed(ctx, args)
    print("\n" + pt.render(report))
    if args.json:
        from snn2hw.fileio import write_text

        write_text(args.json, json.dumps(report.as_dict(), indent=1) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
