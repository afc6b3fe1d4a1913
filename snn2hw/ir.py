"""The graph IR: one small dataclass per operation, in topological order.

An :class:`Graph` is a DAG of named nodes. Shapes exclude the batch dimension: images are
``(C, H, W)``, vectors ``(F,)``. Parameters are float64 numpy arrays. Nodes hold data
and validate it; evaluation lives in :mod:`snn2hw.ann`, spiking simulation in
:mod:`snn2hw.snn`, and storage in :mod:`snn2hw.artifacts.calibration`.

ANN semantics (what the SNN approximates with spike rates):
  Conv      y = conv2d(x, weight, bias, stride, padding, dilation, groups)   (torch layout)
  Dense     y = weight @ x + bias                                   weight: (out, in)
  AvgPool   y = avg_pool2d(x, kernel, stride, padding), padded zeros counted if
            ``count_include_pad`` (or the window sum over ``divisor_override``). With
            ``ceil_mode`` the window count rounds up (a last window is kept only if it
            starts inside the input or the leading padding) and windows that run past the
            padding divide by the positions they cover (input, plus the declared padding
            if counted), as ONNX Runtime does
  Place     y = zeros(total, ...); y[offset:offset + C] = x   (x of C channels or features):
            one input of a channel concatenation, which is the Add of its placed inputs
  Flatten   y = x.reshape(-1)  (C, H, W order)
  Add       y = sum(inputs)
  ReLU      y = max(x, 0)      -> an integrate-and-fire layer in the SNN
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InputError

Shape = tuple[int, ...]


def _check_positive(node: str, what: str, values: tuple[int, ...]) -> None:
    if any(int(v) <= 0 for v in values):
        raise InputError(f"node {node}: {what} must be positive, got {values}", node=node)


@dataclass
class Node:
    name: str
    inputs: list[str]
    shape: Shape = ()

    kind = "node"
    linear = False  # a linear (affine) map of one input

    def params(self) -> dict[str, np.ndarray]:
        return {}

    def attrs(self) -> dict[str, object]:
        return {}

    def num_params(self) -> int:
        return int(sum(p.size for p in self.params().values()))


@dataclass
class Input(Node):
    kind = "input"


@dataclass
class Conv(Node):
    weight: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 1, 1)))
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    kind = "conv"
    linear = True

    def __post_init__(self) -> None:
        if self.weight.ndim != 4:
            raise InputError(f"node {self.name}: conv weight must be 4-D, got {self.weight.shape}")
        _check_positive(self.name, "stride", self.stride)
        _check_positive(self.name, "dilation", self.dilation)
        if self.groups < 1 or self.weight.shape[0] % self.groups:
            raise InputError(f"node {self.name}: {self.weight.shape[0]} output channels "
                             f"not divisible by groups={self.groups}")
        if any(p < 0 for p in self.padding):
            raise InputError(f"node {self.name}: negative padding {self.padding}")

    def params(self):
        return {"weight": self.weight} | ({} if self.bias is None else {"bias": self.bias})

    def attrs(self):
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation,
                "groups": self.groups}


@dataclass
class Dense(Node):
    weight: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    bias: np.ndarray | None = None

    kind = "dense"
    linear = True

    def __post_init__(self) -> None:
        if self.weight.ndim != 2:
            raise InputError(f"node {self.name}: dense weight must be 2-D, got {self.weight.shape}")

    def params(self):
        return {"weight": self.weight} | ({} if self.bias is None else {"bias": self.bias})


@dataclass
class AvgPool(Node):
    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    count_include_pad: bool = True
    ceil_mode: bool = False
    divisor_override: int | None = None  # sum / this instead (counting paths, never stored)

    kind = "avgpool"
    linear = True

    def __post_init__(self) -> None:
        _check_positive(self.name, "kernel", self.kernel)
        _check_positive(self.name, "stride", self.stride)

    def attrs(self):
        # ceil_mode only when set: artifacts of floor-mode pools stay as they were.
        return {"kernel": self.kernel, "stride": self.stride, "padding": self.padding,
                "count_include_pad": self.count_include_pad} | (
                    {"ceil_mode": True} if self.ceil_mode else {})


@dataclass
class Place(Node):
    offset: int = 0
    total: int = 1

    kind = "place"
    linear = True

    def __post_init__(self) -> None:
        if self.offset < 0 or self.total < 1:
            raise InputError(f"node {self.name}: placement at offset {self.offset} of "
                             f"{self.total} channels", node=self.name)

    def attrs(self):
        return {"offset": self.offset, "total": self.total}


@dataclass
class Flatten(Node):
    kind = "flatten"
    linear = True


@dataclass
class Add(Node):
    kind = "add"


@dataclass
class ReLU(Node):
    kind = "relu"


NODE_TYPES: dict[str, type[Node]] = {
    cls.kind: cls for cls in (Input, Conv, Dense, AvgPool, Place, Flatten, Add, ReLU)
}


@dataclass
class Graph:
    """A DAG of nodes in topological order; ``output`` names the classifier output."""

    nodes: dict[str, Node]
    input: str
    output: str
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for name, node in self.nodes.items():
            if name != node.name:
                raise InputError(f"graph node key {name!r} differs from its name {node.name!r}")
            missing = [i for i in node.inputs if i not in seen]
            if missing:
                raise InputError(f"node {name}: inputs {missing} are not defined before it")
            seen.add(name)
        if self.input not in self.nodes or self.output not in self.nodes:
            raise InputError("graph input or output is not a node of the graph")

    @property
    def input_shape(self) -> Shape:
        return self.nodes[self.input].shape

    def consumers(self) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {name: [] for name in self.nodes}
        for node in self.nodes.values():
            for src in node.inputs:
                users[src].append(node.name)
        return users

    def num_params(self) -> int:
        return sum(n.num_params() for n in self.nodes.values())
