"""Quantise a calibrated spiking network to a hardware profile's fixed-point rules.

One joint scale per layer: the layer's threshold in weight units, ``theta``. Every weight
of every synapse into the layer (already multiplied by its gain, see :mod:`snn2hw.snn`) and
its bias current are multiplied by the same ``theta`` and rounded to the nearest integer,
so the ratios Spike-Norm set are kept. ``theta`` is the largest integer that

- uses the weight range fully without clipping (largest positive weight -> ``weights.max``,
  most negative -> ``weights.min``),
- fits the threshold's bits,
- keeps the worst-case one-step input plus bias plus threshold within the state
  (``state.bits``: no wrap of u, no clipping of v from at or below threshold), and
- leaves the bias representable as mantissa << exponent.

These limits are first estimated on the float weights; the state bound is then checked on
the final rounded, clipped integers (:mod:`snn2hw.quantize.budget`, the check ``snn2hw verify``
runs) and ``theta`` is lowered until it holds ("<bits>-bit state after rounding"). When a
limit other than the weight range decides ``theta``, the report says which. Clipping
can then only come from rounding at the range ends and is counted per layer.

Each term's chain of linear ops is folded into one synapse by :mod:`snn2hw.quantize.chain`
(a convolution where the chain allows, else an exact sparse matrix); no extra neurons or
time steps.
"""
from __future__ import annotations

import math

import numpy as np

from . import budget, chain, readout, roundingbias
from ..errors import HardwareLimitError, InputError
from ..hardware.profiles import FixedPoint, Profile
from ..snn.neurons import check_reset
from .qnet import IntSynapse, QuantizedNetwork, QuantLayer
from ..snn import SpikingLayer, SpikingNetwork, Term
from ..snn.encoders import direct
from ..snn.options import Conversion

NEVER_FIRES = 3.0e38  # a float threshold above any potential (finite: 0 * it is 0)


def fold_term(term: Term, in_shape, out_shape) -> IntSynapse:
    """One term's chain as a single float synapse (conv if possible, else matrix; see
    :mod:`snn2hw.quantize.chain`)."""
    return IntSynapse(term.source, 1 + term.delay, tuple(in_shape),
                      **chain.fold(term.ops, in_shape, out_shape))


def _scaled(syn: IntSynapse, factor: float) -> IntSynapse:
    return syn.with_values(syn.values() * factor)


def _choose_scale(fp: FixedPoint, syns: list[IntSynapse], bias: np.ndarray | None,
                  signed: list[bool], du: float = 4095) -> tuple[int, str]:
    """The integer threshold theta and the limit that decided it."""
    values = np.concatenate([s.values() for s in syns]) if syns else np.zeros(1)
    top_pos = float(values.max(initial=0.0))
    top_neg = float(-values.min(initial=0.0))
    limits = {"threshold bits": float(fp.threshold_max)}
    if top_pos > 0:
        limits["weight range"] = fp.weight_max / top_pos
    if top_neg > 0:
        limits["weight range"] = min(limits.get("weight range", math.inf),
                                     -fp.weight_min / top_neg)
    pos = neg = 0.0
    for syn, sgn in zip(syns, signed):
        p, n = budget.row_sums(syn, sgn)
        pos, neg = pos + p, neg + n
    num, den = budget.current_gain(du)
    pos, neg = pos * num / den, neg * num / den
    b = np.zeros(1) if bias is None else bias.reshape(-1)
    worst = float(np.max(np.maximum(pos + np.maximum(b, 0), neg + np.maximum(-b, 0))))
    state_limit = fp.v_max / (1 << fp.current_shift)  # in weight units
    limits[f"{fp.state_bits}-bit state"] = state_limit / (1.0 + worst)
    top_bias = float(np.max(np.abs(b)))
    if top_bias > 0:
        bias_limit = fp.bias_mant_max * 2.0 ** fp.bias_exp_max / (1 << fp.current_shift)
        limits["bias range"] = bias_limit / top_bias
    which = min(limits, key=limits.get)
    theta = int(math.floor(limits[which]))
    if theta < 1:
        raise HardwareLimitError(f"cannot fit: the {which} limit allows a threshold of "
                                 f"{limits[which]:.3g} weight units (< 1)", limit=which)
    return theta, which


def _bias_fixed(fp: FixedPoint, bias_v: np.ndarray, layer: str) -> tuple[np.ndarray, int]:
    """Mantissa and the smallest exponent that represents ``bias_v`` (v units)."""
    for exp in range(fp.bias_exp_min, fp.bias_exp_max + 1):
        mant = np.rint(bias_v / 2.0 ** exp)
        if np.max(np.abs(mant)) <= fp.bias_mant_max:
            return mant.astype(np.int32), exp
    raise HardwareLimitError(f"layer {layer}: bias {float(np.max(np.abs(bias_v))):.0f} (v "
                             f"units) exceeds the mantissa range ±{fp.bias_mant_max} << "
                             f"{fp.bias_exp_max}", layer=layer)


def _to_int(syn: IntSynapse, fp: FixedPoint) -> tuple[IntSynapse, int]:
    vals = np.rint(syn.values())
    clipped = int(np.sum((vals < fp.weight_min) | (vals > fp.weight_max)))
    vals = np.clip(vals, fp.weight_min, fp.weight_max).astype(np.int32)
    return syn.with_values(vals, prune=True), clipped


def _integers(syns: list[IntSynapse], bias: np.ndarray | None, theta: int, fp: FixedPoint,
              layer: str, correct=None) -> tuple[list[IntSynapse], int, np.ndarray | None, int]:
    """The layer's rounded, clipped integer synapses, clip count, bias mantissa and exp;
    ``correct(int_syns, theta)``: the rounding-bias offsets added to the bias (threshold
    units, :mod:`.roundingbias`)."""
    int_syns, clipped = [], 0
    for syn in syns:
        q, c = _to_int(_scaled(syn, theta), fp)
        int_syns.append(q)
        clipped += c
    if correct is not None:
        offset = correct(int_syns, theta)
        bias = offset if bias is None else bias + offset
        top = float(np.max(np.abs(bias))) * theta * (1 << fp.current_shift)
        if top > fp.bias_mant_max * 2.0 ** fp.bias_exp_max:
            raise _CorrectedBiasOverflow(top / (fp.bias_mant_max * 2.0 ** fp.bias_exp_max))
    bias_mant, bias_exp = None, fp.current_shift
    if bias is not None:
        bias_mant, bias_exp = _bias_fixed(fp, bias * theta * (1 << fp.current_shift), layer)
    return int_syns, clipped, bias_mant, bias_exp


class _CorrectedBiasOverflow(Exception):
    """The rounding-bias correction took a bias past its range at this theta (``ratio``:
    how far); theta's estimate only covered the uncorrected bias."""

    def __init__(self, ratio: float) -> None:
        super().__init__(ratio)
        self.ratio = ratio


def _fit_integers(layer: SpikingLayer, syns: list[IntSynapse], bias: np.ndarray | None,
                  signed: list[bool], fp: FixedPoint, du: float, theta_cap: int | None = None,
                  correct=None):
    """theta from the float estimate (at most ``theta_cap``), lowered until the state budget
    holds for the rounded integers (rounding many equal weights up can push their sum past
    the estimate), or until the bias the rounding-bias correction makes fits its range."""
    theta, limit = _choose_scale(fp, syns, bias, signed, du)
    if theta_cap is not None and theta > theta_cap:
        theta, limit = theta_cap, "membrane read-out"
    estimate = theta
    while True:
        try:
            ints = _integers(syns, bias, theta, fp, layer.name, correct)
        except _CorrectedBiasOverflow as over:
            smaller = min(theta - 1, math.floor(theta / over.ratio))
            limit = "bias range after the rounding-bias correction"
            if smaller < 1:
                raise HardwareLimitError(f"layer {layer.name}: cannot fit: the corrected "
                                         "bias exceeds its range even at a threshold of 1",
                                         layer=layer.name, limit=limit) from None
            theta = smaller
            continue
        bias_v = None if ints[2] is None else ints[2].astype(np.int64) << ints[3]
        worst = budget.layer_budget(layer.name, ints[0], signed, layer.size, bias_v, theta,
                                    fp.state_bits, fp.current_shift, fp.threshold_shift, du)
        if worst.holds:
            return theta, limit, estimate, ints
        # The budget grows about linearly with theta: jump close, then step down.
        smaller = min(theta - 1, math.floor(theta * fp.v_max / worst.worst))
        limit = f"{fp.state_bits}-bit state after rounding"
        if smaller < 1:
            raise HardwareLimitError(f"layer {layer.name}: cannot fit: even a threshold of 1 "
                                     f"weight unit overflows the {fp.state_bits}-bit state",
                                     layer=layer.name, limit=limit)
        theta = smaller


def quantize_layer(layer: SpikingLayer, scales: dict[str, float], shapes: dict[str, tuple],
                   fp: FixedPoint, input_name: str,
                   source_scales: dict[str, float] | None = None,
                   du: float = 4095, input_levels: int = 1,
                   theta_cap: int | None = None,
                   rates: dict[str, np.ndarray] | None = None) -> QuantLayer:
    """``input_levels``: the largest input magnitude (1 for +-1 spikes; an analog
    input's integer levels), for the budget of the synapses it feeds; ``theta_cap``: the
    largest scale allowed (the membrane read-out's output layer, :mod:`.readout`);
    ``rates``: the sources' mean rates, for the rounding-bias correction (None: none)."""
    source_scales = scales if source_scales is None else source_scales
    scale = scales[layer.name]
    syns = [_scaled(fold_term(t, shapes[t.source], layer.shape),
                    source_scales[t.source] / scale) for t in layer.terms]
    bias = None if layer.bias is None else layer.bias.reshape(-1) / scale
    signed = [(input_levels if input_levels > 1 else True) if t.source == input_name
              else False for t in layer.terms]
    correct = None if rates is None else _corrections(syns, rates, input_name, input_levels)
    theta, limit, estimate, ints = _fit_integers(layer, syns, bias, signed, fp, du, theta_cap,
                                                 correct)
    int_syns, clipped, bias_mant, bias_exp = ints
    n_weights = int(sum(s.values().size for s in int_syns))
    report = {"scale": theta, "limited_by": limit, "clipped_weights": clipped,
              "weights": n_weights,
              "max_abs_weight": int(max((np.abs(s.values()).max(initial=0) for s in int_syns),
                                        default=0)),
              "synapses": [s.kind for s in int_syns], "bias_exp": bias_exp}
    if theta != estimate:  # only then, so that other exports stay byte-identical
        report["scale_before_rounding_check"] = estimate
    if correct is not None:
        shift = theta * (1 << fp.current_shift)
        report["rounding_bias_max_v"] = float(np.max(np.abs(correct(int_syns, theta)))) * shift
    return QuantLayer(layer.name, layer.shape, layer.depth, int_syns, theta, bias_mant,
                      bias_exp, layer.is_output, float(theta), report)


def _corrections(syns: list[IntSynapse], rates: dict[str, np.ndarray], input_name: str,
                 input_levels: int):
    """``correct(int_syns, theta)`` of :func:`_integers` for these float synapses, computed
    once per theta (the integers are a function of theta; the report asks again)."""
    last: dict[int, np.ndarray] = {}

    def correct(int_syns: list[IntSynapse], theta: int) -> np.ndarray:
        if theta not in last:
            last.clear()
            last[theta] = roundingbias.offsets(syns, int_syns, theta, rates,
                                               {input_name: float(input_levels)})
        return last[theta]
    return correct


def _membrane_output(layer: SpikingLayer, scales: dict[str, float], shapes: dict[str, tuple],
                     profile: Profile, input_name: str, sources: dict[str, float],
                     levels: int, rates: dict[str, np.ndarray] | None = None) -> QuantLayer:
    """The membrane read-out's output layer: it fires and resets by subtraction with the
    largest threshold that keeps its budget, and its scale is lowered if needed so that
    one step cannot add more than that threshold (:mod:`.readout`: the read-out
    count * threshold + v is then exact while v stays above its lower clip)."""
    if readout.READOUT_RESET not in profile.resets:
        raise HardwareLimitError(f"profile {profile.name} has no neuron with reset "
                                 f"{readout.READOUT_RESET!r}, which the membrane read-out's "
                                 "output layer needs", field="neuron.reset")
    signed = [levels if t.source == input_name else False for t in layer.terms]
    return readout.fit_output(
        lambda cap: quantize_layer(layer, scales, shapes, profile.fixed, input_name, sources,
                                   profile.neuron_du, levels, cap, rates),
        signed, profile.fixed, profile.neuron_du)


def input_levels(conversion: Conversion, quantized: bool) -> int:
    """``QuantizedNetwork.input_levels`` of a network made with ``conversion``: 1 for
    spikes, ``direct.LEVELS`` for an analog input quantised, 0 for its real values."""
    if conversion.coding == "poisson":
        return 1
    return direct.LEVELS if quantized else 0


def quantize(net: SpikingNetwork, scales: dict[str, float], profile: Profile,
             source_scales: dict[str, float] | None = None,
             reset: str = "zero", conversion: Conversion | None = None,
             rates: dict[str, np.ndarray] | None = None) -> QuantizedNetwork:
    """Integer network for a fixed-point profile; the float SNN is left unchanged.
    ``conversion``: direct input coding quantises the input to ``direct.LEVELS`` integer
    levels (one level stands for input_scale / LEVELS); the membrane read-out's output layer
    is made by :func:`_membrane_output`; with ``rounding_bias``, ``rates`` (the
    calibration's source rates) correct every layer's bias (:mod:`.roundingbias`)."""
    if profile.fixed is None:
        raise HardwareLimitError(f"profile {profile.name} has no fixed-point rules")
    conversion = conversion or Conversion()
    fp = profile.fixed
    levels = input_levels(conversion, quantized=True)
    if conversion.rounding_bias:
        if not rates:
            raise InputError("the rounding-bias correction needs the calibration's source "
                             "rates: calibrate again with --rounding-bias",
                             options=("rounding_bias",))
        roundingbias.check_rates(rates, {net.input: int(np.prod(net.input_shape))} | {
            la.name: la.size for la in net.layers
            if any(t.source == la.name for other in net.layers for t in other.terms)})
    else:
        rates = None
    sources = dict(scales if source_scales is None else source_scales)
    sources[net.input] = sources[net.input] / levels
    shapes = {net.input: net.input_shape} | {la.name: la.shape for la in net.layers}
    membrane = conversion.readout == "membrane"
    layers = [_membrane_output(la, scales, shapes, profile, net.input, sources, levels, rates)
              if membrane and la.is_output else
              quantize_layer(la, scales, shapes, fp, net.input, sources,
                             profile.neuron_du, levels, rates=rates) for la in net.layers]
    return QuantizedNetwork(net.input, net.input_shape, scales[net.input], layers,
                            profile.name, fp.state_bits, fp.threshold_shift, fp.current_shift,
                            check_reset(reset), conversion, levels)


def float_network(net: SpikingNetwork, scales: dict[str, float], profile_name: str,
                  source_scales: dict[str, float] | None = None,
                  reset: str = "zero", conversion: Conversion | None = None
                  ) -> QuantizedNetwork:
    """The same graph without quantisation (threshold 1, float weights and bias), for
    floating-point backends; an analog input stays real (levels 1), and the membrane
    read-out's output layer a threshold no potential reaches (``NEVER_FIRES``)."""
    source_scales = scales if source_scales is None else source_scales
    shapes = {net.input: net.input_shape} | {la.name: la.shape for la in net.layers}
    layers = []
    for la in net.layers:
        scale = scales[la.name]
        syns = [_scaled(fold_term(t, shapes[t.source], la.shape),
                        source_scales[t.source] / scale) for t in la.terms]
        bias = None if la.bias is None else la.bias.reshape(-1) / scale
        membrane = la.is_output and conversion is not None and conversion.readout == "membrane"
        layers.append(QuantLayer(la.name, la.shape, la.depth, syns,
                                 NEVER_FIRES if membrane else 1.0, bias, 0,
                                 la.is_output, 1.0, {"scale": 1.0}))
    conversion = conversion or Conversion()
    return QuantizedNetwork(net.input, net.input_shape, scales[net.input], layers,
                            profile_name, reset=check_reset(reset), conversion=conversion,
                            input_levels=input_levels(conversion, quantized=False))
