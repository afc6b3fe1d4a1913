"""The pure logic of ``benchmarks/low_latency.py`` (no torch, no data): which training
samples calibrate and which validate, the candidate settings compared on the validation
split, the ablation rows (``fast`` with one option back at the paper's value), the rule
that picks the ``fast`` settings (on one network and across several), the time convention
of a row, and the exact McNemar test of paired decisions."""
from __future__ import annotations

from math import comb
from typing import Mapping, Sequence

# The paper's value of every setting a preset sets (snn2hw.snn.options.Conversion defaults,
# and the calibration's reset and percentile defaults): "removing" an option puts it back.
PAPER: dict[str, object] = {"coding": "poisson", "v_init": 0.0, "per_channel": False,
                            "bias_calibration": False, "readout": "spikes",
                            "window": "fill", "reset": "zero", "percentile": 100.0}
# The low-latency value of every option (snn2hw/snn/options.py): an option ``fast`` leaves
# at the paper's value is "added" by setting it to this value.
LOW_LATENCY: dict[str, object] = {"coding": "direct", "v_init": 0.5, "per_channel": True,
                                  "bias_calibration": True, "readout": "membrane",
                                  "window": "pipelined", "reset": "subtract"}
# Options that change only a fixed-point export (the float SNN, so the choice and the
# ablation, are the same with them): ``--set`` gives them, candidates leave them out.
EXPORT_ONLY: dict[str, object] = {"rounding_bias": False}
# Alternatives tried on the validation split besides removing an option.
ALTERNATIVES: dict[str, tuple[object, ...]] = {"percentile": (99.0, 99.5, 99.9, 99.99)}


def split_training(n_train: int, calibration: int, validation: int
                   ) -> tuple[range, range]:
    """Indices of the calibration samples (the first ``calibration`` of the training split,
    as ``snn2hw calibrate`` takes them) and of the validation samples (the last
    ``validation``), which must not overlap."""
    if calibration < 1 or validation < 1:
        raise ValueError("calibration and validation need at least one sample each")
    if calibration + validation > n_train:
        raise ValueError(f"{calibration} calibration + {validation} validation samples do not "
                         f"fit disjointly in a training split of {n_train}")
    return range(calibration), range(n_train - validation, n_train)


def removable(fast: Mapping[str, object]) -> list[str]:
    """The settings of ``fast`` that differ from the paper's (in PAPER's order)."""
    return [k for k in PAPER if k in fast and fast[k] != PAPER[k]]


def ablation(fast: Mapping[str, object]) -> list[tuple[str, dict[str, object]]]:
    """``fast`` with one option at a time back at the paper's value, then with each
    low-latency option it leaves at the paper's value added (``fast + readout``)."""
    on = removable(fast)
    return ([(f"fast - {key}", {**fast, key: PAPER[key]}) for key in on]
            + [(f"fast + {key}", {**fast, key: value}) for key, value in LOW_LATENCY.items()
               if key not in on and fast.get(key, PAPER[key]) != value])


def candidates(fast: Mapping[str, object], only: Sequence[str] | None = None
               ) -> list[tuple[str, dict[str, object]]]:
    """The settings compared on the validation split: ``fast`` itself, ``fast`` with each
    option removed, and ``fast`` with each alternative value of ALTERNATIVES; with
    ``only``, those of these labels (in this order)."""
    rows = [("fast", dict(fast))] + ablation(fast)
    for key, values in ALTERNATIVES.items():
        rows += [(f"fast, {key} {v:g}" if isinstance(v, float) else f"fast, {key} {v}",
                  {**fast, key: v}) for v in values if fast.get(key) != v]
    if only is not None:
        unknown = sorted(set(only) - {label for label, _ in rows})
        if unknown:
            raise ValueError(f"no candidate {unknown}; known: {[r[0] for r in rows]}")
        rows = [r for r in rows if r[0] in only]
    return rows


def choose(scores: Mapping[str, Mapping[str, Mapping[int, float]]],
           timesteps: Sequence[int], incumbent: str = "fast") -> str:
    """The candidate with the best validation accuracy averaged over the methods at the
    first of ``timesteps``, ties broken by the next ones, then in favour of
    ``incumbent`` (a change must win). ``scores``: candidate -> method -> T -> accuracy."""
    def key(name: str) -> tuple:
        per = scores[name]
        means = tuple(round(sum(m[t] for m in per.values()) / len(per), 9)
                      for t in timesteps)
        return means + (name == incumbent,)
    return max(scores, key=key)


def changed(chosen: Mapping[str, object], fast: Mapping[str, object]) -> dict[str, object]:
    """The settings where ``chosen`` differs from ``fast``."""
    return {k: chosen[k] for k in chosen if fast.get(k, PAPER.get(k)) != chosen[k]}


def convention(settings: Mapping[str, object]) -> str:
    """How a row counts T."""
    if settings.get("window", PAPER["window"]) == "pipelined":
        return "pipelined window (every layer integrates T steps; latency T + depth)"
    return "fill (T counts the pipeline fill; the output integrates T - depth steps)"


def setting(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` for a setting of PAPER or EXPORT_ONLY, the value in the type of the
    paper's value (``per_channel=false``, ``percentile=99.5``, ``coding=poisson``)."""
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    known = PAPER | EXPORT_ONLY
    if not sep or key not in known:
        raise ValueError(f"expected KEY=VALUE with KEY one of {', '.join(known)}; got {text!r}")
    kind = type(known[key])
    if kind is bool:
        if value.lower() not in ("true", "false"):
            raise ValueError(f"{key} takes true or false, got {value!r}")
        return key, value.lower() == "true"
    return key, kind(value)


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value for paired decisions: ``only_a`` images that one
    side alone gets right, ``only_b`` the other alone; under "no difference" each of the
    n = only_a + only_b discordant images goes either way with probability 1/2."""
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)


def scores_across(runs: Sequence[tuple[str, Sequence[Mapping]]], timesteps: Sequence[int]
                  ) -> dict[tuple, dict[str, dict[int, float]]]:
    """settings -> network -> T -> the mean over the methods of the validation accuracy,
    from ``runs`` (network name, the ``choice.candidates`` rows of a choose run). Only
    settings measured on every network with every method are kept; the same settings
    measured twice on one network must give the same accuracy."""
    seen: dict[tuple, dict[str, dict[str, dict[int, float]]]] = {}
    methods = set()
    for net, rows in runs:
        for row in rows:
            key = tuple(sorted(row["settings"].items()))
            acc = {int(t): float(v) for t, v in row["accuracy"].items() if int(t) in timesteps}
            old = seen.setdefault(key, {}).setdefault(net, {}).get(row["method"])
            if old is not None and old != acc:
                raise ValueError(f"{net}: two runs of the same settings disagree ({old} vs {acc})")
            seen[key][net][row["method"]] = acc
            methods.add(row["method"])
    nets = {net for net, _ in runs}
    out = {}
    for key, per in seen.items():
        if set(per) == nets and all(set(m) == methods for m in per.values()):
            out[key] = {net: {t: sum(m[t] for m in per[net].values()) / len(methods)
                              for t in timesteps} for net in nets}
    return out


def rank_across(scores: Mapping[tuple, Mapping[str, Mapping[int, float]]],
                timesteps: Sequence[int], incumbent: Mapping[str, object]
                ) -> list[tuple[tuple, tuple[float, ...]]]:
    """The candidates of ``scores_across``, best first: the mean over the networks at the
    first T, ties (to 1e-9) by the next T, then the incumbent first."""
    inc = tuple(sorted(incumbent.items()))

    def means(key):
        per = scores[key]
        return tuple(sum(n[t] for n in per.values()) / len(per) for t in timesteps)
    return sorted(((k, means(k)) for k in scores),
                  key=lambda kv: tuple(-round(m, 9) for m in kv[1]) + (kv[0] != inc,))


def describe(settings: Mapping[str, object], base: Mapping[str, object]) -> str:
    """``settings`` as its changes from ``base`` ("the preset" when none)."""
    diff = changed(settings, base)
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in diff.items()) or "the preset"
