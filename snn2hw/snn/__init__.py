"""snn package: the public names of :mod:`.network`."""
from .network import Term, SpikingLayer, SpikingNetwork, lower  # noqa: F401
