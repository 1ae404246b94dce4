"""Tensor front parity with PyTorch 2.13 (checked against the installed torch): gather and
take_along_dim's index checks, expand/reshape/view with sizes whose product overflows, and
the version counter (`_version`) with autograd's checks of tensors modified in place."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
from peers import require, same_as_torch

torch = require("torch")

X23 = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]


# ------------------------------------------------------------------ 1. gather, take_along_dim
GATHER_CASES = {
    "in_range": lambda T: T.gather(T.tensor(X23), 1, T.tensor([[0, 2], [1, 1]])),
    "too_big": lambda T: T.gather(T.tensor(X23), 1, T.tensor([[3]])),
    "negative": lambda T: T.gather(T.tensor(X23), 1, T.tensor([[-1]])),
    "very_negative": lambda T: T.gather(T.tensor(X23), 1, T.tensor([[-4]])),
    "second_row_bad": lambda T: T.gather(T.tensor(X23), 1, T.tensor([[1], [5]])),
    "dim0_bad": lambda T: T.gather(T.tensor(X23), 0, T.tensor([[0, 2, 1]])),
    "method_negative_dim": lambda T: T.tensor(X23).gather(-1, T.tensor([[2], [-2]])),
    "int32_index": lambda T: T.gather(T.tensor(X23), 1, T.tensor([[1]], dtype=T.int32)),
    "float_index": lambda T: T.gather(T.tensor(X23), 1, T.tensor([[1.0]])),
    "bool_index": lambda T: T.gather(T.tensor(X23), 1, T.tensor([[True]])),
    "dim_out_of_range": lambda T: T.gather(T.tensor(X23), 5, T.tensor([[1.0]])),
    "ndim_mismatch": lambda T: T.gather(T.tensor(X23), 1, T.tensor([1])),
    "size_mismatch": lambda T: T.gather(T.tensor(X23), 1, T.tensor([[1]] * 3)),
    "longer_along_dim": lambda T: T.gather(T.tensor(X23), 1, T.zeros(2, 5, dtype=T.int64)),
    "empty_index": lambda T: T.gather(T.tensor(X23), 1, T.zeros(3, 0, dtype=T.int64)),
    "scalar": lambda T: T.gather(T.tensor(5.0), 0, T.tensor(0)),
    "scalar_1d_index": lambda T: T.gather(T.tensor(5.0), -1, T.tensor([0, 0])),
    "scalar_bad": lambda T: T.gather(T.tensor(5.0), 0, T.tensor(1)),
    "scalar_negative": lambda T: T.gather(T.tensor(5.0), 0, T.tensor(-1)),
    "scalar_2d_index": lambda T: T.gather(T.tensor(5.0), 0, T.tensor([[0]])),
}


@pytest.mark.parametrize("case", sorted(GATHER_CASES))
def test_gather_as_torch(case):
    same_as_torch(GATHER_CASES[case])


TAKE_CASES = {
    "in_range": lambda T: T.take_along_dim(T.tensor(X23), T.tensor([[0], [2]]), 1),
    # PyTorch 2.13 takes the index along `dim` modulo the size
    "wraps_negative": lambda T: T.take_along_dim(T.tensor(X23), T.tensor([[-1], [-4]]), 1),
    "wraps_past_end": lambda T: T.take_along_dim(T.tensor(X23), T.tensor([[3], [100]]), 1),
    "broadcast": lambda T: T.take_along_dim(T.tensor(X23), T.tensor([[0, 2, 1]]), 0),
    "broadcast_bad": lambda T: T.take_along_dim(T.tensor(X23), T.tensor([[1]] * 3), 1),
    "empty_dim": lambda T: T.take_along_dim(T.zeros(2, 0), T.tensor([[0]]), 1),
    "empty_both": lambda T: T.take_along_dim(T.zeros(2, 0), T.zeros(2, 0, dtype=T.int64), 1),
    "int32_index": lambda T: T.take_along_dim(T.tensor(X23), T.tensor([[1]], dtype=T.int32), 1),
    "float_index": lambda T: T.take_along_dim(T.tensor(X23), T.tensor([[1.0]]), 1),
    "ndim_mismatch": lambda T: T.take_along_dim(T.tensor(X23), T.tensor([[[1]]]), 2),
    "dim_out_of_range": lambda T: T.take_along_dim(T.tensor(X23), T.tensor([[1]]), 5),
    "scalar_dim": lambda T: T.take_along_dim(T.tensor(5.0), T.tensor(0), 0),
    # without dim: a gather of the flat values, negatives refused
    "flat": lambda T: T.take_along_dim(T.tensor(X23), T.tensor([5, 0, 3])),
    "flat_negative": lambda T: T.take_along_dim(T.tensor(X23), T.tensor([[1, -1]])),
    "flat_too_big": lambda T: T.take_along_dim(T.tensor(X23), T.tensor([6])),
    "flat_int32": lambda T: T.take_along_dim(T.tensor(X23), T.tensor([1], dtype=T.int32)),
    "flat_float": lambda T: T.take_along_dim(T.tensor(X23), T.tensor([1.0])),
    "flat_scalar": lambda T: T.take_along_dim(T.tensor(5.0), T.tensor(3)),
}


@pytest.mark.parametrize("case", sorted(TAKE_CASES))
def test_take_along_dim_as_torch(case):
    same_as_torch(TAKE_CASES[case])


def test_gather_and_take_along_dim_gradients_match_torch_and_differences():
    x0 = np.arange(1.0, 13.0).reshape(3, 4) / 7
    w = np.linspace(-1.0, 2.0, 6).reshape(3, 2)
    gi, ti = [[0, 3], [2, 2], [1, 0]], [[-1, 5], [0, 4], [7, -2]]

    def loss(T, x):
        a = T.gather(x, 1, T.tensor(gi)) * T.tensor(w)
        b = T.take_along_dim(x, T.tensor(ti), 1) ** 2
        c = T.take_along_dim(x, T.tensor([11, 0, 0]))
        return (a.sum() + b.sum() + (c * c).sum())

    grads = []
    for T in (adjit, torch):
        x = T.tensor(x0, requires_grad=True)
        loss(T, x).backward()
        grads.append(np.asarray(x.grad.numpy()))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)
    from peers import central_diff
    fd = central_diff(lambda v: float(loss(adjit, adjit.tensor(v)).item()), x0)
    np.testing.assert_allclose(grads[0], fd, rtol=1e-6, atol=1e-8)


def test_gather_under_jit_refuses_a_negative_index_on_replay():
    f = adjit.jit(lambda x, i: x.gather(1, i))
    x = adjit.tensor(X23)
    np.testing.assert_array_equal(f(x, adjit.tensor([[0], [2]])).numpy(), [[1.0], [6.0]])
    np.testing.assert_array_equal(f(x, adjit.tensor([[1], [1]])).numpy(), [[2.0], [5.0]])
    for bad in ([[-1], [1]], [[3], [0]]):  # replayed: the gather refuses it (IndexError)
        with pytest.raises((IndexError, RuntimeError), match="out of"):
            f(x, adjit.tensor(bad))
    g = adjit.jit(lambda x, i: x.take_along_dim(i, 1))
    for idx in ([[0], [2]], [[-1], [5]], [[7], [-8]]):
        np.testing.assert_array_equal(
            g(x, adjit.tensor(idx)).numpy(),
            torch.take_along_dim(torch.tensor(X23), torch.tensor(idx), 1).numpy())


# ------------------------------------------------------------------ 2. sizes that overflow
BIG = 2 ** 62
SIZE_CASES = {
    "expand_overflow": lambda T: T.ones(2, 3).expand(BIG, BIG, 2, 3),
    "expand_one_overflow": lambda T: T.ones(1).expand(BIG, BIG),
    "expand_zero_late": lambda T: T.ones(2, 3).expand(BIG, BIG, 0, 2, 3),
    "expand_negative_new_dim": lambda T: T.ones(2, 3).expand(-2, 2, 3),
    "expand_minus_one_new_dim": lambda T: T.ones(2, 3).expand(-1, 2, 3),
    "expand_minus_one_kept": lambda T: T.ones(2, 3).expand(2, -1),
    "expand_negative_existing": lambda T: T.ones(2, 3).expand(3, -2, 3),
    "expand_mismatch": lambda T: T.ones(2, 3).expand(2, 3, 4),
    "expand_fine": lambda T: T.ones(2, 1).expand(2, 2, -1, 3),
    "reshape_overflow": lambda T: T.ones(2, 3).reshape(BIG, BIG),
    "reshape_overflow_infer": lambda T: T.ones(2, 3).reshape(BIG, BIG, -1),
    "reshape_empty_overflow": lambda T: T.ones(0).reshape(BIG, BIG, 0),
    "reshape_empty_wraps_to_zero": lambda T: T.ones(0).reshape(BIG, BIG, -1),
    "view_empty_wraps_negative": lambda T: T.ones(0).view(-1, BIG, 2),
    "view_empty_wraps_zero": lambda T: T.ones(0).view(-1, BIG, 4),
    "view_overflow": lambda T: T.ones(2, 3).view(BIG, BIG),
    "view_empty_overflow": lambda T: T.ones(0).view(BIG, BIG, 0),
    "view_empty_fits": lambda T: T.ones(0).view(2 ** 20, 2 ** 21, 0).shape,
    "view_empty_u64_overflow": lambda T: T.ones(0).view(2 ** 32, 2 ** 31, 4, 0),
    "reshape_ambiguous": lambda T: T.ones(0).reshape(-1, 0),
    "reshape_zero_known": lambda T: T.ones(2, 3).reshape(-1, 0),
    "reshape_two_inferred": lambda T: T.ones(2, 3).reshape(-1, -1),
    "reshape_negative": lambda T: T.ones(2, 3).reshape(-1, -2),
    "reshape_negative_first": lambda T: T.ones(2, 3).reshape(-2, -1),
    "reshape_fine": lambda T: T.ones(2, 3).reshape(3, -1),
    "empty_storage_overflow": lambda T: T.empty(BIG, 4),
}


@pytest.mark.parametrize("case", sorted(SIZE_CASES))
def test_sizes_as_torch(case):
    same_as_torch(SIZE_CASES[case])


LONG_CASES = {  # a size outside int64: PyTorch's TypeError (its message carries a C++ trace)
    "expand": lambda T: T.ones(2, 3).expand(2, 2 ** 64, 3),
    "expand_tuple": lambda T: T.ones(2, 3).expand((2 ** 63, 2, 3)),
    "reshape": lambda T: T.ones(2, 3).reshape((6, 2 ** 64)),
    "reshape_low": lambda T: T.ones(2, 3).reshape(-2 ** 63 - 1),
    "view": lambda T: T.ones(2, 3).view(6, -2 ** 64),
    "zeros": lambda T: T.zeros(2 ** 63),
}


@pytest.mark.parametrize("case", sorted(LONG_CASES))
def test_sizes_outside_int64_as_torch(case):
    seen = []
    for T in (adjit, torch):
        with pytest.raises(TypeError) as info:
            LONG_CASES[case](T)
        seen.append(str(info.value).split("long long")[0])
    assert seen[0] == seen[1] and "Overflow when unpacking" in seen[0]


def test_sizes_that_numpy_cannot_hold_are_a_clear_error():
    # PyTorch makes these empty or expanded views; a NumPy array cannot have such sizes
    for f in (lambda: adjit.ones(0).view(2 ** 32, 2 ** 31, 0),
              lambda: adjit.ones(2, 3).expand(0, BIG, BIG, 2, 3),
              lambda: adjit.ones(1).expand(2 ** 40, 2 ** 21)):  # 2**61 floats
        with pytest.raises(RuntimeError, match="adjit cannot hold a tensor of sizes"):
            f()
    assert tuple(adjit.ones(1).expand(2 ** 30, 2 ** 30).shape) == (2 ** 30, 2 ** 30)
