"""The IDX reader, on small files written byte by byte in the test."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from snn2hw.errors import DataError
from snn2hw.data.idx import read_idx, write_idx


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    """The IDX encoding, written out independently of snn2hw.data.idx."""
    big = array.astype(array.dtype.newbyteorder(">"))
    return (bytes([0, 0, code, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
            + big.tobytes())


@pytest.mark.parametrize("dtype,code", [("u1", 0x08), ("i1", 0x09), ("i2", 0x0B),
                                        ("i4", 0x0C), ("f4", 0x0D), ("f8", 0x0E)])
def test_reads_every_type(tmp_path, dtype, code):
    array = (np.arange(24) - 7).reshape(2, 3, 4).astype(dtype)
    if dtype == "u1":
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * 10
    path = tmp_path / "a.idx"
    path.write_bytes(idx_bytes(array, code))
    got = read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, array)


def test_reads_gzipped_file_whatever_its_name(tmp_path):
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(gzip.compress(idx_bytes(labels, 0x08)))
    np.testing.assert_array_equal(read_idx(path), labels)


def test_big_endian_values(tmp_path):
    path = tmp_path / "a.idx"
    path.write_bytes(bytes([0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 1, 0, 0xFF, 0xFF, 0xFF, 0xFE]))
    np.testing.assert_array_equal(read_idx(path), [256, -2])


def test_wrong_magic_is_a_data_error(tmp_path):
    path = tmp_path / "a.idx"
    path.write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)


def test_unknown_type_code_is_a_data_error(tmp_path):
    path = tmp_path / "a.idx"
    path.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)


def test_truncated_data_is_a_data_error(tmp_path):
    raw = idx_bytes(np.zeros((4, 28, 28), dtype=np.uint8), 0x08)
    path = tmp_path / "a.idx"
    path.write_bytes(raw[:-1])
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_truncated_header_is_a_data_error(tmp_path):
    path = tmp_path / "a.idx"
    path.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">I", 4))
    with pytest.raises(DataError, match="truncated IDX header"):
        read_idx(path)


def test_trailing_bytes_are_a_data_error(tmp_path):
    path = tmp_path / "a.idx"
    path.write_bytes(idx_bytes(np.zeros(3, dtype=np.uint8), 0x08) + b"\x00")
    with pytest.raises(DataError, match="trailing bytes"):
        read_idx(path)


def test_truncated_gzip_is_a_data_error(tmp_path):
    path = tmp_path / "a.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(100, dtype=np.uint8), 0x08))[:-10])
    with pytest.raises(DataError, match="cannot read"):
        read_idx(path)


def test_empty_file_is_a_data_error(tmp_path):
    path = tmp_path / "a.idx"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_write_then_read(tmp_path, name):
    array = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    write_idx(tmp_path / name, array)
    np.testing.assert_array_equal(read_idx(tmp_path / name), array)
    if not name.endswith(".gz"):
        assert (tmp_path / name).read_bytes() == idx_bytes(array, 0x0D)
