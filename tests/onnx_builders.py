"""Shared helpers for building small ONNX models in the tests: with onnx.helper for the
importer tests, and by exporting torch modules (:func:`export_torch`) for the pipeline.

``tests`` is not a package (a package of that name collides with one lava installs), so
test modules load this file with a ``sys.path`` insert of the tests directory.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import onnx.helper as oh
import onnx.numpy_helper as onh

FLOAT = onnx.TensorProto.FLOAT
INT64 = onnx.TensorProto.INT64


def rand(rng: np.random.Generator, *shape: int, scale: float = 0.5) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def init(name: str, value) -> onnx.TensorProto:
    """An initializer; float arrays become float32, integer ones int64."""
    array = np.asarray(value)
    array = array.astype(np.int64 if array.dtype.kind in "iu" else np.float32)
    return onh.from_array(array, name)


def const_node(name: str, value) -> onnx.NodeProto:
    """A ``Constant`` node whose output is ``name``."""
    return oh.make_node("Constant", [], [name], name=f"const_{name}", value=init(name, value))


def vi(name: str, shape, elem: int = FLOAT) -> onnx.ValueInfoProto:
    return oh.make_tensor_value_info(name, elem, None if shape is None else list(shape))


def make_model(nodes: list[onnx.NodeProto], x_shape, out: str, inits=(), opset: int = 17,
               x_name: str = "x", out_shape=None) -> onnx.ModelProto:
    """A one-input, one-output model; ``x_shape`` may use a string for the batch axis."""
    graph = oh.make_graph(nodes, "g", [vi(x_name, x_shape)], [vi(out, out_shape)],
                          initializer=list(inits))
    model = oh.make_model_gen_version(graph, opset_imports=[oh.make_opsetid("", opset)],
                                      producer_name="snn2hw-tests")
    if out_shape is None:  # fill in the output's type and shape (the checker wants them)
        inferred = onnx.shape_inference.infer_shapes(model)
        model.graph.output[0].CopyFrom(inferred.graph.output[0])
    onnx.checker.check_model(model)
    return model


def save(model: onnx.ModelProto, path: str | Path) -> Path:
    path = Path(path)
    onnx.save(model, str(path))
    return path


def with_output(model: onnx.ModelProto, tensor: str) -> onnx.ModelProto:
    """A copy of ``model`` whose only output is ``tensor`` (e.g. the logits before Softmax)."""
    copied = copy.deepcopy(model)
    del copied.graph.output[:]
    copied.graph.output.append(oh.make_empty_tensor_value_info(tensor))
    copied.graph.output[0].type.tensor_type.elem_type = FLOAT
    return copied


def run_ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.asarray(sess.run(None, {name: x.astype(np.float32)})[0])


def max_error(ours: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(max abs error, allowed error) with the tolerance 1e-4 * max(1, max |ref|)."""
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, f"shape {ours.shape} != reference {ref.shape}"
    allowed = 1e-4 * max(1.0, float(np.abs(ref).max(initial=0.0)))
    return float(np.abs(ours - ref).max(initial=0.0)), allowed


def assert_close(ours: np.ndarray, ref: np.ndarray) -> None:
    err, allowed = max_error(ours, ref)
    assert err <= allowed, f"max abs error {err:.3g} > {allowed:.3g}"


def export_torch(model, path, metadata: dict[str, str] | None = None,
                 input_shape: tuple[int, ...] = (1, 1, 8, 8)) -> str:
    """Export a torch module with the TorchScript exporter (opset 17), input "x", output
    "y", a dynamic batch dimension and optional metadata; the path as a string."""
    import warnings

    import torch

    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (torch.zeros(*input_shape),), str(path), dynamo=False,
                          opset_version=17, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    if metadata:
        proto = onnx.load(str(path))
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(path))
    return str(path)


def tiny_torch_onnx(path, seed: int = 5, dataset: str | None = "digits",
                    two_convs: bool = False) -> Path:
    """A small 1x8x8 conv net exported by torch (TorchScript exporter, opset 17), with the
    ``snn2hw.dataset`` metadata so that `snn2hw export` can calibrate it on its own."""
    import torch

    torch.manual_seed(seed)
    layers = [torch.nn.Conv2d(1, 6 if two_convs else 4, 3, padding=1, bias=not two_convs),
              torch.nn.ReLU(), torch.nn.AvgPool2d(2)]
    if two_convs:
        layers += [torch.nn.Conv2d(6, 8, 3, padding=1), torch.nn.ReLU()]
    channels = 8 if two_convs else 4
    model = torch.nn.Sequential(*layers, torch.nn.Flatten(),
                                torch.nn.Linear(channels * 4 * 4, 10))
    export_torch(model, path, None if dataset is None else {"snn2hw.dataset": dataset})
    return Path(path)


def concat_torch_onnx(path, seed: int = 0, dynamo: bool = False, maxpool: bool = False,
                      dataset: str | None = "digits") -> Path:
    """A 1x8x8 net with the ops real exports use: input normalisation in ``forward``, a zero
    Pad before a conv, a channel Concat of branches one and two convs deep, a ceil-mode
    average pool over the concatenation (or, with ``maxpool``, a MaxPool there), a conv and
    a classifier. TorchScript exporter (opset 17) or dynamo."""
    import warnings

    import torch
    from torch import nn

    class ConcatNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(0.25))
            self.register_buffer("std", torch.tensor(0.4))
            self.a = nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(1, 4, 3), nn.ReLU())
            self.b = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                                   nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
            self.pool = nn.MaxPool2d(3, 2, ceil_mode=True) if maxpool else \
                nn.AvgPool2d(3, 2, ceil_mode=True)
            self.c = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
            self.fc = nn.Linear(8 * 4 * 4, 10)

        def forward(self, x):
            x = (x - self.mean) / self.std
            y = self.pool(torch.cat([self.a(x), self.b(x)], 1))
            return self.fc(torch.flatten(self.c(y), 1))

    torch.manual_seed(seed)
    model = ConcatNet().eval()
    if not dynamo:
        export_torch(model, path, None if dataset is None else {"snn2hw.dataset": dataset})
        return Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=True,
                          input_names=["x"], output_names=["y"],
                          dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    if dataset:
        proto = onnx.load(str(path))
        entry = proto.metadata_props.add()
        entry.key, entry.value = "snn2hw.dataset", dataset
        onnx.save(proto, str(path))
    return Path(path)
