"""The object registered as the ``"lava"`` backend (:class:`snn2hw.backends.Backend`).

It imports only the profile-section parser at the top; the checks, graph and watchdog (which
import :mod:`snn2hw.hardware.profiles`) are imported inside the methods, so that loading the backend
from the registry while a profile is being parsed imports no module that is still loading.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import settings

if TYPE_CHECKING:
    from snn2hw.hardware.profiles import Profile
    from snn2hw.quantize.qnet import QuantizedNetwork

    from .watchdog import LavaResult


class LavaBackend:
    """Lava's CPU backend: a profile with ``backend = "lava"``, its ``lava_tag`` and
    ``[messages]`` (:mod:`.settings`); networks run in a child process under a timeout
    (:mod:`.watchdog`)."""

    name = "lava"
    profile_tables = settings.TABLES

    def parse_profile(self, doc: dict, where: str, quantize: bool) -> settings.LavaSettings:
        return settings.parse_profile(doc, where, quantize)

    def describe(self, profile: Profile) -> dict[str, str]:
        msg = profile.settings.messages
        return {"lava tag": profile.settings.tag,
                "messages": f"{msg.input_bits}/{msg.hidden_bits}/{msg.relay_bits}"}

    def check_profile(self, profile: Profile) -> None:
        from .limits import check_profile

        check_profile(profile)

    def check(self, qnet: QuantizedNetwork, profile: Profile) -> None:
        from .checks import check_network

        check_network(qnet, profile=profile)

    def run(self, qnet: QuantizedNetwork, spikes: np.ndarray, timesteps: int, *,
            timeout: float | None, profile: Profile) -> LavaResult:
        from .watchdog import run_lava

        return run_lava(qnet, spikes, timesteps, timeout=timeout, profile=profile)


BACKEND = LavaBackend()
