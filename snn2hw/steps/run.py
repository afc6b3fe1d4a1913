"""The run step: an export on its backend next to the reference simulator, on the same input
spikes, compared spike for spike (the CLI's ``snn2hw run``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import backends, data, formats
from ..artifacts.export import ExportArtifact, load_export
from ..errors import InputError
from ..hardware import profiles
from ..snn import simulate
from ..snn.results import membrane_readout
from ..quantize.fixed import input_encoder
from .evaluate import accuracy, prepare_network
from .options import RunOptions
from .settings import EVALUATION_STREAM


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


def run_export(path: str | Path | ExportArtifact,
               options: RunOptions = RunOptions()) -> RunReport:
    """Run the export at ``path`` (a file or an ExportArtifact) on its profile's backend and
    on the reference simulator. A spiking-network file (NIR) is first quantised for
    ``options.profile`` with the thresholds it carries."""
    if not isinstance(path, ExportArtifact) and formats.is_spiking(path):
        from .deploy import export_model
        from .options import CalibrationOptions

        path = export_model(path, options.profile,
                            calibration=CalibrationOptions(seed=options.seed or 0))
    art = path if isinstance(path, ExportArtifact) else load_export(path)
    path = "the network" if isinstance(path, ExportArtifact) else path
    profile = profiles.load_stored(art.profile_toml, f"{art.qnet.profile} (in {path})")
    if profile.backend == backends.NONE:
        raise InputError(f"profile {profile.name} describes resources only and cannot run; "
                         "export with profile=loihi_sim or profile=loihi_float",
                         options=("profile",))
    backend = backends.get(profile.backend)
    qnet = art.qnet
    backend.check(qnet, profile)  # what the backend cannot run fails before any work
    preprocess = data.Preprocess.from_json(art.preprocess)
    dataset = data.load(options.data, qnet.input_shape, qnet.output.size, preprocess)
    x, y = data.take(dataset.x_test, dataset.y_test, options.samples, "evaluation")
    seed = art.seed if options.seed is None else options.seed
    timesteps = options.timesteps
    enc = input_encoder(qnet, x, seed, EVALUATION_STREAM)
    spikes = enc.full(0, len(x), timesteps).reshape(len(x), timesteps, -1)
    names = [la.name for la in qnet.layers]
    ref = simulate.simulate(prepare_network(qnet, options.device),
                            input_encoder(qnet, x, seed, EVALUATION_STREAM),
                            timesteps, record=names)
    lava = backend.run(qnet, spikes, timesteps, timeout=options.timeout, profile=profile)
    out = qnet.output.name
    same = np.ones(len(x), dtype=bool)
    if qnet.conversion.readout == "membrane":   # count * threshold + v at the window's end
        lava_scores = membrane_readout(lava.spikes[out].sum(axis=1),
                                       lava.potentials[out][:, -1], ref.readout_step)
        lava_pred, _ = simulate.decode(lava_scores)
        same &= (lava_scores == ref.scores(timesteps)).all(axis=1)
    else:
        lava_pred, _ = simulate.decode(lava.spikes[out].sum(axis=1))
    ref_acc, _ = accuracy(ref, y, timesteps)
    equal_counts = {}
    for name in names:
        same &= (lava.spikes[name] == ref.records[name]).all(axis=(1, 2))
        equal_counts[name] = bool(np.array_equal(lava.spikes[name].sum(axis=1),
                                                 ref.records[name].sum(axis=1)))
    mismatch = first_mismatch(lava.spikes, ref.records, names)
    return RunReport(profile.name, len(x), timesteps, float((lava_pred == y).mean()), ref_acc,
                     float(same.mean()), mismatch is None, mismatch, lava.seconds,
                     lava.steps_per_second, equal_counts)
