"""NIR (Neuromorphic Intermediate Representation) -> IR: spiking networks made elsewhere
(snnTorch, sinabs, Norse, or ``nir`` directly) as input of snn2hw.

The network is already spiking, so its thresholds come with it (:func:`native_calibration`)
and ``snn2hw calibrate`` is optional; ``export`` quantises it to a profile and ``run`` runs
it on Lava against the fixed-point reference. A NIR network reads spikes: snn2hw feeds it
the same signed rate code as every model (a value x in [0, 1] spikes with probability x;
the input scale is 1 unless a calibration measured one), with one step per synapse hop
(:mod:`snn2hw.snn`). Files that snn2hw wrote carry their preprocessing in the metadata.

The NIR package is imported only when a ``.nir`` file is read.
"""
from __future__ import annotations

import json
from pathlib import Path

from .. import ir
from .convert import SOURCE_KEY, THRESHOLDS_KEY, to_ir
from .scan import read, scan

INPUT_SCALE = 1.0     # a value of 1 fires an input at every step


def import_nir(path: str | Path) -> ir.Graph:
    """Read, scan (one error lists every unsupported node) and convert a NIR file."""
    graph = read(path)
    inputs = scan(graph, str(path))
    converted = to_ir(graph, inputs, str(path))
    meta = getattr(graph, "metadata", None) or {}
    pre = meta.get("snn2hw.preprocess")
    if pre is not None:
        converted.metadata["snn2hw.preprocess"] = str(pre.decode() if isinstance(pre, bytes)
                                                      else pre)
    return converted


def native_calibration(graph: ir.Graph):
    """The thresholds the NIR file carried, as a Calibration (None for other graphs)."""
    if graph.metadata.get(SOURCE_KEY) != "nir":
        return None
    from ..calibrate import Calibration

    scales = {graph.input: INPUT_SCALE} | json.loads(graph.metadata[THRESHOLDS_KEY])
    sources = dict.fromkeys(scales, 1.0)
    return Calibration("nir", scales, {"reset": "zero", "source": "nir thresholds"},
                       [], sources)


__all__ = ["import_nir", "native_calibration", "read", "scan"]
