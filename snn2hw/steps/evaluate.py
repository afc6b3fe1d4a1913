"""The evaluate step: ANN and float-SNN accuracy on the test split at several T from one
causal run, and the float-vs-exported comparison on the same input spikes."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .. import ann, data, snn
from ..errors import InputError
from ..ir import Graph
from ..quantize.fixed import prepare_fixed, saturation
from ..quantize.qnet import QuantizedNetwork
from ..snn import simulate
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

    def as_dict(self) -> dict:
        return {"ann_accuracy": self.ann_accuracy,
                "snn_accuracy": {str(k): v for k, v in self.snn_accuracy.items()},
                "ties": {str(k): v for k, v in self.ties.items()},
                "spikes_per_neuron_per_step": self.rates, "samples": self.samples}
        # No wall-clock time here: artifacts must be byte-identical for the same inputs.


def evaluate(graph: Graph, net: snn.SpikingNetwork, scales: dict[str, float], x: np.ndarray,
             y: np.ndarray, timesteps: list[int], seed: int, device: str = "cpu",
             batch_size: int = 64, label: str = "simulate",
             source_scales: dict[str, float] | None = None,
             reset: str = "zero", progress: ProgressFactory = silent) -> Evaluation:
    """ANN accuracy, and SNN accuracy at every T in ``timesteps`` from one run of max(T)."""
    start = time.monotonic()
    ann_acc = float((ann.predict(graph, x, device=device).argmax(1) == y).mean())
    prep = simulate.prepare_float(net, scales, device, source_scales=source_scales,
                                  reset=reset)
    encoder = make_encoder("poisson", x, input_scale=scales[net.input], seed=seed,
                           stream=EVALUATION_STREAM)
    top = max(timesteps)
    with progress(len(x) * top, label) as bar:
        result = simulate.simulate(prep, encoder, top, checkpoints=timesteps,
                                   batch_size=batch_size, progress=bar)
    acc, ties = {}, {}
    for t in sorted(timesteps):
        pred, ties[t] = result.predictions(t)
        acc[t] = float((pred == y).mean())
    rates = {name: st.rate for name, st in result.stats.items()}
    currents = {name: st.max_current for name, st in result.stats.items()}
    return Evaluation(ann_acc, acc, ties, rates, len(x), time.monotonic() - start, currents)


def prepare_network(qnet: QuantizedNetwork, device: str = "cpu") -> simulate.Prepared:
    """The reference simulator for an exported network: bit-accurate for integer
    networks, float (threshold 1, folded float synapses) otherwise."""
    if all(isinstance(la.threshold, (int, np.integer)) for la in qnet.layers):
        return prepare_fixed(qnet, device)
    dev = torch.device(device)
    layers = []
    for la in qnet.layers:
        bias = None if la.bias_mant is None else torch.as_tensor(
            np.asarray(la.bias_mant, dtype=np.float64).reshape(la.shape), dtype=torch.float64,
            device=dev)
        syn = [simulate.Synapse(s.source, s.lag, s.apply) for s in la.synapses]
        layers.append(simulate.PreparedLayer(la.name, la.shape, syn, bias,
                                             float_neuron(float(la.threshold), qnet.reset),
                                             la.is_output, la.depth))
    return simulate.Prepared(qnet.input, qnet.input_shape, layers, dev, torch.float64)


def accuracy(result: simulate.SimResult, y: np.ndarray, timesteps: int) -> tuple[float, int]:
    pred, ties = result.predictions(timesteps)
    return float((pred == y).mean()), ties


def compare_float_fixed(net: snn.SpikingNetwork, scales: dict[str, float],
                        qnet: QuantizedNetwork, x: np.ndarray, y: np.ndarray, timesteps: int,
                        seed: int, device: str, source_scales: dict[str, float] | None = None,
                        progress: ProgressFactory = silent) -> dict:
    """Float SNN vs the exported network on the same input spikes."""
    out = {"samples": len(x), "timesteps": timesteps}
    float_prep = simulate.prepare_float(net, scales, device, source_scales=source_scales,
                                        reset=qnet.reset)
    for label, prep in (("float", float_prep),
                        ("exported", prepare_network(qnet, device))):
        enc = make_encoder("poisson", x, input_scale=scales[net.input], seed=seed,
                           stream=EVALUATION_STREAM)
        with progress(len(x) * timesteps, f"simulate {label}") as bar:
            res = simulate.simulate(prep, enc, timesteps, progress=bar)
        out[f"{label}_accuracy"], out[f"{label}_ties"] = accuracy(res, y, timesteps)
        out[f"{label}_rates"] = {k: v.rate for k, v in res.stats.items()}
        if label == "exported" and hasattr(prep.layers[0].neuron, "saturated"):
            out["saturated_neuron_steps"] = saturation(prep)
    return out
