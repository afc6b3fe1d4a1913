"""The chain -> matrix fold (snn2hw/quantize/chain.py) against independent computations:
torch's own conv2d / avg_pool2d / linear probed here with unit vectors, and pooling
matrices written out in numpy."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snn2hw import ir
from snn2hw.quantize import chain, fold_term
from snn2hw.quantize.qnet import IntSynapse
from snn2hw.snn import Term


def probed(fn, in_shape) -> np.ndarray:
    """(out_size, in_size) matrix of a linear torch function: its response to each unit
    vector, one at a time."""
    n = int(np.prod(in_shape))
    cols = []
    with torch.no_grad():
        for i in range(n):
            x = torch.zeros(n, dtype=torch.float64)
            x[i] = 1.0
            cols.append(fn(x.reshape(1, *in_shape)).reshape(-1).numpy())
    return np.stack(cols, axis=1)


GEOMETRIES = [  # in_shape, c_out, kernel, stride, padding (t, l, b, r), dilation, groups
    ((3, 6, 5), 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    ((4, 7, 6), 6, (3, 2), (2, 2), (1, 0, 0, 1), (1, 2), 2),
    ((2, 5, 5), 2, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 2),
    ((3, 8, 8), 5, (2, 3), (3, 1), (0, 2, 1, 0), (2, 1), 1),
]


def torch_conv(weight, stride, padding, dilation, groups):
    top, left, bottom, right = padding
    w = torch.as_tensor(weight)

    def fn(x):
        return F.conv2d(F.pad(x, (left, right, top, bottom)), w, None, stride, 0, dilation,
                        groups)
    return fn


def out_shape_of(fn, in_shape) -> tuple[int, ...]:
    with torch.no_grad():
        return tuple(fn(torch.zeros((1, *in_shape), dtype=torch.float64)).shape[1:])


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_conv_matrix_equals_probed_torch_conv(geometry):
    in_shape, c_out, kernel, stride, padding, dilation, groups = geometry
    rng = np.random.default_rng(sum(in_shape))
    weight = rng.normal(size=(c_out, in_shape[0] // groups, *kernel))
    weight[rng.random(weight.shape) < 0.2] = 0.0          # absent synapses stay absent
    fn = torch_conv(weight, stride, padding, dilation, groups)
    out_shape = out_shape_of(fn, in_shape)
    ours = chain.conv_matrix(weight, in_shape, out_shape, stride, padding, dilation, groups)
    expected = probed(fn, in_shape)
    np.testing.assert_array_equal(ours.toarray(), expected)
    assert ours.nnz == np.count_nonzero(expected) and ours.has_sorted_indices


@pytest.mark.parametrize("pool", [(2, 2), (3, 1)])
def test_pooled_conv_matrix_equals_probed_sum_pool_then_conv(pool):
    in_shape = (2, 6, 6)
    weight = np.random.default_rng(3).integers(-5, 6, size=(3, 2, 2, 2)).astype(np.float64)
    conv = torch_conv(weight, (1, 1), (1, 0, 0, 1), (1, 1), 1)

    def fn(x):
        return conv(F.avg_pool2d(x, pool, pool, divisor_override=1))
    out_shape = out_shape_of(fn, in_shape)
    ours = chain.conv_matrix(weight, in_shape, out_shape, (1, 1), (1, 0, 0, 1), pool=pool,
                             dtype=np.int32)
    assert ours.dtype == np.int32
    np.testing.assert_array_equal(ours.toarray(), probed(fn, in_shape))


def test_int_synapse_matrix_of_a_pooled_conv_is_exact():
    weight = np.random.default_rng(4).integers(-9, 10, size=(4, 3, 3, 3))
    syn = IntSynapse("x", 1, (3, 8, 8), (4, 4, 4), "conv", weight=weight,
                     padding=(1, 1, 1, 1), pool=(2, 2))
    conv = torch_conv(weight.astype(np.float64), (1, 1), (1, 1, 1, 1), (1, 1), 1)
    expected = probed(lambda x: conv(F.avg_pool2d(x, 2, 2, divisor_override=1)), (3, 8, 8))
    np.testing.assert_array_equal(syn.matrix().toarray(), expected)


def test_fold_of_pool_then_conv_is_a_conv_synapse_equal_to_the_chain():
    pool = ir.AvgPool("p", ["x"], (2, 4, 4), kernel=(2, 2), stride=(2, 2))
    w = np.random.default_rng(7).normal(size=(3, 2, 3, 3))
    conv = ir.Conv("c", ["p"], (3, 4, 4), weight=w, padding=(1, 1, 1, 1))
    syn = fold_term(Term("x", [pool, conv], delay=2), (2, 8, 8), (3, 4, 4))
    assert (syn.kind, syn.pool, syn.lag, syn.is_conv) == ("conv", (2, 2), 3, True)
    conv_fn = torch_conv(w, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    expected = probed(lambda x: conv_fn(F.avg_pool2d(x, 2, 2)), (2, 8, 8))
    np.testing.assert_allclose(syn.matrix(np.float64).toarray(), expected, rtol=1e-12,
                               atol=1e-15)


def test_fold_of_pool_flatten_dense_is_the_product_of_explicit_matrices():
    pool = ir.AvgPool("p", ["x"], (2, 2, 2), kernel=(2, 2), stride=(2, 2))
    flat = ir.Flatten("f", ["p"], (8,))
    w = np.random.default_rng(8).normal(size=(5, 8))
    dense = ir.Dense("d", ["f"], (5,), weight=w)
    syn = fold_term(Term("x", [pool, flat, dense]), (2, 4, 4), (5,))
    assert (syn.kind, syn.is_conv) == ("matrix", False)
    pool_mat = np.zeros((8, 32))                  # 2x2 average pooling, written out
    for c in range(2):
        for oy in range(2):
            for ox in range(2):
                for dy in range(2):
                    for dx in range(2):
                        pool_mat[c * 4 + oy * 2 + ox,
                                 c * 16 + (2 * oy + dy) * 4 + 2 * ox + dx] = 0.25
    np.testing.assert_allclose(syn.csr.toarray(), w @ pool_mat, rtol=1e-12, atol=1e-15)


def test_with_values_keeps_structure_and_prune_drops_zeros():
    csr = chain.chain_matrix([ir.Dense("d", ["x"], (2,), weight=np.array([[1.0, 0, 2],
                                                                          [0, 3, 4]]))],
                             (3,), (2,))
    syn = IntSynapse("x", 1, (3,), (2,), "matrix", csr=csr)
    kept = syn.with_values(np.array([1, 0, 5, 6]))
    pruned = syn.with_values(np.array([1, 0, 5, 6]), prune=True)
    np.testing.assert_array_equal(kept.matrix().toarray(), [[1, 0, 0], [0, 5, 6]])
    assert (kept.csr.nnz, pruned.csr.nnz) == (4, 3)
    np.testing.assert_array_equal(syn.values(), [1, 2, 3, 4])
