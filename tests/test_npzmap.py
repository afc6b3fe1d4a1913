"""``.npz`` members stored uncompressed are memory-mapped; compressed ones are read."""
from __future__ import annotations

import numpy as np
import pytest

from snn2hw import data
from snn2hw.data import npzmap
from snn2hw.errors import DataError
from snn2hw.data.samples import LazySamples

SHAPE = (1, 4, 4)


def arrays(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.random((n, *SHAPE)).astype(np.float32),
            "y": rng.integers(0, 10, n).astype(np.int64)}


def test_stored_member_is_mapped_with_the_right_values(tmp_path):
    a = arrays()
    path = tmp_path / "d.npz"
    np.savez(path, **a)
    got, mapped = npzmap.read_members(path, ["x", "y", "x_test"])
    assert mapped == {"x", "y"} and set(got) == {"x", "y"}
    assert isinstance(got["x"], np.memmap)
    np.testing.assert_array_equal(got["x"], a["x"])
    np.testing.assert_array_equal(got["y"], a["y"])


def test_fortran_order_and_big_endian_members(tmp_path):
    x = np.asfortranarray(np.arange(24, dtype=">f8").reshape(2, 3, 4))
    path = tmp_path / "d.npz"
    np.savez(path, x=x)
    got, _ = npzmap.read_members(path, ["x"])
    np.testing.assert_array_equal(got["x"], x)


def test_compressed_member_is_read_into_memory(tmp_path):
    a = arrays()
    path = tmp_path / "d.npz"
    np.savez_compressed(path, **a)
    got, mapped = npzmap.read_members(path, ["x", "y"])
    assert mapped == set() and not isinstance(got["x"], np.memmap)
    np.testing.assert_array_equal(got["x"], a["x"])


def test_load_gives_lazy_preprocessed_samples_for_a_stored_file(tmp_path):
    a = arrays()
    path = tmp_path / "d.npz"
    np.savez(path, **a)
    pre = data.Preprocess((0.5,), (0.25,))
    ds = data.load(str(path), SHAPE, 10, pre)
    assert isinstance(ds.x_train, LazySamples) and ds.x_train.shape == (9, *SHAPE)
    np.testing.assert_allclose(np.asarray(ds.x_train), (a["x"][:9] - 0.5) / 0.25, atol=1e-6)
    np.testing.assert_allclose(np.asarray(ds.x_test), (a["x"][9:] - 0.5) / 0.25, atol=1e-6)
    np.testing.assert_array_equal(ds.y_test, a["y"][9:])


def test_load_of_a_compressed_file_is_in_memory(tmp_path):
    a = arrays()
    path = tmp_path / "d.npz"
    np.savez_compressed(path, **a)
    ds = data.load(str(path), SHAPE, 10, data.Preprocess())
    assert isinstance(ds.x_train, np.ndarray)
    np.testing.assert_array_equal(ds.x_test, a["x"][9:])


def test_uint8_member_is_read_as_float(tmp_path):
    x = (arrays()["x"] * 255).astype(np.uint8)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=arrays()["y"], x_test=x[:3], y_test=arrays()["y"][:3])
    ds = data.load(str(path), SHAPE, 10, data.Preprocess())
    np.testing.assert_array_equal(np.asarray(ds.x_test), x[:3].astype(np.float32))


def test_corrupt_stored_member_is_detected_despite_mapping(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays(200))
    raw = bytearray(path.read_bytes())
    raw[2000:2100] = bytes(100)
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="cannot read the arrays"):
        data.load(str(path), SHAPE, 10, data.Preprocess())


def test_nan_in_a_mapped_member_is_found_in_chunks(tmp_path, monkeypatch):
    a = arrays(40)
    a["x"][37, 0, 1, 2] = np.nan
    path = tmp_path / "d.npz"
    np.savez(path, **a)
    monkeypatch.setattr(npzmap, "CHECK_CHUNK_BYTES", 64)  # 1 sample per chunk
    with pytest.raises(DataError, match="NaN"):
        data.load(str(path), SHAPE, 10, data.Preprocess())


def test_row_reader_reads_runs_and_scattered_rows():
    x = np.arange(50, dtype=np.int16).reshape(10, 5)
    read = npzmap.row_reader(x)
    np.testing.assert_array_equal(read(np.arange(2, 6)), x[2:6].astype(np.float32))
    np.testing.assert_array_equal(read(np.array([7, 1, 4])), x[[7, 1, 4]].astype(np.float32))
    assert read(np.arange(3)).dtype == np.float32


def test_in_memory_load_is_a_writable_copy_not_the_mapping(tmp_path):
    a = arrays()
    path = tmp_path / "d.npz"
    np.savez(path, **a)
    ds = data.from_npz(path, SHAPE, 10)
    assert type(ds.x_train) is np.ndarray and ds.x_train.flags.writeable
    np.testing.assert_array_equal(ds.x_train, a["x"][:9])
