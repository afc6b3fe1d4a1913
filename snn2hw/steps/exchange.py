"""``snn2hw export --format nir|netx``: the step that hands a network to a foreign writer
(:mod:`snn2hw.formats`). A float writer (NIR) gets the calibrated float SNN, an integer
writer (netx) the quantised export, made exactly as ``--format h5`` makes it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import data, formats, snn
from ..artifacts.calibration import load_calibration
from ..calibrate import Calibration
from ..errors import InputError
from ..onnx import file_hash


@dataclass
class FloatNetwork:
    """The calibrated float SNN (thresholds normalised to 1, gains from the scales; see
    :mod:`snn2hw.snn`) and what a reader needs to feed it."""
    net: snn.SpikingNetwork
    calibration: Calibration
    preprocess: str
    model: str
    options: dict = field(default_factory=dict)

    @property
    def input_scale(self) -> float:
        return self.calibration.scales[self.net.input]


def float_network(model: str | Path, calibration: str | None, data_spec: str | None,
                  method: str = "spike-norm", timesteps: int = 256, samples: int = 256,
                  seed: int = 0, device: str = "cpu", reset: str | None = None,
                  percentile: float = 100.0, maxpool: str = "refuse",
                  junction: str | None = None) -> FloatNetwork:
    """The model's spiking network with the thresholds of ``calibration``, of the file
    itself (NIR), or calibrated now on ``data_spec``."""
    from .pipeline import load_data, resolve_preprocess, run_calibration

    graph = formats.import_model(model, maxpool)
    net = snn.lower(graph)
    if calibration:
        art = load_calibration(calibration, expected_sha256=file_hash(model))
        cal, preprocess = art.calibration, art.preprocess
        if reset is not None and reset != cal.reset:
            raise InputError(f"{calibration}: thresholds were calibrated for reset "
                             f"{cal.reset!r}, not {reset!r}; calibrate again with --reset "
                             f"{reset}")
        return FloatNetwork(net, cal, preprocess, str(model))
    native = formats.native_calibration(model, graph)
    preprocess = resolve_preprocess(graph, None, None)
    if native is not None:
        if reset not in (None, native.reset):
            raise InputError(f"{model}: its neurons reset {native.reset!r}, not {reset!r}")
        return FloatNetwork(net, native, preprocess.to_json(), str(model))
    data_spec = data_spec or graph.metadata.get("snn2hw.dataset")
    if not data_spec:
        raise InputError("export needs thresholds: give --calibration FILE.calib.h5, or "
                         "--data (digits or a .npz file) to calibrate now")
    dataset = load_data(graph, data_spec, preprocess)
    cal = run_calibration(net, data.calibration_set(dataset, samples), method, timesteps,
                          seed, device, reset=reset or "zero", percentile=percentile,
                          junction=junction or "per-source")
    return FloatNetwork(net, cal, preprocess.to_json(), str(model))


def default_output(model: str | Path, fmt: str, profile: str) -> str:
    stem = str(Path(model).with_suffix(""))
    if fmt == formats.DEFAULT_OUTPUT:
        return f"{stem}.{Path(profile).stem}.h5"
    return stem + formats.writer(fmt).suffix


def export_format_command(args) -> int:
    """``snn2hw export --format nir|netx``: what the CLI prints and writes."""
    from ..fileio import check_output_path

    fmt = formats.writer(args.format)
    if args.report:
        raise InputError(f"--report is written by --format h5 only, not {args.format}")
    output = args.output or default_output(args.model, args.format, args.profile)
    check_output_path(output, (args.model, args.data, args.calibration))
    options = {"force": args.force, "nir_time": args.nir_time, "timesteps": args.timesteps}
    if fmt.needs == "float":
        network = float_network(args.model, args.calibration, args.data, args.method,
                                args.timesteps, args.samples, args.seed, args.device,
                                args.reset, args.percentile, args.maxpool, args.junction)
        print(f"{args.format}: thresholds from {network.calibration.method}")
    else:
        from ..quantize.verify import require, verify_artifact
        from .deploy import export_model

        network = export_model(args.model, args.profile, args.calibration, args.data,
                               args.method, args.timesteps, args.samples, args.seed,
                               args.eval_samples, args.device, args.mean, args.std,
                               args.reset, args.percentile, args.maxpool,
                               junction=args.junction, constrain=fmt.constrain)
        require(verify_artifact(network), "export")
        print(f"{args.format}: profile {network.qnet.profile} (weights within the format's "
              f"range), thresholds from {network.method}")
    for note in fmt.write(output, network, options):
        print(f"note: {note}")
    print(f"wrote {output}")
    return 0
