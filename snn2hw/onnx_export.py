"""Writing a trained torch model as an ONNX file that snn2hw's commands read: the model's
graph (TorchScript exporter, opset 17, dynamic batch axis) plus snn2hw's metadata (the
preprocessing and the data set). Used by :mod:`snn2hw.models` and the examples."""
from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import onnx
import torch
from torch import nn

from .data import Preprocess
from .fileio import atomic_path


def export_onnx(model: nn.Module, path: str | Path, input_shape: Sequence[int],
                preprocess: Preprocess | None = None, dataset: str | None = None) -> Path:
    """Export ``model`` in eval mode to ONNX and write it atomically.

    ``input_shape`` is one sample's shape, e.g. ``(3, 32, 32)``; the batch axis is dynamic.
    ``preprocess`` (mean/std per channel) and ``dataset`` (``digits`` or a data file) are
    stored as the ``snn2hw.preprocess`` and ``snn2hw.dataset`` metadata; ``None`` leaves
    the key out. The model is left in eval mode, on its device.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    example = torch.zeros((1, *(int(d) for d in input_shape)), device=device)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy (TorchScript) exporter's deprecation notice is expected; it writes the
        # same graph every time, which keeps the file byte-identical across runs.
        warnings.filterwarnings("ignore", category=DeprecationWarning,
                                message=".*TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        torch.onnx.export(model, (example,), buf, dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    proto = onnx.load_from_string(buf.getvalue())
    meta = {}
    if preprocess is not None:
        meta["snn2hw.preprocess"] = preprocess.to_json()
    if dataset is not None:
        meta["snn2hw.dataset"] = str(dataset)
    kept = [p for p in proto.metadata_props if p.key not in meta]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    with atomic_path(path) as tmp:
        tmp.write_bytes(proto.SerializeToString(deterministic=True))
    return path
