"""The export step: quantise a calibrated network for a hardware profile (the CLI's
``snn2hw export``), with the thresholds of a calibration file or calibrating now."""
from __future__ import annotations

from pathlib import Path

from .. import backends, data, formats, snn
from ..artifacts.calibration import load_calibration
from ..artifacts.export import ExportArtifact
from ..calibrate import Calibration
from ..calibrate.channels import calibrated_network
from ..errors import HardwareLimitError, InputError
from ..hardware import profiles
from ..hardware.resources import network_usage
from ..ir import Graph
from ..onnx import file_hash
from ..onnx.maxpool import accuracy_cost, check_recorded
from ..quantize import float_network, quantize
from ..snn.options import Conversion
from .evaluate import compare_float_fixed, load_data, prepare_network
from .options import CalibrationOptions, DataOptions, EvaluationOptions
from .pipeline import run_calibration
from .progress import ProgressFactory, silent
from .run import first_mismatch, run_export
from .settings import check_calibration, check_native, preprocess_for


def thresholds_for(model: str | Path, graph: Graph, calibration_file: str | Path | None,
                   data_options: DataOptions, calibration: CalibrationOptions,
                   progress: ProgressFactory = silent
                   ) -> tuple[Calibration, data.Preprocess, data.Dataset | None,
                              snn.SpikingNetwork]:
    """The calibration of an export (from ``calibration_file``, whose reset mode and junction
    rule it keeps, the thresholds a spiking-network file (NIR) carries, or made now on
    ``data_options.spec``), its preprocessing, the data set (if any) and the spiking
    network."""
    data_spec = data_options.spec or graph.metadata.get("snn2hw.dataset")
    native = None if calibration_file else formats.native_calibration(model, graph)
    if calibration_file:
        cal_art = load_calibration(calibration_file, expected_sha256=file_hash(model))
        check_recorded(cal_art.graph.metadata, data_options.maxpool, calibration_file)
        cal = cal_art.calibration
        check_calibration(calibration, cal, calibration_file)
        preprocess = preprocess_for(graph, data_options, stored=cal_art.preprocess)
    else:
        if not data_spec and native is None:
            raise InputError("export needs thresholds: give calibration=FILE.calib.h5, or "
                             "data=SET (digits or a .npz file) to calibrate now",
                             options=("calibration", "data"))
        preprocess = preprocess_for(graph, data_options)
    dataset = load_data(graph, data_spec, preprocess) if data_spec else None
    net = snn.lower(graph)
    if native is not None:
        cal = native
        check_native(calibration, cal, model)
    elif not calibration_file:
        x_cal = data.calibration_set(dataset, calibration.samples)
        cal = run_calibration(net, x_cal, calibration, data_options.device, progress)
    # the network the scales are for: per-channel factors and bias offsets, if any
    return cal, preprocess, dataset, calibrated_network(net, cal)


def export_model(model: str | Path, profile_name: str, *,
                 calibration_file: str | Path | None = None,
                 data_options: DataOptions = DataOptions(spec=None),
                 calibration: CalibrationOptions = CalibrationOptions(),
                 evaluation: EvaluationOptions = EvaluationOptions(),
                 progress: ProgressFactory = silent,
                 output_format: str = backends.DEFAULT_FORMAT) -> ExportArtifact:
    """Quantise ``model`` (any input format, :mod:`snn2hw.formats`) for a profile, narrowed
    to what ``output_format`` holds exactly; with data, compare the float and the exported
    network on the test split at ``calibration.timesteps``."""
    profile = backends.constrain(output_format, profiles.load(profile_name))
    profiles.check_neuron(profile)
    device = data_options.device
    graph = formats.import_model(model, data_options.maxpool)
    cal, preprocess, dataset, net = thresholds_for(model, graph, calibration_file,
                                                   data_options, calibration, progress)
    if cal.reset not in profile.resets:
        raise HardwareLimitError(f"profile {profile.name} has no neuron with reset "
                                 f"{cal.reset!r}; it supports: {', '.join(profile.resets)}")
    conversion = Conversion.from_params(cal.params)   # recorded by the calibration
    qnet = (quantize(net, cal.scales, profile, cal.source_scales, cal.reset, conversion,
                     rates=cal.source_rates)
            if profile.quantize
            else float_network(net, cal.scales, profile.name, cal.source_scales, cal.reset,
                               conversion))
    report = {"profile": profile.name, "layers": {la.name: la.report for la in qnet.layers}}
    target = profiles.resources_for(profile) if profile.fixed is not None else None
    if target is not None:
        report["resources"] = network_usage(qnet, target)
    seed = calibration.seed
    if dataset is not None:
        x, y = data.take(dataset.x_test, dataset.y_test, evaluation.samples, "evaluation")
        report["evaluation"] = compare_float_fixed(net, cal.scales, qnet, x, y,
                                                   calibration.timesteps, seed, device,
                                                   cal.source_scales, progress)
        report["evaluation"]["reset"] = cal.reset
        cost = accuracy_cost(model, graph, x, y, device)
        if cost is not None:
            report["maxpool"] = cost
    return ExportArtifact(qnet, graph, cal.scales, profiles.source_text(profile),
                          file_hash(model), cal.method, cal.params, seed, preprocess.to_json(),
                          report, cal.rate_scales)


__all__ = ["export_model", "run_export", "prepare_network", "first_mismatch"]
