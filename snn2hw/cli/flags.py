"""How the CLI names the steps' options. Errors of the library speak of options as
``name=value`` (``reset='subtract'``) and list those names in their ``options`` fact
(:mod:`snn2hw.steps.settings`); the CLI says them as its flags (``--reset subtract``)."""
from __future__ import annotations

import re

from ..errors import Snn2hwError

# Option name (a field of snn2hw.steps.options) -> the flag that sets it.
FLAGS = {"reset": "--reset", "junction": "--junction", "percentile": "--percentile",
         "calibration": "--calibration", "data": "--data", "profile": "--profile",
         "method": "--method", "timesteps": "--timesteps", "samples": "--samples",
         "seed": "--seed", "mean": "--mean", "std": "--std", "maxpool": "--maxpool",
         "rate_match": "--no-rate-match"}


def _flag(flag: str, value: str) -> str:
    """``--flag value``; a boolean option is ``--flag`` or ``--no-flag``."""
    if value == "True":
        return flag
    if value == "False":
        return "--no-" + flag[2:]
    return f"{flag} {value}"


def as_flags(exc: Snn2hwError) -> str:
    """The error's message with each ``name=value`` of its options written as a flag."""
    message = exc.message
    for name in exc.facts.get("options", ()):
        flag = FLAGS.get(name, "--" + name.replace("_", "-"))
        message = re.sub(rf"\b{re.escape(name)}=(?:'([^']*)'|([^\s,;]+))",
                         lambda m, f=flag: _flag(f, m.group(1) or m.group(2)), message)
    return message
