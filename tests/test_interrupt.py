"""Ctrl-C during a long simulation: a prompt, clear exit (130), the previous output file
untouched, and no temporary file left behind."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_builders import tiny_torch_onnx  # noqa: E402


def test_sigint_during_calibration_exits_130_and_keeps_the_old_file(tmp_path):
    model, out = tmp_path / "m.onnx", tmp_path / "m.calib.h5"
    tiny_torch_onnx(model, dataset=None)
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
