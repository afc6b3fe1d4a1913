"""Run a netx file in lava-dl's loader on Lava, in a child process under a timeout (the
worker: :mod:`.worker`), and return every block's spikes as snn2hw's simulators give them.

Used by the tests to check a written file against snn2hw's fixed-point reference
(:mod:`snn2hw.fixed`), and usable to check any netx file: nothing here imports Lava.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from snn2hw.errors import BackendError

from ..lava.checks import unpack_output
from ..lava.cleanup import cleanup_shm, group_members, kill_group, shm_mapped_by, shm_snapshot

WORKER_MODULE = "snn2hw.exporters.netx.worker"


def run_netx(path: str, spikes: np.ndarray, input_shape: tuple[int, ...], timesteps: int,
             timeout: float = 300.0, input_message_bits: int = 8) -> list[np.ndarray]:
    """Spikes (N, T, size) int8 of every block of the netx file ``path`` for the input
    ``spikes`` (N, T, in_size), samples back to back with a reset every ``timesteps``
    steps. Block i is i + 1 hops from the input: its steps t < i + 1 (the previous
    sample's tail) are reported silent, as snn2hw's Lava backend reports them."""
    n, t = spikes.shape[:2]
    if t != timesteps:
        raise ValueError(f"spikes have {t} steps, expected {timesteps}")
    job_dir = tempfile.mkdtemp(prefix="snn2hw-netx-")
    shm_before, group_shm, ok, proc = shm_snapshot(), set(), False, None
    try:
        with open(os.path.join(job_dir, "job.json"), "w", encoding="utf-8") as fh:
            json.dump({"path": os.path.abspath(path), "shape": list(input_shape),
                       "timesteps": int(timesteps),
                       "input_message_bits": int(input_message_bits)}, fh)
        np.save(os.path.join(job_dir, "spikes.npy"),
                spikes.reshape(n, t, *input_shape).astype(np.int8), allow_pickle=False)
        with open(os.path.join(job_dir, "worker.log"), "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, job_dir],
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            group_shm = shm_mapped_by(group_members(proc.pid))
            raise BackendError(f"netx run timed out after {timeout:g} s; its processes "
                               "were killed") from None
        if rc != 0:
            group_shm = shm_mapped_by(group_members(proc.pid))
            raise BackendError(f"netx worker failed (exit {rc}): {_error(job_dir)}")
        with np.load(os.path.join(job_dir, "result.npz"), allow_pickle=False) as npz:
            blocks = [np.array(npz[f"block_{i}"]) for i in range(len(npz.files))]
        ok = True
        return [unpack_output(b, n, t, i + 1) for i, b in enumerate(blocks)]
    finally:
        if proc is not None:
            kill_group(proc)
        if not ok:
            cleanup_shm(shm_before, group_shm)
        shutil.rmtree(job_dir, ignore_errors=True)


def _error(job_dir: str) -> str:
    for name in ("error.txt", "worker.log"):
        try:
            with open(os.path.join(job_dir, name), encoding="utf-8", errors="replace") as fh:
                lines = [ln.strip() for ln in fh if ln.strip()]
            if lines:
                return lines[0] if name == "error.txt" else lines[-1]
        except OSError:
            continue
    return "no error message"
