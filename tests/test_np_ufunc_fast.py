"""The NumPy front's short path for a ufunc call it has resolved once (np_dispatch._UFAST):
NumPy's values and dtypes on the first and on later calls, the dtype check kept, and no Python
frame of its own between `array_ufunc` and `binary` / `unary`."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import adjit
from adjit.ir.types import NAME_OF
from adjit.tracer import np_dispatch

CALLS = [
    ("exp", lambda x: np.exp(x)),
    ("log", lambda x: np.log(np.abs(x) + 1)),
    ("negative", lambda x: np.negative(x)),
    ("maximum0", lambda x: np.maximum(x, 0)),
    ("maximum_f", lambda x: np.maximum(0.5, x)),
    ("add", lambda x: np.add(x, x)),
    ("subtract_i", lambda x: np.subtract(x, 3)),
    ("multiply_f32", lambda x: np.multiply(x, x.astype(np.float32))),
    ("power", lambda x: np.power(np.abs(x), 1.5)),
    ("less", lambda x: np.less(x, 0.0)),
    ("floor_int", lambda x: np.floor(x.astype(np.int32))),
    ("sqrt_int", lambda x: np.sqrt(np.abs(x).astype(np.int64))),
]


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("label,f", CALLS, ids=[c[0] for c in CALLS])
def test_repeated_ufunc_calls_match_numpy(label, f, dt):
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(dt)
    want = f(x)
    for _ in range(3):  # the first call resolves the loop, later ones take the short path
        got = adjit.jit(f)(x)
        assert np.asarray(got).dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_gradients_through_the_short_path_match_finite_differences():
    def f(x):
        return np.sum(np.log(np.exp(x) + 1.0) * np.maximum(x, 0) - np.negative(x) ** 2)
    x = np.random.default_rng(1).standard_normal((3, 4))
    adjit.grad(f)(x)
    g = adjit.grad(f)(x)
    fd = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = 1e-6
        fd[i] = (f(x + e) - f(x - e)) / 2e-6
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_a_result_of_another_dtype_is_still_refused(monkeypatch):
    x = np.ones(3)
    adjit.jit(lambda x: np.exp(x))(x)
    key = (np.exp, "f64")
    _, name, want = np_dispatch._UFAST[key]
    monkeypatch.setitem(np_dispatch._UFAST, key, (lambda a: a.astype(np.float32), name, want))
    with pytest.raises(NotImplementedError, match="NumPy gives float64"):
        adjit.jit(lambda x: np.exp(x) * 2)(x)


def test_no_frame_between_the_dispatch_and_the_recording():
    x = np.ones((2, 3))
    seen = []

    def f(x):
        np.exp(x)
        np.maximum(x, 0)
        sys.setprofile(lambda frame, event, arg: seen.append(frame.f_code.co_name)
                       if event == "call" else None)
        try:
            return np.maximum(np.exp(x), 0)
        finally:
            sys.setprofile(None)
    adjit.make_ir(f)(x)
    assert "binary" in seen and "unary" in seen
    assert "<lambda>" not in seen, seen


@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_shape_errors_name_the_ufunc_and_the_users_line_first_and_later(dt):
    x, y = np.ones((3, 4), dt), np.ones(5, dt)
    with pytest.raises(ValueError):
        np.maximum(x, y)
    for _ in range(2):  # the first call (loop resolution) and a later one (the short path)
        with pytest.raises(ValueError, match=r"np\.maximum \(at .*test_np_ufunc_fast\.py"):
            adjit.jit(lambda a, b: np.maximum(a, b))(x, y)


def test_scipy_ufunc_errors_name_scipy():
    sp = pytest.importorskip("scipy.special")
    with pytest.raises(ValueError, match=r"scipy\.special.* \(at .*test_np_ufunc_fast"):
        adjit.jit(lambda a, b: sp.xlogy(a, b))(np.ones((3, 4)), np.ones(5))


@pytest.mark.parametrize("a,b", [("x", "x"), ("x", 2), ("x", 2.5), (2, "x"), (0.5, "x"),
                                 ("x", "x32"), ("x32", 3), ("xi", 2.5), ("xi", "xi")])
def test_two_operand_keys_match_fast_key(a, b):
    # the inline key of two operands is `_fast_key`'s: every combination of dtypes and Python
    # numbers resolves once and then answers as NumPy on the short path
    x = np.random.default_rng(3).standard_normal(4)
    vals = {"x": x, "x32": x.astype(np.float32), "xi": (x * 10).astype(np.int64)}
    arrays = [vals[v] for v in (a, b) if isinstance(v, str)]

    def f(*arrs):
        it = iter(arrs)
        return np.maximum(*[next(it) if isinstance(v, str) else v for v in (a, b)])
    want = np.maximum(*[vals[v] if isinstance(v, str) else v for v in (a, b)])
    for _ in range(2):
        got = adjit.jit(f)(*arrays)
        assert np.asarray(got).dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    key = (np.maximum,) + tuple(NAME_OF[vals[v].dtype] if isinstance(v, str) else type(v)
                                for v in (a, b))
    assert key in np_dispatch._UFAST
