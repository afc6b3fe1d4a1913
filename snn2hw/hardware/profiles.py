"""Hardware profiles: one TOML file per target (``hw_profiles/``), read by one resolver.

Every hardware fact the quantiser, the fixed-point simulator and the backends use comes
from here. The ``backend`` field names the backend that runs the profile (a name registered
in :mod:`snn2hw.backends`, or ``"none"`` for a profile that describes resources only); that
backend parses its own section of the file (:meth:`~snn2hw.backends.Backend.parse_profile`)
into :attr:`Profile.settings`. A profile with a missing, mistyped or out-of-range field
fails to load with an error naming the field.
"""
from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .. import backends
from ..errors import HardwareLimitError, ProfileError
from ..snn import neurons
from ..snn.neurons import check_reset  # noqa: F401  (re-exported)
from .profile_fields import get as _get
from .profile_fields import int_field as _int_field
from .profile_fields import str_field as _str_field

PACKAGE = "snn2hw.hw_profiles"


@dataclass(frozen=True)
class FixedPoint:
    weight_min: int
    weight_max: int
    weight_bits: int
    threshold_bits: int
    threshold_shift: int
    bias_mantissa_bits: int
    bias_exp_min: int
    bias_exp_max: int
    state_bits: int
    current_shift: int

    @property
    def threshold_max(self) -> int:
        return (1 << self.threshold_bits) - 1

    @property
    def bias_mant_max(self) -> int:
        return (1 << (self.bias_mantissa_bits - 1)) - 1

    @property
    def v_max(self) -> int:
        return (1 << (self.state_bits - 1)) - 1


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    kind: str                  # "execute" or "resources"
    backend: str               # a registered backend name, or "none" (resources only)
    quantize: bool
    fixed: FixedPoint | None   # quantize = true only
    resources: dict[str, int]  # kind "resources" only (else empty)
    path: str                  # the file, or the name of a shipped profile
    neuron_du: float           # LIF decays (12-bit integers, or fractions for floats)
    neuron_dv: float
    resets: tuple[str, ...]    # neuron reset modes the target can run
    settings: Any              # the backend's own section, parsed by it (None for "none")
    resources_profile: str | None  # profile for the fit check and core estimate


# field -> (type, min, max); None bounds are open.
_INT_FIELDS = {
    "weights.min": (-(1 << 16), 0), "weights.max": (1, 1 << 16), "weights.bits": (2, 16),
    "threshold.bits": (2, 32), "threshold.shift": (0, 16),
    "bias.mantissa_bits": (2, 32), "bias.exp_min": (0, 16), "bias.exp_max": (0, 16),
    "state.bits": (8, 32), "state.current_shift": (0, 16),
}
_RESOURCE_FIELDS = ("cores_per_chip", "neurons_per_core", "neurons_per_chip",
                    "synapses_per_chip", "synaptic_memory_bytes_per_core", "fan_in_per_core",
                    "fan_out_per_core")


def parse(doc: dict, where: str) -> Profile:
    name = _str_field(doc, "name", where)
    kind = _str_field(doc, "kind", where, ("execute", "resources"))
    backend = _str_field(doc, "backend", where)
    if backend != backends.NONE:
        backends.check_known(backend, where)
    quantize = _get(doc, "quantize", where)
    if not isinstance(quantize, bool):
        raise ProfileError(f"profile {where}: field 'quantize' must be true or false")
    fixed = None
    if quantize:
        v = {key: _int_field(doc, key, where, lo, hi) for key, (lo, hi) in _INT_FIELDS.items()}
        fixed = FixedPoint(v["weights.min"], v["weights.max"], v["weights.bits"],
                           v["threshold.bits"], v["threshold.shift"], v["bias.mantissa_bits"],
                           v["bias.exp_min"], v["bias.exp_max"], v["state.bits"],
                           v["state.current_shift"])
        if fixed.threshold_shift != fixed.current_shift:  # quantize.py and Lava assume it
            raise ProfileError(f"profile {where}: threshold.shift = {fixed.threshold_shift} "
                               f"must equal state.current_shift = {fixed.current_shift}",
                               field="threshold.shift")
        if fixed.bias_exp_min > fixed.bias_exp_max:
            raise ProfileError(f"profile {where}: bias.exp_min > bias.exp_max")
        if fixed.weight_max - fixed.weight_min + 1 > (1 << fixed.weight_bits):
            raise ProfileError(f"profile {where}: weights [{fixed.weight_min}, "
                               f"{fixed.weight_max}] do not fit weights.bits = "
                               f"{fixed.weight_bits}", field="weights.bits")
    resets = _resets(doc, where)
    du, dv = (_decay(doc, f"neuron.{k}", where, quantize) for k in ("du", "dv"))
    settings = None
    if backend != backends.NONE:
        settings = backends.get(backend).parse_profile(doc, where, quantize)
    resources_profile = None
    if "resources_profile" in doc:
        resources_profile = _str_field(doc, "resources_profile", where)
    hops = _int_field(doc, "timing.hops_per_synapse", where, 1, 1)
    del hops  # the only convention supported; validated so a profile cannot claim another
    res = {}
    if kind == "resources":
        res = {key: _int_field(doc, f"resources.{key}", where, 1, 1 << 40)
               for key in _RESOURCE_FIELDS}
    return Profile(name, str(doc.get("description", "")), kind, backend, quantize, fixed, res,
                   where, du, dv, resets, settings, resources_profile)


def _decay(doc: dict, dotted: str, where: str, fixed: bool) -> float:
    """``neuron.du``/``neuron.dv``: Lava's LIF decay constants, a 12-bit integer (fixed
    point: 0 .. 4095, in units of 1/4096) or a fraction (floating point: 0 .. 1)."""
    value = _get(doc, dotted, where)
    hi = 4095 if fixed else 1
    kind = (int,) if fixed else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not 0 <= value <= hi:
        raise ProfileError(f"profile {where}: field '{dotted}' must be "
                           f"{'an integer' if fixed else 'a number'} in [0, {hi}], got "
                           f"{value!r}", field=dotted)
    return value


# The fixed-point rules of hand-built networks (tests, benchmarks) when none are given.
DEFAULT_FIXED_PROFILE = "loihi_sim"


@functools.lru_cache(maxsize=1)
def default_fixed() -> FixedPoint:
    """The fixed-point rules of the default fixed-point profile."""
    return load(DEFAULT_FIXED_PROFILE).fixed


# The reset modes are the registered neuron kinds (snn/neurons: zero, subtract).
RESETS = neurons.names()


def _resets(doc: dict, where: str) -> tuple[str, ...]:
    """``neuron.reset``: one mode or a list of the modes the target runs."""
    value = _get(doc, "neuron.reset", where)
    values = [value] if isinstance(value, str) else value
    if (not isinstance(values, list) or not values
            or any(v not in RESETS for v in values)):
        raise ProfileError(f"profile {where}: field 'neuron.reset' = {value!r}; expected one "
                           f"or a list of {', '.join(RESETS)}", field="neuron.reset")
    return tuple(dict.fromkeys(values))


def known() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(PACKAGE).iterdir()
                  if p.name.endswith(".toml"))


def load(name_or_path: str) -> Profile:
    """A profile by name (``loihi_sim``) or by path to a ``.toml`` file."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise ProfileError(f"profile file {path} not found")
        text, where = path.read_text(), str(path)
    else:
        if name_or_path not in known():
            raise ProfileError(f"unknown profile {name_or_path!r}; known profiles: "
                               f"{', '.join(known())}")
        text = _shipped_text(name_or_path)
        where = name_or_path
    return parse(_toml(text, where), where)


def _toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile {where}: not valid TOML ({exc})") from None


def load_stored(text: str, where: str) -> Profile:
    """The profile stored in an export file. Files written before a table of the backend's
    own section existed (Lava's ``[messages]``) take it from the shipped profile of the same
    name (the values they ran with)."""
    doc = _toml(text, where)
    name, backend = doc.get("name"), doc.get("backend")
    if isinstance(backend, str) and backend != backends.NONE and name in known():
        backends.check_known(backend, where)
        missing = [t for t in backends.get(backend).profile_tables if t not in doc]
        if missing:
            shipped = _toml(_shipped_text(name), name)
            doc.update({t: shipped.get(t) for t in missing})
    return parse(doc, where)


def _shipped_text(name: str) -> str:
    return resources.files(PACKAGE).joinpath(f"{name}.toml").read_text()


def source_text(profile: Profile) -> str:
    """The TOML text a profile was read from (stored in every export)."""
    path = Path(profile.path)
    return path.read_text() if path.is_file() else _shipped_text(profile.name)


def resources_for(profile: Profile) -> Profile | None:
    """The resources profile for the fit check and core estimate of an export: the profile
    itself if it describes resources, else the one its ``resources_profile`` names (a name,
    or a .toml path relative to the profile file), else None."""
    if profile.kind == "resources":
        return profile
    ref = profile.resources_profile
    if ref is None:
        return None
    base = Path(profile.path).parent if Path(profile.path).is_file() else None
    if base is not None and ref.endswith(".toml") and not Path(ref).is_absolute():
        ref = str(base / ref)
    found = load(ref)
    if found.kind != "resources":
        raise ProfileError(f"profile {profile.name}: resources_profile {ref!r} is a "
                           f"{found.kind} profile, not a resources one",
                           field="resources_profile")
    return found


# Decay constants of an integrate-and-fire neuron (no current memory, no leak), the only
# neuron the reference simulator runs: Lava's fixed_pt LIF decays u by (du + 1)/4096 and
# v by dv/4096 (lava/proc/lif/models.py:138-186); its floating_pt LIF by du and dv.
IF_DECAYS = {True: (4095, 0), False: (1.0, 0.0)}


def check_neuron(profile: Profile) -> None:
    """HardwareLimitError (exit 3) unless the profile's neuron is integrate-and-fire."""
    du, dv = IF_DECAYS[profile.quantize]
    for key, value, need in (("du", profile.neuron_du, du), ("dv", profile.neuron_dv, dv)):
        if value != need:
            raise HardwareLimitError(
                f"profile {profile.name}: neuron.{key} = {value}, but snn2hw runs only "
                f"integrate-and-fire neurons (neuron.du = {du}, neuron.dv = {dv})",
                field=f"neuron.{key}", value=value, limit=need)
