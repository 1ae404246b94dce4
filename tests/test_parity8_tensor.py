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


# ------------------------------------------------------------------ 3. the version counter
def _versions(T):
    """The version counters along a series of in-place writes (PyTorch's `_version`)."""
    out = []
    a = T.ones(3)
    out.append(a._version)
    a.add_(1)
    out.append(a._version)
    a.mul_(2)
    a.zero_()
    out.append(a._version)
    a.copy_(T.ones(3))
    out.append(a._version)
    a.clamp_(0, 1)
    out.append(a._version)
    a[0] = 5
    out.append(a._version)
    a[1:] += 1  # the view's add_ and the write back: two
    out.append(a._version)
    a += 1
    a -= 1
    a /= 2
    out.append(a._version)
    b = a[1:]  # a view shares its base's counter
    out.append(b._version)
    b.add_(1)
    out.append((a._version, b._version))
    c = a.view(3)
    c.sub_(1)
    out.append((a._version, b._version, c._version))
    d = a.detach()  # so does detach()
    d.add_(1)
    out.append((a._version, d._version))
    out.append((a.clone()._version, (a + 1)._version))
    g = a.data  # .data has a counter of its own
    g.add_(1)
    out.append((a._version, g._version))
    p = T.ones(3, requires_grad=True)
    out.append(p._version)
    (p * 2).sum().backward()  # the first .grad is new
    out.append((p._version, p.grad._version))
    (p * 2).sum().backward()  # accumulating bumps .grad's counter, not the parameter's
    out.append((p._version, p.grad._version))
    with T.no_grad():
        p.add_(1)
    p.grad.zero_()
    out.append((p._version, p.grad._version))
    k = T.ones(3)
    k.requires_grad_()
    out.append(k._version)
    return out


def test_version_counter_as_torch():
    assert _versions(adjit) == _versions(torch)


def test_version_is_read_only():
    for T in (adjit, torch):
        with pytest.raises(AttributeError):
            T.ones(2)._version = 3


COPY_CASES = {
    "broadcast": lambda T: T.zeros(2, 3).copy_(T.tensor([1, 2, 3])),
    "float_into_long": lambda T: T.zeros(3, dtype=T.int64).copy_(T.tensor([1.7, -2.7, 3.0])),
    "bool_into_float": lambda T: T.ones(3).copy_(T.tensor([True, False, True])),
    "float_into_bool": lambda T: T.zeros(3, dtype=T.bool).copy_(T.tensor([0.5, 0.0, 2.0])),
    "scalar": lambda T: T.zeros(2, 3).copy_(T.tensor(5.0)),
    "not_a_tensor": lambda T: T.zeros(2, 3).copy_([1, 2, 3]),
    "mismatch": lambda T: T.zeros(2, 3).copy_(T.ones(2)),
    "bigger": lambda T: T.zeros(2, 3).copy_(T.ones(4, 2, 3)),
    "leaf": lambda T: T.ones(3, requires_grad=True).copy_(T.ones(3)),
    "into_untracked": lambda T: T.zeros(3).copy_(T.ones(3, requires_grad=True) * 2),
}


@pytest.mark.parametrize("case", sorted(COPY_CASES))
def test_copy_as_torch(case):
    same_as_torch(COPY_CASES[case])


def test_copy_gradients_match_torch_and_differences():
    a0, b0 = np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0])

    def loss(T, a, b):
        y = (a * 1).reshape(2, 1).expand(2, 3).clone()
        y.copy_(b.double() * 2)  # float32 src into a float64 tensor
        return (y * y * a.reshape(2, 1)).sum()

    got = []
    for T in (adjit, torch):
        a = T.tensor(a0, requires_grad=True)
        b = T.tensor(b0, dtype=T.float32, requires_grad=True)
        out = loss(T, a, b)
        assert type(out.grad_fn).__name__ == "SumBackward0"
        out.backward()
        assert b.grad.dtype == T.float32
        got.append((a.grad.numpy(), b.grad.numpy()))
    for u, v in zip(*got):
        np.testing.assert_allclose(u, v, rtol=1e-6)
    from peers import central_diff
    fa = central_diff(lambda v: float(loss(adjit, adjit.tensor(v), adjit.tensor(
        b0, dtype=adjit.float32)).item()), a0)
    fb = central_diff(lambda v: float(loss(adjit, adjit.tensor(a0), adjit.tensor(v)).item()), b0)
    np.testing.assert_allclose(got[0][0], fa, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got[0][1], fb, rtol=1e-6)


def _leaf(T):
    return T.tensor([0.5, -1.0, 2.0], requires_grad=True)


def _mod_self_mul(T):
    x = _leaf(T)
    y = x * 1
    y.mul_(y)  # MulBackward0 saves the other operand, the same tensor
    y.sum().backward()
    return x.grad


def _mod_view_self_mul(T):
    x = _leaf(T)
    y = x * 1
    v = y[:2]
    v.mul_(v)
    (y * y).sum().backward()
    return x.grad


def _mod_gather_index(T):
    x = _leaf(T)
    i = T.tensor([0, 2])
    z = (x.gather(0, i) * T.tensor([1.0, 5.0])).sum()
    i.mul_(0)  # GatherBackward0 saves the index
    z.backward()
    return x.grad


def _mod_flat_take_index(T):
    x = _leaf(T)
    i = T.tensor([2, 0])
    z = x.take_along_dim(i).sum()
    i.add_(0)
    z.backward()
    return x.grad


def _mod_take_dim_index(T):  # PyTorch 2.13 saves its own index (the remainder): no error
    x = _leaf(T)
    i = T.tensor([2, 0])
    z = (x.take_along_dim(i, 0) * T.tensor([1.0, 5.0])).sum()
    i.mul_(0)
    z.backward()
    return x.grad


def _mod_index(T):
    x = _leaf(T)
    i = T.tensor([2, 0], dtype=T.int32)
    z = (x[i] * T.tensor([1.0, 5.0])).sum()
    i.mul_(0)  # IndexBackward0 saves the indices
    z.backward()
    return x.grad


def _mod_mask(T):
    x = _leaf(T)
    m = T.tensor([True, False, True])
    z = x[m].sum()
    m.mul_(True)
    z.backward()
    return x.grad


def _mod_tuple_index(T):
    x = _leaf(T)
    i = T.tensor([2, 0])
    z = x.reshape(3, 1)[i, 0].sum()
    i.mul_(1)
    z.backward()
    return x.grad


def _mod_zero_d_index(T):  # a 0-d index is read as a number: nothing saved
    x = _leaf(T)
    i = T.tensor(1)
    z = x[i] * 3
    i.mul_(0)
    z.backward()
    return x.grad


def _mod_saved_then_copy(T):
    x = _leaf(T)
    y = x * 1
    z = (y * y).sum()
    y.copy_(T.zeros(3))
    z.backward()
    return x.grad


def _mod_not_saved(T):
    x = _leaf(T)
    y = x * 2
    z = (y + 1).sum()
    y.add_(1)
    z.backward()
    return x.grad


def _mod_custom_intermediate(T):
    saved = []

    class F(T.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            w = x * 2
            ctx.save_for_backward(w)
            saved.append(w)
            return x * 3

        @staticmethod
        def backward(ctx, g):
            w, = ctx.saved_tensors
            return g * w

    x = _leaf(T)
    y = F.apply(x)
    saved[0].add_(1)  # a saved tensor that is neither input nor output
    y.sum().backward()
    return x.grad


MODIFIED = [_mod_self_mul, _mod_view_self_mul, _mod_gather_index, _mod_flat_take_index,
            _mod_take_dim_index, _mod_index, _mod_mask, _mod_tuple_index, _mod_zero_d_index,
            _mod_saved_then_copy, _mod_not_saved, _mod_custom_intermediate]


@pytest.mark.parametrize("case", MODIFIED, ids=lambda f: f.__name__[5:])
def test_saved_tensor_modified_in_place_as_torch(case):
    """backward refuses a saved tensor written in place since (PyTorch's RuntimeError and its
    words up to the op name, which can differ for views), or gives torch's gradient."""
    seen = []
    for T in (adjit, torch):
        try:
            seen.append(("ok", case(T).numpy().tolist()))
        except RuntimeError as e:
            msg = str(e)
            assert "modified by an inplace operation" in msg, msg
            seen.append(("error", msg.split(", which is")[0].split(" is at version")[0],
                         msg.split(" is at version")[1][:30]))
    assert seen[0] == seen[1]


# ------------------------------------------------------------------ 1b. index_select, scatter_add
X = X23
SCATTER_CASES = {  # index_select, scatter_add (methods and functions), checks in PyTorch's order
 'is': lambda T: T.tensor(X).index_select(1, T.tensor([2, 0, 2])),
 'is_fn': lambda T: T.index_select(T.tensor(X), 0, T.tensor([1])),
 'is0d': lambda T: T.tensor(X).index_select(1, T.tensor(2)),
 'is2d': lambda T: T.tensor(X).index_select(1, T.tensor([[2]])),
 'isf': lambda T: T.tensor(X).index_select(1, T.tensor([2.])),
 'isi32': lambda T: T.tensor(X).index_select(1, T.tensor([2], dtype=T.int32)),
 'isneg': lambda T: T.tensor(X).index_select(1, T.tensor([-1])),
 'isbig': lambda T: T.tensor(X).index_select(1, T.tensor([0, 3])),
 'isdim': lambda T: T.tensor(X).index_select(2, T.tensor([0])),
 'isdim_f': lambda T: T.tensor(X).index_select(5, T.tensor([2.])),
 'isscalar': lambda T: T.tensor(5.).index_select(0, T.tensor([0, 0])),
 'isscalar0': lambda T: T.tensor(5.).index_select(0, T.tensor(0)),
 'isscalar1': lambda T: T.tensor(5.).index_select(-1, T.tensor([0])),
 'isscalarbad': lambda T: T.tensor(5.).index_select(0, T.tensor([1])),
 'isempty': lambda T: T.tensor(X).index_select(0, T.tensor([], dtype=T.int64)),
 'is_list': lambda T: T.tensor(X).index_select(0, [0]),
 'isbool': lambda T: T.tensor(X).index_select(0, T.tensor([True])),
 'sa': lambda T: T.zeros(2, 3).scatter_add(1, T.tensor([[0, 2], [1, 1]]), T.arange(1., 5.).reshape(2, 2)),
 'sa_fn': lambda T: T.scatter_add(T.zeros(2, 3), 0, T.tensor([[0, 1, 1]]), T.ones(1, 3)),
 'sa_bigsrc': lambda T: T.zeros(2, 3).scatter_add(1, T.tensor([[0, 2], [1, 1]]), T.ones(3, 4)),
 'sa_smallsrc': lambda T: T.zeros(2, 3).scatter_add(1, T.tensor([[0, 2], [1, 1]]), T.ones(2, 1)),
 'sa_bigidx': lambda T: T.zeros(2, 3).scatter_add(1, T.zeros(3, 1, dtype=T.int64), T.ones(3, 1)),
 'sa_oob': lambda T: T.zeros(2, 3).scatter_add(1, T.tensor([[3]]), T.ones(1, 1)),
 'sa_neg': lambda T: T.zeros(2, 3).scatter_add(1, T.tensor([[-1]]), T.ones(1, 1)),
 'sa_i32': lambda T: T.zeros(2, 3).scatter_add(1, T.tensor([[1]], dtype=T.int32), T.ones(1, 1)),
 'sa_dtype': lambda T: T.zeros(2, 3).scatter_add(1, T.tensor([[1]]), T.ones(1, 1, dtype=T.float64)),
 'sa_num': lambda T: T.zeros(2, 3).scatter_add(1, T.tensor([[1]]), 2.0),
 'sa_ndim': lambda T: T.zeros(2, 3).scatter_add(1, T.tensor([1]), T.ones(1)),
 'sa_src_ndim': lambda T: T.zeros(2, 3).scatter_add(1, T.tensor([[1]]), T.ones(1)),
 'sa_empty': lambda T: T.zeros(2, 3).scatter_add(1, T.zeros(0, dtype=T.int64), T.ones(1)),
 'sa_dim': lambda T: T.zeros(2, 3).scatter_add(2, T.tensor([[1]]), T.ones(1, 1)),
 'sa_0d': lambda T: T.tensor(1.).scatter_add(0, T.tensor(0), T.tensor(2.)),
 'sa_0d_1d': lambda T: T.tensor(1.).scatter_add(0, T.tensor([0, 0]), T.tensor([2., 3.])),
 'sa_int': lambda T: T.zeros(3, dtype=T.int64).scatter_add(0, T.tensor([0, 0]), T.tensor([2, 3])),
 'sa_bool': lambda T: T.zeros(3, dtype=T.bool).scatter_add(0, T.tensor([1, 1]), T.tensor([True, True])),
 'sa_float_idx': lambda T: T.zeros(2, 3).scatter_add(1, T.tensor([[1.]]), T.ones(1, 1)),
 'sa_float_idx_dim': lambda T: T.zeros(2, 3).scatter_add(5, T.tensor([[1.]]), T.ones(1, 1)),
 'sa_src_f64_ndim': lambda T: T.zeros(2, 3).scatter_add(1, T.tensor([1]), T.ones(1, 1, dtype=T.float64)),
 'sa_oob_shape': lambda T: T.zeros(2, 3).scatter_add(1, T.tensor([[5]] * 3), T.ones(3, 1)),
 'sa_idx_list': lambda T: T.zeros(2, 3).scatter_add(1, [[1]], T.ones(1, 1)),
 'sa_src_0d': lambda T: T.zeros(2, 3).scatter_add(1, T.tensor([[1]]), T.tensor(2.)),
 'sa_idx_0d': lambda T: T.zeros(2, 3).scatter_add(1, T.tensor(1), T.ones(1, 1)),
 'sa_': lambda T: T.zeros(2, 3).scatter_add_(1, T.tensor([[0, 2], [1, 1]]), T.ones(2, 2)),
 'sa_leaf': lambda T: T.zeros(2, 3, requires_grad=True).scatter_add_(1, T.tensor([[0]]), T.ones(1, 1)),
 'sa_grad_flag': lambda T: T.zeros(2, 3).scatter_add(1, T.tensor([[0]]), T.ones(1, 1, requires_grad=True)),
}


@pytest.mark.parametrize("case", sorted(SCATTER_CASES))
def test_index_select_and_scatter_add_as_torch(case):
    same_as_torch(SCATTER_CASES[case])


def test_index_select_and_scatter_add_gradients_match_torch_and_differences():
    x0 = np.arange(1.0, 7.0).reshape(2, 3) / 3
    s0 = np.linspace(-1.0, 1.0, 4).reshape(2, 2)
    w = np.linspace(0.5, 2.0, 6).reshape(2, 3)

    def loss(T, x, s):
        a = x.index_select(1, T.tensor([2, 0, 2])) * T.tensor(w)
        b = T.scatter_add(x * 2, 1, T.tensor([[0, 2], [1, 1]]), s * s)
        return (a * a).sum() + (b * T.tensor(w)).sum()

    got = []
    for T in (adjit, torch):
        x, s = T.tensor(x0, requires_grad=True), T.tensor(s0, requires_grad=True)
        loss(T, x, s).backward()
        got.append((x.grad.numpy(), s.grad.numpy()))
    for u, v in zip(*got):
        np.testing.assert_allclose(u, v, rtol=1e-12)
    from peers import central_diff
    fx = central_diff(lambda v: float(loss(adjit, adjit.tensor(v), adjit.tensor(s0)).item()), x0)
    fs = central_diff(lambda v: float(loss(adjit, adjit.tensor(x0), adjit.tensor(v)).item()), s0)
    np.testing.assert_allclose(got[0][0], fx, rtol=1e-7)
    np.testing.assert_allclose(got[0][1], fs, rtol=1e-7, atol=1e-9)


def test_index_select_and_scatter_add_under_jit():
    f = adjit.jit(lambda x, i: x.index_select(1, i))
    g = adjit.jit(lambda x, i, s: x.scatter_add(1, i, s))
    x = adjit.tensor(X23)
    for idx in ([2, 0], [1, 1]):
        np.testing.assert_array_equal(
            f(x, adjit.tensor(idx)).numpy(),
            torch.tensor(X23).index_select(1, torch.tensor(idx)).numpy())
        i2 = [[idx[0]], [idx[1]]]
        np.testing.assert_array_equal(
            g(x, adjit.tensor(i2), adjit.ones(2, 1)).numpy(),
            torch.tensor(X23).scatter_add(1, torch.tensor(i2), torch.ones(2, 1)).numpy())
    for bad in ([-1, 0], [3, 0]):  # replayed: refused by the gather/scatter_add (IndexError)
        with pytest.raises((IndexError, RuntimeError), match="out of"):
            f(x, adjit.tensor(bad))
        with pytest.raises((IndexError, RuntimeError), match="out of"):
            g(x, adjit.tensor([[bad[0]], [bad[1]]]), adjit.ones(2, 1))


def _mod_index_select_index(T):
    x = _leaf(T)
    i = T.tensor([2, 0])
    z = (x.index_select(0, i) * T.tensor([1.0, 5.0])).sum()
    i.mul_(1)
    z.backward()
    return x.grad


def _mod_scatter_add_index(T):
    x = _leaf(T)
    i = T.tensor([2, 0])
    z = (T.zeros(3).scatter_add(0, i, x[:2]) * T.tensor([1.0, 2.0, 3.0])).sum()
    i.mul_(1)
    z.backward()
    return x.grad


@pytest.mark.parametrize("case", [_mod_index_select_index, _mod_scatter_add_index],
                         ids=lambda f: f.__name__[5:])
def test_saved_index_modified_in_place_as_torch(case):
    test_saved_tensor_modified_in_place_as_torch(case)
