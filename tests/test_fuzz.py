"""Property-based tests (hypothesis) of the importer and the Lava backend.

* random small valid networks of the supported ops, built with ``onnx.helper``: snn2hw's
  import + ANN forward pass equals onnxruntime;
* a few of them (image input, at least one conv) quantised for ``loihi_sim``: the
  fixed-point reference simulator equals Lava spike for spike, and so does the independent
  numpy reference of tests/test_lava_backend.py;
* mutated model bytes (bit flips, truncations, insertions, deletions): the importer either
  succeeds or raises an :class:`~snn2hw.errors.Snn2hwError`, never anything else, and
  never hangs.

The default run is short and derandomized (reproducible in CI). ``benchmarks/fuzz.py``
runs the same properties with many more examples.
"""
from __future__ import annotations

import signal
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import onnx.helper as oh
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
import onnx_builders as ob  # noqa: E402

from snn2hw import ann  # noqa: E402
from snn2hw.errors import Snn2hwError  # noqa: E402
from snn2hw.importer import import_onnx  # noqa: E402

QUICK = settings(max_examples=60, derandomize=True, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MUTATION = settings(QUICK, max_examples=300)
LAVA = settings(QUICK, max_examples=3)
IMPORT_TIMEOUT = 30  # seconds one import of a mutated file may take before it is a hang


# --------------------------------------------------------------------------------------
# Random valid networks
# --------------------------------------------------------------------------------------

class NetBuilder:
    """Appends ONNX nodes to one running tensor, tracking its per-sample shape."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, ...]) -> None:
        self.rng, self.shape, self.tensor = rng, tuple(shape), "x"
        self.input_shape = tuple(shape)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.ops: list[str] = []

    def _name(self, kind: str) -> str:
        return f"{kind}{len(self.nodes)}"

    def const(self, kind: str, value) -> str:
        name = f"{self._name(kind)}_{len(self.inits)}"
        self.inits.append(ob.init(name, value))
        return name

    def node(self, op: str, inputs: list[str], shape: tuple[int, ...], **attrs) -> str:
        out = self._name(op.lower())
        self.nodes.append(oh.make_node(op, inputs, [out], name=out, **attrs))
        self.ops.append(op)
        self.tensor, self.shape = out, tuple(shape)
        return out

    def weights(self, *shape: int) -> np.ndarray:
        fan_in = int(np.prod(shape[1:])) or 1
        return ob.rand(self.rng, *shape, scale=1.5 / np.sqrt(fan_in))

    # ---- image ops ---------------------------------------------------------------

    def conv(self, draw) -> None:
        c, h, w = self.shape
        groups = draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0]))
        out_c = groups * draw(st.integers(1, 2 if groups > 1 else 4))
        kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        attrs = {"kernel_shape": list(kernel), "strides": list(stride), "group": groups}
        if draw(st.booleans()):
            attrs["auto_pad"] = draw(st.sampled_from(["SAME_UPPER", "SAME_LOWER"]))
            out_hw = (-(-h // stride[0]), -(-w // stride[1]))
        else:
            dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
            pads = [draw(st.integers(0, 1)) for _ in range(4)]  # top, left, bottom, right
            span = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
            room = (h + pads[0] + pads[2], w + pads[1] + pads[3])
            if span[0] > room[0] or span[1] > room[1]:
                dilation, span = (1, 1), list(kernel)
                kernel = (min(kernel[0], room[0]), min(kernel[1], room[1]))
                span = list(kernel)
                attrs["kernel_shape"] = list(kernel)
            attrs.update(pads=pads, dilations=list(dilation))
            out_hw = ((room[0] - span[0]) // stride[0] + 1, (room[1] - span[1]) // stride[1] + 1)
        inputs = [self.tensor, self.const("w", self.weights(out_c, c // groups, *kernel))]
        if draw(st.booleans()):
            inputs.append(self.const("b", ob.rand(self.rng, out_c, scale=0.2)))
        self.node("Conv", inputs, (out_c, *out_hw), **attrs)

    def avgpool(self, draw) -> None:
        c, h, w = self.shape
        kernel = (draw(st.integers(1, min(3, h))), draw(st.integers(1, min(3, w))))
        stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        pads = [draw(st.integers(0, min(1, k - 1))) for k in kernel + kernel]
        pads = [pads[0], pads[1], pads[2], pads[3]]
        out_hw = ((h + pads[0] + pads[2] - kernel[0]) // stride[0] + 1,
                  (w + pads[1] + pads[3] - kernel[1]) // stride[1] + 1)
        self.node("AveragePool", [self.tensor], (c, *out_hw), kernel_shape=list(kernel),
                  strides=list(stride), pads=pads,
                  count_include_pad=int(draw(st.booleans())))

    def ceil_avgpool(self, draw) -> None:
        """Average pooling with ceil_mode=1: partial last windows. Where onnxruntime would
        drop a last window that starts in the trailing padding, ONNX shape inference does
        not (so the model would not be valid): those draws pool in floor mode instead."""
        c, h, w = self.shape
        kernel = (draw(st.integers(2, min(3, h))), draw(st.integers(2, min(3, w))))
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        pads = [draw(st.integers(0, 1)) for _ in range(4)]
        ceil, floor, drops = [], [], False
        for size, k, s, before, after in ((h, kernel[0], stride[0], pads[0], pads[2]),
                                          (w, kernel[1], stride[1], pads[1], pads[3])):
            ceil.append(-(-(size + before + after - k) // s) + 1)
            floor.append((size + before + after - k) // s + 1)
            drops |= (ceil[-1] - 1) * s >= size + before
        self.node("AveragePool", [self.tensor], (c, *(floor if drops else ceil)),
                  kernel_shape=list(kernel), strides=list(stride), pads=pads,
                  ceil_mode=int(not drops),
                  count_include_pad=int(draw(st.booleans())))

    def concat(self, draw) -> None:
        """Concat of the running tensor and a conv branch (1 or 2 convs deep) of it, in
        either order, along channels."""
        start, (c, h, w) = self.tensor, self.shape
        for _ in range(draw(st.integers(1, 2))):
            out_c = draw(st.integers(1, 3))
            self.node("Conv", [self.tensor, self.const("w", self.weights(out_c, self.shape[0],
                                                                          3, 3))],
                      (out_c, h, w), kernel_shape=[3, 3], pads=[1, 1, 1, 1])
            self.relu(draw)
        pair = [self.tensor, start] if draw(st.booleans()) else [start, self.tensor]
        self.node("Concat", pair, (c + self.shape[0], h, w), axis=1)

    def padded_conv(self, draw) -> None:
        """A zero Pad of the spatial axes, then a conv (folded into its padding)."""
        c, h, w = self.shape
        pads = [draw(st.integers(0, 2)) for _ in range(4)]  # top, left, bottom, right
        spec = self.const("pads", np.array([0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]]))
        self.node("Pad", [self.tensor, spec], (c, h + pads[0] + pads[2], w + pads[1] + pads[3]),
                  mode="constant")
        out_c = draw(st.integers(1, 3))
        k = (min(3, self.shape[1]), min(3, self.shape[2]))
        self.node("Conv", [self.tensor, self.const("w", self.weights(out_c, c, *k))],
                  (out_c, self.shape[1] - k[0] + 1, self.shape[2] - k[1] + 1),
                  kernel_shape=list(k))

    def residual(self, draw) -> None:
        """x + conv(x) (3x3, same size), optionally through ReLU, in either operand order."""
        start, shape = self.tensor, self.shape
        c = shape[0]
        self.node("Conv", [start, self.const("w", self.weights(c, c, 3, 3)),
                           self.const("b", ob.rand(self.rng, c, scale=0.2))], shape,
                  kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        if draw(st.booleans()):
            self.relu(draw)
        pair = [self.tensor, start] if draw(st.booleans()) else [start, self.tensor]
        self.node("Add", pair, shape)

    def channel_bias(self, draw) -> None:
        c = self.shape[0]
        self.node("Add", [self.tensor, self.const("bias", ob.rand(self.rng, c, 1, 1))],
                  self.shape)

    # ---- shared ops --------------------------------------------------------------

    def relu(self, draw) -> None:
        self.node("Relu", [self.tensor], self.shape)

    def batchnorm(self, draw) -> None:
        c = self.shape[0]
        stats = [self.rng.uniform(0.5, 1.5, c), self.rng.normal(0, 0.2, c),
                 self.rng.normal(0, 0.2, c), self.rng.uniform(0.5, 2.0, c)]
        self.node("BatchNormalization", [self.tensor] + [self.const(k, v) for k, v in
                                                         zip("sbmv", stats)],
                  self.shape, epsilon=1e-5)

    # ---- vector ops --------------------------------------------------------------

    def dense(self, draw, out: int | None = None) -> None:
        (f,) = self.shape
        n = out or draw(st.integers(1, 8))
        if draw(st.booleans()):
            trans = draw(st.booleans())
            weight = self.weights(n, f)
            inputs = [self.tensor, self.const("W", weight if trans else weight.T)]
            if draw(st.booleans()):
                shape = draw(st.sampled_from([(n,), (1, n), (1,)]))
                inputs.append(self.const("C", ob.rand(self.rng, *shape, scale=0.2)))
            alpha = draw(st.sampled_from([1.0, 0.5, 2.0]))
            self.node("Gemm", inputs, (n,), transB=int(trans), alpha=alpha,
                      beta=draw(st.sampled_from([1.0, 0.5])))
        else:
            self.node("MatMul", [self.tensor, self.const("W", self.weights(n, f).T)], (n,))
            if draw(st.booleans()):
                self.node("Add", [self.tensor, self.const("C", ob.rand(self.rng, n))], (n,))

    def dense_residual(self, draw) -> None:
        start, (f,) = self.tensor, self.shape
        self.node("Gemm", [start, self.const("W", self.weights(f, f))], (f,), transB=1)
        if draw(st.booleans()):
            self.relu(draw)
        self.node("Add", [start, self.tensor], (f,))

    # ---- heads -------------------------------------------------------------------

    def head(self, draw, opset: int) -> None:
        c, h, w = self.shape
        kind = draw(st.sampled_from(["flatten", "gap", "reshape", "reducemean"]))
        if kind == "gap":
            self.node("GlobalAveragePool", [self.tensor], (c, 1, 1))
        if kind == "reducemean" and opset < 18:
            self.node("ReduceMean", [self.tensor], (c,), axes=[2, 3], keepdims=0)
        elif kind == "reshape":
            self.node("Reshape", [self.tensor, self.const("shape", np.array([0, -1]))],
                      (int(np.prod(self.shape)),))
        else:
            self.node("Flatten", [self.tensor], (int(np.prod(self.shape)),), axis=1)


IMAGE_OPS = ("conv", "relu", "batchnorm", "avgpool", "residual", "channel_bias")
# The ops real exports add (issue: Concat, Pad, ceil-mode pooling), drawn by their own tests.
REAL_OPS = IMAGE_OPS + ("concat", "padded_conv", "ceil_avgpool")
VECTOR_OPS = ("dense", "relu", "batchnorm", "dense_residual")


@st.composite
def networks(draw, image: bool | None = None, min_ops: int = 0, max_ops: int = 4,
             must: tuple[str, ...] = (), image_ops: tuple[str, ...] = IMAGE_OPS):
    """(ONNX model, list of op types): a random valid network of supported ops; an image
    network's ops include ``must`` (in that order, at random places)."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    opset = draw(st.sampled_from([11, 13, 17]))
    image = draw(st.booleans()) if image is None else image
    if image:
        shape = (draw(st.integers(1, 3)), draw(st.integers(3, 8)), draw(st.integers(3, 8)))
        b = NetBuilder(rng, shape)
        ops = draw(st.lists(st.sampled_from(image_ops), min_size=min_ops, max_size=max_ops))
        for index, op in enumerate(must):
            ops.insert(draw(st.integers(index, len(ops))) if index else 0, op)
        for op in ops:
            if op in ("avgpool", "ceil_avgpool") and min(b.shape[1:]) < 2:
                continue
            if op == "channel_bias" and b.ops[-1:] != ["Conv"]:
                continue  # a constant bias folds into the conv before it only
            getattr(b, op)(draw)
        b.head(draw, opset)
    else:
        b = NetBuilder(rng, (draw(st.integers(2, 12)),))
        for op in draw(st.lists(st.sampled_from(VECTOR_OPS), min_size=min_ops,
                                max_size=max_ops)):
            getattr(b, op)(draw)
    b.dense(draw, out=draw(st.integers(2, 5)))
    batch = draw(st.sampled_from(["N", 2]))
    model = ob.make_model(b.nodes, (batch, *b.input_shape), b.tensor, b.inits, opset)
    return model, b.ops


def input_batch_shape(model: onnx.ModelProto) -> list[int]:
    """The model's batch size if it fixes one, else 2, then the sample shape."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return [dims[0].dim_value or 2] + [d.dim_value for d in dims[1:]]


def sample_input(model: onnx.ModelProto, seed: int = 0) -> np.ndarray:
    """Uniform [-1, 1] input of :func:`input_batch_shape`."""
    shape = input_batch_shape(model)
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype(np.float32)


# --------------------------------------------------------------------------------------
# The properties (plain functions, so benchmarks/fuzz.py can run them with more examples)
# --------------------------------------------------------------------------------------

def check_import_matches_onnxruntime(model: onnx.ModelProto, ops: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        graph = import_onnx(ob.save(model, Path(tmp) / "m.onnx"))
    x = sample_input(model)
    err, allowed = ob.max_error(ann.predict(graph, x), ob.run_ort(model, x))
    assert err <= allowed, f"ops {ops}: max abs error {err:.3g} > {allowed:.3g}"


@contextmanager
def no_hang(seconds: int, what: str):
    """Fail (instead of hanging the suite) if the body takes longer than ``seconds``."""
    def alarm(signum, frame):
        raise TimeoutError(f"{what} did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def mutate(data: bytes, edits: list[tuple[str, float, int]]) -> bytes:
    """Apply edits (kind, relative position, value) to ``data``."""
    out = bytearray(data)
    for kind, where, value in edits:
        pos = min(int(where * len(out)), max(len(out) - 1, 0))
        if kind == "flip" and out:
            out[pos] ^= 1 << (value % 8)
        elif kind == "set" and out:
            out[pos] = value % 256
        elif kind == "truncate":
            del out[pos:]
        elif kind == "insert":
            out[pos:pos] = bytes([value % 256]) * (1 + value % 4)
        elif kind == "delete":
            del out[pos:pos + 1 + value % 8]
    return bytes(out)


EDITS = st.lists(st.tuples(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]),
                           st.floats(0.0, 1.0), st.integers(0, 255)), min_size=1, max_size=6)


SPECIAL_INTS = [-(2 ** 31), -7, -1, 0, 1, 2, 3, 5, 64, 2 ** 31 - 1, 2 ** 40]
SPECIAL_FLOATS = [float("nan"), float("inf"), -1.0, 0.0, 1e-30, 1e30]
OP_TYPES = ["Conv", "Gemm", "MatMul", "Relu", "Add", "AveragePool", "GlobalAveragePool",
            "Flatten", "Reshape", "BatchNormalization", "ReduceMean", "Squeeze", "Identity",
            "Softmax", "MaxPool", "Concat", "Mul"]


def _pick(items, where: float):
    return items[min(int(where * len(items)), len(items) - 1)] if len(items) else None


def _edit_attribute(node: onnx.NodeProto, where: float, value: int) -> None:
    attr = _pick(node.attribute, where)
    if attr is None:
        node.attribute.append(oh.make_attribute(_pick(["group", "pads", "axis", "transB"],
                                                      where), SPECIAL_INTS[value % 11]))
    elif value % 5 == 0:
        node.attribute.remove(attr)
    elif attr.type == onnx.AttributeProto.INT:
        attr.i = SPECIAL_INTS[value % 11]
    elif attr.type == onnx.AttributeProto.INTS and value % 2:
        attr.ints.append(SPECIAL_INTS[value % 11])
    elif attr.type == onnx.AttributeProto.INTS and attr.ints:
        attr.ints[value % len(attr.ints)] = SPECIAL_INTS[value % 11]
    elif attr.type == onnx.AttributeProto.FLOAT:
        attr.f = SPECIAL_FLOATS[value % 6]
    elif attr.type == onnx.AttributeProto.STRING:
        attr.s = b"NOT_A_MODE"


def mutate_proto(model: onnx.ModelProto, edits: list[tuple[str, float, int]]) -> bytes:
    """Structured edits (attributes, dims, data types, wiring, op types, input shape) that
    keep the protobuf parseable, so the checks after parsing get exercised."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    for kind, where, value in edits:
        node, init = _pick(g.node, where), _pick(g.initializer, where)
        names = [n for n in g.node for n in n.output] + [i.name for i in g.initializer]
        if kind == "attribute" and node is not None:
            _edit_attribute(node, where, value)
        elif kind == "dims" and init is not None:
            dims = list(init.dims)
            if dims and value % 3:
                dims[value % len(dims)] = SPECIAL_INTS[value % 11]
            else:
                dims = dims[:-1] if value % 2 else dims + [1]
            del init.dims[:]
            init.dims.extend(dims)
        elif kind == "dtype" and init is not None:
            init.data_type = value % 26
        elif kind == "wire" and node is not None and node.input:
            node.input[value % len(node.input)] = _pick(names + ["", "x"], value / 256)
        elif kind == "op" and node is not None:
            node.op_type = OP_TYPES[value % len(OP_TYPES)]
        elif kind == "input_dim":
            dims = g.input[0].type.tensor_type.shape.dim
            dims[value % len(dims)].dim_value = max(SPECIAL_INTS[value % 11], 0)
    return model.SerializeToString()


PROTO_EDITS = st.lists(st.tuples(
    st.sampled_from(["attribute", "dims", "dtype", "wire", "op", "input_dim"]),
    st.floats(0.0, 1.0), st.integers(0, 255)), min_size=1, max_size=4)


def check_mutated_import(model: onnx.ModelProto, edits, proto_edits=()) -> str:
    """Import the mutated model (structured ``proto_edits``, then byte ``edits``); return
    the outcome's name. Any exception that is not a Snn2hwError propagates (the property
    fails)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        path.write_bytes(mutate(mutate_proto(model, list(proto_edits)), edits))
        with no_hang(IMPORT_TIMEOUT, "import of a mutated model"):
            try:
                graph = import_onnx(path)
            except Snn2hwError as exc:
                assert str(exc) and "\n" not in exc.message, repr(exc.message)
                return type(exc).__name__
        mutated = onnx.load(str(path))
    # What snn2hw accepts must compute what onnxruntime computes, where onnxruntime runs it.
    if np.prod(input_batch_shape(mutated), dtype=float) > 1e6:
        return "imported"
    x = sample_input(mutated)
    try:
        ref = ob.run_ort(mutated, x)
    except Exception:  # noqa: BLE001 - onnxruntime refuses models we accept; fine
        return "imported (onnxruntime refuses)"
    err, allowed = ob.max_error(ann.predict(graph, x), ref)
    assert err <= allowed, f"accepted mutated model differs from onnxruntime by {err:.3g}"
    return "imported"


def check_reference_matches_lava(model: onnx.ModelProto, ops: list[str],
                                 timesteps: int = 12, samples: int = 2,
                                 reset: str = "zero") -> None:
    """Quantise for loihi_sim; Lava and the fixed-point reference give the same spikes."""
    from snn2hw.hardware import profiles
    from snn2hw.snn import simulate
    from snn2hw import snn
    from snn2hw.calibrate import calibrate
    from snn2hw.steps.deploy import first_mismatch, prepare_network
    from snn2hw.snn.encoders import make_encoder
    from snn2hw.exporters.lava.watchdog import run_lava
    from snn2hw.quantize import quantize

    import test_lava_backend as lava_tests

    with tempfile.TemporaryDirectory() as tmp:
        graph = import_onnx(ob.save(model, Path(tmp) / "m.onnx"))
    net = snn.lower(graph)
    x = sample_input(model, seed=1)
    x = np.concatenate([x, sample_input(model, seed=2)])[:max(samples, 2)]
    cal = calibrate("max-act", net, x)
    profile = profiles.load("loihi_sim")
    qnet = quantize(net, cal.scales, profile, cal.source_scales, reset)
    names = [la.name for la in qnet.layers]
    enc = make_encoder("poisson", x, input_scale=qnet.input_scale, seed=0, stream=1)
    spikes = enc.full(0, len(x), timesteps).reshape(len(x), timesteps, -1)
    ref = simulate.simulate(prepare_network(qnet),
                            make_encoder("poisson", x, input_scale=qnet.input_scale, seed=0,
                                         stream=1),
                            timesteps, record=names)
    assert sum(int(np.abs(r).sum()) for r in ref.records.values()) > 0, f"silent: {ops}"
    lava = run_lava(qnet, spikes, timesteps, profile=profile)
    mismatch = first_mismatch(lava.spikes, ref.records, names)
    assert mismatch is None, f"ops {ops}: Lava differs from the reference: {mismatch}"
    independent = lava_tests.reference(qnet, spikes)
    mismatch = first_mismatch(independent, ref.records, names)
    assert mismatch is None, f"ops {ops}: numpy reference differs: {mismatch}"


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------

@QUICK
@given(networks())
def test_random_network_import_matches_onnxruntime(case):
    check_import_matches_onnxruntime(*case)


@QUICK
@given(networks(image=True, min_ops=3, max_ops=6))
def test_random_deeper_image_network_matches_onnxruntime(case):
    check_import_matches_onnxruntime(*case)


@MUTATION
@given(networks(max_ops=3), EDITS)
def test_mutated_model_bytes_raise_only_our_errors(case, edits):
    check_mutated_import(case[0], edits)


@MUTATION
@given(networks(max_ops=3), PROTO_EDITS)
def test_mutated_model_fields_raise_only_our_errors(case, proto_edits):
    check_mutated_import(case[0], (), proto_edits)


@pytest.mark.lava
@LAVA
@given(networks(image=True, max_ops=2, must=("conv", "relu", "residual")),
       st.sampled_from(["zero", "subtract"]))
def test_random_network_reference_matches_lava(case, reset):
    check_reference_matches_lava(*case, reset=reset)


@settings(QUICK, max_examples=30)
@given(networks(image=True, min_ops=2, max_ops=5, must=("concat",), image_ops=REAL_OPS))
def test_random_network_with_concat_pad_ceil_pool_matches_onnxruntime(case):
    check_import_matches_onnxruntime(*case)


@pytest.mark.lava
@settings(LAVA, max_examples=2)
@given(networks(image=True, max_ops=2, must=("relu", "concat"), image_ops=REAL_OPS),
       st.sampled_from(["zero", "subtract"]))
def test_random_network_with_concat_reference_matches_lava(case, reset):
    check_reference_matches_lava(*case, reset=reset)


def test_mutation_changes_the_bytes():
    """The mutations are real: each kind changes a model's bytes."""
    data = onnx.helper.make_model(onnx.helper.make_graph([], "g", [], [])).SerializeToString()
    data = data * 4
    for kind in ("flip", "set", "truncate", "insert", "delete"):
        assert mutate(data, [(kind, 0.5, 7)]) != data, kind
