"""Our side of ``benchmarks/peers.py``: snn2hw through its library API (the calibrate and
evaluate steps of :mod:`snn2hw.steps.pipeline`), one named configuration = one options
dict.

An options dict holds ``method`` (``spike-norm`` or ``max-act``) and any keyword that
``pipeline.run_calibration`` or ``pipeline.evaluate`` takes (``reset``, ``percentile``,
``junction``, ...). The low-latency options of issue 12 (the fields of
:class:`snn2hw.snn.options.Conversion`: ``coding``, ``v_init``, ``per_channel``,
``bias_calibration``, ``readout``, ``window``) go to a step that takes them by name, or
grouped as ``conversion=Conversion(...)`` to a step with a ``conversion`` parameter.
``window`` (``fill``, the default, or ``pipelined``) also says how the run counts T.
``{"preset": NAME}`` takes the library's preset ``NAME`` (a ``PRESETS`` dict in
:mod:`snn2hw.snn.options` or :mod:`snn2hw.presets`) with the dict's other keys on top.
A preset or option this snn2hw does not have is skipped with the reason, never dropped
silently. Adding a configuration is one line in ``CONFIGS``.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from snn2hw.calibrate import Calibration
from snn2hw.snn import simulate
from snn2hw.snn.encoders.poisson import PoissonEncoder
from snn2hw.steps import pipeline

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
OWN_KEYS = ("method", "preset")
PRESET_MODULES = ("snn2hw.snn.options", "snn2hw.presets")


class Unavailable(Exception):
    """This snn2hw cannot run the configuration (the message says why)."""


def library_preset(name: str) -> dict:
    """The options of snn2hw's preset ``name`` (issue 12)."""
    import importlib

    for module in PRESET_MODULES:
        try:
            presets = getattr(importlib.import_module(module), "PRESETS", None)
        except ImportError:
            presets = None
        if presets is not None:
            break
    else:
        raise Unavailable(f"this snn2hw has no presets (issue 12); --preset {name} skipped")
    if name not in presets:
        raise Unavailable(f"snn2hw has no preset {name!r}; it has {', '.join(presets)}")
    preset = presets[name]
    return dict(preset if isinstance(preset, dict) else vars(preset))


def resolve(options: dict) -> dict:
    """The options with a preset expanded (explicit keys win)."""
    if "preset" not in options:
        return dict(options)
    rest = {k: v for k, v in options.items() if k != "preset"}
    return {**library_preset(options["preset"]), **rest}


def _conversion_fields() -> tuple[str, ...]:
    try:
        from dataclasses import fields

        from snn2hw.snn.options import Conversion
    except ImportError:
        return ()
    return tuple(f.name for f in fields(Conversion))


def _assign(key, value, targets: list[tuple[dict, set]], grouped: dict, conv: set) -> bool:
    """Put one option into the first step that takes it by name, or into the grouped
    Conversion options when a step takes ``conversion``; False if none does."""
    for kwargs, params in targets:
        if key in params:
            kwargs[key] = value
            return True
    if key in conv and any("conversion" in params for _, params in targets):
        grouped[key] = value
        return True
    return False


def split(options: dict, calibrate=None, evaluate=None) -> tuple[dict, dict]:
    """Keyword arguments for (run_calibration, evaluate); raises :class:`Unavailable` for
    options neither takes. The reset goes to calibration (evaluate takes the calibrated
    one)."""
    cal_params = set(inspect.signature(calibrate or pipeline.run_calibration).parameters)
    ev_params = set(inspect.signature(evaluate or pipeline.evaluate).parameters)
    cal, ev, grouped, unknown = {}, {}, {}, []
    targets = [(cal, cal_params), (ev, ev_params)]
    for key, value in options.items():
        if key not in OWN_KEYS and not _assign(key, value, targets, grouped,
                                               set(_conversion_fields())):
            unknown.append(key)
    if unknown:
        raise Unavailable(f"this snn2hw has no option {', '.join(sorted(unknown))}")
    if grouped:
        from snn2hw.snn.options import Conversion

        for kwargs, params in targets:
            if "conversion" in params:
                kwargs["conversion"] = Conversion(**grouped)
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
    return OursResult(cal, dict(ev.snn_accuracy), opts.get("window", "fill"),
                      time.monotonic() - start)


def float_prepared(net, cal: Calibration, device: str = "cpu"):
    return simulate.prepare_float(net, cal.scales, device, source_scales=cal.source_scales,
                                  reset=cal.reset)


def fixed_prepared(net, cal: Calibration, profile: str = "loihi_sim", device: str = "cpu"):
    """The fixed-point network of ``profile`` in the bit-accurate reference simulator."""
    from snn2hw.hardware import profiles
    from snn2hw.quantize import quantize
    from snn2hw.steps.deploy import prepare_network

    qnet = quantize(net, cal.scales, profiles.load(profile), cal.source_scales, cal.reset)
    return prepare_network(qnet, device)


def throughput(prep, net, cal: Calibration, x: np.ndarray, timesteps: int, batch: int,
               seed: int) -> float:
    """Seconds to simulate ``x`` for ``timesteps`` steps, Poisson spikes drawn inside."""
    enc = PoissonEncoder(x, cal.scales[net.input], seed, pipeline.EVALUATION_STREAM)
    start = time.perf_counter()
    simulate.simulate(prep, enc, timesteps, batch_size=batch)
    return time.perf_counter() - start
