"""Run a Lava job in a child process with a timeout, and clean up after it whatever happens.

Lava can hang (a failing ProcessModel deadlocks ``run()``; ``stop()`` may hang after it),
forks one OS process per Lava process plus a shared-memory manager, and leaves
shared-memory segments in /dev/shm when killed. So every run goes to
:mod:`snn2hw.exporters.lava.worker` in a new session (its own process group); on
timeout, failure or Ctrl-C the whole group gets SIGTERM, then SIGKILL, the segments the
run left behind are unlinked, the private job directory is removed, and a one-line
:class:`~snn2hw.errors.BackendError` is raised (Ctrl-C re-raises KeyboardInterrupt).

This module imports neither Lava nor torch.
"""
from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from snn2hw.errors import BackendError

from . import checks
from .cleanup import cleanup_shm, group_members, kill_group, shm_mapped_by, shm_snapshot

WORKER_MODULE = "snn2hw.exporters.lava.worker"


@dataclass
class LavaResult:
    spikes: dict[str, np.ndarray]            # layer name -> (N, T, size) int8
    seconds: float                           # wall-clock of the whole run_lava call
    steps_per_second: float                  # Lava steps per second of the run itself
    timing: dict[str, float] = field(default_factory=dict)
    # membrane read-out (qnet.conversion.readout): output layer -> (N, T, size) float64 v
    # after each step of its window, as a Monitor reads it (exporters/lava/conversion.py)
    potentials: dict[str, np.ndarray] = field(default_factory=dict)


def default_timeout(qnet, samples: int, timesteps: int) -> float:
    """Generous but finite: 2 minutes for start-up and compilation plus ten times the
    estimated time of all N*T steps (the estimate grows with processes, synapses and
    neurons, so with the number of layers)."""
    steps = samples * timesteps
    return 120.0 + 10.0 * steps * checks.estimate_step_cost(qnet)


def _status(rc: int) -> str:
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"


def _worker_error(job_dir: str) -> str:
    """The worker's one-line error, else the last line of its log."""
    try:
        with open(os.path.join(job_dir, "error.txt"), encoding="utf-8",
                  errors="replace") as fh:
            line = fh.readline().strip()
        if line:
            return line
    except OSError:
        pass
    try:
        with open(os.path.join(job_dir, "worker.log"), "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            lines = [ln.strip() for ln in fh.read().decode("utf-8", "replace").splitlines()]
        lines = [ln for ln in lines if ln]
        if lines:
            return lines[-1]
    except OSError:
        pass
    return "no error message"


def _read_result(job_dir: str) -> tuple[dict[str, np.ndarray], dict[str, float],
                                        dict[str, np.ndarray]]:
    import json

    path = os.path.join(job_dir, "result.npz")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = json.loads(str(npz["names"]))
            timing = json.loads(str(npz["timing"]))
            spikes = {name: np.array(npz[f"layer_{i}"]) for i, name in enumerate(names)}
            potentials = {name: np.array(npz[f"potential_{i}"]) for i, name
                          in enumerate(json.loads(str(npz["potential_names"])))}
    except (OSError, KeyError, ValueError) as exc:
        raise BackendError(f"Lava worker finished but its result is unreadable: {exc}") \
            from None
    return spikes, timing, potentials


def run_lava(qnet, spikes: np.ndarray, timesteps: int, tag: str | None = None,
             record: list[str] | None = None, timeout: float | None = None, *,
             on_start: Callable[[int], None] | None = None,
             hidden_message_bits: int | None = None,
             reader: str | None = None, delay: str | None = None,
             limits=None, profile=None) -> LavaResult:
    """Run ``qnet`` on Lava's CPU backend under ``profile`` (a Profile, name or .toml
    path; default: the shipped profile of ``tag``, ``fixed_pt``: bit-accurate Loihi
    arithmetic, or ``floating_pt``: float models, with ``limits`` replacing its
    fixed-point rules if given) for the input spikes (N, T, in_size) of -1/0/+1 (or the
    values of an analog input coding, :mod:`.conversion`), all N samples back to back in
    one run, with ``qnet.conversion``'s options. Returns every recorded layer's spikes
    (default: all layers) as (N, T, size) int8 over each layer's window, and for the
    membrane read-out the output layer's potentials.

    ``timeout`` (seconds) defaults to :func:`default_timeout`. ``on_start`` is called with
    the worker's pid (= its process-group id) once it is started. ``hidden_message_bits``
    (0: binary spikes between layers, as on Loihi; default: the profile's),
    ``delay`` ("relay", default, or "delaysparse", the Loihi mapping) and ``reader``
    ("extractor", default, or "sink") select graph variants that give identical spikes
    (see :mod:`snn2hw.exporters.lava.backend`). Raises
    :class:`BackendError` on failure or timeout, ``HardwareLimitError`` if Lava cannot run
    the profile or a value does not fit its registers, and re-raises KeyboardInterrupt
    after killing the worker.
    """
    profile = checks.check_network(qnet, tag, record, limits, profile=profile)
    spikes = checks.check_spikes(qnet, spikes, timesteps)
    samples = spikes.shape[0]
    if timeout is None:
        timeout = default_timeout(qnet, samples, timesteps)
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    job = {"qnet": qnet, "profile": profile, "timesteps": int(timesteps),
           "record": None if record is None else list(record)}
    if hidden_message_bits is not None:
        job["hidden_message_bits"] = int(hidden_message_bits)
    if reader is not None:
        if reader not in ("extractor", "sink"):
            raise ValueError(f"unknown reader {reader!r}")
        job["reader"] = reader
    if delay is not None:
        if delay not in ("relay", "delaysparse"):
            raise ValueError(f"unknown delay mode {delay!r}")
        job["delay"] = delay

    t0 = time.monotonic()
    shm_before = shm_snapshot()
    group_shm: set[str] = set()
    job_dir = tempfile.mkdtemp(prefix="snn2hw-lava-")
    proc: subprocess.Popen | None = None
    ok = False
    try:
        with open(os.path.join(job_dir, "job.pkl"), "wb") as fh:
            pickle.dump(job, fh, protocol=pickle.HIGHEST_PROTOCOL)
        np.save(os.path.join(job_dir, "spikes.npy"), spikes, allow_pickle=False)
        with open(os.path.join(job_dir, "worker.log"), "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, job_dir],
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    close_fds=True)
        if on_start is not None:
            on_start(proc.pid)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            group_shm = shm_mapped_by(group_members(proc.pid))
            kill_group(proc)
            raise BackendError(
                f"Lava run timed out after {timeout:g} s ({samples} samples x {timesteps} "
                f"steps, {len(qnet.layers)} layers); its processes were killed",
                hint="raise the timeout if the network is just slow") from None
        if rc != 0:
            group_shm = shm_mapped_by(group_members(proc.pid))
            kill_group(proc)
            raise BackendError(f"Lava worker failed ({_status(rc)}): {_worker_error(job_dir)}")
        out, timing, potentials = _read_result(job_dir)
        ok = True
        return LavaResult(out, time.monotonic() - t0,
                          float(timing.get("steps_per_second", 0.0)), timing, potentials)
    except BaseException:
        # KeyboardInterrupt (or anything else) while the worker runs: take it down too.
        if proc is not None and not group_shm:
            group_shm = shm_mapped_by(group_members(proc.pid))
        raise
    finally:
        if proc is not None:
            kill_group(proc)  # a no-op after a clean exit
        if not ok:
            cleanup_shm(shm_before, group_shm)
        shutil.rmtree(job_dir, ignore_errors=True)
