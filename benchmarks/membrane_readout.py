"""The membrane read-out in fixed point against float, and what the state's clip costs.

    .venv/bin/python benchmarks/membrane_readout.py build/demo/digits_vgg.onnx \
        --calibration c.h5 --profile loihi_sim --eval-samples 100 --timesteps 32,64,128,256

``c.h5``: a calibration made with ``--readout membrane`` (``--preset fast``, say). The
network is quantised as ``snn2hw export`` does, and the float SNN and the fixed-point
reference run once at the largest T on the same test images and input; every smaller T
is read from the same run. Printed per T, accuracy (%) of:

- ``float``: the float SNN (output threshold +inf: the exact potential);
- ``fixed, v only``: a diagnostic: the same output layer (the read-out's threshold) with
  the network's reset, the class the argmax of its 24-bit v alone (v clips);
- ``fixed``: the read-out now: the output layer resets by subtraction, count * thr + v;
- ``fixed, no clip``: the same network with an output v that cannot clip (the exact
  accumulated potential of the same output input, which no 24-bit v holds);

and for ``fixed``: the share of read-outs equal to the exact potential, the share of
predictions equal to those of the exact potential, and the output layer's clipped
neuron-steps over the whole run (only a potential below the lower clip, -(2**23 - 1), can
be clipped: :mod:`snn2hw.quantize.readout`).
"""
from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from snn2hw import data, formats
from snn2hw.quantize.fixed import FixedIFNeuron, input_encoder, prepare_fixed
from snn2hw.snn import simulate
from snn2hw.snn.encoders import make_encoder
from snn2hw.hardware import profiles
from snn2hw.quantize import quantize
from snn2hw.snn.options import Conversion
from snn2hw.steps.deploy import thresholds_for
from snn2hw.steps.options import CalibrationOptions, DataOptions
from snn2hw.steps.settings import EVALUATION_STREAM


def v_only_readout(prep: simulate.Prepared, qnet) -> simulate.Prepared:
    """The same output layer with the network's reset, read-out v alone (readout_step 0
    is set on the result): a diagnostic of what v alone holds."""
    out, la = prep.output, qnet.output
    out.neuron = FixedIFNeuron(int(la.threshold), la.bias_v(), la.shape, qnet.state_bits,
                               qnet.current_shift, prep.device, qnet.threshold_shift,
                               qnet.reset)
    return prep


def unclipped(prep: simulate.Prepared) -> simulate.Prepared:
    """The output layer's v without a clip (float64 holds the integers exactly)."""
    prep.output.neuron.arithmetic.v_max = math.inf
    return prep


def run(prep, encoder, timesteps: list[int], v_only: bool = False) -> simulate.SimResult:
    res = simulate.simulate(prep, encoder, max(timesteps), checkpoints=timesteps)
    if v_only:
        res.readout_step = 0.0
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--calibration", required=True)
    ap.add_argument("--profile", default="loihi_sim")
    ap.add_argument("--data", default="digits")
    ap.add_argument("--eval-samples", type=int, default=100)
    ap.add_argument("--timesteps", default="32,64,128,256")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps = sorted(int(t) for t in args.timesteps.split(","))
    graph = formats.import_model(args.model, "refuse")
    cal, _, dataset, net = thresholds_for(args.model, graph, args.calibration,
                                          DataOptions(spec=args.data), CalibrationOptions())
    conversion = Conversion.from_params(cal.params)   # as `snn2hw export` quantises
    if conversion.readout != "membrane":
        raise SystemExit("error: the calibration's read-out is not membrane")
    qnet = quantize(net, cal.scales, profiles.load(args.profile), cal.source_scales,
                    cal.reset, conversion, rates=cal.source_rates)
    x, y = data.take(dataset.x_test, dataset.y_test, args.eval_samples, "evaluation")
    conv = qnet.conversion
    float_prep = simulate.prepare_float(net, cal.scales, source_scales=cal.source_scales,
                                        reset=cal.reset, conversion=conv)
    results = {
        "float": run(float_prep, make_encoder(conv.coding, x, input_scale=cal.scales[net.input],
                                              seed=args.seed, stream=EVALUATION_STREAM),
                     steps),
        "fixed, v only": run(v_only_readout(prepare_fixed(qnet), qnet),
                             input_encoder(qnet, x, args.seed, EVALUATION_STREAM), steps, True),
    }
    fixed_prep = prepare_fixed(qnet)
    results["fixed"] = run(fixed_prep, input_encoder(qnet, x, args.seed, EVALUATION_STREAM),
                           steps)
    clipped = fixed_prep.output.neuron.saturated
    results["fixed, no clip"] = run(unclipped(prepare_fixed(qnet)),
                                    input_encoder(qnet, x, args.seed, EVALUATION_STREAM), steps)
    print(f"{args.model}, {qnet.profile}, {len(x)} test images, window {conv.window}, "
          f"output threshold {int(qnet.output.threshold)} << {qnet.threshold_shift}")
    names = list(results)
    print("T     " + "  ".join(f"{n:>14}" for n in names)
          + "  read-outs exact  predictions as exact")
    exact = got = None
    for t in steps:
        acc = [float((r.predictions(t)[0] == y).mean()) * 100 for r in results.values()]
        exact = results["fixed, no clip"].scores(t)
        got = results["fixed"].scores(t)
        same_pred = float((got.argmax(1) == exact.argmax(1)).mean()) * 100
        print(f"{t:<5} " + "  ".join(f"{a:>14.2f}" for a in acc)
              + f"  {float((got == exact).mean()) * 100:>14.2f}%  {same_pred:>19.2f}%")
    print(f"output layer clipped neuron-steps (fixed, T = {steps[-1]}): {clipped} of "
          f"{len(x) * qnet.output.size * steps[-1]}")
    assert np.all(got >= exact)   # at the largest T: a clip only raises v


if __name__ == "__main__":
    main()
