"""Image folders (--data DIR): layout, conversion, laziness and the memory bound."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from snn2hw import data
from snn2hw.data import imagefolder
from snn2hw.snn.encoders import make_encoder
from snn2hw.errors import DataError
from snn2hw.data.samples import LazySamples

sys.path.insert(0, str(Path(__file__).resolve().parent))


def grey(folder: Path, name: str, value: int, size=(6, 6)) -> np.ndarray:
    """A PNG whose pixels are ``value + column``; returns the pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = (value + np.arange(size[1])[None, :] + np.zeros(size, dtype=int)).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(folder / name)
    return pixels


def make_split(root: Path, classes=("cat", "dog"), per_class=3, offset=0) -> dict:
    pixels = {}
    for c, name in enumerate(classes):
        for i in range(per_class):
            pixels[(name, i)] = grey(root / name, f"img{i}.png", 10 * c + i + offset)
    return pixels


def test_train_and_val_folders_are_the_splits(tmp_path):
    train = make_split(tmp_path / "train")
    val = make_split(tmp_path / "val", per_class=2, offset=100)
    ds = data.load(str(tmp_path), (1, 6, 6), 2, data.Preprocess())
    assert isinstance(ds.x_train, LazySamples) and ds.x_train.shape == (6, 1, 6, 6)
    # classes in sorted order, interleaved: cat0, dog0, cat1, dog1, ...
    np.testing.assert_array_equal(ds.y_train, [0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(ds.y_test, [0, 1, 0, 1])
    x = np.asarray(ds.x_train)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x[1, 0], train[("dog", 0)] / np.float32(255))
    np.testing.assert_array_equal(np.asarray(ds.x_test)[2, 0], val[("cat", 1)] / np.float32(255))


def test_without_splits_every_fourth_image_of_a_class_is_a_test_image(tmp_path):
    make_split(tmp_path, per_class=8)
    classes, splits = imagefolder.scan(tmp_path)
    assert classes == ["cat", "dog"]
    test_files = [Path(f).name for f in splits["test"][0]]
    assert test_files == ["img3.png", "img3.png", "img7.png", "img7.png"]
    assert len(splits["train"][0]) == 12


def test_only_val_folder_is_split(tmp_path):
    make_split(tmp_path / "val", per_class=4)
    _, splits = imagefolder.scan(tmp_path)
    assert len(splits["train"][0]) == 6 and len(splits["test"][0]) == 2


def test_preprocess_is_applied_when_read(tmp_path):
    pixels = make_split(tmp_path, per_class=4)
    ds = data.load(str(tmp_path), (1, 6, 6), 2, data.Preprocess((0.25,), (0.5,)))
    expected = (pixels[("cat", 0)] / np.float32(255) - np.float32(0.25)) / np.float32(0.5)
    np.testing.assert_allclose(np.asarray(ds.x_train[:1])[0, 0], expected, atol=1e-6)


def test_rgb_to_grey_and_grey_to_rgb(tmp_path):
    folder = tmp_path / "a"
    folder.mkdir()
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    Image.fromarray(rgb, mode="RGB").save(folder / "c.png")
    grey(folder, "g.png", 77, size=(4, 4))
    luma = (200 * 299 + 100 * 587 + 50 * 114) / 1000  # ITU-R 601-2, Pillow's "L"
    one = imagefolder.read_image(str(folder / "c.png"), (1, 4, 4))
    assert one.shape == (1, 4, 4) and np.all(np.abs(one * 255 - luma) <= 1)
    three = imagefolder.read_image(str(folder / "g.png"), (3, 4, 4))
    assert three.shape == (3, 4, 4)
    for c in range(3):
        np.testing.assert_array_equal(three[c] * 255, np.rint(three[0] * 255))
    np.testing.assert_array_equal(np.rint(three[0, 0] * 255), 77 + np.arange(4))


def test_resized_to_the_model_input(tmp_path):
    folder = tmp_path / "a"
    folder.mkdir()
    Image.fromarray(np.full((10, 20), 90, dtype=np.uint8), mode="L").save(folder / "w.png")
    out = imagefolder.read_image(str(folder / "w.png"), (1, 5, 8))
    assert out.shape == (1, 5, 8)
    np.testing.assert_allclose(out, 90 / 255, atol=1e-6)  # a constant stays constant


def test_corrupt_image_is_a_data_error_naming_the_file(tmp_path):
    make_split(tmp_path, per_class=4)
    (tmp_path / "dog" / "img0.png").write_bytes(b"not a png")
    ds = data.load(str(tmp_path), (1, 6, 6), 2, data.Preprocess())
    with pytest.raises(DataError, match="img0.png: cannot read the image"):
        np.asarray(ds.x_train)


def test_val_class_without_training_folder(tmp_path):
    make_split(tmp_path / "train")
    make_split(tmp_path / "val", classes=("cat", "eel"))
    with pytest.raises(DataError, match="eel"):
        imagefolder.scan(tmp_path)


def test_more_classes_than_the_model_has(tmp_path):
    make_split(tmp_path, classes=("a", "b", "c"), per_class=4)
    with pytest.raises(DataError, match="3 class folders, but the model has 2"):
        data.load(str(tmp_path), (1, 6, 6), 2, data.Preprocess())


def test_folder_without_class_folders(tmp_path):
    with pytest.raises(DataError, match="no class folders"):
        imagefolder.scan(tmp_path)


def test_class_folder_without_images(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="no images"):
        imagefolder.scan(tmp_path)


def test_model_without_image_input(tmp_path):
    make_split(tmp_path, per_class=4)
    with pytest.raises(DataError, match="1- or 3-channel"):
        data.load(str(tmp_path), (36,), 2, data.Preprocess())


def test_opening_reads_no_image_and_evaluation_reads_in_batches(tmp_path, monkeypatch):
    """The memory bound: no read holds more than one batch of images."""
    import torch
    from torch import nn

    from onnx_builders import export_torch
    from snn2hw.importer import import_onnx
    from snn2hw.steps.pipeline import evaluate
    from snn2hw.snn import lower

    make_split(tmp_path, classes=tuple("abcd"), per_class=100)
    reads: list[int] = []
    real = imagefolder._Reader.__call__

    def counting(self, indices):
        reads.append(len(indices))
        return real(self, indices)

    monkeypatch.setattr(imagefolder._Reader, "__call__", counting)
    ds = data.load(str(tmp_path), (1, 6, 6), 4, data.Preprocess())
    assert reads == []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(36, 4, bias=False))
    graph = import_onnx(export_torch(model, tmp_path / "m.onnx", input_shape=(1, 1, 6, 6)))
    net = lower(graph)
    scales = {net.input: 1.0, net.layers[0].name: 1.0}
    evaluate(graph, net, scales, ds.x_train, ds.y_train, [4], seed=0, batch_size=64)
    n = len(ds.x_train)  # 300
    assert max(reads) <= 256  # the ANN's batch; the encoder reads 64 at a time
    assert sum(reads) == 2 * n  # each image once for the ANN, once for the spikes


def test_lazy_and_in_memory_samples_give_the_same_spikes(tmp_path):
    make_split(tmp_path, per_class=12)
    ds = data.load(str(tmp_path), (1, 6, 6), 2, data.Preprocess((0.1,), (1.0,)))
    x = np.asarray(ds.x_test)
    lazy = make_encoder("poisson", ds.x_test, input_scale=0.8, seed=3, stream=1)
    eager = make_encoder("poisson", x, input_scale=0.8, seed=3, stream=1)
    for t0, t1 in ((0, 5), (5, 9)):
        np.testing.assert_array_equal(lazy.chunk(0, len(x), t0, t1),
                                      eager.chunk(0, len(x), t0, t1))


def test_lazy_samples_indexing(tmp_path):
    make_split(tmp_path, per_class=8)
    ds = data.load(str(tmp_path), (1, 6, 6), 2, data.Preprocess())
    full = np.asarray(ds.x_train)
    np.testing.assert_array_equal(np.asarray(ds.x_train[2:7:2]), full[2:7:2])
    np.testing.assert_array_equal(np.asarray(ds.x_train[[5, 0]]), full[[5, 0]])
    np.testing.assert_array_equal(ds.x_train[3], full[3])
    x, _ = data.take(ds.x_train, ds.y_train, 4, "evaluation")
    assert isinstance(x, LazySamples) and len(x) == 4
    assert isinstance(data.calibration_set(ds, 4), np.ndarray)


def test_other_aspect_ratio_is_resized_and_centre_cropped(tmp_path):
    folder = tmp_path / "a"
    folder.mkdir()
    pixels = np.zeros((4, 12), dtype=np.uint8)
    pixels[:, 4:8] = 200  # the centre third is bright
    Image.fromarray(pixels, mode="L").save(folder / "w.png")
    out = imagefolder.read_image(str(folder / "w.png"), (1, 4, 4))
    # height already fits (scale 1): the crop keeps columns 4..7, the bright ones
    np.testing.assert_allclose(out, 200 / 255, atol=1e-6)


def test_cli_calibrate_on_an_image_folder(tmp_path, capsys):
    import torch
    from torch import nn

    from onnx_builders import export_torch
    from snn2hw.cli import main

    make_split(tmp_path / "imgs", per_class=8)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.ReLU(),
                              nn.Flatten(), nn.Linear(72, 2, bias=False))
    path = export_torch(model, tmp_path / "m.onnx", input_shape=(1, 1, 6, 6))
    code = main(["calibrate", path, "--data", str(tmp_path / "imgs"), "--samples", "4",
                 "--eval-samples", "4", "--timesteps", "8", "-o", str(tmp_path / "c.h5")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "SNN accuracy at T = 8" in out and (tmp_path / "c.h5").is_file()
