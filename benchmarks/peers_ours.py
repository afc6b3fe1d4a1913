"""Our side of ``benchmarks/peers.py``: snn2hw through its library API (the calibrate and
evaluate steps, :mod:`snn2hw.steps.pipeline` and :mod:`snn2hw.steps.evaluate`), one named
configuration = one options dict.

An options dict holds ``method`` (``spike-norm`` or ``max-act``), ``preset`` (a name of
:mod:`snn2hw.steps.presets`: ``paper``, ``fast``), any field of
:class:`snn2hw.steps.options.CalibrationOptions` (``reset``, ``percentile``, ``junction``,
...) and any conversion option of :class:`snn2hw.snn.options.Conversion` (``coding``,
``v_init``, ``per_channel``, ``bias_calibration``, ``readout``, ``window``); explicit keys
override the preset's, as on the command line. The resolved ``window`` (``fill`` or
``pipelined``) says how the run counts T. A preset or option this snn2hw does not have is
skipped with the reason, never dropped silently. Adding a configuration is one line in
``CONFIGS``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np

from snn2hw.calibrate import Calibration
from snn2hw.calibrate.channels import calibrated_network
from snn2hw.snn import simulate
from snn2hw.snn.encoders import make_encoder
from snn2hw.snn.options import Conversion
from snn2hw.steps import pipeline
from snn2hw.steps.evaluate import evaluate
from snn2hw.steps.options import CalibrationOptions
from snn2hw.steps.settings import EVALUATION_STREAM, conversion_of

CONFIGS: dict[str, dict] = {
    # the paper's configuration (Sengupta et al. 2019): Spike-Norm, reset to zero, maximum
    "paper": {"method": "spike-norm", "preset": "paper"},
    "paper-max-act": {"method": "max-act", "preset": "paper"},
    # the best options before issue 12
    "best": {"method": "max-act", "reset": "subtract", "percentile": 99.9},
    "best-spike-norm": {"method": "spike-norm", "reset": "subtract", "percentile": 99.9},
    # issue 12's low-latency preset (direct input, theta/2, per-channel scales, bias
    # calibration, membrane read-out, pipelined window, reset subtract, p99.5:
    # snn2hw/steps/presets.py)
    "fast": {"method": "max-act", "preset": "fast"},
    "fast-spike-norm": {"method": "spike-norm", "preset": "fast"},
}
DESCRIPTIONS = {
    "paper": "spike-norm, reset zero, p100",
    "paper-max-act": "max-act, reset zero, p100",
    "best": "max-act, reset subtract, p99.9",
    "best-spike-norm": "spike-norm, reset subtract, p99.9",
    "fast": "max-act, --preset fast",
    "fast-spike-norm": "spike-norm, --preset fast",
}


class Unavailable(Exception):
    """This snn2hw cannot run the configuration (the message says why)."""


def calibration_options(options: dict, seed: int, timesteps: int, samples: int
                        ) -> CalibrationOptions:
    """The options dict as the calibrate step's options; :class:`Unavailable` for a
    preset or option this snn2hw does not have."""
    from snn2hw.steps.presets import PRESETS

    opts = dict(options)
    preset = opts.pop("preset", None)
    if preset is not None and preset not in PRESETS:
        raise Unavailable(f"snn2hw has no preset {preset!r}; it has {', '.join(PRESETS)}")
    conv_names = {f.name for f in fields(Conversion)}
    conversion = {k: opts.pop(k) for k in list(opts) if k in conv_names}
    known = {f.name for f in fields(CalibrationOptions)} - {"preset", "conversion"}
    unknown = sorted(set(opts) - known)
    if unknown:
        raise Unavailable(f"this snn2hw has no option {', '.join(unknown)}")
    return CalibrationOptions(**{"timesteps": timesteps, "samples": samples, "seed": seed,
                                 **opts}, preset=preset, conversion=conversion)


def in_window(options: dict, window: str) -> dict:
    """The options with T counted in ``window`` (``fill`` or ``pipelined``)."""
    return {**options, "window": window}


def window_of(options: dict) -> str:
    """How a run with these options counts T: ``fill`` or ``pipelined``."""
    return conversion_of(calibration_options(options, 0, 1, 1)).window


@dataclass
class OursResult:
    calibration: Calibration
    accuracy: dict[int, float]     # at each checkpoint, counted in ``convention``
    convention: str
    seconds: float


def calibrate(net, x_cal: np.ndarray, options: dict, seed: int, calib_timesteps: int,
              device: str = "cpu") -> Calibration:
    """The calibration step on ``x_cal`` (training split) with ``options``."""
    opts = calibration_options(options, seed, calib_timesteps, len(x_cal))
    return pipeline.run_calibration(net, x_cal, opts, device)


def run(graph, net, x_cal: np.ndarray, x: np.ndarray, y: np.ndarray, options: dict,
        checkpoints: Sequence[int], seed: int, calib_timesteps: int, batch: int = 64,
        device: str = "cpu") -> OursResult:
    """Calibrate on ``x_cal`` (training split) and evaluate on ``x``, ``y`` at every
    checkpoint (counted in the options' window), from one causal run; the network evaluated
    is the calibrated one (its per-channel factors and bias offsets applied, as the
    calibrate and export steps apply them)."""
    opts = calibration_options(options, seed, calib_timesteps, len(x_cal))
    conversion = conversion_of(opts)
    start = time.monotonic()
    cal = pipeline.run_calibration(net, x_cal, opts, device)
    ev = evaluate(graph, calibrated_network(net, cal), cal.scales, x, y, list(checkpoints),
                  seed, device,
                  batch_size=batch, source_scales=cal.source_scales, reset=cal.reset,
                  conversion=conversion)
    return OursResult(cal, dict(ev.snn_accuracy), conversion.window,
                      time.monotonic() - start)


def float_prepared(net, cal: Calibration, device: str = "cpu"):
    return simulate.prepare_float(net, cal.scales, device, source_scales=cal.source_scales,
                                  reset=cal.reset)


def fixed_prepared(net, cal: Calibration, profile: str = "loihi_sim", device: str = "cpu"):
    """The fixed-point network of ``profile`` in the bit-accurate reference simulator."""
    from snn2hw.hardware import profiles
    from snn2hw.quantize import quantize
    from snn2hw.steps.evaluate import prepare_network

    qnet = quantize(net, cal.scales, profiles.load(profile), cal.source_scales, cal.reset)
    return prepare_network(qnet, device)


def throughput(prep, net, cal: Calibration, x: np.ndarray, timesteps: int, batch: int,
               seed: int) -> float:
    """Seconds to simulate ``x`` for ``timesteps`` steps, Poisson spikes drawn inside."""
    enc = make_encoder("poisson", x, input_scale=cal.scales[net.input], seed=seed,
                       stream=EVALUATION_STREAM)
    start = time.perf_counter()
    simulate.simulate(prep, enc, timesteps, batch_size=batch)
    return time.perf_counter() - start
