"""The NumPy front's short path for reductions (np.sum / mean / max / min / prod, amax, amin and
the methods): the same graph as the general path, NumPy's values and dtypes over axis /
keepdims combinations, NumPy's errors for what it leaves to the general path, gradients
against finite differences."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
from adjit.tracer import np_dispatch

NAMES = ("sum", "mean", "max", "min", "prod", "amax", "amin")
AXES = (None, 0, -1, 1, (0,), (-1, 0), (0, 1, 2), (2, -3))


def _call(name, x, axis, keep, how):
    if how == "kw":
        return getattr(np, name)(x, axis=axis, keepdims=keep)
    if how == "pos":
        return getattr(np, name)(x, axis)
    if how == "method":
        return getattr(x, name)(axis=axis, keepdims=keep)
    return getattr(x, name)(axis)  # the method, axis by position


def _cases():
    for name in NAMES:
        for axis in AXES:
            for keep in (False, True):
                for how in ("kw", "pos", "method", "mpos"):
                    if how in ("method", "mpos") and name.startswith("a"):
                        continue
                    if how in ("pos", "mpos") and keep:
                        continue
                    yield name, axis, keep, how


@pytest.mark.parametrize("dt", ["f32", "f64"])
def test_reductions_match_numpy_and_the_general_path(dt, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4)).astype(dt.replace("f", "float"))
    for name, axis, keep, how in _cases():
        def f(x, name=name, axis=axis, keep=keep, how=how):
            return _call(name, x, axis, keep, how)
        want = _call(name, x, axis, keep, how)
        got = adjit.jit(f)(x)
        assert np.asarray(got).dtype == want.dtype, (name, axis, keep, how)
        assert np.shape(got) == want.shape, (name, axis, keep, how)
        np.testing.assert_allclose(got, want, rtol=2e-6 if dt == "f32" else 1e-13,
                                   err_msg=str((name, axis, keep, how)))
        fast = str(adjit.make_ir(f)(x))
        with monkeypatch.context() as m:
            m.setattr(np_dispatch, "_RFAST", {})
            m.setattr(np_dispatch, "_RFUNCS", {})
            general = str(adjit.make_ir(f)(x))
        assert fast == general, (name, axis, keep, how)


def test_common_reductions_skip_the_general_dispatch(monkeypatch):
    # the general path's implementations refuse: the common calls must not reach them
    def boom(*a, **k):
        raise AssertionError("general path")
    for name in NAMES:
        monkeypatch.setitem(np_dispatch.FUNCS, name, boom)
    x = np.arange(12.0).reshape(3, 4)

    def f(x):
        return (np.sum(x, axis=1, keepdims=True).sum() + np.max(x, 0).sum() + x.mean(axis=-1).sum()
                + np.min(x, axis=(0, 1)) + x.prod(1).sum() + np.amax(x))
    want = (x.sum(axis=1, keepdims=True).sum() + x.max(0).sum() + x.mean(axis=-1).sum()
            + x.min(axis=(0, 1)) + x.prod(1).sum() + x.max())
    np.testing.assert_allclose(adjit.jit(f)(x), want)


@pytest.mark.parametrize("call", [
    lambda x: np.sum(x, axis=3),
    lambda x: np.max(x, axis=-4),
    lambda x: np.mean(x, axis=(0, 0)),
    lambda x: x.sum(axis=(0, 5)),
    lambda x: np.sum(x, axis=1.0),
    lambda x: np.max(x[:, :0], axis=1),
])
def test_bad_calls_raise_numpys_error_type_at_the_users_line(call):
    x = np.ones((2, 3, 4))
    with pytest.raises(Exception) as want:
        call(x)
    with pytest.raises(want.type) as got:  # (NumPy's AxisError included)
        adjit.jit(call)(x)
    assert "test_np_reduce_fast.py" in str(got.value), str(got.value)


@pytest.mark.parametrize("call", [
    lambda x: np.max(x, axis=1, initial=x[0, 0, 0]),
    lambda x: np.sum(x, axis=1, where=x > 0, initial=x[0, 0, 0]),
    lambda x: np.sum(x, axis=1, out=np.zeros(2)),
    lambda x: x.sum(1, None, np.zeros(2)),
])
def test_keywords_it_cannot_honour_are_refused_at_the_users_line(call):
    with pytest.raises(TypeError, match="test_np_reduce_fast.py"):
        adjit.jit(call)(np.ones((2, 3, 4)))


@pytest.mark.parametrize("call", [
    lambda x: np.sum(x, axis=1, keepdims=1),
    lambda x: np.mean(x[:, :0], axis=1),
    lambda x: np.sum(x[:, :0], axis=1),
    lambda x: np.sum(x, axis=np.int64(1), dtype=np.float32),
    lambda x: np.prod(x[0, 0, 0]),
    lambda x: np.sum(x[0, 0, 0]),
    lambda x: np.sum((x > 0), axis=1),
    lambda x: np.mean(x.astype(np.int32), axis=(1, 2), keepdims=True),
])
def test_other_calls_take_the_general_path_as_numpy(call):
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    want = call(x)
    with np.errstate(all="ignore"):
        got = adjit.jit(call)(x)
    assert np.asarray(got).dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod"])
@pytest.mark.parametrize("axis,keep", [(None, False), (1, True), ((0, -1), False), (-1, True)])
def test_reduction_gradients_match_finite_differences(name, axis, keep):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 2))
    w = rng.standard_normal(getattr(np, name)(x, axis=axis, keepdims=keep).shape)

    def f(x):
        return np.sum(getattr(np, name)(x, axis=axis, keepdims=keep) * w)
    g = adjit.jit(adjit.grad(f))(x)
    fd = np.zeros_like(x)
    eps = 1e-6
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        fd[i] = (f(x + e) - f(x - e)) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
