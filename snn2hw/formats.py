"""The file formats snn2hw reads models from (the registry of input formats).

*Input formats* are keyed by file suffix: ``.onnx`` (a trained ANN, :mod:`snn2hw.onnx`) and
``.nir`` (a spiking network, :mod:`snn2hw.nir`). Each turns a file into the IR
(:class:`snn2hw.ir.Graph`); a format whose files are already spiking networks also gives
the thresholds it carries (:func:`native_calibration`), so that calibration is optional.
``calibrate``, ``export``, ``inspect``, ``report`` and ``run`` reach the importers only
through :func:`import_model`.

The formats snn2hw *writes* (``snn2hw export --format h5|nir|netx``) are registered in
the one registry of output formats, :mod:`snn2hw.backends` (``output_formats``, ``writer``,
``constrain``), next to the backends that may bring their own.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from .calibrate import Calibration
    from .ir import Graph


@dataclass(frozen=True)
class InputFormat:
    name: str
    suffix: str
    load: Callable[[str | Path, str], Graph]            # (path, maxpool) -> IR
    calibration: Callable[[Graph], Calibration | None]  # thresholds the file carries


def _load_onnx(path: str | Path, maxpool: str) -> Graph:
    from .onnx import import_onnx

    return import_onnx(path, maxpool=maxpool)


def _load_nir(path: str | Path, maxpool: str) -> Graph:
    from .nir import import_nir

    return import_nir(path)


def _nir_calibration(graph: Graph) -> Calibration | None:
    from .nir import native_calibration

    return native_calibration(graph)


INPUTS: dict[str, InputFormat] = {}


def register_input(fmt: InputFormat) -> InputFormat:
    if fmt.suffix in INPUTS:
        raise ValueError(f"input suffix {fmt.suffix!r} is already taken")
    INPUTS[fmt.suffix] = fmt
    return fmt


register_input(InputFormat("onnx", ".onnx", _load_onnx, lambda graph: None))
register_input(InputFormat("nir", ".nir", _load_nir, _nir_calibration))


def input_format(path: str | Path) -> InputFormat:
    """The format of a model file, by its suffix (any other suffix is read as ONNX, as
    before NIR was supported; the ONNX loader then says what is wrong with the file)."""
    return INPUTS.get(Path(path).suffix.lower(), INPUTS[".onnx"])


def import_model(path: str | Path, maxpool: str = "refuse") -> Graph:
    """The IR of a model file of any registered input format."""
    return input_format(path).load(path, maxpool)


def native_calibration(path: str | Path, graph: Graph) -> Calibration | None:
    """The thresholds a spiking-network file carries (None for ANN formats)."""
    return input_format(path).calibration(graph)


def is_spiking(path: str | Path) -> bool:
    return input_format(path).name != "onnx"
