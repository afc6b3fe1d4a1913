"""Evaluate IR nodes with torch: the ANN forward pass and the linear maps the SNN reuses."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import ir, precision


def tensor(array: np.ndarray | None, like: torch.Tensor) -> torch.Tensor | None:
    if array is None:
        return None
    return torch.as_tensor(array, dtype=like.dtype, device=like.device)


def _pad(x: torch.Tensor, padding: tuple[int, int, int, int]) -> torch.Tensor:
    top, left, bottom, right = padding
    if top == bottom and left == right:
        return x
    return F.pad(x, (left, right, top, bottom))


def _sym(padding: tuple[int, int, int, int]) -> tuple[int, int]:
    top, left, bottom, right = padding
    return (top, left) if (top == bottom and left == right) else (0, 0)


def _conv(node: ir.Conv, x: torch.Tensor, with_bias: bool) -> torch.Tensor:
    bias = tensor(node.bias, x) if with_bias else None
    return F.conv2d(_pad(x, node.padding), tensor(node.weight, x), bias, node.stride,
                    _sym(node.padding), node.dilation, node.groups)


def _dense(node: ir.Dense, x: torch.Tensor, with_bias: bool) -> torch.Tensor:
    bias = tensor(node.bias, x) if with_bias else None
    return F.linear(x, tensor(node.weight, x), bias)


def pool_windows(size: int, kernel: int, stride: int, before: int, after: int,
                 ceil_mode: bool) -> int:
    """Windows along one axis. Ceil mode rounds up, but (ONNX Runtime's and torch's rule)
    keeps a last window only when it starts inside the input or the leading padding."""
    span = size + before + after - kernel
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    return out - 1 if (out - 1) * stride >= size + before else out


def _window_avgpool(node: ir.AvgPool, x: torch.Tensor) -> torch.Tensor:
    """Sum over each window divided by the positions it covers inside the input (and the
    declared padding when ``count_include_pad``), never zeros past the padding; or by
    ``divisor_override``. Exact for floor and ceil mode and any padding."""
    top, left, bottom, right = node.padding
    h, w = x.shape[-2:]
    rows = pool_windows(h, node.kernel[0], node.stride[0], top, bottom, node.ceil_mode)
    cols = pool_windows(w, node.kernel[1], node.stride[1], left, right, node.ceil_mode)
    # What the windows span past the input's end: zeros, or a crop where they stop short.
    down = (rows - 1) * node.stride[0] + node.kernel[0] - (h + top)
    across = (cols - 1) * node.stride[1] + node.kernel[1] - (w + left)
    total = F.avg_pool2d(F.pad(x, (left, across, top, down)), node.kernel, node.stride,
                         divisor_override=1)
    if node.divisor_override:
        return total / node.divisor_override
    ones = torch.ones((1, 1, h, w), dtype=x.dtype, device=x.device)
    counted = F.pad(ones, (left, right, top, bottom), value=float(node.count_include_pad))
    counted = F.pad(counted, (0, across - right, 0, down - bottom))
    return total / F.avg_pool2d(counted, node.kernel, node.stride, divisor_override=1)


def _avgpool(node: ir.AvgPool, x: torch.Tensor, with_bias: bool) -> torch.Tensor:
    if node.ceil_mode or node.divisor_override:
        return _window_avgpool(node, x)
    top, left, bottom, right = node.padding
    if top == bottom and left == right and top * 2 <= node.kernel[0] and left * 2 <= node.kernel[1]:
        return F.avg_pool2d(x, node.kernel, node.stride, (top, left),
                            count_include_pad=node.count_include_pad)
    # Asymmetric or large padding: pad explicitly, then correct the divisor if needed.
    padded = F.pad(x, (left, right, top, bottom))
    out = F.avg_pool2d(padded, node.kernel, node.stride)
    if not node.count_include_pad:
        ones = F.pad(torch.ones_like(x[:1, :1]), (left, right, top, bottom))
        frac = F.avg_pool2d(ones, node.kernel, node.stride)
        out = out / frac
    return out


def _place(node: ir.Place, x: torch.Tensor, with_bias: bool) -> torch.Tensor:
    after = node.total - node.offset - x.shape[1]
    if after < 0:
        raise RuntimeError(f"{x.shape[1]} channels at offset {node.offset} exceed "
                           f"{node.total}")
    spatial = [0, 0] * (x.dim() - 2)
    return F.pad(x, (*spatial, node.offset, after))


def _flatten(node: ir.Flatten, x: torch.Tensor, with_bias: bool) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


LINEAR_OPS: dict[type, Callable[[ir.Node, torch.Tensor, bool], torch.Tensor]] = {
    ir.Conv: _conv, ir.Dense: _dense, ir.AvgPool: _avgpool, ir.Place: _place,
    ir.Flatten: _flatten,
}


def apply_linear(node: ir.Node, x: torch.Tensor, with_bias: bool = True) -> torch.Tensor:
    """Apply a linear node to a batch ``x`` of shape ``(B, *node_input_shape)``."""
    return LINEAR_OPS[type(node)](node, x, with_bias)


def forward(graph: ir.Graph, x: torch.Tensor, keep: set[str] | None = None
            ) -> dict[str, torch.Tensor]:
    """Run the ANN on a batch. Returns the output under ``graph.output`` and every node
    named in ``keep``."""
    keep = set(keep or ()) | {graph.output}
    users = graph.consumers()
    remaining = {name: len(u) for name, u in users.items()}
    values: dict[str, torch.Tensor] = {}
    result: dict[str, torch.Tensor] = {}
    for name, node in graph.nodes.items():
        if isinstance(node, ir.Input):
            out = x
        elif isinstance(node, ir.ReLU):
            out = torch.relu(values[node.inputs[0]])
        elif isinstance(node, ir.Add):
            out = values[node.inputs[0]]
            for other in node.inputs[1:]:
                out = out + values[other]
        else:
            out = apply_linear(node, values[node.inputs[0]])
        values[name] = out
        if name in keep:
            result[name] = out
        for src in node.inputs:  # free what no later node needs
            remaining[src] -= 1
            if remaining[src] == 0 and src not in keep:
                values.pop(src, None)
    return result


def predict(graph: ir.Graph, x: np.ndarray, batch_size: int = 256,
            device: str = "cpu") -> np.ndarray:
    """ANN outputs (logits) for a numpy batch, float64 by default on CPU."""
    dtype = precision.ann_dtype(device)
    outs = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            batch = np.asarray(x[start:start + batch_size])  # lazy samples are read here
            xb = torch.as_tensor(batch, dtype=dtype, device=device)
            outs.append(forward(graph, xb)[graph.output].cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0,))
