"""cli package: the public names of :mod:`.app`."""
from .app import (positive_int, int_list, float_list, percentile_value, build_parser, cmd_inspect,
                  cmd_ops, cmd_calibrate, cmd_profiles, cmd_export, cmd_verify, cmd_run, cmd_report,
                  COMMANDS, main, json_dump)  # noqa: F401
