"""Ctrl-C during a long simulation: a prompt, clear exit (130), the previous output file
untouched, and no temporary file left behind."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import onnx
import torch


def tiny_model(path) -> None:
    torch.manual_seed(5)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 10)).eval()
    torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False,
                      opset_version=17)
    onnx.checker.check_model(onnx.load(str(path)))


def test_sigint_during_calibration_exits_130_and_keeps_the_old_file(tmp_path):
    model, out = tmp_path / "m.onnx", tmp_path / "m.calib.h5"
    tiny_model(model)
    out.write_bytes(b"previous result")
    proc = subprocess.Popen(
        [sys.executable, "-m", "snn2hw.cli", "calibrate", str(model), "--timesteps", "16",
         "--samples", "16", "--eval-samples", "20", "--eval-timesteps", "400000",
         "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(10)  # imports done; well inside the long (memory-bounded) evaluation
    assert proc.poll() is None, proc.communicate()
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - start < 30
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "error: interrupted"
    assert "Traceback" not in err
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.calib.h5", "m.onnx"]
