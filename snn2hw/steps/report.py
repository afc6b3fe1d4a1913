"""The report step: spiking activity and synaptic operations against depth for a calibrated
model on the test split (the CLI's ``snn2hw report``; :mod:`snn2hw.analysis.sparsity`)."""
from __future__ import annotations

from pathlib import Path

from .. import data, snn
from ..analysis.sparsity import analyze
from ..calibrate.channels import calibrated_network
from ..fileio import atomic_path
from .evaluate import load_data
from .options import DataOptions, ReportOptions
from .pipeline import load_calibrated
from .progress import ProgressFactory, silent
from .settings import preprocess_for


def sparsity_report(model: str | Path, calibration_file: str | Path, *,
                    data_options: DataOptions = DataOptions(),
                    options: ReportOptions = ReportOptions(),
                    progress: ProgressFactory = silent) -> dict:
    """The sparsity report (a JSON-ready dict) of ``model`` with the thresholds of
    ``calibration_file``, preceded by what was analysed."""
    art = load_calibrated(model, calibration_file, data_options.maxpool)
    cal = art.calibration
    preprocess = preprocess_for(art.graph, data_options, stored=art.preprocess)
    dataset = load_data(art.graph, data_options.spec, preprocess)
    x, y = data.take(dataset.x_test, dataset.y_test, options.samples, "evaluation")
    net = calibrated_network(snn.lower(art.graph), cal)
    with progress(len(x) * options.timesteps, "simulate") as bar:
        rep = analyze(net, cal.scales, x, options.timesteps, options.seed, y=y,
                      device=data_options.device, progress=bar,
                      source_scales=cal.source_scales, reset=cal.reset)
    return {"model": str(model), "calibration": str(calibration_file),
            "method": cal.method, "data": data_options.spec} | rep


def plot_report(report: dict, path: str | Path) -> None:
    """Rate and SOP/MAC against depth as a PNG at ``path`` (written atomically)."""
    from ..analysis.sparsity import plot

    with atomic_path(path) as tmp:
        plot(report, tmp, title=f"{Path(report['model']).name}, {report['method']} "
             "thresholds")
