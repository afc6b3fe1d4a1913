"""The options of each step, as frozen dataclasses (what the CLI's flags fill in).

A field left at ``None`` means "not given": :mod:`snn2hw.steps.settings` resolves it, in one
place, from the calibration file or the model, else from the documented default. Error
messages of the steps name these fields (``reset='subtract'``); the CLI maps them to its
flags (:mod:`snn2hw.cli.flags`).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DataOptions:
    """Where the samples come from and how they are read."""
    spec: str | None = "digits"       # a data set name, .npz file or image folder
    mean: tuple[float, ...] | None = None   # replaces the model's preprocessing mean
    std: tuple[float, ...] | None = None
    device: str = "cpu"               # torch device of the simulator
    maxpool: str = "refuse"           # or "avg": MaxPool converted as average pooling


@dataclass(frozen=True)
class CalibrationOptions:
    """Threshold balancing (:func:`snn2hw.calibrate.calibrate`) and the conversion options.
    ``preset`` (:mod:`snn2hw.steps.presets`) sets reset, percentile and the conversion
    options (:class:`snn2hw.snn.options.Conversion`); each one given here overrides it."""
    method: str = "spike-norm"        # or "max-act"
    timesteps: int = 256
    samples: int = 256                # from the train split
    seed: int = 0                     # input spikes (calibration stream)
    reset: str | None = None          # None: the preset's, else "zero" (or a calibration's)
    percentile: float | None = None   # None: the preset's, else 100
    junction: str | None = None       # None: the default, "per-source" (or a calibration's)
    rate_match: bool = True
    preset: str | None = None         # None: "paper" (every default)
    conversion: dict[str, object] = field(default_factory=dict)  # Conversion fields given


@dataclass(frozen=True)
class EvaluationOptions:
    """The test-split evaluation after calibration or export."""
    samples: int | None = None        # None: the whole test split
    timesteps: tuple[int, ...] | None = None   # None: the calibration's T


@dataclass(frozen=True)
class RunOptions:
    """Running an export on its backend next to the reference simulator."""
    data: str = "digits"
    samples: int = 20
    timesteps: int = 256
    seed: int | None = None           # None: the export's seed
    timeout: float | None = None      # seconds; None: the backend's default
    device: str = "cpu"
    profile: str = "loihi_sim"        # a spiking-network file (NIR): quantised for it first


@dataclass(frozen=True)
class FormatOptions:
    """What ``export`` writes (:mod:`snn2hw.backends`' output formats)."""
    format: str = "h5"                # h5, nir, netx
    nir_time: str = "same-step"       # nir: "same-step" (NIR readers) or "hop" (Delay nodes)
    force: bool = False               # nir: write what a reader would compute differently


@dataclass(frozen=True)
class ReportOptions:
    """The sparsity report (:mod:`snn2hw.analysis.sparsity`)."""
    samples: int = 100
    timesteps: int = 256
    seed: int = 0


@dataclass(frozen=True)
class SweepOptions:
    """What ``sweep`` varies and measures (:mod:`snn2hw.steps.sweep`)."""
    presets: tuple[str, ...] = ("paper", "fast")
    methods: tuple[str, ...] = ("spike-norm", "max-act")
    timesteps: tuple[int, ...] = (8, 16, 32, 64, 128, 256)
    eval_samples: int | None = None      # None: the whole test split
    calib_timesteps: int | None = None   # None: the largest T
    profile: str = "loihi2"              # whose [energy] figures estimate the energy
