"""Which quantisation costs the ``fast`` preset's fixed-point export its accuracy: the float
simulator run on networks where exactly ONE quantity is replaced by what the ``loihi_sim``
export uses, dequantised back to float, then all of them together, then the fixed-point
simulator itself.

    .venv/bin/python benchmarks/fixed_point_sources.py /work/models/deep/vgg16.onnx \\
        --data digits [--samples 128] [--calib-timesteps 64] [--timesteps 32] \\
        [--methods max-act,spike-norm] [--per-layer] [--seed 0] [--threads 1]

The calibration, test images, encoders and streams are those of
``benchmarks/low_latency.py --parts fixed`` (its ``Context`` and ``fixed_and_lava``), so the
``float SNN`` and ``fixed point`` rows reproduce its figures. Rows (each a float64 run of
the folded float graph of :func:`snn2hw.quantize.quantizer.float_network`, threshold 1):

- ``folded float``: nothing replaced (checks the folded float64 graph against the float SNN);
- ``weights``: every weight = its exported integer / the layer's integer threshold theta
  (input synapses: times the input's levels, as one input level is 1/127 of a unit);
- ``input``: the input rounded to 127 levels (the integer the fixed-point input sends);
- ``bias``: every bias = (mantissa << exponent) / (theta << current_shift);
- ``thresholds`` need no row: the exported threshold is theta itself, the scale the weights
  and biases were multiplied by, so it is exact (v_init 0.5 * theta << 6 is an integer);
- ``all``: weights, input and bias together; what is left against ``fixed point`` is the
  integer arithmetic (v clipping at the state bits; no u rounding with du = 4095).

Then the pairs, and two rows that split the weights at the layers whose theta is below
``COARSE`` (the fully connected layers of the VGG-16). ``--per-layer`` adds one ``weights``
row per layer (only that layer's weights replaced); ``--images train-rest`` evaluates on the
training images after the calibration ones (more images, for the float/fixed differences).
Per layer it also prints the weight rounding: theta, the error's RMS over the RMS of the
weights, and the smallest over output channels of the channel's largest |integer| (few
levels mean a coarse channel).

Measured (VGG-16, ``--data digits``, 450 test images, T = 32, the ``fast`` preset with
spike counts, before the calibration floored per-channel factors): max-act float 98.22 %,
fixed 97.33 % (4 decisions differ, all float right); the weights of the two dense hidden
layers alone (theta 9 and 12: one neuron with a factor of 1/267 takes the whole weight
range) 97.78 (4), all but those 98.22 (0); ``--factor-floor 0.0625`` gave thetas 147 and
134 and fixed = float. That floor is now :data:`snn2hw.calibrate.channels.FACTOR_FLOOR`;
with it and the membrane read-out (README, "Fixed point and Lava"): max-act 0 decisions
differ in every row; Spike-Norm float 98.67 %, weights 5 differ (4 float right), input 4
(3), bias 2 (1), all 5 (= fixed, 98.00 %). On the Fashion VGG (10,000 test images,
Spike-Norm) the input's 127 levels alone move 65 decisions, 41 of them to the right class.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("TQDM_DISABLE", "1")

import low_latency as ll  # noqa: E402
import low_latency_runs as runs  # noqa: E402

COARSE = 64  # layers whose integer threshold is below this get rows of their own


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--data", default="digits")
    p.add_argument("--samples", type=int, default=128)
    p.add_argument("--calib-timesteps", type=int, default=64)
    p.add_argument("--timesteps", type=int, default=32)
    p.add_argument("--methods", default="max-act")
    p.add_argument("--per-layer", action="store_true")
    p.add_argument("--images", choices=("test", "train-rest"), default="test",
                   help="train-rest: the training images after the calibration ones")
    p.add_argument("--factor-floor", type=float, action="append", default=[],
                   help="also run float and fixed with every per-channel factor raised to "
                        "at least this (an experiment, repeatable)")
    p.add_argument("--floors-only", action="store_true",
                   help="of the source rows, only the fixed point's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def _dequantised(qf, qi, weights=False, bias=False, levels=False, only: set[str] | None = None):
    """``qf`` (the float graph) with the chosen quantities taken from ``qi`` (the export);
    ``only``: replace the weights of those layers alone."""
    n_levels = int(qi.input_levels)
    layers = []
    for lf, li in zip(qf.layers, qi.layers):
        theta = float(li.scale)  # the weights' scale (the membrane output's threshold is larger)
        syns = []
        for sf, si in zip(lf.synapses, li.synapses):
            is_input = sf.source == qf.input
            if weights and (only is None or lf.name in only):
                per = 1.0 if (levels and is_input) else (n_levels if is_input else 1.0)
                s = si.with_values(si.values().astype(np.float64) * per / theta)
            else:
                s = sf.with_values(sf.values() / n_levels) if (levels and is_input) else sf
            syns.append(s)
        b = lf.bias_mant
        if bias and li.bias_mant is not None:
            b = li.bias_v().astype(np.float64) / (theta * (1 << qi.current_shift))
        layers.append(replace(lf, synapses=syns, bias_mant=b))
    return replace(qf, layers=layers, input_levels=n_levels if levels else 0)


def _rounding(qf, qi) -> list[str]:
    """Per layer: theta, relative RMS weight error, fewest levels any output channel uses."""
    lines = []
    for lf, li in zip(qf.layers, qi.layers):
        theta, errs, refs, low, tops = float(li.scale), [], [], np.inf, 0.0
        for sf, si in zip(lf.synapses, li.synapses):
            per = qi.input_levels if sf.source == qf.input else 1
            if sf.is_conv:  # same kernel layout (a conv is never pruned)
                w = sf.weight.reshape(sf.weight.shape[0], -1).astype(np.float64)
                ints = np.abs(si.weight.reshape(si.weight.shape[0], -1)).astype(np.int64)
                q = si.weight.reshape(w.shape).astype(np.float64) * per / theta
                errs.append(float(((q - w) ** 2).sum()))
                chan = ints.max(axis=1)
                tops = np.maximum(tops, np.abs(w).max(axis=1))
            else:
                w = sf.matrix(np.float64)
                d = si.matrix(np.float64) * (per / theta) - w
                errs.append(float(d.multiply(d).sum()))
                chan = np.asarray(abs(si.matrix(np.float64)).max(axis=1).todense()).ravel()
                tops = np.maximum(tops, np.asarray(abs(w).max(axis=1).todense()).ravel())
                w = w.data
            refs.append(float((np.asarray(w) ** 2).sum()))
            low = min(low, int(chan[chan > 0].min(initial=10 ** 9)))
        rel = np.sqrt(sum(errs) / max(sum(refs), 1e-300))
        lines.append(f"    {lf.name:12s} theta {int(theta):6d} ({li.report['limited_by']}); "
                     f"weight RMS error {100 * rel:.2f} %; fewest levels of a neuron's "
                     f"largest weight {low}; bias exp {li.bias_exp}; a neuron's largest |w| "
                     f"(thresholds): max {np.max(tops):.3g}, median {np.median(tops):.3g}")
    return lines


def _predict(prep, enc, t: int) -> np.ndarray:
    from snn2hw.snn import simulate

    return simulate.simulate(prep, enc, t).predictions(t)[0]


def _images(ctx, args):
    """(x, y, T): the test split, or the training images the calibration did not use."""
    if args.images == "test":
        return ctx.x, ctx.y, args.timesteps
    from snn2hw.data.samples import materialize
    from snn2hw.steps.evaluate import load_data

    ds = load_data(ctx.graph, args.data, ctx.preprocess)
    return (materialize(ds.x_train[args.samples:]), np.asarray(ds.y_train[args.samples:]),
            args.timesteps)


def _floored(cal, floor: float):
    """``cal`` with every per-channel factor k raised to ``floor`` (channel c then fires at
    a rate k / max(k, floor) of its own; the layer keeps its one scale), its bias offset
    moved to the new units (an offset in folded units scales by k / max(k, floor))."""
    facs = {n: np.maximum(k, floor) for n, k in (cal.channel_factors or {}).items()}
    offs = {n: o * (cal.channel_factors[n] / facs[n] if n in facs else 1.0)
            for n, o in (cal.bias_offsets or {}).items()}
    return replace(cal, channel_factors=facs, bias_offsets=offs or None)


def _floor_rows(ctx, args, cal, conv, profile, ref, x, y) -> None:
    """Float and fixed point with the factors floored, against the unfloored float SNN."""
    from snn2hw.quantize import quantize
    from snn2hw.quantize.fixed import input_encoder
    from snn2hw.snn import simulate
    from snn2hw.snn.encoders import make_encoder
    from snn2hw.steps.evaluate import prepare_network
    from snn2hw.steps.settings import EVALUATION_STREAM

    if args.factor_floor:
        print("  smallest per-channel factor per layer: " + " ".join(
            f"{float(np.min(k)):.3g}" for k in (cal.channel_factors or {}).values()))
    for floor in args.factor_floor:
        c2 = _floored(cal, floor)
        net = runs.network(ctx, c2)
        qi = quantize(net, c2.scales, profile, c2.source_scales, c2.reset, conversion=conv,
                      rates=c2.source_rates)
        thetas = " ".join(str(la.threshold) for la in qi.layers)
        print(f"  factor floor {floor:g}: thetas {thetas}", flush=True)
        fl = _predict(simulate.prepare_float(net, c2.scales, "cpu", reset=qi.reset,
                                             source_scales=c2.source_scales, conversion=conv),
                      make_encoder(conv.coding, x, input_scale=c2.scales[net.input],
                                   seed=args.seed, stream=EVALUATION_STREAM), args.timesteps)
        fx = _predict(prepare_network(qi, "cpu"),
                      input_encoder(qi, x, args.seed, EVALUATION_STREAM), args.timesteps)
        for label, pred, base in (("float", fl, ref), ("fixed", fx, ref), ("fixed", fx, fl)):
            d = pred != base
            print(f"    {label} {100 * float((pred == y).mean()):6.2f} %; differ from "
                  f"{'float SNN' if base is ref else 'floored float'} on {int(d.sum())} "
                  f"(that right {int((d & (base == y)).sum())}, this right "
                  f"{int((d & (pred == y)).sum())})", flush=True)


def run_method(ctx, args, method: str) -> None:
    from snn2hw.hardware import profiles
    from snn2hw.quantize import quantize
    from snn2hw.quantize.fixed import input_encoder
    from snn2hw.quantize.quantizer import float_network
    from snn2hw.snn import simulate
    from snn2hw.snn.encoders import make_encoder
    from snn2hw.steps.evaluate import prepare_network
    from snn2hw.steps.settings import EVALUATION_STREAM, conversion_of

    profile = profiles.load("loihi_sim")
    opts = runs.options(ctx, ctx.fast, method, args.seed)
    cal = runs.calibrated(ctx, ctx.fast, method, args.seed)
    conv = conversion_of(opts)
    net = runs.network(ctx, cal)
    qi = quantize(net, cal.scales, profile, cal.source_scales, cal.reset, conversion=conv,
                  rates=cal.source_rates)
    qf = float_network(net, cal.scales, profile.name, cal.source_scales, cal.reset, conv)
    x, y, t = _images(ctx, args)
    ref = _predict(simulate.prepare_float(net, cal.scales, "cpu", source_scales=cal.source_scales,
                                          reset=qi.reset, conversion=conv),
                   make_encoder(conv.coding, x, input_scale=cal.scales[net.input],
                                seed=args.seed, stream=EVALUATION_STREAM), t)
    print(f"{method}, T = {t}, {len(y)} {args.images} images; weight rounding per layer:")
    print("\n".join(_rounding(qf, qi)), flush=True)

    def row(label: str, q) -> None:
        pred = _predict(prepare_network(q, "cpu"),
                        input_encoder(q, x, args.seed, EVALUATION_STREAM), t)
        differ = pred != ref
        print(f"  {label:28s} {100 * float((pred == y).mean()):6.2f} %; differ from float "
              f"SNN on {int(differ.sum()):2d} (float right {int((differ & (ref == y)).sum())}"
              f", this right {int((differ & (pred == y)).sum())})", flush=True)

    print(f"  {'float SNN':28s} {100 * float((ref == y).mean()):6.2f} %", flush=True)
    if not args.floors_only:
        row("folded float (float64)", qf)
        row("weights", _dequantised(qf, qi, weights=True))
        row("input (127 levels)", _dequantised(qf, qi, levels=True))
        row("bias", _dequantised(qf, qi, bias=True))
        row("weights + input", _dequantised(qf, qi, weights=True, levels=True))
        row("weights + bias", _dequantised(qf, qi, weights=True, bias=True))
        row("input + bias", _dequantised(qf, qi, bias=True, levels=True))
        row("all (dequantised)", _dequantised(qf, qi, weights=True, bias=True, levels=True))
        row("fixed point (integer)", qi)
        coarse = {la.name for la in qi.layers if la.threshold < COARSE}
        row(f"weights of layers theta < {COARSE}",
            _dequantised(qf, qi, weights=True, only=coarse))
        row(f"all but weights theta < {COARSE}",
            _dequantised(qf, qi, weights=True, bias=True, levels=True,
                         only={la.name for la in qi.layers} - coarse))
    else:
        row("fixed point (integer)", qi)
    _floor_rows(ctx, args, cal, conv, profile, ref, x, y)
    if args.per_layer:
        for la in qf.layers:
            row(f"weights of {la.name} only", _dequantised(qf, qi, weights=True, only={la.name}))

def main(argv=None) -> int:
    args = parse(argv)
    import torch

    torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",")]
    largs = ll.parse([str(args.model), "--data", args.data, "--samples", str(args.samples),
                      "--calib-timesteps", str(args.calib_timesteps),
                      "--timesteps", str(args.timesteps), "--methods", ",".join(methods),
                      "--seed", str(args.seed), "--threads", str(args.threads)])
    ctx = runs.Context.load(largs)
    print(ctx.header(), flush=True)
    for method in methods:
        run_method(ctx, args, method)
    return 0


if __name__ == "__main__":
    sys.exit(main())
