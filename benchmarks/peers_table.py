"""Time conventions and the tables of ``benchmarks/peers.py`` (pure logic, no simulation).

The peers (SpikingJelly, sinabs) update every layer in the same step: the output layer
integrates from the first step, and a peer at T has integrated T steps everywhere.
snn2hw's spike crosses one synapse per step (as on Loihi and in Lava): the output layer
``depth`` hops from the input is idle during steps 0..depth-1. Two ways to count T:

- ``pipelined`` (the pipelined window, snn2hw's ``window="pipelined"``): every layer
  integrates T steps of the sample; with samples streamed back to back every layer stays
  busy, so the throughput is one sample per T steps and the read-out comes after
  T + depth steps (at step T + depth - 1, 0-based). A peer at T is compared with ours at
  pipelined T.
- ``fill`` (snn2hw's ``window="fill"``, the paper's and today's default): T is the total
  number of steps from the first input step, including the pipeline fill; the output
  layer integrates only T - depth of them. Ours at fill T compares with a peer at
  T - depth.

``benchmarks/peers.py`` runs each of our configurations once per convention (``window``
set, nothing else changed). :func:`fill_equivalent` is the relation between the two for a
feed-forward network with Poisson input, spike-count read-out and v starting at 0: the
output count of a fill run after T + depth steps is exactly the count of a simulation
without hop delays after T steps (``tests/test_peers.py`` checks it). With an initial
potential, a membrane read-out or direct input a fill run is not a pipelined run read
later, so the benchmark measures both rather than deriving one from the other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from snn2hw.cli.tables import percent, table

CONVENTIONS = ("pipelined", "fill")
PEER = "peer"  # no per-hop delay: the peer's T is both its window and its total steps


def fill_equivalent(t: int, depth: int) -> int:
    """Total steps of our fill run that give the pipelined-T (peer-T) figure."""
    return t + depth


@dataclass
class Row:
    label: str
    convention: str                      # "pipelined", "fill" or PEER
    acc: dict[int, float | None]
    note: str = ""


@dataclass
class Report:
    model: str
    depth: int
    samples: int
    timesteps: list[int]
    ann_accuracy: float
    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)   # converter -> why
    speed: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"model": self.model, "depth": self.depth, "samples": self.samples,
                "timesteps": self.timesteps, "ann_accuracy": self.ann_accuracy,
                "accuracy": [{"converter": r.label, "convention": r.convention,
                              "note": r.note,
                              "T": {str(t): r.acc.get(t) for t in self.timesteps}}
                             for r in self.rows],
                "skipped": self.skipped, "throughput": self.speed}


CONVENTION_LABEL = {PEER: "peer T (no hop delay)", "pipelined": "pipelined window T",
                    "fill": "fill T"}


def header(report: Report) -> str:
    d = report.depth
    return (f"{report.model}: {report.samples} test images, ANN "
            f"{percent(report.ann_accuracy)}; snn2hw depth {d} hops.\n"
            "Columns T: 'peer T' = the peer simulates T steps, every layer in the same step "
            "(no hop delay).\n"
            f"'pipelined window T' = ours, every layer integrates T steps (read-out "
            f"after T + {d} steps): compare with the peer at the same T.\n"
            f"'fill T' = ours, T total steps including the {d}-step pipeline fill (the "
            f"output integrates T - {d}): compare with the peer at T - {d}.")


def accuracy_table(report: Report) -> str:
    cells = lambda acc: ["-" if acc.get(t) is None else percent(acc[t])  # noqa: E731
                         for t in report.timesteps]
    body = [["ANN", "-", *([percent(report.ann_accuracy)] * len(report.timesteps)), ""]]
    body += [[r.label, CONVENTION_LABEL[r.convention], *cells(r.acc), r.note]
             for r in report.rows]
    body += [[name, "skipped", *(["-"] * len(report.timesteps)), why]
             for name, why in report.skipped.items()]
    return table(["converter", "convention", *[f"T={t}" for t in report.timesteps], "note"],
                 body)


def row_line(row: Row, timesteps: Sequence[int]) -> str:
    """One row as a progress line, printed as soon as it is measured."""
    figures = ", ".join(f"T={t} " + ("-" if row.acc.get(t) is None else percent(row.acc[t]))
                        for t in timesteps)
    return f"   {row.label} [{CONVENTION_LABEL[row.convention]}]: {figures}"


def speed_line(s: dict, width: int = 0) -> str:
    """``simulator ... image*steps/s``, as benchmarks/simulate.py prints its figures."""
    return (f"{s['simulator']:<{width}}  batch {s['batch']:4d}  {s['images']} images x "
            f"T={s['timesteps']}  {s['seconds']:7.2f} s  {s['rate']:10,.0f} image*steps/s")


def speed_lines(report: Report) -> list[str]:
    width = max((len(s["simulator"]) for s in report.speed), default=0)
    return [speed_line(s, width) for s in report.speed]


def render(report: Report) -> str:
    parts = [header(report), "", accuracy_table(report)]
    if report.speed:
        parts += ["", "Simulation throughput (same net, images, T and torch threads; "
                  "wall clock on a shared machine):", *speed_lines(report)]
    return "\n".join(parts)
