"""`make demo`: the whole pipeline on the built-in digits data.

Train (or reuse) the small VGG-style example network, export it to ONNX, inspect it,
calibrate it with Spike-Norm and with max-act, and print ANN vs SNN accuracy at several
time-window lengths plus the per-layer spike sparsity.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="build/demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timesteps", default="64,128,256,512")
    parser.add_argument("--calib-timesteps", type=int, default=256)
    parser.add_argument("--calib-samples", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--lava-samples", type=int, default=20)
    parser.add_argument("--lava-timesteps", type=int, default=256)
    args = parser.parse_args(argv)

    from snn2hw.artifacts.calibration import save_calibration
    from snn2hw.cli.commands import _export_tables, inspect_model
    from snn2hw.steps.deploy import export_model, run_export
    from snn2hw.artifacts.export import save_export
    from snn2hw.steps.pipeline import calibrate_model
    from snn2hw.tables import percent, table

    start = time.monotonic()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    model = work / "digits_vgg.onnx"
    print(f"== 1. train or reuse the example network -> {model}")
    _load_example("digits_vgg").main(["-o", str(model), "--seed", str(args.seed)])

    print("\n== 2. inspect")
    inspect_model(str(model))

    timesteps = [int(t) for t in args.timesteps.split(",")]
    results = {}
    for method in ("spike-norm", "max-act"):
        print(f"\n== 3. calibrate with {method} (T = {args.calib_timesteps}, "
              f"{args.calib_samples} samples), evaluate at T = {timesteps}")
        step_start = time.monotonic()
        art, net = calibrate_model(model, "digits", method, args.calib_timesteps,
                                   args.calib_samples, args.seed, eval_timesteps=timesteps,
                                   device=args.device)
        save_calibration(work / f"digits_vgg.{method}.calib.h5", art)
        results[method] = art.report
        print(f"   done in {time.monotonic() - step_start:.1f} s")

    first = results["spike-norm"]["evaluation"]
    print(f"\n== Summary: digits test split ({first['samples']} images), "
          f"seed {args.seed}")
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
    calib = work / "digits_vgg.spike-norm.calib.h5"
    exported = work / "digits_vgg.loihi_sim.h5"
    print(f"\n== 4. export to loihi_sim (spike-norm thresholds), float vs fixed-point at "
          f"T = {args.lava_timesteps} on the test split")
    art = export_model(model, "loihi_sim", str(calib), "digits", timesteps=args.lava_timesteps,
                       seed=args.seed, device=args.device)
    _export_tables(art)
    save_export(exported, art)

    print(f"\n== 5. run {args.lava_samples} test images on Lava's CPU backend (fixed_pt), "
          f"T = {args.lava_timesteps}, and compare spike for spike")
    run = run_export(exported, "digits", args.lava_samples, args.lava_timesteps)
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
    print(f"\ndemo finished in {time.monotonic() - start:.0f} s")
    return 0


def _size(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


if __name__ == "__main__":
    sys.exit(main())
