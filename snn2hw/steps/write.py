"""The write step: hand a network to the writer of an output format (the one registry of
output formats, :mod:`snn2hw.backends`: ``h5``, ``nir``, ``netx``, a backend's own). An
``integer`` writer gets the export (:class:`~snn2hw.artifacts.export.ExportArtifact`), a
``float`` writer the calibrated float spiking network
(:class:`~snn2hw.steps.exchange.FloatNetwork`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import backends
from ..artifacts.export import ExportArtifact
from ..errors import InputError
from ..fileio import check_output_path
from ..quantize.qnet import QuantizedNetwork


def write_network(fmt: str, network: Any, path: str | Path, options: dict | None = None,
                  inputs: tuple = ()) -> list[str]:
    """Write ``network`` in format ``fmt`` to ``path`` (never over one of ``inputs``);
    returns the writer's notes."""
    writer = backends.writer(fmt)
    integer = isinstance(network, (ExportArtifact, QuantizedNetwork))
    if integer != (writer.needs == "integer"):
        raise InputError(f"format {fmt} writes the {writer.needs} network, not the "
                         f"{'integer' if integer else 'float'} one")
    check_output_path(str(path), inputs)
    return list(writer.write(Path(path), network, dict(options or {})))
