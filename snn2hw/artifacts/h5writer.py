"""The default output format of ``snn2hw export`` (``h5``) as a writer of the one registry
of output formats (:mod:`snn2hw.backends`): the export as our versioned HDF5
(:func:`snn2hw.artifacts.export.save_export`, imported when a file is written, so that the
command line lists the formats before torch loads)."""
from __future__ import annotations

from pathlib import Path
from typing import Any


class H5Writer:
    name = "h5"
    suffix = ".h5"
    needs = "integer"        # the export (ExportArtifact)

    def write(self, path: Path, network: Any, options: dict) -> list[str]:
        from .export import save_export

        save_export(path, network)
        return []


H5_WRITER = H5Writer()

__all__ = ["H5_WRITER", "H5Writer"]
