"""The rounding-bias correction of a fixed-point export (``Conversion.rounding_bias``).

Rounding a layer's weights to integers changes each neuron's input current by
``sum_i (w_int[i] / theta - w[i]) * s_i[t]`` every step (threshold units). Over a window
that is, on average, the rounding error times the sources' mean rates ``r_i``: a fixed
offset per neuron that a bias current can take back (bias correction of quantised weights,
Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization and Bias
Correction"). The bias is far finer than a weight: one bias unit is 1 / (theta << 6) of the
threshold, one weight level 1 / theta. So the corrected bias is

    b' = b - sum over the layer's synapses of (W_int / theta - W) @ r

with ``r`` the calibration's mean source rates (:mod:`snn2hw.calibrate.rates`; the input's
in its integer levels: ``levels`` times its mean value). Every quantity here is exact
float64 arithmetic on the stored integers; the quantiser then rounds ``b'`` to mantissa <<
exponent like any bias and checks the state budget on the result. What is left is the
rounding error's fluctuation around its mean, which no bias can remove.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .qnet import IntSynapse


def check_rates(rates: dict[str, np.ndarray], sizes: dict[str, int]) -> None:
    """InputError unless ``rates`` has one finite value per neuron of every source."""
    for name, size in sizes.items():
        r = rates.get(name)
        if r is None:
            raise InputError(f"the calibration has no source rates of {name!r}, which the "
                             "rounding-bias correction needs: calibrate again with "
                             "--rounding-bias", options=("rounding_bias",))
        if np.shape(r) != (size,):
            raise InputError(f"source rates of {name!r}: {np.size(r)} values for {size} "
                             "neurons", options=("rounding_bias",))


def offsets(float_syns: list[IntSynapse], int_syns: list[IntSynapse], theta: int,
            rates: dict[str, np.ndarray], scale_of: dict[str, float]) -> np.ndarray:
    """Per neuron of the layer (flattened), in threshold units: ``-sum (W_int / theta - W)
    @ (scale_of[source] * rates[source])``. ``float_syns`` are the layer's float synapses
    in threshold units (what ``int_syns`` were rounded from after multiplying by
    ``theta``); ``scale_of`` turns a stored rate into the synapse's input units (the
    input's levels, 1 for spikes)."""
    total = None
    for fs, qs in zip(float_syns, int_syns):
        error = qs.matrix(np.float64) * (1.0 / theta) - fs.matrix(np.float64)
        part = error @ (np.asarray(rates[fs.source], dtype=np.float64)
                        * scale_of.get(fs.source, 1.0))
        total = part if total is None else total + part
    return -np.asarray(total, dtype=np.float64)
