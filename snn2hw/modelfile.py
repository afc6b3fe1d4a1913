"""Read an ONNX file safely: clear errors for bad bytes, and external data confined to the
model's own directory (a ``location`` with ``..``, an absolute path or an escaping symlink is
refused before anything is read)."""
from __future__ import annotations

import os
from pathlib import Path

import onnx
import onnx.external_data_helper as edh
from google.protobuf.message import DecodeError

from .errors import ModelFileError


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


def load_model(path: str | os.PathLike) -> onnx.ModelProto:
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
    _check_external(model, path.parent)
    try:
        edh.load_external_data_for_model(model, str(path.parent))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: cannot load external data: {exc}") from None
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        raise ModelFileError(f"{path}: fails the ONNX checker: {first}") from None
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
