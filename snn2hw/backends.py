"""The backends that run a quantised network, found by the name a profile gives in its
``backend`` field. The core reaches a backend only through this registry.

A backend is an object with the methods of :class:`Backend`, registered once under its name.
Registration is explicit: :func:`_register_shipped` imports each shipped backend package
and registers the object it exports (adding a backend is one package under ``exporters/``
plus one line there; see ARCHITECTURE.md). No directory is scanned, and a name registered
twice is an error. A profile naming a backend that is not registered fails to load with a
one-line :class:`~snn2hw.errors.ProfileError` (exit 2).

``backend = "none"`` is not a backend: such a profile describes hardware resources only
(a fit check and core estimate) and cannot run.

This module also holds the one registry of *output formats* (what ``snn2hw export
--format`` writes): ``h5`` (our own versioned HDF5, :mod:`snn2hw.artifacts.export`), ``nir``
and ``netx`` (``exporters/nir``, ``exporters/netx``). A backend may write its own file
format: it lists :class:`Writer` objects in an optional ``writers`` attribute, registered
with it under each writer's ``name`` (:func:`output_formats`); a format that no runnable
backend stands behind registers its writer alone (:func:`register_writer`). The step that
calls them is :func:`snn2hw.steps.write.write_network`. (Input formats, by file suffix, are
in :mod:`snn2hw.formats`.)
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .errors import InputError, ProfileError

if TYPE_CHECKING:
    from .hardware.profiles import Profile
    from .quantize.qnet import QuantizedNetwork

NONE = "none"  # the backend field of a profile that describes resources only


class BackendRun(Protocol):
    """What :meth:`Backend.run` returns."""
    spikes: dict[str, np.ndarray]   # layer name -> (samples, timesteps, size) 0/1 spikes
    seconds: float                  # wall-clock of the whole run
    steps_per_second: float         # steps per second of the run itself


class Backend(Protocol):
    """A target that runs quantised networks. Every method raises the typed errors of
    :mod:`snn2hw.errors`: ProfileError (a field of its section), HardwareLimitError (what it
    cannot run exactly, exit 3), BackendError (a failed run, exit 4)."""

    name: str                        # the profile's ``backend`` value
    profile_tables: tuple[str, ...]  # top-level tables of its own section of a profile

    def parse_profile(self, doc: dict, where: str, quantize: bool) -> Any:
        """Its own settings from a profile document (``where`` names the file in errors);
        stored as :attr:`Profile.settings`."""

    def describe(self, profile: Profile) -> dict[str, str]:
        """Short values for the ``snn2hw profiles`` table, by column name."""

    def check_profile(self, profile: Profile) -> None:
        """Raise HardwareLimitError unless it can run networks of ``profile`` exactly."""

    def check(self, qnet: QuantizedNetwork, profile: Profile) -> None:
        """Raise HardwareLimitError (or InputError) if it cannot run ``qnet`` exactly, before
        any expensive work."""

    def run(self, qnet: QuantizedNetwork, spikes: np.ndarray, timesteps: int, *,
            timeout: float | None, profile: Profile) -> BackendRun:
        """Run ``qnet`` on input ``spikes`` (samples, timesteps, input size) and return the
        spikes of every layer; never hangs (``timeout`` in seconds, None: its default)."""


class Writer(Protocol):
    """A writer of one output format. ``write`` writes atomically (``snn2hw.fileio``) and
    raises InputError (the file would be read wrongly, exit 2) or HardwareLimitError (the
    format cannot express the network, exit 3)."""

    name: str      # the format's name (what a user asks for)
    suffix: str    # the suffix of its files, e.g. ".nir"
    needs: str     # "integer": the export (ExportArtifact); "float": the calibrated float
                   # SNN (snn2hw.steps.exchange.FloatNetwork)

    def constrain(self, profile: Profile) -> Profile:
        """Integer writers: the profile with its limits narrowed to what the format holds
        exactly (the export is quantised for that); optional, default: unchanged."""

    def write(self, path: Path, network: Any, options: dict) -> list[str]:
        """Write ``network`` to ``path``; return notes for the user (may be empty)."""


NEEDS = ("integer", "float")
_REGISTRY: dict[str, Backend] = {}
_WRITERS: dict[str, Writer] = {}
_SHIPPED_REGISTERED = False


def register(backend: Backend) -> Backend:
    """Add ``backend`` under ``backend.name``; a name registered twice is an error."""
    name = backend.name
    if name == NONE or name in _REGISTRY:
        raise ValueError(f"backend name {name!r} is already taken")
    writers = tuple(getattr(backend, "writers", ()))
    for writer in writers:
        _check_writer(writer)
    _REGISTRY[name] = backend
    for writer in writers:
        _WRITERS[writer.name] = writer
    return backend


def _check_writer(writer: Writer) -> None:
    if writer.name in _WRITERS:
        raise ValueError(f"output format {writer.name!r} is already taken")
    if writer.needs not in NEEDS:
        raise ValueError(f"writer {writer.name!r}: needs must be one of {NEEDS}")


def register_writer(writer: Writer) -> Writer:
    """Add an output format that no registered backend brings with it."""
    _check_writer(writer)
    _WRITERS[writer.name] = writer
    return writer


DEFAULT_FORMAT = "h5"  # what ``snn2hw export`` writes unless told otherwise


def output_formats() -> list[str]:
    """The names of the registered output formats (the default first)."""
    _register_shipped()
    return sorted(_WRITERS, key=lambda name: (name != DEFAULT_FORMAT, name))


def constrain(fmt: str, profile: Profile) -> Profile:
    """``profile`` narrowed to what output format ``fmt`` holds (unchanged for most)."""
    narrow = getattr(writer(fmt), "constrain", None)
    return profile if narrow is None else narrow(profile)


def writer(name: str) -> Writer:
    """The writer of output format ``name`` (InputError, exit 2, if there is none)."""
    if name not in output_formats():
        raise InputError(f"unknown output format {name!r}; known formats: "
                         f"{', '.join(output_formats()) or 'none'}")
    return _WRITERS[name]


def _register_shipped() -> None:
    """The registration of the backends that ship with snn2hw (``exporters/``, installed
    as ``snn2hw.exporters``): one import and one ``register`` line per backend."""
    global _SHIPPED_REGISTERED
    if _SHIPPED_REGISTERED:
        return
    from snn2hw.exporters import lava, netx, nir

    from .artifacts.h5writer import H5_WRITER

    register(lava.BACKEND)
    register_writer(H5_WRITER)
    register_writer(nir.WRITER)
    register_writer(netx.WRITER)
    _SHIPPED_REGISTERED = True


def known() -> list[str]:
    """The registered backend names."""
    _register_shipped()
    return sorted(_REGISTRY)


def check_known(name: str, where: str) -> None:
    """ProfileError (exit 2) unless ``name`` is a registered backend."""
    if name not in known():
        raise ProfileError(f"profile {where}: field 'backend' = {name!r}; expected one of "
                           f"{', '.join(known() + [NONE])}", field="backend")


def get(name: str) -> Backend:
    """The backend registered as ``name`` (ProfileError, exit 2, if there is none)."""
    if name not in known():
        raise ProfileError(f"unknown backend {name!r}; known backends: {', '.join(known())}",
                           field="backend")
    return _REGISTRY[name]
