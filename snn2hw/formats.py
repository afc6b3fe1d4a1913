"""The file formats snn2hw reads models from and writes networks to, in two small registries.

*Input formats* are keyed by file suffix: ``.onnx`` (a trained ANN, :mod:`snn2hw.onnx`) and
``.nir`` (a spiking network, :mod:`snn2hw.nir`). Each turns a file into the IR
(:class:`snn2hw.ir.Graph`); a format whose files are already spiking networks also gives
the thresholds it carries (:func:`native_calibration`), so that calibration is optional.
``calibrate``, ``export``, ``inspect``, ``report`` and ``run`` reach the importers only
through :func:`import_model`.

*Output formats* are what ``snn2hw export --format`` writes: ``h5`` (the default, our own
versioned HDF5, :mod:`snn2hw.export`) and the foreign formats of the writers shipped in
``exporters/`` (``nir``, ``netx``), registered in :func:`_register_writers` the way
:mod:`snn2hw.backends` registers backends. A writer is an object with

    name: str                 the --format value
    suffix: str               the file suffix it writes
    needs: str                "float" (the calibrated float SNN) or "integer" (an export)
    def constrain(profile) -> profile    (integer writers: tighten the profile's limits)
    def write(path, network, options) -> list[str]    (writes atomically; returns notes)

and raises the typed errors of :mod:`snn2hw.errors` (InputError: the file would be read
wrongly, exit 2; HardwareLimitError: the format cannot express the network, exit 3).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import InputError

if TYPE_CHECKING:
    from .calibrate import Calibration
    from .ir import Graph


@dataclass(frozen=True)
class InputFormat:
    name: str
    suffix: str
    load: Callable[[str | Path, str], Graph]            # (path, maxpool) -> IR
    calibration: Callable[[Graph], Calibration | None]  # thresholds the file carries


class Writer(Protocol):
    name: str
    suffix: str
    needs: str

    def constrain(self, profile: Any) -> Any: ...

    def write(self, path: str | Path, network: Any, options: dict) -> list[str]: ...


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


DEFAULT_OUTPUT = "h5"
_WRITERS: dict[str, Writer] = {}
_WRITERS_REGISTERED = False


def register_writer(writer: Writer) -> Writer:
    if writer.name == DEFAULT_OUTPUT or writer.name in _WRITERS:
        raise ValueError(f"output format {writer.name!r} is already taken")
    _WRITERS[writer.name] = writer
    return writer


def _register_writers() -> None:
    """The writers shipped in ``exporters/``: one import and one line per format."""
    global _WRITERS_REGISTERED
    if _WRITERS_REGISTERED:
        return
    _WRITERS_REGISTERED = True
    from snn2hw.exporters import netx, nir

    register_writer(nir.WRITER)
    register_writer(netx.WRITER)


def output_formats() -> list[str]:
    """Every --format value: our HDF5 first, then the registered writers."""
    _register_writers()
    return [DEFAULT_OUTPUT] + sorted(_WRITERS)


def writer(name: str) -> Writer:
    _register_writers()
    if name not in _WRITERS:
        raise InputError(f"unknown output format {name!r}; known: "
                         f"{', '.join(output_formats())}")
    return _WRITERS[name]
