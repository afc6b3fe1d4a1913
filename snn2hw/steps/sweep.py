"""The sweep step: every combination of presets and calibration methods, calibrated once and
run once at the largest T; accuracy, synaptic operations and estimated energy per inference
at every smaller T come from the same causal run (:mod:`.activity`). The CLI's
``snn2hw sweep``. Under ``torchrun`` the ranks split the calibration and test samples and
sum their counts (:mod:`snn2hw.distributed`): the report is the one process's, bit for
bit."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import ann, data, distributed, snn
from ..calibrate.channels import calibrated_network
from ..hardware.energy import energy_model
from ..formats import import_model
from .activity import measure
from .evaluate import load_data
from .options import CalibrationOptions, DataOptions, SweepOptions
from .pipeline import run_calibration
from .presets import preset as check_preset
from .progress import ProgressFactory, silent
from .settings import conversion_of, percentile_of, preprocess_for, reset_of

PJ_PER_UJ = 1e6
ANN_BATCH = 256  # the ANN's batch: the unit of the ranks' shares of the test samples


def sweep(model: str | Path, *, data_options: DataOptions = DataOptions(),
          calibration: CalibrationOptions = CalibrationOptions(),
          options: SweepOptions = SweepOptions(),
          progress: ProgressFactory = silent) -> dict:
    """The sweep report (JSON-ready). ``calibration`` gives the samples, seed and the
    settings that override every preset (its ``method`` and ``preset`` are replaced by
    each combination's)."""
    for name in options.presets:
        check_preset(name)
    energy = energy_model(options.profile)
    top = max(options.timesteps)
    graph = import_model(model, data_options.maxpool)
    dataset = load_data(graph, data_options.spec, preprocess_for(graph, data_options))
    net = snn.lower(graph)
    x_cal = data.calibration_set(dataset, calibration.samples)
    x, y = data.take(dataset.x_test, dataset.y_test, options.eval_samples, "evaluation")
    ann_acc = _ann_accuracy(graph, x, y, data_options.device)
    runs = []
    for name in options.presets:
        for method in options.methods:
            opts = replace(calibration, method=method, preset=name,
                           timesteps=options.calib_timesteps or top)
            runs.append(_run(net, x_cal, x, y, opts, data_options.device, options, energy,
                             progress))
    return {"model": str(model), "data": data_options.spec, "samples": calibration.samples,
            "eval_samples": int(len(x)), "seed": calibration.seed,
            "timesteps": sorted(options.timesteps), "ann_accuracy": ann_acc,
            "energy_model": energy.as_dict(), "runs": runs,
            "conventions": {"sops": "spikes delivered within the window x fan-out",
                            "energy": "hw_profiles/<profile>.toml [energy]; static power "
                                      "left out"}}


def _ann_accuracy(graph, x: np.ndarray, y: np.ndarray, device: str) -> float:
    """The ANN's accuracy on ``x``; under ``torch.distributed`` each rank predicts its own
    256-sample batches (those of one process) and the correct counts are summed."""
    lo, hi = distributed.owned(len(x), ANN_BATCH)
    correct = (int((ann.predict(graph, x[lo:hi], ANN_BATCH, device).argmax(1)
                    == y[lo:hi]).sum()) if hi > lo else 0)
    return distributed.all_sum([correct])[0] / max(len(x), 1)


def _run(net, x_cal, x, y, opts: CalibrationOptions, device: str, options: SweepOptions,
         energy, progress: ProgressFactory) -> dict:
    cal = run_calibration(net, x_cal, opts, device, progress)
    conversion = conversion_of(opts)
    act = measure(calibrated_network(net, cal), cal.scales, x, y, list(options.timesteps),
                  opts.seed, device=device,
                  source_scales=cal.source_scales, reset=cal.reset, conversion=conversion,
                  progress=progress, label=f"simulate {opts.preset} {opts.method}")
    per_t = {}
    for t in sorted(options.timesteps):
        m = act.per_inference(t)
        m["energy_uj"] = energy.picojoules(m["sops"], m["neuron_updates"],
                                           m["spikes"]) / PJ_PER_UJ
        per_t[str(t)] = m
    return {"preset": opts.preset, "method": opts.method,
            "settings": {"reset": reset_of(opts), "percentile": percentile_of(opts),
                         "calibration_timesteps": opts.timesteps,
                         **conversion.as_dict()},
            "warnings": list(cal.warnings), "at": per_t,
            "best_accuracy": float(np.max([m["accuracy"] for m in per_t.values()]))}


def plot_sweep(report: dict, path: str | Path) -> None:
    """Accuracy (with the ANN's as a line), synaptic operations and estimated energy per
    inference against T, one line per run; a PNG at ``path``, written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..fileio import atomic_path

    ts = report["timesteps"]
    fig = Figure(figsize=(14, 4.2))
    axes = fig.subplots(1, 3)
    for run in report["runs"]:
        label = f"{run['preset']} {run['method']}"
        for ax, key, scale in ((axes[0], "accuracy", 100), (axes[1], "sops", 1),
                               (axes[2], "energy_uj", 1)):
            ax.plot(ts, [run["at"][str(t)][key] * scale for t in ts], marker="o", label=label)
    axes[0].axhline(100 * report["ann_accuracy"], color="k", linestyle="--", label="ANN")
    em = report["energy_model"]
    for ax, title in ((axes[0], "accuracy (%)"), (axes[1], "synaptic ops per inference"),
                      (axes[2], f"energy per inference (uJ, {em['chip']} figures)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(ts, [str(t) for t in ts])
        ax.set_xlabel("T (time steps)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{Path(report['model']).name}: {report['eval_samples']} test samples; "
                 f"energy: {em['source']}", fontsize=9)
    fig.tight_layout()
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
