"""A ufunc's methods on traced arrays: `np.add.reduce`, `np.maximum.accumulate`,
`np.subtract.outer` & co.

Values and dtypes against NumPy on the same inputs (float64, float32, integers, bools) under
adjit.jit (first and replayed calls), adjit.grad and adjit.vmap; gradients against finite
differences and jax.grad (jax.numpy's ufuncs have the same methods); errors against NumPy's
own (type and essential words), with the user's line."""
from __future__ import annotations

import re

import numpy as np
import pytest

import scipy.special as SP

import adjit

from peers import central_diff, require

RNG = np.random.default_rng(7)

# id, f(np, x); every case is a NumPy program on one array of shape (3, 4)
VALUE_CASES = [
    ("add_reduce0", lambda np, x: np.add.reduce(x)),
    ("add_reduce1", lambda np, x: np.add.reduce(x, axis=1)),
    ("add_reduce_none", lambda np, x: np.add.reduce(x, axis=None)),
    ("add_reduce_tuple_keep", lambda np, x: np.add.reduce(x, axis=(0, 1), keepdims=True)),
    ("add_reduce_initial_where", lambda np, x: np.add.reduce(x, axis=1, initial=2,
                                                             where=x > 1)),
    ("add_reduce_dtype", lambda np, x: np.add.reduce(x, axis=0, dtype=np.float64)),
    ("multiply_reduce", lambda np, x: np.multiply.reduce(x, axis=-1)),
    ("multiply_reduce_none", lambda np, x: np.multiply.reduce(x, axis=None, keepdims=True)),
    ("maximum_reduce", lambda np, x: np.maximum.reduce(x, axis=0)),
    ("maximum_reduce_initial", lambda np, x: np.maximum.reduce(x, axis=1, initial=1)),
    ("minimum_reduce_none", lambda np, x: np.minimum.reduce(x, axis=None)),
    ("minimum_reduce_where", lambda np, x: np.minimum.reduce(x, axis=0, where=x < 3,
                                                             initial=10)),
    ("logical_and_reduce", lambda np, x: np.logical_and.reduce(x, axis=1)),
    ("logical_or_reduce", lambda np, x: np.logical_or.reduce(x > 2, axis=0)),
    ("subtract_reduce", lambda np, x: np.subtract.reduce(x, axis=1)),
    ("subtract_reduce_initial_where", lambda np, x: np.subtract.reduce(x, axis=0, initial=5,
                                                                       where=x > 1)),
    ("subtract_reduce_initial_float", lambda np, x: np.subtract.reduce(x, axis=1,
                                                                       initial=5.5)),
    ("divide_accumulate", lambda np, x: np.divide.accumulate(x, axis=0)),
    ("bitwise_or_reduce", lambda np, x: np.bitwise_or.reduce(x > 1, axis=(0, 1))),
    ("add_accumulate", lambda np, x: np.add.accumulate(x)),
    ("add_accumulate1", lambda np, x: np.add.accumulate(x, axis=1)),
    ("multiply_accumulate", lambda np, x: np.multiply.accumulate(x, axis=-1)),
    ("maximum_accumulate", lambda np, x: np.maximum.accumulate(x, axis=1)),
    ("minimum_accumulate", lambda np, x: np.minimum.accumulate(x, axis=0)),
    ("subtract_accumulate", lambda np, x: np.subtract.accumulate(x, axis=1)),
    ("add_outer", lambda np, x: np.add.outer(x[0], x[:, 1])),
    ("subtract_outer_2d", lambda np, x: np.subtract.outer(x, x[1])),
    ("multiply_outer", lambda np, x: np.multiply.outer(x[:, 0], x)),
    ("minimum_outer", lambda np, x: np.minimum.outer(x[0], x[2])),
    ("greater_outer", lambda np, x: np.greater.outer(x[0], x[1])),
    ("outer_plain_left", lambda np, x: np.subtract.outer(np.arange(3.0), x[0])),
    ("outer_scalar_right", lambda np, x: np.multiply.outer(x, 2)),
    ("reduce_plain_traced_mask", lambda np, x: np.add.reduce(np.arange(12.0).reshape(3, 4),
                                                             axis=1, where=x > 2)),
    ("xlogy_outer_reduce", lambda np, x: np.add.reduce(SP.xlogy.outer(x[0] * x[0] + 1,
                                                                      x[1] * x[1] + 1))),
]
# (the integer inputs hold zeros: division kept to floats; NumPy refuses subtract on bools)
FLOAT_ONLY = {"divide_accumulate"}
NO_BOOL = {"add_reduce_initial_where", "subtract_reduce_initial_float", "subtract_reduce",
           "subtract_reduce_initial_where",
           "subtract_accumulate", "subtract_outer_2d", "outer_plain_left", "maximum_reduce_initial",
           "minimum_reduce_where", "xlogy_outer_reduce"}


def _input(dtype):
    if dtype == np.bool_:
        return RNG.random((3, 4)) > 0.4
    if np.dtype(dtype).kind == "i":
        return RNG.integers(-3, 5, (3, 4)).astype(dtype)
    return RNG.uniform(0.5, 4.0, (3, 4)).astype(dtype)


VALUE_PARAMS = [pytest.param(c, dt, id=f"{c[0]}-{np.dtype(dt).name}")
                for c in VALUE_CASES for dt in (np.float64, np.float32, np.int64, np.int32,
                                                np.bool_)
                if not (dt == np.bool_ and c[0] in NO_BOOL)
                and not (np.dtype(dt).kind != "f" and c[0] in FLOAT_ONLY)]


def _same(got, want):
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    if want.dtype.kind == "f":
        tol = 1e-5 if want.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case,dtype", VALUE_PARAMS)
def test_values_under_jit(case, dtype):
    x = _input(dtype)
    want = case[1](np, x)
    f = adjit.jit(lambda x: case[1](np, x))
    _same(f(x), want)  # first call (traced)
    x2 = _input(dtype)
    _same(f(x2), case[1](np, x2))  # replayed


@pytest.mark.parametrize("case", VALUE_CASES, ids=[c[0] for c in VALUE_CASES])
def test_vmap_against_a_loop(case):
    xs = RNG.uniform(0.5, 4.0, (5, 3, 4))
    got = adjit.vmap(lambda x: case[1](np, x))(xs)
    _same(got, np.stack([case[1](np, x) for x in xs]))


# --- gradients ---------------------------------------------------------------------------------
GRAD_CASES = [
    ("add_reduce", lambda np, x: np.sum(np.add.reduce(x, axis=0) ** 2)),
    ("add_reduce_none_where", lambda np, x: np.add.reduce(x * x, axis=None, where=x > 0)),
    ("multiply_reduce", lambda np, x: np.sum(np.multiply.reduce(x, axis=1))),
    ("maximum_reduce", lambda np, x: np.sum(np.maximum.reduce(x, axis=1) * x[:, 0])),
    ("minimum_reduce_none", lambda np, x: np.minimum.reduce(x, axis=None) ** 3),
    ("subtract_reduce", lambda np, x: np.sum(np.subtract.reduce(x, axis=1) ** 2)),
    # (jax.numpy's divide, power and hypot are plain functions: the reference spelled out)
    ("divide_reduce", lambda np, x: np.sum(np.divide.reduce(x, axis=0)),
     lambda jnp, x: jnp.sum(x[0] / x[1] / x[2])),
    ("power_reduce", lambda np, x: np.sum(np.power.reduce(x[:, :2], axis=1)),
     lambda jnp, x: jnp.sum(x[:, 0] ** x[:, 1])),
    ("hypot_reduce", lambda np, x: np.sum(np.hypot.reduce(x, axis=(0, 1))),
     lambda jnp, x: jnp.sqrt(jnp.sum(x * x))),
    ("add_accumulate", lambda np, x: np.sum(np.add.accumulate(x, axis=1) ** 2)),
    ("multiply_accumulate", lambda np, x: np.sum(np.multiply.accumulate(x, axis=0))),
    ("maximum_accumulate", lambda np, x: np.sum(np.maximum.accumulate(x, axis=1) ** 2)),
    ("minimum_accumulate", lambda np, x: np.sum(np.minimum.accumulate(x) * x)),
    ("subtract_accumulate", lambda np, x: np.sum(np.subtract.accumulate(x, axis=1) ** 2)),
    ("subtract_reduce_where", lambda np, x: np.sum(np.subtract.reduce(x, axis=0, where=x > 1,
                                                                      initial=1.0) ** 2)),
    ("divide_accumulate", lambda np, x: np.sum(np.divide.accumulate(x, axis=1)),
     lambda jnp, x: jnp.sum(x[:, :1] / jnp.concatenate(
         [jnp.ones((3, 1)), jnp.cumprod(x[:, 1:], axis=1)], axis=1))),
    ("pairwise_distances", lambda np, x: np.sum(np.sqrt(np.sum(
        np.subtract.outer(x, x)[:, :, :, 0] ** 2, axis=-1) + 1.0))),
    ("multiply_outer", lambda np, x: np.sum(np.sin(np.multiply.outer(x[0], x[:, 1])))),
    ("add_outer_plain", lambda np, x: np.sum(np.add.outer(np.arange(2.0), x) ** 2)),
    ("minimum_outer", lambda np, x: np.sum(np.minimum.outer(x[0], x[1] * 1.3))),
]
GRAD_IDS = [c[0] for c in GRAD_CASES]


def _grad_input():
    # distinct magnitudes, no ties (max/min) and away from zero (divide, power)
    return np.linspace(0.6, 1.9, 12)[RNG.permutation(12)].reshape(3, 4)


@pytest.mark.parametrize("case", GRAD_CASES, ids=GRAD_IDS)
def test_grad_against_finite_differences(case):
    x = _grad_input()
    f = lambda x: case[1](np, x)  # noqa: E731
    np.testing.assert_allclose(adjit.grad(f)(x), central_diff(f, x), rtol=1e-5, atol=1e-6)
    jf = adjit.jit(adjit.grad(f))
    np.testing.assert_allclose(jf(x), central_diff(f, x), rtol=1e-5, atol=1e-6)
    x2 = _grad_input()
    np.testing.assert_allclose(jf(x2), central_diff(f, x2), rtol=1e-5, atol=1e-6)  # replayed


@pytest.mark.parametrize("case", GRAD_CASES, ids=GRAD_IDS)
def test_grad_against_jax(case):
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    x = _grad_input()
    ref = case[2] if len(case) > 2 else case[1]
    want = jax.grad(lambda x: ref(jnp, x))(jnp.asarray(x))
    np.testing.assert_allclose(adjit.grad(lambda x: case[1](np, x))(x), np.asarray(want),
                               rtol=1e-10, atol=1e-12)


def test_grad_float32_keeps_the_dtype():
    x = _grad_input().astype(np.float32)
    g = adjit.grad(lambda x: np.sum(np.maximum.accumulate(x, axis=1) *
                                    np.subtract.outer(x[0], x[1])[0]))(x)
    assert g.dtype == np.float32
    g64 = adjit.grad(lambda x: np.sum(np.maximum.accumulate(x, axis=1) *
                                      np.subtract.outer(x[0], x[1])[0]))(x.astype(np.float64))
    np.testing.assert_allclose(g, g64, rtol=1e-5)


# --- errors: NumPy's own (type, essential words), with the user's line ----------------------
ERROR_CASES = [
    ("unary_reduce", lambda x: np.sin.reduce(x), "only supported for binary functions"),
    ("unary_accumulate", lambda x: np.exp.accumulate(x), "only supported for binary"),
    ("unary_outer", lambda x: np.sin.outer(x, x), "only supported for binary functions"),
    ("bad_axis", lambda x: np.add.reduce(x, axis=5), "out of bounds"),
    ("duplicate_axis", lambda x: np.add.reduce(x, axis=(0, 0)), "duplicate value"),
    ("float_axis", lambda x: np.add.reduce(x, axis=1.5), "cannot be interpreted as an integer"),
    ("not_reorderable", lambda x: np.subtract.reduce(x, axis=(0, 1)), "not reorderable"),
    ("not_reorderable_none", lambda x: np.divide.reduce(x, axis=None), "not reorderable"),
    ("empty_no_identity", lambda x: np.maximum.reduce(x[:0], axis=0), "no identity"),
    ("empty_no_identity_sub", lambda x: np.subtract.reduce(x[:, :0], axis=1), "no identity"),
    ("where_no_identity", lambda x: np.maximum.reduce(x, axis=0, where=x > 1),
     "does not have an identity"),
    ("accumulate_axes", lambda x: np.add.accumulate(x, axis=(0, 1)), "multiple axes"),
    ("accumulate_none", lambda x: np.add.accumulate(x, axis=None), "multiple axes"),
    ("accumulate_scalar", lambda x: np.add.accumulate(x[0, 0]), "cannot accumulate on a scalar"),
    ("several_results", lambda x: np.divmod.reduce(x), "single value"),
]


# NumPy raises these itself before it hands the call to a traced array (its own traceback
# then names the user's line)
BEFORE_DISPATCH = {"unary_reduce", "unary_accumulate", "unary_outer", "several_results"}


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors_as_numpy(case):
    x = np.arange(1.0, 13.0).reshape(3, 4)
    with pytest.raises(Exception) as want:
        case[1](x)
    assert re.search(case[2], str(want.value))
    with pytest.raises(type(want.value), match=case[2]) as got:
        adjit.jit(case[1])(x)
    if case[0] not in BEFORE_DISPATCH:
        assert "test_ufunc_methods.py" in str(got.value)  # the user's line


def test_empty_with_identity_or_initial_gives_numpy_constant():
    x = np.ones((0, 3))
    for f in (lambda x: np.add.reduce(x, axis=0), lambda x: np.multiply.reduce(x, axis=0),
              lambda x: np.maximum.reduce(x, axis=0, initial=-2.0),
              lambda x: np.subtract.reduce(x, axis=0, initial=4.0)):
        _same(adjit.jit(f)(x), f(x))


@pytest.mark.parametrize("method,words", [("at", "np.bincount"), ("reduceat", "reduce")])
def test_at_and_reduceat_are_refused_with_an_alternative(method, words):
    def f(x):
        if method == "at":
            np.add.at(x, [0, 1], 1.0)
            return x
        return np.add.reduceat(x, [0, 2])
    with pytest.raises(NotImplementedError, match=f"np.add.{method} is not supported") as e:
        adjit.jit(f)(np.ones(4))
    assert words in str(e.value) and "test_ufunc_methods.py" in str(e.value)


def test_out_is_refused():
    def f(x):
        return np.add.reduce(x, axis=0, out=np.zeros(4))
    with pytest.raises(TypeError, match="out=") as e:
        adjit.jit(f)(np.ones((3, 4)))
    assert "test_ufunc_methods.py" in str(e.value)


def test_numpy_result_is_remembered_per_shape_and_dtype():
    """NumPy's stand-in result is kept per operands' kinds: a new shape (here an empty axis
    without identity) or dtype is judged afresh, and a remembered error is raised again."""
    def f(x):
        return np.maximum.reduce(x, axis=0)
    _same(adjit.jit(f)(np.ones((2, 3))), f(np.ones((2, 3))))
    for _ in range(2):
        with pytest.raises(ValueError, match="no identity") as e:
            adjit.jit(f)(np.ones((0, 3)))
        assert "test_ufunc_methods.py" in str(e.value)
    _same(adjit.jit(f)(np.ones((2, 3), np.int32)), f(np.ones((2, 3), np.int32)))
