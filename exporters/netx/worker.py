"""Child process that loads a netx file with lava-dl's own loader and runs it on Lava's CPU
backend: ``python -m snn2hw.exporters.netx.worker JOB_DIR`` (started by
:func:`snn2hw.exporters.netx.runner.run_netx`, which kills it on a timeout).

``JOB_DIR`` holds ``job.json`` (``path``, ``shape`` (C, H, W) or (F,), ``timesteps``,
``input_message_bits``) and ``spikes.npy`` (N, T, *shape) int8. The network is built by
``lava.lib.dl.netx.hdf5.Network(path, input_message_bits, reset_interval=T,
reset_offset=1)``, fed by a source ``RingBuffer`` (all samples back to back) and read by
one sink ``RingBuffer`` per block; ``result.npz`` holds ``block_<i>`` as (size, N*T) in
(C, H, W) order. Import order as in :mod:`snn2hw.exporters.lava.worker`; lava-dl's slayer
package imports its ``object_detection`` subpackage (torchvision, OpenCV), which is
replaced by an empty module: netx does not use it.
"""
from __future__ import annotations

import json
import os
import sys
import traceback
import types


def run_job(job_dir: str) -> None:
    import numpy as np

    import snn2hw.exporters.lava  # noqa: F401  - the Python 3.11 fix, before any Lava
    import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401

    sys.modules.setdefault("lava.lib.dl.slayer.object_detection",
                           types.ModuleType("lava.lib.dl.slayer.object_detection"))
    from lava.lib.dl.netx import hdf5
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    with open(os.path.join(job_dir, "job.json"), encoding="utf-8") as fh:
        job = json.load(fh)
    spikes = np.load(os.path.join(job_dir, "spikes.npy"), allow_pickle=False)
    n, t = spikes.shape[:2]
    frames = spikes.reshape(n * t, *job["shape"]).astype(np.int32)
    data = np.moveaxis(frames.transpose(0, *range(frames.ndim - 1, 0, -1)), 0, -1)
    net = hdf5.Network(net_config=job["path"], input_message_bits=job["input_message_bits"],
                       reset_interval=int(job["timesteps"]), reset_offset=1)
    source = Source(data=np.ascontiguousarray(data))
    source.s_out.connect(net.inp)
    sinks = []
    for block in net.layers:
        sink = Sink(shape=block.out.shape, buffer=n * t)
        block.out.connect(sink.a_in)
        sinks.append(sink)
    try:
        net.run(condition=RunSteps(num_steps=n * t), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        arrays = {}
        for i, sink in enumerate(sinks):
            got = np.asarray(sink.data.get())            # (*reversed shape, N*T)
            chw = got.transpose(*range(got.ndim - 2, -1, -1), got.ndim - 1)
            arrays[f"block_{i}"] = chw.reshape(-1, n * t).astype(np.int8)
    finally:
        net.stop()
    tmp = os.path.join(job_dir, "result.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, os.path.join(job_dir, "result.npz"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not os.path.isdir(argv[0]):
        print("usage: python -m snn2hw.exporters.netx.worker JOB_DIR", file=sys.stderr)
        return 2
    try:
        run_job(argv[0])
        return 0
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        traceback.print_exc()
        with open(os.path.join(argv[0], "error.txt"), "w", encoding="utf-8") as fh:
            fh.write(f"{type(exc).__name__}: {str(exc).strip().splitlines()[:1]}\n")
        return 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)   # as the Lava worker: no shutdown that blocked runtime threads could hang
