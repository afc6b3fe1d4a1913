"""Compile and run a Lava process graph, drain its outputs while it runs and watch its
processes for failures (normally inside the child process :mod:`.worker`)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from snn2hw.errors import BackendError
from snn2hw.hardware.profiles import Profile

from .checks import check_network, check_spikes
from .conversion import unpack_window, window_offsets, window_potentials
from .graph import DELAY, READER, Graph, build_graph

@dataclass
class LavaRun:
    """What one Lava execution produced (in the process that ran Lava)."""
    spikes: dict[str, np.ndarray]            # name -> (N, T, size) int8
    timing: dict[str, float] = field(default_factory=dict)
    # membrane read-out: output layer name -> (N, T, size) v after each step of its window
    potentials: dict[str, np.ndarray] = field(default_factory=dict)



END_GRACE = 2.0  # seconds to keep draining after the run ended with steps still missing


def _run_config(tag: str):
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel

    # The Extractor has two untagged models (Loihi and async protocol); with a select_tag
    # Lava refuses to choose (run_configs.py:312-325), so name the synchronous one.
    return Loihi2SimCfg(select_tag=tag,
                        exception_proc_model_map={Extractor: PyLoihiExtractorModel})


def _actor_failure(runtime) -> str | None:
    """One line describing a Lava actor (ProcessModel/RuntimeService process) that raised
    or died, or None. A failing ProcessModel does not make ``run()`` raise when it is
    connected (the others deadlock), so the run is watched from outside."""
    infra = getattr(runtime, "_messaging_infrastructure", None)
    for actor in list(getattr(infra, "actors", []) or []):
        try:
            exc = actor.exception
        except (OSError, EOFError, ValueError):
            exc = None
        if exc:
            err, tb = exc if isinstance(exc, tuple) and len(exc) == 2 else (exc, "")
            lines = [ln.strip() for ln in str(tb).splitlines() if ln.strip()]
            return lines[-1] if lines else f"{type(err).__name__}: {err}"
        try:
            dead = actor.exitcode is not None and actor.exitcode != 0
        except (ValueError, AssertionError):
            dead = False
        if dead:
            return f"a Lava process exited with status {actor.exitcode}"
    return None


def _bounded(fn: Callable[[], Any], seconds: float) -> bool:
    """Run fn in a daemon thread; True if it returned within ``seconds``."""
    th = threading.Thread(target=fn, daemon=True)
    th.start()
    th.join(seconds)
    return not th.is_alive()


def run_graph(graph: Graph, tag: str, poll: float = 0.05, stop_timeout: float = 30.0,
              failed_stop_timeout: float = 2.0
              ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Compile, run ``graph.num_steps`` steps and collect every recorded layer as
    (size, N*T) spikes. The blocking ``run()`` goes in a thread while this thread drains
    the extractors and watches the Lava processes for failures. Always stops the runtime
    (bounded: ``stop()`` hangs after a ProcessModel failure)."""
    from lava.magma.core.run_conditions import RunSteps

    proc = graph.source
    timing: dict[str, float] = {}
    steps = graph.num_steps
    t0 = time.perf_counter()
    ok = False
    try:
        proc.create_runtime(run_cfg=_run_config(tag))
        t1 = time.perf_counter()
        timing["compile_seconds"] = t1 - t0
        errors: list[BaseException] = []

        def target() -> None:
            try:
                proc.run(condition=RunSteps(num_steps=steps))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        streams = {}
        if graph.reader == "extractor":
            streams = {name: (ext.out_port.external_pipe_csp_recv_port,
                              np.zeros((steps, ext.in_port.shape[0]), np.int8))
                       for name, ext in graph.readers.items()}
        got = dict.fromkeys(streams, 0)
        runner = threading.Thread(target=target, daemon=True, name="lava-run")
        runner.start()
        last_check = 0.0
        ended_at = None  # when the run was first seen finished with steps still missing
        while True:
            # Read "finished" before draining: the run may end (its last messages landing
            # in the pipes) while we drain, and only a drain that starts after the end is
            # sure to see every message sent before it.
            finished = not runner.is_alive()
            moved = False
            for name, (port, buf) in streams.items():
                while got[name] < steps and port.probe():
                    buf[got[name]] = port.recv() != 0
                    got[name] += 1
                    moved = True
            done = all(n == steps for n in got.values())
            if finished and done:
                break
            now = time.perf_counter()
            if not moved or now - last_check > poll:
                last_check = now
                failure = _actor_failure(proc.runtime)
                if failure:
                    raise BackendError(f"a Lava process failed: {failure}")
                if finished and errors:
                    raise BackendError(f"Lava run failed: {errors[0]}") from errors[0]
                if finished and not done and not moved:
                    ended_at = now if ended_at is None else ended_at
                    if now - ended_at > END_GRACE:
                        raise BackendError("Lava run ended before every step was received "
                                           f"({min(got.values())} of {steps})")
                if not moved:
                    if finished:
                        time.sleep(0.005)
                    else:
                        runner.join(0.005 if streams else poll)
        if errors:
            raise BackendError(f"Lava run failed: {errors[0]}") from errors[0]
        t2 = time.perf_counter()
        timing["run_seconds"] = t2 - t1
        timing["steps"] = float(steps)
        timing["steps_per_second"] = steps / max(t2 - t1, 1e-9)
        if graph.reader == "extractor":
            data = {name: buf.T for name, (_, buf) in streams.items()}
        else:
            data = {name: np.asarray(sink.data.get()) for name, sink in graph.readers.items()}
        if graph.monitor is not None:   # membrane read-out (see .conversion)
            lif = graph.neurons[graph.monitored]
            graph.trace = np.asarray(graph.monitor.get_data()[lif.name]["v"])
        timing["read_seconds"] = time.perf_counter() - t2
        ok = True
    finally:
        # After a ProcessModel failure stop() blocks on the dead process's reply: give it
        # a short chance only (the parent kills what is left).
        ts = time.perf_counter()
        if not _bounded(proc.stop, stop_timeout if ok else failed_stop_timeout):
            timing["stop_hung"] = 1.0
        timing["stop_seconds"] = time.perf_counter() - ts
    return data, timing


def run_network(qnet, spikes: np.ndarray, timesteps: int, tag: str | None = None,
                record: list[str] | None = None,
                extra: Callable[[Graph], None] | None = None,
                hidden_message_bits: int | None = None,
                reader: str = READER, delay: str = DELAY, *,
                profile: Profile | str | None = None) -> LavaRun:
    """Run ``qnet`` on Lava in *this* process (call it from a child process: see
    :mod:`snn2hw.exporters.lava.watchdog`) under ``profile`` (default: the shipped profile of
    ``tag``), checked first. ``extra`` may add processes to the graph (tests)."""
    profile = check_network(qnet, tag, record, profile=profile)
    spikes = check_spikes(qnet, spikes, timesteps)
    n, t, _ = spikes.shape
    t0 = time.perf_counter()
    graph = build_graph(qnet, spikes, timesteps, None, record, hidden_message_bits, reader,
                        delay, profile=profile)
    if extra is not None:
        extra(graph)
    build_seconds = time.perf_counter() - t0
    data, timing = run_graph(graph, profile.settings.tag)
    timing["build_seconds"] = build_seconds
    depth = {la.name: int(la.depth) for la in qnet.layers}
    offsets = window_offsets(qnet)
    out = {name: unpack_window(arr, n, t, offsets[name], depth[name])
           for name, arr in data.items()}
    potentials = {}
    if graph.trace is not None:
        potentials[graph.monitored] = window_potentials(
            graph.trace, n, t, offsets[graph.monitored], depth[graph.monitored])
    return LavaRun(out, timing, potentials)
