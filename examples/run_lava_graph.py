"""Run an exported snn2hw network on Lava yourself, with plain lava-nc processes.

    .venv/bin/python examples/run_lava_graph.py build/demo/digits_vgg.loihi_sim.h5 \
        [--samples 5] [--timesteps 128]

The graph: a RingBuffer holding the Poisson input spikes of all samples back to back ->
one Sparse synapse per connection -> one LIFReset per layer (integrate-and-fire: du=4095,
dv=0; each layer reset when the next sample's first spikes reach it) -> a RingBuffer sink
on the output layer. The class of a sample is the output neuron with the most spikes.

Lava's runtime can hang for good after an exception in a process model; `snn2hw run` and
snn2hw.exporters.watchdog therefore run Lava in a child process under a timeout. This
script runs it in-process for readability: start it under `timeout 600` if you adapt it.
"""
from __future__ import annotations

import argparse

import numpy as np

import snn2hw  # noqa: F401  (makes lava-nc importable on Python 3.11)
from snn2hw.data import Preprocess, load
from snn2hw.encoding import PoissonEncoder
from snn2hw.export import load_export


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--timesteps", type=int, default=128)
    args = parser.parse_args()

    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIFReset
    from lava.proc.sparse.process import Sparse
    from lava.utils.weightutils import SignMode

    art = load_export(args.export)
    net = art.qnet                                  # the integer network (snn2hw.qnet)
    steps = args.timesteps
    data = load("digits", net.input_shape, net.output.size,
                Preprocess.from_json(art.preprocess))
    x, y = data.x_test[:args.samples], data.y_test[:args.samples]

    # Input: (N, T, pixels) spikes of -1/0/+1 -> one column per Lava step, sample after sample.
    spikes = PoissonEncoder(x, net.input_scale, art.seed, stream=1).full(0, len(x), steps)
    columns = spikes.reshape(len(x), steps, -1).transpose(2, 0, 1).reshape(-1, len(x) * steps)
    ports = {net.input: Source(data=columns.astype(np.int32)).s_out}

    neurons = {}
    for layer in net.layers:                        # layers come in topological order
        bias = np.zeros(layer.size) if layer.bias_mant is None else layer.bias_mant
        neurons[layer.name] = LIFReset(shape=(layer.size,), du=4095, dv=0,
                                       vth=int(layer.threshold), bias_mant=bias,
                                       bias_exp=layer.bias_exp, reset_interval=steps,
                                       reset_offset=(layer.depth + 1) % steps)
        ports[layer.name] = neurons[layer.name].s_out
        for syn in layer.synapses:
            if syn.lag != 1:
                raise SystemExit("delayed (residual) synapses: use `snn2hw run`")
            sparse = Sparse(weights=syn.matrix(), num_weight_bits=9, sign_mode=SignMode.MIXED,
                            num_message_bits=8 if syn.source == net.input else 0)
            ports[syn.source].connect(sparse.s_in)
            sparse.a_out.connect(neurons[layer.name].a_in)   # Lava sums all inputs

    sink = Sink(shape=(net.output.size,), buffer=len(x) * steps)
    ports[net.output.name].connect(sink.a_in)
    source_process = next(iter(neurons.values()))
    try:
        source_process.run(condition=RunSteps(num_steps=len(x) * steps),
                           run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        out = np.asarray(sink.data.get())           # (classes, N*T)
    finally:
        source_process.stop()
    # Steps before the output layer's depth still carry the previous sample's tail: skip.
    counts = out.reshape(net.output.size, len(x), steps)[:, :, net.output.depth:].sum(axis=2).T
    predicted = counts.argmax(axis=1)
    for i, (p, label) in enumerate(zip(predicted, y)):
        print(f"sample {i}: predicted {p}, label {label}, output spikes {counts[i].tolist()}")
    print(f"accuracy {np.mean(predicted == y):.2%} on {len(x)} samples")


if __name__ == "__main__":
    main()
