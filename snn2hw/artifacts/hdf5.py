"""The one writer and reader of snn2hw's versioned HDF5 files.

Every file starts with three attributes, in this order: ``format`` (its name, e.g.
``snn2hw-calibration``), ``format_version`` and ``snn2hw_version``. :func:`write_artifact`
writes them and then lets the caller fill the file, atomically (nothing is left at ``path``
if filling fails). :func:`open_artifact` refuses a file of another format or of a version it
does not read, with one clear error; a version bump (a field that changes meaning) adds the
old version to ``versions`` only together with the code that reads it.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..errors import ArtifactError
from ..fileio import atomic_path

# What h5py raises on a damaged file, besides a missing key.
CORRUPT = (KeyError, ValueError, TypeError, OSError, RuntimeError)


def dataset(group: h5py.Group, name: str, data) -> None:
    """A dataset without timestamps (the same inputs give byte-identical files)."""
    group.create_dataset(name, data=np.asarray(data), track_times=False)


@contextlib.contextmanager
def write_artifact(path: str | Path, fmt: str, version: int) -> Iterator[h5py.File]:
    """An HDF5 file at ``path`` with its format header; the caller fills it in the block.
    Attribute and group order is kept (``track_order``), so files compare byte for byte."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=True) as f:
            f.attrs["format"] = fmt
            f.attrs["format_version"] = version
            f.attrs["snn2hw_version"] = __version__
            yield f


def open_artifact(path: str | Path, fmt: str, versions: int | tuple[int, ...]) -> h5py.File:
    """The open file (caller closes it) if it is a ``fmt`` file of one of ``versions``."""
    versions = (versions,) if isinstance(versions, int) else tuple(versions)
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise ArtifactError(f"{path}: not an HDF5 file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot open HDF5 file ({exc})") from None
    found = f.attrs.get("format")
    if found != fmt:
        f.close()
        raise ArtifactError(f"{path}: not a {fmt} file (format {found!r})")
    got = f.attrs.get("format_version")
    if got not in versions:
        f.close()
        readable = " or ".join(map(str, versions))
        raise ArtifactError(f"{path}: {fmt} format version {got}, this snn2hw reads version "
                            f"{readable}; recreate the file with this version")
    return f


def require(f: h5py.File, path: str | Path, members: tuple[str, ...], fmt: str) -> None:
    """Refuse a file without one of ``members`` (groups or datasets), naming all missing."""
    missing = [m for m in members if m not in f]
    if missing:
        raise ArtifactError(f"{path}: incomplete or corrupt {fmt} file: missing "
                            f"{', '.join(missing)}", missing=missing)
