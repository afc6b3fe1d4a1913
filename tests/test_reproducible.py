"""Same inputs and seed -> byte-identical artifacts and identical reported numbers."""
from __future__ import annotations

import sys
from pathlib import Path

from snn2hw.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_builders import tiny_torch_onnx  # noqa: E402


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
    tiny_torch_onnx(model)
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
    tiny_torch_onnx(model)
    first, second = run_twice(tmp_path, lambda out: [
        "export", str(model), "--profile", "loihi_sim", "--timesteps", "16", "--samples", "16",
        "--eval-samples", "20", "-o", str(out / "m.h5"), "--report", str(out / "r.json")])
    assert first.keys() == {"m.h5", "r.json"}
    assert first == second


def test_a_different_seed_gives_a_different_calibration(tmp_path):
    model = tmp_path / "m.onnx"
    tiny_torch_onnx(model)
    files = []
    for seed in (1, 2):
        out = tmp_path / f"c{seed}.h5"
        assert main(["calibrate", str(model), "--timesteps", "24", "--samples", "24",
                     "--eval-samples", "10", "--seed", str(seed), "-o", str(out)]) == 0
        files.append(out.read_bytes())
    assert files[0] != files[1]
