"""Make lava-nc 0.10.0 importable on Python 3.11 without touching installed files.

lava-nc declares ``x: ByteEncoder = ByteEncoder()`` dataclass fields in
``lava.magma.compiler.var_model``. Python 3.11 rejects such unhashable defaults, so the
module fails to import and with it every Lava process model. We install a
``sys.meta_path`` finder for that one module whose loader compiles the source with those
defaults rewritten to ``dataclasses.field(default_factory=ByteEncoder)``. The rewritten
code is never cached as ``.pyc``. On Python < 3.11 nothing is done.

:func:`install` must run before the first ``import lava...``. The Lava backend package
(:mod:`snn2hw.exporters.lava`) calls it when it is imported, so whatever reaches Lava
through the backend (our worker processes, which run ``python -m
snn2hw.exporters.lava.worker`` and so import the package first) has it; code that imports
Lava directly imports :mod:`snn2hw.exporters.lava` first.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys

TARGET_MODULE = "lava.magma.compiler.var_model"
_DEFAULT = re.compile(r"^([ \t]+\w+:[ \t]*ByteEncoder)[ \t]*=[ \t]*ByteEncoder\(\)[ \t]*$",
                      re.MULTILINE)
# Inline import keeps line numbers and the module's `from __future__` line first.
_REPLACEMENT = r"\1 = __import__('dataclasses').field(default_factory=ByteEncoder)"


def patch_source(source: str) -> str:
    """Return ``source`` with unhashable ByteEncoder defaults turned into factories."""
    return _DEFAULT.sub(_REPLACEMENT, source)


class _PatchedLoader(importlib.machinery.SourceFileLoader):
    def source_to_code(self, data, path, *, _optimize=-1):  # type: ignore[override]
        text = importlib.util.decode_source(data)
        return compile(patch_source(text), path, "exec", dont_inherit=True, optimize=_optimize)

    def get_code(self, fullname):  # never read or write a cached .pyc
        path = self.get_filename(fullname)
        return self.source_to_code(self.get_data(path), path)


class _VarModelFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            return spec
        spec.loader = _PatchedLoader(fullname, spec.origin)
        return spec


def needed() -> bool:
    return sys.version_info >= (3, 11)


def install() -> bool:
    """Install the finder once. Returns True if it is active."""
    if not needed():
        return False
    if not any(isinstance(f, _VarModelFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _VarModelFinder())
    return True
