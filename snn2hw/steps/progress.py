"""How a step reports progress: a factory ``(total, label) -> context manager`` whose value is
called with each amount of work done. Steps are silent by default; the CLI passes its
progress bar (:class:`snn2hw.cli.progress.Progress` has this signature)."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

Tick = Callable[[float], None]
ProgressFactory = Callable[[float, str], AbstractContextManager[Tick]]


@contextlib.contextmanager
def silent(total: float, label: str) -> Iterator[Tick]:
    """No progress shown."""
    yield lambda amount: None
