"""adjit.Tensor against real torch: values, gradients, grad_fn graphs, flags and reprs.

Each case is a function of the module it runs under (`torch` or `adjit`); it builds tensors,
maybe calls backward, and returns what should agree. `describe` turns the result into plain
data (tensor reprs with `torch.` normalised to `adjit.`, grad_fn trees, flags, values), so a
case's two runs are compared as data. The helpers are imported by the other test_tensor_* files.
"""
from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

import adjit
from adjit.cli.notebook import normalize

from peers import require

torch = require("torch")


# ----------------------------------------------------------------------------------- helpers
def fn_tree(fn, depth=6):
    """grad_fn as (name, next...) with None entries kept; AccumulateGrad as its name."""
    if fn is None:
        return None
    name = type(fn).__name__
    if depth == 0 or not fn.next_functions:
        return name
    return (name,) + tuple(fn_tree(f, depth - 1) for f, _ in fn.next_functions)


def _is_tensor(v):
    return isinstance(v, (torch.Tensor, adjit.Tensor))


def describe(v):
    """Plain data for comparing a result of torch with one of adjit."""
    if _is_tensor(v):
        return {"repr": normalize(repr(v)), "dtype": normalize(str(v.dtype)),
                "shape": list(v.shape), "requires_grad": v.requires_grad, "is_leaf": v.is_leaf,
                "grad_fn": fn_tree(v.grad_fn), "values": v.detach().tolist()}
    if type(v).__module__.startswith(("torch.return_types", "adjit")) and hasattr(v, "values") \
            and hasattr(v, "indices"):
        return {"repr": normalize(repr(v)), "values": describe(v.values),
                "indices": describe(v.indices)}
    if isinstance(v, dict):
        return {k: describe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [describe(x) for x in v]
    if isinstance(v, np.ndarray):
        return {"ndarray": repr(v), "dtype": str(v.dtype)}
    if isinstance(v, (torch.dtype, adjit.dtype)) or type(v).__name__ == "Size":
        return normalize(repr(v))
    if isinstance(v, str):
        return normalize(v)
    if v is None or isinstance(v, (bool, int, float)):
        return v
    return f"<{type(v).__name__}>"


def mismatch(a, b, path="result"):
    """First difference between two described results (floats compared approximately)."""
    if isinstance(a, float) and isinstance(b, float) and type(a) is type(b):
        ok = (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)
        return None if ok else f"{path}: {a!r} != {b!r}"
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            m = mismatch(a[k], b[k], f"{path}[{k!r}]")
            if m:
                return m
        return None
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return f"{path}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            m = mismatch(x, y, f"{path}[{i}]")
            if m:
                return m
        return None
    if isinstance(a, str) and a != b and _same_repr_up_to_last_digit(a, b):
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"


_NUM = re.compile(r"-?\d+\.\d*(?:e[+-]\d+)?")


def _same_repr_up_to_last_digit(a, b):
    """Printed tensors whose layout is identical and whose numbers differ by at most one unit
    in the last printed digit: native math is allowed a few ulp, which can flip a rounding."""
    if _NUM.sub("#", a) != _NUM.sub("#", b):
        return False
    for x, y in zip(_NUM.findall(a), _NUM.findall(b)):
        digits = len(x.split(".")[1].split("e")[0]) if "." in x else 0
        scale = 10 ** int(x.split("e")[1]) if "e" in x else 1
        if abs(float(x) - float(y)) > 1.01 * 10 ** -digits * scale:
            return False
    return True


def err(fn):
    """`ExceptionType: message` of what fn raises (normalised), or 'no error'."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the type is part of what is compared
        return normalize(f"{type(exc).__name__}: {exc}")
    return "no error"


def run(case, mod):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = describe(case(mod))
    return {"out": out, "warnings": [normalize(str(w.message)).split(" (Triggered")[0]
                                     for w in caught if w.category is UserWarning]}


def check(case):
    expected, got = run(case, torch), run(case, adjit)
    diff = mismatch(expected, got)
    assert diff is None, f"{case.__name__}: torch vs adjit\n{diff}"


CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def leaf(t, data, dtype=None):
    return t.tensor(data, requires_grad=True, dtype=dtype)


# ------------------------------------------------------------------------ arithmetic and grads
@case
def chain_mean_backward(t):
    x = leaf(t, [1., 2., 3.])
    y = (x * 2 + 3) ** 2
    z = y.mean()
    z.backward()
    return [y, z, x.grad, x]


@case
def scalar_operand_grad_fns(t):
    x, y = leaf(t, [1., 2., 3.]), leaf(t, [4., 5., 6.])
    b = t.tensor([1., 1., 2.])
    return [x * 2, 2 * x, x + 3, 3 + x, x ** 2, 10 - x, x - y, x - 3, x / 2, 2 / x, -x, x * y,
            x * b, b * x, x + b, x / y, x - b, b - x, b / x]


@case
def pow_variants(t):
    x, y = leaf(t, [1., 2., 3.]), leaf(t, [2., 0.5, 1.])
    outs = [x ** y, 2 ** x, x.pow(3), x ** 0.5, x ** -1, t.pow(x, 2)]
    sum(o.sum() for o in outs).backward()
    return outs + [x.grad, y.grad]


@case
def grads_of_binary_ops(t):
    x, y = leaf(t, [1., -2., 3.]), leaf(t, [4., 5., -6.])
    outs = [x + y, x - y, x * y, x / y, 3 - x, 2 / y, -y, abs(x)]
    for o in outs:
        o.sum().backward()
    return [x.grad, y.grad]


@case
def promotion(t):
    i = t.tensor([1, 2, 3])
    f = t.tensor([1., 2., 3.])
    d = t.tensor([1., 2.], dtype=t.float64)
    return [i * 1.5, i * 2, i + True, i / 2, i / i, i // 2 if hasattr(i, "__floordiv__") else 0,
            f + t.tensor(1., dtype=t.float64), d + t.tensor([1., 2.]),
            t.tensor(1., dtype=t.float64) + t.tensor(1.), i + t.tensor(1.5, dtype=t.float64),
            i + t.tensor(2.5), t.tensor([1, 2], dtype=t.int32) + t.tensor(3),
            t.tensor([1, 2], dtype=t.int32) + 3.5, t.tensor([True, False]) + t.tensor([True, True]),
            t.tensor([True, False]) + 1, t.tensor([True]) * 2.5, i ** 2, i ** 0.5, 2 ** i,
            f ** i, f * t.tensor(2, dtype=t.int32), (i * 1.5).dtype, (d * 2).dtype]


@case
def promotion_grads(t):
    x = leaf(t, [1., 2.])
    d = leaf(t, 3., dtype=t.float64)
    y = x * d                       # f32 1-d with f64 0-d stays f32
    w = leaf(t, [1., 2.], dtype=t.float64)
    z = w * x                       # f64 1-d with f32 1-d is f64
    (y.sum() + z.sum()).backward()
    return [y, z, x.grad, d.grad, w.grad]


@case
def broadcasting(t):
    a, b = leaf(t, [[1.], [2.], [3.]]), leaf(t, [[1., 10., 100., 1000.]])
    c = leaf(t, [1., 2., 3.])
    m = leaf(t, [[1., 2., 3.], [4., 5., 6.]])
    outs = [a + b, a * b, m * c, m - c, c / m, m + 1]
    sum((o * o).sum() for o in outs).backward()
    return outs + [a.grad, b.grad, c.grad, m.grad]


@case
def matmul_shapes(t):
    x, W = leaf(t, [1., 2., 3.]), leaf(t, [[1., 2.], [3., 4.], [5., 6.]])
    M = leaf(t, [[1., 0., 2.], [0., 1., 1.]])
    outs = [x @ W, M @ x, M @ W, x @ x, M.mm(W), x.dot(x), t.matmul(M, W), W.T @ M.T,
            M.matmul(x)]
    sum(o.sum() for o in outs).backward()
    return outs + [x.grad, W.grad, M.grad]


@case
def matmul_batched(t):
    A = leaf(t, np.arange(12.).reshape(2, 2, 3).tolist())
    B = leaf(t, np.arange(24.).reshape(2, 3, 4).tolist())
    W = leaf(t, np.arange(12.).reshape(3, 4).tolist())
    x = leaf(t, [1., -1., 2.])
    outs = [A @ B, A @ W, A @ x]
    sum((o * o).sum() for o in outs).backward()
    return outs + [A.grad, B.grad, W.grad, x.grad]


@case
def matmul_batched_broadcast(t):
    A = leaf(t, np.arange(6.).reshape(1, 2, 3).tolist())
    B = leaf(t, np.arange(24.).reshape(2, 3, 4).tolist())
    M = leaf(t, np.arange(6.).reshape(2, 3).tolist())
    y = leaf(t, [1., 2., 3.])
    outs = [A @ B, M @ B, y @ B]
    sum((o * o).sum() for o in outs).backward()
    return [[list(o.shape), o.detach().tolist()] for o in outs] + [A.grad, B.grad, M.grad,
                                                                    y.grad]


# ----------------------------------------------------------------------------------- indexing
@case
def index_basic(t):
    m = leaf(t, np.arange(12.).reshape(3, 4).tolist())
    outs = [m[0], m[-1], m[:, 0], m[1:], m[0:2, 1:3], m[:, ::2], m[None], m[..., 1], m[0, 1],
            m[None, 0], m[1:, None], m[:], m[...], m[0][None], m[0:1, 0], m[:, -1], m[0, :],
            m[t.tensor(1)]]
    sum((o * (k + 1)).sum() for k, o in enumerate(outs)).backward()
    return outs + [m.grad]


@case
def index_advanced(t):
    m = leaf(t, np.arange(12.).reshape(3, 4).tolist())
    x = leaf(t, [1., 2., 3., 4.])
    mask = t.tensor([True, False, True, True])
    outs = [x[[0, 2]], x[[3, 3, 0]], x[mask], x[x > 2], m[[0, 2]], m[:, [1, 3]],
            m[[0, 1], [2, 3]], m[0, [1, 2]], m[[2, 0], 1:], m[:, mask], m[m > 5],
            m[t.tensor([0, 2])], m[[-1]], x[t.tensor([[0, 1], [2, 3]])]]
    sum((o * (k + 1)).sum() for k, o in enumerate(outs)).backward()
    return outs + [m.grad, x.grad]


@case
def index_3d_int_and_list(t):
    A = leaf(t, np.arange(24.).reshape(2, 3, 4).tolist())
    outs = [A[0, :, [0, 1]], A[[0, 1], :, [0, 1]], A[:, 0, [1, 2]], A[1, [0, 2]],
            A[..., [0, 3]]]
    sum((o * (k + 1)).sum() for k, o in enumerate(outs)).backward()
    return outs + [A.grad]


@case
def setitem_no_grad_and_plain(t):
    x = t.tensor([1., 2., 3., 4.])
    x[0] = 10
    x[1:3] = t.tensor([7., 8.])
    x[x > 9] = -1.
    m = t.zeros(2, 3)
    m[:, 1] = 5
    m[1] = t.tensor([1., 2., 3.])
    w = leaf(t, [1., 2.])
    with t.no_grad():
        w[0] = 5.
    return [x, m, w, w.is_leaf, w.grad_fn]


@case
def setitem_differentiable(t):
    x = leaf(t, [1., 2., 3.])
    y = x * 1
    y[0] = x[1] * 5
    v = leaf(t, 2.)
    z = x * 2
    z[1:] = 0.
    z[2] = v
    (y.sum() + (z * z).sum()).backward()
    return [y, z, x.grad, v.grad]


@case
def inplace_ops_non_leaf(t):
    x = leaf(t, [1., 2., 3.])
    y = x * 2
    y += 1
    y *= x
    y -= 2
    y /= 4
    y.sum().backward()
    return [y, x.grad]


@case
def inplace_ops_no_grad_leaf(t):
    w = leaf(t, [1., 2., 3.])
    (w * w).sum().backward()
    with t.no_grad():
        w -= 0.1 * w.grad
        w += 1
        w *= 2
        w /= 4
    g = w.grad
    w.grad.zero_()
    return [w, g, w.is_leaf, w.requires_grad, w.grad_fn]


@case
def inplace_int_tensor(t):
    i = t.tensor([1, 2, 3])
    i += 2
    i *= 3
    f = t.tensor([1., 2.])
    f += t.tensor([1, 1])
    return [i, f, err(lambda: i.__itruediv__(2)), err(lambda: i.__iadd__(1.5))]


@pytest.mark.parametrize("fn", CASES, ids=[c.__name__ for c in CASES])
def test_matches_torch(fn):
    check(fn)
