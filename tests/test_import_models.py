"""Whole models exported by torch.onnx.export (dynamo and TorchScript exporters), imported and
compared to torch."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import onnx_builders as ob  # noqa: E402

from snn2hw import ann  # noqa: E402
from snn2hw.importer import import_onnx  # noqa: E402


class SmallVGG(nn.Module):
    input_shape = (3, 16, 16)

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AvgPool2d(2), nn.Dropout(0.2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(),
                                        nn.Dropout(0.5), nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


class ViewNet(nn.Module):
    """Flattens with ``x.view(x.size(0), -1)``; exported with a dynamic batch axis."""

    input_shape = (1, 10, 10)
    dynamic_batch = True

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 6)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        return self.fc(x.view(x.size(0), -1))


class ResNetTiny(nn.Module):
    """Stem, one residual block with an identity shortcut, global pooling, classifier."""

    input_shape = (3, 8, 8)

    def __init__(self, adaptive: bool = True) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.stem(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        x = torch.relu(x + y)
        return self.fc(torch.flatten(self.pool(x), 1))


class ResNetTinyMean(ResNetTiny):
    """The same, pooling with ``x.mean((2, 3))`` (ReduceMean without keepdims)."""

    def forward(self, x):
        x = self.stem(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.fc(torch.relu(x + y).mean((2, 3)))


MODELS = {"vgg": SmallVGG, "view": ViewNet, "resnet": ResNetTiny, "resnet_mean": ResNetTinyMean}
EXPORTERS = {"dynamo": dict(dynamo=True), "torchscript11": dict(dynamo=False, opset_version=11),
             "torchscript17": dict(dynamo=False, opset_version=17)}


def _randomize_bn(model: nn.Module, gen: torch.Generator) -> None:
    """Non-trivial running statistics, so folding BatchNorm is really tested."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(1 + torch.randn(m.num_features, generator=gen) * 0.2)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.2)


def _export(model: nn.Module, x: torch.Tensor, path: Path, exporter: str) -> None:
    kwargs = dict(EXPORTERS[exporter])
    if getattr(model, "dynamic_batch", False):
        if kwargs["dynamo"]:
            kwargs["dynamic_shapes"] = {"x": {0: torch.export.Dim("batch")}}
        else:
            kwargs.update(input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), str(path), **kwargs)
    except Exception as exc:  # noqa: BLE001 - the exporter, not our code, failed
        pytest.skip(f"torch {torch.__version__} cannot export with {exporter}: "
                    f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


@pytest.mark.parametrize("exporter", list(EXPORTERS))
@pytest.mark.parametrize("name", list(MODELS))
def test_exported_model_matches_torch(name, exporter, tmp_path):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = MODELS[name]()
    _randomize_bn(model, gen)
    model.eval()
    export_x = torch.randn(2, *model.input_shape, generator=gen)
    path = tmp_path / "model.onnx"
    _export(model, export_x, path, exporter)

    graph = import_onnx(path)
    assert graph.input_shape == model.input_shape
    # The IR has no batch axis: run another batch size than the export's.
    x = torch.randn(5, *model.input_shape, generator=gen)
    with torch.no_grad():
        ref = model(x).double().numpy()
    ours = ann.predict(graph, x.numpy())
    ob.assert_close(ours, ref)
    assert np.array_equal(ours.argmax(1), ref.argmax(1))
