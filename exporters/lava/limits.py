"""What Lava's models (lava-nc 0.10.0) can run exactly, and the check of a hardware profile
against it, before any Lava work.

The profile describes the target; the numbers below describe Lava's CPU models, each with
the line of the installed source that fixes it. A profile field Lava cannot honour is
refused with a :class:`HardwareLimitError` (exit 3) naming the field and the limit, never
run as something else. Imports no Lava.
"""
from __future__ import annotations

from dataclasses import dataclass

from snn2hw.errors import HardwareLimitError
from snn2hw.hardware.profiles import Profile, check_neuron


@dataclass(frozen=True)
class LavaFixedPoint:
    """Register widths of Lava's bit-accurate (``fixed_pt``) LIF and Sparse models."""
    state_bits: int = 24          # uv_bitwidth: u wraps, v clips (lif/models.py:101)
    threshold_shift: int = 6      # vth_shift (lif/models.py:107)
    current_shift: int = 6        # act_shift: a_in << 6 (lif/models.py:108)
    threshold_bits: int = 17      # vth precision=17 (lif/models.py:262, 406)
    bias_mantissa_bits: int = 13  # bias_mant precision=13 (lif/models.py:84)
    bias_exp_max: int = 7         # bias_exp precision=3, unsigned (lif/models.py:85)
    # Sparse clips to 8 bits plus the sign in mixed-sign mode, [-256, 255]
    # (sparse/models.py:87, utils/weightutils.py:283-284), then drops
    # 8 - num_weight_bits + 1 low bits (weightutils.py:236).
    weight_bits: int = 9


LAVA_FIXED = LavaFixedPoint()
MESSAGE_BITS_MAX = 31   # num_message_bits precision=5 (sparse/models.py:35, 70, 296, 327)
SIGNED_SPIKE_BITS = 2   # a signed -1/0/+1 spike needs a graded message of 2 bits


def _refuse(profile: Profile, field: str, value, limit: str) -> HardwareLimitError:
    return HardwareLimitError(f"profile {profile.name}: {field} = {value}, but {limit}",
                              field=field, value=value)


def _fixed_rules(profile: Profile) -> list[tuple[str, int, bool, str]]:
    fx, lava = profile.fixed, LAVA_FIXED
    half = 1 << (fx.weight_bits - 1)
    src = "(lava/proc/lif/models.py)"
    return [
        ("weights.bits", fx.weight_bits, fx.weight_bits <= lava.weight_bits,
         f"Lava's Sparse holds at most {lava.weight_bits}-bit mixed-sign weights "
         "(lava/utils/weightutils.py)"),
        ("weights.min", fx.weight_min, fx.weight_min >= -half,
         f"{fx.weight_bits}-bit mixed-sign weights start at {-half} in Lava's Sparse"),
        ("weights.max", fx.weight_max, fx.weight_max <= half - 1,
         f"{fx.weight_bits}-bit mixed-sign weights end at {half - 1} in Lava's Sparse"),
        ("threshold.bits", fx.threshold_bits, fx.threshold_bits <= lava.threshold_bits,
         f"Lava's vth has {lava.threshold_bits} bits {src}"),
        ("threshold.shift", fx.threshold_shift, fx.threshold_shift == lava.threshold_shift,
         f"Lava shifts vth by {lava.threshold_shift} bits, no other value {src}"),
        ("state.bits", fx.state_bits, fx.state_bits == lava.state_bits,
         f"Lava's u and v have {lava.state_bits} bits, no other width {src}"),
        ("state.current_shift", fx.current_shift, fx.current_shift == lava.current_shift,
         f"Lava shifts a_in by {lava.current_shift} bits, no other value {src}"),
        ("bias.mantissa_bits", fx.bias_mantissa_bits,
         fx.bias_mantissa_bits <= lava.bias_mantissa_bits,
         f"Lava's bias_mant has {lava.bias_mantissa_bits} bits {src}"),
        ("bias.exp_max", fx.bias_exp_max, fx.bias_exp_max <= lava.bias_exp_max,
         f"Lava's bias_exp is at most {lava.bias_exp_max} {src}"),
    ]


def _message_rules(profile: Profile) -> list[tuple[str, int, bool, str]]:
    msg = profile.settings.messages
    top = f"Lava's num_message_bits is at most {MESSAGE_BITS_MAX} (lava/proc/sparse/models.py)"
    # A relay carries one synapse's sum; the quantiser keeps every such sum below
    # 2**(state.bits - 1 - current_shift), i.e. within state.bits - current_shift signed bits.
    relay_min = 1 if profile.fixed is None else (profile.fixed.state_bits
                                                 - profile.fixed.current_shift)
    return [
        ("messages.input_bits", msg.input_bits, msg.input_bits >= SIGNED_SPIKE_BITS,
         f"the signed input spikes (-1/0/+1) need graded messages of at least "
         f"{SIGNED_SPIKE_BITS} bits"),
        ("messages.relay_bits", msg.relay_bits, msg.relay_bits >= relay_min,
         f"delay relays carry synapse sums, which need at least {relay_min} bits"),
    ] + [(f"messages.{key}", getattr(msg, key), getattr(msg, key) <= MESSAGE_BITS_MAX, top)
         for key in ("input_bits", "hidden_bits", "relay_bits")]


def check_profile(profile: Profile) -> None:
    """Raise :class:`HardwareLimitError` unless Lava can run ``profile`` exactly: an
    integrate-and-fire neuron, message widths Lava represents and, for ``fixed_pt``, the
    register widths and shifts of Lava's bit-accurate models."""
    if profile.backend != "lava" or profile.settings is None:
        raise HardwareLimitError(f"profile {profile.name} has no Lava backend")
    check_neuron(profile)
    rules = _message_rules(profile)
    if profile.fixed is not None:
        rules = _fixed_rules(profile) + rules
    for field, value, ok, limit in rules:
        if not ok:
            raise _refuse(profile, field, value, limit)


def weight_representation(profile: Profile) -> tuple[int, int]:
    """(num_weight_bits, shift) with which Lava's Sparse holds the profile's integer weights
    exactly: the weights go in shifted left by ``shift`` = 9 - weights.bits, so that the
    ``shift`` low bits Sparse drops are zero, and ``weight_exp = -shift`` shifts every sum
    back (exact: it is a multiple of 2**shift)."""
    bits = profile.fixed.weight_bits
    return bits, LAVA_FIXED.weight_bits - bits
