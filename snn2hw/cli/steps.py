"""The subcommands that run a step: ``calibrate``, ``export``, ``run``, ``report``. Each
checks its output paths, calls the step with the options of its flags, prints, writes."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..fileio import check_output_path, write_text
from . import options
from .printing import (calibration_tables, export_tables, json_dump, print_maxpool,
                       run_table, sparsity_tables)
from .progress import Progress


def calibrate_command(args: argparse.Namespace) -> int:
    from ..artifacts.calibration import save_calibration
    from ..steps.pipeline import calibrate_model
    from ..steps.settings import reset_of

    check_output_path(args.output, (args.model, args.data))
    if args.report:
        check_output_path(args.report, (args.model, args.data, args.output))
    cal = options.calibration_options(args)
    art, _ = calibrate_model(args.model, data_options=options.data_options(args),
                             calibration=cal, evaluation=options.evaluation_options(args),
                             progress=Progress)
    rep = art.report
    robust = f", {args.percentile:g}th percentile" if args.percentile < 100 else ""
    shared = ", shared junction thresholds" if args.junction == "shared" else ""
    calibration_tables(rep, f"{rep['method']}{robust}{shared}, reset {reset_of(cal)}: "
                       f"T = {args.timesteps}, {args.samples} calibration samples, seed "
                       f"{args.seed}, input scale {rep['input_scale']:.4g}")
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
    from ..artifacts.export import save_export
    from ..quantize.verify import require, verify_artifact
    from ..steps.deploy import export_model

    output = args.output or str(Path(args.model).with_suffix("")) + f".{Path(args.profile).stem}.h5"
    check_output_path(output, (args.model, args.data, args.calibration))
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
    save_export(output, art)
    if args.report:
        write_text(args.report, json_dump(art.report) + "\n")
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
    write_text(args.output, json_dump(rep) + "\n")
    print(f"wrote {args.output}")
    if args.plot:
        plot_report(rep, args.plot)
        print(f"wrote {args.plot}")
    return 0
