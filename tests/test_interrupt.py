"""Ctrl-C during a long simulation: a prompt, clear exit (130), the previous output file
untouched, and no temporary file left behind. SIGKILL just before the output's rename: the
previous file untouched, and the dead run's temporary file removed by the next write."""
from __future__ import annotations

import os
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


def test_sigkill_before_the_rename_keeps_the_old_file_and_the_next_write_cleans_up(
        tmp_path):
    """SIGKILL cannot be caught: the run dies with its complete temporary file next to the
    target, the previous output untouched. The next atomic write to that target removes
    the dead process's temporary file."""
    from snn2hw.fileio import PAUSE_ENV, write_text

    model, out, flag = tmp_path / "m.onnx", tmp_path / "m.calib.h5", tmp_path / "paused"
    tiny_torch_onnx(model, dataset=None)
    out.write_bytes(b"previous result")
    env = dict(os.environ, **{PAUSE_ENV: str(flag)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "snn2hw.cli", "calibrate", str(model), "--timesteps", "8",
         "--samples", "8", "--eval-samples", "8", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 180
        while not flag.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert flag.exists(), proc.communicate(timeout=60)
        temp = Path(flag.read_text())
        assert temp.parent == tmp_path and temp.name.startswith(f".m.calib.h5.{proc.pid}.")
        assert temp.stat().st_size > 1000  # the whole calibration file, not yet renamed
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert out.read_bytes() == b"previous result"
    assert temp.exists()  # nothing could remove it
    write_text(out, "new result")
    assert out.read_text() == "new result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.calib.h5", "m.onnx", "paused"]
