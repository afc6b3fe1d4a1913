"""Child process that runs one Lava job: ``python -m snn2hw.exporters.lava.worker JOB_DIR``.

Started by :func:`snn2hw.exporters.lava.watchdog.run_lava` in a new session (its own process
group), so the parent can kill it together with every process Lava forks. ``JOB_DIR``
(a private ``mkdtemp`` directory) holds

* ``job.pkl``   -- pickled ``{"qnet": QuantizedNetwork, "profile": Profile, "timesteps":
  int, "record": list[str] | None}`` (optional: ``"hidden_message_bits"``, ``"reader"``,
  ``"delay"``: graph variants, see lava_backend); the network is checked again against
  its profile here;
* ``spikes.npy`` -- input spikes (N, T, in_size) int8.

On success the worker writes ``result.npz`` atomically (``layer_0``, ``layer_1``, ... in
the order of ``names``; ``names`` and ``timing`` as JSON strings; for a membrane read-out
``potential_0`` (float64 v of the output layer, named in ``potential_names``)) and
exits 0. On failure
it writes a one-line ``error.txt`` (traceback on stderr) and exits 1.

Import order matters: :mod:`snn2hw.exporters.lava` first (installs the Python 3.11 fix), then
Lava's runtime, which calls ``multiprocessing.set_start_method('fork')`` unguarded, and
only then the pickled network (whose module imports torch).

Test-only hook: if the environment variable ``SNN2HW_LAVA_TEST_PROCESS`` is set to
``/path/module.py:ClassName``, that Lava Process class is instantiated with
``shape=(size,)`` and fed by the shallowest layer's spikes. It exists so the test suite
can inject a ProcessModel that raises or hangs; nothing else uses it.
"""
from __future__ import annotations

import json
import os
import pickle
import sys
import traceback

TEST_PROCESS_ENV = "SNN2HW_LAVA_TEST_PROCESS"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    name = type(exc).__name__
    if name == "BackendError":
        return message or name
    return f"{name}: {message}" if message else name


def _write_atomic(path: str, write) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _test_process_hook(spec: str | None):
    """The test-only extra process (see module docstring), as a graph callback."""
    if not spec:
        return None
    import importlib.util

    path, _, cls_name = spec.rpartition(":")
    mod_name = "snn2hw_lava_test_" + os.path.splitext(os.path.basename(path))[0]
    mod_spec = importlib.util.spec_from_file_location(mod_name, path)
    if mod_spec is None or mod_spec.loader is None:
        raise ImportError(f"cannot load test process module {path}")
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules[mod_name] = module  # Lava's compiler looks the module up by name
    mod_spec.loader.exec_module(module)
    cls = getattr(module, cls_name)

    def add(graph) -> None:
        lif = next(iter(graph.neurons.values()))  # built in depth order: the shallowest
        extra = cls(shape=(lif.s_out.shape[0],))
        lif.s_out.connect(extra.s_in)

    return add


def run_job(job_dir: str) -> None:
    import numpy as np

    import snn2hw.exporters.lava  # noqa: F401  - installs the Python 3.11 fix before Lava
    # Sets the 'fork' start method; must come before torch (via the pickle) is imported.
    import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401

    from snn2hw.exporters.lava import backend as lava_backend

    with open(os.path.join(job_dir, "job.pkl"), "rb") as fh:
        job = pickle.load(fh)
    spikes = np.load(os.path.join(job_dir, "spikes.npy"), allow_pickle=False)
    kwargs = {}
    if "hidden_message_bits" in job:
        kwargs["hidden_message_bits"] = int(job["hidden_message_bits"])
    for key in ("reader", "delay"):
        if key in job:
            kwargs[key] = job[key]
    run = lava_backend.run_network(job["qnet"], spikes, int(job["timesteps"]),
                                   record=job.get("record"), profile=job["profile"],
                                   extra=_test_process_hook(os.environ.get(TEST_PROCESS_ENV)),
                                   **kwargs)
    names = list(run.spikes)
    arrays = {f"layer_{i}": run.spikes[name] for i, name in enumerate(names)}
    for i, v in enumerate(run.potentials.values()):  # membrane read-out: the output's v
        arrays[f"potential_{i}"] = v
    arrays["potential_names"] = np.array(json.dumps(list(run.potentials)))
    arrays["names"] = np.array(json.dumps(names))
    arrays["timing"] = np.array(json.dumps(run.timing))
    _write_atomic(os.path.join(job_dir, "result.npz"), lambda fh: np.savez(fh, **arrays))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        print("usage: python -m snn2hw.exporters.lava.worker JOB_DIR", file=sys.stderr)
        return 2
    job_dir = argv[0]
    try:
        run_job(job_dir)
        return 0
    except BaseException as exc:  # noqa: BLE001 - everything is reported to the parent
        traceback.print_exc()
        try:
            line = _one_line(exc).replace("\n", " ")
            _write_atomic(os.path.join(job_dir, "error.txt"),
                          lambda fh: fh.write((line + "\n").encode("utf-8", "replace")))
        except OSError:
            pass
        return 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter shutdown: after a Lava failure, blocked runtime threads could keep
    # it from finishing. Everything worth keeping is already on disk.
    os._exit(code)
