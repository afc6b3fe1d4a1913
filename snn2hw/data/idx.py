"""A reader for IDX files, the format of MNIST and Fashion-MNIST (LeCun et al.).

An IDX file is a 4-byte magic number ``0x00 0x00 TYPE NDIM``, then ``NDIM`` big-endian
uint32 dimension sizes, then the values in C order, big-endian. TYPE is one of 0x08
(uint8), 0x09 (int8), 0x0B (int16), 0x0C (int32), 0x0D (float32), 0x0E (float64). Files
may be gzipped (``.gz``; recognised by their content, not their name).
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from ..errors import DataError

IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
GZIP_MAGIC = b"\x1f\x8b"


def _raw_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head != GZIP_MAGIC:
                return f.read()
            with gzip.GzipFile(fileobj=f) as gz:
                return gz.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None


def parse_idx(raw: bytes, where: str = "IDX data") -> np.ndarray:
    """The array stored in the bytes of an IDX file, in native byte order."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DataError(f"{where}: not an IDX file (magic {raw[:4].hex() or 'missing'}; "
                        "expected 0000 TYPE NDIM with TYPE in 08,09,0b,0c,0d,0e)")
    dtype, ndim = IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{where}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DataError(f"{where}: IDX file {what}: {len(raw)} bytes, shape {shape} of "
                        f"{dtype.name} needs {expected}")
    values = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (plain or gzipped)."""
    path = Path(path)
    return parse_idx(_raw_bytes(path), str(path))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as an (uncompressed, or gzipped for ``.gz``) IDX file."""
    codes = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
    array = np.asarray(array)
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise DataError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(IDX_TYPES[code]).tobytes()
    from ..fileio import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".gz":
            with gzip.open(tmp, "wb") as f:
                f.write(payload)
        else:
            Path(tmp).write_bytes(payload)
