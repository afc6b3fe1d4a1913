"""calibrate package: the public names of :mod:`.methods`, loaded on first use, so that
importing a light submodule (``calibrate.junction``, which the CLI's parser reads for its
choices) does not import torch before the command can handle Ctrl-C."""
from __future__ import annotations

_PUBLIC = ("Calibration", "input_scale", "thresholds", "max_act", "spike_norm", "METHODS",
           "calibrate")


def __getattr__(name: str):
    if name in _PUBLIC:
        from . import methods

        return getattr(methods, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))


__all__ = list(_PUBLIC)
