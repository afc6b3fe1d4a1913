"""The pipeline as library functions (import -> calibrate -> evaluate); the CLI wraps them."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import ann, data, snn
from ..snn import simulate
from ..artifacts.calibration import CalibrationArtifact, load_calibration, save_calibration
from ..calibrate import Calibration, calibrate, thresholds
from ..calibrate.channels import calibrated_network
from ..calibrate.methods import ann_statistics
from ..snn.encoders import make_encoder
from ..errors import InputError
from ..importer import file_hash, import_onnx
from ..ir import Graph
from ..onnx.maxpool import accuracy_cost, check_recorded
from ..onnx.normalise import refuse_explicit
from ..progress import Progress

CALIBRATION_STREAM, EVALUATION_STREAM = 0, 1


def resolve_preprocess(graph: Graph, mean: list[float] | None,
                       std: list[float] | None) -> data.Preprocess:
    """Command-line mean/std, else what the model file declares (with the model's own input
    normalisation folded in), else identity."""
    refuse_explicit(graph.metadata, mean, std)
    base = data.Preprocess()
    if "snn2hw.preprocess" in graph.metadata:
        base = data.Preprocess.from_json(graph.metadata["snn2hw.preprocess"])
    return data.Preprocess(tuple(mean) if mean else base.mean, tuple(std) if std else base.std)


def num_classes(graph: Graph) -> int:
    return int(np.prod(graph.nodes[graph.output].shape))


def load_data(graph: Graph, spec: str, preprocess: data.Preprocess) -> data.Dataset:
    if graph.input_shape and len(graph.input_shape) != 3 and spec == data.DIGITS:
        raise InputError(f"the digits data set needs an image model; input is "
                         f"{graph.input_shape}")
    return data.load(spec, graph.input_shape, num_classes(graph), preprocess)


@dataclass
class Evaluation:
    ann_accuracy: float
    snn_accuracy: dict[int, float]
    ties: dict[int, int]
    rates: dict[str, float]
    samples: int
    seconds: float
    max_current: dict[str, float] = None

    def as_dict(self) -> dict:
        return {"ann_accuracy": self.ann_accuracy,
                "snn_accuracy": {str(k): v for k, v in self.snn_accuracy.items()},
                "ties": {str(k): v for k, v in self.ties.items()},
                "spikes_per_neuron_per_step": self.rates, "samples": self.samples}
        # No wall-clock time here: artifacts must be byte-identical for the same inputs.


def evaluate(graph: Graph, net: snn.SpikingNetwork, scales: dict[str, float], x: np.ndarray,
             y: np.ndarray, timesteps: list[int], seed: int, device: str = "cpu",
             batch_size: int = 64, label: str = "simulate",
             source_scales: dict[str, float] | None = None,
             reset: str = "zero") -> Evaluation:
    """ANN accuracy, and SNN accuracy at every T in ``timesteps`` from one run of max(T)."""
    start = time.monotonic()
    ann_acc = float((ann.predict(graph, x, device=device).argmax(1) == y).mean())
    prep = simulate.prepare_float(net, scales, device, source_scales=source_scales,
                                  reset=reset)
    encoder = make_encoder("poisson", x, input_scale=scales[net.input], seed=seed,
                           stream=EVALUATION_STREAM)
    top = max(timesteps)
    with Progress(len(x) * top, label) as bar:
        result = simulate.simulate(prep, encoder, top, checkpoints=timesteps,
                                   batch_size=batch_size, progress=bar)
    acc, ties = {}, {}
    for t in sorted(timesteps):
        pred, ties[t] = result.predictions(t)
        acc[t] = float((pred == y).mean())
    rates = {name: st.rate for name, st in result.stats.items()}
    currents = {name: st.max_current for name, st in result.stats.items()}
    return Evaluation(ann_acc, acc, ties, rates, len(x), time.monotonic() - start, currents)


def run_calibration(net: snn.SpikingNetwork, x: np.ndarray, method: str, timesteps: int,
                    seed: int, device: str = "cpu", batch_size: int = 64,
                    rate_match: bool = True, reset: str = "zero",
                    percentile: float = 100.0, junction: str = "per-source") -> Calibration:
    total = len(x) * timesteps * len(net.layers)
    with Progress(total, f"calibrate {method}") as bar:
        return calibrate(method, net, x, timesteps=timesteps, seed=seed, device=device,
                         batch_size=batch_size, progress=bar, rate_match=rate_match,
                         reset=reset, percentile=percentile, junction=junction)


def calibration_report(net: snn.SpikingNetwork, cal: Calibration, ev: Evaluation,
                       timesteps: int, ann_stats: dict | None = None) -> dict:
    th = thresholds(net, cal.scales, cal.source_scales)
    ann_stats = ann_stats or {}
    return {
        "method": cal.method, "params": cal.params, "warnings": cal.warnings,
        "input_scale": cal.scales[net.input],
        "layers": [{"name": layer.name, "shape": list(layer.shape), "depth": layer.depth,
                    "scale": cal.scales[layer.name], "threshold": th[layer.name],
                    "source_scale": cal.source_scales[layer.name],
                    "spikes_per_neuron_per_step": ev.rates[layer.name],
                    "max_input_current": ev.max_current[layer.name] * cal.scales[layer.name],
                    "ann_activation": ann_stats.get(layer.name)}
                   for layer in net.layers],
        "evaluation": ev.as_dict(), "timesteps": timesteps,
    }


QUIET_RATE = 1e-3  # spikes per neuron per step below which a hidden layer carries too little


def quiet_layer_warnings(net: snn.SpikingNetwork, cal: Calibration, ev: Evaluation) -> list[str]:
    """A hint when hidden layers barely fire in the evaluation run: with the paper's rule
    (largest current, reset to zero) deep and residual networks starve their last layers."""
    quiet = [la.name for la in net.layers
             if not la.is_output and ev.rates.get(la.name, 1.0) < QUIET_RATE]
    if not quiet:
        return []
    names = ", ".join(quiet[:3]) + (f" and {len(quiet) - 3} more" if len(quiet) > 3 else "")
    hint = ("; deep networks often need --percentile 99.9 --reset subtract (README, "
            "'Going deeper')" if cal.reset == "zero" or "percentile" not in cal.params
            else "; a longer window (T) may help")
    return [f"{len(quiet)} hidden layer(s) fire below {QUIET_RATE:g} spikes per neuron per "
            f"step at T = {max(ev.snn_accuracy)}: {names}{hint}"]


def calibrate_model(model: str | Path, data_spec: str, method: str, timesteps: int,
                    samples: int, seed: int, eval_samples: int | None = None,
                    eval_timesteps: list[int] | None = None, device: str = "cpu",
                    mean=None, std=None, rate_match: bool = True, reset: str = "zero",
                    percentile: float = 100.0, maxpool: str = "refuse",
                    junction: str = "per-source"
                    ) -> tuple[CalibrationArtifact, snn.SpikingNetwork]:
    """Import, calibrate on the train split, evaluate on the test split."""
    graph = import_onnx(model, maxpool=maxpool)
    preprocess = resolve_preprocess(graph, mean, std)
    dataset = load_data(graph, data_spec, preprocess)
    net = snn.lower(graph)
    x_cal = data.calibration_set(dataset, samples)
    cal = run_calibration(net, x_cal, method, timesteps, seed, device,
                          rate_match=rate_match, reset=reset, percentile=percentile,
                          junction=junction)
    x_ev, y_ev = data.take(dataset.x_test, dataset.y_test, eval_samples, "evaluation")
    net = calibrated_network(net, cal)  # per-channel factors and bias offsets, if any
    ev = evaluate(graph, net, cal.scales, x_ev, y_ev, eval_timesteps or [timesteps], seed,
                  device, source_scales=cal.source_scales, reset=cal.reset)
    report = calibration_report(net, cal, ev, timesteps,
                                ann_statistics(net, x_cal, device=device))
    report["warnings"] = list(cal.warnings) + quiet_layer_warnings(net, cal, ev)
    cost = accuracy_cost(model, graph, x_ev, y_ev, device)
    if cost is not None:
        report["maxpool"] = cost
    art = CalibrationArtifact(graph, cal, file_hash(model), preprocess.to_json(), report)
    return art, net


def load_calibrated(model: str | Path, calibration: str | Path,
                    maxpool: str = "refuse") -> CalibrationArtifact:
    art = load_calibration(calibration, expected_sha256=file_hash(model))
    check_recorded(art.graph.metadata, maxpool, calibration)
    return art


__all__ = ["calibrate_model", "evaluate", "save_calibration", "load_calibrated",
           "resolve_preprocess", "load_data"]
