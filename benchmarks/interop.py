"""Interoperability figures on a trained network: what the NIR and netx files compute when
their readers run them, against snn2hw's own simulators on the same input spikes.

    python benchmarks/interop.py --model build/demo/digits_vgg.onnx --samples 20 --timesteps 64

(the model is trained first with examples/digits_vgg.py if the file does not exist).
Prints, for the digits test split:
- the float SNN's accuracy under snn2hw's time convention (one step per hop) and under the
  NIR readers' (same step);
- sinabs running the NIR file of the network calibrated with reset by subtraction: the
  fraction of samples whose output spike counts equal snn2hw's float simulator's
  (same-step) and both accuracies;
- lava-dl's netx loader running the netx file on Lava: the fraction of samples identical
  in every spike of every layer to the fixed-point reference, and the wall time.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from snn2hw import backends, data, formats, snn
from snn2hw.calibrate import calibrate
from snn2hw.quantize.fixed import prepare_fixed
from snn2hw.snn import simulate
from snn2hw.snn.conventions import as_sinabs, with_convention
from snn2hw.snn.encoders import make_encoder
from snn2hw.steps.exchange import FloatNetwork
from snn2hw.steps.evaluate import load_data
from snn2hw.steps.settings import model_preprocess

ROOT = Path(__file__).resolve().parent.parent


def poisson(x, input_scale: float, seed: int):
    """The evaluation stream (1) of the paper's signed rate code."""
    return make_encoder("poisson", x, input_scale=input_scale, seed=seed, stream=1)


def float_counts(fnet: FloatNetwork, x, timesteps: int, seed: int, convention: str):
    cal = fnet.calibration
    prep = with_convention(simulate.prepare_float(fnet.net, cal.scales,
                                                  source_scales=cal.source_scales,
                                                  reset=cal.reset, dtype=torch.float64),
                           convention)
    enc = poisson(x, cal.scales[fnet.net.input], seed)
    return simulate.simulate(prep, enc, timesteps).counts[timesteps]


def sinabs_counts(path: Path, spikes: np.ndarray) -> np.ndarray:
    import nir
    import sinabs

    b, t = spikes.shape[:2]
    reader = sinabs.from_nir(nir.read(str(path)), batch_size=b)
    with torch.no_grad():
        out = reader(torch.as_tensor(spikes.reshape(b * t, *spikes.shape[2:]),
                                     dtype=torch.float32))
    out = out[0] if isinstance(out, tuple) else out
    return out.reshape(b, t, -1).sum(axis=1).numpy().astype(np.int64)


def accuracy(counts: np.ndarray, y: np.ndarray) -> str:
    return f"{100 * float((counts.argmax(1) == y).mean()):.1f} %"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=ROOT / "build/demo/digits_vgg.onnx")
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--timesteps", type=int, default=64)
    p.add_argument("--calibration-samples", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-netx", action="store_true", help="skip the (slow) netx run")
    args = p.parse_args()
    if not args.model.exists():
        subprocess.run([sys.executable, str(ROOT / "examples/digits_vgg.py"), "-o",
                        str(args.model)], check=True)
    graph = formats.import_model(args.model)
    net = snn.lower(graph)
    pre = model_preprocess(graph)
    ds = load_data(graph, "digits", pre)
    x_cal = ds.x_train[:args.calibration_samples]
    x, y = ds.x_test[:args.samples], ds.y_test[:args.samples]
    t, n = args.timesteps, len(x)
    print(f"{args.model.name}: {len(net.layers)} spiking layers, {n} test samples, T = {t}, "
          "max-act thresholds")
    nets = {reset: FloatNetwork(net, calibrate("max-act", net, x_cal, reset=reset),
                                pre.to_json(), str(args.model)) for reset in ("zero", "subtract")}
    for reset, fnet in nets.items():
        hop = float_counts(fnet, x, t, args.seed, "hop")
        same = float_counts(fnet, x, t, args.seed, "same-step")
        print(f"float SNN, reset {reset}: one step per hop {accuracy(hop, y)}, "
              f"same step {accuracy(same, y)}")
    with tempfile.TemporaryDirectory() as tmp:
        fnet = nets["subtract"]
        path = Path(tmp) / "model.nir"
        backends.writer("nir").write(path, fnet, {"force": True})
        spikes = poisson(x, fnet.input_scale, args.seed).full(0, n, t)
        theirs, ours = sinabs_counts(path, spikes), float_counts(fnet, x, t, args.seed,
                                                                 "same-step")
        same = float((theirs == ours).all(axis=1).mean())
        print(f"NIR -> sinabs 2.0.3 (reset subtract, same step): output counts identical "
              f"for {100 * same:.1f} % of samples; sinabs {accuracy(theirs, y)}, "
              f"snn2hw {accuracy(ours, y)}")
        cal = fnet.calibration
        prep = as_sinabs(simulate.prepare_float(net, cal.scales, dtype=torch.float32,
                                                source_scales=cal.source_scales))
        mimic = simulate.simulate(prep, poisson(x, fnet.input_scale, args.seed),
                                  t).counts[t]
        print(f"  with sinabs's neuron in snn2hw's simulator (conventions.as_sinabs): "
              f"identical for {100 * float((theirs == mimic).all(axis=1).mean()):.1f} %")
        if not args.no_netx:
            netx_figures(graph, args, nets["zero"], x, Path(tmp))


def netx_figures(graph, args, fnet: FloatNetwork, x, tmp: Path) -> None:
    from snn2hw.exporters.netx.runner import run_netx
    from snn2hw.hardware import profiles
    from snn2hw.quantize import quantize

    writer = backends.writer("netx")
    profile = writer.constrain(profiles.load("loihi_sim"))
    cal = fnet.calibration
    qnet = quantize(fnet.net, cal.scales, profile, cal.source_scales, cal.reset)

    class Export:  # what the writer reads of an export
        preprocess, method, params = fnet.preprocess, cal.method, cal.params
    Export.qnet = qnet
    path = tmp / "model.net"
    t, n = args.timesteps, len(x)
    writer.write(path, Export, {"timesteps": t})
    names = [la.name for la in qnet.layers]
    ref = simulate.simulate(prepare_fixed(qnet), poisson(x, qnet.input_scale, args.seed), t,
                            record=names)
    spikes = poisson(x, qnet.input_scale, args.seed).full(0, n, t)
    start = time.monotonic()
    got = run_netx(str(path), spikes.reshape(n, t, -1), qnet.input_shape, t, timeout=3600)
    seconds = time.monotonic() - start
    same = np.ones(n, dtype=bool)
    for name, spk in zip(names, got):
        same &= (spk == ref.records[name]).all(axis=(1, 2))
    print(f"netx -> lava-dl 0.6.0 on Lava (fixed_pt): {100 * float(same.mean()):.1f} % of "
          f"samples identical in every spike of all {len(names)} layers to the fixed-point "
          f"reference; {n * t} steps in {seconds:.1f} s (with start-up)")


if __name__ == "__main__":
    main()
