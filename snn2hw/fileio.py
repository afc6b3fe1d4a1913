"""Atomic output files: write to a temporary file in the same directory, rename when done."""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError


def check_output_path(path: str | os.PathLike, inputs: tuple = ()) -> Path:
    """Refuse outputs we could not write, or that would overwrite an input."""
    out = Path(path)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{out}: output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{out}: output directory {parent} is not writable")
    if out.is_dir():
        raise InputError(f"{out}: is a directory")
    for given in inputs:
        if given is not None and out.resolve() == Path(given).resolve():
            raise InputError(f"{out}: output would overwrite the input file {given}")
    return out


def _output_mode(final: Path) -> int:
    try:
        return stat.S_IMODE(final.stat().st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``. On any
    failure (including KeyboardInterrupt) the temporary file is removed and an existing
    file at ``path`` is left untouched."""
    final = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp",
                               dir=final.parent if str(final.parent) else ".")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        # mkstemp creates the file 0600; give the result the mode a plain open() would
        # (the existing file's mode, else 0666 minus the umask).
        os.chmod(tmp_path, _output_mode(final))
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
