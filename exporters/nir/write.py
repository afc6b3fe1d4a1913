"""Write the float SNN as a NIR file (``nir``, pinned in constraints.txt), refusing what a
NIR reader would silently compute differently.

What NIR has no standard field for is written as graph metadata (strings, keys
``snn2hw.*``): the reset rule, the time convention, the input coding and its scale and
preprocessing, the initial membrane potential (0) and the read-out. Refused with exit 2
unless ``--force`` (the file is then written, the metadata says what differs):

- reset by subtraction: NIR's IF sets v to v_reset after a spike; a reader that follows
  the standard resets to zero.
- ``--nir-time hop`` with bias currents: snn2hw keeps a layer idle (no bias current)
  until the first input spike can reach it; a reader integrates the bias from step 0.
- the conversion options a reader cannot know (:mod:`snn2hw.snn.options`): direct input
  coding, an initial potential other than 0, read-out by membrane potential.

Never written (exit 2): asymmetric conv padding, pooling with padding or ceil_mode, a
bias that varies within a channel, channel concatenations; NIR's nodes cannot hold them.

Known readers (checked in tests/test_nir_export.py):
- sinabs 2.0.3 (``sinabs.from_nir``) reads IF as ``IAFSqueeze`` with its defaults:
  reset by *subtraction* (it ignores v_reset), several spikes per step when v reaches
  2 thresholds (MultiSpike), a spike at v >= threshold (NIR: >), and v kept at or above
  -threshold (``min_v_mem``). It matches snn2hw's float simulator under reset by
  subtraction and the same-step convention, on networks whose potentials stay in
  [-threshold, 2 thresholds) and never equal the threshold exactly.
- snnTorch 1.0.0 (``import_from_nir``) reads IF as ``Leaky(beta=0.9)``: a leaky neuron
  with reset by subtraction, whatever the file says; its results differ from NIR's IF.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from snn2hw.errors import InputError
from snn2hw.fileio import atomic_path

from .build import Built, build

FORMAT_VERSION = 1


def metadata(fnet, time: str) -> dict[str, str]:
    cal = fnet.calibration
    return {
        "snn2hw.format_version": str(FORMAT_VERSION),
        "snn2hw.neuron": "IF: v += sum of inputs (r = 1); spike where v > v_threshold; then "
                         + ("v -= v_threshold" if cal.reset == "subtract" else "v = v_reset"),
        "snn2hw.reset": cal.reset,
        "snn2hw.time": time,
        "snn2hw.time_step": "1 (Delay nodes count steps)" if time == "hop" else "1",
        "snn2hw.initial_v": "0",
        "snn2hw.input_coding": "signed rate code: a value x spikes with probability "
                               "min(|x| / input_scale, 1) per step, each spike carrying "
                               "sign(x) (-1 or +1)",
        "snn2hw.input_scale": repr(float(fnet.input_scale)),
        "snn2hw.preprocess": fnet.preprocess,
        "snn2hw.readout": "argmax of the output layer's spike counts",
        "snn2hw.calibration": json.dumps({"method": cal.method, "params": cal.params},
                                         sort_keys=True, default=str),
        "snn2hw.model": Path(fnet.model).name,
    }


def conversion_refusals(params: dict) -> list[str]:
    """The low-latency conversion options (snn2hw.snn.options) a NIR reader cannot know."""
    from snn2hw.snn.options import Conversion

    conv = Conversion.from_params(params)
    found = []
    if conv.coding != "poisson":
        found.append(f"its input coding is {conv.coding!r} (the value as a current every "
                     "step), a reader feeds spikes")
    if conv.v_init:
        found.append(f"its neurons start at {conv.v_init:g} of the threshold; NIR has no "
                     "initial potential and readers start at 0")
    if conv.readout != "spikes":
        found.append(f"it is read out by {conv.readout} potential, a reader counts spikes")
    return found


def refusals(fnet, time: str) -> list[str]:
    """What a NIR reader would silently get wrong (refused unless --force)."""
    found = conversion_refusals(fnet.calibration.params)
    if fnet.calibration.reset == "subtract":
        found.append("its neurons reset by subtraction, which NIR's IF cannot say (it "
                     "resets to v_reset); a reader following the standard resets to zero")
    if time == "hop" and any(la.bias is not None for la in fnet.net.layers):
        found.append("with --nir-time hop its bias currents start when the first input "
                     "spike arrives, a reader's from step 0")
    return found


def to_nir(built: Built, meta: dict[str, str]):
    import nir

    nodes = {}
    for name, spec in built.nodes.items():
        fields = {k: (np.asarray(v, dtype=np.float64) if isinstance(v, np.ndarray) else v)
                  for k, v in spec.fields.items()}
        if spec.kind == "Conv2d":
            for key in ("stride", "padding", "dilation"):
                fields[key] = tuple(int(x) for x in fields[key])
        if spec.kind in ("SumPool2d", "AvgPool2d"):
            fields = {k: np.asarray(v, dtype=np.int64) for k, v in fields.items()}
        nodes[name] = getattr(nir, spec.kind)(**fields)
    try:
        return nir.NIRGraph(nodes=nodes, edges=list(built.edges), metadata=dict(meta))
    except ValueError as exc:  # nir's own type check of the graph
        raise InputError(f"nir refuses the graph: {str(exc).splitlines()[0]}") from None


def write_nir(path: str | Path, fnet, options: dict) -> list[str]:
    """Write ``fnet`` (:class:`snn2hw.steps.exchange.FloatNetwork`) to ``path``; returns notes."""
    import nir

    time = options.get("nir_time") or "same-step"
    cal = fnet.calibration
    problems = refusals(fnet, time)
    if problems and not options.get("force"):
        raise InputError(f"a NIR reader would compute this network differently: "
                         f"{'; '.join(problems)}",
                         hint="--force writes it anyway, with the difference in the file's "
                              "metadata (README, 'Interoperability')")
    built = build(fnet.net, cal.scales, cal.source_scales, time)
    graph = to_nir(built, metadata(fnet, time))
    with atomic_path(path) as tmp:
        nir.write(str(tmp), graph)
    notes = [f"{len(fnet.net.layers)} IF layers, time convention {time}, reset {cal.reset}"]
    notes += [f"written with --force although {p}" for p in problems]
    return notes
