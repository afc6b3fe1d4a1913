"""Importer errors: every unsupported node listed at once, and typed errors for bad files."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx.helper as oh
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import onnx_builders as ob  # noqa: E402

from snn2hw.errors import InputError, ModelFileError, UnsupportedModelError  # noqa: E402
from snn2hw.importer import MAX_OPSET, MIN_OPSET, import_onnx, layer_table  # noqa: E402
from snn2hw.onnx.load import (  # noqa: E402
    MEMORY_LIMIT_ENV, default_memory_limit, physical_memory)


def _bad_model(opset: int = 13) -> onnx.ModelProto:
    """MaxPool, Sigmoid, a Softmax in the middle and an LSTM-like op, around good nodes."""
    rng = np.random.default_rng(0)
    nodes = [oh.make_node("Conv", ["x", "w"], ["c"], name="conv_ok"),
             oh.make_node("MaxPool", ["c"], ["p"], name="pool_bad", kernel_shape=[2, 2],
                          strides=[2, 2]),
             oh.make_node("Sigmoid", ["p"], ["s"], name="sigmoid_bad"),
             oh.make_node("Softmax", ["s"], ["sm"], name="softmax_middle", axis=1),
             oh.make_node("Flatten", ["sm"], ["f"], name="flatten_ok"),
             oh.make_node("Gemm", ["f", "W"], ["g"], name="fc_ok", transB=1),
             oh.make_node("Unsqueeze", ["g", "ax"], ["seq"], name="to_seq"),
             oh.make_node("GRU", ["seq", "gw", "gr"], ["", "h"], name="gru_bad",
                          hidden_size=2),
             oh.make_node("Flatten", ["h"], ["y"], name="flatten_out")]
    inits = [ob.init("w", ob.rand(rng, 4, 3, 3, 3)), ob.init("W", ob.rand(rng, 5, 36)),
             ob.init("ax", np.array([0])), ob.init("gw", ob.rand(rng, 1, 6, 5)),
             ob.init("gr", ob.rand(rng, 1, 6, 2))]
    return ob.make_model(nodes, ("N", 3, 8, 8), "y", inits, opset)


BAD_NODES = {"pool_bad": "MaxPool", "sigmoid_bad": "Sigmoid", "softmax_middle": "Softmax",
             "gru_bad": "GRU", "to_seq": "Unsqueeze"}


def _tiny_model(opset: int = 13, x_shape=("N", 4)) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes = [oh.make_node("Gemm", ["x", "W", "C"], ["h"], name="fc", transB=1),
             oh.make_node("Relu", ["h"], ["y"], name="relu")]
    inits = [ob.init("W", ob.rand(rng, 3, x_shape[-1])), ob.init("C", ob.rand(rng, 3))]
    return ob.make_model(nodes, x_shape, "y", inits, opset)


# --- unsupported nodes --------------------------------------------------------------------

def test_every_unsupported_node_is_listed_once(tmp_path):
    path = ob.save(_bad_model(), tmp_path / "bad.onnx")
    with pytest.raises(UnsupportedModelError) as info:
        import_onnx(path)
    err = info.value
    assert {n.name: n.op_type for n in err.nodes} == BAD_NODES
    assert all(n.opset == 13 for n in err.nodes)
    for name, op in BAD_NODES.items():
        assert f"{name} ({op}, opset 13)" in str(err)
    assert str(err).startswith(f"{len(BAD_NODES)} unsupported node(s)")


def test_unsupported_nodes_carry_hints(tmp_path):
    path = ob.save(_bad_model(), tmp_path / "bad.onnx")
    with pytest.raises(UnsupportedModelError) as info:
        import_onnx(path)
    by_name = {n.name: n for n in info.value.nodes}
    assert "AveragePool" in by_name["pool_bad"].hint
    assert "ReLU" in by_name["sigmoid_bad"].hint
    assert "final node" in by_name["softmax_middle"].reason
    assert "recurrent" in by_name["gru_bad"].hint
    assert "AveragePool" in info.value.hint


def test_layer_table_marks_unsupported_rows(tmp_path):
    path = ob.save(_bad_model(), tmp_path / "bad.onnx")
    rows, error = layer_table(path)
    assert isinstance(error, UnsupportedModelError)
    assert [r["name"] for r in rows] == [n.name for n in _bad_model().graph.node]
    for row in rows:
        assert row["supported"] == (row["name"] not in BAD_NODES), row
        assert (row["action"] == "unsupported") == (row["name"] in BAD_NODES), row
    conv = next(r for r in rows if r["name"] == "conv_ok")
    assert conv["params"] == 4 * 3 * 3 * 3 and conv["shape"] == (4, 6, 6)


def test_layer_table_of_a_supported_model(tmp_path):
    rows, error = layer_table(ob.save(_tiny_model(), tmp_path / "ok.onnx"))
    assert error is None
    assert [(r["op"], r["supported"], r["action"]) for r in rows] == [
        ("Gemm", True, "converted"), ("Relu", True, "converted")]


def test_unnamed_and_custom_domain_nodes(tmp_path):
    nodes = [oh.make_node("Relu", ["x"], ["r"]),
             oh.make_node("Relu", ["r"], ["y"], domain="com.example")]
    graph = oh.make_graph(nodes, "g", [ob.vi("x", ("N", 4))], [ob.vi("y", ("N", 4))])
    model = oh.make_model(graph, ir_version=8, opset_imports=[
        oh.make_opsetid("", 13), oh.make_opsetid("com.example", 1)])
    path = ob.save(model, tmp_path / "m.onnx")
    with pytest.raises(UnsupportedModelError) as info:
        import_onnx(path)
    assert [(n.name, n.op_type) for n in info.value.nodes] == [("Relu_1", "com.example::Relu")]
    rows, error = layer_table(path)
    assert [r["supported"] for r in rows] == [True, False] and error is not None


@pytest.mark.parametrize(("name", "build", "reason"), [
    ("maxpool_by_default", lambda: oh.make_node("MaxPool", ["x"], ["y"], name="n",
                                                kernel_shape=[2, 2]), "--maxpool avg"),
    ("avgpool_dilated", lambda: oh.make_node("AveragePool", ["x"], ["y"], name="n",
                                             kernel_shape=[2, 2], dilations=[2, 2]),
     "dilat"),
    ("reduce_mean_channels", lambda: oh.make_node("ReduceMean", ["x"], ["y"], name="n",
                                                  axes=[1]), "spatial"),
    ("flatten_axis2", lambda: oh.make_node("Flatten", ["x"], ["y"], name="n", axis=2),
     "axis=2"),
    ("global_maxpool", lambda: oh.make_node("GlobalMaxPool", ["x"], ["y"], name="n"),
     "not supported"),
    ("softmax_over_batch", lambda: oh.make_node("Softmax", ["x"], ["y"], name="n", axis=0),
     "batch axis"),
    ("bn_training_mode", lambda: oh.make_node(
        "BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="n", training_mode=1),
     "training-mode"),
])
def test_unsupported_attributes(name, build, reason, tmp_path):
    inits = [ob.init(k, np.ones(3)) for k in "sbmv"]
    out_shape = ("N", 3, 6, 6) if name.startswith("bn") else None
    model = ob.make_model([build()], ("N", 3, 6, 6), "y", inits, 19 if "dilat" in name else 15,
                          out_shape=out_shape)
    with pytest.raises(UnsupportedModelError) as info:
        import_onnx(ob.save(model, tmp_path / "m.onnx"))
    assert [n.name for n in info.value.nodes] == ["n"]
    assert reason in info.value.nodes[0].reason


@pytest.mark.parametrize("bias_shape", [(6,), (1, 1, 6), (6, 6, 6)],
                         ids=["vector_over_width", "row", "full_map"])
def test_add_of_non_channel_constant_is_refused(bias_shape, tmp_path):
    """(C,) added to (N, C, H, W) broadcasts over the width (C == W here), not the channels."""
    rng = np.random.default_rng(0)
    nodes = [oh.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             oh.make_node("Add", ["c", "b"], ["y"], name="add")]
    inits = [ob.init("w", ob.rand(rng, 6, 3, 3, 3)), ob.init("b", ob.rand(rng, *bias_shape))]
    model = ob.make_model(nodes, ("N", 3, 6, 6), "y", inits, 13)
    with pytest.raises(UnsupportedModelError, match="not a per-channel bias"):
        import_onnx(ob.save(model, tmp_path / "m.onnx"))


def test_gemm_with_per_sample_c_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    nodes = [oh.make_node("Gemm", ["x", "W", "C"], ["y"], name="fc", transB=1)]
    inits = [ob.init("W", ob.rand(rng, 3, 4)), ob.init("C", ob.rand(rng, 2, 3))]
    model = ob.make_model(nodes, (2, 4), "y", inits, 13)
    with pytest.raises(UnsupportedModelError, match="not a bias"):
        import_onnx(ob.save(model, tmp_path / "m.onnx"))


def test_reshape_merging_the_batch_is_refused(tmp_path):
    """With a fixed batch of 2, a target of (1, -1) merges samples: not a flatten."""
    nodes = [oh.make_node("Reshape", ["x", "s"], ["y"], name="reshape")]
    model = ob.make_model(nodes, (2, 3, 2, 2), "y", [ob.init("s", np.array([1, -1]))], 13)
    with pytest.raises(UnsupportedModelError, match="only \\(batch, features\\)"):
        import_onnx(ob.save(model, tmp_path / "m.onnx"))


# --- opsets and inputs --------------------------------------------------------------------

@pytest.mark.parametrize("opset", [9, 10, 21])
def test_unsupported_opset(opset, tmp_path):
    path = ob.save(_tiny_model(opset), tmp_path / "m.onnx")
    with pytest.raises(ModelFileError) as info:
        import_onnx(path)
    assert f"opset {opset}" in str(info.value)
    assert f"{MIN_OPSET} to {MAX_OPSET}" in str(info.value)


@pytest.mark.parametrize("x_shape", [("N", "F"), ("N", 3, "H", 8), ("N", 3, 8, None)],
                         ids=["features", "height", "unknown_width"])
def test_dynamic_non_batch_dims(x_shape, tmp_path):
    nodes = [oh.make_node("Relu", ["x"], ["y"], name="relu")]
    model = ob.make_model(nodes, x_shape, "y", (), 13, out_shape=x_shape)
    with pytest.raises(ModelFileError, match="only the batch dimension may be dynamic"):
        import_onnx(ob.save(model, tmp_path / "m.onnx"))


def test_dynamic_batch_is_accepted(tmp_path):
    graph = import_onnx(ob.save(_tiny_model(x_shape=("batch", 4)), tmp_path / "m.onnx"))
    assert graph.input_shape == (4,)


@pytest.mark.parametrize("x_shape", [("N", 3, 8), ("N",)])
def test_input_rank(x_shape, tmp_path):
    nodes = [oh.make_node("Relu", ["x"], ["y"], name="relu")]
    model = ob.make_model(nodes, x_shape, "y", (), 13, out_shape=x_shape)
    with pytest.raises(ModelFileError, match="rank"):
        import_onnx(ob.save(model, tmp_path / "m.onnx"))


def test_two_inputs(tmp_path):
    nodes = [oh.make_node("Add", ["x", "z"], ["y"], name="add")]
    graph = oh.make_graph(nodes, "g", [ob.vi("x", ("N", 4)), ob.vi("z", ("N", 4))],
                          [ob.vi("y", ("N", 4))])
    model = oh.make_model_gen_version(graph, opset_imports=[oh.make_opsetid("", 13)])
    with pytest.raises(ModelFileError, match="2 data inputs"):
        import_onnx(ob.save(model, tmp_path / "m.onnx"))


# --- bad files ----------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        import_onnx(tmp_path / "nope.onnx")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        import_onnx(path)


@pytest.mark.parametrize("seed", range(4))
def test_random_bytes(seed, tmp_path):
    path = tmp_path / "random.onnx"
    path.write_bytes(np.random.default_rng(seed).bytes(2000))
    with pytest.raises(ModelFileError, match="not an ONNX model"):
        import_onnx(path)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_protobuf(keep, tmp_path):
    data = _tiny_model().SerializeToString()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ModelFileError):
        import_onnx(path)


def test_text_file(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_text("this is not a model\n")
    with pytest.raises(ModelFileError, match="not an ONNX model"):
        import_onnx(path)


def test_checker_failure(tmp_path):
    model = _tiny_model()
    model.graph.node[1].input[0] = "undefined"
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelFileError, match="checker"):
        import_onnx(path)


# --- external data ------------------------------------------------------------------------

def _external_model(tmp_path: Path, location: str, write: Path | None = None) -> Path:
    """A model whose weight W is stored externally at ``location`` (data written to
    ``write`` when given)."""
    model = _tiny_model()
    weight = next(t for t in model.graph.initializer if t.name == "W")
    data = onnx.numpy_helper.to_array(weight).tobytes()
    if write is not None:
        write.parent.mkdir(parents=True, exist_ok=True)
        write.write_bytes(data)
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(len(data)))):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    model_dir = tmp_path / "model"
    model_dir.mkdir(exist_ok=True)
    path = model_dir / "m.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def test_external_data_inside_dir_loads(tmp_path):
    path = _external_model(tmp_path, "weights/w.bin", tmp_path / "model" / "weights" / "w.bin")
    graph = import_onnx(path)
    assert graph.nodes["fc"].weight.shape == (3, 4)


def test_external_data_with_dotdot_is_refused(tmp_path):
    path = _external_model(tmp_path, "../secret.bin", tmp_path / "secret.bin")
    with pytest.raises(ModelFileError, match="outside the model's directory"):
        import_onnx(path)


def test_external_data_with_inner_dotdot_is_refused(tmp_path):
    path = _external_model(tmp_path, "sub/../../secret.bin", tmp_path / "secret.bin")
    with pytest.raises(ModelFileError, match="outside the model's directory"):
        import_onnx(path)


def test_external_data_with_absolute_path_is_refused(tmp_path):
    target = tmp_path / "abs.bin"
    path = _external_model(tmp_path, str(target), target)
    with pytest.raises(ModelFileError, match="outside the model's directory"):
        import_onnx(path)


def test_external_data_symlink_escaping_is_refused(tmp_path):
    outside = tmp_path / "outside.bin"
    path = _external_model(tmp_path, "link.bin", outside)
    os.symlink(outside, tmp_path / "model" / "link.bin")
    with pytest.raises(ModelFileError, match="outside the model's directory"):
        import_onnx(path)


def test_external_data_symlinked_dir_escaping_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    path = _external_model(tmp_path, "d/w.bin", tmp_path / "elsewhere" / "w.bin")
    os.symlink(tmp_path / "elsewhere", tmp_path / "model" / "d")
    with pytest.raises(ModelFileError, match="outside the model's directory"):
        import_onnx(path)


def test_external_data_missing_file_is_named(tmp_path):
    path = _external_model(tmp_path, "missing_weights.bin")
    with pytest.raises(ModelFileError, match="missing_weights.bin"):
        import_onnx(path)


def test_external_data_without_location(tmp_path):
    path = _external_model(tmp_path, "w.bin", tmp_path / "model" / "w.bin")
    model = onnx.load(str(path), load_external_data=False)
    weight = next(t for t in model.graph.initializer if t.name == "W")
    del weight.external_data[:]
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelFileError, match="without a location"):
        import_onnx(path)


def test_external_data_too_short(tmp_path):
    path = _external_model(tmp_path, "w.bin", tmp_path / "model" / "w.bin")
    (tmp_path / "model" / "w.bin").write_bytes(b"\0" * 8)
    with pytest.raises(ModelFileError):
        import_onnx(path)


def test_hash_covers_external_data(tmp_path):
    """Weights re-exported into the external data file change the model's hash."""
    from snn2hw.importer import file_hash

    data = tmp_path / "model" / "w.bin"
    path = _external_model(tmp_path, "w.bin", data)
    before = file_hash(path)
    assert import_onnx(path).metadata["onnx_sha256"] == before
    data.write_bytes(bytes(reversed(data.read_bytes())))
    assert file_hash(path) != before
    plain = ob.save(_tiny_model(), tmp_path / "plain.onnx")
    import hashlib
    assert file_hash(plain) == hashlib.sha256(plain.read_bytes()).hexdigest()


# --- graph structure, tensor values and sizes ---------------------------------------------

def _write(model: onnx.ModelProto, path: Path) -> Path:
    """Write without onnx.save's checks, as a broken exporter would."""
    path.write_bytes(model.SerializeToString())
    return path


def test_graph_with_a_cycle_names_the_nodes(tmp_path):
    model = _tiny_model()
    model.graph.node[0].input[0] = "y"  # fc reads relu's output, relu reads fc's
    with pytest.raises(ModelFileError, match="cycle") as info:
        import_onnx(_write(model, tmp_path / "m.onnx"))
    assert "'fc' (Gemm)" in str(info.value) and "'relu' (Relu)" in str(info.value)


def test_cycle_report_leaves_out_nodes_after_it(tmp_path):
    nodes = [oh.make_node("Add", ["x", "b"], ["a"], name="add"),
             oh.make_node("Relu", ["a"], ["b"], name="loop"),
             oh.make_node("Relu", ["b"], ["y"], name="after")]
    graph = oh.make_graph(nodes, "g", [ob.vi("x", ("N", 4))], [ob.vi("y", ("N", 4))])
    model = oh.make_model_gen_version(graph, opset_imports=[oh.make_opsetid("", 13)])
    with pytest.raises(ModelFileError, match="cycle through node\\(s\\) 'add' \\(Add\\), "
                                             "'loop' \\(Relu\\);"):
        import_onnx(_write(model, tmp_path / "m.onnx"))


def test_dangling_input_names_node_and_tensor(tmp_path):
    model = _tiny_model()
    model.graph.node[1].input[0] = "produced_by_nothing"
    with pytest.raises(ModelFileError, match="node 'relu' \\(Relu\\) reads tensor "
                                             "'produced_by_nothing'.*dangling"):
        import_onnx(_write(model, tmp_path / "m.onnx"))


def test_output_produced_by_nothing_is_named(tmp_path):
    model = _tiny_model()
    model.graph.output[0].name = "nowhere"
    with pytest.raises(ModelFileError, match="graph output 'nowhere' is produced by no node"):
        import_onnx(_write(model, tmp_path / "m.onnx"))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_initializer_is_named(bad, tmp_path):
    model = _tiny_model()
    weight = next(t for t in model.graph.initializer if t.name == "W")
    values = onnx.numpy_helper.to_array(weight).copy()
    values[1, 2] = bad
    weight.CopyFrom(onnx.numpy_helper.from_array(values, "W"))
    with pytest.raises(ModelFileError, match="initializer 'W' contains .* of 12; weights "
                                             "must be finite"):
        import_onnx(ob.save(model, tmp_path / "m.onnx"))


def test_non_finite_constant_node_is_named(tmp_path):
    nodes = [ob.const_node("k", np.array([1.0, np.nan, 2.0], np.float32)),
             oh.make_node("Add", ["x", "k"], ["y"], name="add")]
    model = ob.make_model(nodes, ("N", 3), "y", (), 13)
    with pytest.raises(ModelFileError, match="constant 'const_k' \\(Constant\\) contains 1 "
                                             "NaN"):
        import_onnx(ob.save(model, tmp_path / "m.onnx"))


def test_non_finite_float_attribute_is_named(tmp_path):
    model = _tiny_model()
    model.graph.node[0].attribute.append(oh.make_attribute("alpha", float("nan")))
    with pytest.raises(ModelFileError, match="node 'fc' \\(Gemm\\): attribute alpha = nan"):
        import_onnx(ob.save(model, tmp_path / "m.onnx"))


def test_folding_to_non_finite_weights_is_refused(tmp_path):
    """A negative epsilon makes sqrt(var + eps) NaN: finite inputs, NaN after folding."""
    rng = np.random.default_rng(0)
    nodes = [oh.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             oh.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], name="bn",
                          epsilon=-2.0)]
    inits = [ob.init("w", ob.rand(rng, 2, 1, 3, 3))] + [
        ob.init(k, np.ones(2)) for k in "sbmv"]
    model = ob.make_model(nodes, ("N", 1, 5, 5), "y", inits, 13)
    with pytest.raises(ModelFileError, match="node 'conv': weight is not finite after "
                                             "folding"):
        import_onnx(ob.save(model, tmp_path / "m.onnx"))


def test_initializer_with_more_data_than_its_dims_is_named(tmp_path):
    model = _tiny_model()
    weight = next(t for t in model.graph.initializer if t.name == "W")
    weight.dims[1] = 3  # 12 values stored, 9 declared
    with pytest.raises(ModelFileError, match=r"initializer 'W' cannot be decoded \(data type "
                                             r"1, dims \[3, 3\]\)"):
        import_onnx(_write(model, tmp_path / "m.onnx"))


def test_initializer_with_less_data_than_its_dims_is_named(tmp_path):
    model = _tiny_model()
    weight = next(t for t in model.graph.initializer if t.name == "W")
    weight.dims[1] = 5  # 12 values stored, 15 declared
    with pytest.raises(ModelFileError, match="tensor name: W"):
        import_onnx(_write(model, tmp_path / "m.onnx"))


def test_initializer_of_an_unknown_data_type_is_named(tmp_path):
    model = _tiny_model()
    next(t for t in model.graph.initializer if t.name == "C").data_type = 99
    with pytest.raises(ModelFileError, match="'C'"):
        import_onnx(_write(model, tmp_path / "m.onnx"))


def test_zero_sized_input_dimension_is_refused(tmp_path):
    nodes = [oh.make_node("Relu", ["x"], ["y"], name="relu")]
    model = ob.make_model(nodes, ("N", 3, 0, 4), "y", (), 13, out_shape=("N", 3, 0, 4))
    with pytest.raises(ModelFileError, match="dimension 2 is not a fixed positive size \\(0\\)"):
        import_onnx(ob.save(model, tmp_path / "m.onnx"))


def test_zero_sized_batch_dimension_is_refused(tmp_path):
    model = _tiny_model(x_shape=(0, 4))
    with pytest.raises(ModelFileError, match="batch dimension 0"):
        import_onnx(_write(model, tmp_path / "m.onnx"))


def test_zero_sized_weight_gives_an_empty_layer_named(tmp_path):
    nodes = [oh.make_node("Gemm", ["x", "W"], ["y"], name="fc", transB=1)]
    model = ob.make_model(nodes, ("N", 4), "y", [ob.init("W", np.zeros((0, 4)))], 13)
    with pytest.raises(InputError, match="node fc: output shape \\(0,\\) has an empty "
                                         "dimension"):
        import_onnx(ob.save(model, tmp_path / "m.onnx"))


def test_absurdly_large_input_is_refused_before_allocating(tmp_path):
    nodes = [oh.make_node("Relu", ["x"], ["r"], name="relu"),
             oh.make_node("GlobalAveragePool", ["r"], ["y"], name="gap")]
    model = ob.make_model(nodes, ("N", 3, 100_000, 100_000), "y", (), 13)
    with pytest.raises(ModelFileError) as info:
        import_onnx(ob.save(model, tmp_path / "m.onnx"))
    message = str(info.value)
    # 2 tensors of 3e10 float64 values (x and r), plus the tiny output
    assert "needs about 447 GiB for one sample" in message
    assert "largest activation 'x' (1, 3, 100000, 100000)" in message
    assert "above the memory limit of" in message
    assert info.value.facts["estimate"] > info.value.facts["limit"]


def test_memory_limit_is_a_parameter(tmp_path):
    path = ob.save(_tiny_model(), tmp_path / "m.onnx")
    # weights 3*4 + 3, activations 4 + 3 + 3 values per sample, 8 bytes each
    import_onnx(path, memory_limit=(15 + 10) * 8)
    with pytest.raises(ModelFileError, match=r"needs about 200 B .* limit of 199 B "
                                             r"\(memory_limit\)"):
        import_onnx(path, memory_limit=199)


def test_memory_limit_from_the_environment(tmp_path, monkeypatch):
    path = ob.save(_tiny_model(), tmp_path / "m.onnx")
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "0.1K")
    with pytest.raises(ModelFileError, match=f"limit of 102 B \\({MEMORY_LIMIT_ENV}\\)"):
        import_onnx(path)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1G")
    import_onnx(path)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(InputError, match=f"{MEMORY_LIMIT_ENV}='lots' is not a positive size"):
        import_onnx(path)


def test_default_memory_limit_is_half_the_physical_memory(monkeypatch):
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    limit, source = default_memory_limit()
    assert limit == physical_memory() // 2 and source == "half of the physical memory"


def test_huge_declared_initializer_is_refused_before_decoding(tmp_path):
    """Declared dims of 4e10 values with external data: refused on the estimate, before
    the (here absent) data would be read."""
    path = _external_model(tmp_path, "w.bin", tmp_path / "model" / "w.bin")
    model = onnx.load(str(path), load_external_data=False)
    weight = next(t for t in model.graph.initializer if t.name == "W")
    del weight.dims[:]
    weight.dims.extend([200_000, 200_000])
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelFileError, match="weights 298 GiB"):
        import_onnx(path)


@pytest.mark.parametrize("message", ["tensor", "graph", "node", "opset"])
def test_valid_protobuf_that_is_not_a_model(message, tmp_path):
    """Other ONNX messages parse as a ModelProto with unknown or wrong fields."""
    proto = {"tensor": lambda: onnx.numpy_helper.from_array(np.ones((3, 4), np.float32), "t"),
             "graph": lambda: _tiny_model().graph,
             "node": lambda: oh.make_node("Relu", ["x"], ["y"], name="relu"),
             "opset": lambda: oh.make_opsetid("", 13)}[message]()
    path = tmp_path / "m.onnx"
    path.write_bytes(proto.SerializeToString())
    with pytest.raises(ModelFileError, match="not an ONNX model"):
        import_onnx(path)


def test_malformed_attribute_fails_shape_inference_after_the_scan(tmp_path):
    rng = np.random.default_rng(0)
    nodes = [oh.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1])]
    model = ob.make_model(nodes, ("N", 1, 5, 5), "y", [ob.init("w", ob.rand(rng, 2, 1, 3, 3))],
                          13, out_shape=("N", 2, 5, 5))
    with pytest.raises(ModelFileError, match="fails ONNX shape inference: .*conv"):
        import_onnx(ob.save(model, tmp_path / "m.onnx"))


def test_invalid_auto_pad_is_unsupported(tmp_path):
    rng = np.random.default_rng(0)
    nodes = [oh.make_node("Conv", ["x", "w"], ["y"], name="conv", auto_pad="SAME_MIDDLE")]
    model = ob.make_model(nodes, ("N", 1, 5, 5), "y", [ob.init("w", ob.rand(rng, 2, 1, 3, 3))],
                          13, out_shape=("N", 2, 5, 5))
    with pytest.raises(UnsupportedModelError, match="auto_pad 'SAME_MIDDLE'"):
        import_onnx(ob.save(model, tmp_path / "m.onnx"))


def test_global_pool_of_a_vector_is_refused(tmp_path):
    nodes = [oh.make_node("GlobalAveragePool", ["x"], ["y"], name="gap")]
    model = ob.make_model(nodes, ("N", 4), "y", (), 13, out_shape=("N", 4))
    with pytest.raises(UnsupportedModelError, match="gap .*needs an image input"):
        import_onnx(ob.save(model, tmp_path / "m.onnx"))


def test_constant_folding_error_names_the_node(tmp_path):
    """Reshape of a 6-value constant to 4 values: numpy's complaint, as this node's."""
    nodes = [oh.make_node("Reshape", ["k", "s"], ["k2"], name="bad_fold"),
             oh.make_node("Add", ["x", "k2"], ["y"], name="add")]
    inits = [ob.init("k", np.ones(6)), ob.init("s", np.array([4]))]
    model = ob.make_model(nodes, ("N", 4), "y", inits, 13, out_shape=("N", 4))
    with pytest.raises(UnsupportedModelError, match="bad_fold .*cannot evaluate it on its "
                                                    "constant inputs: ValueError"):
        import_onnx(_write(model, tmp_path / "m.onnx"))


def _batchnorm_model(lengths: list[int], channels: int = 3) -> onnx.ModelProto:
    x = oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, channels, 4, 4])
    y = oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, channels, 4, 4])
    inits = [onnx.numpy_helper.from_array(np.ones(n, np.float32), name)
             for n, name in zip(lengths, ["s", "b", "m", "v"])]
    node = oh.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn")
    graph = oh.make_graph([node], "g", [x], [y], inits)
    return oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)])


@pytest.mark.parametrize("lengths, reason", [
    ([3, 3, 3, 2], "1-D of one length"),          # found by tests/test_fuzz.py's mutations
    ([4, 4, 4, 4], "4 scale values for an input of 3 channels"),
])
def test_batchnorm_parameter_lengths_are_checked(lengths, reason, tmp_path):
    path = tmp_path / "bn.onnx"
    onnx.save(_batchnorm_model(lengths), path)
    with pytest.raises(UnsupportedModelError, match=reason):
        import_onnx(path)
