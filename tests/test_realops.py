"""The ops real exported models use, end to end: a torch model with input normalisation in
``forward``, a zero Pad, a channel Concat of branches of different depths and a ceil-mode
average pool imports with onnxruntime's logits (both torch exporters), calibrates, exports
and runs bit-exactly on Lava; MaxPool converts with ``--maxpool avg`` and states its cost;
what cannot be converted exactly is refused with one clear line."""
from __future__ import annotations

import copy
import json
import sys
import zlib
from pathlib import Path

import numpy as np
import onnx
import onnx.helper as oh
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import onnx_builders as ob  # noqa: E402
import test_import_ops as ops  # noqa: E402

from snn2hw import ann, data, ir, snn  # noqa: E402
from snn2hw.snn import network  # noqa: E402
from snn2hw.cli import main  # noqa: E402
from snn2hw.errors import InputError, UnsupportedModelError  # noqa: E402
from snn2hw.importer import import_onnx  # noqa: E402
from snn2hw.snn.placement import simplify  # noqa: E402


def _digits(graph, samples: int, raw: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Test-split digits: raw (as the ONNX model takes them) or preprocessed for the IR."""
    pre = data.Preprocess() if raw else \
        data.Preprocess.from_json(graph.metadata["snn2hw.preprocess"])
    ds = data.load("digits", graph.input_shape, 10, pre)
    return ds.x_test[:samples], ds.y_test[:samples]


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_concat_pad_ceil_normalised_model_matches_onnxruntime(dynamo, tmp_path):
    path = ob.concat_torch_onnx(tmp_path / "m.onnx", dynamo=dynamo)
    graph = import_onnx(path)
    x_raw, _ = _digits(graph, 64, raw=True)
    x, _ = _digits(graph, 64)
    ours = ann.predict(graph, x)
    ref = ob.run_ort(onnx.load(str(path)), x_raw)
    ob.assert_close(ours, ref)
    assert np.array_equal(ours.argmax(1), ref.argmax(1))
    norm = json.loads(graph.metadata["snn2hw.input_normalisation"])
    assert norm["mean"] == [pytest.approx(0.25)] and norm["std"] == [pytest.approx(0.4)]
    assert any(isinstance(n, ir.AvgPool) and n.ceil_mode for n in graph.nodes.values())


class DenseBlockNet(torch.nn.Module):
    """DenseNet-style: BatchNorm after a concatenation, a zero Pad before a pool that leaves
    padding out of its divisor, a ceil-mode pool, and a MaxPool (converted with avg)."""

    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        self.a = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.bn = nn.BatchNorm2d(8)
        self.pad = nn.ZeroPad2d((0, 1, 1, 0))
        self.pool = nn.AvgPool2d(3, 2, ceil_mode=True, count_include_pad=False)
        self.c = nn.Sequential(nn.Conv2d(8, 6, 1), nn.ReLU())
        self.maxpool = nn.MaxPool2d(2, ceil_mode=True)
        self.fc = nn.Linear(6 * 3 * 3, 5)

    def forward(self, x):
        a = self.a(x)
        y = torch.relu(self.bn(torch.cat([a, self.b(a)], 1)))
        y = self.c(self.pool(self.pad(y)))
        return self.fc(torch.flatten(self.maxpool(y), 1))


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_dense_block_with_maxpool_as_avg_matches_onnxruntime(dynamo, tmp_path):
    import warnings

    torch.manual_seed(2)
    model = DenseBlockNet().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.3, 0.3)
        model.bn.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(2, 3, 9, 9),), str(path), dynamo=dynamo,
                          **({} if dynamo else {"opset_version": 17}))
    graph = import_onnx(path, maxpool="avg")
    assert graph.metadata["snn2hw.maxpool"] == "avg"
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 9)).astype(np.float32)
    ref = ob.run_ort(_as_average_pool(onnx.load(str(path))), x)
    ob.assert_close(ann.predict(graph, x), ref)


@pytest.mark.parametrize("maxpool", [False, True], ids=["avgpool", "maxpool"])
@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_ceil_pool_whose_last_window_onnx_shape_inference_keeps(dynamo, maxpool, tmp_path):
    """AvgPool2d(2, 2, padding=1, ceil_mode=True) on 7x7: torch and onnxruntime drop the
    window that would start in the trailing padding (4x4), ONNX shape inference keeps it
    (5x5), so the next layer's weights disagree with it; the model still imports. (Only
    the dynamo export runs in onnxruntime, whose own shape check refuses TorchScript's;
    torch, with MaxPool as the average pool that leaves padding out, is the reference.)"""
    import warnings

    torch.manual_seed(1)
    pool = (torch.nn.MaxPool2d if maxpool else torch.nn.AvgPool2d)(2, 2, padding=1,
                                                                   ceil_mode=True)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(), pool,
                                torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 4, 3)).eval()
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 7, 7),), str(path), dynamo=dynamo,
                          **({} if dynamo else {"opset_version": 17}))
    graph = import_onnx(path, maxpool="avg")
    x = np.random.default_rng(0).standard_normal((1, 1, 7, 7)).astype(np.float32)
    ours = ann.predict(graph, x)
    if dynamo:
        ob.assert_close(ours, ob.run_ort(_as_average_pool(onnx.load(str(path))), x))
    model[2] = torch.nn.AvgPool2d(2, 2, padding=1, ceil_mode=True,
                                  count_include_pad=not maxpool)
    with torch.no_grad():
        ob.assert_close(ours, model(torch.as_tensor(x)).numpy())


@pytest.mark.lava
def test_concat_model_calibrates_exports_and_runs_bit_exactly_on_lava(tmp_path, capsys):
    """The issue's "done when": TorchScript export (explicit Pad), branches one and two
    hops deep meeting at the concatenation, through calibrate, export and Lava."""
    model = ob.concat_torch_onnx(tmp_path / "m.onnx")
    net = snn.lower(import_onnx(model))
    junction = next(la for la in net.layers if len(la.terms) == 2)
    assert sorted(t.delay for t in junction.terms) == [0, 1]
    calib, exported, report = (tmp_path / "m.calib.h5", tmp_path / "m.loihi.h5",
                               tmp_path / "run.json")
    assert main(["calibrate", str(model), "--timesteps", "32", "--samples", "32",
                 "--eval-samples", "16", "-o", str(calib)]) == 0
    assert main(["export", str(model), "--calibration", str(calib), "--data", "digits",
                 "--timesteps", "32", "--eval-samples", "16", "-o", str(exported)]) == 0
    code = main(["run", str(exported), "--samples", "12", "--timesteps", "32",
                 "--report", str(report)])
    out, err = capsys.readouterr()
    assert code == 0, err
    rep = json.loads(report.read_text())
    assert rep["identical"] is True and rep["agreement"] == 1.0
    assert all(rep["spike_counts_equal"].values())


# --- placements folded into the next op: before/after equivalence --------------------------

CONCAT_CASES = [name for name in ops.CASES if name.startswith("concat")]


@pytest.mark.parametrize("name", CONCAT_CASES)
def test_folded_placements_are_the_same_linear_map(name, tmp_path):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    built = ops.CASES[name].build(17, rng)
    graph = import_onnx(ob.save(built.model, tmp_path / "m.onnx"))
    stops = {n for n, node in graph.nodes.items() if isinstance(node, ir.ReLU)} | {graph.output}
    checked = 0
    for layer in stops:
        for term in network._expand(graph, layer, stops, root=True):
            shape = graph.nodes[term.source].shape
            x = torch.as_tensor(rng.standard_normal((2, *shape)))
            before, after = x, x
            for op in term.ops:
                before = ann.apply_linear(op, before, with_bias=False)
            folded = simplify(term.ops, shape)
            for op in folded:
                after = ann.apply_linear(op, after, with_bias=False)
            np.testing.assert_allclose(after.numpy(), before.numpy(), rtol=1e-12, atol=1e-12)
            checked += any(isinstance(op, ir.Place) for op in term.ops)
    assert checked >= 2


def test_conv_after_a_concat_reads_its_slice_of_the_weights(tmp_path):
    built = ops.CASES["concat[deep_branch]"].build(17, np.random.default_rng(3))
    graph = import_onnx(ob.save(built.model, tmp_path / "m.onnx"))
    conv = graph.nodes["c"]
    layer = snn.lower(graph).layer("c_relu")
    by_source = {t.source: t.ops for t in layer.terms}
    assert [type(op) for op in by_source["a_relu"]] == [ir.Conv]
    np.testing.assert_array_equal(by_source["a_relu"][0].weight, conv.weight[:, :4])
    np.testing.assert_array_equal(by_source["b2_relu"][0].weight, conv.weight[:, 4:7])


# --- MaxPool -----------------------------------------------------------------------------

def test_maxpool_is_refused_by_default_naming_the_option(tmp_path, capsys):
    model = ob.concat_torch_onnx(tmp_path / "m.onnx", maxpool=True)
    assert main(["inspect", str(model)]) == 2
    err = capsys.readouterr().err
    assert "MaxPool" in err and "--maxpool avg" in err
    assert "replace MaxPool with AveragePool and retrain" in err


def _as_average_pool(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with each MaxPool an AveragePool of the same window (padding not counted)."""
    out = copy.deepcopy(model)
    for node in out.graph.node:
        if node.op_type == "MaxPool":
            attrs = [a for a in node.attribute if a.name not in ("dilations", "storage_order")]
            node.op_type = "AveragePool"
            del node.attribute[:]
            node.attribute.extend(attrs + [oh.make_attribute("count_include_pad", 0)])
    return out


def test_maxpool_avg_converts_and_states_the_accuracy_cost(tmp_path, capsys):
    model = ob.concat_torch_onnx(tmp_path / "m.onnx", maxpool=True, seed=4)
    calib, report = tmp_path / "m.calib.h5", tmp_path / "cal.json"
    code = main(["calibrate", str(model), "--maxpool", "avg", "--timesteps", "8",
                 "--samples", "16", "--eval-samples", "60", "-o", str(calib),
                 "--report", str(report)])
    out, err = capsys.readouterr()
    assert code == 0, err
    cost = json.loads(report.read_text())["maxpool"]
    proto = onnx.load(str(model))
    x, y = _digits(import_onnx(model, maxpool="avg"), 60, raw=True)
    original = float((ob.run_ort(proto, x).argmax(1) == y).mean())
    replaced = float((ob.run_ort(_as_average_pool(proto), x).argmax(1) == y).mean())
    assert cost["original_ann_accuracy_onnxruntime"] == original
    assert cost["ann_accuracy"] == replaced
    assert "MaxPool converted as average pooling (--maxpool avg)" in out
    assert f"{100 * original:.2f} %" in out and f"{100 * (replaced - original):+.2f} points" in out


def test_calibration_made_with_maxpool_avg_needs_the_option(tmp_path, capsys):
    model = ob.concat_torch_onnx(tmp_path / "m.onnx", maxpool=True)
    calib = tmp_path / "m.calib.h5"
    assert main(["calibrate", str(model), "--maxpool", "avg", "--timesteps", "8",
                 "--samples", "8", "--eval-samples", "8", "-o", str(calib)]) == 0
    capsys.readouterr()
    code = main(["report", str(model), "--calibration", str(calib), "--samples", "4",
                 "--timesteps", "8", "-o", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "--maxpool avg" in err
    assert len(err.strip().splitlines()) == 1


# --- what is refused -----------------------------------------------------------------------

def test_explicit_mean_with_the_models_own_normalisation_is_refused(tmp_path, capsys):
    model = ob.concat_torch_onnx(tmp_path / "m.onnx")
    code = main(["calibrate", str(model), "--mean", "0.5", "--timesteps", "8", "--samples",
                 "8", "-o", str(tmp_path / "c.h5")])
    err = capsys.readouterr().err
    assert code == 2 and "normalises its input itself" in err and "--mean/--std" in err


def _one_node_model(nodes, inits=(), x_shape=("N", 3, 6, 6), opset=17):
    return ob.make_model(nodes, x_shape, "y", list(inits), opset)


def _pad_then(op, mode="constant", value=None, pad=(0, 0, 1, 1, 0, 0, 1, 1), **pool):
    inputs = ["x", "pads"] + (["value"] if value is not None else [])
    inits = [ob.init("pads", list(pad))]
    inits += [ob.init("value", np.float32(value))] if value is not None else []
    nodes = [oh.make_node("Pad", inputs, ["p"], name="pad", mode=mode)]
    if op == "Relu":
        nodes.append(oh.make_node("Relu", ["p"], ["y"], name="relu"))
    elif op == "AveragePool":
        nodes.append(oh.make_node("AveragePool", ["p"], ["y"], name="pool", **pool))
    else:
        nodes.append(oh.make_node("Conv", ["p", "w"], ["y"], name="conv"))
        inits.append(ob.init("w", np.ones((2, 3, 3, 3), np.float32)))
    return _one_node_model(nodes, inits)


REFUSED = {
    "pad_reflect": (lambda: _pad_then("Conv", mode="reflect"), "Pad mode 'reflect'"),
    "pad_edge": (lambda: _pad_then("Conv", mode="edge"), "Pad mode 'edge'"),
    "pad_nonzero": (lambda: _pad_then("Conv", value=1.5), "pads with the constant 1.5"),
    "pad_before_relu": (lambda: _pad_then("Relu"), "folds only into the padding"),
    "pad_before_pool_excluding_its_pads": (lambda: _pad_then(
        "AveragePool", kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=0),
        "leaves its own padding out of the divisor"),
    "pad_changing_ceil_windows": (lambda: _pad_then(
        "AveragePool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1,
        pad=(0, 0, 0, 0, 0, 0, 2, 2)), "changes which partial windows"),
    "concat_spatial": (lambda: _one_node_model(
        [oh.make_node("Concat", ["x", "x"], ["y"], name="cat", axis=2)]), "axis 2"),
    "concat_constant": (lambda: _one_node_model(
        [oh.make_node("Concat", ["x", "c"], ["y"], name="cat", axis=1)],
        [ob.init("c", np.zeros((1, 1, 6, 6), np.float32))]), "with a constant"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_what_cannot_be_converted_exactly_is_refused(name, tmp_path):
    build, reason = REFUSED[name]
    path = ob.save(build(), tmp_path / "m.onnx")
    with pytest.raises(UnsupportedModelError) as exc:
        import_onnx(path)
    assert reason in exc.value.message


def test_normalisation_with_a_negative_scale_is_refused(tmp_path):
    model = _one_node_model([oh.make_node("Mul", ["x", "k"], ["n"], name="flip"),
                             oh.make_node("Relu", ["n"], ["y"], name="relu")],
                            [ob.init("k", np.float32(-2.0))])
    with pytest.raises(InputError, match="only positive, finite scales"):
        import_onnx(ob.save(model, tmp_path / "m.onnx"))


def test_normalisation_of_an_input_also_used_raw_is_not_folded(tmp_path):
    """x feeds a Sub and a Conv: the Sub is not normalisation (the raw x is needed too)."""
    model = _one_node_model([oh.make_node("Sub", ["x", "k"], ["n"], name="sub"),
                             oh.make_node("Conv", ["n", "w"], ["a"], name="c1"),
                             oh.make_node("Conv", ["x", "w"], ["b"], name="c2"),
                             oh.make_node("Add", ["a", "b"], ["y"], name="sum")],
                            [ob.init("k", np.float32(0.5)),
                             ob.init("w", np.ones((2, 3, 1, 1), np.float32))])
    with pytest.raises(UnsupportedModelError, match="something other than a conv/dense"):
        import_onnx(ob.save(model, tmp_path / "m.onnx"))


@pytest.mark.parametrize("then_conv", [False, True], ids=["pool", "pool_conv"])
@pytest.mark.parametrize("ceil", [False, True], ids=["floor", "ceil"])
def test_fan_out_through_a_pool_counts_every_window_once(ceil, then_conv):
    """Synapses per source neuron through a pool (and a conv), against the exact matrix's
    non-zeros per column (partial ceil-mode windows included)."""
    from snn2hw.importer import graph_from_nodes
    from snn2hw.quantize import fold_term
    from snn2hw.analysis.sparsity import fan_out

    rng = np.random.default_rng(5)
    nodes = [ir.Input("input", [], (2, 7, 7)),
             ir.AvgPool("pool", ["input"], kernel=(3, 3), stride=(2, 2), padding=(1, 1, 0, 0),
                        count_include_pad=False, ceil_mode=ceil)]
    if then_conv:
        nodes.append(ir.Conv("conv", ["pool"],
                             weight=rng.integers(1, 3, (3, 2, 2, 2)).astype(float)))
    graph = graph_from_nodes(nodes)
    term = snn.lower(graph).layer(graph.output).terms[0]
    counts, _ = fan_out(term, (2, 7, 7))
    matrix = fold_term(term, (2, 7, 7), graph.nodes[graph.output].shape).csr
    np.testing.assert_array_equal(counts, np.diff(matrix.tocsc().indptr))


def test_onnx_logits_pads_the_last_batch_of_a_fixed_batch_model(tmp_path):
    """A model exported with a fixed batch size of 2 still scores 5 samples."""
    from snn2hw.onnx.maxpool import onnx_logits

    rng = np.random.default_rng(1)
    model = ob.make_model([oh.make_node("Conv", ["x", "w"], ["c"], name="conv"),
                           oh.make_node("Flatten", ["c"], ["y"], name="flat")],
                          (2, 3, 4, 4), "y", [ob.init("w", ob.rand(rng, 2, 3, 3, 3))])
    path = ob.save(model, tmp_path / "m.onnx")
    x = rng.standard_normal((5, 3, 4, 4)).astype(np.float32)
    want = np.concatenate([ob.run_ort(model, x[i:i + 2]) for i in (0, 2)]
                          + [ob.run_ort(model, np.concatenate([x[4:], x[4:]]))[:1]])
    np.testing.assert_array_equal(onnx_logits(path, x), want)


def test_export_with_maxpool_avg_states_the_accuracy_cost(tmp_path, capsys):
    model = ob.concat_torch_onnx(tmp_path / "m.onnx", maxpool=True)
    code = main(["export", str(model), "--maxpool", "avg", "--timesteps", "8", "--samples",
                 "8", "--eval-samples", "8", "-o", str(tmp_path / "m.h5"),
                 "--report", str(tmp_path / "r.json")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "MaxPool converted as average pooling (--maxpool avg)" in out
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["maxpool"]["samples"] == 8 and "original_ann_accuracy_onnxruntime" in rep["maxpool"]


def test_declared_preprocessing_runs_before_the_models_own_normalisation(tmp_path):
    """snn2hw.preprocess (mean 0.5, std 2) and then the model's (x - 0.25) / 0.4 compose
    into one preprocessing: the IR on it gives onnxruntime's logits on (x - 0.5) / 2."""
    path = ob.concat_torch_onnx(tmp_path / "m.onnx", dataset=None)
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "snn2hw.preprocess", json.dumps({"mean": [0.5], "std": [2.0]})
    onnx.save(proto, str(path))
    graph = import_onnx(path)
    pre = data.Preprocess.from_json(graph.metadata["snn2hw.preprocess"])
    assert pre.mean == pytest.approx((0.5 + 2.0 * 0.25,)) and pre.std == pytest.approx((0.8,))
    x = np.random.default_rng(2).random((1, 1, 8, 8)).astype(np.float32)
    ob.assert_close(ann.predict(graph, pre.apply(x)), ob.run_ort(proto, (x - 0.5) / 2.0))
