"""exporters/lava/limits.py states what Lava's models can run exactly. Each number is read
here from the installed lava-nc source text (without importing Lava), so an upgrade of
Lava that changes one fails this test instead of silently changing what is refused."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from snn2hw.exporters.lava.limits import LAVA_FIXED, MESSAGE_BITS_MAX


def lava_source(relative: str) -> str:
    spec = importlib.util.find_spec("lava")
    assert spec is not None and spec.submodule_search_locations
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.is_file():
            return path.read_text()
    pytest.fail(f"lava/{relative} not found")


def one(pattern: str, text: str) -> set[int]:
    found = {int(v) for v in re.findall(pattern, text)}
    assert found, pattern
    return found


def test_lif_register_widths_and_shifts():
    lif = lava_source("proc/lif/models.py")
    assert one(r"self\.uv_bitwidth = (\d+)", lif) == {LAVA_FIXED.state_bits}
    assert one(r"self\.vth_shift = (\d+)", lif) == {LAVA_FIXED.threshold_shift}
    assert one(r"self\.act_shift = (\d+)", lif) == {LAVA_FIXED.current_shift}
    assert one(r"vth: int = LavaPyType\(int, np\.int32, precision=(\d+)\)", lif) == {
        LAVA_FIXED.threshold_bits}
    assert one(r"bias_mant: np\.ndarray = LavaPyType\(np\.ndarray, np\.int16, "
               r"precision=(\d+)\)", lif) == {LAVA_FIXED.bias_mantissa_bits}
    exp_bits = one(r"bias_exp: np\.ndarray = LavaPyType\(np\.ndarray, np\.int16, "
                   r"precision=(\d+)\)", lif)
    assert exp_bits == {3} and LAVA_FIXED.bias_exp_max == (1 << 3) - 1


def test_sparse_weight_and_message_widths():
    sparse = lava_source("proc/sparse/models.py")
    # clip_weights(..., num_bits=8): 8 magnitude bits plus the sign in mixed mode.
    assert one(r"clip_weights\(self\.weights, sign_mode, num_bits=(\d+)\)", sparse) == {
        LAVA_FIXED.weight_bits - 1}
    assert one(r"num_message_bits: np\.ndarray = LavaPyType\(np\.ndarray, int, "
               r"precision=(\d+)\)", sparse) == {5}
    assert MESSAGE_BITS_MAX == (1 << 5) - 1
    weights = lava_source("utils/weightutils.py")
    assert "num_truncate_bits = max_num_weight_bits - num_weight_bits + mixed_flag" in weights


def lava_sparse_sums(weights, spikes, num_weight_bits: int, weight_exp: int):
    """Lava's fixed-point Sparse on mixed-sign weights, transcribed from its source:
    clip to [-2**8, 2**8 - 1] (weightutils.clip_weights, num_bits=8), drop
    8 - num_weight_bits + 1 low bits (truncate_weights), sum, shift by weight_exp
    (sparse/models.py run_spk)."""
    import numpy as np

    w = np.clip(weights.astype(np.int32), -(2 ** 8), 2 ** 8 - 1)
    drop = 8 - num_weight_bits + 1
    w = (w >> drop) << drop
    acc = w @ spikes
    return acc << weight_exp if weight_exp > 0 else acc >> -weight_exp


@pytest.mark.parametrize("bits", range(2, 10))
def test_weight_representation_keeps_every_integer_weight_exact(bits):
    import numpy as np

    from snn2hw.hardware import profiles
    from snn2hw.exporters.lava.limits import weight_representation

    base = profiles.load("loihi_sim")
    fixed = base.fixed.__class__(**{**base.fixed.__dict__, "weight_bits": bits,
                                    "weight_min": -(1 << (bits - 1)),
                                    "weight_max": (1 << (bits - 1)) - 1})
    profile = base.__class__(**{**base.__dict__, "fixed": fixed})
    rng = np.random.default_rng(bits)
    w = rng.integers(fixed.weight_min, fixed.weight_max + 1, size=(7, 40))
    s = rng.integers(-1, 2, size=40)
    num_bits, shift = weight_representation(profile)
    assert num_bits == bits
    got = lava_sparse_sums(w * (1 << shift), s, num_bits, -shift)
    assert np.array_equal(got, w @ s)
    if bits < 9:   # the shift is needed: without it Sparse drops low bits
        assert not np.array_equal(lava_sparse_sums(w, s, num_bits, 0), w @ s)
