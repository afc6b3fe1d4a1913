"""The settings every step shares, resolved in one place: the neuron reset, percentile,
junction rule and conversion options (given, else the preset's or a calibration's, else the
default), the preprocessing (the model's, a calibration's,
or the mean/std given) and the random streams of the seeds.

Errors of the steps speak of options as ``name=value`` (``reset='subtract'``) and list the
names in the error's ``options`` fact, so the CLI can say them as its flags.
"""
from __future__ import annotations

from pathlib import Path

from .. import data
from ..calibrate import Calibration
from ..calibrate.junction import DEFAULT_JUNCTION
from ..errors import InputError
from ..ir import Graph
from ..onnx.normalise import refuse_explicit
from ..snn.options import Conversion
from . import presets
from .options import CalibrationOptions, DataOptions

DEFAULT_RESET = "zero"            # the paper's and Loihi's stock LIF
DEFAULT_PERCENTILE = 100.0        # the paper's: the maximum
CALIBRATION_OPTIONS = ("per_channel", "bias_calibration")   # Conversion fields of calibrate/

# Independent random streams of one seed (snn.encoders: one stream per purpose).
CALIBRATION_STREAM, EVALUATION_STREAM = 0, 1


def _preset(opts: CalibrationOptions) -> tuple[Conversion, dict[str, object]]:
    return presets.resolve(opts.preset, {**opts.conversion, "reset": opts.reset,
                                         "percentile": opts.percentile})


def requested_conversion(opts: CalibrationOptions) -> Conversion:
    """The conversion options asked for: those given, else the preset's, else the
    defaults."""
    return _preset(opts)[0]


def conversion_of(opts: CalibrationOptions) -> Conversion:
    """:func:`requested_conversion`; options other than the defaults are refused
    (InputError) where the simulator or the calibration methods of this installation do
    not take them."""
    conversion = requested_conversion(opts)
    if conversion != Conversion():
        _require_support(conversion)
    return conversion


def _require_support(conversion: Conversion) -> None:
    """Refuse the calibration options (per-channel scales, bias calibration) where the
    calibration package of this installation does not implement them (so that none is
    ignored silently): an option is implemented where ``calibrate/`` reads its field."""
    from importlib import resources

    source = "".join(f.read_text() for f in resources.files("snn2hw.calibrate").iterdir()
                     if f.name.endswith(".py"))
    missing = {k: v for k, v in conversion.to_params().items()
               if k in CALIBRATION_OPTIONS and f".{k}" not in source}
    if missing:
        given = ", ".join(f"{k}={v!r}" for k, v in missing.items())
        raise InputError(f"this installation of snn2hw does not implement {given} yet",
                         options=tuple(missing))


def reset_of(opts: CalibrationOptions) -> str:
    return str(_preset(opts)[1].get("reset", DEFAULT_RESET))


def percentile_of(opts: CalibrationOptions) -> float:
    return float(_preset(opts)[1].get("percentile", DEFAULT_PERCENTILE))


def junction_of(opts: CalibrationOptions) -> str:
    return opts.junction if opts.junction is not None else DEFAULT_JUNCTION


def check_calibration(opts: CalibrationOptions, cal: Calibration, where: str | Path) -> None:
    """Refuse a reset mode, junction rule or conversion option given (explicitly or by a
    preset) that differs from the one the calibration was made with (its thresholds hold
    only for that one)."""
    reset = reset_of(opts) if opts.reset is not None or opts.preset else None
    if reset is not None and reset != cal.reset:
        raise InputError(f"{where}: thresholds were calibrated for reset {cal.reset!r}, not "
                         f"{reset!r}; calibrate again with reset={reset!r}",
                         options=("reset",))
    if opts.junction is not None and opts.junction != cal.junction:
        raise InputError(f"{where}: thresholds were calibrated with the {cal.junction!r} "
                         f"junction rule, not {opts.junction!r}; calibrate again with "
                         f"junction={opts.junction!r}", options=("junction",))
    _check_conversion(opts, Conversion.from_params(cal.params), where)


def _check_conversion(opts: CalibrationOptions, made: Conversion, where: str | Path,
                      native: bool = False) -> None:
    """Conversion options given (explicitly or by a preset) must be those the calibration
    was made with (``native``: those of a spiking-network file's own neurons)."""
    given = dict(opts.conversion)
    if opts.preset is not None:
        given = presets.resolve(opts.preset, given)[0].as_dict()
    for name, value in given.items():
        if value != getattr(made, name) and native:
            raise InputError(f"{where}: its neurons and thresholds are those of {name} "
                             f"{getattr(made, name)!r}, not {value!r}", options=(name,))
        if value != getattr(made, name):
            raise InputError(f"{where}: thresholds were calibrated with {name} "
                             f"{getattr(made, name)!r}, not {value!r}; calibrate again with "
                             f"{name}={value!r}", options=(name,))


def check_native(opts: CalibrationOptions, cal: Calibration, where: str | Path) -> None:
    """Refuse a reset mode, junction rule or conversion option given (explicitly or by a
    preset) that differs from those of the neurons a spiking-network file (NIR) defines."""
    reset = reset_of(opts) if opts.reset is not None or opts.preset else None
    if reset is not None and reset != cal.reset:
        raise InputError(f"{where}: its neurons reset {cal.reset!r}, not {reset!r}",
                         options=("reset",))
    if opts.junction is not None and opts.junction != cal.junction:
        raise InputError(f"{where}: its junctions follow the {cal.junction!r} rule, not "
                         f"{opts.junction!r}", options=("junction",))
    _check_conversion(opts, Conversion.from_params(cal.params), where, native=True)


def override(metadata: dict[str, str], base: data.Preprocess,
             opts: DataOptions) -> data.Preprocess:
    """``base`` with the mean/std given in ``opts`` in place of its own (refused when the
    model normalises its input itself)."""
    if not (opts.mean or opts.std):
        return base
    refuse_explicit(metadata, opts.mean, opts.std)
    return data.Preprocess(tuple(opts.mean) if opts.mean else base.mean,
                           tuple(opts.std) if opts.std else base.std)


def model_preprocess(graph: Graph) -> data.Preprocess:
    """What the model file declares (with its own input normalisation folded in), else the
    identity."""
    if "snn2hw.preprocess" in graph.metadata:
        return data.Preprocess.from_json(graph.metadata["snn2hw.preprocess"])
    return data.Preprocess()


def preprocess_for(graph: Graph, opts: DataOptions,
                   stored: str | None = None) -> data.Preprocess:
    """The preprocessing of a step: a calibration's ``stored`` one (JSON) or the model's,
    with the mean/std of ``opts`` in place of its own."""
    base = data.Preprocess.from_json(stored) if stored is not None else model_preprocess(graph)
    return override(graph.metadata, base, opts)
