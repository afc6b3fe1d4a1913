"""`make demo`: the whole pipeline on the built-in digits data.

Train (or reuse) the small VGG-style example network, export it to ONNX, inspect it,
calibrate it with Spike-Norm and with max-act, and print ANN vs SNN accuracy at several
time-window lengths plus the per-layer spike sparsity.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="build/demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timesteps", default="64,128,256,512")
    parser.add_argument("--calib-timesteps", type=int, default=256)
    parser.add_argument("--calib-samples", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lava-samples", type=int, default=20)
    parser.add_argument("--lava-timesteps", type=int, default=256)
    return parser.parse_args(argv)


def _calibrate(model: Path, work: Path, timesteps: list[int], args) -> dict[str, dict]:
    """Step 3: both methods; their reports by method."""
    from snn2hw.artifacts.calibration import save_calibration
    from snn2hw.steps.options import CalibrationOptions, DataOptions, EvaluationOptions
    from snn2hw.steps.pipeline import calibrate_model

    results = {}
    for method in ("spike-norm", "max-act"):
        print(f"\n== 3. calibrate with {method} (T = {args.calib_timesteps}, "
              f"{args.calib_samples} samples), evaluate at T = {timesteps}")
        step_start = time.monotonic()
        art, net = calibrate_model(
            model, data_options=DataOptions("digits", device=args.device),
            calibration=CalibrationOptions(method, args.calib_timesteps, args.calib_samples,
                                           args.seed),
            evaluation=EvaluationOptions(timesteps=tuple(timesteps)))
        save_calibration(work / f"digits_vgg.{method}.calib.h5", art)
        results[method] = art.report
        print(f"   done in {time.monotonic() - step_start:.1f} s")
    return results


def _summary(results: dict[str, dict], timesteps: list[int], seed: int) -> None:
    from snn2hw.cli.tables import percent, table

    first = results["spike-norm"]["evaluation"]
    print(f"\n== Summary: digits test split ({first['samples']} images), "
          f"seed {seed}")
    print(f"ANN accuracy: {percent(first['ann_accuracy'])}")
    rows = [[method] + [percent(rep["evaluation"]["snn_accuracy"][str(t)]) for t in timesteps]
            for method, rep in results.items()]
    print(table(["SNN accuracy"] + [f"T={t}" for t in timesteps], rows))
    print("\nSpike sparsity (spikes per neuron per step, test split, "
          f"T = {max(timesteps)}):")
    layers = results["spike-norm"]["layers"]
    print(table(["layer", "depth", "neurons", "spike-norm thr", "spike-norm rate",
                 "max-act thr", "max-act rate"],
                [[la["name"], la["depth"], _size(la["shape"]), la["threshold"],
                  la["spikes_per_neuron_per_step"], lb["threshold"],
                  lb["spikes_per_neuron_per_step"]]
                 for la, lb in zip(layers, results["max-act"]["layers"])]))


def _deploy(model: Path, work: Path, first: dict, args) -> int:
    """Steps 4 and 5: export to loihi_sim, run on Lava, the deployment summary."""
    from snn2hw.artifacts.export import save_export
    from snn2hw.cli.printing import export_tables
    from snn2hw.cli.tables import percent, table
    from snn2hw.steps.deploy import export_model, run_export
    from snn2hw.steps.options import CalibrationOptions, DataOptions, RunOptions

    calib = work / "digits_vgg.spike-norm.calib.h5"
    exported = work / "digits_vgg.loihi_sim.h5"
    print(f"\n== 4. export to loihi_sim (spike-norm thresholds), float vs fixed-point at "
          f"T = {args.lava_timesteps} on the test split")
    art = export_model(model, "loihi_sim", calibration_file=calib,
                       data_options=DataOptions("digits", device=args.device),
                       calibration=CalibrationOptions(timesteps=args.lava_timesteps,
                                                      seed=args.seed))
    export_tables(art)
    save_export(exported, art)

    print(f"\n== 5. run {args.lava_samples} test images on Lava's CPU backend (fixed_pt), "
          f"T = {args.lava_timesteps}, and compare spike for spike")
    run = run_export(exported, RunOptions("digits", args.lava_samples, args.lava_timesteps))
    ev = art.report["evaluation"]
    print(f"\n== Deployment summary (T = {args.lava_timesteps})")
    print(table(["quantity", "value", "on"], [
        ["ANN accuracy", percent(first["ann_accuracy"]), f"{first['samples']} test images"],
        ["SNN float accuracy", percent(ev["float_accuracy"]), f"{ev['samples']} test images"],
        ["SNN fixed-point accuracy", percent(ev["exported_accuracy"]),
         f"{ev['samples']} test images"],
        ["Lava accuracy", percent(run.lava_accuracy), f"{run.samples} test images"],
        ["reference fixed-point accuracy", percent(run.reference_accuracy),
         f"same {run.samples} images and input spikes"],
        ["Lava/reference agreement", percent(run.agreement),
         "samples with every spike train identical"],
        ["Lava steps per second", f"{run.lava_steps_per_second:.1f}",
         f"{run.samples * run.timesteps} steps in one run"],
    ]))
    if run.first_mismatch:
        print(f"MISMATCH: {run.first_mismatch}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    import digits_vgg  # a sibling script: examples/ is on sys.path
    from snn2hw.cli.show import inspect_model

    start = time.monotonic()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    model = work / "digits_vgg.onnx"
    print(f"== 1. train or reuse the example network -> {model}")
    digits_vgg.main(["-o", str(model), "--seed", str(args.seed)])

    print("\n== 2. inspect")
    inspect_model(str(model))

    timesteps = [int(t) for t in args.timesteps.split(",")]
    results = _calibrate(model, work, timesteps, args)
    _summary(results, timesteps, args.seed)
    if _deploy(model, work, results["spike-norm"]["evaluation"], args):
        return 1
    print(f"\ndemo finished in {time.monotonic() - start:.0f} s")
    return 0


def _size(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


if __name__ == "__main__":
    sys.exit(main())
