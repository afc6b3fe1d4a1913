"""``--maxpool avg``: MaxPool converted as average pooling of the same window.

A max of spike trains is not a rate, so MaxPool has no exact spiking form; the paper
replaced it with average pooling and retrained. ``--maxpool avg`` makes the replacement
without retraining, so its cost must be visible: :func:`accuracy_cost` measures the ANN
accuracy of the modified network next to that of the original model, which onnxruntime runs
on the same samples. The replacement is recorded in the graph's metadata
(``snn2hw.maxpool = avg``), hence in every artifact made from it, and an artifact made with
it is refused without the option (:func:`check_recorded`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import ann
from ..errors import InputError
from ..ir import Graph
from .normalise import KEY as NORMALISATION

KEY = "snn2hw.maxpool"
CHOICES = ("refuse", "avg")


def replaced(graph: Graph) -> bool:
    return graph.metadata.get(KEY) == "avg"


def check_recorded(metadata: dict[str, str], maxpool: str, path: str | Path) -> None:
    """Refuse an artifact whose network converted MaxPool when the option is not given."""
    if metadata.get(KEY) == "avg" and maxpool != "avg":
        raise InputError(f"{path} was made with --maxpool avg (MaxPool converted as average "
                         "pooling); pass --maxpool avg to use it")


def _model_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Preprocessed samples as the ONNX model takes them: before its own normalisation."""
    if NORMALISATION not in graph.metadata:
        return x
    norm = json.loads(graph.metadata[NORMALISATION])
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = np.asarray(norm["mean"], dtype=np.float64).reshape(shape)
    std = np.asarray(norm["std"], dtype=np.float64).reshape(shape)
    return (x * std + mean).astype(np.float32)


def onnx_logits(model: str | Path, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The original model's outputs from onnxruntime (one thread; fixed batch sizes are
    respected by padding the last batch)."""
    import onnxruntime as ort

    from .scan import static_batch
    from .load import load_model

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    fixed = static_batch(load_model(model))
    step = fixed or batch_size
    outs = []
    for start in range(0, len(x), step):
        chunk = x[start:start + step].astype(np.float32)
        n = len(chunk)
        if fixed and n < fixed:
            chunk = np.concatenate([chunk, np.zeros((fixed - n, *chunk.shape[1:]), np.float32)])
        outs.append(np.asarray(sess.run(None, {name: chunk})[0]).reshape(len(chunk), -1)[:n])
    return np.concatenate(outs)


def accuracy_cost(model: str | Path, graph: Graph, x: np.ndarray, y: np.ndarray,
                  device: str = "cpu") -> dict | None:
    """ANN accuracy with average pooling and the original's (onnxruntime), when MaxPool was
    replaced; else None."""
    if not replaced(graph):
        return None
    ours = float((ann.predict(graph, x, device=device).argmax(1) == y).mean())
    original = float((onnx_logits(model, _model_input(graph, x)).argmax(1) == y).mean())
    return {"replacement": "average pooling of the same window", "samples": int(len(x)),
            "ann_accuracy": ours, "original_ann_accuracy_onnxruntime": original}
