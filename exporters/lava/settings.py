"""The Lava section of a hardware profile: ``lava_tag`` (which of Lava's process models run
the graph) and ``[messages]`` (the synapses' message widths). Parsed by the Lava backend
when a profile naming ``backend = "lava"`` loads (:mod:`snn2hw.backends`). The profile's
fixed-point rules (``[weights]``, ``[threshold]``, ...) and neuron decays (``[neuron]``) are
the core's, shared with the quantiser and the reference simulator; what Lava can run of
them is checked by :func:`.limits.check_profile`."""
from __future__ import annotations

from dataclasses import dataclass

from snn2hw.errors import ProfileError
from snn2hw.hardware.profile_fields import int_field, str_field

TAGS = ("fixed_pt", "floating_pt")
TABLES = ("messages",)   # top-level tables of the profile that belong to Lava


@dataclass(frozen=True)
class Messages:
    """Message widths of the synapses of the Lava graph (``num_message_bits``; 0 = binary
    spikes, > 0 = graded values of that many bits)."""
    input_bits: int    # synapses fed by the signed (-1/0/+1) input spikes
    hidden_bits: int   # synapses fed by LIF layers (0/1 spikes)
    relay_bits: int    # identity relays that delay a synapse's sums (lag > 1)


@dataclass(frozen=True)
class LavaSettings:
    tag: str            # "fixed_pt" (bit-accurate models) or "floating_pt"
    messages: Messages


def parse_profile(doc: dict, where: str, quantize: bool) -> LavaSettings:
    """The Lava settings of a profile document; ProfileError naming a wrong field."""
    tag = str_field(doc, "lava_tag", where, TAGS)
    if (tag == "fixed_pt") != quantize:
        raise ProfileError(f"profile {where}: lava_tag {tag!r} does not match "
                           f"quantize = {str(quantize).lower()}", field="lava_tag")
    messages = Messages(*(int_field(doc, f"messages.{key}", where, 0, 64)
                          for key in ("input_bits", "hidden_bits", "relay_bits")))
    return LavaSettings(tag, messages)
