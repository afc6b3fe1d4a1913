"""The ``snn2hw`` command line: argument types and the parser. A flag's default of ``None``
means "not given": the steps resolve it (:mod:`snn2hw.steps.settings`). Choices that come
from heavy modules are imported while the parser is built, inside the command's Ctrl-C
handling (:func:`snn2hw.cli.app.main`)."""
from __future__ import annotations

import argparse

from .. import __version__
from ..snn.options import CODINGS, READOUTS, V_INITS, WINDOWS
from ..steps.presets import PRESETS

PRESET_NAMES = tuple(PRESETS)

DESCRIPTION = "The ``snn2hw`` command. Subcommands are thin wrappers over library functions."


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def int_list(text: str) -> list[int]:
    return [positive_int(t) for t in text.split(",") if t.strip()]


def float_list(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers"
                                         ) from None


def percentile_value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 50.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"must be between 50 and 100, got {value:g}")
    return value


def _add_neuron_options(p: argparse.ArgumentParser, export: bool = False,
                        preset: bool = True) -> None:
    from ..calibrate.junction import JUNCTIONS
    from ..hardware.profiles import RESETS   # the neuron registry's (imports torch)

    p.add_argument("--reset", default=None, choices=RESETS,
                   help="neuron reset after a spike: to zero (default"
                   + (": the calibration's, else zero" if export else "")
                   + "; as the paper and Loihi's stock LIF) or by subtracting the threshold")
    p.add_argument("--percentile", type=percentile_value, default=None,
                   help="threshold = this percentile of the positive currents (spike-norm) "
                   "or activations (max-act) instead of the maximum (default 100, or the "
                   "preset's)")
    p.add_argument("--junction", default=None, choices=JUNCTIONS,
                   help="residual junctions: each term scaled by its own source's threshold "
                   "(per-source, the default" + (": the calibration's" if export else "")
                   + ") or one threshold shared by the layers that meet there (shared, the "
                   "paper's; README, 'Residual junctions')")
    if preset:
        p.add_argument("--preset", choices=PRESET_NAMES, default=None,
                       help="paper (default: Sengupta et al.'s configuration) or fast (the "
                       "low-latency options); the options given explicitly override it")
    _add_conversion_options(p)


def _add_conversion_options(p: argparse.ArgumentParser) -> None:
    """One flag per field of snn2hw.snn.options.Conversion; a flag not given is None (the
    preset's value; README, 'Low latency')."""
    p.add_argument("--coding", choices=CODINGS, default=None,
                   help="input coding: poisson (signed Poisson spikes, the paper's) or direct "
                   "(the quantised pixel value as current every step)")
    p.add_argument("--v-init", dest="v_init", type=float, choices=V_INITS, default=None,
                   help="initial membrane potential as a fraction of the threshold: 0 or 0.5")
    p.add_argument("--per-channel", action=argparse.BooleanOptionalAction, default=None,
                   help="one scale per output channel, folded into the weights")
    p.add_argument("--bias-calibration", action=argparse.BooleanOptionalAction,
                   default=None, help="correct each channel's bias layer by layer (SNN "
                   "Calibration light, Li et al. 2021)")
    p.add_argument("--rounding-bias", dest="rounding_bias",
                   action=argparse.BooleanOptionalAction, default=None,
                   help="fixed-point export: move each neuron's mean weight-rounding error "
                   "(at the calibration images' rates) into its bias current")
    p.add_argument("--readout", choices=READOUTS, default=None,
                   help="class = argmax of output spike counts (spikes) or of the output "
                   "layer's potential (membrane)")
    p.add_argument("--window", choices=WINDOWS, default=None,
                   help="meaning of T: fill (counts the pipeline fill, the paper's) or "
                   "pipelined (every layer integrates T steps; the result is there after "
                   "T + depth steps, at step index T + depth - 1)")


def _add_maxpool_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--maxpool", choices=("refuse", "avg"), default="refuse",
                   help="MaxPool has no exact spiking form: refuse it (default), or convert "
                   "it as average pooling of the same window and report the accuracy cost")


def _add_data_options(p: argparse.ArgumentParser) -> None:
    _add_maxpool_option(p)
    p.add_argument("--data", default="digits",
                   help="'digits' (built in), 'mnist' or 'fashion-mnist' (after 'make data'), "
                   "an .npz file with x (N,C,H,W) and y (N,), or a folder of images with one "
                   "sub-folder per class")
    p.add_argument("--mean", type=float_list, help="per-channel mean to subtract "
                   "(default: from the model's snn2hw.preprocess metadata and its own input "
                   "normalisation, else 0; refused when the model normalises itself)")
    p.add_argument("--std", type=float_list, help="per-channel std to divide by (default: "
                   "from the model, else 1)")
    p.add_argument("--device", default="cpu", help="torch device for the simulator "
                   "(cpu, cuda, cuda:1, ...)")


def _add_format_options(p: argparse.ArgumentParser) -> None:
    from ..backends import output_formats

    p.add_argument("--format", default="h5", choices=output_formats(),
                   help="h5: snn2hw's export (default); nir: the float SNN as a NIR graph; "
                   "netx: the integer network as a lava-dl netx file (README, "
                   "'Interoperability')")
    p.add_argument("--nir-time", choices=("same-step", "hop"), default="same-step",
                   help="nir: spikes cross the whole network within one step, as NIR readers "
                   "compute (default), or one step per synapse hop (Delay nodes), as Lava")
    p.add_argument("--force", action="store_true",
                   help="nir: write even what a NIR reader would compute differently (the "
                   "difference goes into the file's metadata)")


def _inspect_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="show how an ONNX (or NIR) model will be converted")
    p.add_argument("model")
    _add_maxpool_option(p)


def _ops_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("ops", help="list the supported ONNX ops")


def _calibrate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="threshold balancing (Spike-Norm or max-act)")
    p.add_argument("model")
    _add_data_options(p)
    p.add_argument("--method", default="spike-norm", choices=["spike-norm", "max-act"])
    _add_neuron_options(p)
    p.add_argument("--no-rate-match", dest="rate_match", action="store_false",
                   help="spike-norm: use the thresholds as the spike trains' scales instead "
                   "of measuring them (see README, 'Rate matching')")
    p.add_argument("--timesteps", type=positive_int, default=256)
    p.add_argument("--samples", type=positive_int, default=256,
                   help="calibration samples from the train split")
    p.add_argument("--eval-samples", type=positive_int,
                   help="test samples to evaluate (default: the whole test split)")
    p.add_argument("--eval-timesteps", type=int_list,
                   help="comma-separated T values to report (default: --timesteps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", required=True, help="calibration file (.h5) to write")
    p.add_argument("--report", help="also write the numbers as JSON here")


def _profiles_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("profiles", help="list the hardware profiles")


def _export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="quantise for a hardware profile and write the "
                       "deployable network")
    p.add_argument("model")
    p.add_argument("--profile", default="loihi_sim",
                   help="profile name (see `snn2hw profiles`) or a .toml file")
    p.add_argument("--calibration", help="a .calib.h5 from `snn2hw calibrate` (else the "
                   "model is calibrated now on --data)")
    _add_data_options(p)
    p.set_defaults(data=None)
    p.add_argument("--method", default="spike-norm", choices=["spike-norm", "max-act"])
    _add_neuron_options(p, export=True)
    p.add_argument("--timesteps", type=positive_int, default=256,
                   help="time steps for calibration and for the float/fixed comparison")
    p.add_argument("--samples", type=positive_int, default=256)
    p.add_argument("--eval-samples", type=positive_int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", help="export file (default: MODEL.PROFILE.h5, or "
                   "MODEL.nir / MODEL.net for --format nir / netx)")
    _add_format_options(p)
    p.add_argument("--report", help="also write the numbers as JSON here")


def _verify_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check from its integers alone that an export keeps "
                       "every fixed-point guarantee (exit 3 if not)")
    p.add_argument("export")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def _run_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run an exported network on Lava's CPU backend and "
                       "compare it with the reference simulator spike for spike")
    p.add_argument("export", help="an export (.h5), or a NIR network (.nir), quantised for "
                   "--profile first")
    p.add_argument("--data", default="digits")
    p.add_argument("--samples", type=positive_int, default=20)
    p.add_argument("--timesteps", type=positive_int, default=256)
    p.add_argument("--seed", type=int, help="input spike seed (default: the export's)")
    p.add_argument("--timeout", type=float, help="seconds before the Lava run is killed")
    p.add_argument("--profile", default="loihi_sim", help="for a .nir network: the profile "
                   "to quantise it for first (an export keeps its own)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--report", help="also write the numbers as JSON here")


def _report_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="spiking activity and synaptic operations against "
                       "depth (sparsity analysis)")
    p.add_argument("model")
    p.add_argument("--calibration", required=True,
                   help="a .calib.h5 from `snn2hw calibrate` for this model")
    _add_data_options(p)
    p.add_argument("--samples", type=positive_int, default=100,
                   help="test samples to simulate")
    p.add_argument("--timesteps", type=positive_int, default=256)
    p.add_argument("--seed", type=int, default=0, help="input spike seed")
    p.add_argument("-o", "--output", required=True, help="JSON report to write")
    p.add_argument("--plot", help="also draw rate and SOP/MAC against depth as a PNG here")


def name_list(choices: tuple[str, ...]):
    """A comma-separated list of names from ``choices``, as an argparse type."""
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(t.strip() for t in text.split(",") if t.strip())
        bad = [n for n in names if n not in choices]
        if bad or not names:
            raise argparse.ArgumentTypeError(f"{text!r}: expected names from "
                                             f"{', '.join(choices)}")
        return names
    return parse


def _sweep_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="accuracy, synaptic operations and estimated energy "
                       "per inference against T, for every preset and method")
    p.add_argument("model")
    _add_data_options(p)
    p.add_argument("--presets", type=name_list(PRESET_NAMES), default=("paper", "fast"),
                   help="comma-separated presets (default: paper,fast)")
    p.add_argument("--methods", type=name_list(("spike-norm", "max-act")),
                   default=("spike-norm", "max-act"),
                   help="comma-separated calibration methods (default: both)")
    _add_neuron_options(p, preset=False)
    p.add_argument("--timesteps", type=int_list, default=[8, 16, 32, 64, 128, 256],
                   help="comma-separated T values; one run at the largest (default "
                   "8,16,32,64,128,256)")
    p.add_argument("--calib-timesteps", type=positive_int,
                   help="T of the calibration (default: the largest --timesteps)")
    p.add_argument("--samples", type=positive_int, default=256,
                   help="calibration samples from the train split")
    p.add_argument("--eval-samples", type=positive_int,
                   help="test samples to evaluate (default: the whole test split)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default="loihi2", help="profile whose [energy] figures "
                   "estimate the energy (default loihi2; README, 'The sweep')")
    p.add_argument("-o", "--output", required=True, help="JSON report to write")
    p.add_argument("--plot", help="also draw accuracy, synaptic operations and energy "
                   "against T as a PNG here")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snn2hw", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"snn2hw {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_inspect_parser, _ops_parser, _calibrate_parser, _profiles_parser,
                _export_parser, _verify_parser, _run_parser, _report_parser, _sweep_parser):
        add(sub)
    return parser
