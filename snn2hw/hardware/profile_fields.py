"""Reading typed fields of a hardware profile (a parsed TOML document) with errors that name
the field: shared by :mod:`snn2hw.hardware.profiles` and by each backend, which parses its own
section of the profile (:meth:`snn2hw.backends.Backend.parse_profile`)."""
from __future__ import annotations

from typing import Any

from ..errors import ProfileError


def get(doc: dict, dotted: str, where: str) -> Any:
    """The value at ``dotted`` (``"messages.input_bits"``), or a ProfileError naming it."""
    node = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ProfileError(f"profile {where}: missing field '{dotted}'", field=dotted)
        node = node[part]
    return node


def int_field(doc: dict, dotted: str, where: str, lo: int, hi: int) -> int:
    """An integer field in ``[lo, hi]``."""
    value = get(doc, dotted, where)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(f"profile {where}: field '{dotted}' must be an integer, got "
                           f"{value!r}", field=dotted)
    if not lo <= value <= hi:
        raise ProfileError(f"profile {where}: field '{dotted}' = {value} is out of range "
                           f"[{lo}, {hi}]", field=dotted, value=value)
    return value


def str_field(doc: dict, dotted: str, where: str, choices: tuple[str, ...] | None = None
              ) -> str:
    """A string field, one of ``choices`` if given."""
    value = get(doc, dotted, where)
    if not isinstance(value, str):
        raise ProfileError(f"profile {where}: field '{dotted}' must be a string", field=dotted)
    if choices and value not in choices:
        raise ProfileError(f"profile {where}: field '{dotted}' = {value!r}; expected one of "
                           f"{', '.join(choices)}", field=dotted)
    return value
