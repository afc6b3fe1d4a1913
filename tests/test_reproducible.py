"""Same inputs and seed -> byte-identical artifacts and identical reported numbers."""
from __future__ import annotations

import onnx
import torch

from snn2hw.cli import main


def tiny_model(path) -> None:
    torch.manual_seed(5)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 10)).eval()
    torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False,
                      opset_version=17)
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "snn2hw.dataset", "digits"
    onnx.save(proto, str(path))


def run_twice(tmp_path, args_for):
    outputs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        out.mkdir()
        assert main(args_for(out)) == 0
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    return outputs


def test_calibration_files_and_reports_are_byte_identical(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    tiny_model(model)
    first, second = run_twice(tmp_path, lambda out: [
        "calibrate", str(model), "--timesteps", "24", "--samples", "24", "--eval-samples",
        "30", "--seed", "3", "-o", str(out / "m.calib.h5"), "--report", str(out / "r.json")])
    assert first.keys() == {"m.calib.h5", "r.json"}
    assert first == second
    printed = capsys.readouterr().out.replace(str(tmp_path / "run0"), "").replace(
        str(tmp_path / "run1"), "")
    half = len(printed) // 2
    assert printed[:half] == printed[half:]


def test_export_files_are_byte_identical(tmp_path):
    model = tmp_path / "m.onnx"
    tiny_model(model)
    first, second = run_twice(tmp_path, lambda out: [
        "export", str(model), "--profile", "loihi_sim", "--timesteps", "16", "--samples", "16",
        "--eval-samples", "20", "-o", str(out / "m.h5"), "--report", str(out / "r.json")])
    assert first.keys() == {"m.h5", "r.json"}
    assert first == second


def test_a_different_seed_gives_a_different_calibration(tmp_path):
    model = tmp_path / "m.onnx"
    tiny_model(model)
    files = []
    for seed in (1, 2):
        out = tmp_path / f"c{seed}.h5"
        assert main(["calibrate", str(model), "--timesteps", "24", "--samples", "24",
                     "--eval-samples", "10", "--seed", str(seed), "-o", str(out)]) == 0
        files.append(out.read_bytes())
    assert files[0] != files[1]
