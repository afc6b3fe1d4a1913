"""The evaluate step: ANN and float-SNN accuracy on the test split at several T from one
causal run, and the float-vs-exported comparison on the same input spikes."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .. import ann, data, distributed, precision, snn
from ..errors import InputError
from ..ir import Graph
from ..quantize.fixed import input_encoder, prepare_fixed, saturation
from ..quantize.qnet import QuantizedNetwork
from ..snn import simulate
from ..snn.options import Conversion
from ..snn.encoders import make_encoder
from ..snn.neurons import float_neuron
from .progress import ProgressFactory, silent
from .settings import EVALUATION_STREAM


def num_classes(graph: Graph) -> int:
    return int(np.prod(graph.nodes[graph.output].shape))


def load_data(graph: Graph, spec: str, preprocess: data.Preprocess) -> data.Dataset:
    if graph.input_shape and len(graph.input_shape) != 3 and spec == data.DIGITS:
        raise InputError(f"the digits data set needs an image model; input is "
                         f"{graph.input_shape}")
    return data.load(spec, graph.input_shape, num_classes(graph), preprocess)


@dataclass
class Evaluation:
    ann_accuracy: float
    snn_accuracy: dict[int, float]
    ties: dict[int, int]
    rates: dict[str, float]
    samples: int
    seconds: float
    max_current: dict[str, float] = None
    latency: dict[int, int] | None = None   # pipelined window: T -> steps to the result

    def as_dict(self) -> dict:
        out = {"ann_accuracy": self.ann_accuracy,
               "snn_accuracy": {str(k): v for k, v in self.snn_accuracy.items()},
               "ties": {str(k): v for k, v in self.ties.items()},
               "spikes_per_neuron_per_step": self.rates, "samples": self.samples}
        if self.latency is not None:   # absent for the fill window (files as before)
            out["latency"] = {str(k): v for k, v in self.latency.items()}
        return out
        # No wall-clock time here: artifacts must be byte-identical for the same inputs.


def evaluate(graph: Graph, net: snn.SpikingNetwork, scales: dict[str, float], x: np.ndarray,
             y: np.ndarray, timesteps: list[int], seed: int, device: str = "cpu",
             batch_size: int = 64, label: str = "simulate",
             source_scales: dict[str, float] | None = None,
             reset: str = "zero", progress: ProgressFactory = silent,
             conversion: Conversion | None = None) -> Evaluation:
    """ANN accuracy, and SNN accuracy at every T in ``timesteps`` from one run of max(T)
    (T: the ``conversion``'s window; the pipelined run lasts T + depth steps)."""
    conversion = conversion or Conversion()
    start = time.monotonic()
    lo, hi = distributed.owned(len(x), 256)  # this rank's samples (all in one process)
    ann_correct = _ann_correct(graph, x[lo:hi], y[lo:hi], device)
    prep = simulate.prepare_float(net, scales, device, precision.snn_dtype(),
                                  source_scales=source_scales, reset=reset,
                                  conversion=conversion)
    lo, hi = distributed.owned(len(x), batch_size)
    encoder = make_encoder(conversion.coding, x[lo:hi], input_scale=scales[net.input],
                           seed=seed, stream=EVALUATION_STREAM, indices=np.arange(lo, hi))
    top = max(timesteps)
    with progress(len(x) * prep.run_steps(top), label) as bar:
        result = simulate.simulate(prep, encoder, top, checkpoints=timesteps,
                                   batch_size=batch_size, progress=bar)
    correct, ties = {}, {}
    for t in sorted(timesteps):
        pred, ties[t] = result.predictions(t)
        correct[t] = int((pred == y[lo:hi]).sum())
    ann_acc, correct, ties = _sum_over_ranks(ann_correct, correct, ties, len(x))
    acc = {t: c / max(len(x), 1) for t, c in correct.items()}
    distributed.merge_layer_stats(result.stats)
    rates = {name: st.rate for name, st in result.stats.items()}
    currents = {name: st.max_current for name, st in result.stats.items()}
    latency = ({t: conversion.latency(t, net.depth) for t in sorted(timesteps)}
               if conversion.window == "pipelined" else None)
    return Evaluation(ann_acc, acc, ties, rates, len(x), time.monotonic() - start, currents,
                      latency)


def _ann_correct(graph: Graph, x: np.ndarray, y: np.ndarray, device: str) -> int:
    return int((ann.predict(graph, x, device=device).argmax(1) == y).sum()) if len(x) else 0


def _sum_over_ranks(ann_correct: int, correct: dict[int, int], ties: dict[int, int],
                    n: int) -> tuple[float, dict[int, int], dict[int, int]]:
    """Correct predictions and ties of all ranks (:mod:`snn2hw.distributed`); the ANN
    accuracy as a fraction."""
    keys = sorted(correct)
    counts = distributed.all_sum([ann_correct] + [correct[t] for t in keys]
                                 + [ties[t] for t in keys])
    k = len(keys)
    return (counts[0] / max(n, 1), dict(zip(keys, counts[1:1 + k])),
            dict(zip(keys, counts[1 + k:])))


def prepare_network(qnet: QuantizedNetwork, device: str = "cpu") -> simulate.Prepared:
    """The reference simulator for an exported network: bit-accurate for integer
    networks, float (threshold 1, folded float synapses) otherwise."""
    if all(isinstance(la.threshold, (int, np.integer)) for la in qnet.layers):
        return prepare_fixed(qnet, device)
    dev = torch.device(device)
    conv = qnet.conversion
    layers = []
    for la in qnet.layers:
        bias = None if la.bias_mant is None else torch.as_tensor(
            np.asarray(la.bias_mant, dtype=np.float64).reshape(la.shape), dtype=torch.float64,
            device=dev)
        syn = [simulate.Synapse(s.source, s.lag, s.apply) for s in la.synapses]
        layers.append(simulate.PreparedLayer(la.name, la.shape, syn, bias,
                                             float_neuron(float(la.threshold),
                                                          conv.layer_reset(qnet.reset,
                                                                           la.is_output),
                                                          conv.layer_v_init(la.is_output)),
                                             la.is_output, la.depth))
    return simulate.Prepared(qnet.input, qnet.input_shape, layers, dev, torch.float64,
                             conv.window, conv.readout)


def accuracy(result: simulate.SimResult, y: np.ndarray, timesteps: int) -> tuple[float, int]:
    pred, ties = result.predictions(timesteps)
    return float((pred == y).mean()), ties


def compare_float_fixed(net: snn.SpikingNetwork, scales: dict[str, float],
                        qnet: QuantizedNetwork, x: np.ndarray, y: np.ndarray, timesteps: int,
                        seed: int, device: str, source_scales: dict[str, float] | None = None,
                        progress: ProgressFactory = silent) -> dict:
    """Float SNN vs the exported network on the same input spikes."""
    out = {"samples": len(x), "timesteps": timesteps}
    conv = qnet.conversion
    float_prep = simulate.prepare_float(net, scales, device, source_scales=source_scales,
                                        reset=qnet.reset, conversion=conv)
    for label, prep in (("float", float_prep),
                        ("exported", prepare_network(qnet, device))):
        enc = (make_encoder(conv.coding, x, input_scale=scales[net.input], seed=seed,
                            stream=EVALUATION_STREAM) if label == "float"
               else input_encoder(qnet, x, seed, EVALUATION_STREAM))
        with progress(len(x) * timesteps, f"simulate {label}") as bar:
            res = simulate.simulate(prep, enc, timesteps, progress=bar)
        out[f"{label}_accuracy"], out[f"{label}_ties"] = accuracy(res, y, timesteps)
        out[f"{label}_rates"] = {k: v.rate for k, v in res.stats.items()}
        if label == "exported" and hasattr(prep.layers[0].neuron, "saturated"):
            out["saturated_neuron_steps"] = saturation(prep)
    return out
