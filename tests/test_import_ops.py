"""Per-op importer tests: small onnx.helper models, imported and compared to onnxruntime."""
from __future__ import annotations

import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx.helper as oh
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import onnx_builders as ob  # noqa: E402

from snn2hw import ann, data, ir  # noqa: E402
from snn2hw.onnx import ops as onnx_ops  # noqa: E402
from snn2hw.importer import import_onnx  # noqa: E402

ALL = (11, 13, 17, 20)
BATCH = 3


@dataclass
class Built:
    model: object
    x_shape: tuple[int, ...]       # concrete input shape for the test batch
    logits: str | None = None      # compare against this tensor instead of the output
    reference: object = None       # onnxruntime runs this model instead (same input)
    maxpool: str = "refuse"        # the importer's MaxPool option


@dataclass
class Case:
    build: Callable[[int, np.random.Generator], Built]
    opsets: tuple[int, ...] = ALL


CASES: dict[str, Case] = {}


def case(name: str, opsets: tuple[int, ...] = ALL, **variants):
    """Register ``fn`` as one case, or one case per keyword variant (``name[key]``)."""
    def decorate(fn):
        if not variants:
            CASES[name] = Case(fn, opsets)
        for key, kwargs in variants.items():
            CASES[f"{name}[{key}]"] = Case(
                lambda opset, rng, _kw=kwargs: fn(opset, rng, **_kw), opsets)
        return fn
    return decorate


def _img(c=3, h=8, w=8, batch="N"):
    return (batch, c, h, w), (BATCH if isinstance(batch, str) else batch, c, h, w)


def _conv_model(opset, rng, c_in=3, c_out=4, k=(3, 3), hw=(8, 8), bias=True, **attrs):
    group = attrs.get("group", 1)
    w = ob.rand(rng, c_out, c_in // group, *k)
    inits = [ob.init("w", w)] + ([ob.init("b", ob.rand(rng, c_out))] if bias else [])
    node = oh.make_node("Conv", ["x", "w"] + (["b"] if bias else []), ["y"], name="conv",
                        **attrs)
    sym, concrete = _img(c_in, *hw)
    return Built(ob.make_model([node], sym, "y", inits, opset), concrete)


# --- Conv -------------------------------------------------------------------------------

case("conv", plain={}, no_bias=dict(bias=False),
     stride2=dict(strides=[2, 2]),
     sym_pad=dict(pads=[1, 1, 1, 1], strides=[2, 2]),
     asym_pad=dict(pads=[0, 1, 2, 1], bias=False),
     asym_pad_stride=dict(pads=[2, 0, 1, 1], strides=[2, 1], hw=(9, 7)),
     same_upper=dict(auto_pad="SAME_UPPER", strides=[2, 2], hw=(8, 7)),
     same_upper_s1=dict(auto_pad="SAME_UPPER", k=(4, 2)),
     same_lower=dict(auto_pad="SAME_LOWER", strides=[2, 2], hw=(8, 7)),
     valid=dict(auto_pad="VALID", strides=[2, 2]),
     dilation=dict(dilations=[2, 2], pads=[2, 2, 2, 2]),
     dilation_asym=dict(dilations=[2, 1], pads=[1, 0, 2, 1], k=(3, 2)),
     rect_kernel=dict(k=(3, 1), strides=[2, 1]),
     groups=dict(c_in=4, c_out=6, group=2, pads=[1, 1, 1, 1]),
     depthwise=dict(c_in=4, c_out=4, group=4, pads=[1, 1, 1, 1]),
     depthwise_mult=dict(c_in=4, c_out=8, group=4, bias=False, strides=[2, 2]),
     )(_conv_model)


@case("conv_constant_node_weights")
def _conv_constant_node_weights(opset, rng):
    """Weights from Constant nodes instead of initializers."""
    nodes = [ob.const_node("w", ob.rand(rng, 4, 3, 3, 3)), ob.const_node("b", ob.rand(rng, 4)),
             oh.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", pads=[1, 1, 1, 1])]
    sym, concrete = _img()
    return Built(ob.make_model(nodes, sym, "y", (), opset), concrete)


# --- Gemm / MatMul ------------------------------------------------------------------------

def _gemm(opset, rng, trans_b=0, alpha=1.0, beta=1.0, c_shape=(5,), n_in=6):
    n_out = 5
    b = ob.rand(rng, n_out, n_in) if trans_b else ob.rand(rng, n_in, n_out)
    inits = [ob.init("B", b)]
    inputs = ["x", "B"]
    if c_shape is not None:
        inits.append(ob.init("C", ob.rand(rng, *c_shape)))
        inputs.append("C")
    node = oh.make_node("Gemm", inputs, ["y"], name="gemm", transB=trans_b, alpha=alpha,
                        beta=beta)
    return Built(ob.make_model([node], ("N", n_in), "y", inits, opset), (BATCH, n_in))


case("gemm", plain={}, transB=dict(trans_b=1),
     alpha_beta=dict(alpha=0.5, beta=2.0), alpha_beta_transB=dict(trans_b=1, alpha=-1.5,
                                                                   beta=0.25),
     no_bias=dict(c_shape=None), bias_row=dict(c_shape=(1, 5)),
     bias_scalar=dict(c_shape=(1,), beta=3.0))(_gemm)


def _matmul(opset, rng, add=True, bias_first=False, sub=False):
    nodes = [oh.make_node("MatMul", ["x", "W"], ["h"], name="matmul")]
    inits = [ob.init("W", ob.rand(rng, 6, 4))]
    out = "h"
    if add:
        inits.append(ob.init("bias", ob.rand(rng, 4)))
        inputs = ["bias", "h"] if bias_first else ["h", "bias"]
        nodes.append(oh.make_node("Sub" if sub else "Add", inputs, ["y"], name="bias_add"))
        out = "y"
    return Built(ob.make_model(nodes, ("N", 6), out, inits, opset), (BATCH, 6))


case("matmul", add=dict(), bias_first=dict(bias_first=True), no_add=dict(add=False),
     sub=dict(sub=True))(_matmul)


@case("conv_add_bias", bias_shape={"s": (4, 1, 1)}, bias_4d={"s": (1, 4, 1, 1)},
      scalar={"s": ()})
def _conv_add_bias(opset, rng, s):
    nodes = [oh.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             oh.make_node("Add", ["c", "b"], ["y"], name="bias_add")]
    inits = [ob.init("w", ob.rand(rng, 4, 3, 3, 3)), ob.init("b", ob.rand(rng, *s))]
    sym, concrete = _img()
    return Built(ob.make_model(nodes, sym, "y", inits, opset), concrete)


@case("conv_sub_bias")
def _conv_sub_bias(opset, rng):
    nodes = [oh.make_node("Conv", ["x", "w", "b0"], ["c"], name="conv"),
             oh.make_node("Sub", ["c", "b"], ["y"], name="bias_sub")]
    inits = [ob.init("w", ob.rand(rng, 4, 3, 3, 3)), ob.init("b0", ob.rand(rng, 4)),
             ob.init("b", ob.rand(rng, 1, 4, 1, 1))]
    sym, concrete = _img()
    return Built(ob.make_model(nodes, sym, "y", inits, opset), concrete)


@case("const_arith_bias")
def _const_arith_bias(opset, rng):
    """A bias computed from constants (Constant, Mul, Div, Cast, Sub, Add) then folded."""
    nodes = [ob.const_node("k", np.array([1, 2, 3, 4], dtype=np.int64)),
             oh.make_node("Cast", ["k"], ["kf"], name="cast", to=ob.FLOAT),
             oh.make_node("Mul", ["kf", "two"], ["m"], name="mul"),
             oh.make_node("Div", ["m", "four"], ["d"], name="div"),
             oh.make_node("Sub", ["d", "one"], ["s"], name="sub_const"),
             oh.make_node("Add", ["s", "one"], ["bias"], name="add_const"),
             oh.make_node("MatMul", ["x", "W"], ["h"], name="matmul"),
             oh.make_node("Add", ["h", "bias"], ["y"], name="bias_add")]
    inits = [ob.init("two", np.float32(2.0)), ob.init("four", np.float32(4.0)),
             ob.init("one", np.float32(1.0)), ob.init("W", ob.rand(rng, 5, 4))]
    return Built(ob.make_model(nodes, ("N", 5), "y", inits, opset), (BATCH, 5))


# --- Relu / Add ------------------------------------------------------------------------------

@case("relu", image={"image": True}, vector={"image": False})
def _relu(opset, rng, image):
    node = oh.make_node("Relu", ["x"], ["y"], name="relu")
    sym, concrete = _img() if image else (("N", 7), (BATCH, 7))
    return Built(ob.make_model([node], sym, "y", (), opset), concrete)


@case("residual_add", two_convs={"identity": False}, identity={"identity": True})
def _residual(opset, rng, identity):
    nodes = [oh.make_node("Conv", ["x", "w0", "b0"], ["a"], name="stem", pads=[1, 1, 1, 1]),
             oh.make_node("Relu", ["a"], ["ar"], name="relu0"),
             oh.make_node("Conv", ["ar", "w1", "b1"], ["p"], name="branch1", pads=[1, 1, 1, 1]),
             oh.make_node("Relu", ["p"], ["pr"], name="relu1")]
    inits = [ob.init("w0", ob.rand(rng, 4, 3, 3, 3)), ob.init("b0", ob.rand(rng, 4)),
             ob.init("w1", ob.rand(rng, 4, 4, 3, 3)), ob.init("b1", ob.rand(rng, 4))]
    if identity:
        other = "ar"
    else:
        nodes.append(oh.make_node("Conv", ["ar", "w2"], ["q"], name="branch2"))
        inits.append(ob.init("w2", ob.rand(rng, 4, 4, 1, 1)))
        other = "q"
    nodes += [oh.make_node("Add", ["pr", other], ["s"], name="residual"),
              oh.make_node("Relu", ["s"], ["y"], name="relu_out")]
    sym, concrete = _img()
    return Built(ob.make_model(nodes, sym, "y", inits, opset), concrete)


# --- pooling -------------------------------------------------------------------------------

def _avgpool(opset, rng, hw=(8, 8), **attrs):
    node = oh.make_node("AveragePool", ["x"], ["y"], name="pool", **attrs)
    sym, concrete = _img(3, *hw)
    return Built(ob.make_model([node], sym, "y", (), opset), concrete)


case("avgpool", k2s2=dict(kernel_shape=[2, 2], strides=[2, 2]),
     k3s1_default_stride=dict(kernel_shape=[3, 3]),
     k3s2=dict(kernel_shape=[3, 3], strides=[2, 2], hw=(9, 8)),
     rect=dict(kernel_shape=[2, 3], strides=[1, 2]),
     pad_include=dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                      count_include_pad=1),
     pad_exclude=dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                      count_include_pad=0),
     pad_default=dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
     asym_include=dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 2, 1],
                       count_include_pad=1),
     asym_exclude=dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 2, 1],
                       count_include_pad=0),
     same_upper_include=dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER",
                             count_include_pad=1, hw=(8, 7)),
     same_upper_exclude=dict(kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER",
                             hw=(7, 7)),
     large_pad_exclude=dict(kernel_shape=[2, 2], strides=[1, 1], pads=[1, 1, 1, 1],
                            count_include_pad=0),
     )(_avgpool)


@case("global_avgpool")
def _global_avgpool(opset, rng):
    nodes = [oh.make_node("GlobalAveragePool", ["x"], ["y"], name="gap")]
    sym, concrete = _img(3, 6, 5)
    return Built(ob.make_model(nodes, sym, "y", (), opset), concrete)


def _reduce_mean(opset, rng, keepdims, axes=(2, 3), form="attr"):
    nodes, inits, inputs = [], [], ["x"]
    if form == "attr":
        kwargs = {"axes": list(axes)}
    else:
        kwargs = {}
        if form == "init":
            inits.append(ob.init("axes", np.array(axes, dtype=np.int64)))
        else:
            nodes.append(ob.const_node("axes", np.array(axes, dtype=np.int64)))
        inputs.append("axes")
    nodes.append(oh.make_node("ReduceMean", inputs, ["y"], name="mean", keepdims=keepdims,
                              **kwargs))
    sym, concrete = _img(4, 5, 6)
    return Built(ob.make_model(nodes, sym, "y", inits, opset), concrete)


case("reduce_mean_attr", opsets=(11, 13, 17),
     keep=dict(keepdims=1), drop=dict(keepdims=0),
     negative_axes=dict(keepdims=0, axes=(-1, -2)))(_reduce_mean)
case("reduce_mean_input", opsets=(18, 20),
     keep=dict(keepdims=1, form="init"), drop=dict(keepdims=0, form="init"),
     const_node=dict(keepdims=0, form="const"),
     negative_axes=dict(keepdims=1, axes=(-2, -1), form="init"))(_reduce_mean)


# --- shape ops -------------------------------------------------------------------------------

@case("flatten", image={"image": True}, vector={"image": False},
      negative_axis={"image": True, "axis": -3})
def _flatten(opset, rng, image, axis=1):
    nodes = [oh.make_node("Flatten", ["x"], ["f"], name="flatten", axis=axis),
             oh.make_node("Gemm", ["f", "W"], ["y"], name="fc", transB=1)]
    sym, concrete = _img(2, 3, 4) if image else (("N", 24), (BATCH, 24))
    inits = [ob.init("W", ob.rand(rng, 5, 24))]
    return Built(ob.make_model(nodes, sym, "y", inits, opset), concrete)


@case("reshape_const", minus1=dict(target=(-1, 24)), zero=dict(target=(0, -1)),
      static_batch=dict(target=(2, 24), batch=2), static_batch_m1=dict(target=(2, -1), batch=2),
      same_shape=dict(target=(-1, 2, 3, 4)))
def _reshape_const(opset, rng, target, batch="N"):
    nodes = [oh.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             oh.make_node("Reshape", ["c", "shape"], ["y"], name="reshape")]
    inits = [ob.init("w", ob.rand(rng, 2, 3, 1, 1)),
             ob.init("shape", np.array(target, dtype=np.int64))]
    sym, concrete = _img(3, 3, 4, batch=batch)
    return Built(ob.make_model(nodes, sym, "y", inits, opset), concrete)


@case("reshape_shape_chain")
def _reshape_chain(opset, rng):
    """``x.view(x.size(0), -1)`` as the TorchScript exporter writes it."""
    if opset < 13:
        unsqueeze = oh.make_node("Unsqueeze", ["n"], ["n1"], name="unsqueeze", axes=[0])
        extra = []
    else:
        unsqueeze = oh.make_node("Unsqueeze", ["n", "ax0"], ["n1"], name="unsqueeze")
        extra = [ob.const_node("ax0", np.array([0], dtype=np.int64))]
    nodes = [oh.make_node("Relu", ["x"], ["r"], name="relu"),
             oh.make_node("Shape", ["r"], ["s"], name="shape"),
             ob.const_node("i0", np.array(0, dtype=np.int64)),
             oh.make_node("Gather", ["s", "i0"], ["n"], name="gather", axis=0),
             *extra, unsqueeze,
             ob.const_node("m1", np.array([-1], dtype=np.int64)),
             oh.make_node("Concat", ["n1", "m1"], ["target"], name="concat", axis=0),
             oh.make_node("Reshape", ["r", "target"], ["f"], name="reshape"),
             oh.make_node("Gemm", ["f", "W", "b"], ["y"], name="fc", transB=1)]
    inits = [ob.init("W", ob.rand(rng, 5, 48)), ob.init("b", ob.rand(rng, 5))]
    sym, concrete = _img(3, 4, 4)
    return Built(ob.make_model(nodes, sym, "y", inits, opset, out_shape=("N", 5)), concrete)


@case("reshape_shape_slice")
def _reshape_slice(opset, rng):
    """Batch size taken with Slice (and Shape's start/end from opset 15) instead of Gather."""
    if opset >= 15:
        nodes = [oh.make_node("Shape", ["x"], ["n1"], name="shape", start=0, end=1)]
    else:
        nodes = [oh.make_node("Shape", ["x"], ["s"], name="shape"),
                 oh.make_node("Slice", ["s", "st", "en"], ["n1"], name="slice")]
    nodes += [oh.make_node("Concat", ["n1", "m1"], ["target"], name="concat", axis=0),
              oh.make_node("Reshape", ["x", "target"], ["y"], name="reshape")]
    inits = [ob.init("st", np.array([0])), ob.init("en", np.array([1])),
             ob.init("m1", np.array([-1]))]
    if opset >= 15:
        inits = inits[2:]
    sym, concrete = _img(2, 3, 3)
    return Built(ob.make_model(nodes, sym, "y", inits, opset, out_shape=("N", 18)), concrete)


@case("squeeze")
def _squeeze(opset, rng):
    nodes = [oh.make_node("GlobalAveragePool", ["x"], ["g"], name="gap")]
    inits = [ob.init("W", ob.rand(rng, 4, 3))]
    if opset < 13:
        nodes.append(oh.make_node("Squeeze", ["g"], ["s"], name="squeeze", axes=[2, 3]))
    else:
        inits.append(ob.init("axes", np.array([2, 3])))
        nodes.append(oh.make_node("Squeeze", ["g", "axes"], ["s"], name="squeeze"))
    nodes.append(oh.make_node("MatMul", ["s", "W"], ["y"], name="fc"))
    sym, concrete = _img(4, 5, 5)
    return Built(ob.make_model(nodes, sym, "y", inits, opset), concrete)


# --- BatchNormalization ----------------------------------------------------------------------

def _bn_inits(rng, c, prefix="bn"):
    return [ob.init(f"{prefix}_s", 1 + ob.rand(rng, c, scale=0.2)),
            ob.init(f"{prefix}_b", ob.rand(rng, c)),
            ob.init(f"{prefix}_m", ob.rand(rng, c)),
            ob.init(f"{prefix}_v", 0.5 + np.abs(ob.rand(rng, c)))]


def _bn(src, out, prefix="bn", eps=1e-5):
    return oh.make_node("BatchNormalization", [src] + [f"{prefix}_{k}" for k in "sbmv"], [out],
                        name=prefix, epsilon=eps)


@case("bn_after_conv", bias={"bias": True}, no_bias={"bias": False})
def _bn_after_conv(opset, rng, bias):
    nodes = [oh.make_node("Conv", ["x", "w"] + (["b"] if bias else []), ["c"], name="conv",
                          pads=[1, 1, 1, 1]),
             _bn("c", "n", eps=1e-3), oh.make_node("Relu", ["n"], ["y"], name="relu")]
    inits = [ob.init("w", ob.rand(rng, 5, 3, 3, 3)), ob.init("b", ob.rand(rng, 5))]
    inits = (inits if bias else inits[:1]) + _bn_inits(rng, 5)
    sym, concrete = _img()
    model = ob.make_model(nodes, sym, "y", inits, opset)
    return Built(model, concrete)


@case("bn_after_gemm")
def _bn_after_gemm(opset, rng):
    nodes = [oh.make_node("Gemm", ["x", "W", "C"], ["h"], name="fc", transB=1),
             _bn("h", "y")]
    inits = [ob.init("W", ob.rand(rng, 6, 7)), ob.init("C", ob.rand(rng, 6))] + _bn_inits(rng, 6)
    return Built(ob.make_model(nodes, ("N", 7), "y", inits, opset), (BATCH, 7))


@case("bn_on_input", image={"image": True}, vector={"image": False})
def _bn_on_input(opset, rng, image):
    """Not after a conv/dense: a per-channel affine map of its own."""
    c = 3 if image else 7
    nodes = [_bn("x", "y")]
    sym, concrete = _img(c) if image else (("N", c), (BATCH, c))
    return Built(ob.make_model(nodes, sym, "y", _bn_inits(rng, c), opset), concrete)


@case("bn_conv_shared")
def _bn_conv_shared(opset, rng):
    """The conv output also feeds a second branch: the BN cannot be folded into it."""
    nodes = [oh.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             _bn("c", "n"), oh.make_node("Add", ["n", "c"], ["y"], name="add")]
    inits = [ob.init("w", ob.rand(rng, 3, 3, 3, 3))] + _bn_inits(rng, 3)
    sym, concrete = _img()
    return Built(ob.make_model(nodes, sym, "y", inits, opset), concrete)


@case("bn_conv_shared_via_identity")
def _bn_conv_shared_via_identity(opset, rng):
    """As above, with the BN reading the conv output through an Identity."""
    nodes = [oh.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             oh.make_node("Identity", ["c"], ["i"], name="identity"),
             _bn("i", "n"), oh.make_node("Add", ["n", "c"], ["y"], name="add")]
    inits = [ob.init("w", ob.rand(rng, 3, 3, 3, 3))] + _bn_inits(rng, 3)
    sym, concrete = _img()
    return Built(ob.make_model(nodes, sym, "y", inits, opset), concrete)


@case("bn_after_bias_add")
def _bn_after_bias_add(opset, rng):
    """Conv, a separate bias Add, then BN: both fold into the conv."""
    nodes = [oh.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             oh.make_node("Add", ["c", "b"], ["cb"], name="bias_add"),
             _bn("cb", "y")]
    inits = [ob.init("w", ob.rand(rng, 4, 3, 3, 3)), ob.init("b", ob.rand(rng, 4, 1, 1))]
    sym, concrete = _img()
    return Built(ob.make_model(nodes, sym, "y", inits + _bn_inits(rng, 4), opset), concrete)


# --- ops that vanish -------------------------------------------------------------------------

@case("dropout_identity")
def _dropout_identity(opset, rng):
    if opset < 12:
        dropout = oh.make_node("Dropout", ["c"], ["d"], name="dropout", ratio=0.5)
        inits = []
    else:
        dropout = oh.make_node("Dropout", ["c", "ratio"], ["d"], name="dropout")
        inits = [ob.init("ratio", np.float32(0.5))]
    nodes = [oh.make_node("Conv", ["x", "w", "b"], ["c"], name="conv"), dropout,
             oh.make_node("Identity", ["d"], ["i"], name="identity"),
             oh.make_node("Relu", ["i"], ["y"], name="relu")]
    inits += [ob.init("w", ob.rand(rng, 4, 3, 3, 3)), ob.init("b", ob.rand(rng, 4))]
    sym, concrete = _img()
    return Built(ob.make_model(nodes, sym, "y", inits, opset), concrete)


@case("identity_on_input")
def _identity_on_input(opset, rng):
    nodes = [oh.make_node("Identity", ["x"], ["i"], name="identity"),
             oh.make_node("Gemm", ["i", "W"], ["y"], name="fc")]
    inits = [ob.init("W", ob.rand(rng, 4, 3))]
    return Built(ob.make_model(nodes, ("N", 4), "y", inits, opset), (BATCH, 4))


@case("trailing_softmax", softmax={"op": "Softmax"}, log_softmax={"op": "LogSoftmax"})
def _trailing_softmax(opset, rng, op):
    nodes = [oh.make_node("Gemm", ["x", "W", "C"], ["logits"], name="fc", transB=1),
             oh.make_node(op, ["logits"], ["y"], name="softmax", axis=1)]
    inits = [ob.init("W", ob.rand(rng, 10, 6, scale=2.0)), ob.init("C", ob.rand(rng, 10))]
    return Built(ob.make_model(nodes, ("N", 6), "y", inits, opset), (BATCH, 6), "logits")


# --- ceil-mode pooling, MaxPool as average pooling ------------------------------------------

case("avgpool_ceil", k2s2=dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1, hw=(7, 7)),
     k3s2_include=dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1,
                       count_include_pad=1, hw=(8, 9)),
     k3s2_exclude=dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1,
                       count_include_pad=0, hw=(8, 9)),
     asym_include=dict(kernel_shape=[3, 2], strides=[2, 3], pads=[0, 1, 1, 0], ceil_mode=1,
                       count_include_pad=1),
     asym_exclude=dict(kernel_shape=[3, 2], strides=[2, 3], pads=[0, 1, 1, 0], ceil_mode=1,
                       count_include_pad=0),
     # the last window would start inside the trailing pad: ONNX Runtime drops it
     start_in_pad=dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 2, 2], ceil_mode=1,
                       count_include_pad=1, hw=(6, 6)),
     start_in_pad_exclude=dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 2, 2],
                               ceil_mode=1, count_include_pad=0, hw=(6, 7)),
     )(_avgpool)


def _maxpool(opset, rng, **attrs):
    nodes = [oh.make_node("MaxPool", ["x"], ["y"], name="pool", **attrs)]
    avg = [oh.make_node("AveragePool", ["x"], ["y"], name="pool", count_include_pad=0,
                        **{k: v for k, v in attrs.items() if k != "dilations"})]
    sym, concrete = _img(3, 8, 7)
    return Built(ob.make_model(nodes, sym, "y", (), opset), concrete,
                 reference=ob.make_model(avg, sym, "y", (), opset), maxpool="avg")


case("maxpool_as_avg", k2s2=dict(kernel_shape=[2, 2], strides=[2, 2]),
     k3s2_pad_ceil=dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
     k3s1_dilations1=dict(kernel_shape=[3, 3], dilations=[1, 1]),
     )(_maxpool)


# --- Pad folded into the next Conv / AveragePool -------------------------------------------

def _pad_inputs(opset, pads, value=None, axes=None):
    """Pad's inputs and their nodes: pads (and value, axes) as Constant nodes."""
    nodes = [ob.const_node("pads", np.asarray(pads, dtype=np.int64))]
    names = ["x", "pads"]
    if value is not None or axes is not None:
        names.append("value" if value is not None else "")
        if value is not None:
            nodes.append(ob.const_node("value", np.asarray(value, dtype=np.float32)))
    if axes is not None:
        nodes.append(ob.const_node("axes", np.asarray(axes, dtype=np.int64)))
        names.append("axes")
    return nodes, names


def _pad(opset, rng, then="conv", pads=(0, 0, 1, 2, 0, 0, 2, 1), value=None, axes=None,
         own_pads=None, **attrs):
    if own_pads is not None:
        attrs["pads"] = own_pads
    nodes, names = _pad_inputs(opset, list(pads), value, axes)
    nodes.append(oh.make_node("Pad", names, ["p"], name="pad", mode="constant"))
    inits = []
    if then == "conv":
        nodes.append(oh.make_node("Conv", ["p", "w", "b"], ["y"], name="conv", **attrs))
        inits = [ob.init("w", ob.rand(rng, 4, 3, 3, 3)), ob.init("b", ob.rand(rng, 4))]
    else:
        nodes.append(oh.make_node("AveragePool", ["p"], ["y"], name="pool", **attrs))
    sym, concrete = _img(3, 7, 8)
    return Built(ob.make_model(nodes, sym, "y", inits, opset), concrete)


case("pad", conv={}, conv_padded=dict(pads=(0, 0, 1, 0, 0, 0, 0, 1), own_pads=[1, 0, 0, 1]),
     conv_same_upper=dict(auto_pad="SAME_UPPER", strides=[2, 2]),
     conv_zero_value=dict(value=0.0, strides=[2, 1]),
     pool_exclude=dict(then="pool", kernel_shape=[3, 3], strides=[2, 2], count_include_pad=0),
     pool_include_own_pads=dict(then="pool", kernel_shape=[3, 3], strides=[2, 2],
                                own_pads=[1, 1, 1, 1], count_include_pad=1),
     pool_ceil=dict(then="pool", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1,
                    pads=(0, 0, 1, 1, 0, 0, 0, 0)),
     )(_pad)
case("pad_axes", opsets=(18, 20), spatial=dict(pads=(1, 2, 2, 0), axes=(2, 3)),
     negative_axes=dict(pads=(1, 0, 1, 1), axes=(-2, -1), value=0.0))(_pad)


@case("pad_torchscript_pads")
def _pad_torchscript(opset, rng):
    """pads computed the TorchScript way for F.pad(x, (left, right, top, bottom)):
    ConstantOfShape, Concat, Reshape, Slice (reversed), Transpose, Reshape, Cast."""
    nodes = [ob.const_node("spec", np.asarray([1, 2, 0, 1], dtype=np.int64)),
             ob.const_node("four", np.asarray([4], dtype=np.int64)),
             oh.make_node("ConstantOfShape", ["four"], ["zeros"], name="zeros",
                          value=ob.init("v", np.asarray([0], dtype=np.int64))),
             oh.make_node("Concat", ["spec", "zeros"], ["full"], name="cat", axis=0),
             ob.const_node("pairs", np.asarray([-1, 2], dtype=np.int64)),
             oh.make_node("Reshape", ["full", "pairs"], ["p2"], name="reshape"),
             ob.const_node("st", np.asarray([-1], dtype=np.int64)),
             ob.const_node("en", np.asarray([-(2 ** 62)], dtype=np.int64)),
             ob.const_node("ax", np.asarray([0], dtype=np.int64)),
             ob.const_node("step", np.asarray([-1], dtype=np.int64)),
             oh.make_node("Slice", ["p2", "st", "en", "ax", "step"], ["rev"], name="slice"),
             oh.make_node("Transpose", ["rev"], ["tr"], name="transpose", perm=[1, 0]),
             ob.const_node("flat", np.asarray([-1], dtype=np.int64)),
             oh.make_node("Reshape", ["tr", "flat"], ["pads"], name="reshape2"),
             oh.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
             oh.make_node("Conv", ["p", "w"], ["y"], name="conv")]
    sym, concrete = _img(2, 6, 6)
    return Built(ob.make_model(nodes, sym, "y", [ob.init("w", ob.rand(rng, 3, 2, 3, 3))],
                               opset), concrete)


# --- Concat of activations -----------------------------------------------------------------

def _branch(name, src, rng, c_in, c_out, inits, relu=True, **attrs):
    nodes = [oh.make_node("Conv", [src, f"w_{name}", f"bias_{name}"], [f"{name}_c"], name=name,
                          pads=[1, 1, 1, 1], **attrs)]
    inits += [ob.init(f"w_{name}", ob.rand(rng, c_out, c_in, 3, 3)),
              ob.init(f"bias_{name}", ob.rand(rng, c_out))]
    if relu:
        nodes.append(oh.make_node("Relu", [f"{name}_c"], [f"{name}_r"], name=f"{name}_relu"))
    return nodes


def _concat(opset, rng, then="conv", with_input=False, deep=False, three=False):
    """Branches of different depths (and optionally the raw input) concatenated along
    channels, then a conv (+ReLU), a grouped conv, a pool and conv, or nothing."""
    inits: list = []
    nodes = _branch("a", "x", rng, 3, 4, inits)
    nodes += _branch("b", "x", rng, 3, 2, inits)
    parts = ["a_r", "b_r"]
    if deep:
        nodes += _branch("b2", "b_r", rng, 2, 3, inits)
        parts[1] = "b2_r"
    if with_input:
        parts.append("x")
    if three:
        nodes += _branch("d", "a_r", rng, 4, 5, inits)
        parts.insert(1, "d_r")
    nodes.append(oh.make_node("Concat", parts, ["cat"], name="concat", axis=1))
    total = 4 + (5 if three else 0) + (3 if deep else 2) + (3 if with_input else 0)
    if then == "conv":
        nodes += _branch("c", "cat", rng, total, 6, inits)
        out = "c_r"
    elif then == "grouped":
        nodes.append(oh.make_node("Conv", ["cat", "wg"], ["out"], name="grouped",
                                  group=total, pads=[1, 1, 1, 1]))
        inits.append(ob.init("wg", ob.rand(rng, total * 2, 1, 3, 3)))
        out = "out"
    elif then == "relu":
        nodes.append(oh.make_node("Relu", ["cat"], ["out"], name="cat_relu"))
        out = "out"
    elif then == "residual":
        nodes += _branch("s", "x", rng, 3, total, inits)
        nodes.append(oh.make_node("Add", ["cat", "s_r"], ["out"], name="residual"))
        out = "out"
    elif then == "flatten_dense":
        nodes += [oh.make_node("Flatten", ["cat"], ["flat"], name="flatten"),
                  oh.make_node("Gemm", ["flat", "wd", "bd"], ["out"], name="fc", transB=1)]
        inits += [ob.init("wd", ob.rand(rng, 5, total * 64)), ob.init("bd", ob.rand(rng, 5))]
        out = "out"
    elif then == "pool_conv":
        nodes.append(oh.make_node("AveragePool", ["cat"], ["pooled"], name="pool",
                                  kernel_shape=[2, 2], strides=[2, 2]))
        nodes += _branch("c", "pooled", rng, total, 6, inits, relu=False)
        out = "c_c"
    else:
        out = "cat"
    sym, concrete = _img(3, 8, 8)
    nodes[-1].output[0] = "y"
    for node in nodes:
        node.input[:] = ["y" if i == out else i for i in node.input]
    return Built(ob.make_model(nodes, sym, "y", inits, opset), concrete)


case("concat", conv={}, deep_branch=dict(deep=True), with_input=dict(with_input=True),
     three_way=dict(three=True, deep=True), grouped=dict(then="grouped", deep=True),
     pool_conv=dict(then="pool_conv", three=True), to_output=dict(then=None),
     flatten_dense=dict(then="flatten_dense", with_input=True),
     to_relu=dict(then="relu", with_input=True), residual=dict(then="residual", deep=True),
     )(_concat)


@case("concat_vectors")
def _concat_vectors(opset, rng):
    nodes = [oh.make_node("Gemm", ["x", "W1"], ["h1"], name="fc1", transB=1),
             oh.make_node("Relu", ["h1"], ["r1"], name="relu1"),
             oh.make_node("Concat", ["r1", "x"], ["cat"], name="concat", axis=-1),
             oh.make_node("Gemm", ["cat", "W2", "C2"], ["y"], name="fc2", transB=1)]
    inits = [ob.init("W1", ob.rand(rng, 5, 6)), ob.init("W2", ob.rand(rng, 4, 11)),
             ob.init("C2", ob.rand(rng, 4))]
    return Built(ob.make_model(nodes, ("N", 6), "y", inits, opset), (BATCH, 6))


# --- input normalisation (folded into the preprocessing) -----------------------------------

@case("input_normalisation", sub_div={"form": "sub_div"}, mul_add={"form": "mul_add"},
      scalar={"form": "scalar"}, chain={"form": "chain"})
def _normalisation(opset, rng, form):
    mean = np.asarray([0.1, -0.2, 0.3], dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray([0.5, 0.25, 2.0], dtype=np.float32).reshape(1, 3, 1, 1)
    steps = {"sub_div": [("Sub", mean), ("Div", std)],
             "mul_add": [("Mul", 1 / std), ("Add", -mean / std)],
             "scalar": [("Sub", np.float32(0.5)), ("Div", np.float32(0.2))],
             "chain": [("Mul", np.float32(255.0)), ("Sub", mean), ("Div", std),
                       ("Add", mean.reshape(3, 1, 1))]}[form]
    nodes, inits, src = [], [], "x"
    for k, (op, value) in enumerate(steps):
        inits.append(ob.init(f"k{k}", value))
        operands = [f"k{k}", src] if op in ("Mul", "Add") and k % 2 else [src, f"k{k}"]
        nodes.append(oh.make_node(op, operands, [f"n{k}"], name=f"norm{k}"))
        src = f"n{k}"
    nodes += _branch("conv", src, rng, 3, 4, inits, relu=False)
    nodes[-1].output[0] = "y"
    sym, concrete = _img(3, 6, 6)
    return Built(ob.make_model(nodes, sym, "y", inits, opset), concrete)


# --- the tests -------------------------------------------------------------------------------

PARAMS = [pytest.param(name, opset, id=f"{name}-opset{opset}")
          for name, c in CASES.items() for opset in c.opsets]


@pytest.mark.parametrize(("name", "opset"), PARAMS)
def test_op_matches_onnxruntime(name, opset, tmp_path):
    rng = np.random.default_rng(zlib.crc32(f"{name}-{opset}".encode()))
    built = CASES[name].build(opset, rng)
    path = ob.save(built.model, tmp_path / "m.onnx")
    x = rng.standard_normal(built.x_shape).astype(np.float32)
    graph = import_onnx(path, maxpool=built.maxpool)
    ours = ann.predict(graph, _preprocessed(graph, x))
    if built.reference is not None:
        ref = ob.run_ort(built.reference, x)
    elif built.logits is None:
        ref = ob.run_ort(built.model, x)
    else:
        ref = ob.run_ort(ob.with_output(built.model, built.logits), x)
        full = ob.run_ort(built.model, x)
        np.testing.assert_array_equal(ours.argmax(axis=1), full.argmax(axis=1))
    ob.assert_close(ours, ref)


def _preprocessed(graph, x):
    """The input as the IR takes it: after the preprocessing (with the model's own input
    normalisation folded into it), if the graph has any."""
    if "snn2hw.preprocess" not in graph.metadata:
        return x
    return data.Preprocess.from_json(graph.metadata["snn2hw.preprocess"]).apply(x)


def test_output_shapes_match_onnxruntime(tmp_path):
    """The IR keeps ReduceMean/GlobalAveragePool ranks: (C, 1, 1) with keepdims, (C,) without."""
    rng = np.random.default_rng(0)
    for name in ("reduce_mean_attr[keep]", "reduce_mean_attr[drop]", "global_avgpool",
                 "squeeze", "flatten[image]"):
        built = CASES[name].build(13 if "attr" not in name else 11, rng)
        path = ob.save(built.model, tmp_path / "m.onnx")
        x = rng.standard_normal(built.x_shape).astype(np.float32)
        graph = import_onnx(path)
        assert (BATCH, *graph.nodes[graph.output].shape) == ob.run_ort(built.model, x).shape


def test_bn_folded_into_conv(tmp_path):
    """BatchNormalization right after a conv adds no node of its own."""
    built = CASES["bn_after_conv[bias]"].build(13, np.random.default_rng(1))
    graph = import_onnx(ob.save(built.model, tmp_path / "m.onnx"))
    assert [type(n) for n in graph.nodes.values()] == [ir.Input, ir.Conv, ir.ReLU]


def test_bn_on_input_is_depthwise_conv(tmp_path):
    built = CASES["bn_on_input[image]"].build(13, np.random.default_rng(1))
    graph = import_onnx(ob.save(built.model, tmp_path / "m.onnx"))
    conv = graph.nodes[graph.output]
    assert isinstance(conv, ir.Conv) and conv.groups == 3 and conv.weight.shape == (3, 1, 1, 1)


def test_removed_ops_leave_no_nodes(tmp_path):
    built = CASES["dropout_identity"].build(13, np.random.default_rng(1))
    graph = import_onnx(ob.save(built.model, tmp_path / "m.onnx"))
    assert [type(n) for n in graph.nodes.values()] == [ir.Input, ir.Conv, ir.ReLU]


def test_shape_chain_becomes_flatten(tmp_path):
    built = CASES["reshape_shape_chain"].build(13, np.random.default_rng(1))
    graph = import_onnx(ob.save(built.model, tmp_path / "m.onnx"))
    assert [type(n) for n in graph.nodes.values()] == [ir.Input, ir.ReLU, ir.Flatten, ir.Dense]


def test_every_registered_converter_is_exercised():
    """A new converter in the registry must get a per-op case here."""
    used: set[int] = set()
    rng = np.random.default_rng(0)
    for c in CASES.values():
        for opset in c.opsets:
            model = c.build(opset, rng).model
            for node in model.graph.node:
                conv = onnx_ops.lookup(node.op_type, opset, node.domain)
                if conv is not None:
                    used.add(id(conv))
    missing = sorted(f"{c.domain or 'ai.onnx'}::{c.op_type} (since {c.since})"
                     for c in onnx_ops.registered() if id(c) not in used)
    assert not missing, f"converters without a per-op test case: {missing}"
