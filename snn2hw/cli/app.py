"""The ``snn2hw`` command. Subcommands are thin wrappers over library functions.

User errors print one line (``error: ...``) and exit with their documented code; a
traceback is shown only with ``--debug`` or for internal bugs.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import Interrupted, Snn2hwError
from . import show, steps
from .flags import as_flags
from .parser import build_parser, float_list, int_list, percentile_value, positive_int
from .printing import json_dump

# Subcommand -> function of the parsed arguments (looked up when called, so tests can
# replace one).
COMMANDS = {
    "inspect": lambda args: show.inspect_model(args.model, args.maxpool),
    "ops": lambda args: show.print_ops(),
    "profiles": lambda args: show.print_profiles(),
    "verify": lambda args: show.verify_command(args),
    "calibrate": lambda args: steps.calibrate_command(args),
    "export": lambda args: steps.export_command(args),
    "run": lambda args: steps.run_command(args),
    "report": lambda args: steps.report_command(args),
}


def run(args: argparse.Namespace) -> int:
    """The subcommand's exit code; user errors as one line on stderr."""
    try:
        return COMMANDS[args.command](args) or 0
    except Snn2hwError as exc:
        if args.debug:
            raise
        print(f"error: {as_flags(exc)}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("error: interrupted", file=sys.stderr)
        return Interrupted.exit_code


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


__all__ = ["main", "build_parser", "COMMANDS", "json_dump", "positive_int", "int_list",
           "float_list", "percentile_value"]
