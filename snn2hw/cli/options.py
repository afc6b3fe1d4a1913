"""The parsed flags as the steps' option dataclasses (:mod:`snn2hw.steps.options`)."""
from __future__ import annotations

import argparse

from ..steps.presets import CONVERSION_KEYS
from ..steps.options import (CalibrationOptions, DataOptions, EvaluationOptions,
                             FormatOptions, ReportOptions, RunOptions, SweepOptions)


def _tuple(values) -> tuple | None:
    return tuple(values) if values else None


def data_options(args: argparse.Namespace) -> DataOptions:
    return DataOptions(args.data, _tuple(args.mean), _tuple(args.std), args.device,
                       args.maxpool)


def conversion_given(args: argparse.Namespace) -> dict[str, object]:
    """The conversion options given as flags (those not given are left to the preset)."""
    return {name: getattr(args, name) for name in CONVERSION_KEYS
            if getattr(args, name, None) is not None}


def calibration_options(args: argparse.Namespace, method: str | None = None,
                        preset: str | None = None) -> CalibrationOptions:
    return CalibrationOptions(method or args.method, args.timesteps, args.samples, args.seed,
                              args.reset, args.percentile, getattr(args, "junction", None),
                              getattr(args, "rate_match", True), preset or args.preset,
                              conversion_given(args))


def evaluation_options(args: argparse.Namespace) -> EvaluationOptions:
    return EvaluationOptions(args.eval_samples,
                             _tuple(getattr(args, "eval_timesteps", None)))


def sweep_options(args: argparse.Namespace) -> SweepOptions:
    return SweepOptions(tuple(args.presets), tuple(args.methods), tuple(args.timesteps),
                        args.eval_samples, args.calib_timesteps, args.profile)


def sweep_calibration(args: argparse.Namespace) -> CalibrationOptions:
    """The settings of ``sweep`` that override every preset (method and preset are set per
    run)."""
    return CalibrationOptions("spike-norm", args.calib_timesteps or max(args.timesteps),
                              args.samples, args.seed, args.reset, args.percentile,
                              args.junction, True, None, conversion_given(args))


def run_options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(args.data, args.samples, args.timesteps, args.seed, args.timeout,
                      args.device, args.profile)


def format_options(args: argparse.Namespace) -> FormatOptions:
    return FormatOptions(args.format, args.nir_time, args.force)


def report_options(args: argparse.Namespace) -> ReportOptions:
    return ReportOptions(args.samples, args.timesteps, args.seed)
