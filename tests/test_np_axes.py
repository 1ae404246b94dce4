"""Axes on traced arrays as NumPy checks them: an axis out of range raises NumPy's AxisError (an
IndexError and a ValueError) naming the function and the user's line; the int axis 0 or -1 of a
0-d array is taken where NumPy takes it (ufunc reductions: nothing reduced; cumsum, argmax,
take, argsort: the 0-d array as one element), with NumPy's values and finite-difference
gradients, and refused (AxisError) where NumPy refuses it; `where=True` (the default) is
accepted by reductions and ufuncs, and reductions take a `where=` mask and `initial=` as NumPy
(values, finite-difference gradients, errors)."""
from __future__ import annotations

import os

import numpy as np
import pytest

import adjit

AxisError = np.exceptions.AxisError
HERE = os.path.basename(__file__)
X = np.arange(1.0, 7.0).reshape(2, 3)

OUT_OF_RANGE = {
    "sum": lambda a: np.sum(a, axis=5),
    "sum-neg": lambda a: a.sum(axis=-3),
    "sum-tuple": lambda a: np.sum(a, axis=(0, 5)),
    "mean": lambda a: np.mean(a, axis=2),
    "max": lambda a: a.max(axis=5),
    "min": lambda a: np.min(a, axis=-3),
    "prod": lambda a: np.prod(a, axis=2),
    "var": lambda a: np.var(a, axis=5),
    "std": lambda a: a.std(axis=5),
    "any": lambda a: np.any(a > 0, axis=5) * a.sum(),
    "all": lambda a: np.all(a > 0, axis=2) * a.sum(),
    "argmax": lambda a: np.argmax(a, axis=5) * a.sum(),
    "cumsum": lambda a: np.cumsum(a, axis=5).sum(),
    "cumprod": lambda a: np.cumprod(a, axis=2).sum(),
    "nansum": lambda a: np.nansum(a, axis=5),
    "concatenate": lambda a: np.concatenate([a, a], axis=5).sum(),
    "stack": lambda a: np.stack([a, a], axis=5).sum(),
    "expand_dims": lambda a: np.expand_dims(a, 5).sum(),
    "moveaxis": lambda a: np.moveaxis(a, 5, 0).sum(),
    "swapaxes": lambda a: np.swapaxes(a, 0, 5).sum(),
    "transpose": lambda a: np.transpose(a, (5, 0)).sum(),
    "squeeze": lambda a: np.squeeze(a, 5).sum(),
    "squeeze-method": lambda a: a.squeeze(5).sum(),
    "take": lambda a: np.take(a, [0], axis=5).sum(),
    "flip": lambda a: np.flip(a, 5).sum(),
    "sort": lambda a: np.sort(a, axis=5).sum(),
    "roll": lambda a: np.roll(a, 1, axis=5).sum(),
    "linalg.norm": lambda a: np.linalg.norm(a, axis=5).sum(),
}


@pytest.mark.parametrize("transform", [adjit.grad, adjit.jit], ids=["grad", "jit"])
@pytest.mark.parametrize("name", OUT_OF_RANGE)
def test_an_axis_out_of_range_raises_numpys_axis_error(name, transform):
    f = OUT_OF_RANGE[name]
    with pytest.raises(AxisError):
        f(X)
    with pytest.raises(AxisError) as got:
        transform(f)(X)
    assert isinstance(got.value, IndexError) and isinstance(got.value, ValueError)
    msg = str(got.value)
    assert "out of bounds for array of dimension" in msg and HERE in msg, msg
    assert f"np.{name.split('-')[0]}" in msg, msg


# 0-d arrays: what NumPy takes (the int axis 0 or -1), what it refuses (a tuple, other axes,
# mean/var/std/median/flip/sort with any axis)
SCALAR_OK = {
    "sum": lambda a, ax: np.sum(a, axis=ax),
    "sum-keepdims": lambda a, ax: np.sum(a, axis=ax, keepdims=True),
    "sum-method": lambda a, ax: (a * a).sum(ax),
    "max": lambda a, ax: np.max(a, axis=ax),
    "min": lambda a, ax: a.min(axis=ax),
    "amax": lambda a, ax: np.amax(a, ax),
    "prod": lambda a, ax: np.prod(a * a, axis=ax),
    "nansum": lambda a, ax: np.nansum(a, axis=ax),
    "nanmean": lambda a, ax: np.nanmean(a, axis=ax),
    "nanmax": lambda a, ax: np.nanmax(a, axis=ax),
    "nanvar": lambda a, ax: np.nanvar(a, axis=ax) + a,
    "any": lambda a, ax: np.any(a > 0, axis=ax) * a,
    "all": lambda a, ax: np.all(a > 0, axis=ax) * a,
    "cumsum": lambda a, ax: np.cumsum(a * a, axis=ax).sum(),
    "cumsum-shape": lambda a, ax: np.cumsum(a, axis=ax) * np.ones(1),
    "cumprod": lambda a, ax: np.cumprod(a * a, axis=ax).sum(),
    "argmax": lambda a, ax: np.argmax(a, axis=ax) + a,
    "argmin-keepdims": lambda a, ax: np.argmin(a, axis=ax, keepdims=True) + a,
    "argsort": lambda a, ax: np.argsort(a, axis=ax).sum() + a,
    "take": lambda a, ax: np.take(a, 0, axis=ax) * a,
    "squeeze": lambda a, ax: np.squeeze(a, ax) * a,
    "stack": lambda a, ax: np.stack([a, a * a], axis=ax).sum(),
    "expand_dims": lambda a, ax: np.expand_dims(a * a, ax).sum(),
    "repeat": lambda a, ax: np.repeat(a * a, 3, axis=ax).sum(),
}


@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("name", SCALAR_OK)
def test_a_0d_array_takes_the_int_axis_where_numpy_does(name, axis):
    f = SCALAR_OK[name]
    x = np.array(1.5)
    want = f(x, axis)
    got = adjit.jit(lambda a: f(a, axis))(x)
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # the gradient against NumPy's own central difference
    h = 1e-6
    fd = (np.sum(f(x + h, axis)) - np.sum(f(x - h, axis))) / (2 * h)
    g = adjit.grad(lambda a: np.sum(f(a, axis)))(x)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


SCALAR_REFUSED = {
    "sum-tuple": lambda a: np.sum(a, axis=(0,)),
    "sum-1": lambda a: np.sum(a, axis=1),
    "max-tuple": lambda a: a.max(axis=(-1,)),
    "prod-1": lambda a: np.prod(a, axis=1),
    "mean": lambda a: np.mean(a, axis=0),
    "mean-neg": lambda a: a.mean(axis=-1),
    "var": lambda a: np.var(a, axis=0),
    "std": lambda a: np.std(a, axis=-1),
    "median": lambda a: np.median(a, axis=0),
    "flip": lambda a: np.flip(a, 0),
    "sort": lambda a: np.sort(a, axis=-1),
    "squeeze-tuple": lambda a: np.squeeze(a, (0,)),
    "cumsum-1": lambda a: np.cumsum(a, axis=1).sum(),
    "argmax-1": lambda a: np.argmax(a, axis=1) * a,
    "stack-1": lambda a: np.stack([a, a], axis=1).sum(),
    "expand_dims-1": lambda a: np.expand_dims(a, 1).sum(),
    "roll": lambda a: np.roll(a, 1, axis=0),
}


@pytest.mark.parametrize("name", SCALAR_REFUSED)
def test_a_0d_array_refuses_what_numpy_refuses(name):
    f = SCALAR_REFUSED[name]
    x = np.array(1.5)
    with pytest.raises(AxisError):
        f(x)
    with pytest.raises(AxisError, match=HERE):
        adjit.jit(f)(x)
    with pytest.raises(AxisError, match=HERE):
        adjit.grad(f)(x)


@pytest.mark.parametrize("call", [
    lambda a: np.rot90(a, 1, (0, 7)),
    lambda a: np.rot90(a, 1, (1, -1)),
    lambda a: np.rot90(a, 1, (0, 1, 2)),
    lambda a: np.rot90(a[0, 0]),
    lambda a: np.transpose(a, 7),
    lambda a: np.transpose(a, (1, 1)),
    lambda a: a.transpose(0, 1, 2),
    lambda a: np.moveaxis(a, (0, 1), (1, 1)),
    lambda a: np.moveaxis(a, (0, 1), 0),
    lambda a: np.expand_dims(a, (0, 0)),
])
def test_other_axis_errors_as_numpy(call):
    with pytest.raises(Exception) as want:
        call(X)
    with pytest.raises(want.type) as got:
        adjit.jit(lambda a: call(a).sum())(X)
    assert str(got.value).startswith(str(want.value).split(" (")[0][:20]), (got.value, want.value)
    assert HERE in str(got.value)


def test_concatenating_0d_arrays_is_numpys_value_error():
    f = lambda a: np.concatenate([a, a], axis=0).sum()  # noqa: E731
    x = np.array(1.5)
    with pytest.raises(ValueError, match="zero-dimensional") as want:
        f(x)
    with pytest.raises(want.type, match="zero-dimensional"):
        adjit.jit(f)(x)


WHERE_TRUE = [
    lambda a: np.sum(a, where=True),
    lambda a: a.sum(axis=0, where=True).sum(),
    lambda a: np.mean(a, axis=1, where=True).sum(),
    lambda a: np.max(a, where=True) + a.min(0, where=True).sum(),
    lambda a: np.prod(a, where=True),
    lambda a: np.var(a, where=True) + a.std(axis=1, where=True).sum(),
    lambda a: np.nansum(a, where=True),
    lambda a: np.all(a > 0, where=True) * np.any(a > 3, axis=0, where=True).sum() * a.sum(),
    lambda a: np.add(a, 1.0, where=True).sum(),
    lambda a: np.sum(a * a, 1, None, None, False, np._NoValue, True).sum(),  # by position
]


@pytest.mark.parametrize("k", range(len(WHERE_TRUE)))
def test_where_true_is_numpys_default(k):
    f = WHERE_TRUE[k]
    np.testing.assert_allclose(adjit.jit(f)(X), f(X), rtol=1e-12)
    h = 1e-6
    fd = np.zeros_like(X)
    for i in np.ndindex(X.shape):
        e = np.zeros_like(X)
        e[i] = h
        fd[i] = (f(X + e) - f(X - e)) / (2 * h)
    np.testing.assert_allclose(adjit.grad(f)(X), fd, rtol=1e-5, atol=1e-6)


M = np.array([True, False, True])
M2 = np.array([[True, False, True], [False, False, True]])
WHERE_MASK = {
    "sum": lambda a: np.sum(a, where=M),
    "sum-axis-keepdims": lambda a: np.sum(a, axis=1, where=M2, keepdims=True),
    "sum-false": lambda a: np.sum(a * a, where=False) + a.sum(),
    "sum-traced-mask": lambda a: np.sum(a * a, where=a > 2.5),
    "sum-initial": lambda a: a.sum(axis=0, where=M2, initial=1.5),
    "mean": lambda a: np.mean(a, axis=1, where=M),
    "mean-method": lambda a: (a * a).mean(where=M2),
    "var": lambda a: np.var(a, where=M, ddof=1),
    "std": lambda a: np.std(a * a, axis=1, where=M),
    "max": lambda a: np.max(a, axis=0, where=M, initial=2.5),
    "min": lambda a: a.min(1, where=M2, initial=3.5),
    "amax-all": lambda a: np.amax(a * a, where=M2, initial=np.float64(-9.0)),
    "max-initial": lambda a: np.max(a, axis=1, initial=4.5),
    "max-empty-initial": lambda a: np.max(a[:, :0], axis=1, initial=5.0) * a.sum(),
    "prod": lambda a: np.prod(a, where=M, initial=2.0),
    "any": lambda a: np.any(a > 3, axis=0, where=M) * a.sum(),
    "all": lambda a: np.all(a > 3, axis=1, where=M2) * a.sum(),
}


@pytest.mark.parametrize("name", WHERE_MASK)
def test_where_masks_and_initial_as_numpy(name):
    f = WHERE_MASK[name]
    want = f(X)
    got = adjit.jit(f)(X)
    assert np.shape(got) == np.shape(want) and np.asarray(got).dtype == np.asarray(want).dtype
    np.testing.assert_allclose(got, want, rtol=1e-12)
    h = 1e-6
    fd = np.zeros_like(X)
    for i in np.ndindex(X.shape):
        e = np.zeros_like(X)
        e[i] = h
        fd[i] = (np.sum(f(X + e)) - np.sum(f(X - e))) / (2 * h)
    np.testing.assert_allclose(adjit.grad(lambda a: np.sum(f(a)))(X), fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("call", [
    lambda a: np.max(a, where=M),  # no identity: initial= needed
    lambda a: np.sum(a, where=np.array([1, 0, 1])),  # not a bool mask
    lambda a: np.mean(a, where=np.array([True, False])),  # does not broadcast
])
def test_bad_where_masks_raise_numpys_error_type_at_the_users_line(call):
    with pytest.raises(Exception) as want:
        call(X)
    with pytest.raises(want.type, match=HERE):
        adjit.jit(call)(X)


def test_a_traced_initial_is_refused_at_the_users_line():
    with pytest.raises(TypeError, match=f"initial=.*{HERE}"):
        adjit.jit(lambda a: np.max(a, initial=a[0, 0]))(X)


TIES = [
    lambda np_, a: np_.max(a, axis=1, initial=3.0),
    lambda np_, a: np_.max(a, axis=1, where=M, initial=3.0),
    lambda np_, a: np_.min(a, axis=0, where=M2, initial=3.0),
    lambda np_, a: np_.min(a, where=M2, initial=1.0),
]


@pytest.mark.parametrize("k", range(len(TIES)))
def test_max_min_ties_with_initial_have_jaxs_gradient(k):
    from peers import require
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    x = np.array([[1.0, 2.0, 3.0], [3.0, 0.5, 3.0]])  # ties among x and with initial
    f = TIES[k]
    np.testing.assert_allclose(adjit.jit(lambda a: f(np, a))(x), f(np, x))
    want = jax.grad(lambda a: jnp.sum(f(jnp, a)))(x)
    np.testing.assert_allclose(adjit.grad(lambda a: np.sum(f(np, a)))(x), want, rtol=1e-12)


@pytest.mark.parametrize("axes", [([5], [0]), ([1], [-7])])
def test_tensordot_axes_out_of_range(axes):
    b = np.ones((3, 4))
    with pytest.raises(IndexError) as want:  # (NumPy's own: "tuple index out of range")
        np.tensordot(X, b, axes=axes)
    with pytest.raises(want.type, match=f"out of bounds.*{HERE}") as got:
        adjit.jit(lambda a: np.tensordot(a, b, axes=axes).sum())(X)
    assert isinstance(got.value, AxisError)
