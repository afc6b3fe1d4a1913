"""The pure logic of benchmarks/low_latency.py: the validation split, the candidates, the
ablation rows and the choice rule (expected values written out by hand)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import low_latency_plan as plan  # noqa: E402

FAST = {"coding": "direct", "v_init": 0.5, "per_channel": True, "bias_calibration": True,
        "readout": "membrane", "window": "pipelined", "reset": "subtract",
        "percentile": 99.9}


def test_validation_split_is_disjoint_from_calibration():
    cal, val = plan.split_training(1347, 128, 200)
    assert list(cal) == list(range(0, 128))
    assert list(val) == list(range(1147, 1347))
    assert not set(cal) & set(val)


def test_validation_split_refuses_overlap():
    plan.split_training(10, 4, 6)   # exactly fits
    with pytest.raises(ValueError, match="disjointly"):
        plan.split_training(10, 5, 6)
    with pytest.raises(ValueError):
        plan.split_training(10, 0, 3)


def test_validation_comes_from_training_not_test():
    # The runs take validation images from x_train by these indices; test images come from
    # x_test, another array: a disjointness by construction the split must keep (no index
    # beyond the training split).
    _, val = plan.split_training(60000, 256, 1000)
    assert max(val) == 59999 and min(val) == 59000


def test_ablation_is_fast_minus_one_option():
    rows = dict(plan.ablation(FAST))
    expected_paper = {"coding": "poisson", "v_init": 0.0, "per_channel": False,
                      "bias_calibration": False, "readout": "spikes", "window": "fill",
                      "reset": "zero", "percentile": 100.0}
    assert len(rows) == 8
    for key, paper_value in expected_paper.items():
        row = rows[f"fast - {key}"]
        assert row[key] == paper_value
        assert {k: v for k, v in row.items() if k != key} == \
               {k: v for k, v in FAST.items() if k != key}


def test_ablation_skips_options_fast_does_not_use():
    fast = dict(FAST, per_channel=False, bias_calibration=False)
    labels = [label for label, _ in plan.ablation(fast)]
    assert labels == ["fast - coding", "fast - v_init", "fast - readout", "fast - window",
                      "fast - reset", "fast - percentile", "fast + per_channel",
                      "fast + bias_calibration"]
    rows = dict(plan.ablation(fast))
    assert rows["fast + per_channel"] == dict(fast, per_channel=True)
    assert rows["fast + bias_calibration"] == dict(fast, bias_calibration=True)
    spikes = dict(FAST, readout="spikes")
    assert dict(plan.ablation(spikes))["fast + readout"] == FAST


def test_candidates_are_fast_the_ablation_and_alternatives():
    cands = plan.candidates(FAST)
    assert cands[0] == ("fast", FAST)
    # fast's own percentile (99.9) is not repeated among the alternatives
    assert len(cands) == 1 + 8 + 3
    assert cands[-3:] == [("fast, percentile 99", dict(FAST, percentile=99.0)),
                          ("fast, percentile 99.5", dict(FAST, percentile=99.5)),
                          ("fast, percentile 99.99", dict(FAST, percentile=99.99))]


def test_choice_takes_the_best_mean_then_next_t_then_the_incumbent():
    scores = {"fast": {"max-act": {32: 0.90, 64: 0.95}, "spike-norm": {32: 0.80, 64: 0.95}},
              "fast - v_init": {"max-act": {32: 0.86, 64: 0.97},
                                "spike-norm": {32: 0.84, 64: 0.90}},
              "fast - coding": {"max-act": {32: 0.70, 64: 0.99},
                                "spike-norm": {32: 0.70, 64: 0.99}}}
    # means at 32: fast 0.85, v_init 0.85, coding 0.70; at 64: fast 0.95, v_init 0.935
    assert plan.choose(scores, [32, 64]) == "fast"
    scores["fast - v_init"]["spike-norm"][64] = 0.93   # mean at 64: 0.95, a tie
    assert plan.choose(scores, [32, 64]) == "fast"     # the incumbent keeps a full tie
    scores["fast - v_init"]["max-act"][32] = 0.87       # mean at 32: 0.855
    assert plan.choose(scores, [32, 64]) == "fast - v_init"


def test_changed_and_convention():
    assert plan.changed(dict(FAST, percentile=99.99), FAST) == {"percentile": 99.99}
    assert plan.changed(FAST, FAST) == {}
    assert plan.convention(FAST).startswith("pipelined")
    assert plan.convention({}).startswith("fill")


def test_candidates_can_be_restricted_by_label():
    assert plan.candidates(FAST, ["fast - reset", "fast"]) == [
        ("fast", FAST), ("fast - reset", dict(FAST, reset="zero"))]
    with pytest.raises(ValueError, match="no candidate"):
        plan.candidates(FAST, ["fast - nothing"])


def test_a_setting_takes_the_type_of_the_papers_value():
    assert plan.setting("per_channel=false") == ("per_channel", False)
    assert plan.setting("bias_calibration=True") == ("bias_calibration", True)
    assert plan.setting("percentile=99.5") == ("percentile", 99.5)
    assert plan.setting(" coding = poisson ") == ("coding", "poisson")
    assert plan.setting("rounding_bias=true") == ("rounding_bias", True)  # export only
    for bad in ("per_channel=no", "threshold=3", "percentile", "rounding_bias=1"):
        with pytest.raises(ValueError):
            plan.setting(bad)


def test_mcnemar_exact_two_sided():
    # 5 vs 1 of 6 discordant: 2 * (C(6,0) + C(6,1)) / 2^6 = 14 / 64
    assert plan.mcnemar_p(5, 1) == pytest.approx(14 / 64)
    assert plan.mcnemar_p(1, 5) == plan.mcnemar_p(5, 1)
    # 2 vs 6 of 8: 2 * (1 + 8 + 28) / 256
    assert plan.mcnemar_p(2, 6) == pytest.approx(74 / 256)
    assert plan.mcnemar_p(0, 0) == 1.0 and plan.mcnemar_p(3, 3) == 1.0
    # 0 vs 10: 2 / 1024
    assert plan.mcnemar_p(0, 10) == pytest.approx(2 / 1024)


def _row(settings, method, a32, a64):
    return {"settings": settings, "method": method, "accuracy": {"32": a32, "64": a64}}


def test_choice_across_networks_is_the_mean_of_per_network_means():
    a, b = dict(FAST), dict(FAST, readout="spikes")
    runs = [("vgg", [_row(a, "max-act", 0.9, 0.9), _row(a, "spike-norm", 0.8, 0.9),
                     _row(b, "max-act", 0.9, 0.9), _row(b, "spike-norm", 0.7, 0.9)]),
            ("res", [_row(a, "max-act", 0.5, 0.5), _row(a, "spike-norm", 0.5, 0.5),
                     _row(b, "max-act", 0.6, 0.5), _row(b, "spike-norm", 0.6, 0.5)]),
            # a second run of the same settings on one network, and one seen nowhere else
            ("res", [_row(b, "max-act", 0.6, 0.5), _row(dict(FAST, v_init=0.0), "max-act",
                                                         1.0, 1.0)])]
    scores = plan.scores_across(runs, [32, 64])
    assert len(scores) == 2   # v_init 0 was not measured on every network and method
    ranked = plan.rank_across(scores, [32, 64], a)
    # a: (0.85 + 0.5) / 2 = 0.675; b: (0.8 + 0.6) / 2 = 0.7
    assert [plan.describe(dict(k), a) for k, _ in ranked] == ["readout spikes", "the preset"]
    assert ranked[0][1][0] == pytest.approx(0.7) and ranked[1][1][0] == pytest.approx(0.675)
    # a tie at both T goes to the incumbent
    tie = [("vgg", [_row(a, "max-act", 0.9, 0.9), _row(b, "max-act", 0.9, 0.9)])]
    assert plan.rank_across(plan.scores_across(tie, [32, 64]), [32, 64], b)[0][0] == \
        tuple(sorted(b.items()))
    with pytest.raises(ValueError, match="disagree"):
        plan.scores_across([("vgg", [_row(a, "max-act", 0.9, 0.9)]),
                            ("vgg", [_row(a, "max-act", 0.8, 0.9)])], [32, 64])
