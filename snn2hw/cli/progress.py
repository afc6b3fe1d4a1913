"""A minimal progress bar on stderr: drawn only on a terminal, and only for work that has
already taken a couple of seconds, so short runs and logs stay clean. Under torchrun only
rank 0 draws, and its share of the work (1 / world size) counts as the whole."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: float, label: str, delay: float = 2.0, stream=None) -> None:
        from .. import distributed  # torch, loaded by the step that reports progress

        self.total, self.label, self.delay = max(total / distributed.world(), 1), label, delay
        self.stream = stream or sys.stderr
        self.done = 0.0
        self.start = time.monotonic()
        self.last_draw = 0.0
        self.enabled = (getattr(self.stream, "isatty", lambda: False)()
                        and distributed.is_main())
        self.drawn = False

    def __call__(self, amount: float) -> None:
        self.done += amount
        now = time.monotonic()
        if not self.enabled or now - self.start < self.delay or now - self.last_draw < 0.2:
            return
        self.last_draw = now
        frac = min(1.0, self.done / self.total)
        bar = "#" * int(30 * frac)
        eta = (now - self.start) * (1 - frac) / frac if frac > 0 else 0
        self.stream.write(f"\r{self.label} [{bar:<30}] {100 * frac:5.1f}% eta {eta:5.0f}s")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r" + " " * (len(self.label) + 50) + "\r")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
