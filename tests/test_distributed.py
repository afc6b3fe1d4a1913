"""Calibration and evaluation across processes: two gloo ranks on 127.0.0.1 give exactly
(==, not approximately) what one process gives on the same samples."""
from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from snn2hw import distributed
from snn2hw.cli import main

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import distributed_cases  # noqa: E402

RANKS = 2
TIMEOUT = 240  # seconds: a hung collective fails the test instead of hanging the suite


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env(rank: int, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    return env | {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                  "LOCAL_RANK": str(rank), "WORLD_SIZE": str(RANKS),
                  "LOCAL_WORLD_SIZE": str(RANKS)}


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> list[dict]:
    """Each rank's pickled results of distributed_cases.run_cases()."""
    out = tmp_path_factory.mktemp("ranks") / "cases"
    port = free_port()
    procs = [subprocess.Popen([sys.executable, str(HERE / "distributed_cases.py"), str(out)],
                              env=rank_env(r, port), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in range(RANKS)]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=TIMEOUT)[0])
    finally:
        for p in procs:
            p.kill()
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log
    return [pickle.loads(Path(f"{out}.{r}").read_bytes()) for r in range(RANKS)]


@pytest.fixture(scope="module")
def one_process() -> dict[str, dict]:
    assert not distributed.launched()
    return distributed_cases.run_cases()


def test_the_ranks_formed_one_group(two_ranks):
    assert [r["world"] for r in two_ranks] == [RANKS] * RANKS


CASES = ["spike-norm max", "spike-norm percentile, subtract", "spike-norm capped batches",
         "max-act percentile", "max-act shared junction", "ann statistics", "evaluation",
         "sweep activity", "sweep activity, fast"]


@pytest.mark.parametrize("case", CASES)
def test_two_ranks_equal_one_process(two_ranks, one_process, case):
    for r in range(RANKS):
        assert two_ranks[r]["results"][case] == one_process[case], f"rank {r}"


def test_cases_are_not_trivial(one_process):
    """The comparisons above would pass vacuously on silent or constant results."""
    ev = one_process["evaluation"]
    assert all(rate > 0 for rate in ev["rates"].values())
    assert len(set(one_process["spike-norm max"]["scales"].values())) > 2
    assert one_process["spike-norm max"]["scales"] != \
        one_process["spike-norm capped batches"]["scales"]
    for case in ("sweep activity", "sweep activity, fast"):
        act = one_process[case]
        assert 0 < act["correct"][4] and act["correct"][16] <= act["samples"]
        assert 0 < act["sops"][4] < act["sops"][16] and 0 < act["spikes"][4] < act["spikes"][16]
    assert one_process["sweep activity"]["sops"] != one_process["sweep activity, fast"]["sops"]


# --------------------------------------------------------------------------- sharding


@pytest.mark.parametrize("n,unit,world", [(300, 64, 2), (300, 256, 2), (10, 4, 3),
                                          (5, 8, 4), (0, 64, 2), (1000, 64, 7)])
def test_shards_cover_every_sample_once_in_whole_shards(monkeypatch, n, unit, world):
    parts = []
    for r in range(world):
        monkeypatch.setattr(distributed, "world", lambda: world)
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        parts.append(distributed.owned(n, unit))
    covered = [i for lo, hi in parts for i in range(lo, hi)]
    assert covered == list(range(n))
    assert all(lo == hi or (lo % unit == 0 and (hi % unit == 0 or hi == n)) for lo, hi in parts)
    if n:
        assert parts[0][1] > parts[0][0]  # rank 0 always has work


def test_batches_stay_inside_their_shards():
    got = distributed.shard_batches(20, 8, 3)
    assert got == [(0, 3), (3, 6), (6, 8), (8, 11), (11, 14), (14, 16), (16, 19), (19, 20)]
    assert distributed.shard_batches(20, 8, 4) == [(s, min(20, s + 4)) for s in range(0, 20, 4)]


def test_ordered_sums_add_in_batch_order():
    parts = {"a": {2: 1e-16, 0: 1.0, 1: -1.0}}
    assert distributed.ordered_sums(parts, 3) == {"a": (1.0 + -1.0) + 1e-16}
    assert (1.0 + 1e-16) + -1.0 != (1.0 + -1.0) + 1e-16  # the order matters


# --------------------------------------------------------------------------- the command


def tiny_model(path: Path) -> Path:
    import torch
    from torch import nn

    from onnx_builders import export_torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.ReLU(),
                            nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 10, bias=False))
    return export_torch(net, path)


def torchrun_snn2hw(*args: str) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node RANKS -m snn2hw ARGS`` on 127.0.0.1, outside any rank's
    environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(RANKS),
         "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "snn2hw",
         *args], env=env, capture_output=True, text=True, timeout=TIMEOUT)


def test_torchrun_calibrate_writes_the_single_process_files_once(tmp_path, capsys):
    model = tiny_model(tmp_path / "tiny.onnx")
    args = ["calibrate", str(model), "--samples", "300", "--timesteps", "16",
            "--eval-samples", "200", "--eval-timesteps", "8,16", "--percentile", "99"]
    assert main(args + ["-o", str(tmp_path / "one.h5"), "--report",
                        str(tmp_path / "one.json")]) == 0
    capsys.readouterr()
    run = torchrun_snn2hw(*args, "-o", str(tmp_path / "two.h5"), "--report",
                          str(tmp_path / "two.json"))
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("wrote ") == 1  # rank 0 alone prints
    assert run.stdout.count("SNN accuracy at T = 16") == 1
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert two == one
    assert (tmp_path / "two.h5").read_bytes() == (tmp_path / "one.h5").read_bytes()


def test_torchrun_sweep_writes_the_single_process_report_once(tmp_path, capsys):
    """Both presets (per-channel scales and bias calibration in ``fast``) and both methods;
    200 calibration samples are 4 shards of 64 (2 per rank), the ANN's 300 test samples
    2 batches of 256 (one per rank)."""
    model = tiny_model(tmp_path / "tiny.onnx")
    args = ["sweep", str(model), "--presets", "paper,fast", "--methods",
            "spike-norm,max-act", "--timesteps", "4,8", "--samples", "200",
            "--eval-samples", "300"]
    assert main(args + ["-o", str(tmp_path / "one.json")]) == 0
    capsys.readouterr()
    run = torchrun_snn2hw(*args, "-o", str(tmp_path / "two.json"), "--plot",
                          str(tmp_path / "two.png"))
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("wrote ") == 2  # rank 0 alone prints: the JSON and the plot
    assert (tmp_path / "two.json").read_text() == (tmp_path / "one.json").read_text()
    assert (tmp_path / "two.png").stat().st_size > 0
    report = json.loads((tmp_path / "one.json").read_text())
    assert len(report["runs"]) == 4 and report["eval_samples"] == 300


def test_other_commands_are_refused_under_torchrun(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["inspect", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: `snn2hw inspect` runs in one process")


def test_a_user_error_is_printed_by_rank_0_only(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(["inspect", str(tmp_path / "m.onnx")]) == 2
    assert capsys.readouterr().err == ""


def test_one_gpu_named_for_several_local_ranks_is_refused(monkeypatch, capsys, tmp_path):
    import torch

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert main(["calibrate", str(tmp_path / "m.onnx"), "--device", "cuda:1",
                 "-o", str(tmp_path / "c.h5")]) == 2
    assert "each process takes the GPU of its local rank" in capsys.readouterr().err


@pytest.mark.parametrize("device,message", [("gpu", "not a torch device"),
                                            ("mps", "only cpu and cuda")])
def test_bad_device_is_one_error_line(tmp_path, capsys, device, message):
    assert main(["calibrate", str(tmp_path / "m.onnx"), "--device", device,
                 "-o", str(tmp_path / "c.h5")]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and message in err and "Traceback" not in err


def test_ranks_other_than_0_write_no_file(tmp_path, capsys, monkeypatch):
    model = tiny_model(tmp_path / "tiny.onnx")
    monkeypatch.setattr(distributed, "is_main", lambda: False)
    out = tmp_path / "c.h5"
    assert main(["calibrate", str(model), "--samples", "8", "--timesteps", "4",
                 "--eval-samples", "8", "-o", str(out), "--report",
                 str(tmp_path / "r.json")]) == 0
    assert not out.exists() and not (tmp_path / "r.json").exists()


def test_ann_means_do_not_depend_on_the_thread_count():
    """torch splits a large sum across its threads, so its rounding follows the thread
    count; the rate-matching means (and so the scales) must not."""
    import numpy as np
    import torch

    from snn2hw import ir, snn
    from snn2hw.calibrate.annstats import ann_statistics
    from snn2hw.importer import graph_from_nodes

    rng = np.random.default_rng(0)
    net = snn.lower(graph_from_nodes([
        ir.Input("input", [], (2, 16, 16)),
        ir.Conv("c1", ["input"], weight=rng.normal(0, 0.5, (8, 2, 3, 3)),
                padding=(1, 1, 1, 1)),
        ir.ReLU("r1", ["c1"]), ir.Flatten("f", ["r1"]),
        ir.Dense("out", ["f"], weight=rng.normal(0, 0.1, (3, 2048)))]))
    x = rng.uniform(-1, 1, (128, 2, 16, 16)).astype(np.float32)  # 131,072 values a batch
    threads = torch.get_num_threads()
    means = []
    try:
        for n in (1, 2, 4):
            torch.set_num_threads(n)
            means.append(ann_statistics(net, x, batch_size=64, quantiles=False)["r1"]["mean"])
    finally:
        torch.set_num_threads(threads)
    assert means[0] == means[1] == means[2]
