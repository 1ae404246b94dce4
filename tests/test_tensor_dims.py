"""Every `dim=` method and function of the Tensor front on 0-d tensors (and the dimension
checks around them) against PyTorch: values, dtypes, grad_fn names, gradients, warnings, and
the exact exception type and message where PyTorch raises. Also: no NumPy floating-point
warning leaks from Tensor ops (PyTorch computes nan/inf silently)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import adjit

from peers import require

torch = require("torch")


def _kw(name, x, d, lib, fn):
    """Call method/function `name` with dimension `d` on `x` (as a method, or `lib.name`)."""
    keep = name.startswith("keep_")
    base = name[5:] if keep else name
    extra = {"keepdim": True} if keep else {}
    if base == "norm":
        return x.norm(dim=d, **extra) if not fn else lib.norm(x, dim=d, **extra)
    if base == "transpose_first":
        return x.transpose(d, 0) if not fn else lib.transpose(x, d, 0)
    if base == "transpose_second":
        return x.transpose(0, d) if not fn else lib.transpose(x, 0, d)
    if base == "flatten_start":
        return x.flatten(d) if not fn else lib.flatten(x, d)
    if base == "flatten_end":
        return x.flatten(0, d) if not fn else lib.flatten(x, 0, d)
    if base in ("cat", "stack", "concat"):
        return getattr(lib, base)([x, x], dim=d)
    if base == "var_correction0":
        return x.var(d, correction=0) if not fn else lib.var(x, d, correction=0)
    if base in ("sum_tuple", "mean_tuple"):
        return getattr(x, base[:-6])((d,)) if not fn else getattr(lib, base[:-6])(x, (d,))
    if base == "permute":
        return x.permute(d) if not fn else lib.permute(x, (d,))
    if base == "size":
        return x.size(d)
    return getattr(x, base)(d, **extra) if not fn else getattr(lib, base)(x, d, **extra)


NAMES = ["argmax", "argmin", "cumsum", "log_softmax", "softmax", "max", "min", "mean", "sum",
         "norm", "prod", "std", "var", "var_correction0", "size", "squeeze", "unsqueeze",
         "unbind", "transpose_first", "transpose_second", "flatten_start", "flatten_end",
         "permute", "sum_tuple", "mean_tuple", "keep_sum", "keep_mean", "keep_max",
         "keep_min", "keep_argmax", "keep_prod", "keep_norm", "keep_std", "cat", "stack",
         "concat"]


def _describe(lib, name, d, fn, dtype, shape=()):
    x = lib.tensor(np.full(shape, 1.5).tolist(), dtype=getattr(lib, dtype),
                   requires_grad=dtype == "float64")
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        try:
            out = _kw(name, x, d, lib, fn)
        except Exception as e:  # the exact type and first line of PyTorch's message
            return ("raises", type(e).__name__, str(e).split("\n")[0])
    res = [[(w.category.__name__, str(w.message).split(" (Triggered")[0]) for w in ws]]
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        if isinstance(o, int):
            res.append(o)
            continue
        fn_name = None if o.grad_fn is None else type(o.grad_fn).__name__
        res.append((tuple(o.shape), str(o.dtype).split(".")[-1],
                    np.round(np.asarray(o.detach().numpy()), 10).tolist(), fn_name))
    first = outs[0]
    if not isinstance(first, int) and first.requires_grad:
        first.sum().backward()
        res.append(("grad", np.round(np.asarray(x.grad.numpy()), 10).tolist()))
    return repr(res)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("d", [0, -1, 1, -2])
@pytest.mark.parametrize("fn", [False, True], ids=["method", "function"])
@pytest.mark.parametrize("dtype", ["float64", "int64"])
def test_dim_on_0d_tensor_matches_torch(name, d, fn, dtype):
    if fn and name == "size":
        pytest.skip("size is a method only")
    assert _describe(adjit, name, d, fn, dtype) == _describe(torch, name, d, fn, dtype)


@pytest.mark.parametrize("name", ["cumsum", "softmax", "log_softmax", "max", "prod", "argmax",
                                  "var", "size", "unbind", "transpose_first", "flatten_end",
                                  "unsqueeze", "stack", "cat"])
@pytest.mark.parametrize("d", [0, -1, 1, 2, -3])
def test_dim_range_on_1d_tensor_matches_torch(name, d):
    assert _describe(adjit, name, d, False, "float64", (3,)) == \
        _describe(torch, name, d, False, "float64", (3,))


def test_identity_reduction_has_its_own_storage():
    # sum/prod over a 0-d tensor's only dimension is a new tensor, not the input's storage
    for lib in (adjit, torch):
        for rg in (True, False):
            x = lib.tensor(1.5, requires_grad=rg)
            for y in (x.sum(0), x.prod(), x.max(0).values, x.cumsum(0)):
                with lib.no_grad():
                    y += 1
            assert float(x.detach()) == 1.5, (lib.__name__, rg)


# --------------------------------------------------------------------------- fp warnings
_VALS = [-1.0, 0.0, 1e308, -np.inf, np.nan, 2.0]
_OTHER = [0.0, 0.0, 1e308, np.inf, 1.0, -np.inf]
_UNARY = ["exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "log1p", "expm1", "rsqrt",
          "sigmoid", "relu", "sign", "abs", "neg", "norm", "sum", "mean", "prod", "float",
          "long"]
_BINARY = ["__add__", "__sub__", "__mul__", "__truediv__", "__pow__", "__rpow__",
           "__rtruediv__", "__rsub__", "__lt__", "__eq__", "clamp", "maximum", "minimum"]


def _warnings_of(lib, op, rg):
    """The warnings `op` and its backward emit at nan, inf, 0 and negative inputs (the values
    there are conventions of their own, swept by the non-smooth-point tests)."""
    x = lib.tensor(_VALS, dtype=lib.float64, requires_grad=rg)
    z = lib.tensor(_OTHER, dtype=lib.float64, requires_grad=rg)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        y = op(lib, x, z)
        if rg and y.requires_grad:
            y.sum().backward()
    return [(w.category.__name__, str(w.message)) for w in ws]


def _op(name):
    if name in _UNARY:
        return lambda lib, x, z: getattr(x, name)()
    if name == "clamp":
        return lambda lib, x, z: x.clamp(z, z)
    if name in ("maximum", "minimum"):
        return lambda lib, x, z: getattr(lib, name)(x, z)
    return lambda lib, x, z: getattr(x, name)(z)


@pytest.mark.parametrize("name", _UNARY + _BINARY)
@pytest.mark.parametrize("rg", [True, False])
def test_no_numpy_fp_warnings(name, rg):
    assert _warnings_of(adjit, _op(name), rg) == _warnings_of(torch, _op(name), rg) == []


def test_where_of_log_does_not_warn():
    def f(lib):
        x = lib.tensor([-1.0, 2.0, 0.0], dtype=lib.float64, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = lib.where(x > 0, x.log(), x)
            y.sum().backward()
            with lib.no_grad():
                x /= 0.0
        return y.detach().numpy().tolist(), x.grad.numpy().tolist(), x.detach().numpy().tolist()
    np.testing.assert_equal(f(adjit), f(torch))


# ------------------------------------------------------------------------ maximum / minimum
def _maxmin_case(lib, name, how, dt_b):
    a = lib.tensor([1.0, 2.0, 3.0, -1.0], dtype=lib.float64, requires_grad=True)
    b = lib.tensor([[1.0, 5.0, 0.0, -1.0]] * 2, dtype=getattr(lib, dt_b),
                   requires_grad=dt_b == "float64")
    y = getattr(lib, name)(a, b) if how == "function" else getattr(a, name)(b)
    (y * lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64)).sum().backward()
    return (y.detach().numpy().tolist(), str(y.dtype).split(".")[-1],
            type(y.grad_fn).__name__, a.grad.numpy().tolist(),
            None if b.grad is None else b.grad.numpy().tolist())


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@pytest.mark.parametrize("how", ["function", "method"])
@pytest.mark.parametrize("dt_b", ["float64", "int64", "float32"])
def test_maximum_minimum_match_torch(name, how, dt_b):
    assert _maxmin_case(adjit, name, how, dt_b) == _maxmin_case(torch, name, how, dt_b)


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@pytest.mark.parametrize("call", ["fn_other", "fn_input", "method"])
def test_maximum_minimum_refuse_numbers_as_torch(name, call):
    def run(lib):
        x = lib.tensor([1.0, 2.0])
        f = {"fn_other": lambda: getattr(lib, name)(x, 1.0),
             "fn_input": lambda: getattr(lib, name)(1.0, x),
             "method": lambda: getattr(x, name)(1.0)}[call]
        with pytest.raises(Exception) as e:
            f()
        return type(e.value).__name__, str(e.value)
    assert run(adjit) == run(torch)
