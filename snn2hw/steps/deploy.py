"""Export (quantise for a profile) and run on Lava, as library functions."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import backends, data, snn
from ..hardware import profiles
from ..snn import simulate
from ..artifacts.calibration import load_calibration
from ..calibrate.channels import calibrated_network
from ..snn.encoders import make_encoder
from ..snn.neurons import float_neuron
from ..errors import HardwareLimitError, InputError
from ..artifacts.export import ExportArtifact, load_export
from ..quantize.fixed import prepare_fixed, saturation
from ..onnx import file_hash, import_onnx
from ..onnx.maxpool import accuracy_cost, check_recorded
from ..onnx.normalise import refuse_explicit
from .pipeline import EVALUATION_STREAM, load_data, resolve_preprocess, run_calibration
from ..progress import Progress
from ..quantize.qnet import QuantizedNetwork
from ..quantize import float_network, quantize
from ..hardware.resources import network_usage


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


def _accuracy(result: simulate.SimResult, y: np.ndarray, timesteps: int) -> tuple[float, int]:
    pred, ties = result.predictions(timesteps)
    return float((pred == y).mean()), ties


def export_model(model: str | Path, profile_name: str, calibration: str | None = None,
                 data_spec: str | None = None, method: str = "spike-norm",
                 timesteps: int = 256, samples: int = 256, seed: int = 0,
                 eval_samples: int | None = None, device: str = "cpu",
                 mean=None, std=None, reset: str | None = None,
                 percentile: float = 100.0, maxpool: str = "refuse",
                 junction: str | None = None) -> ExportArtifact:
    """Quantise ``model`` for a profile, with the thresholds of ``calibration`` (whose
    reset mode and junction rule it keeps), or calibrating now with ``method``, ``reset``,
    ``percentile``, ``junction``."""
    profile = profiles.load(profile_name)
    profiles.check_neuron(profile)
    graph = import_onnx(model, maxpool=maxpool)
    sha = file_hash(model)
    data_spec = data_spec or graph.metadata.get("snn2hw.dataset")
    if calibration:
        cal_art = load_calibration(calibration, expected_sha256=sha)
        check_recorded(cal_art.graph.metadata, maxpool, calibration)
        cal, preprocess = cal_art.calibration, data.Preprocess.from_json(cal_art.preprocess)
        if reset is not None and reset != cal.reset:
            raise InputError(f"{calibration}: thresholds were calibrated for reset "
                             f"{cal.reset!r}, not {reset!r}; calibrate again with --reset "
                             f"{reset}")
        if junction is not None and junction != cal.junction:
            raise InputError(f"{calibration}: thresholds were calibrated with the "
                             f"{cal.junction!r} junction rule, not {junction!r}; calibrate "
                             f"again with --junction {junction}")
        if mean or std:
            refuse_explicit(graph.metadata, mean, std)
            preprocess = data.Preprocess(tuple(mean) if mean else preprocess.mean,
                                         tuple(std) if std else preprocess.std)
    else:
        if not data_spec:
            raise InputError("export needs thresholds: give --calibration FILE.calib.h5, or "
                             "--data (digits or a .npz file) to calibrate now")
        preprocess = resolve_preprocess(graph, mean, std)
    dataset = load_data(graph, data_spec, preprocess) if data_spec else None
    net = snn.lower(graph)
    if not calibration:
        x_cal = data.calibration_set(dataset, samples)
        cal = run_calibration(net, x_cal, method, timesteps, seed, device,
                              reset=reset or "zero", percentile=percentile,
                              junction=junction or "per-source")
    net = calibrated_network(net, cal)  # per-channel factors and bias offsets, if any
    if cal.reset not in profile.resets:
        raise HardwareLimitError(f"profile {profile.name} has no neuron with reset "
                                 f"{cal.reset!r}; it supports: {', '.join(profile.resets)}")
    qnet = (quantize(net, cal.scales, profile, cal.source_scales, cal.reset)
            if profile.quantize
            else float_network(net, cal.scales, profile.name, cal.source_scales, cal.reset))
    report = {"profile": profile.name, "layers": {la.name: la.report for la in qnet.layers}}
    target = profiles.resources_for(profile) if profile.fixed is not None else None
    if target is not None:
        report["resources"] = network_usage(qnet, target)
    if dataset is not None:
        x, y = data.take(dataset.x_test, dataset.y_test, eval_samples, "evaluation")
        report["evaluation"] = compare_float_fixed(net, cal.scales, qnet, x, y, timesteps,
                                                   seed, device, cal.source_scales)
        report["evaluation"]["reset"] = cal.reset
        cost = accuracy_cost(model, graph, x, y, device)
        if cost is not None:
            report["maxpool"] = cost
    return ExportArtifact(qnet, graph, cal.scales, profiles.source_text(profile), sha,
                          cal.method, cal.params, seed, preprocess.to_json(), report,
                          cal.rate_scales)


def compare_float_fixed(net, scales, qnet, x, y, timesteps, seed, device,
                        source_scales=None) -> dict:
    """Float SNN vs the exported network on the same input spikes."""
    out = {"samples": len(x), "timesteps": timesteps}
    float_prep = simulate.prepare_float(net, scales, device, source_scales=source_scales,
                                        reset=qnet.reset)
    for label, prep in (("float", float_prep),
                        ("exported", prepare_network(qnet, device))):
        enc = make_encoder("poisson", x, input_scale=scales[net.input], seed=seed,
                           stream=EVALUATION_STREAM)
        with Progress(len(x) * timesteps, f"simulate {label}") as bar:
            res = simulate.simulate(prep, enc, timesteps, progress=bar)
        out[f"{label}_accuracy"], out[f"{label}_ties"] = _accuracy(res, y, timesteps)
        out[f"{label}_rates"] = {k: v.rate for k, v in res.stats.items()}
        if label == "exported" and hasattr(prep.layers[0].neuron, "saturated"):
            out["saturated_neuron_steps"] = saturation(prep)
    return out


@dataclass
class RunReport:
    profile: str
    samples: int
    timesteps: int
    lava_accuracy: float
    reference_accuracy: float
    agreement: float            # fraction of samples whose every spike train matches
    identical: bool
    first_mismatch: dict | None
    lava_seconds: float
    lava_steps_per_second: float
    spike_counts_equal: dict[str, bool]

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def first_mismatch(lava: dict[str, np.ndarray], ref: dict[str, np.ndarray],
                   order: list[str]) -> dict | None:
    """The earliest step (then the first layer in depth order, sample, neuron) at which
    Lava and the reference differ."""
    best = None
    for name in order:
        diff = np.argwhere(lava[name] != ref[name])  # (sample, step, neuron)
        if len(diff):
            sample, step, neuron = diff[np.lexsort((diff[:, 2], diff[:, 0], diff[:, 1]))[0]]
            if best is None or step < best["step"]:
                best = {"layer": name, "sample": int(sample), "step": int(step),
                        "neuron": int(neuron), "lava": int(lava[name][sample, step, neuron]),
                        "reference": int(ref[name][sample, step, neuron])}
    return best


def run_export(path: str | Path, data_spec: str, samples: int, timesteps: int,
               seed: int | None = None, timeout: float | None = None,
               device: str = "cpu") -> RunReport:
    art = load_export(path)
    profile = profiles.load_stored(art.profile_toml, f"{art.qnet.profile} (in {path})")
    if profile.backend == backends.NONE:
        raise InputError(f"profile {profile.name} describes resources only and cannot run; "
                         "export with --profile loihi_sim or loihi_float")
    backend = backends.get(profile.backend)
    qnet = art.qnet
    backend.check(qnet, profile)  # what the backend cannot run fails before any work
    classes = qnet.output.size
    preprocess = data.Preprocess.from_json(art.preprocess)
    dataset = data.load(data_spec, qnet.input_shape, classes, preprocess)
    x, y = data.take(dataset.x_test, dataset.y_test, samples, "evaluation")
    seed = art.seed if seed is None else seed
    enc = make_encoder("poisson", x, input_scale=qnet.input_scale, seed=seed,
                       stream=EVALUATION_STREAM)
    spikes = enc.full(0, len(x), timesteps).reshape(len(x), timesteps, -1)
    names = [la.name for la in qnet.layers]
    ref = simulate.simulate(prepare_network(qnet, device),
                            make_encoder("poisson", x, input_scale=qnet.input_scale, seed=seed,
                                         stream=EVALUATION_STREAM),
                            timesteps, record=names)
    lava = backend.run(qnet, spikes, timesteps, timeout=timeout, profile=profile)
    out = qnet.output.name
    lava_counts = lava.spikes[out].sum(axis=1)
    lava_pred, _ = simulate.decode(lava_counts)
    ref_acc, _ = _accuracy(ref, y, timesteps)
    same = np.ones(len(x), dtype=bool)
    equal_counts = {}
    for name in names:
        same &= (lava.spikes[name] == ref.records[name]).all(axis=(1, 2))
        equal_counts[name] = bool(np.array_equal(lava.spikes[name].sum(axis=1),
                                                 ref.records[name].sum(axis=1)))
    mismatch = first_mismatch(lava.spikes, ref.records, names)
    return RunReport(profile.name, len(x), timesteps, float((lava_pred == y).mean()), ref_acc,
                     float(same.mean()), mismatch is None, mismatch, lava.seconds,
                     lava.steps_per_second, equal_counts)


__all__ = ["export_model", "run_export", "prepare_network", "first_mismatch"]
