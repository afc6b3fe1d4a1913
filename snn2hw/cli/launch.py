"""How a command runs: one process, or one rank of several under ``torchrun``.

``torchrun --nproc-per-node N -m snn2hw calibrate ...`` (or ``sweep``) starts N processes;
each joins the process group (:mod:`snn2hw.distributed`: gloo on CPU, nccl on CUDA),
computes its share of the calibration and evaluation samples, and the ranks combine their
statistics. Rank 0 prints and writes the files; the other ranks print nothing (user errors
included, which every rank meets alike; crashes still show their traceback). Commands
other than ``calibrate`` and ``sweep`` run in one process and are refused under torchrun.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from .. import distributed
from ..errors import BackendError, InputError

DISTRIBUTED_COMMANDS = ("calibrate", "sweep")


def check_device(device: str) -> None:
    """A device torch knows and this machine has; else one clear error (exit 2)."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise InputError(f"--device {device}: not a torch device (cpu, cuda, cuda:1, ...)"
                         ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {device}: no CUDA device is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"--device {device}: this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    elif dev.type not in ("cpu", "cuda"):
        raise InputError(f"--device {device}: only cpu and cuda devices are supported")


@contextlib.contextmanager
def session(args) -> Iterator[None]:
    """Run one command: check ``args.device``; under torchrun join the process group
    (``args.device`` becomes this rank's device), keep ranks other than 0 quiet, and
    leave the group at the end."""
    device = getattr(args, "device", None)
    if device is not None:
        check_device(device)
    if not distributed.launched():
        yield
        return
    if args.command not in DISTRIBUTED_COMMANDS:
        raise InputError(f"`snn2hw {args.command}` runs in one process; under torchrun only "
                         f"`snn2hw {' / '.join(DISTRIBUTED_COMMANDS)}` splits its work "
                         "across processes")
    _check_one_gpu_per_rank(device)
    try:
        args.device = distributed.init(device or "cpu")
    except (RuntimeError, ValueError) as exc:
        backend = distributed.backend_for(device or "cpu")
        raise BackendError(f"cannot join the torchrun process group ({backend}): "
                           f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                           ) from None
    try:
        with _quiet_unless_main():
            yield
    finally:
        distributed.shutdown()


def _check_one_gpu_per_rank(device: str | None) -> None:
    """nccl needs one GPU per process: several local ranks may not share ``cuda:K``."""
    if device is None or not device.startswith("cuda") or ":" not in device:
        return
    if int(os.environ.get(distributed.ENV_LOCAL_WORLD, "1")) > 1:
        raise InputError(f"--device {device} names one GPU, but torchrun starts several "
                         "processes on this machine; give --device cuda and each process "
                         "takes the GPU of its local rank")


@contextlib.contextmanager
def _quiet_unless_main() -> Iterator[None]:
    if distributed.is_main():
        yield
        return
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield

