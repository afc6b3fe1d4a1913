"""The Lava backend (lava-nc 0.10.0, CPU): checks, graph building, the worker and its
watchdog, the Python 3.11 compatibility hook and our own processes (``procs/``).

Importing this package installs the compatibility hook (:mod:`.compat`), which must be in
place before the first ``import lava...``, and imports no Lava itself: Lava's runtime sets
the multiprocessing start method on import, so Lava is imported only inside the functions
that run it, normally in the child process :mod:`.worker`.
"""
from . import compat

compat.install()

from .target import BACKEND  # noqa: E402  (registered in snn2hw.backends)

__all__ = ["BACKEND"]
