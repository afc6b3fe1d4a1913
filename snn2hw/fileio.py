"""Atomic output files: write to a temporary file in the same directory, rename when done.

The temporary file is ``.{name}.{pid}.{random}.tmp`` next to the target. A process killed
with SIGKILL cannot remove its own; the next atomic write to the same target removes those
whose process no longer exists (never another live process's).

Test-only hook: if the environment variable ``SNN2HW_TEST_PAUSE_BEFORE_RENAME`` names a
path, :func:`atomic_path` creates that file once the temporary file is complete but not yet
renamed, then sleeps, so a test can kill the process at exactly that point.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError

PAUSE_ENV = "SNN2HW_TEST_PAUSE_BEFORE_RENAME"
PAUSE_SECONDS = 120.0


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links too
    except OSError:
        return False


def _input_files(given: str | os.PathLike) -> list[Path]:
    """An input and, for an ONNX model, the external data files it reads."""
    path = Path(given)
    files = [path]
    if path.suffix.lower() == ".onnx" and path.is_file():
        from .onnx.load import external_files

        files += external_files(path)
    return files


def check_output_path(path: str | os.PathLike, inputs: tuple = ()) -> Path:
    """Refuse outputs we could not write, or that would overwrite an input (or an ONNX
    input's external data file)."""
    out = Path(path)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{out}: output directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{out}: output directory {parent} is not writable")
    if out.is_dir():
        raise InputError(f"{out}: is a directory")
    for given in inputs:
        if given is None:
            continue
        for existing in _input_files(given):
            if not _same_file(out, existing):
                continue
            if existing == Path(given):
                raise InputError(f"{out}: output would overwrite the input file {given}")
            raise InputError(f"{out}: output would overwrite {existing}, the external data "
                             f"of the input model {given}")
    return out


def _output_mode(final: Path) -> int:
    try:
        return stat.S_IMODE(final.stat().st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def stale_temp_files(final: Path) -> list[Path]:
    """Temporary files of ``final`` left by processes that no longer exist."""
    parent = final.parent if str(final.parent) else Path(".")
    prefix = f".{final.name}."
    stale = []
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        parts = name[len(prefix):].split(".")  # pid, random part, "tmp"
        if len(parts) == 3 and parts[0].isdigit() and not _pid_alive(int(parts[0])):
            stale.append(parent / name)
    return stale


def _pause_for_tests(tmp_path: Path) -> None:
    flag = os.environ.get(PAUSE_ENV)
    if flag:
        part = Path(f"{flag}.part")
        part.write_text(str(tmp_path))
        os.replace(part, flag)  # the flag appears complete
        time.sleep(PAUSE_SECONDS)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``. On any
    failure (including KeyboardInterrupt) the temporary file is removed and an existing
    file at ``path`` is left untouched."""
    final = Path(path)
    for stale in stale_temp_files(final):
        with contextlib.suppress(OSError):
            stale.unlink()
    parent = final.parent if str(final.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.{os.getpid()}.", suffix=".tmp",
                                   dir=parent)
    except OSError as exc:
        raise InputError(f"{final}: cannot create a file in {parent}: "
                         f"{exc.strerror or exc}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        # mkstemp creates the file 0600; give the result the mode a plain open() would
        # (the existing file's mode, else 0666 minus the umask).
        os.chmod(tmp_path, _output_mode(final))
        yield tmp_path
        _pause_for_tests(tmp_path)
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
