"""The ``fast`` settings chosen across networks: reads the JSON files that
``benchmarks/low_latency.py --parts choose -o F`` wrote (one or more runs per network,
held-out validation splits) and applies the rule of ``low_latency_plan.scores_across`` and
``rank_across``.

    .venv/bin/python benchmarks/choose_across.py build/ll/choose_vgg16.json \\
        build/ll/choose_fashion.json build/ll/choose_resnet20.json [more runs ...] \\
        [--timesteps 32,64]

A candidate is its settings (runs that measured the same settings on the same network must
agree, or the script stops): candidates measured on every network with every method are
ranked by the mean over the networks of the mean over the methods at the first T, ties by
the next T, then in favour of the preset as the first file records it. Prints one row per
candidate (its settings as changes from that preset) and the choice.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import low_latency_plan as plan  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", type=Path, nargs="+")
    p.add_argument("--timesteps", default="32,64")
    args = p.parse_args(argv)
    timesteps = [int(v) for v in args.timesteps.split(",")]
    runs = [json.loads(f.read_text()) for f in args.files]
    incumbent = runs[0]["fast_preset"]
    try:
        scores = plan.scores_across(
            [(Path(r["model"]).parent.name + "/" + Path(r["model"]).stem,
              r["choice"]["candidates"]) for r in runs], timesteps)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    nets = sorted({n for per in scores.values() for n in per})
    ranked = plan.rank_across(scores, timesteps, incumbent)
    head = ["changes from the preset"] + [f"{n} T={timesteps[0]}" for n in nets] + \
        [f"mean T={t}" for t in timesteps]
    print(" | ".join(head))
    for key, means in ranked:
        per = scores[key]
        label = plan.describe(dict(key), incumbent)
        cells = [f"{100 * per[n][timesteps[0]]:.2f}" for n in nets]
        print(" | ".join([label] + cells + [f"{100 * m:.2f}" for m in means]))
    print(f"chosen: {plan.describe(dict(ranked[0][0]), incumbent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
