"""Reductions and a few elementwise edges of the Tensor front against PyTorch 2.13: amax / amin
(dims, keepdim, ties share the gradient evenly, errors), logsumexp and prod's refused dims,
rsqrt's derivative at +-0.0 and inf (same_as_torch compares values, dtypes, requires_grad and
exceptions with their messages)."""
from __future__ import annotations

import numpy as np
import pytest

from peers import require, same_as_torch

torch = require("torch")

X = np.array([[1.0, 3.0, 3.0, -2.0], [2.0, 2.0, 0.0, 2.0], [-1.0, -1.0, -1.0, -1.0]])


@pytest.mark.parametrize("fn", ["amax", "amin"])
@pytest.mark.parametrize("dim", [(), None, 0, 1, -1, (0, 1), (1, 0), (-1, 0), [1]])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_amax_amin_values_and_gradients_match_torch(fn, dim, keepdim, dtype):
    def scenario(T):
        x = T.tensor(X, dtype=getattr(T, dtype), requires_grad=True)
        y = getattr(x, fn)(dim, keepdim) if dim is not None else getattr(x, fn)(dim=None)
        f = getattr(T, fn)(x, () if dim is None else dim, keepdim)
        w = T.tensor(np.arange(1.0, 1.0 + y.numel()).reshape(tuple(y.shape)),
                     dtype=getattr(T, dtype))
        (y * w).sum().backward()
        return y, f, type(y.grad_fn).__name__, x.grad
    same_as_torch(scenario, rtol=1e-6)


def test_amax_gradient_matches_finite_differences():
    # no ties: the gradient is the indicator of the maximum, by central differences
    x0 = np.array([[0.3, -1.2, 2.5], [1.1, 0.7, -0.4]])
    import adjit
    x = adjit.tensor(x0, requires_grad=True)
    x.amax(1).sum().backward()
    fd = np.zeros_like(x0)
    for i in np.ndindex(x0.shape):
        e = np.zeros_like(x0)
        e[i] = 1e-6
        fd[i] = ((x0 + e).max(1).sum() - (x0 - e).max(1).sum()) / 2e-6
    np.testing.assert_allclose(x.grad.numpy(), fd, atol=1e-8)


@pytest.mark.parametrize("case", ["repeat", "repeat_neg", "float_dim", "bool_dim", "bad_dim",
                                  "empty_dim", "empty_all", "empty_other", "bool", "int",
                                  "scalar", "scalar_dim", "scalar_bad", "fn_float_dim",
                                  "kw_float_dim", "keepdim_int", "fn_not_tensor"])
@pytest.mark.parametrize("fn", ["amax", "amin"])
def test_amax_amin_edges_match_torch(case, fn):
    def scenario(T):
        x = T.tensor(X)
        call = {
            "repeat": lambda: getattr(x, fn)((0, 0)),
            "repeat_neg": lambda: getattr(x, fn)((1, -1)),
            "float_dim": lambda: getattr(x, fn)(1.0),
            "bool_dim": lambda: getattr(x, fn)((True,)),
            "bad_dim": lambda: getattr(x, fn)(2),
            "empty_dim": lambda: getattr(T.zeros(0, 2), fn)(0),
            "empty_all": lambda: getattr(T.zeros(0, 2), fn)(),
            "empty_other": lambda: getattr(T.zeros(0, 2), fn)(1),
            "bool": lambda: getattr(T.tensor([True, False]), fn)(),
            "int": lambda: getattr(T.tensor([[4, -7], [2, 9]]), fn)(0),
            "scalar": lambda: getattr(T.tensor(2.5, requires_grad=True), fn)(),
            "scalar_dim": lambda: getattr(T.tensor(2.5), fn)(-1, True),
            "scalar_bad": lambda: getattr(T.tensor(2.5), fn)(1),
            "fn_float_dim": lambda: getattr(T, fn)(x, 1.0),
            "kw_float_dim": lambda: getattr(x, fn)(dim=1.0),
            "keepdim_int": lambda: getattr(x, fn)(0, 1),
            "fn_not_tensor": lambda: getattr(T, fn)([1.0]),
        }[case]
        r = call()
        return r, str(r.dtype).split(".")[-1]
    got = same_as_torch(scenario)
    if case in ("repeat", "repeat_neg", "bad_dim", "empty_dim", "empty_all"):
        assert isinstance(got[0], str) and got[0].endswith("Error"), got  # an error, as torch


@pytest.mark.parametrize("dims", [(0, 0), (1, -1), [0, 0], (0, -2)])
def test_logsumexp_refuses_a_repeated_dim_as_torch(dims):
    got = same_as_torch(lambda T: T.tensor(X).logsumexp(dims))
    assert got[0] == "RuntimeError"
    got = same_as_torch(lambda T: T.logsumexp(T.tensor(X), dims, keepdim=True))
    assert got[0] == "RuntimeError"
    got = same_as_torch(lambda T: T.tensor(1.5).logsumexp((0, -1)))
    assert got[0] == "RuntimeError"


LSE = {"2d": X, "1d": X[0], "3d": X.reshape(3, 2, 2), "0d": np.array(1.5),
       "empty": np.zeros((0, 3)), "infs": np.array([[np.inf, 1.0], [-np.inf, 2.0]])}


@pytest.mark.parametrize("dim", [(), []])
@pytest.mark.parametrize("case", sorted(LSE))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("form", ["method", "function", "special"])
def test_logsumexp_over_no_dims_reduces_every_dim_as_torch(dim, case, dtype, form):
    # dim=() and dim=[] reduce every dimension (PyTorch: logsumexp(x, (), keepdim=True), and
    # keepdim=False on an empty tensor); values, dtype, grad_fn name and gradient as torch's
    import adjit.special  # (adjit.special: torch.special)

    def call(T, x, keepdim):
        if form == "method":
            return x.logsumexp(dim, keepdim=keepdim)
        fn = T.special.logsumexp if form == "special" else T.logsumexp
        return fn(x, dim, keepdim)

    def scenario(T, keepdim=True):
        x = T.tensor(LSE[case], dtype=getattr(T, dtype), requires_grad=True)
        y = call(T, x, keepdim)
        if x.numel():
            (y * 3.0).sum().backward()
        return y, type(y.grad_fn).__name__, x.grad, str(y.dtype).split(".")[-1]
    same_as_torch(scenario, rtol=1e-6)
    if case in ("empty", "0d"):  # torch gives keepdim=False too
        same_as_torch(lambda T: scenario(T, keepdim=False), rtol=1e-6)
    else:
        # PyTorch 2.13 raises there (its out-shape check); adjit gives torch's keepdim=True
        # reduction as a 0-d tensor, with the same gradient
        import adjit
        got = scenario(adjit, keepdim=False)
        want = scenario(torch)
        assert tuple(got[0].shape) == ()
        np.testing.assert_allclose(got[0].detach().numpy(), want[0].detach().numpy()[(0,) *
                                   want[0].ndim], rtol=1e-6)
        np.testing.assert_allclose(got[2].numpy(), want[2].numpy(), rtol=1e-6)


def test_logsumexp_over_no_dims_gradient_matches_finite_differences():
    from peers import central_diff

    import adjit
    x = adjit.tensor(X, requires_grad=True)
    adjit.logsumexp(x, ()).backward()
    want = central_diff(lambda a: np.log(np.exp(a).sum()), X)
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("dim", [None, True, 1.0, (0, 1.0), "a"])
def test_logsumexp_refuses_a_dim_that_is_no_int_or_tuple_of_ints_as_torch(dim):
    got = same_as_torch(lambda T: T.logsumexp(T.tensor(X), dim))
    assert got[0] == "TypeError"


@pytest.mark.parametrize("dim", [(0, 1), [0], (0,), 1.0, True])
def test_prod_refuses_a_tuple_of_dims_as_torch(dim):
    got = same_as_torch(lambda T: T.tensor(X).prod(dim))
    assert got[0] == "TypeError"
    got = same_as_torch(lambda T: T.prod(T.tensor(X), dim))
    assert got[0] == "TypeError"
    same_as_torch(lambda T: (T.tensor(X).prod(1), T.prod(T.tensor(X), -1, True)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_rsqrt_value_and_derivative_at_the_edges_match_torch(dtype):
    def scenario(T):
        x = T.tensor([0.0, -0.0, np.inf, -1.0, 4.0, 1e-30, np.nan], dtype=getattr(T, dtype),
                     requires_grad=True)
        y = x.rsqrt()
        y.backward(T.ones_like(y))
        g = x.grad.numpy()
        return y, x.grad, tuple(np.signbit(g).tolist()), T.rsqrt(x.detach())
    same_as_torch(scenario, rtol=1e-6)


@pytest.mark.parametrize("shape,dim", [((3, 0), 1), ((3, 0), -1), ((3, 0), 0), ((0,), 0),
                                       ((3, 0), (0, 1)), ((2, 0, 3), 1)])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("form", ["method", "function", "special"])
def test_logsumexp_over_an_empty_dim_matches_torch(shape, dim, keepdim, form):
    # an empty sum: -inf (log 0), the gradient the input's (empty) zeros, as torch
    import adjit.special  # noqa: F401  (adjit.special: torch.special)

    def scenario(T):
        x = T.zeros(*shape, dtype=T.float64, requires_grad=True)
        fn = {"method": lambda: x.logsumexp(dim, keepdim),
              "function": lambda: T.logsumexp(x, dim, keepdim),
              "special": lambda: T.special.logsumexp(x, dim, keepdim)}[form]
        y = fn()
        y.sum().backward()
        return y, type(y.grad_fn).__name__, x.grad, tuple(x.grad.shape)
    same_as_torch(scenario)


CLAMP_CASES = {
    "int_float_min": lambda T: T.tensor([1, 2, 3]).clamp(min=1.5),
    "int_int_min": lambda T: T.tensor([1, 2, 3]).clamp(min=2),
    "int_both": lambda T: T.tensor([1, 2, 3]).clamp(1.5, 2.5),
    "int_0d_tensor_max": lambda T: T.tensor([1, 2, 3]).clamp(max=T.tensor(2.5)),
    "bool_float": lambda T: T.clamp(T.tensor([True, False]), min=0.5),
    "f32_f64_tensor": lambda T: T.tensor([1.0, 2.0, 3.0]).clamp(
        min=T.tensor([1.5, 1.5, 1.5], dtype=T.float64)),
    "int_float_tensor": lambda T: T.tensor([1, 2]).clamp(min=T.tensor([1.5, 0.5])),
    "broadcast_bound": lambda T: T.tensor([1.0, 5.0]).clamp(min=T.tensor([[0.0, 2.0],
                                                                          [3.0, 6.0]])),
}


@pytest.mark.parametrize("case", sorted(CLAMP_CASES))
def test_clamp_promotes_and_broadcasts_as_torch(case):
    # the bounds were converted to the input's dtype and broadcast to its shape: an int tensor
    # clamped at 1.5 stayed int64 (values 1, 2, 3), a tensor bound of a bigger shape failed
    same_as_torch(lambda T: (CLAMP_CASES[case](T), str(CLAMP_CASES[case](T).dtype).split(".")[-1]))


def test_clamp_broadcast_bound_gradients_match_torch():
    def scenario(T):
        x = T.tensor([1.0, 5.0, -2.0], dtype=T.float64, requires_grad=True)
        lo = T.tensor([[0.0, 2.0, -3.0], [3.0, 6.0, -1.0]], dtype=T.float64, requires_grad=True)
        y = x.clamp(min=lo, max=T.tensor(4.0, dtype=T.float64))
        (y * T.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=T.float64)).sum().backward()
        return y, x.grad, lo.grad, type(y.grad_fn).__name__
    same_as_torch(scenario)
