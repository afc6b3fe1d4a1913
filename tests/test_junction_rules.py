"""Residual junctions whose branches differ in depth, and the two junction rules
(``per-source``, ``shared``), checked against naive per-step loops written here.

The network: input -> j0 -> r1 -> r2 -> (+ j0) -> j1 -> out. The branch reaches the
junction through two spiking layers, the identity shortcut straight from j0: j1's shortcut
term must be delayed by two steps so that both terms carry spikes caused by the same input
steps.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from snn2hw import calibrate, ir, snn
from snn2hw.calibrate import junction
from snn2hw.snn import simulate
from snn2hw.importer import graph_from_nodes as build

T, SEED = 40, 3


def _weights(seed: int = 11) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"d0": rng.standard_normal((8, 6)) * 0.6, "d1": rng.standard_normal((8, 8)) * 0.5,
            "d2": rng.standard_normal((8, 8)) * 0.5, "d3": rng.standard_normal((8, 8)) * 0.5,
            "out": rng.standard_normal((3, 8)) * 0.5}


def deep_branch_graph(w: dict[str, np.ndarray]) -> ir.Graph:
    return build([ir.Input("input", [], (6,)),
                  ir.Dense("d0", ["input"], weight=w["d0"]), ir.ReLU("j0", ["d0"]),
                  ir.Dense("d1", ["j0"], weight=w["d1"]), ir.ReLU("r1", ["d1"]),
                  ir.Dense("d2", ["r1"], weight=w["d2"]), ir.ReLU("r2", ["d2"]),
                  ir.Dense("d3", ["r2"], weight=w["d3"]),
                  ir.Add("add", ["d3", "j0"]), ir.ReLU("j1", ["add"]),
                  ir.Dense("out", ["j1"], weight=w["out"])])


# Each layer: its terms as (source, weight matrix, delay); the identity is np.eye.
def _terms(w):
    return {"j0": [("input", w["d0"], 0)], "r1": [("j0", w["d1"], 0)],
            "r2": [("r1", w["d2"], 0)], "j1": [("r2", w["d3"], 0), ("j0", np.eye(8), 2)],
            "out": [("j1", w["out"], 0)]}


DEPTH = {"j0": 1, "r1": 2, "r2": 3, "j1": 4, "out": 5}


def _input_spikes(x: np.ndarray, seed: int) -> np.ndarray:
    """The documented calibration stream: default_rng([seed, 0, i]), one step at a time."""
    scale = float(np.abs(x).max())
    s = np.zeros((len(x), T, x.shape[1]))
    for i in range(len(x)):
        u = np.random.default_rng([seed, 0, i]).random((T, x.shape[1]), dtype=np.float32)
        s[i] = (u < np.minimum(np.abs(x[i]) / np.float32(scale), 1)) * np.sign(x[i])
    return s


def _run_layer(terms, spikes, units, threshold, depth):
    """One layer, step by step: current[t] = sum unit(src) * W s_src[t - 1 - delay];
    then IF with reset to zero. Returns (current, spikes)."""
    n = next(iter(spikes.values())).shape[0]
    size = terms[0][1].shape[0]
    current = np.zeros((n, T, size))
    out = np.zeros((n, T, size))
    v = np.zeros((n, size))
    for t in range(T):
        if t >= depth:
            for source, weight, delay in terms:
                if t - 1 - delay >= 0:
                    current[:, t] += units[source] * spikes[source][:, t - 1 - delay] @ weight.T
        if threshold is not None:
            v += current[:, t] / threshold
            out[:, t] = v > 1
            v[v > 1] = 0
    return current, out


def naive_spike_norm(w, x, rule: str) -> tuple[dict[str, float], dict[str, float]]:
    """Algorithm 1, per step, layer after layer in topological order (no rate matching):
    threshold = the largest current. ``shared``: j0 and r2 meet at j1, and r2 is read in
    j0's unit; ``per-source``: each in its own threshold."""
    spikes = {"input": _input_spikes(x, SEED)}
    scales = {"input": float(np.abs(x).max())}
    units = dict(scales)
    for name, terms in _terms(w).items():
        current, _ = _run_layer(terms, spikes, units, None, DEPTH[name])
        scales[name] = units[name] = float(current.max())
        _, spikes[name] = _run_layer(terms, spikes, units, scales[name], DEPTH[name])
        assert 0 < spikes[name].mean() < 0.9, f"{name}: the test net must spike"
    if rule == "shared":
        units["r2"] = units["j0"]
        for name in ("j1", "out"):  # recomputed with r2 read in the shared unit
            terms = _terms(w)[name]
            current, _ = _run_layer(terms, spikes, units, None, DEPTH[name])
            scales[name] = units[name] = float(current.max())
            _, spikes[name] = _run_layer(terms, spikes, units, scales[name], DEPTH[name])
    return scales, units


@pytest.fixture(scope="module")
def setup():
    w = _weights()
    x = np.random.default_rng(12).uniform(-1, 1, (16, 6)).astype(np.float32)
    return w, snn.lower(deep_branch_graph(w)), x


def test_lowering_delays_the_shallow_shortcut_by_the_depth_difference(setup):
    _, net, _ = setup
    j1 = net.layer("j1")
    assert sorted((t.source, t.delay) for t in j1.terms) == [("j0", 2), ("r2", 0)]
    assert {la.name: la.depth for la in net.layers} == DEPTH


def test_simulated_junction_spikes_equal_a_per_step_loop_with_the_delay(setup):
    w, net, x = setup
    scales = {"input": float(np.abs(x).max()), "j0": 2.0, "r1": 1.5, "r2": 1.25,
              "j1": 2.5, "out": 2.0}
    prep = simulate.prepare_float(net, scales, dtype=torch.float64)
    from snn2hw.snn.encoders import make_encoder
    res = simulate.simulate(prep, make_encoder("poisson", x, input_scale=scales["input"],
                                               seed=SEED, stream=0), T,
                            record=["j0", "r2", "j1"])
    spikes = {name: res.records[name].astype(np.float64) for name in ("j0", "r2")}
    units = {"j0": scales["j0"], "r2": scales["r2"]}
    terms = _terms(w)["j1"]
    _, want = _run_layer(terms, spikes, units, scales["j1"], DEPTH["j1"])
    got = res.records["j1"]
    assert 0 < want.mean() < 0.9
    np.testing.assert_array_equal(got, want)
    # the check can fail: without the shortcut's delay the spikes differ
    _, undelayed = _run_layer([terms[0], (*terms[1][:2], 0)], spikes, units, scales["j1"],
                              DEPTH["j1"])
    assert not np.array_equal(got, undelayed)


@pytest.mark.parametrize("rule", ["per-source", "shared"])
def test_spike_norm_on_a_residual_dag_equals_a_naive_per_step_loop(setup, rule):
    w, net, x = setup
    cal = calibrate.calibrate("spike-norm", net, x, timesteps=T, seed=SEED, batch_size=5,
                              rate_match=False, junction=rule)
    scales, units = naive_spike_norm(w, x, rule)
    for name, value in scales.items():
        assert cal.scales[name] == pytest.approx(value, rel=1e-5), name
    for name in ("j0", "r1", "r2"):
        assert cal.source_scales[name] == pytest.approx(units[name], rel=1e-5), name
    assert cal.junction == rule
    assert ("junction" in cal.params) == (rule == "shared")


def test_the_two_rules_differ_only_from_the_junction_on(setup):
    _, net, x = setup
    per = calibrate.calibrate("spike-norm", net, x, timesteps=T, seed=SEED, rate_match=False)
    shared = calibrate.calibrate("spike-norm", net, x, timesteps=T, seed=SEED,
                                 rate_match=False, junction="shared")
    assert all(per.scales[n] == shared.scales[n] for n in ("input", "j0", "r1", "r2"))
    assert per.scales["j1"] != pytest.approx(shared.scales["j1"], rel=1e-3)


def test_shared_rule_gives_the_junction_terms_one_gain(setup):
    """Identity shortcut weight 1 beside the branch: both synapses of j1 scale by the same
    gain, so the identity synapse passes a spike as exactly the branch's gain."""
    _, net, x = setup
    for rule, equal in (("shared", True), ("per-source", False)):
        cal = calibrate.calibrate("spike-norm", net, x, timesteps=T, seed=SEED, junction=rule)
        prep = simulate.prepare_float(net, cal.scales, dtype=torch.float64,
                                      source_scales=cal.source_scales)
        j1 = next(la for la in prep.layers if la.name == "j1")
        identity = next(s for s in j1.synapses if s.source == "j0")
        gain = float(identity.apply(torch.ones(1, 8, dtype=torch.float64))[0, 0])
        want = cal.source_scales["r2"] / cal.scales["j1"]
        assert (gain == pytest.approx(want, rel=1e-12)) == equal, rule


def _ann_maxima(w, x):
    a = {"input": x.astype(np.float64)}
    for name, terms in _terms(w).items():
        pre = sum(a[src] @ weight.T for src, weight, _ in terms)
        a[name] = pre if name == "out" else np.maximum(pre, 0)
    return {name: float(v.max()) for name, v in a.items() if name != "input"}


def test_max_act_shared_gives_the_fan_in_layers_their_largest_maximum(setup):
    w, net, x = setup
    top = _ann_maxima(w, x)
    per = calibrate.calibrate("max-act", net, x)
    shared = calibrate.calibrate("max-act", net, x, junction="shared")
    for name, value in top.items():
        assert per.scales[name] == pytest.approx(value, rel=1e-9), name
    group = max(top["j0"], top["r2"])
    assert shared.scales["j0"] == shared.scales["r2"] == pytest.approx(group, rel=1e-9)
    for name in ("r1", "j1", "out"):
        assert shared.scales[name] == per.scales[name], name
    assert shared.params["junction"] == "shared" and "junction" not in per.params


def test_fan_in_groups_merge_overlapping_junctions():
    g = build([ir.Input("input", [], (4,)),
               ir.Dense("d0", ["input"], weight=np.eye(4)), ir.ReLU("a", ["d0"]),
               ir.Dense("d1", ["a"], weight=np.eye(4)), ir.ReLU("b", ["d1"]),
               ir.Add("s1", ["b", "a"]), ir.ReLU("c", ["s1"]),
               ir.Add("s2", ["c", "b"]), ir.ReLU("d", ["s2"])])
    assert junction.fan_in_groups(snn.lower(g)) == [["a", "b", "c"]]


def test_unknown_junction_rule_is_an_input_error(setup):
    from snn2hw.errors import InputError

    _, net, x = setup
    with pytest.raises(InputError, match="junction rule"):
        calibrate.calibrate("max-act", net, x, junction="paper")


class _TinyResNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.stem = torch.nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.branch = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, padding=1, bias=False),
                                          torch.nn.ReLU(),
                                          torch.nn.Conv2d(4, 4, 3, padding=1, bias=False))
        self.head = torch.nn.Sequential(torch.nn.AvgPool2d(4), torch.nn.Flatten(),
                                        torch.nn.Linear(16, 10, bias=False))

    def forward(self, x):
        a = torch.relu(self.stem(x))
        return self.head(torch.relu(self.branch(a) + a))


def test_cli_records_the_rule_and_export_keeps_it_or_refuses_the_other(tmp_path, capsys):
    import sys
    from pathlib import Path

    from snn2hw.artifacts.calibration import load_calibration
    from snn2hw.cli import main
    from snn2hw.artifacts.export import load_export

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from onnx_builders import export_torch

    model = str(export_torch(_TinyResNet(), tmp_path / "res.onnx"))
    cal_file = tmp_path / "res.calib.h5"
    assert main(["calibrate", model, "--method", "max-act", "--junction", "shared",
                 "--samples", "20", "--eval-samples", "10", "--timesteps", "16",
                 "-o", str(cal_file)]) == 0
    cal = load_calibration(cal_file).calibration
    assert cal.junction == "shared" and cal.params["junction"] == "shared"
    capsys.readouterr()
    assert main(["export", model, "--calibration", str(cal_file), "--junction", "per-source",
                 "-o", str(tmp_path / "bad.h5")]) == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("error:")] and \
        "junction" in err and not (tmp_path / "bad.h5").exists()
    assert main(["export", model, "--calibration", str(cal_file),
                 "-o", str(tmp_path / "res.h5")]) == 0
    assert load_export(tmp_path / "res.h5").params["junction"] == "shared"


def test_a_calibration_without_the_key_reads_as_per_source():
    old = calibrate.Calibration("spike-norm", {"input": 1.0}, {"reset": "zero"})
    assert old.junction == "per-source"
