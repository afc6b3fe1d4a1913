"""Our side of ``benchmarks/peers.py``: snn2hw through its library API (the calibrate and
evaluate steps of :mod:`snn2hw.pipeline`), one named configuration = one options dict.

An options dict holds ``method`` (``spike-norm`` or ``max-act``), ``convention`` (how the
library counts T: ``fill``, today's, or ``window``) and any keyword that
``pipeline.run_calibration`` or ``pipeline.evaluate`` takes (``reset``, ``percentile``,
``junction``, and the options issue 12 adds as they land). ``{"preset": NAME}`` takes the
library's own preset (``snn2hw.presets.PRESETS[NAME]``, issue 12) with the dict's other
keys on top; a preset or option this snn2hw does not have is skipped with the reason,
never dropped silently. Adding a configuration is one line in ``CONFIGS``.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from snn2hw import pipeline, simulate
from snn2hw.calibrate import Calibration
from snn2hw.encoding import PoissonEncoder

CONFIGS: dict[str, dict] = {
    # the paper's configuration (Sengupta et al. 2019): Spike-Norm, reset to zero, maximum
    "paper": {"method": "spike-norm", "reset": "zero", "percentile": 100.0},
    # the best options before issue 12
    "best": {"method": "max-act", "reset": "subtract", "percentile": 99.9},
    "best-spike-norm": {"method": "spike-norm", "reset": "subtract", "percentile": 99.9},
    # issue 12's low-latency preset (direct input, theta/2, per-channel scales, bias
    # calibration, membrane read-out, pipelined window), once snn2hw has it
    "fast": {"preset": "fast"},
}
DESCRIPTIONS = {
    "paper": "spike-norm, reset zero, p100",
    "best": "max-act, reset subtract, p99.9",
    "best-spike-norm": "spike-norm, reset subtract, p99.9",
    "fast": "--preset fast",
}
OWN_KEYS = ("method", "convention", "preset")


class Unavailable(Exception):
    """This snn2hw cannot run the configuration (the message says why)."""


def library_preset(name: str) -> dict:
    """The options of snn2hw's preset ``name`` (issue 12)."""
    try:
        from snn2hw.presets import PRESETS
    except ImportError:
        raise Unavailable(f"this snn2hw has no presets (issue 12); --preset {name} skipped")
    if name not in PRESETS:
        raise Unavailable(f"snn2hw has no preset {name!r}; it has {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def resolve(options: dict) -> dict:
    """The options with a preset expanded (explicit keys win)."""
    if "preset" not in options:
        return dict(options)
    rest = {k: v for k, v in options.items() if k != "preset"}
    return {**library_preset(options["preset"]), **rest}


def split(options: dict, calibrate=None, evaluate=None) -> tuple[dict, dict]:
    """Keyword arguments for (run_calibration, evaluate); raises :class:`Unavailable` for
    options neither takes. The reset goes to calibration (evaluate takes the calibrated
    one)."""
    cal_params = inspect.signature(calibrate or pipeline.run_calibration).parameters
    ev_params = inspect.signature(evaluate or pipeline.evaluate).parameters
    cal, ev, unknown = {}, {}, []
    for key, value in options.items():
        if key in OWN_KEYS:
            continue
        if key in cal_params:
            cal[key] = value
        elif key in ev_params:
            ev[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise Unavailable(f"this snn2hw has no option {', '.join(sorted(unknown))}")
    return cal, ev


@dataclass
class OursResult:
    calibration: Calibration
    accuracy: dict[int, float]     # at each checkpoint, counted in ``convention``
    convention: str
    seconds: float


def calibrate(net, x_cal: np.ndarray, options: dict, seed: int, calib_timesteps: int,
              device: str = "cpu") -> Calibration:
    """The calibration step on ``x_cal`` (training split) with ``options``."""
    opts = resolve(options)
    cal_kw, _ = split(opts)
    return pipeline.run_calibration(net, x_cal, opts.get("method", "spike-norm"),
                                    calib_timesteps, seed, device, **cal_kw)


def run(graph, net, x_cal: np.ndarray, x: np.ndarray, y: np.ndarray, options: dict,
        checkpoints: Sequence[int], seed: int, calib_timesteps: int, batch: int = 64,
        device: str = "cpu") -> OursResult:
    """Calibrate on ``x_cal`` (training split) and evaluate on ``x``, ``y`` at every
    checkpoint, from one causal run."""
    opts = resolve(options)
    _, ev_kw = split(opts)
    start = time.monotonic()
    cal = calibrate(net, x_cal, opts, seed, calib_timesteps, device)
    ev = pipeline.evaluate(graph, net, cal.scales, x, y, list(checkpoints), seed, device,
                           batch_size=batch, source_scales=cal.source_scales,
                           reset=cal.reset, **ev_kw)
    return OursResult(cal, dict(ev.snn_accuracy), opts.get("convention", "fill"),
                      time.monotonic() - start)


def float_prepared(net, cal: Calibration, device: str = "cpu"):
    return simulate.prepare_float(net, cal.scales, device, source_scales=cal.source_scales,
                                  reset=cal.reset)


def fixed_prepared(net, cal: Calibration, profile: str = "loihi_sim", device: str = "cpu"):
    """The fixed-point network of ``profile`` in the bit-accurate reference simulator."""
    from snn2hw import profiles
    from snn2hw.deploy import prepare_network
    from snn2hw.quantize import quantize

    qnet = quantize(net, cal.scales, profiles.load(profile), cal.source_scales, cal.reset)
    return prepare_network(qnet, device)


def throughput(prep, net, cal: Calibration, x: np.ndarray, timesteps: int, batch: int,
               seed: int) -> float:
    """Seconds to simulate ``x`` for ``timesteps`` steps, Poisson spikes drawn inside."""
    enc = PoissonEncoder(x, cal.scales[net.input], seed, pipeline.EVALUATION_STREAM)
    start = time.perf_counter()
    simulate.simulate(prep, enc, timesteps, batch_size=batch)
    return time.perf_counter() - start
