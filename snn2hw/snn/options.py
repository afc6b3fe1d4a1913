"""The conversion options of the low-latency configurations, in one validated dataclass.

Every field's default is the paper's configuration (Sengupta et al. 2019), so a calibration
or export made without options is the one snn2hw always made, byte for byte. Each option is
recorded in the calibration's ``params`` (only where it differs from its default, so older
files read as the defaults they were made with) and carried into exports and onto Lava.

- ``coding``: the input coding, a name in the encoder registry. ``poisson`` (the paper's
  signed rate code) or ``direct`` (the pixel value, quantised, drives the first layer as a
  current every step).
- ``v_init``: the membrane potential each neuron starts a sample with, as a fraction of
  its threshold: 0 (the paper) or 0.5 (theta/2, QCFS's shift: rates round to nearest instead
  of down). The reset between samples restores it.
- ``per_channel``: one scale per output channel (folded into the weights, so hardware keeps
  one threshold per layer) instead of one per layer.
- ``bias_calibration``: after the thresholds, correct each channel's bias by the mean
  difference between the ANN activation and the SNN's rate times threshold, layer by layer
  (SNN Calibration "light", Li et al. 2021).
- ``readout``: ``spikes`` (class = argmax of output spike counts) or ``membrane`` (argmax of
  the output layer's accumulated potential).
- ``window``: the meaning of T. ``fill`` (the paper's and every release before the option):
  T counts every step from the first input step, so a layer ``depth`` hops deep integrates
  T - depth steps. ``pipelined``: every layer integrates a full window of T steps per sample,
  as on Loihi with samples streamed back to back: a layer ``depth`` hops deep integrates
  steps depth .. T + depth - 1 (0-based) of a sample, so its result is there after
  T + depth steps (:meth:`Conversion.latency`; the last step's index is T + depth - 1).
- ``rounding_bias``: a fixed-point export moves each neuron's mean weight-rounding error
  into its bias current: the calibration records every source's mean rate on the
  calibration images (:mod:`snn2hw.calibrate.rates`) and the quantiser subtracts the rounded
  weights' error times those rates from the bias (:mod:`snn2hw.quantize.roundingbias`).
  Float networks are unchanged.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..errors import InputError

CODINGS = ("poisson", "direct")   # the encoder registry's names (snn/encoders)
READOUTS = ("spikes", "membrane")
WINDOWS = ("fill", "pipelined")
V_INITS = (0.0, 0.5)


@dataclass(frozen=True)
class Conversion:
    coding: str = "poisson"
    v_init: float = 0.0
    per_channel: bool = False
    bias_calibration: bool = False
    readout: str = "spikes"
    window: str = "fill"
    rounding_bias: bool = False

    def __post_init__(self) -> None:
        for name, value, allowed in (("coding", self.coding, CODINGS),
                                     ("readout", self.readout, READOUTS),
                                     ("window", self.window, WINDOWS)):
            if value not in allowed:
                raise InputError(f"unknown {name} {value!r}; known: {', '.join(allowed)}")
        if float(self.v_init) not in V_INITS:
            raise InputError(f"initial potential must be 0 or 0.5 of the threshold, got "
                             f"{self.v_init}")
        object.__setattr__(self, "v_init", float(self.v_init))

    def to_params(self) -> dict[str, object]:
        """The options that differ from the defaults, for a file's ``params``."""
        default = Conversion()
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}

    @classmethod
    def from_params(cls, params: dict[str, object]) -> Conversion:
        """The options recorded in ``params``; a missing key is its default (files made
        before the option existed were made with the default)."""
        names = {f.name for f in fields(cls)}
        found = {k: params[k] for k in names if k in params}
        for key in ("per_channel", "bias_calibration", "rounding_bias"):
            if key in found:
                found[key] = bool(found[key])
        return cls(**found)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def layer_v_init(self, is_output: bool) -> float:
        """A layer's initial potential (fraction of its threshold): ``v_init``, but 0 for
        the output layer of the membrane read-out, which never fires and whose potential
        is the read-out (an offset there would only bring v nearer its clip)."""
        return 0.0 if is_output and self.readout == "membrane" else self.v_init

    def layer_reset(self, reset: str, is_output: bool) -> str:
        """A layer's reset: the network's ``reset``, but by subtraction for the output
        layer of the membrane read-out, whose read-out is its spike count times the
        threshold plus v (:mod:`snn2hw.quantize.readout`; a float output never fires)."""
        return "subtract" if is_output and self.readout == "membrane" else reset

    def window_offset(self, depth: int) -> int:
        """The step (0-based, from the sample's first input step) at which a layer
        ``depth`` hops deep starts its window of T steps: 0 for ``fill``, ``depth`` for
        ``pipelined``."""
        return depth if self.window == "pipelined" else 0

    def latency(self, timesteps: int, depth: int) -> int:
        """Steps from a sample's first input step to the end of the output layer's
        window (``depth``: the output layer's hops from the input, one step each): T for
        ``fill``; T + depth for ``pipelined``, where the output's window (steps depth ..
        T + depth - 1, 0-based) ends at step T + depth - 1."""
        return timesteps + self.window_offset(depth)
