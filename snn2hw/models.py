"""Torch builders for the deep networks of Sengupta et al. 2019, and an ONNX export for them.

"Going Deeper in Spiking Neural Networks: VGG and Residual Architectures" converts VGG-16
and residual networks (ResNet-20 on CIFAR-10, ResNet-34 on ImageNet) to spiking networks.
The builders here follow the paper's constraints on the ANN, so that the trained network
converts without changes:

- ReLU is the only non-linearity; every ReLU becomes a layer of integrate-and-fire neurons.
- Pooling is average pooling (linear, folded into the next synapse); there is no max
  pooling anywhere, also not in ResNet-34's stem.
- No bias and no BatchNorm by default: a bias is a constant input current the threshold
  balancing has to account for. ``batchnorm=True, bias=True`` builds the ordinarily
  trained variant instead (BatchNorm after every conv, biases in every conv and linear
  layer); snn2hw folds BatchNorm into the conv before it and turns biases into constant
  input currents, so such networks convert as well.
- Dropout regularises training (the paper trains without BatchNorm); it is the identity
  in the exported graph.
- Residual networks (paper, section 6): a ReLU (a spiking layer) follows every junction
  (the Add of branch and shortcut); the input goes through a plain, non-residual stack of
  3x3 convolutions instead of one large 7x7 kernel; shortcuts are identities where the
  shapes match and 1x1 convolutions with stride 2 where the resolution halves and the
  channels change; a global average pool precedes the classifier.

Builders (all take ``num_classes``, ``in_channels``, ``input_size``, ``width``,
``batchnorm`` and ``bias``):

``vgg16(num_classes=10, in_channels=3, input_size=32, width=1.0, batchnorm=False,
bias=False, dropout=0.2)``
    The 13 convolutions of VGG-16 (configuration D: 64, 64, P, 128, 128, P, 256 x 3, P,
    512 x 3, P, 512 x 3, P; 3x3, padding 1, ReLU; P = 2x2 average pooling, followed by
    dropout), then the classifier linear(4096) - ReLU - dropout - linear(4096) - ReLU -
    dropout - linear(num_classes), hidden sizes times ``width``. Its input is the
    flattened last feature map, ``512 * width * (input_size // 32) ** 2`` values (one
    position per channel at 32 x 32, 7 x 7 at 224 x 224). 15 ReLUs: 13 after the
    convolutions and 2 in the classifier; with the output layer 16 spiking layers.
    ``input_size`` must be at least 32 (five poolings).

``resnet20(num_classes=10, in_channels=3, input_size=32, width=1.0, batchnorm=False,
bias=False, dropout=0.0)``
    CIFAR ResNet-20: a plain 3x3 conv (16 channels) at the input, then 3 stages of 3 basic
    blocks (two 3x3 convs; ReLU after the first and after the junction) with 16, 32, 64
    channels and strides 1, 2, 2, global average pooling and one linear layer. 19 convs
    with a ReLU each (1 + 18), 2 projection (1x1, stride 2) shortcuts, 7 identity ones.

``resnet34(num_classes=1000, in_channels=3, input_size=224, width=1.0, batchnorm=False,
bias=False, dropout=0.0)``
    ImageNet ResNet-34 with basic blocks [3, 4, 6, 3] and 64, 128, 256, 512 channels
    (strides 1, 2, 2, 2). The 7x7 stride-2 conv and the 3x3 max pool of the original are
    replaced by a plain stack of three 3x3 convs (64 channels, the first with stride 2)
    followed by a 2x2 average pool, so a 224 x 224 input reaches the blocks at 56 x 56 as
    in the original. 35 convs with a ReLU each (3 + 32), 3 projection shortcuts, 13
    identity ones.

Arguments:

- ``num_classes``: outputs of the last linear layer (the spiking output layer).
- ``in_channels``: image channels (1 for grey-scale digits, 3 for colour).
- ``input_size``: height = width of the input; it sets the size of the flattened
  features of VGG-16 (the residual networks pool globally and accept any size).
- ``width``: multiplies every channel count and VGG's hidden sizes (rounded, at least 1);
  ``width=0.125`` makes a network that trains in minutes on two CPU cores, ``1.0`` is the
  paper's size.
- ``batchnorm``, ``bias``: see above.
- ``dropout``: dropout probability (0 leaves the Dropout modules out).

Weights use Kaiming (He) normal initialisation for ReLU (fan-in), biases start at zero.
Without BatchNorm the last conv of every residual branch starts at zero, so each block
starts as its shortcut and the signal of a deep residual network without normalisation
does not grow with depth (as in SkipInit/Fixup); with BatchNorm the branches start as usual.
The builders draw from torch's global RNG: seed it (``torch.manual_seed``) for
reproducible weights.

``export_onnx(model, path, input_shape, preprocess=None, dataset=None)`` writes the model
(eval mode) with the TorchScript exporter (opset 17, dynamic batch axis, input ``image``,
output ``logits``), stores the ``snn2hw.preprocess`` and ``snn2hw.dataset`` metadata that
snn2hw's commands read, and writes the file atomically.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .onnx_export import export_onnx

VGG16_CONFIG: tuple = (64, 64, "P", 128, 128, "P", 256, 256, 256, "P",
                       512, 512, 512, "P", 512, 512, 512, "P")
RESNET20_STAGES = ((16, 3, 1), (32, 3, 2), (64, 3, 2))      # channels, blocks, stride
RESNET34_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def _check(num_classes: int, in_channels: int, input_size: int, width: float,
           dropout: float) -> None:
    if num_classes < 1 or in_channels < 1 or input_size < 1:
        raise ValueError(f"num_classes, in_channels and input_size must be positive, got "
                         f"{num_classes}, {in_channels}, {input_size}")
    if not width > 0:
        raise ValueError(f"width must be positive, got {width}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")


def _conv(cin: int, cout: int, kernel: int, stride: int, batchnorm: bool,
          bias: bool) -> list[nn.Module]:
    """conv (padding keeps the size at stride 1), then BatchNorm if asked; no ReLU."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride=stride,
                                         padding=kernel // 2, bias=bias)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(cout))
    return layers


def _dropout(p: float) -> list[nn.Module]:
    return [nn.Dropout(p)] if p > 0 else []


def _init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class VGG(nn.Module):
    """``features`` (convs, ReLUs, average pools), then ``classifier`` (flatten, linear)."""

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def vgg16(num_classes: int = 10, in_channels: int = 3, input_size: int = 32,
          width: float = 1.0, batchnorm: bool = False, bias: bool = False,
          dropout: float = 0.2) -> VGG:
    """VGG-16 with average pooling (see the module docstring)."""
    _check(num_classes, in_channels, input_size, width, dropout)
    if input_size < 32:
        raise ValueError(f"vgg16 needs input_size >= 32 (five 2x2 poolings), got {input_size}")
    layers: list[nn.Module] = []
    cin, size = in_channels, input_size
    for item in VGG16_CONFIG:
        if item == "P":
            layers += [nn.AvgPool2d(2), *_dropout(dropout)]
            size //= 2
        else:
            cout = _scaled(item, width)
            layers += [*_conv(cin, cout, 3, 1, batchnorm, bias), nn.ReLU()]
            cin = cout
    hidden = _scaled(4096, width)
    classifier = nn.Sequential(
        nn.Flatten(),
        nn.Linear(cin * size * size, hidden, bias=bias), nn.ReLU(), *_dropout(dropout),
        nn.Linear(hidden, hidden, bias=bias), nn.ReLU(), *_dropout(dropout),
        nn.Linear(hidden, num_classes, bias=bias))
    model = VGG(nn.Sequential(*layers), classifier)
    _init(model)
    return model


class BasicBlock(nn.Module):
    """conv3x3 - ReLU - conv3x3, plus the shortcut, then the junction's ReLU.

    The shortcut is the identity when input and output shapes agree, otherwise a 1x1
    convolution with the block's stride (and BatchNorm when the convs have it)."""

    def __init__(self, cin: int, cout: int, stride: int, batchnorm: bool, bias: bool) -> None:
        super().__init__()
        self.branch = nn.Sequential(*_conv(cin, cout, 3, stride, batchnorm, bias), nn.ReLU(),
                                    *_conv(cout, cout, 3, 1, batchnorm, bias))
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout
                         else nn.Sequential(*_conv(cin, cout, 1, stride, batchnorm, bias)))
        self.relu = nn.ReLU()  # the junction's spiking layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.branch(x) + self.shortcut(x))


class ResNet(nn.Module):
    """``stem`` (plain 3x3 convs), ``stages`` (basic blocks), global average pool,
    ``classifier``."""

    def __init__(self, stem: nn.Sequential, stages: nn.Sequential,
                 classifier: nn.Sequential) -> None:
        super().__init__()
        self.stem = stem
        self.stages = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.stages(self.stem(x))))


def _resnet(stem: list[nn.Module], cin: int, stages: Sequence[tuple[int, int, int]],
            num_classes: int, width: float, batchnorm: bool, bias: bool,
            dropout: float) -> ResNet:
    blocks: list[nn.Module] = []
    for channels, count, stride in stages:
        cout = _scaled(channels, width)
        for i in range(count):
            blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1, batchnorm, bias))
            cin = cout
    classifier = nn.Sequential(nn.Flatten(), *_dropout(dropout),
                               nn.Linear(cin, num_classes, bias=bias))
    model = ResNet(nn.Sequential(*stem), nn.Sequential(*blocks), classifier)
    _init(model)
    if not batchnorm:  # each block starts as its shortcut (see the module docstring)
        for block in blocks:
            nn.init.zeros_(block.branch[-1].weight)
    return model


def resnet20(num_classes: int = 10, in_channels: int = 3, input_size: int = 32,
             width: float = 1.0, batchnorm: bool = False, bias: bool = False,
             dropout: float = 0.0) -> ResNet:
    """CIFAR ResNet-20 (see the module docstring). ``input_size`` is only checked: the
    network pools globally and accepts any size."""
    _check(num_classes, in_channels, input_size, width, dropout)
    c0 = _scaled(RESNET20_STAGES[0][0], width)
    stem = [*_conv(in_channels, c0, 3, 1, batchnorm, bias), nn.ReLU()]
    return _resnet(stem, c0, RESNET20_STAGES, num_classes, width, batchnorm, bias, dropout)


def resnet34(num_classes: int = 1000, in_channels: int = 3, input_size: int = 224,
             width: float = 1.0, batchnorm: bool = False, bias: bool = False,
             dropout: float = 0.0) -> ResNet:
    """ImageNet ResNet-34 with a plain 3x3 stem and average pooling (see the module
    docstring). ``input_size`` is only checked: the network pools globally."""
    _check(num_classes, in_channels, input_size, width, dropout)
    c0 = _scaled(RESNET34_STAGES[0][0], width)
    stem = [*_conv(in_channels, c0, 3, 2, batchnorm, bias), nn.ReLU(),
            *_conv(c0, c0, 3, 1, batchnorm, bias), nn.ReLU(),
            *_conv(c0, c0, 3, 1, batchnorm, bias), nn.ReLU(),
            nn.AvgPool2d(2)]
    return _resnet(stem, c0, RESNET34_STAGES, num_classes, width, batchnorm, bias, dropout)


BUILDERS = {"vgg16": vgg16, "resnet20": resnet20, "resnet34": resnet34}


__all__ = ["vgg16", "resnet20", "resnet34", "export_onnx", "BUILDERS", "VGG", "ResNet",
           "BasicBlock"]
