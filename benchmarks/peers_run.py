"""The runs of ``benchmarks/peers.py``: the shared data and ANN, each converter's accuracy
against T, and each simulator's throughput."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import peers_install
import peers_models
import peers_ours
import peers_table as pt
import peers_torch
from snn2hw import ann, data, snn
from snn2hw.data.samples import materialize
from snn2hw.importer import import_onnx
from snn2hw.snn.encoders import make_encoder
from snn2hw.steps.evaluate import load_data
from snn2hw.steps.options import DataOptions
from snn2hw.steps.settings import EVALUATION_STREAM, preprocess_for

SJ_PERCENTILE, SINABS_PERCENTILE = 99.9, 99.99


@dataclass
class Context:
    name: str
    graph: object
    net: object
    x_cal: np.ndarray
    x: np.ndarray
    y: np.ndarray
    model: object                                   # torch nn.Sequential, or None
    model_error: str | None = None                 # why the peers cannot take the ANN
    converted: dict = field(default_factory=dict)   # converter -> its network

    @classmethod
    def load(cls, args: argparse.Namespace, path: Path) -> "Context":
        from snn2hw.errors import InputError

        graph = import_onnx(path)
        dataset = load_data(graph, peers_models.MODELS[args.model].data,
                            preprocess_for(graph, DataOptions()))
        x_cal = data.calibration_set(dataset, args.calib_samples)
        samples = args.samples or min(len(dataset.x_test), peers_models.MODELS[args.model].samples)
        x, y = data.take(dataset.x_test, dataset.y_test, samples, "evaluation")
        x = materialize(x)
        model, why = None, None
        try:
            model = peers_torch.to_sequential(graph)
            peers_torch.check_same(graph, model, x[:64])
        except InputError as exc:
            why = exc.message
        return cls(args.model, graph, snn.lower(graph), x_cal, x, np.asarray(y), model, why)

    @property
    def depth(self) -> int:
        return self.net.depth

    def accuracies(self, outputs: dict[int, np.ndarray]) -> dict[int, float]:
        """Argmax read-out (ties to the lowest class, as snn2hw's) at each checkpoint."""
        return {t: float((o.argmax(axis=1) == self.y).mean()) for t, o in outputs.items()}


def _peer_missing(ctx: Context, name: str) -> str | None:
    return peers_install.missing(name) or ctx.model_error


def convert_peer(ctx: Context, name: str, batch: int) -> None:
    """Convert the ANN with peer ``name``; the result goes to ``ctx.converted[name]``."""
    if name == "spikingjelly":
        import peers_spikingjelly as sj

        widest = max(layer.size for layer in ctx.net.layers)
        ctx.converted[name] = sj.convert(ctx.model, ctx.x_cal, widest, SJ_PERCENTILE)
    else:
        import peers_sinabs

        ctx.converted[name] = peers_sinabs.convert(ctx.model, ctx.x_cal, _input_scale(ctx),
                                                   SINABS_PERCENTILE, batch)


def run_peer(ctx: Context, name: str, timesteps: list[int], batch: int, seed: int
             ) -> pt.Row:
    """Accuracy at every T from one causal run of the converted peer."""
    version = peers_install.version_note(name)
    if name == "spikingjelly":
        import peers_spikingjelly as sj

        out = sj.run(ctx.converted[name], ctx.x, max(timesteps), timesteps, batch, "m")
        return pt.Row(f"SpikingJelly {version} ann2snn {SJ_PERCENTILE:g} %", pt.PEER,
                      ctx.accuracies(out), "analog input, soft reset, analog read-out")
    import peers_sinabs

    enc = make_encoder("poisson", ctx.x, input_scale=_input_scale(ctx), seed=seed,
                       stream=EVALUATION_STREAM)
    out = peers_sinabs.run(ctx.converted[name], enc, max(timesteps), timesteps, batch)
    return pt.Row(f"sinabs {version} from_model p{SINABS_PERCENTILE:g}", pt.PEER,
                  ctx.accuracies(out), "Poisson input, multi-spike IAF, spike counts")


def _input_scale(ctx: Context) -> float:
    from snn2hw.calibrate import input_scale

    return input_scale(ctx.x_cal)


def run_ours(ctx: Context, name: str, args: argparse.Namespace) -> list[pt.Row]:
    convention = peers_ours.window_of(peers_ours.CONFIGS[name])
    points = pt.needed_checkpoints(args.timesteps, ctx.depth, convention)
    res = peers_ours.run(ctx.graph, ctx.net, ctx.x_cal, ctx.x, ctx.y, peers_ours.CONFIGS[name],
                         points,
                         args.seed, args.calib_timesteps)
    ctx.converted[f"ours:{name}"] = res.calibration
    both = pt.by_convention(res.accuracy, args.timesteps, ctx.depth, res.convention,
                            silent=float(np.mean(ctx.y == 0)))
    label = f"snn2hw {name} ({peers_ours.DESCRIPTIONS.get(name, name)})"
    return [pt.Row(label, conv, both[conv]) for conv in pt.CONVENTIONS]


def accuracy(ctx: Context, args: argparse.Namespace, simulate: bool = True) -> pt.Report:
    """Every converter's accuracy at every T; with ``simulate`` False only the conversions
    (peers, and our ``best`` configuration's calibration) for the throughput runs."""
    ann_acc = float((ann.predict(ctx.graph, ctx.x).argmax(1) == ctx.y).mean())
    report = pt.Report(peers_models.MODELS[ctx.name].label, ctx.depth, len(ctx.x),
                       list(args.timesteps), ann_acc)
    batch = 50
    for name in args.peers:
        why = _peer_missing(ctx, name)
        if why:
            report.skipped[name] = why
            print(f"skipped {name}: {why}", flush=True)
            continue
        print(f"{name}: convert" + (f" and run T = {max(args.timesteps)}" if simulate
                                    else "") + " ...", flush=True)
        convert_peer(ctx, name, batch)
        if simulate:
            report.rows.append(run_peer(ctx, name, args.timesteps, batch, args.seed))
            print(pt.row_line(report.rows[-1], args.timesteps), flush=True)
    for name in args.configs if simulate else ["best"]:
        print(f"snn2hw {name}: calibrate" + (" and evaluate" if simulate else "") + " ...",
              flush=True)
        try:
            if simulate:
                rows = run_ours(ctx, name, args)
                report.rows += rows
                for row in rows:
                    print(pt.row_line(row, args.timesteps), flush=True)
            else:
                ctx.converted["ours:best"] = peers_ours.calibrate(
                    ctx.net, ctx.x_cal, peers_ours.CONFIGS["best"], args.seed,
                    args.calib_timesteps)
        except peers_ours.Unavailable as exc:
            report.skipped[f"snn2hw {name}"] = str(exc)
            print(f"skipped snn2hw {name}: {exc}", flush=True)
    return report


def speed(ctx: Context, args: argparse.Namespace) -> list[dict]:
    """Throughput of every simulator on the same images, T and batch (ours with the
    calibration of the ``best`` configuration, else of the first one run):
    ``benchmarks/peers_speed.py``."""
    import peers_speed

    return peers_speed.speed(ctx, args, _input_scale(ctx))
