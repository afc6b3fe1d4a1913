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
    "sweep": lambda args: steps.sweep_command(args),
}


def _interrupted(debug: bool) -> int:
    if debug:
        raise KeyboardInterrupt
    print("error: interrupted", file=sys.stderr)
    return Interrupted.exit_code


def run(args: argparse.Namespace) -> int:
    """The subcommand's exit code; user errors as one line on stderr."""
    from .. import distributed  # torch: loaded once a command runs, not by the parser
    from . import launch

    try:
        with launch.session(args):  # one process, or one rank under torchrun
            return COMMANDS[args.command](args) or 0
    except Snn2hwError as exc:
        if args.debug:
            raise
        if not distributed.is_main():  # every rank meets a user error; rank 0 says it
            return exc.exit_code
        print(f"error: {as_flags(exc)}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return _interrupted(args.debug)


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()   # imports the modules that define the choices
    except KeyboardInterrupt:
        return _interrupted("--debug" in (sys.argv[1:] if argv is None else argv))
    return run(parser.parse_args(argv))


__all__ = ["main", "build_parser", "COMMANDS", "json_dump", "positive_int", "int_list",
           "float_list", "percentile_value"]
