"""The quantised network as a lava-dl netx file (``.net``, HDF5), as
``lava.lib.dl.netx.hdf5.Network`` (lava-dl 0.6.0, ``netx/hdf5.py``) reads it.

Layout (``/layer/<i>``, decimal group names in order, a chain):
  0       type 'input', shape (C, H, W) or (F,): the input spikes, no neuron
  conv    inChannels, outChannels, kernelSize, stride, padding, dilation (each (y, x)),
          groups, weight (C_out, C_in/groups, kH, kW) in PyTorch layout, bias (C_out,)
  flatten before the first dense layer after a conv layer (netx flattens in C, H, W order)
  dense   inFeatures, outFeatures, weight (out, in), bias (out,)
  neuron/ type 'CUBA', vThMant = threshold, iDecay = 4096, vDecay = 0, refDelay 1,
          gradedSpike 0: netx builds Lava's LIF with du = iDecay - 1 = 4095 (no current
          memory) and dv = 0 (no leak), bias_exp 6: snn2hw's IF neuron, reset to zero
/simulation  Ts = 1, tSample = the time steps per sample
Weights and biases are integers stored as float32 (netx reads them with ``astype(int)``).
A folded average pooling (sum-pool k, then conv W) is written as the conv with kernel
kron(W, ones(k, k)) and stride k * s, the same integer sums. A bias mantissa with another
exponent than netx's fixed 6 is rescaled to exponent 6 (exactly, or refused). Nothing is
delayed in a chain (every synapse is one hop), so no ``delay`` is written.

Running it like snn2hw's reference (tests/test_netx_export.py): ``Network(path,
input_message_bits=8, reset_interval=T, reset_offset=1)``. Input spikes are signed (-1/0/+1)
and need graded input messages (with the default 0 netx treats a -1 as a spike of +1);
netx resets layer i (0-based) at ``time_step % T == reset_offset + 1 + i``, so
``reset_offset=1`` resets every layer on the step the sample's first spike reaches it,
as snn2hw's Lava graph and its fixed-point reference do.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from snn2hw.errors import HardwareLimitError
from snn2hw.fileio import atomic_path

from .checks import NETX_BIAS_EXP, chain_synapses, check_network, check_options

FORMAT_NOTE = "snn2hw netx export, format version 1"


def _ints(g: h5py.Group, name: str, values) -> None:
    g.create_dataset(name, data=np.asarray(values, dtype=np.int64))


def _neuron(g: h5py.Group, threshold: int) -> None:
    n = g.create_group("neuron")
    n.create_dataset("type", data=np.array([b"CUBA"], dtype="S10"))
    for key, value in (("vThMant", threshold), ("iDecay", 4096), ("vDecay", 0),
                       ("refDelay", 1), ("gradedSpike", 0)):
        n.create_dataset(key, data=np.int64(value))


def _netx_bias(layer, per_channel: bool) -> np.ndarray | None:
    """The bias mantissa at netx's exponent 6, per channel (conv) or per neuron."""
    if layer.bias_mant is None:
        return None
    bias_v = layer.bias_mant.astype(np.int64) << int(layer.bias_exp)
    unit = 1 << NETX_BIAS_EXP
    if np.any(bias_v % unit):
        raise HardwareLimitError(f"layer {layer.name}: bias {layer.bias_mant.tolist()[:3]}… "
                                 f"<< {layer.bias_exp} is not a multiple of 2**"
                                 f"{NETX_BIAS_EXP}, netx's fixed bias exponent",
                                 layer=layer.name)
    bias = bias_v // unit
    if not per_channel:
        return bias
    per = bias.reshape(layer.shape[0], -1)
    if not np.all(per == per[:, :1]):
        raise HardwareLimitError(f"layer {layer.name}: its bias differs within a channel; "
                                 "netx's conv layers take one bias per channel",
                                 layer=layer.name)
    return per[:, 0]


def _conv(g: h5py.Group, syn, layer) -> None:
    weight = np.asarray(syn.weight, dtype=np.int64)
    stride = np.asarray(syn.stride)
    top, left, _, _ = syn.padding
    padding = np.array([top, left])
    if syn.pool != (1, 1):  # sum-pool k then conv W == conv kron(W, ones(k)), stride k*s
        weight = np.kron(weight, np.ones((1, 1, *syn.pool), dtype=np.int64))
        stride = stride * np.asarray(syn.pool)
        padding = padding * np.asarray(syn.pool)
    g.create_dataset("type", data=np.array([b"conv"], dtype="S10"))
    _ints(g, "shape", layer.shape)
    _ints(g, "inChannels", syn.in_shape[0])
    _ints(g, "outChannels", layer.shape[0])
    _ints(g, "kernelSize", weight.shape[2:])
    _ints(g, "stride", stride)
    _ints(g, "padding", padding)
    _ints(g, "dilation", syn.dilation)
    _ints(g, "groups", syn.groups)
    g.create_dataset("weight", data=weight.astype(np.float32))
    bias = _netx_bias(layer, per_channel=True)
    if bias is not None:
        g.create_dataset("bias", data=bias.astype(np.float32))
    _neuron(g, int(layer.threshold))


def _dense(g: h5py.Group, syn, layer) -> None:
    weight = np.asarray(syn.matrix().toarray(), dtype=np.int64)
    g.create_dataset("type", data=np.array([b"dense"], dtype="S10"))
    _ints(g, "shape", (layer.size,))
    _ints(g, "inFeatures", weight.shape[1])
    _ints(g, "outFeatures", weight.shape[0])
    g.create_dataset("weight", data=weight.astype(np.float32))
    bias = _netx_bias(layer, per_channel=False)
    if bias is not None:
        g.create_dataset("bias", data=bias.astype(np.float32))
    _neuron(g, int(layer.threshold))


def write_netx(path: str | Path, art, options: dict) -> list[str]:
    """Write the export ``art`` (:class:`snn2hw.export.ExportArtifact`) as a netx file."""
    qnet = art.qnet
    check_options(art.params)
    check_network(qnet)
    timesteps = int(options.get("timesteps") or 256)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["snn2hw"] = FORMAT_NOTE
            f.attrs["snn2hw.input_coding"] = ("signed rate code, spikes -1/0/+1: load with "
                                              "input_message_bits=8")
            f.attrs["snn2hw.input_scale"] = float(qnet.input_scale)
            f.attrs["snn2hw.preprocess"] = art.preprocess
            f.attrs["snn2hw.profile"] = qnet.profile
            f.attrs["snn2hw.calibration"] = json.dumps({"method": art.method,
                                                        "params": art.params}, default=str)
            sim = f.create_group("simulation")
            sim.create_dataset("Ts", data=np.int64(1))
            sim.create_dataset("tSample", data=np.int64(timesteps))
            layers = f.create_group("layer")
            inp = layers.create_group("0")
            inp.create_dataset("type", data=np.array([b"input"], dtype="S10"))
            _ints(inp, "shape", qnet.input_shape)
            index = 1
            shape = tuple(qnet.input_shape)
            for layer, syn in chain_synapses(qnet):
                if syn.is_conv:
                    _conv(layers.create_group(str(index)), syn, layer)
                else:
                    if len(shape) > 1:
                        flat = layers.create_group(str(index))
                        flat.create_dataset("type", data=np.array([b"flatten"], dtype="S10"))
                        _ints(flat, "shape", (int(np.prod(shape)),))
                        index += 1
                    _dense(layers.create_group(str(index)), syn, layer)
                index += 1
                shape = tuple(layer.shape)
    return [f"{len(qnet.layers)} layers, {qnet.profile} integers, reset_interval = T and "
            "reset_offset = 1 reproduce snn2hw's per-sample reset"]
