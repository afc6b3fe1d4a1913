"""examples/fashion.py end to end on a tiny generated Fashion-MNIST (IDX files found through
SNN2HW_DATA): few images, one epoch, a few time steps, one Lava image."""
from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import onnx
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from idx_files import make_arrays, write_dataset  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TINY = ["--train-samples", "40", "--epochs", "1", "--eval-samples", "8", "--timesteps", "4,8",
        "--calib-samples", "4", "--calib-timesteps", "4", "--fixed-samples", "4",
        "--fixed-timesteps", "8", "--lava-samples", "1", "--lava-timesteps", "8",
        "--methods", "max-act", "--threads", "1", "--configs", "best"]


def _main(argv: list[str]) -> int:
    if str(EXAMPLES) not in sys.path:   # as the examples import each other
        sys.path.insert(0, str(EXAMPLES))
    module = importlib.import_module("fashion")
    threads = torch.get_num_threads()
    try:
        with torch.random.fork_rng(devices=[]):
            return module.main(argv)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def tiny_fashion(tmp_path, monkeypatch):
    write_dataset(tmp_path / "data" / "fashion-mnist", make_arrays(48, 16))
    monkeypatch.setenv("SNN2HW_DATA", str(tmp_path / "data"))
    return tmp_path


def test_fashion_trains_converts_and_deploys(tiny_fashion, capsys):
    """Both networks; Lava (the slow part) for the VGG-style one only."""
    work = tiny_fashion / "work"
    assert _main(["--workdir", str(work), *TINY, "--nets", "resnet", "--lava-samples", "0"]) == 0
    out = capsys.readouterr().out
    assert _main(["--workdir", str(work), *TINY, "--nets", "vgg"]) == 0
    out += capsys.readouterr().out
    for net, spiking in (("VGG-style", "5 / 5"), ("ResNet-style", "8 / 8")):
        for config in ("best",):  # "paper" differs only in the reset/percentile passed on
            rows = [line for line in out.splitlines() if line.startswith(f"{net} ({config})")]
            assert len(rows) == 1 and spiking in rows[0], out
            assert len(re.findall(r"\d+\.\d\d %", rows[0])) == 3  # ANN, T=4, T=8
    lava = [line for line in out.splitlines()
            if line.startswith(("VGG-style ", "ResNet-style ")) and "max-act" in line
            and "(" not in line]
    assert len(lava) == 2 and lava[0].startswith("ResNet") and lava[0].rstrip().endswith("-")
    assert lava[1].startswith("VGG") and lava[1].rstrip().endswith("100.00 %"), out
    assert "MISMATCH" not in out
    for net in ("vgg", "resnet"):
        meta = {p.key: p.value for p in onnx.load(str(work / f"{net}.onnx")).metadata_props}
        assert meta["snn2hw.dataset"] == "fashion-mnist" and "snn2hw.preprocess" in meta
        for config in ("best",):
            assert (work / config / f"{net}.max-act.calib.h5").is_file()
    assert (work / "best" / "vgg.max-act.loihi_sim.h5").is_file()


def test_fashion_refuses_a_different_cached_model(tiny_fashion, capsys):
    work = tiny_fashion / "work"
    work.mkdir()
    import shutil

    from onnx_builders import export_torch
    from torch import nn

    export_torch(nn.Sequential(nn.Flatten(), nn.Linear(784, 10, bias=False)),
                 work / "vgg.onnx", input_shape=(1, 1, 28, 28))
    shutil.copy(work / "vgg.onnx", work / "keep.onnx")
    assert _main(["--workdir", str(work), *TINY, "--nets", "vgg"]) == 2
    assert "exists but is another network" in capsys.readouterr().err
    assert (work / "vgg.onnx").read_bytes() == (work / "keep.onnx").read_bytes()


def test_fashion_without_the_data_set_is_one_error(tmp_path, monkeypatch, capsys):
    from snn2hw.data import builtin_data

    monkeypatch.setenv("SNN2HW_DATA", str(tmp_path))
    monkeypatch.setattr(builtin_data, "DEBIAN_DIR", {})
    assert _main(["--workdir", str(tmp_path / "w"), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "make data" in err and "Traceback" not in err
