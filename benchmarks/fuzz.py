"""The fuzzing properties of tests/test_fuzz.py with many more examples.

    .venv/bin/python benchmarks/fuzz.py [--examples 2000] [--lava-examples 10]
        [--seed S] [--only import,deep,mutation,fields,lava,realops,realops-lava]

Properties (each runs ``--examples`` cases; Lava ``--lava-examples``):
  import    random small networks: snn2hw import + ANN forward == onnxruntime
  deep      the same with deeper image networks
  mutation  mutated model bytes: the importer raises only snn2hw errors, never hangs
  fields    the same for edited fields (attributes, dims, data types, wiring, op types)
  lava      fixed-point reference simulator == Lava, spike for spike
  realops   networks with Concat, a zero Pad before a conv and ceil-mode pooling ==
            onnxruntime; realops-lava: those == Lava, spike for spike

Without ``--seed`` every run explores new cases; with it a run is reproducible. Prints
how many cases each property ran and the (shrunk) failing case, if any. Exit code 1 if
any property failed.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _properties(fuzz):
    outcomes: collections.Counter = collections.Counter()

    def mutation(pair):
        (model, _), edits = pair
        outcomes[fuzz.check_mutated_import(model, edits)] += 1

    def fields(pair):
        (model, _), proto_edits = pair
        outcomes[fuzz.check_mutated_import(model, (), proto_edits)] += 1

    def onnxruntime(case):
        fuzz.check_import_matches_onnxruntime(*case)

    def lava(pair):
        case, reset = pair
        fuzz.check_reference_matches_lava(*case, reset=reset)

    return outcomes, {
        "import": (fuzz.networks(), onnxruntime),
        "deep": (fuzz.networks(image=True, min_ops=3, max_ops=8), onnxruntime),
        "mutation": (fuzz.st.tuples(fuzz.networks(max_ops=3), fuzz.EDITS), mutation),
        "fields": (fuzz.st.tuples(fuzz.networks(max_ops=3), fuzz.PROTO_EDITS), fields),
        "lava": (fuzz.st.tuples(fuzz.networks(image=True, max_ops=3,
                                              must=("conv", "relu", "residual")),
                                fuzz.st.sampled_from(["zero", "subtract"])), lava),
        "realops": (fuzz.networks(image=True, min_ops=2, max_ops=6, must=("concat",),
                                  image_ops=fuzz.REAL_OPS), onnxruntime),
        "realops-lava": (fuzz.st.tuples(fuzz.networks(image=True, max_ops=3,
                                                      must=("relu", "concat"),
                                                      image_ops=fuzz.REAL_OPS),
                                        fuzz.st.sampled_from(["zero", "subtract"])), lava),
    }


def run_property(strategy, check, examples: int, seed: int | None) -> tuple[int, str]:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    count = [0]

    def counted(case):
        count[0] += 1
        check(case)

    test = settings(max_examples=examples, deadline=None, database=None,
                    phases=[Phase.generate, Phase.shrink],
                    suppress_health_check=list(HealthCheck))(given(strategy)(counted))
    if seed is not None:
        test = hypothesis_seed(seed)(test)
    try:
        test()
    except Exception:  # noqa: BLE001 - report the failure and go on with the others
        return count[0], traceback.format_exc(limit=-4)
    return count[0], ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--lava-examples", type=int, default=10)
    parser.add_argument("--seed", type=int, help="hypothesis seed (default: random)")
    parser.add_argument("--only", default="import,deep,mutation,fields,lava",
                        help="comma-separated properties to run")
    args = parser.parse_args(argv)

    import test_fuzz as fuzz

    outcomes, props = _properties(fuzz)
    failed = 0
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        if name not in props:
            parser.error(f"unknown property {name!r}; known: {', '.join(props)}")
        strategy, check = props[name]
        examples = args.lava_examples if name.endswith("lava") else args.examples
        start = time.monotonic()
        ran, failure = run_property(strategy, check, examples, args.seed)
        line = f"{name:9s} {ran:6d} cases in {time.monotonic() - start:7.1f} s"
        if name in ("mutation", "fields"):
            line += "  " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
            outcomes.clear()
        print(line + ("  FAILED" if failure else "  ok"), flush=True)
        if failure:
            failed += 1
            print(failure, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
