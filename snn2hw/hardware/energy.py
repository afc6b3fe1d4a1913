"""Energy per inference estimated from the figures of a profile's ``[energy]`` table
(figures and their source live in the profile file, e.g. ``hw_profiles/loihi2.toml``).

For one inference of T steps::

    E = SOPs * synaptic_op_pj
        + spiking neuron-steps * (neuron_update_active_pj + spike_pj)
        + silent neuron-steps * neuron_update_inactive_pj

SOPs are the synaptic operations delivered within the window (:mod:`snn2hw.steps.activity`);
neuron-steps are the spiking layers' neurons times the steps they are updated; a neuron-step
counts as active when the neuron spikes in it. Static power is not included. An execute
profile without an ``[energy]`` table uses the one of its ``resources_profile``.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass

from ..errors import ProfileError
from . import profiles
from .profile_fields import get, str_field

FIELDS = ("synaptic_op_pj", "neuron_update_active_pj", "neuron_update_inactive_pj",
          "spike_pj")


@dataclass(frozen=True)
class EnergyModel:
    profile: str                       # the profile whose [energy] table this is
    chip: str
    synaptic_op_pj: float
    neuron_update_active_pj: float
    neuron_update_inactive_pj: float
    spike_pj: float
    source: str

    def picojoules(self, sops: float, neuron_steps: float, spikes: float) -> float:
        """Energy (pJ) of ``sops`` synaptic operations and ``neuron_steps`` neuron updates
        of which ``spikes`` fired."""
        return (sops * self.synaptic_op_pj
                + spikes * (self.neuron_update_active_pj + self.spike_pj)
                + (neuron_steps - spikes) * self.neuron_update_inactive_pj)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _number(doc: dict, dotted: str, where: str) -> float:
    value = get(doc, dotted, where)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ProfileError(f"profile {where}: field '{dotted}' must be a number >= 0, got "
                           f"{value!r}", field=dotted)
    return float(value)


def parse(doc: dict, where: str) -> EnergyModel | None:
    """The ``[energy]`` table of a profile document, or None if it has none."""
    if "energy" not in doc:
        return None
    values = {key: _number(doc, f"energy.{key}", where) for key in FIELDS}
    return EnergyModel(str(doc.get("name", where)), str_field(doc, "energy.chip", where),
                       **values, source=str_field(doc, "energy.source", where))


def energy_model(profile_name: str) -> EnergyModel:
    """The energy figures of a profile (a name or .toml path), or of its resources profile;
    ProfileError (exit 2) if neither has an ``[energy]`` table."""
    profile = profiles.load(profile_name)
    for candidate in (profile, profiles.resources_for(profile)):
        if candidate is None:
            continue
        model = parse(tomllib.loads(profiles.source_text(candidate)), candidate.path)
        if model is not None:
            return model
    raise ProfileError(f"profile {profile.name} has no [energy] table (and neither has its "
                       "resources profile): no figures to estimate energy from",
                       field="energy")
