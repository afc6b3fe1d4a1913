"""The neuron-kind and encoder registries (snn2hw/snn/neurons, snn2hw/snn/encoders), and the
one definition of the IF dynamics that the float and the fixed-point simulators share.

The expected spike trains are worked out by hand in the comments."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from snn2hw.errors import InputError
from snn2hw.hardware import profiles
from snn2hw.quantize.fixed import FixedIFNeuron
from snn2hw.snn import encoders, neurons, simulate
from snn2hw.snn.encoders import registry as encoder_registry
from snn2hw.snn.neurons import registry as neuron_registry

F64 = torch.float64
# constant input for 10 steps, threshold 1 (float) or 4 << 6 = 256 (fixed, a = 3 -> u = 192):
# reset to zero:    v = .75 1.5* .75 1.5* ...                     (192 384* 192 384* ...)
# by subtraction:   v = .75 1.5*(.5) 1.25*(.25) 1.0 1.75*(.75) 1.5*(.5) 1.25*(.25) 1.0 1.75*
#                   (192 384*(128) 320*(64) 256 448*(192) ...; 256 > 256 is false)
HAND = {"zero": [0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
        "subtract": [0, 1, 1, 0, 1, 1, 1, 0, 1, 1]}


def run(neuron, current: torch.Tensor, idle: int = 0) -> list[int]:
    out = torch.empty_like(current, dtype=F64)
    state = neuron.initial(current.shape[1:], "cpu", F64)
    neuron.integrate(current, state, out, idle)
    return out.reshape(-1).int().tolist()


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_float_and_fixed_share_the_if_dynamics(reset):
    float_spikes = run(neurons.float_neuron(1.0, reset), torch.full((10, 1), 0.75, dtype=F64))
    fixed = FixedIFNeuron(4, None, (1,), 24, 6, "cpu", reset=reset)
    fixed_spikes = run(fixed, torch.full((10, 1), 3.0, dtype=F64))
    assert float_spikes == HAND[reset]
    assert fixed_spikes == HAND[reset]
    assert fixed.reset == reset and fixed.threshold == 256.0


def test_idle_steps_neither_integrate_nor_fire():
    # the first 3 steps are skipped; from step 3 on the reset-to-zero pattern starts afresh
    spikes = run(neurons.float_neuron(1.0, "zero"), torch.full((7, 1), 0.75, dtype=F64), 3)
    assert spikes == [0, 0, 0, 0, 1, 0, 1]


def test_fixed_arithmetic_keeps_lava_clip_and_bias():
    # threshold 1 << 6 = 64, bias 100 each step, 8-bit state: v_max = 127.
    # v = 100* -> 0, 100* -> 0, ... : fires every step; with a = 1 (u = 64) v = 164 -> 127
    # (clipped, counted) fires -> 0 again
    neuron = FixedIFNeuron(1, np.array([100.0]), (1,), 8, 6, "cpu")
    assert run(neuron, torch.zeros((3, 1), dtype=F64)) == [1, 1, 1]
    assert neuron.saturated == 0
    assert run(neuron, torch.ones((2, 1), dtype=F64)) == [1, 1]
    assert neuron.saturated == 2


def test_unknown_neuron_kind_is_one_line_listing_the_known_ones():
    with pytest.raises(InputError) as err:
        neurons.get("soft")
    assert str(err.value) == "unknown reset mode 'soft'; known: zero, subtract"
    with pytest.raises(InputError, match="known: zero, subtract"):
        neurons.float_neuron(1.0, "soft")
    with pytest.raises(InputError, match="known: zero, subtract"):
        FixedIFNeuron(4, None, (1,), 24, 6, "cpu", reset="soft")
    assert profiles.RESETS == neurons.names() == ("zero", "subtract")


def test_unknown_encoder_is_one_line_listing_the_known_ones():
    with pytest.raises(InputError) as err:
        encoders.make_encoder("rank-order", np.zeros((1, 2), np.float32), input_scale=1.0)
    assert str(err.value) == "unknown input coding 'rank-order'; known: poisson, direct"


def test_duplicate_names_are_refused(monkeypatch):
    monkeypatch.setattr(neuron_registry, "_KINDS", dict(neuron_registry._KINDS))
    monkeypatch.setattr(encoder_registry, "_ENCODERS", dict(encoder_registry._ENCODERS))
    with pytest.raises(ValueError, match="registered twice"):
        neurons.register("zero")(type("Again", (neurons.NeuronKind,), {}))
    with pytest.raises(ValueError, match="registered twice"):
        encoders.register("poisson")(lambda x, settings: None)


def test_a_new_kind_is_one_class_and_a_registration(monkeypatch):
    """ARCHITECTURE.md's example: reset by subtraction with v bounded below at -threshold
    (sinabs' min_v_mem), in both arithmetics from the one definition."""
    monkeypatch.setattr(neuron_registry, "_KINDS", dict(neuron_registry._KINDS))

    @neurons.register("subtract-floor")
    class SubtractFloor(neurons.NeuronKind):
        def reset(self, v, fired, threshold, scratch):
            v.sub_(scratch.copy_(fired), alpha=threshold)
            v.clamp_(min=-threshold)

    # threshold 1, currents -3, .75, .75, .75: v = -3 -> clamped to -1; -.25; .5; 1.25* (.25)
    # (fixed: threshold 4 << 6 = 256, a = -12, 3, 3, 3: -768 -> -256; -64; 128; 320*)
    current = torch.tensor([[-3.0], [0.75], [0.75], [0.75]], dtype=F64)
    assert run(neurons.float_neuron(1.0, "subtract-floor"), current) == [0, 0, 0, 1]
    fixed = FixedIFNeuron(4, None, (1,), 24, 6, "cpu", reset="subtract-floor")
    assert run(fixed, current * 4) == [0, 0, 0, 1]
    # without the floor, v = -3 stays and the neuron is silent for all four steps
    assert run(neurons.float_neuron(1.0, "subtract"), current) == [0, 0, 0, 0]


def test_a_new_encoder_is_one_class_and_a_registration(monkeypatch):
    """ARCHITECTURE.md's example: a deterministic rate code (pixel i spikes at step t when
    floor((t + 1) p) > floor(t p), p = |x| / input_scale), run by the simulator."""
    from snn2hw.snn.encoders import EncoderSettings

    monkeypatch.setattr(encoder_registry, "_ENCODERS", dict(encoder_registry._ENCODERS))

    @encoders.register("regular")
    class RegularEncoder:
        constant = False

        def __init__(self, x, settings: EncoderSettings) -> None:
            self.x = np.asarray(x, dtype=np.float32)
            self.shape = tuple(self.x.shape[1:])
            self.prob = np.minimum(np.abs(self.x) / settings.input_scale, 1.0)

        def __len__(self):
            return len(self.x)

        def reset(self):
            pass

        def signs(self, start, stop):
            return np.sign(self.x[start:stop]).astype(np.int8)

        def chunk(self, start, stop, t0, t1):
            t = np.arange(t0, t1, dtype=np.float64).reshape(1, -1, *[1] * len(self.shape))
            p = self.prob[start:stop, None].astype(np.float64)
            fired = np.floor((t + 1) * p) > np.floor(t * p)
            return (fired * self.signs(start, stop)[:, None]).astype(np.int8)

        def full(self, start, stop, timesteps):
            return self.chunk(start, stop, 0, timesteps)

    enc = encoders.make_encoder("regular", np.array([[0.5, -0.25]], np.float32),
                                input_scale=1.0)
    # p = 0.5: steps 1, 3, 5, 7; p = 0.25 (negative): steps 3, 7
    assert enc.full(0, 1, 8)[0].T.tolist() == [[0, 1, 0, 1, 0, 1, 0, 1],
                                               [0, 0, 0, -1, 0, 0, 0, -1]]
    assert "regular" in encoders.names()
    # through the simulator: one identity synapse (lag 1) into threshold 0.5, reset to zero:
    # each positive input spike at t makes a spike at t + 1 (steps 2, 4, 6 within 8 steps)
    layer = simulate.PreparedLayer("out", (2,), [simulate.Synapse("in", 1, lambda x: x)], None,
                                   neurons.float_neuron(0.5), is_output=True)
    prep = simulate.Prepared("in", (2,), [layer], torch.device("cpu"), F64)
    res = simulate.simulate(prep, enc, 8, record=["out"])
    assert res.counts[8].tolist() == [[3, 0]]
    assert res.records["out"][0, :, 0].tolist() == [0, 0, 1, 0, 1, 0, 1, 0]
