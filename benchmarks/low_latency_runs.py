"""The runs of ``benchmarks/low_latency.py``, through snn2hw's library steps (calibrate,
evaluate, quantize, the export's float-vs-fixed comparison, the run step on Lava) and the
SpikingJelly side of ``benchmarks/peers.py``."""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import low_latency_plan as plan
from snn2hw import ann, data, snn
from snn2hw.data.samples import materialize
from snn2hw.onnx import file_hash, import_onnx
from snn2hw.steps import presets
from snn2hw.steps.evaluate import compare_float_fixed, evaluate, load_data
from snn2hw.steps.options import CalibrationOptions, DataOptions, RunOptions
from snn2hw.steps.pipeline import run_calibration
from snn2hw.steps.settings import conversion_of, preprocess_for

SJ_PERCENTILE = 99.9   # benchmarks/peers_run.py's SpikingJelly setting


@dataclass
class Context:
    graph: object
    net: object
    preprocess: object
    x_cal: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x: np.ndarray
    y: np.ndarray
    calib_timesteps: int
    fast: dict
    unsupported: list[str]
    ann_test: float
    ann_val: float
    started: float
    cals: dict = field(default_factory=dict)

    @classmethod
    def load(cls, args: argparse.Namespace) -> "Context":
        started = time.monotonic()
        graph = import_onnx(args.model)
        pre = preprocess_for(graph, DataOptions(spec=args.data))
        ds = load_data(graph, args.data, pre)
        cal_idx, val_idx = plan.split_training(len(ds.x_train), args.samples, args.val_samples)
        x_cal = materialize(ds.x_train[cal_idx.start:cal_idx.stop])
        x_val = materialize(ds.x_train[val_idx.start:val_idx.stop])
        y_val = np.asarray(ds.y_train[val_idx.start:val_idx.stop])
        x, y = data.take(ds.x_test, ds.y_test, args.eval_samples, "evaluation")
        x, y = materialize(x), np.asarray(y)
        net = snn.lower(graph)
        unsupported = _unsupported(net, x_cal[:4])
        fast = {**plan.PAPER, **presets.preset("fast")}
        fast.update({k: plan.PAPER[k] for k in unsupported})
        fast.update(dict(args.overrides))
        acc = [float((ann.predict(graph, xs).argmax(1) == ys).mean())
               for xs, ys in ((x, y), (x_val, y_val))]
        return cls(graph, net, pre, x_cal, x_val, y_val, x, y,
                   args.calib_timesteps or max(args.timesteps), fast, unsupported,
                   acc[0], acc[1], started)

    def header(self) -> str:
        note = (f"; not in this snn2hw (measured without): {', '.join(self.unsupported)}"
                if self.unsupported else "")
        return (f"depth {self.net.depth}; ANN {100 * self.ann_test:.2f} % on {len(self.x)} "
                f"test images, {100 * self.ann_val:.2f} % on {len(self.x_val)} validation "
                f"images (the last of the training split); calibration: the first "
                f"{len(self.x_cal)} training images, Spike-Norm at T = "
                f"{self.calib_timesteps}{note}")


def _unsupported(net, x) -> list[str]:
    """The calibration options this snn2hw does not implement: those the steps refuse, or
    (an older snn2hw) those a tiny max-act calibration does not record."""
    from snn2hw.calibrate import calibrate
    from snn2hw.errors import InputError
    from snn2hw.snn.options import Conversion

    asked = {"per_channel": True, "bias_calibration": True}
    try:
        conversion_of(CalibrationOptions(conversion=asked))
    except InputError as exc:
        return [k for k in asked if k in exc.facts.get("options", ())]
    cal = calibrate("max-act", net, x, timesteps=8, seed=0,
                    conversion=Conversion(**asked), reset="subtract")
    return [k for k in asked if not cal.params.get(k)]


def options(ctx: Context, settings: dict, method: str, seed: int) -> CalibrationOptions:
    conv = {k: settings[k] for k in presets.CONVERSION_KEYS if k in settings}
    return CalibrationOptions(method=method, timesteps=ctx.calib_timesteps,
                              samples=len(ctx.x_cal), seed=seed, reset=settings["reset"],
                              percentile=float(settings["percentile"]), preset="paper",
                              conversion=conv)


def calibrated(ctx: Context, settings: dict, method: str, seed: int):
    """The calibration of (settings, method), made once per run."""
    key = (json.dumps(settings, sort_keys=True), method)
    if key not in ctx.cals:
        ctx.cals[key] = run_calibration(ctx.net, ctx.x_cal, options(ctx, settings, method,
                                                                     seed))
    return ctx.cals[key]


def network(ctx: Context, cal):
    """The spiking network a calibration thresholds: with its per-channel factors and bias
    offsets applied where this snn2hw has them (``calibrate.channels``)."""
    try:
        from snn2hw.calibrate.channels import calibrated_network
    except ImportError:
        return ctx.net
    return calibrated_network(ctx.net, cal)


def accuracy(ctx: Context, settings: dict, method: str, x, y, timesteps, seed: int):
    opts = options(ctx, settings, method, seed)
    cal = calibrated(ctx, settings, method, seed)
    ev = evaluate(ctx.graph, network(ctx, cal), cal.scales, x, y, list(timesteps), seed,
                  source_scales=cal.source_scales, reset=cal.reset,
                  conversion=conversion_of(opts))
    return ev, cal


def choose(ctx: Context, args: argparse.Namespace) -> dict:
    """(a): the candidates on the validation split; the winner's settings."""
    scores, rows = {}, []
    for label, settings in plan.candidates(ctx.fast, args.candidates):
        scores[label] = {}
        for method in args.methods:
            ev, _ = accuracy(ctx, settings, method, ctx.x_val, ctx.y_val,
                             args.choose_timesteps, args.seed)
            scores[label][method] = dict(ev.snn_accuracy)
            rows.append({"candidate": label, "method": method, "settings": settings,
                         "accuracy": dict(ev.snn_accuracy)})
            print(f"  validation {label:28s} {method:10s} " + "  ".join(
                f"T={t}: {100 * a:.2f} %" for t, a in ev.snn_accuracy.items()), flush=True)
    chosen = plan.choose(scores, args.choose_timesteps)
    settings = dict(plan.candidates(ctx.fast, args.candidates))[chosen]
    diff = plan.changed(settings, ctx.fast)
    print(f"chosen on validation: {chosen}" + (f" (differs from the preset: {diff})"
                                               if diff else " (the preset as it is)"))
    return {"candidates": rows, "chosen": chosen, "settings": settings, "changed": diff,
            "rule": f"best mean over {', '.join(args.methods)} at T = "
                    f"{args.choose_timesteps[0]}, ties: next T, then the preset"}


def test_row(ctx: Context, args, label: str, kind: str, settings: dict, method: str) -> dict:
    """(b): one row of the test-split table."""
    start = time.monotonic()
    ev, cal = accuracy(ctx, settings, method, ctx.x, ctx.y, args.timesteps, args.seed)
    row = {"label": label, "kind": kind, "method": method, "settings": settings,
           "convention": plan.convention(settings),
           "accuracy": {int(t): a for t, a in ev.snn_accuracy.items()},
           "latency": ev.latency, "warnings": list(cal.warnings),
           "seconds": round(time.monotonic() - start, 1)}
    print(f"  {label:24s} {method:10s} " + "  ".join(
        f"{t}: {100 * a:.2f}" for t, a in row["accuracy"].items()), flush=True)
    return row


def render_table(ctx: Context, rows: list[dict], timesteps) -> str:
    head = "| configuration | method | " + " | ".join(f"T={t}" for t in timesteps) + " |"
    lines = [head, "|" + "---|" * (len(timesteps) + 2)]
    for r in rows:
        cells = [f"{100 * r['accuracy'][t]:.2f}"
                 + (f" ({r['latency'][t]})" if r["latency"] else "") for t in timesteps]
        lines.append(f"| {r['label']} | {r['method']} | " + " | ".join(cells) + " |")
    return ("\n".join(lines) + f"\nANN {100 * ctx.ann_test:.2f} %; accuracy in %; (n): "
            "latency in steps of the pipelined window; rows without it count T with the fill")


def fixed_and_lava(ctx: Context, args, fast: dict, fixed: bool, lava: bool) -> list[dict]:
    """(c) and (d): fast quantised for loihi_sim against float at --fixed-timesteps; the
    export on Lava against the reference (every method)."""
    from snn2hw.hardware import profiles
    from snn2hw.quantize import quantize

    profile = profiles.load("loihi_sim")
    t = args.fixed_timesteps
    out = []
    for method in args.methods:
        opts = options(ctx, fast, method, args.seed)
        cal = calibrated(ctx, fast, method, args.seed)
        conv = conversion_of(opts)
        net = network(ctx, cal)
        qnet = quantize(net, cal.scales, profile, cal.source_scales, cal.reset,
                        conversion=conv, rates=cal.source_rates)
        entry = {"method": method, "timesteps": t, "convention": plan.convention(fast)}
        if fixed:
            on = args.fixed_on
            x, y = (ctx.x_val, ctx.y_val) if on == "validation" else (ctx.x, ctx.y)
            cmp = compare_float_fixed(net, cal.scales, qnet, x, y, t, args.seed,
                                      "cpu", cal.source_scales)
            entry.update({"float": cmp["float_accuracy"], "fixed": cmp["exported_accuracy"],
                          "samples": cmp["samples"], "images": on,
                          **_decisions(net, cal, qnet, x, y, t, args.seed)})
            entry["mcnemar_p"] = plan.mcnemar_p(entry["differ_float_right"],
                                                entry["differ_fixed_right"])
            print(f"  fixed-point loihi_sim vs float, fast {method}, T={t}: "
                  f"{100 * entry['fixed']:.2f} % vs {100 * entry['float']:.2f} %; decisions "
                  f"differ on {entry['decisions_differ']} images (float right on "
                  f"{entry['differ_float_right']}, fixed on {entry['differ_fixed_right']}; "
                  f"exact McNemar p = {entry['mcnemar_p']:.3f})", flush=True)
        if lava:
            entry["lava"] = _lava(ctx, args, qnet, cal, profile, conv)
        out.append(entry)
    return out


def _decisions(net, cal, qnet, x, y, timesteps: int, seed: int) -> dict:
    """Image by image, the float and the fixed-point decisions of the comparison above
    (the same networks, encoders and streams as ``compare_float_fixed``): how many differ,
    and how many of those each side gets right."""
    from snn2hw.quantize.fixed import input_encoder
    from snn2hw.snn import simulate
    from snn2hw.snn.encoders import make_encoder
    from snn2hw.steps.evaluate import prepare_network
    from snn2hw.steps.settings import EVALUATION_STREAM

    conv = qnet.conversion
    preds = []
    for prep, enc in (
            (simulate.prepare_float(net, cal.scales, "cpu", source_scales=cal.source_scales,
                                    reset=qnet.reset, conversion=conv),
             make_encoder(conv.coding, x, input_scale=cal.scales[net.input], seed=seed,
                          stream=EVALUATION_STREAM)),
            (prepare_network(qnet, "cpu"), input_encoder(qnet, x, seed, EVALUATION_STREAM))):
        preds.append(simulate.simulate(prep, enc, timesteps).predictions(timesteps)[0])
    differ = preds[0] != preds[1]
    return {"decisions_differ": int(differ.sum()),
            "differ_float_right": int((differ & (preds[0] == y)).sum()),
            "differ_fixed_right": int((differ & (preds[1] == y)).sum())}


def _lava(ctx: Context, args, qnet, cal, profile, conv) -> dict:
    """The export saved as ``snn2hw export`` writes it (the conversion options in its
    params) and run by the run step, which reloads it."""
    from snn2hw.artifacts.export import ExportArtifact, save_export
    from snn2hw.hardware import profiles as hw
    from snn2hw.steps.run import run_export

    art = ExportArtifact(qnet, ctx.graph, cal.scales, hw.source_text(profile),
                         file_hash(args.model), cal.method,
                         {**cal.params, **conv.to_params()}, args.seed,
                         ctx.preprocess.to_json(), {}, cal.source_scales)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fast.export.h5"
        save_export(path, art)
        rep = run_export(path, RunOptions(data=args.data, samples=args.lava_samples,
                                          timesteps=args.fixed_timesteps, seed=args.seed))
    res = {k: v for k, v in rep.as_dict().items() if k != "spike_counts_equal"}
    res["conversion"] = conv.to_params()
    print(f"  Lava vs reference, {rep.samples} images, T={rep.timesteps}: agreement "
          f"{100 * rep.agreement:.0f} %, spike for spike: {rep.identical}", flush=True)
    return res


def peers(ctx: Context, args) -> dict:
    """(e): SpikingJelly ann2snn on the same ANN, calibration images and test images."""
    import peers_install
    import peers_torch
    from snn2hw.errors import InputError

    why = peers_install.missing("spikingjelly")
    if why is None:
        try:
            model = peers_torch.to_sequential(ctx.graph)
            peers_torch.check_same(ctx.graph, model, ctx.x[:64])
        except InputError as exc:
            why = exc.message
    if why:
        print(f"  SpikingJelly skipped: {why}", flush=True)
        return {"skipped": why}
    import peers_spikingjelly as sj

    widest = max(layer.size for layer in ctx.net.layers)
    conv = sj.convert(model, ctx.x_cal, widest, SJ_PERCENTILE)
    out = sj.run(conv, ctx.x, max(args.timesteps), args.timesteps, 50, "m")
    acc = {int(t): float((o.argmax(axis=1) == ctx.y).mean()) for t, o in out.items()}
    print("  SpikingJelly " + "  ".join(f"{t}: {100 * a:.2f}" for t, a in acc.items()),
          flush=True)
    return {"name": f"SpikingJelly {peers_install.version_note('spikingjelly')} ann2snn "
                    f"{SJ_PERCENTILE:g} %", "accuracy": acc,
            "convention": "peer T (no hop delay): compare with the pipelined window's T"}
