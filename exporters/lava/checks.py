"""Checks and data layout of a Lava run that need no Lava: whether a network can run
exactly on the Lava backend, the input spikes, the packing of samples into one run, and the
exact synapse matrices. Imports no Lava."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from snn2hw.hardware import profiles
from snn2hw.errors import HardwareLimitError, InputError
from snn2hw.hardware.profiles import FixedPoint, Profile

from .conversion import check_conversion, check_values, input_dtype
from .limits import check_profile
from .settings import TAGS

# The profile of a run when none is given (hand-built networks, tests, benchmarks).
DEFAULT_PROFILES = {"fixed_pt": "loihi_sim", "floating_pt": "loihi_float"}
# The neuron kinds (snn2hw.snn.neurons) the graph builds: Lava's LIFReset, and our
# LIFResetSubtract (procs/subtract_lif.py), chosen in graph._neurons.
NEURON_KINDS = ("zero", "subtract")


def resolve_profile(tag: str | None = None, profile: Profile | str | None = None,
                    limits: FixedPoint | None = None) -> Profile:
    """The profile of a Lava run: ``profile`` (a Profile, name or .toml path), else the
    default profile of ``tag`` (fixed_pt unless given), with its fixed-point rules replaced
    by ``limits`` if given."""
    if profile is not None:
        profile = profiles.load(profile) if isinstance(profile, str) else profile
        if tag is not None and tag != profile.settings.tag:
            raise ValueError(f"tag {tag!r} differs from profile {profile.name}'s "
                             f"lava_tag {profile.settings.tag!r}")
        if limits is not None:
            raise ValueError("give a profile or fixed-point limits, not both")
        return profile
    tag = tag or "fixed_pt"
    if tag not in TAGS:
        raise ValueError(f"unknown Lava tag {tag!r}; expected one of {', '.join(TAGS)}")
    profile = profiles.load(DEFAULT_PROFILES[tag])
    return profile if limits is None else replace(profile, fixed=limits)


def layer_sizes(qnet) -> dict[str, int]:
    sizes = {qnet.input: int(np.prod(qnet.input_shape))}
    for layer in qnet.layers:
        sizes[layer.name] = layer.size
    return sizes


def _is_integral(values: np.ndarray) -> bool:
    values = np.asarray(values)
    if values.size == 0 or np.issubdtype(values.dtype, np.integer):
        return True
    return bool(np.all(np.isfinite(values)) and np.all(values == np.rint(values)))


def _synapse_values(syn) -> np.ndarray:
    return np.asarray(syn.values())


def check_network(qnet, tag: str | None = None, record: list[str] | None = None,
                  limits: FixedPoint | None = None, *, profile: Profile | str | None = None
                  ) -> Profile:
    """Raise before any Lava work if the network cannot run exactly on the Lava backend
    under its profile (see :func:`resolve_profile`): ``ValueError`` for a malformed
    network, :class:`HardwareLimitError` for a profile Lava cannot run
    (:func:`.limits.check_profile`), a reset mode the profile lacks, or a value that
    does not fit the profile's fixed-point registers. Returns the profile."""
    profile = resolve_profile(tag, profile, limits)
    _check_structure(qnet, record)
    check_profile(profile)
    for reset in sorted({qnet.conversion.layer_reset(qnet.reset, la.is_output)
                         for la in qnet.layers}):
        _check_reset(reset, profile)
    check_conversion(qnet, profile)
    if profile.fixed is not None:
        _check_numbers(qnet, profile)
        _check_fixed(qnet, profile.fixed)
    return profile


def _check_reset(reset: str, profile: Profile) -> None:
    """A layer's reset (the network's, or the membrane read-out's output's subtraction)
    must be one the backend builds and the profile has."""
    if reset not in NEURON_KINDS:
        raise HardwareLimitError(f"the Lava backend builds no neuron with reset "
                                 f"{reset!r}; it builds: {', '.join(NEURON_KINDS)}",
                                 field="neuron.reset")
    if reset not in profile.resets:
        raise HardwareLimitError(f"profile {profile.name} has no neuron with reset "
                                 f"{reset!r}; it supports: {', '.join(profile.resets)}",
                                 field="neuron.reset")


def _check_structure(qnet, record: list[str] | None) -> None:
    sizes = layer_sizes(qnet)
    depth = {qnet.input: 0}
    names = [layer.name for layer in qnet.layers]
    if len(set(names)) != len(names) or qnet.input in names:
        raise ValueError("layer names must be unique and differ from the input name")
    for layer in qnet.layers:
        depth[layer.name] = int(layer.depth)
    for layer in qnet.layers:
        if not layer.synapses:
            raise ValueError(f"layer {layer.name} has no synapses")
        if layer.bias_mant is not None and np.asarray(layer.bias_mant).size != layer.size:
            raise ValueError(f"layer {layer.name}: bias_mant has "
                             f"{np.asarray(layer.bias_mant).size} values for {layer.size} "
                             "neurons")
        for syn in layer.synapses:
            if syn.source not in sizes:
                raise ValueError(f"layer {layer.name}: unknown synapse source {syn.source!r}")
            if syn.in_size != sizes[syn.source] or syn.out_size != layer.size:
                raise ValueError(f"layer {layer.name}: synapse from {syn.source} maps "
                                 f"{syn.in_size} -> {syn.out_size}, expected "
                                 f"{sizes[syn.source]} -> {layer.size}")
            if int(syn.lag) < 1:
                raise ValueError(f"layer {layer.name}: synapse lag {syn.lag} from "
                                 f"{syn.source} must be at least 1 (one hop)")
            if depth[layer.name] < depth[syn.source] + int(syn.lag):
                raise ValueError(
                    f"layer {layer.name} (depth {depth[layer.name]}) is fed from "
                    f"{syn.source} (depth {depth[syn.source]}) with lag {syn.lag}: a layer "
                    "must be at least source depth + lag hops from the input")
    if record is not None:
        unknown = [name for name in record if name not in names]
        if unknown:
            raise ValueError(f"cannot record unknown layer(s): {', '.join(unknown)}")


def _check_numbers(qnet, profile: Profile) -> None:
    """The network's own state width and shifts (what the reference simulates) are the
    profile's: a file whose numbers and profile disagree is refused."""
    fx = profile.fixed
    for key, field in (("state_bits", "state.bits"), ("threshold_shift", "threshold.shift"),
                       ("current_shift", "state.current_shift")):
        if int(getattr(qnet, key)) != getattr(fx, key):
            raise InputError(f"the network has {key} = {getattr(qnet, key)}, but its "
                             f"profile {profile.name} has {field} = {getattr(fx, key)}")


def _check_fixed(qnet, limits: FixedPoint) -> None:
    WEIGHT_MIN, WEIGHT_MAX = limits.weight_min, limits.weight_max
    VTH_MAX = limits.threshold_max
    BIAS_MANT_MAX = limits.bias_mant_max
    BIAS_MANT_MIN = -BIAS_MANT_MAX - 1
    BIAS_EXP_MIN, BIAS_EXP_MAX = limits.bias_exp_min, limits.bias_exp_max
    for layer in qnet.layers:
        where = f"layer {layer.name}"
        for syn in layer.synapses:
            w = _synapse_values(syn)
            if not _is_integral(w):
                raise HardwareLimitError(f"{where}: synapse from {syn.source} has "
                                         "non-integer weights (fixed_pt needs integers)")
            if w.size and (w.min() < WEIGHT_MIN or w.max() > WEIGHT_MAX):
                raise HardwareLimitError(
                    f"{where}: synapse from {syn.source} has weights in "
                    f"[{int(w.min())}, {int(w.max())}], outside the profile's weight range "
                    f"[{WEIGHT_MIN}, {WEIGHT_MAX}]")
        thr = layer.threshold
        if not _is_integral(np.asarray([thr])) or not 0 <= thr <= VTH_MAX:
            raise HardwareLimitError(f"{where}: threshold {thr} is not an integer in "
                                     f"[0, {VTH_MAX}] (the profile's vth range)")
        if layer.bias_mant is not None:
            b = np.asarray(layer.bias_mant)
            if not _is_integral(b) or (b.size and (b.min() < BIAS_MANT_MIN
                                                   or b.max() > BIAS_MANT_MAX)):
                raise HardwareLimitError(
                    f"{where}: bias mantissas must be integers in [{BIAS_MANT_MIN}, "
                    f"{BIAS_MANT_MAX}] (the profile's range), got [{b.min()}, {b.max()}]")
            if not BIAS_EXP_MIN <= int(layer.bias_exp) <= BIAS_EXP_MAX:
                raise HardwareLimitError(f"{where}: bias exponent {layer.bias_exp} is "
                                         f"outside [{BIAS_EXP_MIN}, {BIAS_EXP_MAX}]")


def check_spikes(qnet, spikes: np.ndarray, timesteps: int) -> np.ndarray:
    """Validate the input array (N, T, in_size) and return it as int8 spikes (int32 values
    of an analog coding: :mod:`.conversion`)."""
    in_size = layer_sizes(qnet)[qnet.input]
    spikes = np.asarray(spikes)
    if spikes.ndim != 3 or spikes.shape[1] != timesteps or spikes.shape[2] != in_size:
        raise ValueError(f"input spikes must have shape (N, {timesteps}, {in_size}), got "
                         f"{spikes.shape}")
    if spikes.shape[0] < 1 or timesteps < 1:
        raise ValueError("need at least one sample and one time step")
    check_values(qnet, spikes)
    return spikes.astype(input_dtype(qnet))


def pack_input(spikes: np.ndarray, dtype=np.int32) -> np.ndarray:
    """(N, T, in_size) -> RingBuffer data (in_size, N*T): column k*T + j = sample k, step j."""
    n, t, size = spikes.shape
    return np.ascontiguousarray(spikes.reshape(n * t, size).T.astype(dtype))


def unpack_output(data: np.ndarray, n: int, t: int, depth: int) -> np.ndarray:
    """Sink buffer (size, N*T) -> (N, T, size) int8 spikes, with the idle steps t < depth
    (the previous sample's tail, see the module docstring) reported as silent."""
    size = data.shape[0]
    out = (np.asarray(data).T.reshape(n, t, size) != 0).astype(np.int8)
    out[:, :min(depth, t)] = 0
    return out


def synapse_matrix(syn, tag: str) -> sp.csr_matrix:
    """CSR weights (out_size, in_size) for the Lava Sparse process
    (:meth:`IntSynapse.matrix`, :mod:`snn2hw.quantize.chain`): exact int32 for fixed_pt,
    float64 (weights unrounded) for floating_pt."""
    return syn.matrix(np.int32 if tag == "fixed_pt" else np.float64)


def estimate_step_cost(qnet) -> float:
    """A rough estimate (seconds, 2-5x what was measured on a 2-core machine) of one Lava
    CPU step of ``qnet``: every process is an OS process synchronised each step, and the
    synapses do one CSR mat-vec each. Used to scale timeouts."""
    procs = 2 + sum(2 + sum(int(s.lag) for s in layer.synapses) for layer in qnet.layers)
    nnz = 0
    for layer in qnet.layers:
        for syn in layer.synapses:
            if syn.is_conv:
                nnz += int(np.count_nonzero(syn.weight)) * int(np.prod(syn.out_shape[1:]))
            else:
                nnz += int(syn.csr.nnz)
    neurons = sum(layer.size for layer in qnet.layers)
    return 1e-3 * procs + 5e-9 * nnz + 2e-7 * neurons

