"""Fingerprint of the whole pipeline on a small fixed-seed model: sha256 of every file written
and of every table printed by `profiles`, `ops`, `inspect`, `calibrate`, `export`
(loihi_sim, loihi_float, with and without subtract reset), `verify`, `report` and `run`
(Lava, loihi_sim and loihi_float).

A reorganisation that claims "no change of behaviour" must leave every line identical:

    .venv/bin/python benchmarks/golden.py --workdir build/golden > before.txt
    ... change the code ...
    .venv/bin/python benchmarks/golden.py --workdir build/golden > after.txt
    diff before.txt after.txt

The model is the test suite's tiny conv net (tests/onnx_builders.py, torch seed given by
--seed) on the built-in digits data. Run time: about a minute on 2 cores.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _cli(args: list[str]) -> tuple[int, str]:
    """Run `snn2hw ARGS` in-process; (exit code, stdout)."""
    from snn2hw.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            code = main(args)
        except SystemExit as exc:
            code = exc.code
    return int(code or 0), out.getvalue()


def steps(work: Path, model: Path) -> list[tuple[str, list[str], list[Path]]]:
    """(label, CLI arguments, files written) of every fingerprinted step."""
    cal = {r: work / f"tiny.{r}.calib.h5" for r in ("zero", "subtract")}
    common = ["--data", "digits", "--timesteps", "32", "--samples", "40", "--seed", "3"]
    out: list[tuple[str, list[str], list[Path]]] = [
        ("profiles", ["profiles"], []), ("ops", ["ops"], []),
        ("inspect", ["inspect", str(model)], [])]
    for reset, path in cal.items():
        out.append((f"calibrate {reset}", ["calibrate", str(model), *common, "--reset", reset,
                                           "--eval-samples", "40", "-o", str(path)], [path]))
    for profile in ("loihi_sim", "loihi_float"):
        for reset, path in cal.items():
            exp = work / f"tiny.{reset}.{profile}.h5"
            out.append((f"export {profile} {reset}",
                        ["export", str(model), "--profile", profile, "--calibration", str(path),
                         "--timesteps", "32", "--eval-samples", "40", "-o", str(exp)], [exp]))
    out.append(("export loihi_sim max-act now",
                ["export", str(model), "--profile", "loihi_sim", *common, "--method", "max-act",
                 "--eval-samples", "30", "-o", str(work / "tiny.maxact.h5")],
                [work / "tiny.maxact.h5"]))
    out.append(("verify", ["verify", str(work / "tiny.zero.loihi_sim.h5")], []))
    out.append(("report", ["report", str(model), "--calibration", str(cal["zero"]),
                           "--samples", "20", "--timesteps", "32", "--seed", "3",
                           "-o", str(work / "tiny.sparsity.json")],
                [work / "tiny.sparsity.json"]))
    for profile, reset in (("loihi_sim", "subtract"), ("loihi_float", "zero")):
        out.append((f"run {profile} {reset}",
                    ["run", str(work / f"tiny.{reset}.{profile}.h5"), "--samples", "4",
                     "--timesteps", "16"], []))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default="build/golden")
    ap.add_argument("--seed", type=int, default=5, help="torch seed of the tiny model")
    ap.add_argument("--no-lava", action="store_true", help="skip the `run` steps")
    args = ap.parse_args(argv)
    from onnx_builders import tiny_torch_onnx

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    model = tiny_torch_onnx(work / "tiny.onnx", seed=args.seed)
    print(f"model {_sha(model.read_bytes())}")
    for label, cli_args, files in steps(work, model):
        if args.no_lava and label.startswith("run"):
            continue
        code, text = _cli(cli_args)
        # The run's wall-clock figures differ from run to run: drop them from the hash.
        stable = "\n".join(line.rstrip() for line in text.splitlines()
                           if "per second" not in line)
        print(f"{label}: exit {code} stdout {_sha(stable.encode())} "
              + " ".join(f"{f.name} {_sha(f.read_bytes())}" for f in files))


if __name__ == "__main__":
    main()
