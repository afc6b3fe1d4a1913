"""Arrays of an ``.npz`` file, memory-mapped where the format allows.

``numpy.load(..., mmap_mode="r")`` ignores ``mmap_mode`` for ``.npz`` archives and reads
every member it is asked for. A member stored without compression (``numpy.savez``) is a
plain ``.npy`` file at some offset inside the zip archive, so it can be mapped directly:
this module finds the member's data offset from its local zip header and its ``.npy``
header and returns a read-only ``numpy.memmap``. Compressed members (``numpy.savez_compressed``)
cannot be mapped; they are read into memory.
"""
from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

LOCAL_HEADER = struct.Struct("<4s5H3I2H")  # zip local file header, 30 bytes
LOCAL_SIGNATURE = b"PK\x03\x04"
CHECK_CHUNK_BYTES = 64 << 20


class MemberError(Exception):
    """A member of the archive cannot be read (corrupt data, object arrays)."""


def _check_crc(path: Path, info: zipfile.ZipInfo, start: int) -> None:
    """Mapping skips zipfile's CRC check; do it here, reading in chunks."""
    crc, left = 0, info.file_size
    with open(path, "rb") as f:
        f.seek(start)
        while left:
            block = f.read(min(left, CHECK_CHUNK_BYTES))
            if not block:
                break
            crc, left = zlib.crc32(block, crc), left - len(block)
    if left or crc != info.CRC:
        raise MemberError(f"bad CRC-32 for member {info.filename}")


def _mapped(path: Path, info: zipfile.ZipInfo) -> np.ndarray:
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        fields = LOCAL_HEADER.unpack(f.read(LOCAL_HEADER.size))
        if fields[0] != LOCAL_SIGNATURE:
            raise MemberError(f"bad local header for member {info.filename}")
        start = info.header_offset + LOCAL_HEADER.size + fields[-2] + fields[-1]
        _check_crc(path, info, start)
        f.seek(start)
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if dtype.hasobject:
        raise MemberError("object arrays cannot be loaded without pickle")
    if int(np.prod(shape, dtype=np.int64)) == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                     order="F" if fortran else "C")


def read_members(path: str | Path, keys) -> tuple[dict[str, np.ndarray], set[str]]:
    """The arrays ``keys`` present in the archive, and the names of those memory-mapped."""
    path = Path(path)
    arrays, mapped = {}, set()
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        for key in keys:
            member = f"{key}.npy"
            if member not in names:
                continue
            info = zf.getinfo(member)
            try:
                if info.compress_type == zipfile.ZIP_STORED:
                    arrays[key] = _mapped(path, info)
                    mapped.add(key)
                else:
                    with zf.open(member) as f:
                        arrays[key] = np.lib.format.read_array(f, allow_pickle=False)
            except MemberError:
                raise
            except Exception as exc:  # noqa: BLE001 - any parse failure of a member
                raise MemberError(f"{exc.__class__.__name__}: {exc}") from None
    return arrays, mapped


def all_finite(x: np.ndarray) -> bool:
    """``np.isfinite(x).all()`` in chunks, so a mapped array is never copied whole."""
    if not np.issubdtype(x.dtype, np.floating):
        return True
    rows = max(1, CHECK_CHUNK_BYTES // max(x[:1].nbytes, 1))
    return all(np.isfinite(x[start:start + rows]).all() for start in range(0, len(x), rows))


def row_reader(x: np.ndarray):
    """``indices -> float32 rows`` of ``x``, reading a contiguous run as one slice."""
    def read(indices: np.ndarray) -> np.ndarray:
        if len(indices) and indices[-1] - indices[0] + 1 == len(indices) and \
                np.all(np.diff(indices) == 1):
            return np.asarray(x[indices[0]:indices[-1] + 1], dtype=np.float32)
        return np.asarray(x[np.asarray(indices)], dtype=np.float32)
    return read


def open_npz(path: Path, keys) -> tuple[dict[str, np.ndarray], set[str]]:
    """:func:`read_members` with any parse failure turned into a DataError."""
    try:
        return read_members(path, keys)
    except MemberError as exc:
        raise DataError(f"{path}: cannot read the arrays ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - any parse failure of a user file
        raise DataError(f"{path}: not a readable .npz file ({exc.__class__.__name__}: "
                        f"{exc})") from None
