"""The input encoders, by name: what drives the first layer, step by step.

An encoder turns the samples into the input layer's values for a window of steps. The
simulator (:func:`snn2hw.snn.simulate.simulate`), Spike-Norm's stored spike trains
(:class:`snn2hw.calibrate.spikestore.SpikeStore`), evaluation and the backends' input all
get them through :func:`make_encoder`; nothing else constructs an encoder. The name is the
calibration's input coding (:class:`snn2hw.snn.options.Conversion` ``coding``).

Every encoder is deterministic: the values of sample ``i`` depend only on the samples, the
settings of :class:`EncoderSettings` and ``indices[i]`` (not on batch size or time
chunking), so the same seed gives the same input on every device and on the backend.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ...errors import InputError


class Encoder(Protocol):
    """What the simulator and Spike-Norm use of an input encoder."""

    shape: tuple[int, ...]  # one sample's input shape
    constant: bool          # the same values at every step (an analog input)

    def __len__(self) -> int:
        """The number of samples."""

    def reset(self) -> None:
        """Forget the streams drawn so far (a new batch starts from step 0)."""

    def chunk(self, start: int, stop: int, t0: int, t1: int) -> np.ndarray:
        """Input of samples [start, stop) at steps [t0, t1): (B, t1 - t0, *shape); steps
        are requested in order per sample, a request from t0 = 0 restarts a sample."""

    def full(self, start: int, stop: int, timesteps: int) -> np.ndarray:
        """``chunk(start, stop, 0, timesteps)``."""

    # ``chunk`` gives int8 spikes (-1, 0, +1) or, for an analog coding, float32 values.

    def signs(self, start: int, stop: int) -> np.ndarray:
        """The sign (-1, 0, +1, int8) that every value of a pixel carries, (B, *shape).
        For a spike code (``constant`` False) the values are this sign times a 0/1
        magnitude; a ``constant`` code's values are the same at every step (an analog
        input: Spike-Norm then stores one step of it)."""


@dataclass(frozen=True)
class EncoderSettings:
    """An encoder's settings. ``input_scale``: the input value that one unit of input
    stands for (the calibration's input scale); ``seed`` and ``stream`` select the random
    streams (stream 0 for calibration, 1 for evaluation, so the two never share noise);
    ``indices``: each sample's index in its data set (its stream), default 0..N-1;
    ``levels``: for an analog coding, the integer that a full-scale input becomes in a
    quantised network (None: real values)."""

    input_scale: float
    seed: int = 0
    stream: int = 0
    indices: np.ndarray | None = None
    levels: int | None = None


EncoderFactory = Callable[[np.ndarray, EncoderSettings], Encoder]
_ENCODERS: dict[str, EncoderFactory] = {}


def register(name: str) -> Callable[[EncoderFactory], EncoderFactory]:
    """Decorator: register an encoder class (or factory) taking (x, settings) as ``name``;
    a second one with the same name is an error at import time."""
    def add(factory: EncoderFactory) -> EncoderFactory:
        if name in _ENCODERS:
            raise ValueError(f"encoder {name!r} registered twice")
        _ENCODERS[name] = factory
        return factory
    return add


def names() -> tuple[str, ...]:
    """The registered encoders, in registration order."""
    return tuple(_ENCODERS)


def check_coding(name: str) -> str:
    """``name`` if it is a registered encoder, else an InputError listing the known ones."""
    if not isinstance(name, str) or name not in _ENCODERS:
        raise InputError(f"unknown input coding {name!r}; known: {', '.join(_ENCODERS)}")
    return name


def make_encoder(name: str, x, *, input_scale: float, seed: int = 0, stream: int = 0,
                 indices: np.ndarray | None = None, levels: int | None = None) -> Encoder:
    """The encoder registered as ``name`` over samples ``x`` (an array or lazy samples)."""
    factory = _ENCODERS[check_coding(name)]
    return factory(x, EncoderSettings(input_scale, seed, stream, indices, levels))
