"""The settings every step shares, resolved in one place: the neuron reset and junction rule
(given, a calibration's, or the default), the preprocessing (the model's, a calibration's,
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
from .options import CalibrationOptions, DataOptions

DEFAULT_RESET = "zero"            # the paper's and Loihi's stock LIF

# Independent random streams of one seed (snn.encoding: one stream per purpose).
CALIBRATION_STREAM, EVALUATION_STREAM = 0, 1


def reset_of(opts: CalibrationOptions) -> str:
    return opts.reset if opts.reset is not None else DEFAULT_RESET


def junction_of(opts: CalibrationOptions) -> str:
    return opts.junction if opts.junction is not None else DEFAULT_JUNCTION


def check_calibration(opts: CalibrationOptions, cal: Calibration, where: str | Path) -> None:
    """Refuse a reset mode or junction rule given explicitly that differs from the one the
    calibration was made with (its thresholds hold only for that one)."""
    if opts.reset is not None and opts.reset != cal.reset:
        raise InputError(f"{where}: thresholds were calibrated for reset {cal.reset!r}, not "
                         f"{opts.reset!r}; calibrate again with reset={opts.reset!r}",
                         options=("reset",))
    if opts.junction is not None and opts.junction != cal.junction:
        raise InputError(f"{where}: thresholds were calibrated with the {cal.junction!r} "
                         f"junction rule, not {opts.junction!r}; calibrate again with "
                         f"junction={opts.junction!r}", options=("junction",))


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
