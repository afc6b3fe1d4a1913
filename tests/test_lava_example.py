"""examples/run_lava_graph.py builds its own Lava graph from an export. On a subtract-reset
export and a user's .npz data set it must give the output spike counts of the library
function behind `snn2hw run` (run_lava under the export's profile) and of the reference
simulator, which a reset-to-zero graph would not give (checked here, so the test can fail).
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from snn2hw import data
from snn2hw.hardware import profiles
from snn2hw.snn import simulate
from snn2hw.cli import main
from snn2hw.steps.deploy import prepare_network
from snn2hw.snn.encoders import make_encoder
from snn2hw.artifacts.export import load_export
from snn2hw.exporters.lava.watchdog import run_lava
from snn2hw.steps.pipeline import EVALUATION_STREAM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_builders import tiny_torch_onnx  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES, STEPS = 4, 24


@pytest.fixture(scope="module")
def subtract_export(tmp_path_factory):
    """A subtract-reset export calibrated on an .npz file whose test split is the digits
    test split reversed (so an example that ignored --data would see other images)."""
    root = tmp_path_factory.mktemp("example")
    digits = data.digits((1, 8, 8))
    npz = root / "mine.npz"
    np.savez(npz, x=digits.x_train, y=digits.y_train, x_test=digits.x_test[::-1],
             y_test=digits.y_test[::-1])
    model, out = root / "m.onnx", root / "m.sub.h5"
    tiny_torch_onnx(model, seed=3, two_convs=True)
    assert main(["export", str(model), "--profile", "loihi_sim", "--reset", "subtract",
                 "--data", str(npz), "--timesteps", "16", "--samples", "16",
                 "--eval-samples", "4", "-o", str(out)]) == 0
    return out, npz


def example_counts(export: Path, npz: Path) -> np.ndarray:
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "run_lava_graph.py"),
                           str(export), "--data", str(npz), "--samples", str(SAMPLES),
                           "--timesteps", str(STEPS)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "reset subtract" in proc.stdout and "fixed_pt" in proc.stdout
    rows = re.findall(r"output spikes \[([^\]]*)\]", proc.stdout)
    assert len(rows) == SAMPLES, proc.stdout
    return np.array([[int(v) for v in row.split(",")] for row in rows])


@pytest.mark.lava
def test_example_matches_snn2hw_run_on_a_subtract_reset_export(subtract_export):
    export, npz = subtract_export
    art = load_export(export)
    q = art.qnet
    assert q.reset == "subtract"
    ds = data.load(str(npz), q.input_shape, q.output.size,
                   data.Preprocess.from_json(art.preprocess))
    x, _ = data.take(ds.x_test, ds.y_test, SAMPLES, "evaluation")
    enc = make_encoder("poisson", x, input_scale=q.input_scale, seed=art.seed,
                       stream=EVALUATION_STREAM)
    spikes = enc.full(0, SAMPLES, STEPS).reshape(SAMPLES, STEPS, -1)
    profile = profiles.load_stored(art.profile_toml, str(export))
    lava = run_lava(q, spikes, STEPS, profile=profile).spikes[q.output.name].sum(axis=1)

    def reference(reset: str) -> np.ndarray:
        q.reset = reset
        enc = make_encoder("poisson", x, input_scale=q.input_scale, seed=art.seed,
                           stream=EVALUATION_STREAM)
        res = simulate.simulate(prepare_network(q), enc, STEPS, record=[q.output.name])
        return res.records[q.output.name].sum(axis=1)

    subtract, zero = reference("subtract"), reference("zero")
    assert subtract.sum() > 0 and not np.array_equal(subtract, zero)
    assert np.array_equal(lava, subtract)
    counts = example_counts(export, npz)
    assert np.array_equal(counts, lava)
    assert np.array_equal(counts.argmax(axis=1), simulate.decode(lava)[0])


@pytest.mark.lava
def test_example_gives_up_at_its_deadline(subtract_export):
    """A run longer than --timeout ends with exit 4 and one error line, its Lava worker
    processes killed, instead of running (or hanging) on."""
    export, npz = subtract_export
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "run_lava_graph.py"),
                           str(export), "--data", str(npz), "--samples", "4",
                           "--timesteps", "50000", "--timeout", "2"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 4, proc.stderr[-3000:]
    assert "error: Lava did not finish within 2 s" in proc.stderr.splitlines()
