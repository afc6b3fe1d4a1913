"""The throughput part of ``benchmarks/peers.py``: every simulator on the same images, T,
batch and torch threads, in interleaved rounds (A, B, C, A, B, C, ...) so that a load that
comes and goes on a shared machine touches all of them alike; the figures are each
simulator's best round, and the ratios are taken between those.

Also printed: the load average before and after, and the *dense limit*: image*steps/s of
the float network's synapse products alone (every layer's convolutions and matrix products
on dense inputs of the simulation's own batch x time-chunk shapes, nothing else), the most
the float simulator can reach without computing fewer or cheaper products; it is timed in
the same rounds, for the same images and steps, and ours are given as a fraction of it.
Ratios are taken within each round (the same load moment); their median and range are
printed.
"""
from __future__ import annotations

import os
import time

import numpy as np

import peers_ours
import peers_table as pt
from snn2hw.snn import simulate
from snn2hw.snn.encoders import make_encoder
from snn2hw.steps.settings import EVALUATION_STREAM

WARMUP_STEPS = 8  # one short run per simulator first: kernels chosen, buffers allocated
DENSE = "dense limit: snn2hw float's synapse products alone"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def runners(ctx, args, x: np.ndarray, input_scale: float) -> list[tuple[str, object]]:
    """(label, run(steps) -> seconds) for every simulator that is available."""
    batch, seed, out = args.speed_batch, args.seed, []
    ours = [k for k in ctx.converted if k.startswith("ours:")]
    if ours:
        name = "ours:best" if "ours:best" in ours else ours[0]
        cal = ctx.converted[name]
        out.append((DENSE, dense_limit(peers_ours.float_prepared(ctx.net, cal), len(x), batch,
                                       max(args.timesteps))))
        for label, prep in (("float", peers_ours.float_prepared(ctx.net, cal)),
                            ("fixed-point loihi_sim", peers_ours.fixed_prepared(ctx.net, cal))):
            out.append((f"snn2hw {label} ({name[5:]})", lambda steps, prep=prep, cal=cal:
                        peers_ours.throughput(prep, ctx.net, cal, x, steps, batch, seed)))
    if "spikingjelly" in ctx.converted:
        import peers_spikingjelly as sj

        model = ctx.converted["spikingjelly"]
        for mode, label in (("s", "single-step"), ("m", "multi-step")):
            out.append((f"SpikingJelly {label}", lambda steps, mode=mode:
                        sj.throughput(model, x, steps, batch, mode)))
    if "sinabs" in ctx.converted:
        import peers_sinabs

        def sinabs_run(steps: int) -> float:
            enc = make_encoder("poisson", x, input_scale=input_scale, seed=seed,
                               stream=EVALUATION_STREAM)
            return peers_sinabs.throughput(ctx.converted["sinabs"], enc, steps, batch)

        out.append(("sinabs", sinabs_run))
    return out


def dense_limit(prep, images: int, batch: int, timesteps: int):
    """run(steps) -> seconds of ``prep``'s synapse products alone for ``images`` images of
    ``steps`` (the simulated steps of ``timesteps``' window), on dense 0/1 inputs of the
    simulation's batch x time-chunk shapes: the same products the simulation computes."""
    import torch

    extra = prep.run_steps(timesteps) - timesteps
    chunk = simulate.auto_time_chunk(prep, batch, prep.run_steps(timesteps), 256e6)
    gen = torch.Generator().manual_seed(0)
    inputs = {name: (torch.rand((chunk, batch, *prep.shape_of(name)), generator=gen) < 0.02)
              .to(prep.dtype) for name in [prep.input] + [la.name for la in prep.layers]}

    def run(steps: int) -> float:
        passes = -(-images // batch) * -(-(steps + extra) // chunk)
        start = time.perf_counter()
        with torch.no_grad():
            for _ in range(passes):
                for layer in prep.layers:
                    simulate.layer_current(layer, [inputs[s.source] for s in layer.synapses])
        return time.perf_counter() - start

    return run


def speed(ctx, args, input_scale: float) -> list[dict]:
    """Throughput of every simulator, ``args.speed_rounds`` interleaved rounds; prints each
    round, then each one's best round and the ratios."""
    t, batch = max(args.timesteps), args.speed_batch
    x = ctx.x[:args.speed_samples]
    n, todo = len(x), runners(ctx, args, x, input_scale)
    print(f"load average before: {load()}", flush=True)
    for _, run in todo:
        run(min(WARMUP_STEPS, t))
    seconds: dict[str, list[float]] = {label: [] for label, _ in todo}
    for r in range(args.speed_rounds):
        for label, run in todo:
            seconds[label].append(run(t))
            print(f"round {r + 1}: {label}: {n * t / seconds[label][-1]:,.0f} image*steps/s",
                  flush=True)
    out = [{"simulator": label, "batch": batch, "images": n, "timesteps": t,
            "seconds": min(s), "rate": n * t / min(s), "rounds": s}
           for label, s in seconds.items()]
    for entry in out:
        print(pt.speed_line(entry), flush=True)
    print(f"load average after: {load()}", flush=True)
    for line in summary(out):
        print(line, flush=True)
    return out


def summary(out: list[dict]) -> list[str]:
    """Ratios of ours to the others and to the dense limit: in each round (the same load
    moment), then their median and range over the rounds."""
    rounds = {e["simulator"].split(" (")[0]: e["rounds"] for e in out}
    ours = [k for k in rounds if k.startswith("snn2hw")]
    sj = [k for k in rounds if k.startswith("SpikingJelly")]
    pairs = []
    if sj:
        best = {e["simulator"]: e["rate"] for e in out if e["simulator"].startswith("Spiking")}
        fastest = max(best, key=best.get)
        pairs += [(label, fastest, " (SpikingJelly's faster mode here)") for label in ours]
    if "sinabs" in rounds:
        pairs += [(label, "sinabs", "") for label in ours]
    if len(ours) == 2:
        pairs.append((ours[1], ours[0], ""))
    if DENSE.split(" (")[0] in rounds:
        pairs += [(label, DENSE.split(" (")[0], "") for label in ours]
    lines = []
    for a, b, note in pairs:
        ratios = [sb / sa for sa, sb in zip(rounds[a], rounds[b])]   # rate a / rate b
        lines.append(f"{a} / {b}{note}: {np.median(ratios):.2f}x (median of "
                     f"{len(ratios)} rounds; {min(ratios):.2f}-{max(ratios):.2f})")
    return lines
