"""What a netx file can hold exactly, checked before anything is written (exit 3, one line).

netx (lava-dl 0.6.0) builds a chain of blocks, each one synapse and one layer of Lava LIF
neurons that reset to zero; it has no residual (skip) connections, no pooling layer, no
reset by subtraction, and passes dense weights through ``optimize_weight_bits``, which
clips mixed-sign weights to [-256, 254] (255 would also make it shift by -1 bit), and
builds every LIF with bias_exp = 6. :func:`constrain` gives the quantiser those limits, so
an export for netx is quantised for them from the start.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from snn2hw.errors import HardwareLimitError

NETX_BIAS_EXP = 6          # netx builds every LIF with bias_exp = 6
NETX_WEIGHT_MAX = 254      # optimize_weight_bits: mixed-sign weights fit [-256, 254]
NETX_WEIGHT_MIN = -256
NETX_THRESHOLD_BITS = 17   # vThMant


def constrain(profile):
    """The profile with its weight range narrowed to what netx keeps exactly."""
    fp = profile.fixed
    if fp is None:
        raise HardwareLimitError(f"profile {profile.name} is floating point; netx files hold "
                                 "integer (fixed-point) networks: use --profile loihi_sim")
    if not fp.bias_exp_min <= NETX_BIAS_EXP <= fp.bias_exp_max:
        raise HardwareLimitError(f"profile {profile.name}: bias exponents {fp.bias_exp_min}-"
                                 f"{fp.bias_exp_max} exclude netx's fixed {NETX_BIAS_EXP}")
    narrowed = replace(fp, weight_min=max(fp.weight_min, NETX_WEIGHT_MIN),
                       weight_max=min(fp.weight_max, NETX_WEIGHT_MAX),
                       bias_exp_min=NETX_BIAS_EXP, bias_exp_max=NETX_BIAS_EXP)
    return replace(profile, fixed=narrowed)


def chain_synapses(qnet):
    """(layer, its one synapse) in order; HardwareLimitError unless the network is a chain
    of one-hop synapses."""
    previous = qnet.input
    out = []
    for layer in qnet.layers:
        if len(layer.synapses) != 1:
            raise HardwareLimitError(f"netx holds chains only: layer {layer.name} sums "
                                     f"{len(layer.synapses)} inputs (a residual junction)",
                                     layer=layer.name)
        syn = layer.synapses[0]
        if syn.source != previous or syn.lag != 1:
            raise HardwareLimitError(f"netx holds chains only: layer {layer.name} reads "
                                     f"{syn.source} (skipping a layer)", layer=layer.name)
        out.append((layer, syn))
        previous = layer.name
    return out


def _check_synapse(layer, syn) -> None:
    if syn.is_conv:
        top, left, bottom, right = syn.padding
        if (top, left) != (bottom, right):
            raise HardwareLimitError(f"layer {layer.name}: asymmetric padding {syn.padding}; "
                                     "netx pads both sides alike", layer=layer.name)
        if syn.pool != (1, 1) and syn.dilation != (1, 1):
            raise HardwareLimitError(f"layer {layer.name}: pooling folded into a dilated conv "
                                     "has no netx form", layer=layer.name)
    elif len(layer.shape) != 1:
        raise HardwareLimitError(f"layer {layer.name}: its synapse is a general matrix into "
                                 f"a {layer.shape} layer (pooling netx cannot fold); netx "
                                 "has dense layers of 1-D shape only", layer=layer.name)
    values = syn.values()
    if values.size and (values.max() > NETX_WEIGHT_MAX or values.min() < NETX_WEIGHT_MIN):
        raise HardwareLimitError(f"layer {layer.name}: weights in [{values.min()}, "
                                 f"{values.max()}]; netx keeps [{NETX_WEIGHT_MIN}, "
                                 f"{NETX_WEIGHT_MAX}] exactly", layer=layer.name)


def check_options(params: dict) -> None:
    """HardwareLimitError for conversion options (snn2hw.snn.options) a netx file cannot
    carry: netx's input is spikes, its LIFs start (and reset) at v = 0, and a netx run is
    read by spikes."""
    from snn2hw.snn.options import Conversion

    conv = Conversion.from_params(params)
    if conv.coding != "poisson":
        raise HardwareLimitError(f"input coding {conv.coding!r}: a netx network reads "
                                 "spikes")
    if conv.v_init:
        raise HardwareLimitError(f"initial potential {conv.v_init:g} of the threshold: "
                                 "netx's LIF neurons start and reset at 0")
    if conv.readout != "spikes":
        raise HardwareLimitError(f"read-out by {conv.readout} potential: netx runs are read "
                                 "by their output spikes")


def check_network(qnet) -> None:
    """HardwareLimitError (exit 3) with one reason if ``qnet`` cannot be a netx file."""
    if qnet.reset != "zero":
        raise HardwareLimitError("netx's CUBA neurons (Lava's LIF) reset to zero; this "
                                 "network resets by subtraction")
    if qnet.current_shift != NETX_BIAS_EXP or qnet.threshold_shift != NETX_BIAS_EXP:
        raise HardwareLimitError(f"netx scales inputs and thresholds by 2**{NETX_BIAS_EXP}; "
                                 f"profile {qnet.profile} uses 2**{qnet.current_shift}")
    for layer, syn in chain_synapses(qnet):
        if not isinstance(layer.threshold, (int, np.integer)):
            raise HardwareLimitError(f"layer {layer.name}: netx holds integer networks; "
                                     "export with a fixed-point profile (loihi_sim)")
        if not 0 < int(layer.threshold) < (1 << NETX_THRESHOLD_BITS):
            raise HardwareLimitError(f"layer {layer.name}: threshold {layer.threshold} does "
                                     f"not fit vThMant's {NETX_THRESHOLD_BITS} bits")
        _check_synapse(layer, syn)
