"""Certify an export from its integers alone: ``snn2hw verify EXPORT``.

For a fixed-point export every layer is checked against the profile stored in the file
(``profile_toml``) and the file's own ``state_bits``, ``current_shift`` and
``threshold_shift``:

- weights are integers inside the profile's weight range;
- the threshold is an integer in [1, 2**threshold.bits - 1];
- bias mantissas are integers that fit ``bias.mantissa_bits`` (signed), and the bias
  exponent lies in [bias.exp_min, bias.exp_max];
- the state budget of :mod:`snn2hw.quantize.budget` holds: the worst one-step input plus bias plus
  threshold stays inside the state range, so u cannot wrap and a neuron at or below its
  threshold cannot reach the clip of v in one step;
- with the membrane read-out, the output layer's threshold is at least the most one step
  can add to its v (:mod:`snn2hw.quantize.readout`), so its read-out count * threshold + v
  is the accumulated potential unless that falls below the lower clip of v.

Nothing is taken from the quantisation report or the float scales: a hand-edited file is
judged by what it would run. ``snn2hw export`` runs the same check before it writes a file.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import readout
from .budget import LayerBudget, network_budgets
from ..errors import ArtifactError, HardwareLimitError
from ..hardware.profiles import FixedPoint, parse


@dataclass
class Verification:
    """What :func:`verify_artifact` found; ``problems`` is empty when every guarantee holds."""
    profile: str
    fixed: bool
    state_bits: int = 0
    current_shift: int = 0
    budgets: list[LayerBudget] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    readout: dict | None = None   # membrane read-out: :func:`readout.guarantee`'s result

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        out = {"profile": self.profile, "fixed_point": self.fixed,
               "state_bits": self.state_bits, "current_shift": self.current_shift,
               "layers": [b.as_dict() for b in self.budgets], "problems": self.problems,
               "ok": self.ok}
        return out if self.readout is None else out | {"membrane_readout": self.readout}


def _integral(values: np.ndarray) -> bool:
    values = np.asarray(values)
    if values.size == 0 or np.issubdtype(values.dtype, np.integer):
        return True
    return bool(np.all(np.isfinite(values)) and np.all(values == np.rint(values)))


def _range_problems(layer, fp: FixedPoint) -> list[str]:
    """Every register of ``layer`` that does not hold what the profile allows."""
    where, out = f"layer {layer.name}", []
    for syn in layer.synapses:
        w = np.asarray(syn.values())
        if not _integral(w):
            out.append(f"{where}: synapse from {syn.source} has non-integer weights")
        elif w.size and (w.min() < fp.weight_min or w.max() > fp.weight_max):
            out.append(f"{where}: synapse from {syn.source} has weights in [{int(w.min())}, "
                       f"{int(w.max())}], outside [{fp.weight_min}, {fp.weight_max}]")
    thr = layer.threshold
    if not _integral(np.asarray([thr])) or not 1 <= thr <= fp.threshold_max:
        out.append(f"{where}: threshold {thr} is not an integer in [1, {fp.threshold_max}]")
    if layer.bias_mant is not None:
        b = np.asarray(layer.bias_mant)
        low = -fp.bias_mant_max - 1
        if b.size != layer.size:
            out.append(f"{where}: {b.size} bias mantissas for {layer.size} neurons")
        elif not _integral(b) or (b.size and (b.min() < low or b.max() > fp.bias_mant_max)):
            out.append(f"{where}: bias mantissas in [{b.min()}, {b.max()}] are not integers "
                       f"in [{low}, {fp.bias_mant_max}]")
        if not fp.bias_exp_min <= int(layer.bias_exp) <= fp.bias_exp_max:
            out.append(f"{where}: bias exponent {layer.bias_exp} is outside "
                       f"[{fp.bias_exp_min}, {fp.bias_exp_max}]")
    return out


def _budget_problem(b: LayerBudget) -> str | None:
    if b.holds:
        return None
    what = " and ".join(w for w, bad in (("u can wrap", b.u_wraps), ("v can clip", b.v_clips))
                        if bad)
    return (f"layer {b.name}: worst one-step input + bias + threshold = {b.worst} exceeds "
            f"the state range {b.v_max} ({what})")


def verify_network(qnet, fp: FixedPoint, profile: str, du: float = 4095) -> Verification:
    """Check an integer network against fixed-point rules ``fp`` and current decay ``du``."""
    ver = Verification(profile, True, qnet.state_bits, qnet.current_shift)
    for key in ("state_bits", "current_shift", "threshold_shift"):
        if getattr(qnet, key) != getattr(fp, key):
            ver.problems.append(f"{key} = {getattr(qnet, key)} differs from the profile's "
                                f"{getattr(fp, key)}")
    for layer in qnet.layers:
        ver.problems.extend(_range_problems(layer, fp))
    if ver.problems:  # a budget of non-integer or out-of-range registers means nothing
        return ver
    ver.budgets = network_budgets(qnet, du)
    ver.problems.extend(p for p in map(_budget_problem, ver.budgets) if p)
    if qnet.conversion.readout == "membrane":
        out = qnet.output
        levels = max(1, int(qnet.input_levels))
        signed = [levels if s.source == qnet.input else False for s in out.synapses]
        ver.readout = readout.guarantee(out, signed, qnet.state_bits, qnet.current_shift,
                                        qnet.threshold_shift, du)
        if readout.problem(ver.readout):
            ver.problems.append(readout.problem(ver.readout))
    return ver


def verify_artifact(art, where: str = "export") -> Verification:
    """Check an :class:`snn2hw.artifacts.export.ExportArtifact` against the profile it embeds."""
    try:
        profile = parse(tomllib.loads(art.profile_toml), f"{where} (embedded profile)")
    except tomllib.TOMLDecodeError as exc:
        raise ArtifactError(f"{where}: the embedded profile is not valid TOML ({exc})"
                            ) from None
    if profile.fixed is None:
        return Verification(profile.name, False)
    return verify_network(art.qnet, profile.fixed, profile.name, profile.neuron_du)


def verify_file(path: str | Path) -> Verification:
    from ..artifacts.export import load_export

    return verify_artifact(load_export(path), str(path))


def require(ver: Verification, where: str) -> None:
    """Raise :class:`HardwareLimitError` (exit 3) naming the first broken guarantee."""
    if ver.ok:
        return
    more = f" (and {len(ver.problems) - 1} more)" if len(ver.problems) > 1 else ""
    raise HardwareLimitError(f"{where}: fixed-point guarantee broken: {ver.problems[0]}{more}",
                             problems=list(ver.problems))
