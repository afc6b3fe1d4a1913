"""The ONNX op converters: the registry (:mod:`.registry`) and one module per op family,
which registers its converters with :func:`register` when imported.

Adding an op family is one module here and its name in the import line below (explicit, so
a broken module fails at import time instead of being skipped).
"""
from __future__ import annotations

from .registry import ACTIONS, HINTS, Converter, hint_for, lookup, register, registered

from . import concat, conv, dense, elementwise, pad, pool, shape  # noqa: E402,F401,I001

__all__ = ["ACTIONS", "HINTS", "Converter", "hint_for", "lookup", "register", "registered"]
