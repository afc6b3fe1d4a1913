"""GPU check, in one run: the suite's GPU tests, the deep_digits VGG-16 calibrated and
evaluated on a CUDA device against the CPU, and throughput figures.

    .venv/bin/python benchmarks/gpu_check.py [--model build/deep/vgg16.onnx] [--device cuda]
        [--calib-samples 128] [--calib-timesteps 128] [--eval-samples 450] [--timesteps 256]
        [--throughput-samples 1024] [--skip-tests] [--json FILE]

1. ``pytest -m gpu``: the tests marked ``gpu`` (tests/test_gpu.py).
2. Spike-Norm (reset by subtraction, 99.9th percentile: examples/deep_digits.py's settings)
   and max-act on the CPU and on ``--device``, both in float64 (``snn2hw.precision``): the
   scales must be identical; the script prints how many differ and by how much.
3. The CPU's calibration evaluated in float32 on both devices: the SNN and ANN accuracies
   must agree within 0.1 point.
4. Throughput: the float32 simulator in image*steps/s on the device at several batch sizes
   and on the CPU, and each calibration's seconds.
5. With two or more GPUs: ``torchrun --nproc-per-node 2`` calibration (nccl) against one
   process, identical reports.

The model comes from ``examples/deep_digits.py --nets vgg16`` (train it beforehand and
bring ``build/deep/vgg16.onnx``; if it is missing it is trained here, on the CPU cores).
``--device cpu`` runs the whole script without a GPU (a dry run: every check compares the
CPU with itself). Exit status 0 when every check passes, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runs from a checkout without an install (a GPU image's python)
ENV = os.environ | {"PYTHONPATH": os.pathsep.join(
    [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
ACCURACY_POINTS = 0.1  # largest accepted |accuracy(device) - accuracy(cpu)|, in points


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=ROOT / "build/deep/vgg16.onnx")
    p.add_argument("--device", default="cuda")
    p.add_argument("--calib-samples", type=int, default=128)
    p.add_argument("--calib-timesteps", type=int, default=128)
    p.add_argument("--eval-samples", type=int, default=450)
    p.add_argument("--timesteps", type=int, default=256)
    p.add_argument("--throughput-samples", type=int, default=1024)
    p.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-tests", action="store_true", help="skip step 1 (pytest -m gpu)")
    p.add_argument("--json", type=Path, help="also write every figure here")
    return p.parse_args(argv)


def gpu_tests() -> dict:
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q",
                          str(ROOT / "tests")], cwd=ROOT, capture_output=True, text=True,
                         env=ENV)
    tail = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-300:]
    print(f"   pytest -m gpu: {tail} ({time.perf_counter() - start:.0f} s)")
    return {"passed": run.returncode == 0, "summary": tail}


def ensure_model(path: Path) -> Path:
    if path.is_file():
        return path
    print(f"   {path} missing: training it (examples/deep_digits.py --nets vgg16)")
    subprocess.run([sys.executable, str(ROOT / "examples/deep_digits.py"), "--nets", "vgg16",
                    "--workdir", str(path.parent), "--methods", "max-act", "--timesteps", "8",
                    "--calib-timesteps", "8", "--calib-samples", "8", "--eval-samples", "8",
                    "--threads", str(os.cpu_count() or 2)], check=True, cwd=ROOT, env=ENV)
    return path


def compare_scales(cpu: dict[str, float], dev: dict[str, float]) -> dict:
    differ = [k for k in cpu if cpu[k] != dev[k]]
    rel = max((abs(dev[k] - cpu[k]) / abs(cpu[k]) for k in differ if cpu[k]), default=0.0)
    return {"layers": len(cpu), "differ": len(differ), "max_rel_diff": rel,
            "first_differing": differ[:3]}


def calibrations(net, x, args) -> tuple[dict, dict]:
    """Both methods on both devices in float64; the CPU's calibrations for step 3."""
    import torch

    from snn2hw import precision
    from snn2hw.calibrate import calibrate

    options = {"spike-norm": dict(timesteps=args.calib_timesteps, seed=args.seed,
                                  reset="subtract", percentile=99.9),
               "max-act": dict(reset="subtract", percentile=99.9)}
    figures, cpu_cals = {}, {}
    for method, opts in options.items():
        cals, seconds = {}, {}
        for device in ("cpu", args.device):
            start = time.perf_counter()
            with precision.use(torch.float64):
                cals[device] = calibrate(method, net, x, device=device, **opts)
            seconds[device] = time.perf_counter() - start
        thresholds = compare_scales(cals["cpu"].scales, cals[args.device].scales)
        sources = compare_scales(cals["cpu"].source_scales, cals[args.device].source_scales)
        figures[method] = {"scales": thresholds, "source_scales": sources,
                           "seconds": seconds, "identical": thresholds["differ"] == 0}
        print(f"   {method}: float64 scales identical on cpu and {args.device}: "
              f"{thresholds['differ'] == 0} ({thresholds['differ']} of "
              f"{thresholds['layers']} differ, max rel. {thresholds['max_rel_diff']:.2e}; "
              f"source scales: {sources['differ']} differ, max rel. "
              f"{sources['max_rel_diff']:.2e}); {seconds['cpu']:.1f} s cpu, "
              f"{seconds[args.device]:.1f} s {args.device}")
        cpu_cals[method] = cals["cpu"]
    return figures, cpu_cals


def evaluations(graph, net, cals, x, y, args) -> dict:
    from snn2hw.steps.evaluate import evaluate

    figures = {}
    for method, cal in cals.items():
        ev = {}
        for device in ("cpu", args.device):
            ev[device] = evaluate(graph, net, cal.scales, x, y, [args.timesteps], args.seed,
                                  device=device, source_scales=cal.source_scales,
                                  reset=cal.reset)
        snn = {d: 100 * e.snn_accuracy[args.timesteps] for d, e in ev.items()}
        ann = {d: 100 * e.ann_accuracy for d, e in ev.items()}
        gap = max(abs(snn[args.device] - snn["cpu"]), abs(ann[args.device] - ann["cpu"]))
        figures[method] = {"snn_accuracy": snn, "ann_accuracy": ann, "gap_points": gap,
                           "within": gap <= ACCURACY_POINTS,
                           "seconds": {d: e.seconds for d, e in ev.items()}}
        print(f"   {method}: float32 SNN accuracy at T = {args.timesteps}: cpu "
              f"{snn['cpu']:.2f} %, {args.device} {snn[args.device]:.2f} %; ANN cpu "
              f"{ann['cpu']:.2f} %, {args.device} {ann[args.device]:.2f} % (gap {gap:.2f} "
              f"points, within {ACCURACY_POINTS}: {gap <= ACCURACY_POINTS})")
    return figures


def throughput(net, scales, x, args) -> dict:
    import torch

    from snn2hw.snn import simulate
    from snn2hw.snn.encoders import make_encoder

    x = np.concatenate([x] * (-(-args.throughput_samples // len(x))))[:args.throughput_samples]
    figures = {}
    runs = [(args.device, b) for b in args.batches] + [("cpu", 64)]
    for device, batch in runs:
        prep = simulate.prepare_float(net, scales, device)
        encoder = make_encoder("poisson", x, input_scale=scales[net.input], seed=args.seed,
                               stream=1)
        start = time.perf_counter()
        simulate.simulate(prep, encoder, args.timesteps, batch_size=batch)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        rate = len(x) * args.timesteps / (time.perf_counter() - start)
        figures[f"{device} batch {batch}"] = rate
        print(f"   {device} batch {batch:5d}: {rate:12,.0f} image*steps/s "
              f"({len(x)} images, T = {args.timesteps}, float32)")
    return figures


def nccl_ranks(args) -> dict:
    """Two nccl ranks against one process on the device, through the command."""
    import torch

    if not args.device.startswith("cuda") or torch.cuda.device_count() < 2:
        print("   skipped: needs two GPUs")
        return {"skipped": True}
    common = ["calibrate", str(args.model), "--samples", str(args.calib_samples),
              "--timesteps", str(args.calib_timesteps), "--eval-samples", "256",
              "--reset", "subtract", "--percentile", "99.9", "--device", "cuda"]
    with tempfile.TemporaryDirectory() as tmp:
        reports = {}
        for label, launcher in (("one", [sys.executable, "-m", "snn2hw"]),
                                ("two", [sys.executable, "-m", "torch.distributed.run",
                                         "--standalone", "--nproc-per-node", "2",
                                         "-m", "snn2hw"])):
            out = Path(tmp) / label
            subprocess.run(launcher + common + ["-o", f"{out}.h5", "--report", f"{out}.json"],
                           check=True, cwd=ROOT, capture_output=True, env=ENV)
            reports[label] = json.loads(Path(f"{out}.json").read_text())
    same = reports["one"] == reports["two"]
    print(f"   torchrun 2 ranks (nccl) report identical to one process: {same}")
    return {"identical": same}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    import torch

    from snn2hw import data, snn
    from snn2hw.importer import import_onnx
    from snn2hw.steps.evaluate import load_data
    from snn2hw.steps.settings import model_preprocess

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: no CUDA device (use --device cpu for a dry run)", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"device {args.device} ({name}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    result: dict = {"device": args.device, "device_name": name, "torch": torch.__version__}
    print("== 1. GPU-marked tests")
    result["tests"] = {"skipped": True} if args.skip_tests else gpu_tests()
    graph = import_onnx(ensure_model(args.model))
    dataset = load_data(graph, "digits", model_preprocess(graph))
    net = snn.lower(graph)
    x_cal = data.calibration_set(dataset, args.calib_samples)
    x_ev, y_ev = data.take(dataset.x_test, dataset.y_test, args.eval_samples, "evaluation")
    print(f"== 2. calibration in float64: {args.model.name}, {len(net.layers)} spiking layers, "
          f"{args.calib_samples} samples, T = {args.calib_timesteps}")
    result["calibration"], cals = calibrations(net, x_cal, args)
    print(f"== 3. evaluation in float32: {len(x_ev)} test images, T = {args.timesteps}")
    result["evaluation"] = evaluations(graph, net, cals, x_ev, y_ev, args)
    print("== 4. throughput (spike-norm thresholds)")
    result["throughput"] = throughput(net, cals["spike-norm"].scales, np.asarray(x_ev), args)
    print("== 5. torchrun with nccl")
    result["nccl"] = nccl_ranks(args)
    ok = (result["tests"].get("passed", True)
          and all(f["identical"] for f in result["calibration"].values())
          and all(f["within"] for f in result["evaluation"].values())
          and result["nccl"].get("identical", True))
    result["passed"] = bool(ok)
    print(f"== all checks passed: {ok}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
