"""The NIR writer (``snn2hw export --format nir``): the calibrated float SNN as a NIR graph
(:mod:`.build`, :mod:`.write`). Registered in :func:`snn2hw.backends._register_shipped`;
``nir`` itself is imported only when a file is written."""
from __future__ import annotations


class NirWriter:
    name = "nir"
    suffix = ".nir"
    needs = "float"          # the calibrated float SNN (snn2hw.steps.exchange.FloatNetwork)

    def constrain(self, profile):
        return profile

    def write(self, path, network, options: dict) -> list[str]:
        from .write import write_nir

        return write_nir(path, network, options)


WRITER = NirWriter()

__all__ = ["WRITER"]
