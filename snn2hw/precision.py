"""The float types of the reference computations, and one switch to change them.

By default the ANN runs in float64 on a CPU and in float32 on a GPU (activation statistics,
predictions), and the float SNN in float32 (Spike-Norm's currents, evaluation). Inside
``with use(torch.float64):`` both run in float64 on every device: spike-driven currents are
then sums of float32 weights that float64 holds exactly in most networks, which is how
``benchmarks/gpu_check.py`` compares a GPU with the CPU scale for scale.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

_override: list[torch.dtype] = []


def ann_dtype(device: str | torch.device) -> torch.dtype:
    """The ANN's float type on ``device``."""
    if _override:
        return _override[-1]
    return torch.float64 if torch.device(device).type == "cpu" else torch.float32


def snn_dtype() -> torch.dtype:
    """The float SNN's type (currents, membrane potentials)."""
    return _override[-1] if _override else torch.float32


@contextlib.contextmanager
def use(dtype: torch.dtype) -> Iterator[None]:
    """Run the ANN and the float SNN in ``dtype`` inside the block."""
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"precision must be float32 or float64, got {dtype}")
    _override.append(dtype)
    try:
        yield
    finally:
        _override.pop()
