"""The sparsity analysis (``snn2hw.analysis.sparsity``, ``snn2hw report``) against independent counts.

Synaptic operations are checked against an explicit matrix of each term's linear chain,
built here in plain numpy loops (never with the library's ops or its fan-out code), times
the per-neuron spike counts the simulator records. MACs are checked against hand counts.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from snn2hw import ir, snn
from snn2hw.snn import simulate
from snn2hw.analysis import sparsity
from snn2hw.calibrate import calibrate
from snn2hw.cli import main
from snn2hw.snn.encoders import make_encoder
from snn2hw.importer import graph_from_nodes as build

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onnx_builders import export_torch  # noqa: E402

# --------------------------------------------------------------------------- explicit matrices


def conv_matrix(op: ir.Conv, in_shape) -> np.ndarray:
    """Dense (out, in) matrix of a conv, one loop iteration per weight tap."""
    c_in, h, w = in_shape
    o_ch, cpg, kh, kw = op.weight.shape
    _, oh, ow = op.shape
    top, left, _, _ = op.padding
    opg = o_ch // op.groups
    m = np.zeros((int(np.prod(op.shape)), c_in * h * w))
    for o in range(o_ch):
        g = o // opg
        for ci in range(cpg):
            c = g * cpg + ci
            for ky in range(kh):
                for kx in range(kw):
                    for y in range(oh):
                        for x in range(ow):
                            iy = y * op.stride[0] - top + ky * op.dilation[0]
                            ix = x * op.stride[1] - left + kx * op.dilation[1]
                            if 0 <= iy < h and 0 <= ix < w:
                                m[(o * oh + y) * ow + x, (c * h + iy) * w + ix] += \
                                    op.weight[o, ci, ky, kx]
    return m


def pool_matrix(op: ir.AvgPool, in_shape) -> np.ndarray:
    c_in, h, w = in_shape
    _, oh, ow = op.shape
    top, left, _, _ = op.padding
    kh, kw = op.kernel
    m = np.zeros((int(np.prod(op.shape)), c_in * h * w))
    for c in range(c_in):
        for y in range(oh):
            for x in range(ow):
                taps = [(y * op.stride[0] - top + i, x * op.stride[1] - left + j)
                        for i in range(kh) for j in range(kw)]
                inside = [(a, b) for a, b in taps if 0 <= a < h and 0 <= b < w]
                div = kh * kw if op.count_include_pad else len(inside)
                for a, b in inside:
                    m[(c * oh + y) * ow + x, (c * h + a) * w + b] += 1.0 / div
    return m


def chain_matrix(ops, in_shape) -> np.ndarray:
    size = int(np.prod(in_shape))
    m, shape = np.eye(size), tuple(in_shape)
    for op in ops:
        if isinstance(op, ir.Conv):
            m = conv_matrix(op, shape) @ m
        elif isinstance(op, ir.AvgPool):
            m = pool_matrix(op, shape) @ m
        elif isinstance(op, ir.Dense):
            m = op.weight @ m
        elif not isinstance(op, ir.Flatten):
            raise AssertionError(op)
        shape = op.shape
    return m


def column_nnz(ops, in_shape) -> np.ndarray:
    return (chain_matrix(ops, in_shape) != 0).sum(axis=0)


# --------------------------------------------------------------------------- networks


def conv_pool_dense_net(rng):
    """input (2,8,8) -> conv -> r1 -> avgpool 2 -> conv (one zero tap) -> r2 ->
    overlapping avgpool (3, stride 2, pad 1) -> flatten -> dense -> out."""
    w2 = rng.standard_normal((4, 3, 3, 3)) * 0.5
    w2[:, 0, 1, 1] = 0.0  # absent synapses: not counted
    return build([
        ir.Input("input", [], (2, 8, 8)),
        ir.Conv("c1", ["input"], weight=rng.standard_normal((3, 2, 3, 3)) * 0.5,
                bias=rng.standard_normal(3) * 0.1, padding=(1, 1, 1, 1)),
        ir.ReLU("r1", ["c1"]),
        ir.AvgPool("p1", ["r1"], kernel=(2, 2), stride=(2, 2)),
        ir.Conv("c2", ["p1"], weight=w2, padding=(1, 1, 1, 1)),
        ir.ReLU("r2", ["c2"]),
        ir.AvgPool("p2", ["r2"], kernel=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1)),
        ir.Flatten("f", ["p2"]),
        ir.Dense("out", ["f"], weight=rng.standard_normal((5, 16)) * 0.5 + 0.2)])


def residual_net(rng):
    """r3 = relu(conv(r2) + r1 + conv1x1(input)): an identity and a delayed shortcut."""
    return build([
        ir.Input("input", [], (1, 6, 6)),
        ir.Conv("c1", ["input"], weight=rng.standard_normal((2, 1, 3, 3)) * 0.6,
                padding=(1, 1, 1, 1)),
        ir.ReLU("r1", ["c1"]),
        ir.Conv("c2", ["r1"], weight=rng.standard_normal((2, 2, 3, 3)) * 0.5,
                padding=(1, 1, 1, 1)),
        ir.ReLU("r2", ["c2"]),
        ir.Conv("c3", ["r2"], weight=rng.standard_normal((2, 2, 3, 3)) * 0.5,
                bias=rng.standard_normal(2) * 0.1, padding=(1, 1, 1, 1)),
        ir.Conv("c4", ["input"], weight=rng.standard_normal((2, 1, 1, 1))),
        ir.Add("add", ["c3", "r1", "c4"]),
        ir.ReLU("r3", ["add"]),
        ir.AvgPool("p", ["r3"], kernel=(2, 2), stride=(2, 2)),
        ir.Flatten("f", ["p"]),
        ir.Dense("out", ["f"], weight=rng.standard_normal((3, 18)) * 0.5 + 0.3)])


def analyse_and_count(graph, timesteps=24, n=7, seed=5):
    """The analysis (forced to several record chunks) and the independent expectation."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.3, 1.0, (n, *graph.input_shape)).astype(np.float32)
    net = snn.lower(graph)
    scales = calibrate("max-act", net, x).scales
    shapes = {net.input: net.input_shape} | {la.name: la.shape for la in net.layers}
    per_sample = timesteps * sum(int(np.prod(s)) for s in shapes.values())
    rep = sparsity.analyze(net, scales, x, timesteps, seed, record_budget=3 * per_sample)
    prep = simulate.prepare_float(net, scales)
    enc = make_encoder("poisson", x, input_scale=scales[net.input], seed=seed, stream=1)
    res = simulate.simulate(prep, enc, timesteps, record=list(shapes))
    expected = {}
    for la in net.layers:
        sops = 0
        for t in la.terms:
            lag = 1 + t.delay
            counts = np.abs(res.records[t.source][:, :timesteps - lag].astype(np.int64))
            counts = counts.sum(axis=(0, 1))
            nnz = column_nnz(t.ops, shapes[t.source])
            if not t.ops:
                nnz = np.ones(int(np.prod(shapes[t.source])), dtype=np.int64)
            sops += int(counts @ nnz)
        expected[la.name] = sops / n
        spikes = res.records[la.name].astype(np.int64).sum()
        assert 0 < spikes < res.records[la.name].size, f"{la.name}: silent or saturated"
    return net, rep, expected, res


def check_sops(rep, expected, res):
    got = {la["name"]: la["sops_per_image"] for la in rep["layers"]}
    assert got == pytest.approx(expected, rel=0, abs=1e-9)
    assert rep["total"]["sops_per_image"] == pytest.approx(sum(expected.values()))
    for la in rep["layers"]:
        assert la["spikes_per_neuron_per_step"] == pytest.approx(res.stats[la["name"]].rate)
        assert la["sop_per_mac"] == pytest.approx(la["sops_per_image"] / la["macs_per_image"])
    json.dumps(rep, allow_nan=False)  # plain, strict JSON


# --------------------------------------------------------------------------- tests


def test_sops_conv_pool_dense_equal_explicit_matrix_count():
    graph = conv_pool_dense_net(np.random.default_rng(1))
    net, rep, expected, res = analyse_and_count(graph)
    check_sops(rep, expected, res)
    methods = {la["name"]: [t["fan_out_method"] for t in la["terms"]] for la in rep["layers"]}
    assert methods == {"r1": ["transpose"], "r2": ["transpose"], "out": ["basis"]}
    x_in = res.records["input"]
    assert rep["input"]["spikes_per_neuron_per_step"] == pytest.approx(
        np.abs(x_in).mean())
    # synapses = non-zeros of the explicit matrices
    shapes = {"input": (2, 8, 8), "r1": (3, 8, 8), "r2": (4, 4, 4)}
    for la, layer in zip(rep["layers"], net.layers):
        t = layer.terms[0]
        assert la["synapses"] == int(column_nnz(t.ops, shapes[t.source]).sum())


def test_macs_equal_hand_count():
    net = snn.lower(conv_pool_dense_net(np.random.default_rng(1)))
    x = np.random.default_rng(0).uniform(0, 1, (2, 2, 8, 8)).astype(np.float32)
    rep = sparsity.analyze(net, {"input": 1.0, "r1": 1.0, "r2": 1.0, "out": 1.0}, x, 4, 0)
    macs = {la["name"]: la["macs_per_image"] for la in rep["layers"]}
    adds = {la["name"]: la["pool_adds_per_image"] for la in rep["layers"]}
    # c1: 3x8x8 outputs x 2 in x 3x3; c2: 4x4x4 x 3 x 3x3; dense 5 x (4x2x2)
    assert macs == {"r1": 192 * 18, "r2": 64 * 27, "out": 5 * 16}
    # p1: 3x4x4 outputs x 2x2 taps; p2: 4x2x2 outputs x 3x3 taps
    assert adds == {"r1": 0, "r2": 48 * 4, "out": 16 * 9}
    assert rep["total"]["macs_per_image"] == 3456 + 1728 + 80


def test_sops_residual_dag_equal_explicit_matrix_count():
    graph = residual_net(np.random.default_rng(2))
    net, rep, expected, res = analyse_and_count(graph)
    r3 = net.layer("r3")
    assert [(t.source, t.delay) for t in r3.terms] == [("r2", 0), ("r1", 1), ("input", 2)]
    check_sops(rep, expected, res)
    layer = next(la for la in rep["layers"] if la["name"] == "r3")
    assert [t["fan_out_method"] for t in layer["terms"]] == ["transpose", "identity",
                                                              "transpose"]
    # c3: 2x6x6 x 2 x 3x3, c4: 2x6x6 x 1, the identity shortcut: none
    assert layer["macs_per_image"] == 72 * 18 + 72
    assert layer["sop_per_mac"] == pytest.approx(layer["sops_per_image"] / (72 * 19))


@pytest.mark.parametrize("ops", [
    [ir.Conv("c", ["s"], weight=np.arange(1.0, 37.0).reshape(4, 3, 1, 3) * [1, 0, 1],
             stride=(2, 1), padding=(0, 1, 2, 2), dilation=(1, 2), groups=2)],
    [ir.AvgPool("p", ["s"], kernel=(3, 2), stride=(2, 1), padding=(1, 0, 1, 1),
                count_include_pad=False)],
    [ir.Conv("c", ["s"], weight=np.ones((2, 6, 3, 3)), padding=(1, 1, 1, 1)),
     ir.Conv("d", ["c"], weight=np.ones((3, 2, 3, 3)), stride=(2, 2))],
    [ir.Conv("c", ["s"], weight=np.ones((2, 6, 3, 3)), padding=(1, 1, 1, 1)),
     ir.AvgPool("p", ["c"], kernel=(2, 2), stride=(2, 2))],
], ids=["conv-groups-stride-dilation", "pool-padding", "conv-conv", "conv-pool"])
def test_fan_out_equals_explicit_column_nnz(ops):
    in_shape = (6, 5, 6)
    nodes = [ir.Input("s", [], in_shape)] + ops
    build(nodes)  # infer shapes
    fan, _ = sparsity.fan_out(snn.Term("s", ops), in_shape)
    np.testing.assert_array_equal(fan, column_nnz(ops, in_shape))


def test_rank_trend_verdicts():
    assert sparsity.rank_trend([1, 2, 3, 4], [0.4, 0.3, 0.31, 0.1])["verdict"] == "sparser"
    assert sparsity.rank_trend([1, 2, 3], [0.1, 0.2, 0.3])["spearman_rho"] == pytest.approx(1)
    assert sparsity.rank_trend([1, 2], [0.2, 0.1])["verdict"] == "undetermined"
    assert sparsity.rank_trend([1, 2, 3], [0.2, 0.2, 0.2])["verdict"] == "undetermined"


# --------------------------------------------------------------------------- CLI


def export(seed: int, path) -> str:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.ReLU(),
                              nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 10, bias=False))
    return export_torch(model, path)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    model, other = export(0, d / "tiny.onnx"), export(1, d / "other.onnx")
    calib = d / "tiny.calib.h5"
    assert main(["calibrate", model, "--timesteps", "16", "--samples", "16",
                 "--eval-samples", "8", "-o", str(calib)]) == 0
    return model, other, str(calib)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_report_cli_writes_json_and_png(calibrated, tmp_path, capsys):
    model, _, calib = calibrated
    capsys.readouterr()
    out, png = tmp_path / "s.json", tmp_path / "s.png"
    code = main(["report", model, "--calibration", calib, "--data", "digits", "--samples",
                 "12", "--timesteps", "24", "--seed", "0", "-o", str(out), "--plot",
                 str(png)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "SOP/MAC" in stdout and "spikes/neuron/step" in stdout and "total" in stdout
    rep = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"JSON has {c}"))
    assert rep["samples"] == 12 and rep["timesteps"] == 24 and rep["method"] == "spike-norm"
    assert [la["depth"] for la in rep["layers"]] == [1, 2]
    assert rep["layers"][1]["macs_per_image"] == 640
    assert rep["layers"][0]["macs_per_image"] == 4 * 64 * 9
    assert 0 < rep["input"]["spikes_per_neuron_per_step"] < 1
    assert "spearman_rho" in rep["depth_trend"]["all"]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json", "s.png"]


def test_report_missing_calibration_is_one_error_line(calibrated, tmp_path, capsys):
    model, _, _ = calibrated
    capsys.readouterr()
    code = main(["report", model, "--calibration", str(tmp_path / "absent.calib.h5"),
                 "-o", str(tmp_path / "s.json")])
    _, err = capsys.readouterr()
    assert code == 2
    assert len(error_lines(err)) == 1 and "no such file" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_report_calibration_of_another_model_is_refused(calibrated, tmp_path, capsys):
    _, other, calib = calibrated
    capsys.readouterr()
    assert main(["report", other, "--calibration", calib, "-o",
                 str(tmp_path / "s.json")]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "different model" in lines[0]
    assert list(tmp_path.iterdir()) == []
