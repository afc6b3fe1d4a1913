"""The spiking network: the public names of :mod:`.network`, loaded on first use, so that
importing a light submodule (``snn.neurons``'s registry, which the hardware profiles and
the CLI's parser read) does not import torch before the command can handle Ctrl-C."""
from __future__ import annotations

_PUBLIC = ("Term", "SpikingLayer", "SpikingNetwork", "lower")


def __getattr__(name: str):
    if name in _PUBLIC:
        from . import network

        return getattr(network, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))


__all__ = list(_PUBLIC)
