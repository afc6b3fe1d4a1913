"""Going deeper: VGG-16 and ResNet-20 (reduced width) on digits 32x32 through every stage.

    .venv/bin/python benchmarks/depth.py [--workdir build/deep] [--eval-samples 200]
        [--timesteps 128,256,512,1024] [--fixed-timesteps 512] [--lava-samples 5]
        [--lava-timesteps 128] [--nets vgg16,resnet20] [--seed 0]
        [--reset zero|subtract] [--percentile P]

For each network: ANN accuracy; SNN accuracy with Spike-Norm and with max-act at every T;
fixed-point (loihi_sim) accuracy at --fixed-timesteps; and Lava/reference agreement, spike
for spike in every layer, on --lava-samples test images. Models are trained (or reused)
and converted by examples/deep_digits.py with its defaults (reset by subtraction, 99.9th
percentile; --reset and --percentile are passed on to it).

Measured with ``--eval-samples 450`` (seed 0, 23.5 minutes on two CPU cores)::

    net       ANN      SN T=128  SN T=256  SN T=512  SN T=1024  MA T=128  MA T=256  MA T=512
    vgg16     98.44 %  98.22 %   98.44 %   98.44 %   98.44 %    98.44 %   98.44 %   98.44 %
    resnet20  98.67 %  74.00 %   93.11 %   96.44 %   97.78 %    98.00 %   98.44 %   98.00 %

    net       MA T=1024  float T=512  fixed T=512  Lava agree (5)  Lava steps/s
    vgg16     98.44 %    98.44 %      98.44 %      100.00 %        73
    resnet20  98.44 %    96.44 %      96.22 %      100.00 %        41
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _example(name: str):
    """``examples/<name>.py``, imported as the examples import each other (examples/ on
    sys.path)."""
    if str(ROOT / "examples") not in sys.path:
        sys.path.insert(0, str(ROOT / "examples"))
    return importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=Path("build/deep"))
    p.add_argument("--nets", default="vgg16,resnet20")
    p.add_argument("--timesteps", default="128,256,512,1024")
    p.add_argument("--eval-samples", type=int, default=200)
    p.add_argument("--fixed-timesteps", type=int, default=512)
    p.add_argument("--lava-samples", type=int, default=5)
    p.add_argument("--lava-timesteps", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reset", default=None, help="passed to deep_digits (default: its own)")
    p.add_argument("--percentile", default=None, help="passed to deep_digits")
    args = p.parse_args(argv)

    from snn2hw.steps.deploy import export_model, run_export
    from snn2hw.steps.options import (CalibrationOptions, DataOptions, EvaluationOptions,
                                      RunOptions)
    from snn2hw.artifacts.export import save_export
    from snn2hw.cli.tables import percent, table

    start = time.monotonic()
    deep = _example("deep_digits")
    nets = [n.strip() for n in args.nets.split(",") if n.strip()]
    timesteps = [int(t) for t in args.timesteps.split(",")]
    common = ["--workdir", str(args.workdir), "--seed", str(args.seed), "--nets",
              ",".join(nets), "--timesteps", ",".join(map(str, timesteps)),
              "--eval-samples", str(args.eval_samples)]
    for opt in ("reset", "percentile"):
        if getattr(args, opt) is not None:
            common += [f"--{opt}", str(getattr(args, opt))]
    code = deep.main(common)
    if code:
        return code
    rows = []
    for net in nets:
        model = args.workdir / f"{net}.onnx"
        reports = {}
        for method in ("spike-norm", "max-act"):
            from snn2hw.artifacts.calibration import load_calibration

            reports[method] = load_calibration(args.workdir /
                                               f"{net}.{method}.calib.h5").report
        print(f"\n== {net}: export (spike-norm thresholds) to loihi_sim, fixed-point at "
              f"T = {args.fixed_timesteps} on {args.eval_samples} test images")
        art = export_model(model, "loihi_sim",
                           calibration_file=args.workdir / f"{net}.spike-norm.calib.h5",
                           data_options=DataOptions("digits"),
                           calibration=CalibrationOptions(timesteps=args.fixed_timesteps,
                                                          seed=args.seed),
                           evaluation=EvaluationOptions(samples=args.eval_samples))
        exported = args.workdir / f"{net}.loihi_sim.h5"
        save_export(exported, art)
        print(f"== {net}: Lava on {args.lava_samples} test images, T = {args.lava_timesteps}")
        run = run_export(exported, RunOptions("digits", args.lava_samples,
                                              args.lava_timesteps))
        ev = reports["spike-norm"]["evaluation"]
        row = [net, percent(ev["ann_accuracy"])]
        for method in ("spike-norm", "max-act"):
            acc = reports[method]["evaluation"]["snn_accuracy"]
            row += [percent(acc[str(t)]) for t in timesteps]
        fx = art.report["evaluation"]
        row += [percent(fx["float_accuracy"]), percent(fx["exported_accuracy"]),
                percent(run.agreement), f"{run.lava_steps_per_second:.0f}"]
        rows.append(row)
    headers = ["net", "ANN"] + [f"SN T={t}" for t in timesteps] + \
        [f"MA T={t}" for t in timesteps] + \
        [f"float T={args.fixed_timesteps}", f"fixed T={args.fixed_timesteps}",
         f"Lava agree ({args.lava_samples})", "Lava steps/s"]
    print(f"\n== Depth summary (digits 32x32, {args.eval_samples} test images; SN = "
          f"Spike-Norm, MA = max-act)")
    print(table(headers, rows))
    print(f"\nfinished in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
