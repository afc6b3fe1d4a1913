"""The subcommands that run a step: ``calibrate``, ``export``, ``run``, ``report``,
``sweep``. Each checks its output paths, calls the step with the options of its flags,
prints, writes."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..fileio import check_output_path, write_text
from . import options
from .printing import (calibration_tables, export_tables, json_dump, print_maxpool,
                       run_table, sparsity_tables, sweep_tables)
from .progress import Progress


def calibrate_command(args: argparse.Namespace) -> int:
    from ..artifacts.calibration import save_calibration
    from ..steps.pipeline import calibrate_model
    from ..steps.settings import percentile_of, reset_of

    check_output_path(args.output, (args.model, args.data))
    if args.report:
        check_output_path(args.report, (args.model, args.data, args.output))
    cal = options.calibration_options(args)
    art, _ = calibrate_model(args.model, data_options=options.data_options(args),
                             calibration=cal, evaluation=options.evaluation_options(args),
                             progress=Progress)
    rep = art.report
    percentile = percentile_of(cal)
    robust = f", {percentile:g}th percentile" if percentile < 100 else ""
    shared = ", shared junction thresholds" if args.junction == "shared" else ""
    calibration_tables(rep, f"{rep['method']}{robust}{shared}, reset {reset_of(cal)}: "
                       f"T = {args.timesteps}, {args.samples} calibration samples, seed "
                       f"{args.seed}, input scale {rep['input_scale']:.4g}")
    from .. import distributed

    if distributed.is_main():  # under torchrun, rank 0 alone writes
        save_calibration(args.output, art)
        if args.report:
            write_text(args.report, json_dump(rep) + "\n")
    print(f"wrote {args.output}")
    return 0


def _lava_warning(art) -> None:
    """Say at export time when the profile names a backend that cannot run it exactly (the
    export is valid for the target; only `snn2hw run` will refuse it)."""
    from .. import backends
    from ..errors import HardwareLimitError
    from ..hardware import profiles

    profile = profiles.load_stored(art.profile_toml, art.qnet.profile)
    if profile.backend == backends.NONE:
        return
    try:
        backends.get(profile.backend).check_profile(profile)
    except HardwareLimitError as exc:
        print(f"warning: `snn2hw run` will refuse this export: {exc.message}")


def export_command(args: argparse.Namespace) -> int:
    from ..quantize.verify import require, verify_artifact
    from ..steps.deploy import export_model
    from ..steps.exchange import default_output
    from ..steps.write import write_network

    if args.format != "h5":
        return _export_format(args)
    output = args.output or default_output(args.model, args.format, args.profile)
    inputs = (args.model, args.data, args.calibration)
    check_output_path(output, inputs)
    if args.report:
        check_output_path(args.report, (args.model, args.data, output))
    art = export_model(args.model, args.profile, calibration_file=args.calibration,
                       data_options=options.data_options(args),
                       calibration=options.calibration_options(args),
                       evaluation=options.evaluation_options(args), progress=Progress)
    print(f"profile {art.qnet.profile}, thresholds from {art.method}")
    export_tables(art)
    print_maxpool(art.report)
    require(verify_artifact(art), "export")  # no file is written when a guarantee fails
    _lava_warning(art)
    write_network(args.format, art, output, inputs=inputs)
    if args.report:
        write_text(args.report, json_dump(art.report) + "\n")
    print(f"wrote {output}")
    return 0


def _export_format(args: argparse.Namespace) -> int:
    """``export --format nir|netx``: the foreign file, with the writer's notes."""
    from ..errors import InputError
    from ..steps.exchange import default_output, export_to_format

    if args.report:
        raise InputError(f"--report is written by --format h5 only, not {args.format}")
    output = args.output or default_output(args.model, args.format, args.profile)
    inputs = (args.model, args.data, args.calibration)
    check_output_path(output, inputs)
    network, notes = export_to_format(
        args.model, args.profile, output, fmt=options.format_options(args),
        calibration_file=args.calibration, data_options=options.data_options(args),
        calibration=options.calibration_options(args),
        evaluation=options.evaluation_options(args), progress=Progress, inputs=inputs)
    if hasattr(network, "qnet"):
        print(f"{args.format}: profile {network.qnet.profile} (weights within the format's "
              f"range), thresholds from {network.method}")
    else:
        print(f"{args.format}: thresholds from {network.calibration.method}")
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {output}")
    return 0


def run_command(args: argparse.Namespace) -> int:
    from ..errors import BackendError
    from ..steps.run import run_export

    if args.report:
        check_output_path(args.report, (args.export, args.data))
    rep = run_export(args.export, options.run_options(args))
    run_table(rep)
    if args.report:
        write_text(args.report, json_dump(rep.as_dict()) + "\n")
    if rep.first_mismatch:
        m = rep.first_mismatch
        msg = (f"first mismatch: layer {m['layer']}, sample {m['sample']}, step {m['step']}, "
               f"neuron {m['neuron']} (Lava {m['lava']}, reference {m['reference']})")
        if rep.profile == "loihi_float":
            print(f"note: {msg}; floating-point backends agree only up to rounding")
            return 0
        raise BackendError(f"Lava and the reference fixed-point simulator differ: {msg}")
    print("Lava and the reference simulator agree spike for spike")
    return 0


def report_command(args: argparse.Namespace) -> int:
    from ..steps.report import plot_report, sparsity_report

    check_output_path(args.output, (args.model, args.data, args.calibration))
    if args.plot:
        check_output_path(args.plot, (args.model, args.data, args.calibration, args.output))
    rep = sparsity_report(args.model, args.calibration,
                          data_options=options.data_options(args),
                          options=options.report_options(args), progress=Progress)
    sparsity_tables(rep)
    return _write_json_and_plot(rep, args.output, args.plot, plot_report)


def sweep_command(args: argparse.Namespace) -> int:
    from ..steps.sweep import plot_sweep, sweep

    check_output_path(args.output, (args.model, args.data))
    if args.plot:
        check_output_path(args.plot, (args.model, args.data, args.output))
    rep = sweep(args.model, data_options=options.data_options(args),
                calibration=options.sweep_calibration(args),
                options=options.sweep_options(args), progress=Progress)
    sweep_tables(rep)
    return _write_json_and_plot(rep, args.output, args.plot, plot_sweep)


def _write_json_and_plot(rep: dict, output: str, plot: str | None, draw) -> int:
    """The report as JSON at ``output``, and drawn by ``draw`` at ``plot`` if given (under
    torchrun by rank 0 alone)."""
    from .. import distributed

    main = distributed.is_main()
    if main:
        write_text(output, json_dump(rep) + "\n")
    print(f"wrote {output}")
    if plot:
        if main:
            draw(rep, plot)
        print(f"wrote {plot}")
    return 0
