"""Read an ONNX file safely: clear errors for bad bytes, and external data confined to the
model's own directory (a ``location`` with ``..``, an absolute path or an escaping symlink is
refused before anything is read).

Before anything is converted, :func:`load_model` also refuses a graph with a cycle or a
dangling input, a tensor that cannot be decoded or holds NaN/Inf, and a model whose weights
and activations (of one sample, float64) would not fit the memory limit: the limit is the
``memory_limit`` argument, else the environment variable ``SNN2HW_MEMORY_LIMIT`` (bytes, or
with a K/M/G/T suffix), else half of the physical memory.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import onnx
import onnx.external_data_helper as edh
import onnx.numpy_helper
from google.protobuf.message import DecodeError

from ..errors import InputError, ModelFileError

MEMORY_LIMIT_ENV = "SNN2HW_MEMORY_LIMIT"
BYTES_PER_VALUE = 8  # the IR and the ANN forward pass on CPU use float64
_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _external_location(tensor: onnx.TensorProto) -> str | None:
    if tensor.data_location != onnx.TensorProto.EXTERNAL:
        return None
    for entry in tensor.external_data:
        if entry.key == "location":
            return entry.value
    raise ModelFileError(f"tensor {tensor.name!r} has external data without a location")


def _check_external(model: onnx.ModelProto, base: Path) -> None:
    root = base.resolve()
    for tensor in edh._get_all_tensors(model):
        location = _external_location(tensor)
        if location is None:
            continue
        rel = Path(location)
        if rel.is_absolute() or ".." in rel.parts or location.startswith(("/", "\\")):
            raise ModelFileError(f"tensor {tensor.name!r}: external data location {location!r} "
                                 "points outside the model's directory; refused")
        target = (root / rel).resolve()
        if root not in target.parents and target != root:
            raise ModelFileError(f"tensor {tensor.name!r}: external data {location!r} resolves "
                                 f"to {target}, outside the model's directory; refused")
        if not target.is_file():
            raise ModelFileError(f"tensor {tensor.name!r}: external data file {location!r} "
                                 f"not found next to the model")


def _node_label(node: onnx.NodeProto, index: int) -> str:
    return f"{node.name or f'{node.op_type}_{index}'!r} ({node.op_type})"


def _check_topology(model: onnx.ModelProto, path: Path) -> None:
    """Name a dangling input (a tensor nothing produces) or a cycle, which the ONNX
    checker reports only as 'not topologically sorted'."""
    g = model.graph
    known = {"", *(i.name for i in g.input), *(i.name for i in g.initializer)}
    produced = {out: index for index, node in enumerate(g.node) for out in node.output if out}
    for index, node in enumerate(g.node):
        for name in node.input:
            if name not in known and name not in produced:
                raise ModelFileError(f"{path}: node {_node_label(node, index)} reads tensor "
                                     f"{name!r}, which no node, initializer or graph input "
                                     "produces (dangling input)", node=node.name, tensor=name)
    for out in g.output:
        if out.name not in known and out.name not in produced:
            raise ModelFileError(f"{path}: graph output {out.name!r} is produced by no node",
                                 tensor=out.name)
    consumers: dict[int, list[int]] = {index: [] for index in range(len(g.node))}
    missing = {}
    for index, node in enumerate(g.node):
        deps = {produced[n] for n in node.input if n in produced}
        missing[index] = len(deps)
        for dep in deps:
            consumers[dep].append(index)
    ready = [index for index, count in missing.items() if count == 0]
    done: set[int] = set()
    while ready:
        index = ready.pop()
        done.add(index)
        for user in consumers[index]:
            missing[user] -= 1
            if missing[user] == 0:
                ready.append(user)
    if len(done) < len(g.node):
        # Downstream nodes wait too; peel them off to name the nodes on the cycle.
        stuck = set(range(len(g.node))) - done
        peeled = True
        while peeled:
            ends = {i for i in stuck if not any(u in stuck for u in consumers[i])}
            stuck -= ends
            peeled = bool(ends)
        stuck = [_node_label(g.node[i], i) for i in sorted(stuck)]
        shown = ", ".join(stuck[:6]) + (f" and {len(stuck) - 6} more" if len(stuck) > 6 else "")
        raise ModelFileError(f"{path}: the graph has a cycle through node(s) {shown}"
                             "; each waits for its own output", nodes=stuck)


def _graph_tensors(model: onnx.ModelProto):
    """(name, TensorProto) of every initializer and Constant-node tensor."""
    for init in model.graph.initializer:
        yield f"initializer {init.name!r}", init
    for index, node in enumerate(model.graph.node):
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
                    yield f"constant {_node_label(node, index)}", attr.t


def _check_tensors(model: onnx.ModelProto, path: Path) -> None:
    """Every tensor decodes to its declared shape and holds only finite numbers."""
    for what, tensor in _graph_tensors(model):
        try:
            value = onnx.numpy_helper.to_array(tensor)
        except Exception as exc:  # noqa: BLE001 - any decoding failure of a user's tensor
            raise ModelFileError(f"{path}: {what} cannot be decoded (data type "
                                 f"{tensor.data_type}, dims {list(tensor.dims)}): "
                                 f"{str(exc).splitlines()[0] if str(exc) else exc!r}",
                                 tensor=tensor.name) from None
        if value.dtype.kind in "fc" and value.size and not np.isfinite(value).all():
            nan, inf = int(np.isnan(value).sum()), int(np.isinf(value).sum())
            raise ModelFileError(f"{path}: {what} contains {nan} NaN and {inf} infinite "
                                 f"value(s) of {value.size}; weights must be finite",
                                 tensor=tensor.name)


def _check_float_attributes(model: onnx.ModelProto, path: Path) -> None:
    for index, node in enumerate(model.graph.node):
        for attr in node.attribute:
            values = [attr.f] if attr.type == onnx.AttributeProto.FLOAT else (
                list(attr.floats) if attr.type == onnx.AttributeProto.FLOATS else [])
            if not all(math.isfinite(v) for v in values):
                raise ModelFileError(f"{path}: node {_node_label(node, index)}: attribute "
                                     f"{attr.name} = {values if len(values) > 1 else values[0]}"
                                     " is not finite", node=node.name, attribute=attr.name)


def _checker(model: onnx.ModelProto, path: Path) -> None:
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, UnicodeDecodeError, ValueError) as exc:
        text = " ".join(str(exc).split()) or exc.__class__.__name__
        text = text if len(text) <= 300 else text[:300] + "…"
        raise ModelFileError(f"{path}: fails the ONNX checker: {text}") from None


# ------------------------------------------------------------------------- memory


def physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def default_memory_limit() -> tuple[int, str]:
    """(limit in bytes, where it comes from)."""
    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if text:
        number, suffix = text.upper().rstrip("IB"), ""
        if number and number[-1] in _SUFFIXES:
            number, suffix = number[:-1], number[-1]
        try:
            value = float(number) * _SUFFIXES[suffix]
        except ValueError:
            value = -1.0
        if not math.isfinite(value) or value <= 0:
            raise InputError(f"{MEMORY_LIMIT_ENV}={text!r} is not a positive size "
                             "(bytes, or a number with K, M, G or T)")
        return int(value), f"{MEMORY_LIMIT_ENV}"
    total = physical_memory()
    if total is None:
        return 64 << 30, "the default of 64 GiB"
    return total // 2, "half of the physical memory"


def _elements(dims) -> int:
    return math.prod(max(int(d), 1) for d in dims) if dims else 1


def _shape_of(vi: onnx.ValueInfoProto) -> list[int] | None:
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else 1 for d in tt.shape.dim]


def estimate_memory(model: onnx.ModelProto) -> dict:
    """Bytes the IR needs for the weights and for the activations of one sample (float64,
    batch axis 1, unknown dimensions counted as 1), from the declared shapes only: nothing
    is decoded or allocated."""
    g = model.graph
    weights = sum(_elements(t.dims) for _, t in _graph_tensors(model)) * BYTES_PER_VALUE
    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # noqa: BLE001 - best effort: the declared inputs/outputs still count
        inferred = g
    inits = {i.name for i in g.initializer}
    shapes = {}
    for vi in [*g.input, *inferred.value_info, *g.output, *inferred.output]:
        shape = _shape_of(vi)
        if shape is not None and vi.name not in inits:
            shapes[vi.name] = [1, *shape[1:]] if shape else shape
    activations = sum(_elements(s) for s in shapes.values()) * BYTES_PER_VALUE
    largest = max(shapes.items(), key=lambda kv: _elements(kv[1]), default=(None, None))
    return {"weights": weights, "activations": activations,
            "total": weights + activations, "largest": largest}


def _size(n: int) -> str:
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"


def refuse_if_too_large(path: Path, weights: int, activations: int, largest,
                        limit: int | None = None) -> None:
    """Raise a one-line ModelFileError stating the estimate and the limit when
    ``weights + activations`` bytes exceed the limit (``largest``: (name, shape) or None)."""
    source = "memory_limit"
    if limit is None:
        limit, source = default_memory_limit()
    total = weights + activations
    if total <= limit:
        return
    where = ""
    if largest is not None and largest[0] is not None:
        where = f"; largest activation {largest[0]!r} {tuple(largest[1])}"
    raise ModelFileError(
        f"{path}: the model needs about {_size(total)} for one sample (weights "
        f"{_size(weights)}, activations {_size(activations)}, float64{where}), above the "
        f"memory limit of {_size(limit)} ({source})",
        hint=f"check the model's dimensions, or raise the limit with {MEMORY_LIMIT_ENV}",
        estimate=total, limit=limit)


def check_memory(model: onnx.ModelProto, path: Path, limit: int | None = None) -> dict:
    """Refuse, before anything is decoded or allocated, a model whose estimate exceeds the
    limit; return the estimate."""
    est = estimate_memory(model)
    refuse_if_too_large(path, est["weights"], est["activations"], est["largest"], limit)
    return est


def load_model(path: str | os.PathLike, memory_limit: int | None = None) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    data = path.read_bytes()
    if not data:
        raise ModelFileError(f"{path}: file is empty")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ModelFileError(f"{path}: not an ONNX model ({exc.__class__.__name__})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise ModelFileError(f"{path}: not an ONNX model (no graph or no nodes)")
    _check_topology(model, path)
    _check_external(model, path.parent)
    check_memory(model, path, memory_limit)
    try:
        edh.load_external_data_for_model(model, str(path.parent))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: cannot load external data: {exc}") from None
    _checker(model, path)
    _check_tensors(model, path)
    _check_float_attributes(model, path)
    return model


def external_files(path: str | os.PathLike) -> list[Path]:
    """The external data files the model at ``path`` uses, in first-use order; none when the
    model cannot be parsed or :func:`load_model` would refuse its external data."""
    path = Path(path)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(path.read_bytes())
        _check_external(model, path.parent)
    except (DecodeError, RuntimeError, ValueError, OSError, ModelFileError):
        return []
    files: list[Path] = []
    for tensor in edh._get_all_tensors(model):
        location = _external_location(tensor)
        if location is not None and (path.parent / location) not in files:
            files.append(path.parent / location)
    return files
