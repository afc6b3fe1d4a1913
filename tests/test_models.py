"""snn2hw.models: the paper's VGG-16, ResNet-20 and ResNet-34 builders and their export."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from snn2hw import ann, ir, models, snn
from snn2hw.data import Preprocess
from snn2hw.importer import import_onnx


def _count(model: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def _convs(model: nn.Module, kernel: int) -> list[nn.Conv2d]:
    return [m for m in model.modules()
            if isinstance(m, nn.Conv2d) and m.kernel_size == (kernel, kernel)]


def _blocks(model: nn.Module) -> list[models.BasicBlock]:
    return [m for m in model.modules() if isinstance(m, models.BasicBlock)]


def _no_max_pool(model: nn.Module) -> None:
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)) for m in model.modules())


def test_vgg16_structure():
    model = models.vgg16(width=0.25, dropout=0.2)
    assert len(_convs(model, 3)) == 13 and _count(model, nn.Conv2d) == 13
    assert _count(model, nn.Linear) == 3
    assert _count(model, nn.ReLU) == 15                  # 13 conv + 2 classifier
    assert _count(model, nn.AvgPool2d) == 5
    assert _count(model, nn.Dropout) == 7                # after each pool, 2 in classifier
    assert _count(model, nn.BatchNorm2d) == 0
    _no_max_pool(model)
    assert all(m.bias is None for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    widths = [m.out_channels for m in _convs(model, 3)]
    assert widths == [16, 16, 32, 32, 64, 64, 64, 128, 128, 128, 128, 128, 128]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(128, 1024), (1024, 1024),
                                                                   (1024, 10)]
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_vgg16_flattened_size_follows_input_size():
    model = models.vgg16(num_classes=7, in_channels=1, input_size=64, width=0.125, dropout=0)
    first = next(m for m in model.modules() if isinstance(m, nn.Linear))
    assert first.in_features == 64 * 2 * 2
    assert _count(model, nn.Dropout) == 0
    assert model(torch.zeros(1, 1, 64, 64)).shape == (1, 7)
    with pytest.raises(ValueError, match="input_size"):
        models.vgg16(input_size=16)


def test_resnet20_structure():
    model = models.resnet20(width=0.5)
    assert len(_convs(model, 3)) == 19                   # 1 plain + 9 blocks x 2
    assert len(_convs(model, 1)) == 2                    # projection shortcuts
    assert all(c.stride == (2, 2) for c in _convs(model, 1))
    assert _count(model, nn.ReLU) == 19                  # one per 3x3 conv
    blocks = _blocks(model)
    assert len(blocks) == 9
    assert sum(isinstance(b.shortcut, nn.Identity) for b in blocks) == 7
    assert all(isinstance(b.relu, nn.ReLU) for b in blocks)  # a ReLU after every junction
    assert _count(model, nn.Linear) == 1 and _count(model, nn.BatchNorm2d) == 0
    assert isinstance(model.pool, nn.AdaptiveAvgPool2d)
    assert isinstance(model.stem[0], nn.Conv2d) and model.stem[0].kernel_size == (3, 3)
    _no_max_pool(model)
    assert sorted({c.out_channels for c in _convs(model, 3)}) == [8, 16, 32]
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_resnet34_structure():
    model = models.resnet34(num_classes=100, width=0.125, input_size=64)
    assert len(_convs(model, 3)) == 35                   # 3 plain + 16 blocks x 2
    assert len(_convs(model, 1)) == 3
    assert not [m for m in model.modules() if isinstance(m, nn.Conv2d)
                and m.kernel_size[0] > 3]                # no 7x7 kernel
    assert _count(model, nn.ReLU) == 35
    blocks = _blocks(model)
    assert len(blocks) == 16
    assert sum(isinstance(b.shortcut, nn.Identity) for b in blocks) == 13
    stem_convs = [m for m in model.stem if isinstance(m, nn.Conv2d)]
    assert len(stem_convs) == 3 and stem_convs[0].stride == (2, 2)
    assert isinstance(model.stem[-1], nn.AvgPool2d)
    _no_max_pool(model)
    assert sorted({c.out_channels for c in _convs(model, 3)}) == [8, 16, 32, 64]
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 100)


def test_full_size_resnet34_shapes():
    model = models.resnet34()
    x = torch.zeros(1, 3, 224, 224)
    assert model.stem(x).shape == (1, 64, 56, 56)        # as after the original 7x7 + pool
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(21.8e6, rel=0.02)


def test_batchnorm_bias_variants():
    for build in (models.vgg16, models.resnet20, models.resnet34):
        model = build(width=0.125, batchnorm=True, bias=True, input_size=32)
        convs = _count(model, nn.Conv2d)
        assert _count(model, nn.BatchNorm2d) == convs
        assert all(m.bias is not None for m in model.modules()
                   if isinstance(m, (nn.Conv2d, nn.Linear)))


def test_residual_branches_start_at_zero_without_batchnorm():
    for block in _blocks(models.resnet20(width=0.25)):
        assert torch.count_nonzero(block.branch[-1].weight) == 0
    for block in _blocks(models.resnet20(width=0.25, batchnorm=True)):
        assert torch.count_nonzero(block.branch[0].weight) > 0


@pytest.mark.parametrize("kwargs", [dict(width=0), dict(num_classes=0), dict(dropout=1.0)])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        models.resnet20(**kwargs)


def _randomize(model: nn.Module, gen: torch.Generator) -> None:
    """Non-zero residual branches and non-trivial BatchNorm, so the comparison means
    something."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and torch.count_nonzero(m.weight) == 0:
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 0.1)
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(1 + torch.randn(m.num_features, generator=gen) * 0.2)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.2)


CASES = {
    "vgg16": (models.vgg16, dict(width=0.125, in_channels=1), 32, 15, 0),
    "vgg16-bn": (models.vgg16, dict(width=0.125, batchnorm=True, bias=True), 32, 15, 0),
    "resnet20": (models.resnet20, dict(width=0.25), 16, 19, 9),
    "resnet20-bn": (models.resnet20, dict(width=0.25, batchnorm=True, bias=True), 16, 19, 9),
    "resnet34": (models.resnet34, dict(width=0.0625, num_classes=20), 32, 35, 16),
    "resnet34-bn": (models.resnet34, dict(width=0.0625, num_classes=20, batchnorm=True,
                                          bias=True, dropout=0.3), 32, 35, 16),
}


@pytest.mark.parametrize("case", list(CASES))
def test_export_imports_and_matches_torch(case, tmp_path):
    build, kwargs, size, relus, junctions = CASES[case]
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build(input_size=size, **kwargs)
    _randomize(model, gen)
    shape = (kwargs.get("in_channels", 3), size, size)
    pre = Preprocess((0.5,) * shape[0], (0.25,) * shape[0])
    path = models.export_onnx(model, tmp_path / "m.onnx", shape, pre, "digits")
    assert not model.training

    proto = onnx.load(str(path))
    ops = [n.op_type for n in proto.graph.node]
    assert "MaxPool" not in ops
    assert ops.count("Relu") == relus and ops.count("Add") == junctions
    meta = {p.key: p.value for p in proto.metadata_props}
    assert Preprocess.from_json(meta["snn2hw.preprocess"]) == pre
    assert meta["snn2hw.dataset"] == "digits"

    graph = import_onnx(path)
    assert graph.input_shape == shape
    assert sum(isinstance(n, ir.ReLU) for n in graph.nodes.values()) == relus
    assert sum(isinstance(n, ir.Add) for n in graph.nodes.values()) == junctions
    net = snn.lower(graph)
    assert len(net.layers) == relus + 1                  # every ReLU plus the output
    if junctions:
        assert sum(len(layer.terms) == 2 for layer in net.layers) == junctions
    x = torch.randn(3, *shape, generator=gen)            # another batch size than exported
    with torch.no_grad():
        ref = model(x).double().numpy()
    ours = ann.predict(graph, x.numpy())
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) <= 1e-4 * np.max(np.abs(ref))


def test_projection_shortcuts_are_1x1_stride_2_convs(tmp_path):
    model = models.resnet20(width=0.25)
    path = models.export_onnx(model, tmp_path / "r.onnx", (3, 16, 16))
    graph = import_onnx(path)
    one_by_one = [n for n in graph.nodes.values()
                  if isinstance(n, ir.Conv) and n.weight.shape[2:] == (1, 1)]
    assert len(one_by_one) == 2 and all(n.stride == (2, 2) for n in one_by_one)
    net = snn.lower(graph)
    shortcut_terms = [t for layer in net.layers if len(layer.terms) == 2 for t in layer.terms
                      if t.ops and all(isinstance(op, ir.Conv) and op.weight.shape[2] == 1
                                       for op in t.ops)]
    identity_terms = [t for layer in net.layers if len(layer.terms) == 2 for t in layer.terms
                      if not t.ops]
    assert len(shortcut_terms) == 2 and len(identity_terms) == 7
    meta = {p.key for p in onnx.load(str(path)).metadata_props}
    assert not meta & {"snn2hw.preprocess", "snn2hw.dataset"}


def test_export_is_deterministic_and_atomic(tmp_path):
    model = models.resnet20(width=0.125)
    a = models.export_onnx(model, tmp_path / "a.onnx", (3, 16, 16)).read_bytes()
    b = models.export_onnx(model, tmp_path / "b.onnx", (3, 16, 16)).read_bytes()
    assert a == b
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "b.onnx"]
    # a failing export leaves an existing file untouched and no temporary behind
    with pytest.raises(Exception):
        models.export_onnx(model, tmp_path / "a.onnx", (5, 16, 16))
    assert (tmp_path / "a.onnx").read_bytes() == a
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "b.onnx"]


@pytest.mark.parametrize("case", ["resnet20-bn", "resnet34-bn"])
def test_batchnorm_nodes_are_folded_by_the_importer(case, tmp_path):
    """torch's exporters fuse BatchNorm into the conv in eval mode; without constant folding
    the BatchNormalization nodes stay in the file and snn2hw folds them itself."""
    import warnings

    build, kwargs, size, relus, _ = CASES[case]
    gen = torch.Generator().manual_seed(1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model = build(input_size=size, **kwargs).eval()
    _randomize(model, gen)
    path = tmp_path / "bn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, size, size),), str(path), dynamo=False,
                          opset_version=17, do_constant_folding=False)
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("BatchNormalization") == _count(model, nn.BatchNorm2d)
    graph = import_onnx(path)
    assert {n.kind for n in graph.nodes.values()} <= {"input", "conv", "dense", "avgpool",
                                                      "flatten", "add", "relu"}
    assert sum(n.kind == "conv" for n in graph.nodes.values()) == _count(model, nn.Conv2d)
    assert len(snn.lower(graph).layers) == relus + 1
    x = torch.randn(2, 3, size, size, generator=gen)
    with torch.no_grad():
        ref = model(x).double().numpy()
    ours = ann.predict(graph, x.numpy())
    assert np.max(np.abs(ours - ref)) <= 1e-4 * np.max(np.abs(ref))
