"""Input normalisation inside the model, folded into the preprocessing.

Models often normalise in ``forward``: ``(x - mean) / std`` on the graph input, exported as
Sub/Div (or Mul/Add) by constants. Such a chain is an affine map per channel,
``x' = scale * x + shift``, and is folded exactly into the preprocessing that the data
pipeline applies before the Poisson encoder: ``mean = -shift / scale``, ``std = 1 / scale``,
composed with the model's declared ``snn2hw.preprocess`` (which runs first). The encoder
then codes the normalised, signed pixel, as in the paper. Folding into the first layer's
weights instead would not be exact: that layer's zero padding would then pad with
``-shift / scale`` in the raw pixel's units.

The chain is recognised from the graph input on: each tensor of it has one consumer, a
Sub (activation minus constant), Div (activation by constant), Mul or Add by a constant that
is the same at every position for each channel. Anything else uses the raw input and is
converted (or refused) as before.
"""
from __future__ import annotations

import json

import numpy as np

from ..errors import InputError

KEY = "snn2hw.input_normalisation"
OPS = ("Sub", "Add", "Mul", "Div")


def per_channel(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``value`` as one number per channel (or one in all) when it broadcasts onto a sample
    of ``shape`` without growing it and is constant over the other axes; else None."""
    value = np.asarray(value, dtype=np.float64)
    full = (1, *shape)
    try:
        if np.broadcast_shapes(full, value.shape) != full:
            return None
        spread = np.broadcast_to(value, full)
    except ValueError:
        return None
    channels = spread[(0, slice(None)) + (0,) * (len(shape) - 1)]
    if (spread != channels.reshape((1, -1) + (1,) * (len(shape) - 1))).any():
        return None
    return channels[:1] if np.all(channels == channels[0]) else channels


def _chain(info) -> dict[str, np.ndarray]:
    """Names of the nodes of the input's normalisation chain -> their per-channel constant."""
    cached = info.__dict__.get("_normalisation")
    if cached is not None:
        return cached
    from .scan import graph_input

    graph = info.model.graph
    users: dict[str, list] = {}
    for node in graph.node:
        for name in set(node.input):
            users.setdefault(name, []).append(node)
    tensor = graph_input(info.model).name
    shape = info.tensor_shape(tensor)
    found: dict[str, np.ndarray] = {}
    while shape and len(users.get(tensor, [])) == 1 and not info.is_graph_output(tensor):
        node = users[tensor][0]
        if node.op_type not in OPS or len(node.input) != 2 or list(node.input).count(tensor) != 1:
            break
        other = node.input[1] if node.input[0] == tensor else node.input[0]
        value = info.const_value(other)
        if value is None or (node.op_type in ("Sub", "Div") and node.input[0] != tensor):
            break
        channels = per_channel(value, tuple(shape[1:]))
        if channels is None:
            break
        found[node.name or node.output[0]] = channels
        tensor = node.output[0]
    info.__dict__["_normalisation"] = found
    return found


def in_chain(info, node) -> bool:
    """Whether ``node`` normalises the graph input (and is folded into preprocessing)."""
    return (node.name or node.output[0]) in _chain(info)


def apply(ctx, node) -> None:
    """Compose ``node``'s affine step onto the normalisation recorded so far."""
    c = _chain(ctx.info)[node.name or node.output[0]]
    state = json.loads(ctx.metadata.get(KEY, '{"scale": [1.0], "shift": [0.0]}'))
    scale, shift = np.asarray(state["scale"]), np.asarray(state["shift"])
    if node.op_type == "Sub":
        shift = shift - c
    elif node.op_type == "Add":
        shift = shift + c
    elif node.op_type == "Mul":
        scale, shift = scale * c, shift * c
    else:
        scale, shift = scale / c, shift / c
    scale, shift = np.broadcast_arrays(scale, shift)
    ctx.metadata[KEY] = json.dumps({"scale": scale.tolist(), "shift": shift.tolist()})
    ctx.alias(node.output[0], node.input[0] if not ctx.is_const(node.input[0])
              else node.input[1])


def fold_input_normalisation(metadata: dict[str, str], declared: dict[str, str]
                             ) -> dict[str, str]:
    """The model's declared ``snn2hw.*`` metadata with the normalisation recorded during
    conversion folded into ``snn2hw.preprocess``, and recorded as mean/std."""
    if KEY not in metadata:
        return dict(declared)
    from ..data import Preprocess

    state = json.loads(metadata[KEY])
    scale, shift = np.asarray(state["scale"]), np.asarray(state["shift"])
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0) or not np.all(np.isfinite(shift)):
        raise InputError(f"the model normalises its input with scale {scale.tolist()}: only "
                         "positive, finite scales fold into the preprocessing (x - mean) / std")
    mean2, std2 = -shift / scale, 1.0 / scale
    base = Preprocess.from_json(declared["snn2hw.preprocess"]) \
        if "snn2hw.preprocess" in declared else Preprocess()
    m1, s1 = np.asarray(base.mean), np.asarray(base.std)
    try:
        mean, std = np.broadcast_arrays(m1 + s1 * mean2, s1 * std2)
    except ValueError:
        raise InputError(f"the model declares preprocessing for {m1.size} channels but "
                         f"normalises {mean2.size} channels itself") from None
    composed = Preprocess(tuple(map(float, mean)), tuple(map(float, std)))
    return dict(declared) | {"snn2hw.preprocess": composed.to_json(),
                             KEY: json.dumps({"mean": mean2.tolist(), "std": std2.tolist()})}


def refuse_explicit(metadata: dict[str, str], mean, std) -> None:
    """--mean/--std replace the model's preprocessing, which here includes the model's own
    normalisation: refuse rather than silently drop or repeat it."""
    if (mean or std) and KEY in metadata:
        norm = json.loads(metadata[KEY])
        raise InputError(f"the model normalises its input itself (mean {norm['mean']}, std "
                         f"{norm['std']}, folded into the preprocessing): --mean/--std would "
                         "replace that; drop them, or scale the data file instead")
