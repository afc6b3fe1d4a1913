"""The calibrate step: import a model, calibrate its thresholds on the train split and
evaluate the float SNN on the test split (the CLI's ``snn2hw calibrate``)."""
from __future__ import annotations

from pathlib import Path

from .. import data, snn
from ..artifacts.calibration import CalibrationArtifact, load_calibration, save_calibration
from ..calibrate import Calibration, calibrate, thresholds
from ..calibrate.methods import ann_statistics
from ..formats import import_model
from ..importer import file_hash
from ..onnx.maxpool import accuracy_cost, check_recorded
from .evaluate import Evaluation, evaluate, load_data, num_classes
from .options import CalibrationOptions, DataOptions, EvaluationOptions
from .progress import ProgressFactory, silent
from ..snn.options import Conversion
from .settings import (CALIBRATION_STREAM, EVALUATION_STREAM, conversion_of, junction_of,
                       percentile_of, preprocess_for, reset_of)


def run_calibration(net: snn.SpikingNetwork, x, opts: CalibrationOptions,
                    device: str = "cpu", progress: ProgressFactory = silent) -> Calibration:
    """Threshold balancing of ``net`` on the samples ``x`` with the options' settings
    resolved (:mod:`.settings`)."""
    total = len(x) * opts.timesteps * len(net.layers)
    conversion = conversion_of(opts)
    extra = {} if conversion == Conversion() else {"conversion": conversion}  # as before
    with progress(total, f"calibrate {opts.method}") as bar:
        return calibrate(opts.method, net, x, timesteps=opts.timesteps, seed=opts.seed,
                         device=device, batch_size=64, progress=bar,
                         rate_match=opts.rate_match, reset=reset_of(opts),
                         percentile=percentile_of(opts), junction=junction_of(opts),
                         **extra)


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
    (largest current, reset to zero) deep and residual networks starve their last layers.
    (The text is stored in calibration files' reports, so it keeps its flag names.)"""
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


def calibrate_model(model: str | Path, *, data_options: DataOptions = DataOptions(),
                    calibration: CalibrationOptions = CalibrationOptions(),
                    evaluation: EvaluationOptions = EvaluationOptions(),
                    progress: ProgressFactory = silent
                    ) -> tuple[CalibrationArtifact, snn.SpikingNetwork]:
    """Import, calibrate on the train split, evaluate on the test split."""
    device = data_options.device
    graph = import_model(model, data_options.maxpool)
    preprocess = preprocess_for(graph, data_options)
    dataset = load_data(graph, data_options.spec, preprocess)
    net = snn.lower(graph)
    x_cal = data.calibration_set(dataset, calibration.samples)
    cal = run_calibration(net, x_cal, calibration, device, progress)
    x_ev, y_ev = data.take(dataset.x_test, dataset.y_test, evaluation.samples, "evaluation")
    ev = evaluate(graph, net, cal.scales, x_ev, y_ev,
                  list(evaluation.timesteps or [calibration.timesteps]), calibration.seed,
                  device, source_scales=cal.source_scales, reset=cal.reset,
                  progress=progress, conversion=conversion_of(calibration))
    report = calibration_report(net, cal, ev, calibration.timesteps,
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


__all__ = ["calibrate_model", "run_calibration", "evaluate", "save_calibration",
           "load_calibrated", "load_data", "num_classes", "CALIBRATION_STREAM",
           "EVALUATION_STREAM"]
