"""Run an exported snn2hw network on Lava yourself, with plain lava-nc processes.

    .venv/bin/python examples/run_lava_graph.py build/demo/digits_vgg.loihi_sim.h5 \
        [--data digits] [--samples 5] [--timesteps 128] [--seed N]

The graph: a RingBuffer holding the Poisson input spikes of all samples back to back ->
one Sparse synapse per connection -> one LIFReset per layer (integrate-and-fire; each
layer reset when the next sample's first spikes reach it) -> a RingBuffer sink on the
output layer. The class of a sample is the output neuron with the most spikes.

Everything Lava needs comes from the export file: its profile (stored in the file) gives
the tag (fixed_pt: bit-accurate integers; floating_pt: float models), the neuron's du/dv,
the weight and message bits; its reset mode gives the neuron process (``LIFReset`` resets
v to zero; subtract-reset exports use ``LIFResetSubtract`` from snn2hw.exporters.lava.procs,
LIFReset with v -= vth). ``--data`` is what `snn2hw run --data` takes (digits or a .npz
file); the samples and the input spikes are the ones `snn2hw run` uses for the same seed.

Lava's runtime can hang for good after an exception in a process model; `snn2hw run` and
snn2hw.exporters.lava.watchdog therefore run Lava in a child process under a timeout. This
script runs it in-process for readability, with a plain deadline (``--timeout``, 600 s by
default): when it passes, Lava's worker processes are killed and the script exits with 4.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys

import numpy as np

import snn2hw.exporters.lava  # noqa: F401  (makes lava-nc importable on Python 3.11)
# Lava's runtime sets the multiprocessing start method on import: before anything else may.
import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401,E402

from snn2hw import data  # noqa: E402
from snn2hw.hardware import profiles
from snn2hw.snn.encoders import make_encoder  # noqa: E402
from snn2hw.errors import InputError, Snn2hwError  # noqa: E402
from snn2hw.artifacts.export import load_export  # noqa: E402
from snn2hw.exporters.lava.backend import check_network, synapse_matrix  # noqa: E402
from snn2hw.exporters.lava.limits import weight_representation  # noqa: E402
from snn2hw.steps.pipeline import EVALUATION_STREAM  # noqa: E402


def build(net, profile, columns: np.ndarray, steps: int):
    """Source -> Sparse -> LIF graph of ``net`` under ``profile``; returns (LIFs, source)."""
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIFReset
    from lava.proc.sparse.process import Sparse
    from lava.utils.weightutils import SignMode

    if net.reset == "subtract":
        from snn2hw.exporters.lava.procs.subtract_lif import LIFResetSubtract as LIFReset
    fixed = profile.settings.tag == "fixed_pt"
    source = Source(data=columns.astype(np.int32 if fixed else np.float64))
    ports = {net.input: source.s_out}
    sparse_args = {}
    if fixed:  # Sparse keeps the low bits only if the weights are pre-shifted (see below)
        bits, shift = weight_representation(profile)
        sparse_args = dict(num_weight_bits=bits, sign_mode=SignMode.MIXED, weight_exp=-shift)
    neurons = {}
    for layer in sorted(net.layers, key=lambda la: la.depth):
        bias = np.zeros(layer.size) if layer.bias_mant is None else layer.bias_mant
        number = int if fixed else float
        neurons[layer.name] = LIFReset(
            shape=(layer.size,), du=number(profile.neuron_du), dv=number(profile.neuron_dv),
            vth=number(layer.threshold), bias_mant=np.asarray(bias).reshape(-1),
            bias_exp=layer.bias_exp if fixed else 0, reset_interval=steps,
            reset_offset=(layer.depth + 1) % steps)
        ports[layer.name] = neurons[layer.name].s_out
    for layer in net.layers:
        for syn in layer.synapses:
            weights = synapse_matrix(syn, profile.settings.tag)
            if fixed:  # Sparse drops 9 - bits low bits; weight_exp shifts the sums back
                weights = weights * (1 << shift)
            message_bits = (profile.settings.messages.input_bits if syn.source == net.input
                            else profile.settings.messages.hidden_bits)
            sparse = Sparse(weights=weights, num_message_bits=message_bits, **sparse_args)
            ports[syn.source].connect(sparse.s_in)
            sparse.a_out.connect(neurons[layer.name].a_in)   # Lava sums all inputs
    return neurons, source


def deadline(seconds: int) -> None:
    """Exit with 4 after ``seconds``, killing Lava's worker processes: a hung run cannot
    outlive it (a lock wait in the main thread is interrupted by the signal)."""
    def expire(signum, frame) -> None:
        print(f"error: Lava did not finish within {seconds} s", file=sys.stderr, flush=True)
        for child in multiprocessing.active_children():
            child.kill()
        os._exit(4)

    signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export")
    parser.add_argument("--data", default="digits", help="digits or a .npz file")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--timesteps", type=int, default=128)
    parser.add_argument("--seed", type=int, help="input spike seed (default: the export's)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds before the run is "
                        "abandoned, exit 4 (default 600)")
    args = parser.parse_args(argv)

    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink

    try:
        art = load_export(args.export)
        net = art.qnet                              # the integer network (snn2hw.quantize.qnet)
        profile = profiles.load_stored(art.profile_toml, args.export)
        if profile.backend != "lava":
            raise InputError(f"profile {profile.name} describes resources only")
        if any(syn.lag != 1 for la in net.layers for syn in la.synapses):
            raise InputError("delayed (residual) synapses: use `snn2hw run`")
        check_network(net, profile=profile)         # refuses what Lava cannot run exactly
        dataset = data.load(args.data, net.input_shape, net.output.size,
                            data.Preprocess.from_json(art.preprocess))
        x, y = data.take(dataset.x_test, dataset.y_test, args.samples, "evaluation")
    except Snn2hwError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    steps, seed = args.timesteps, art.seed if args.seed is None else args.seed

    # Input: (N, T, pixels) spikes of -1/0/+1 -> one column per Lava step, sample after sample.
    spikes = make_encoder("poisson", x, input_scale=net.input_scale, seed=seed,
                          stream=EVALUATION_STREAM).full(0, len(x), steps)
    columns = spikes.reshape(len(x), steps, -1).transpose(2, 0, 1).reshape(-1, len(x) * steps)
    neurons, source = build(net, profile, columns, steps)
    sink = Sink(shape=(net.output.size,), buffer=len(x) * steps)
    neurons[net.output.name].s_out.connect(sink.a_in)
    deadline(args.timeout)
    try:
        source.run(condition=RunSteps(num_steps=len(x) * steps),
                   run_cfg=Loihi2SimCfg(select_tag=profile.settings.tag))
        out = np.asarray(sink.data.get())           # (classes, N*T)
    finally:
        source.stop()
        signal.alarm(0)
    # Steps before the output layer's depth still carry the previous sample's tail: skip.
    fired = out.reshape(net.output.size, len(x), steps)[:, :, net.output.depth:] != 0
    counts = fired.sum(axis=2).T
    predicted = counts.argmax(axis=1)
    print(f"profile {profile.name} ({profile.settings.tag}), reset {net.reset}, data {args.data}")
    for i, (p, label) in enumerate(zip(predicted, y)):
        print(f"sample {i}: predicted {p}, label {label}, output spikes {counts[i].tolist()}")
    print(f"accuracy {np.mean(predicted == y):.2%} on {len(x)} samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
