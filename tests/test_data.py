"""Data sets: built-in digits and user .npz files, with clear DataErrors for bad files."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snn2hw import data
from snn2hw.errors import DataError

SHAPE = (1, 8, 8)


@pytest.fixture(scope="module")
def digits8():
    return data.digits(SHAPE)


def test_digits_shapes_and_split(digits8):
    from sklearn.datasets import load_digits

    d = digits8
    assert d.x_train.shape == (1347, 1, 8, 8) and d.x_test.shape == (450, 1, 8, 8)
    assert d.y_train.shape == (1347,) and d.y_test.shape == (450,)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.x_train.min() == 0.0 and d.x_train.max() == 1.0
    # stratified: every class is in the test split about a quarter of its size
    counts = np.bincount(d.y_test, minlength=10)
    total = np.bincount(load_digits().target, minlength=10)
    assert np.all(np.abs(counts - total / 4) <= 1)
    # a partition of the 1,797 images: the pixel sums match as multisets
    raw = np.sort(load_digits().images.reshape(1797, -1).sum(axis=1) / 16.0)
    ours = np.sort(np.concatenate([d.x_train, d.x_test]).reshape(1797, -1).sum(axis=1))
    np.testing.assert_allclose(ours, raw, rtol=1e-5)


def test_digits_resize_is_bilinear(digits8):
    big = data.digits((1, 16, 16))
    assert big.x_train.shape == (1347, 1, 16, 16) and big.x_test.shape == (450, 1, 16, 16)
    np.testing.assert_array_equal(big.y_train, digits8.y_train)
    want = F.interpolate(torch.from_numpy(digits8.x_train[:5]), size=(16, 16),
                         mode="bilinear", align_corners=False).numpy()
    np.testing.assert_allclose(big.x_train[:5], want, rtol=1e-6, atol=1e-7)


def test_digits_needs_one_channel_images():
    with pytest.raises(DataError, match="1-channel"):
        data.digits((64,))
    with pytest.raises(DataError, match="1-channel"):
        data.digits((3, 8, 8))


# --------------------------------------------------------------------------- npz


def good(n=12):
    rng = np.random.default_rng(0)
    return {"x": rng.random((n, *SHAPE)).astype(np.float32),
            "y": rng.integers(0, 10, n).astype(np.int64)}


def write(tmp_path, **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path


def test_npz_valid_file_splits_last_quarter_for_test(tmp_path):
    arrays = good(12)
    d = data.from_npz(write(tmp_path, **arrays), SHAPE, 10)
    np.testing.assert_array_equal(d.x_train, arrays["x"][:9])
    np.testing.assert_array_equal(d.x_test, arrays["x"][9:])
    np.testing.assert_array_equal(d.y_test, arrays["y"][9:])


def test_npz_explicit_test_split_and_integral_float_labels(tmp_path):
    arrays = good(8)
    path = write(tmp_path, x=arrays["x"], y=arrays["y"].astype(np.float64),
                 x_test=arrays["x"][:3], y_test=arrays["y"][:3])
    d = data.from_npz(path, SHAPE, 10)
    assert len(d.x_train) == 8 and len(d.x_test) == 3 and d.y_train.dtype == np.int64
    np.testing.assert_array_equal(d.y_train, arrays["y"])


def test_npz_missing_keys(tmp_path):
    with pytest.raises(DataError, match=r"missing array\(s\) \['y'\]"):
        data.from_npz(write(tmp_path, x=good()["x"]), SHAPE, 10)


def test_npz_wrong_rank(tmp_path):
    path = write(tmp_path, x=good()["x"].reshape(12, 64), y=good()["y"])
    with pytest.raises(DataError, match="rank 2"):
        data.from_npz(path, SHAPE, 10)


def test_npz_wrong_sample_shape(tmp_path):
    path = write(tmp_path, x=np.zeros((12, 1, 7, 7), np.float32), y=good()["y"])
    with pytest.raises(DataError, match=r"shape \(1, 7, 7\)"):
        data.from_npz(path, SHAPE, 10)


def test_npz_nan(tmp_path):
    arrays = good()
    arrays["x"][3, 0, 2, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        data.from_npz(write(tmp_path, **arrays), SHAPE, 10)


@pytest.mark.parametrize("label", [10, -1])
def test_npz_labels_out_of_range(tmp_path, label):
    arrays = good()
    arrays["y"][5] = label
    with pytest.raises(DataError, match="10 classes"):
        data.from_npz(write(tmp_path, **arrays), SHAPE, 10)


def test_npz_empty(tmp_path):
    path = write(tmp_path, x=np.zeros((0, *SHAPE), np.float32), y=np.zeros(0, np.int64))
    with pytest.raises(DataError, match="empty"):
        data.from_npz(path, SHAPE, 10)


def test_npz_non_integer_float_labels(tmp_path):
    arrays = good()
    y = arrays["y"].astype(np.float64)
    y[0] = 1.5
    with pytest.raises(DataError, match="integer class labels"):
        data.from_npz(write(tmp_path, x=arrays["x"], y=y), SHAPE, 10)


def test_npz_label_count_mismatch(tmp_path):
    with pytest.raises(DataError, match=r"shape \(12,\)"):
        data.from_npz(write(tmp_path, x=good()["x"], y=np.zeros(11, np.int64)), SHAPE, 10)


def test_npz_bad_test_split_is_checked_too(tmp_path):
    arrays = good()
    path = write(tmp_path, **arrays, x_test=arrays["x"][:2], y_test=np.array([0, 42]))
    with pytest.raises(DataError, match="y_test"):
        data.from_npz(path, SHAPE, 10)


def test_npz_not_a_zip(tmp_path):
    path = tmp_path / "d.npz"
    path.write_text("hello")
    with pytest.raises(DataError, match="not a readable .npz"):
        data.from_npz(path, SHAPE, 10)


def test_npz_truncated_zip(tmp_path):
    path = write(tmp_path, **good(200))
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(DataError):
        data.from_npz(path, SHAPE, 10)


def test_npz_object_array(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.array([good()["x"][0], "a"], dtype=object), y=np.zeros(2, np.int64))
    with pytest.raises(DataError):
        data.from_npz(path, SHAPE, 10)


def test_npz_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such data file"):
        data.from_npz(tmp_path / "nope.npz", SHAPE, 10)


# --------------------------------------------------------------------------- take


def test_take_more_than_available_is_an_error():
    x, y = np.zeros((5, 2)), np.arange(5)
    with pytest.raises(DataError, match="6 calibration samples asked for, but the split has "
                                        "only 5"):
        data.take(x, y, 6, "calibration")
    xs, ys = data.take(x, y, 3, "calibration")
    assert len(xs) == 3 and list(ys) == [0, 1, 2]
    assert data.take(x, y, None, "evaluation")[0] is x


# --------------------------------------------------------------------------- preprocess


def test_preprocess_per_channel_mean_and_std():
    x = np.arange(2 * 2 * 3 * 3, dtype=np.float32).reshape(2, 2, 3, 3)
    p = data.Preprocess((1.0, 2.0), (2.0, 4.0))
    out = p.apply(x)
    np.testing.assert_allclose(out[:, 0], (x[:, 0] - 1) / 2)
    np.testing.assert_allclose(out[:, 1], (x[:, 1] - 2) / 4)
    assert data.Preprocess.from_json(p.to_json()) == p
    with pytest.raises(DataError):
        data.Preprocess((0.0,), (0.0,))
    with pytest.raises(DataError):
        data.Preprocess((0.0,) * 3, (1.0,) * 3).apply(x)


def test_npy_instead_of_npz(tmp_path):
    path = tmp_path / "d.npz"
    with open(path, "wb") as fh:
        np.save(fh, good()["x"])
    with pytest.raises(DataError, match="not a readable .npz"):
        data.from_npz(path, SHAPE, 10)


def test_npz_corrupt_member(tmp_path):
    path = write(tmp_path, **good(200))
    raw = bytearray(path.read_bytes())
    raw[2000:2100] = bytes(100)  # inside x's data: the zip CRC no longer matches
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="cannot read the arrays"):
        data.from_npz(path, SHAPE, 10)


# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype", ["U1", "complex64", "bool", "datetime64[s]"])
def test_npz_x_of_a_non_real_number_dtype(tmp_path, dtype):
    arrays = good()
    path = write(tmp_path, x=np.zeros((12, *SHAPE), dtype=dtype), y=arrays["y"])
    with pytest.raises(DataError, match=re.escape(f"x has dtype {np.dtype(dtype)}; expected "
                                                  "a real number array")):
        data.from_npz(path, SHAPE, 10)


@pytest.mark.parametrize("dtype", ["U2", "complex64", "datetime64[s]"])
def test_npz_y_of_a_non_integer_dtype(tmp_path, dtype):
    path = write(tmp_path, x=good()["x"], y=np.zeros(12, dtype=dtype))
    with pytest.raises(DataError, match="y must hold integer class labels"):
        data.from_npz(path, SHAPE, 10)


def test_npz_nan_label(tmp_path):
    y = good()["y"].astype(np.float64)
    y[4] = np.nan
    with pytest.raises(DataError, match="y must hold integer class labels"):
        data.from_npz(write(tmp_path, x=good()["x"], y=y), SHAPE, 10)


def test_npz_integer_x_is_accepted_as_float(tmp_path):
    arrays = good()
    x = (arrays["x"] * 255).astype(np.uint8)
    ds = data.from_npz(write(tmp_path, x=x, y=arrays["y"]), SHAPE, 10)
    assert ds.x_train.dtype == np.float32
    np.testing.assert_array_equal(ds.x_train, x[:9].astype(np.float32))
