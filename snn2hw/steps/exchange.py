"""The export to a foreign format (``snn2hw export --format nir|netx``): the step that hands
a network to the writer of an output format (:mod:`snn2hw.backends`). A float writer (NIR)
gets the calibrated float SNN, an integer writer (netx) the quantised export, made exactly
as ``--format h5`` makes it, on the profile narrowed to what the format holds."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import backends, data, formats, snn
from ..artifacts.calibration import load_calibration
from ..calibrate import Calibration
from ..errors import InputError
from ..onnx import file_hash
from .options import CalibrationOptions, DataOptions, EvaluationOptions, FormatOptions
from .progress import ProgressFactory, silent
from .settings import check_calibration, check_native, preprocess_for


@dataclass
class FloatNetwork:
    """The calibrated float SNN (thresholds normalised to 1, gains from the scales; see
    :mod:`snn2hw.snn`) and what a reader needs to feed it."""
    net: snn.SpikingNetwork
    calibration: Calibration
    preprocess: str
    model: str
    options: dict = field(default_factory=dict)

    @property
    def input_scale(self) -> float:
        return self.calibration.scales[self.net.input]


def float_network(model: str | Path, calibration_file: str | Path | None = None, *,
                  data_options: DataOptions = DataOptions(spec=None),
                  calibration: CalibrationOptions = CalibrationOptions(),
                  progress: ProgressFactory = silent) -> FloatNetwork:
    """The model's spiking network with the thresholds of ``calibration_file``, of the file
    itself (NIR), or calibrated now on ``data_options.spec``."""
    from .evaluate import load_data
    from .pipeline import run_calibration

    graph = formats.import_model(model, data_options.maxpool)
    net = snn.lower(graph)
    if calibration_file:
        art = load_calibration(calibration_file, expected_sha256=file_hash(model))
        check_calibration(calibration, art.calibration, calibration_file)
        return FloatNetwork(net, art.calibration, art.preprocess, str(model))
    native = formats.native_calibration(model, graph)
    preprocess = preprocess_for(graph, data_options)
    if native is not None:
        check_native(calibration, native, model)
        return FloatNetwork(net, native, preprocess.to_json(), str(model))
    data_spec = data_options.spec or graph.metadata.get("snn2hw.dataset")
    if not data_spec:
        raise InputError("export needs thresholds: give calibration=FILE.calib.h5, or "
                         "data=SET (digits or a .npz file) to calibrate now",
                         options=("calibration", "data"))
    dataset = load_data(graph, data_spec, preprocess)
    cal = run_calibration(net, data.calibration_set(dataset, calibration.samples),
                          calibration, data_options.device, progress)
    return FloatNetwork(net, cal, preprocess.to_json(), str(model))


def default_output(model: str | Path, fmt: str, profile: str) -> str:
    """``MODEL.PROFILE.h5`` for our HDF5, else ``MODEL`` with the format's suffix."""
    stem = str(Path(model).with_suffix(""))
    if fmt == backends.DEFAULT_FORMAT:
        return f"{stem}.{Path(profile).stem}.h5"
    return stem + backends.writer(fmt).suffix


def export_to_format(model: str | Path, profile_name: str, output: str | Path, *,
                     fmt: FormatOptions,
                     calibration_file: str | Path | None = None,
                     data_options: DataOptions = DataOptions(spec=None),
                     calibration: CalibrationOptions = CalibrationOptions(),
                     evaluation: EvaluationOptions = EvaluationOptions(),
                     progress: ProgressFactory = silent, inputs: tuple = ()
                     ) -> tuple[object, list[str]]:
    """Write ``model`` to ``output`` in the foreign format ``fmt.format`` (never over one of
    ``inputs``); returns the network written (FloatNetwork or ExportArtifact) and the
    writer's notes."""
    from ..quantize.verify import require, verify_artifact
    from .deploy import export_model
    from .write import write_network

    writer = backends.writer(fmt.format)
    options = {"force": fmt.force, "nir_time": fmt.nir_time,
               "timesteps": calibration.timesteps}
    if writer.needs == "float":
        network = float_network(model, calibration_file, data_options=data_options,
                                calibration=calibration, progress=progress)
    else:
        network = export_model(model, profile_name, calibration_file=calibration_file,
                               data_options=data_options, calibration=calibration,
                               evaluation=evaluation, progress=progress,
                               output_format=fmt.format)
        require(verify_artifact(network), "export")
    return network, write_network(fmt.format, network, output, options, inputs)
