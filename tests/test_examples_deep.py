"""examples/cifar10.py, examples/imagenet.py and examples/deep_digits.py end to end, on
tiny generated data with tiny networks, epochs and time windows."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TINY = ["--epochs", "1", "--batch-size", "16", "--timesteps", "6,12", "--calib-timesteps", "6",
        "--calib-samples", "6", "--eval-samples", "8"]


def _example(name: str):
    """``examples/<name>.py`` imported as its sibling scripts import it (examples/ on
    sys.path)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


def _run(name: str, argv: list[str]) -> int:
    """main(argv) in this process, on one thread (two threads on a busy 2-core machine are
    many times slower), without changing torch's global RNG or thread count."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.random.fork_rng(devices=[]):
            return _example(name).main(argv)
    finally:
        torch.set_num_threads(threads)


def _images(rng, n: int, shape, dtype=np.uint8) -> np.ndarray:
    if dtype == np.uint8:
        return rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    return rng.random((n, *shape), dtype=np.float32)


def _metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def _table_rows(out: str, label: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(label)]


def test_cifar10_trains_exports_converts(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "cifar10.npz"
    np.savez(data, x=_images(rng, 40, (3, 32, 32)), y=rng.integers(0, 10, 40),
             x_test=_images(rng, 12, (3, 32, 32)), y_test=rng.integers(0, 10, 12))
    work = tmp_path / "work"
    rc = _run("cifar10", ["--data", str(data), "--workdir", str(work), "--width", "0.0625",
                          "--methods", "spike-norm,max-act", *TINY])
    out = capsys.readouterr().out
    assert rc == 0
    model = work / "vgg16.onnx"
    for name in ("vgg16.onnx", "vgg16.subset.npz", "vgg16.spike-norm.calib.h5",
                 "vgg16.max-act.calib.h5"):
        assert (work / name).is_file(), name
    meta = _metadata(model)
    assert meta["snn2hw.dataset"] == str(data.resolve())
    pre = json.loads(meta["snn2hw.preprocess"])  # per channel, in the file's 0-255 units
    assert len(pre["mean"]) == 3 and all(100 < m < 155 for m in pre["mean"])
    assert all(60 < s < 90 for s in pre["std"])
    with np.load(work / "vgg16.subset.npz") as subset:
        assert subset["x"].shape == (6, 3, 32, 32) and subset["x_test"].shape == (8, 3, 32, 32)
    assert "16 / 16" in out  # 16 spiking layers, 16 hops
    assert "T=6" in out and "T=12" in out
    assert "spike-norm" in out and "max-act" in out

    # An existing output is not overwritten; --model converts it again without training.
    assert _run("cifar10", ["--data", str(data), "--workdir", str(work)]) == 2
    assert "--model" in capsys.readouterr().err
    before = model.read_bytes()
    rc = _run("cifar10", ["--data", str(data), "--workdir", str(work), "--model", str(model),
                          *TINY])
    out = capsys.readouterr().out
    assert rc == 0 and model.read_bytes() == before
    assert "convert the existing model" in out and len(_table_rows(out, "vgg16")) == 1


def test_cifar10_resnet20_batchnorm_float_data(tmp_path, capsys):
    rng = np.random.default_rng(1)
    data = tmp_path / "c.npz"
    np.savez(data, x=_images(rng, 48, (3, 32, 32), np.float32), y=rng.integers(0, 10, 48))
    work = tmp_path / "w"
    rc = _run("cifar10", ["--data", str(data), "--workdir", str(work), "--arch", "resnet20",
                          "--width", "0.125", "--batchnorm", "--bias", "--optimizer", "sgd",
                          *TINY])
    out = capsys.readouterr().out
    assert rc == 0
    assert "ResNet-20" in out and "20 / 20" in out and "9 residual junctions" in out
    with np.load(work / "resnet20.subset.npz") as subset:  # last 25 % is the test split
        assert subset["x_test"].shape == (8, 3, 32, 32)


def test_cifar10_bad_data_is_one_error_line(tmp_path, capsys):
    data = tmp_path / "bad.npz"
    np.savez(data, x=np.zeros((10, 3, 16, 16), np.uint8), y=np.zeros(10, np.int64))
    assert _run("cifar10", ["--data", str(data), "--workdir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "(3, 32, 32)" in err[0]


def _class_dirs(root: Path, rng, per_class: int, shape) -> None:
    """PNG images (H, W, 3), per class folder, written with Pillow."""
    from PIL import Image

    for name in ("ant", "bee", "cat"):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(_images(rng, 1, shape)[0], mode="RGB").save(folder / f"{i:03d}.png")


def test_imagenet_directory_of_images(tmp_path, capsys):
    rng = np.random.default_rng(2)
    data = tmp_path / "imagenet"
    _class_dirs(data / "train", rng, 6, (20, 24, 3))     # to be resized and cropped
    _class_dirs(data / "val", rng, 3, (16, 16, 3))
    work = tmp_path / "work"
    rc = _run("imagenet", ["--data", str(data), "--input-size", "16", "--workdir", str(work),
                           "--width", "0.0625", *TINY])
    out = capsys.readouterr().out
    assert rc == 0
    assert "ResNet-34" in out and "36 / 36" in out and "16 residual junctions" in out
    assert "18 train / 9 test images 3x16x16" in out
    model = work / "resnet34.onnx"
    meta = _metadata(model)
    assert meta["snn2hw.dataset"] == str((work / "resnet34.subset.npz").resolve())
    with np.load(work / "resnet34.subset.npz") as subset:
        # decoded by snn2hw's image-folder path: float32 pixels in [0, 1]
        assert subset["x"].dtype == np.float32 and subset["x"].shape == (6, 3, 16, 16)
        assert 0 <= subset["x"].min() and subset["x"].max() <= 1
        assert subset["x_test"].shape == (8, 3, 16, 16)
        assert set(subset["y_test"]) <= {0, 1, 2}
    from snn2hw.importer import import_onnx
    from snn2hw.steps.pipeline import num_classes

    assert num_classes(import_onnx(model)) == 3


def test_imagenet_flat_directory(tmp_path, capsys):
    rng = np.random.default_rng(3)
    flat = tmp_path / "flat"
    _class_dirs(flat, rng, 4, (16, 16, 3))               # 3 train + 1 test per class
    work = tmp_path / "w1"
    rc = _run("imagenet", ["--data", str(flat), "--input-size", "16", "--workdir", str(work),
                           "--width", "0.0625", *TINY[:-2], "--eval-samples", "3"])
    assert rc == 0
    assert "9 train / 3 test images" in capsys.readouterr().out


def test_imagenet_npz(tmp_path, capsys):
    rng = np.random.default_rng(4)
    data = tmp_path / "inet.npz"
    np.savez(data, x=_images(rng, 24, (3, 20, 20)), y=rng.integers(0, 4, 24),
             x_test=_images(rng, 8, (3, 20, 20)), y_test=rng.integers(0, 4, 8))
    work = tmp_path / "w2"
    rc = _run("imagenet", ["--data", str(data), "--input-size", "16", "--classes", "5",
                           "--workdir", str(work), "--width", "0.0625", *TINY])
    out = capsys.readouterr().out
    assert rc == 0 and "24 train / 8 test images 3x16x16" in out
    from snn2hw.importer import import_onnx
    from snn2hw.steps.pipeline import num_classes

    assert num_classes(import_onnx(work / "resnet34.onnx")) == 5


def test_deep_digits_tiny(tmp_path, capsys):
    work = tmp_path / "deep"
    argv = ["--workdir", str(work), "--nets", "resnet20", "--resnet20-width", "0.0625",
            "--epochs", "1", "--threads", "1", "--timesteps", "8,16", "--calib-timesteps", "8",
            "--calib-samples", "8", "--eval-samples", "10"]
    assert _run("deep_digits", argv) == 0
    out = capsys.readouterr().out
    assert (work / "resnet20.onnx").is_file()
    for method in ("spike-norm", "max-act"):
        assert (work / f"resnet20.{method}.calib.h5").is_file()
    assert "ResNet-20" in out and "20 / 20" in out and "max-act" in out
    assert _metadata(work / "resnet20.onnx")["snn2hw.dataset"] == "digits"
    from snn2hw.artifacts.calibration import load_calibration

    def params(method):
        return load_calibration(work / f"resnet20.{method}.calib.h5").calibration.params

    for method in ("spike-norm", "max-act"):  # the example's defaults reach the calibration
        assert params(method)["reset"] == "subtract" and params(method)["percentile"] == 99.9
    # reused unless --force; a file of another width is refused
    quick = ["--methods", "max-act", "--timesteps", "4", "--eval-samples", "4"]
    assert _run("deep_digits", [*argv, *quick, "--reset", "zero", "--percentile", "100"]) == 0
    assert "reused existing" in capsys.readouterr().out
    assert params("max-act")["reset"] == "zero" and "percentile" not in params("max-act")
    with pytest.raises(SystemExit) as exc:
        _run("deep_digits", [*argv, "--resnet20-width", "0.125", *quick])
    assert exc.value.code == 2
    assert "--force" in capsys.readouterr().err


def test_deep_digits_train_samples_holds_out_the_rest(tmp_path, capsys):
    """--train-samples N trains on the first N training images only (their mean is the
    model's mean subtraction); --train-only writes the model and converts nothing."""
    work = tmp_path / "held"
    argv = ["--workdir", str(work), "--nets", "resnet20", "--resnet20-width", "0.0625",
            "--epochs", "1", "--threads", "1", "--train-samples", "40", "--train-only"]
    assert _run("deep_digits", argv) == 0
    out = capsys.readouterr().out
    assert "40 train / 450 test images" in out and "== 2." not in out
    assert sorted(p.name for p in work.iterdir()) == ["resnet20.onnx"]
    from snn2hw.data import digits

    full = digits((1, 32, 32)).x_train
    raw = full[:40].astype(np.float64)
    mean = json.loads(_metadata(work / "resnet20.onnx")["snn2hw.preprocess"])["mean"][0]
    assert mean == pytest.approx(raw.mean(), rel=1e-12)
    assert mean != pytest.approx(full.mean(), rel=1e-6)
    with pytest.raises(SystemExit) as exc:
        _run("deep_digits", [*argv[:-3], "--train-samples", "0"])
    assert exc.value.code == 2
