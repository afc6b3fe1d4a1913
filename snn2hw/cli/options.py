"""The parsed flags as the steps' option dataclasses (:mod:`snn2hw.steps.options`)."""
from __future__ import annotations

import argparse

from ..steps.options import (CalibrationOptions, DataOptions, EvaluationOptions, ReportOptions,
                             RunOptions)


def _tuple(values) -> tuple | None:
    return tuple(values) if values else None


def data_options(args: argparse.Namespace) -> DataOptions:
    return DataOptions(args.data, _tuple(args.mean), _tuple(args.std), args.device,
                       args.maxpool)


def calibration_options(args: argparse.Namespace) -> CalibrationOptions:
    return CalibrationOptions(args.method, args.timesteps, args.samples, args.seed,
                              args.reset, args.percentile, args.junction,
                              getattr(args, "rate_match", True))


def evaluation_options(args: argparse.Namespace) -> EvaluationOptions:
    return EvaluationOptions(args.eval_samples,
                             _tuple(getattr(args, "eval_timesteps", None)))


def run_options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(args.data, args.samples, args.timesteps, args.seed, args.timeout,
                      args.device)


def report_options(args: argparse.Namespace) -> ReportOptions:
    return ReportOptions(args.samples, args.timesteps, args.seed)
