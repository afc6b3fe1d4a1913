"""Hardware profiles: the shipped TOML files load, and a broken profile fails with an error
naming the field."""
from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from snn2hw.hardware import profiles
from snn2hw.errors import ProfileError

SHIPPED = ("loihi_sim", "loihi_float", "loihi2")


def shipped_text(name: str) -> str:
    return resources.files("snn2hw.hw_profiles").joinpath(f"{name}.toml").read_text()


def sim_doc() -> dict:
    return tomllib.loads(shipped_text("loihi_sim"))


def test_known_lists_the_three_shipped_profiles():
    assert set(SHIPPED) <= set(profiles.known())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profile_loads_with_its_own_name(name):
    p = profiles.load(name)
    assert p.name == name
    assert p.quantize == (name != "loihi_float")
    assert (p.fixed is not None) == p.quantize


def test_loihi_sim_numbers_are_lavas_bit_accurate_lif():
    fx = profiles.load("loihi_sim").fixed
    assert (fx.weight_min, fx.weight_max, fx.weight_bits) == (-256, 255, 9)
    assert (fx.threshold_max, fx.threshold_shift) == ((1 << 17) - 1, 6)
    assert (fx.bias_mant_max, fx.bias_exp_min, fx.bias_exp_max) == (4095, 0, 7)
    assert (fx.v_max, fx.current_shift) == ((1 << 23) - 1, 6)


def test_profile_loads_from_a_toml_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(shipped_text("loihi_sim").replace('name = "loihi_sim"', 'name = "mine"'))
    p = profiles.load(str(path))
    assert p.name == "mine" and p.fixed == profiles.load("loihi_sim").fixed


def test_missing_field_is_named():
    doc = sim_doc()
    del doc["threshold"]["bits"]
    with pytest.raises(ProfileError, match=r"missing field 'threshold\.bits'") as exc:
        profiles.parse(doc, "broken")
    assert exc.value.facts["field"] == "threshold.bits"


def test_missing_field_in_a_file_is_named(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(shipped_text("loihi_sim").replace("bits = 17", "# no bits"))
    with pytest.raises(ProfileError, match=r"threshold\.bits") as exc:
        profiles.load(str(path))
    assert "broken.toml" in exc.value.message


def test_wrong_type_is_named():
    doc = sim_doc()
    doc["weights"]["max"] = "255"
    with pytest.raises(ProfileError, match=r"'weights\.max' must be an integer") as exc:
        profiles.parse(doc, "broken")
    assert exc.value.facts["field"] == "weights.max"


def test_bool_is_not_an_integer_field():
    doc = sim_doc()
    doc["state"]["bits"] = True
    with pytest.raises(ProfileError, match=r"state\.bits"):
        profiles.parse(doc, "broken")


def test_out_of_range_names_field_and_range():
    doc = sim_doc()
    doc["state"]["bits"] = 64
    with pytest.raises(ProfileError) as exc:
        profiles.parse(doc, "broken")
    msg = exc.value.message
    assert "state.bits" in msg and "64" in msg and "[8, 32]" in msg
    assert exc.value.facts == {"field": "state.bits", "value": 64}


def test_unknown_profile_lists_known_ones():
    with pytest.raises(ProfileError) as exc:
        profiles.load("nosuch")
    msg = exc.value.message
    assert "nosuch" in msg and all(name in msg for name in SHIPPED)


def test_missing_profile_file_is_an_error(tmp_path):
    with pytest.raises(ProfileError, match="not found"):
        profiles.load(str(tmp_path / "absent.toml"))


def test_invalid_toml_is_an_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("name = \n")
    with pytest.raises(ProfileError, match="not valid TOML"):
        profiles.load(str(path))


def test_lava_tag_must_match_quantize():
    doc = sim_doc()
    doc["lava_tag"] = "floating_pt"
    with pytest.raises(ProfileError, match="lava_tag") as exc:
        profiles.parse(doc, "broken")
    assert exc.value.facts["field"] == "lava_tag"


def test_float_profile_with_fixed_pt_tag_is_an_error():
    doc = tomllib.loads(shipped_text("loihi_float"))
    doc["lava_tag"] = "fixed_pt"
    with pytest.raises(ProfileError, match="lava_tag"):
        profiles.parse(doc, "broken")


def test_threshold_shift_must_equal_current_shift():
    # The quantiser (and Lava, which hard-codes both shifts) needs threshold and current
    # in the same v units.
    doc = sim_doc()
    doc["threshold"]["shift"] = 4
    with pytest.raises(ProfileError, match=r"threshold\.shift") as exc:
        profiles.parse(doc, "broken")
    assert exc.value.facts["field"] == "threshold.shift"


def test_weight_range_must_fit_weight_bits():
    doc = sim_doc()
    doc["weights"]["bits"] = 8
    with pytest.raises(ProfileError, match=r"weights\.bits"):
        profiles.parse(doc, "broken")


def test_loihi2_has_resources_and_cites_sources():
    p = profiles.load("loihi2")
    assert p.kind == "resources" and p.backend == "none"
    assert set(p.resources) == set(profiles._RESOURCE_FIELDS)
    assert all(isinstance(v, int) and v > 0 for v in p.resources.values())
    assert p.resources["neurons_per_core"] == 8192
    assert p.resources["synaptic_memory_bytes_per_core"] == 131072
    text = shipped_text("loihi2")
    assert "Davies" in text and "Technology Brief" in text


def test_resources_profile_missing_resource_is_named():
    doc = tomllib.loads(shipped_text("loihi2"))
    del doc["resources"]["fan_in_per_core"]
    with pytest.raises(ProfileError, match=r"resources\.fan_in_per_core"):
        profiles.parse(doc, "broken")


def test_neuron_reset_is_one_mode_or_a_list():
    doc = sim_doc()
    assert profiles.parse(doc, "x").resets == ("zero", "subtract")
    doc["neuron"]["reset"] = "zero"
    assert profiles.parse(doc, "x").resets == ("zero",)
    for bad in ("soft", [], ["zero", "soft"], 3):
        doc["neuron"]["reset"] = bad
        with pytest.raises(ProfileError, match=r"'neuron\.reset' = .*expected one or a list "
                                               r"of zero, subtract") as exc:
            profiles.parse(doc, "broken")
        assert exc.value.facts["field"] == "neuron.reset"
