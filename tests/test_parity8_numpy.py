"""NumPy front parity (traced arrays under adjit.jit / adjit.grad against the installed NumPy):
np.roll's axes and 0-d arrays, the axis parse of reductions (NumPy's TypeError for a list, a
bool, a float or a str), the nan-reductions' `where=`, and `**` with a broadcast exponent."""
from __future__ import annotations

import os
import re
import warnings

import numpy as np
import pytest

import adjit
from peers import central_diff, require

HERE = os.path.basename(__file__)
X = np.arange(1.0, 7.0).reshape(2, 3)
S = np.array(3.0)


def _observe(f, *args):
    try:
        return ("ok", np.asarray(f(*args)))
    except Exception as e:  # noqa: BLE001 - the exception is the observation
        return (type(e), str(e))


def _same_as_numpy(f, *args):
    """f on plain arrays (NumPy) and under adjit.jit: equal values, or the same exception type
    and NumPy's message (adjit adds the function's name and the user's line)."""
    want = _observe(f, *args)
    got = _observe(adjit.jit(f), *args)
    assert got[0] == want[0], (got, want)
    if want[0] == "ok":
        assert got[1].dtype == want[1].dtype and got[1].shape == want[1].shape
        np.testing.assert_array_equal(got[1], want[1])
    else:
        assert HERE in got[1], got[1]
        assert re.sub(r" in np\.[\w.]+ \(at .*$", "", got[1]) == want[1], (got[1], want[1])


# ------------------------------------------------------------------ 4. roll, reduction axes
ROLL = {
    "axis_empty": (lambda a: np.roll(a, 1, axis=()), X),
    "axis_empty_list": (lambda a: np.roll(a, 1, axis=[]), X),
    "shift_tuple_axis_empty": (lambda a: np.roll(a, (1,), axis=()), X),
    "both_empty": (lambda a: np.roll(a, (), axis=()), X),
    "0d": (lambda a: np.roll(a, 1), S),
    "0d_axis_none": (lambda a: np.roll(a, 1, axis=None), S),
    "0d_shift_tuple": (lambda a: np.roll(a, (1, 2)), S),
    "0d_axis_empty": (lambda a: np.roll(a, 1, axis=()), S),
    "0d_axis_0": (lambda a: np.roll(a, 1, axis=0), S),
    "0d_axis_minus_1": (lambda a: np.roll(a, 1, axis=-1), S),
    "shifts_no_axis": (lambda a: np.roll(a, (1, 2)), X),
    "lists": (lambda a: np.roll(a, [1, 2], axis=[0, 1]), X),
    "axis_broadcast": (lambda a: np.roll(a, 1, axis=(0, 1)), X),
    "shift_broadcast": (lambda a: np.roll(a, (1, 2), axis=0), X),
    "repeated_axis": (lambda a: np.roll(a, 1, axis=(1, 1)), X),
    "mismatch": (lambda a: np.roll(a, (1, 2, 3), axis=(0, 1)), X),
    "axis_out_of_range": (lambda a: np.roll(a, 1, axis=2), X),
    "axis_float": (lambda a: np.roll(a, 1, axis=1.0), X),
    "axis_str": (lambda a: np.roll(a, 1, axis="a"), X),
    "shift_2d": (lambda a: np.roll(a, [[1]], axis=0), X),
    "shift_2d_no_axis": (lambda a: np.roll(a, [[1]]), X),
    "negative": (lambda a: np.roll(a, -7, axis=1), X),
    "empty_axis": (lambda a: np.roll(a[:, :0], 2, axis=1), X),
    "numpy_int": (lambda a: np.roll(a, np.int64(2)), X),
}


@pytest.mark.parametrize("case", sorted(ROLL))
def test_roll_as_numpy(case):
    f, a = ROLL[case]
    _same_as_numpy(f, a)


def test_roll_gradient_matches_differences():
    w = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    f = lambda a: (np.roll(a, (1, -2, 1), axis=(1, 0, 1)) * w).sum() + np.roll(a, 4).sum() ** 2
    np.testing.assert_allclose(adjit.grad(f)(X), central_diff(f, X), rtol=1e-7, atol=1e-9)
    g = lambda a: np.roll(a * a, 2) * 3.0  # 0-d: axis None rolls its single element
    np.testing.assert_allclose(adjit.grad(g)(S), central_diff(g, S), rtol=1e-7)


REDUCTIONS = ["sum", "prod", "max", "min", "amax", "amin", "mean", "var", "std", "any", "all",
              "nansum", "nanmean", "nanmax", "nanmin", "nanvar", "nanstd", "nanprod"]
BAD_AXES = {
    "tuple_str": (0, "a"),
    "list": [0],
    "empty_list": [],
    "tuple_float": (0, 1.0),
    "float": 1.0,
    "str": "a",
    "tuple_none": (0, None),
    "tuple_bool": (True,),
    "bool": True,
    "tuple_of_tuple": ((0,),),
    "array": np.array([0, 1]),
}


@pytest.mark.parametrize("axis", sorted(BAD_AXES))
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_axis_type_errors_as_numpy(name, axis):
    fn = getattr(np, name)
    f = lambda a: fn(a, axis=BAD_AXES[axis])  # noqa: E731
    want = _observe(f, X)
    got = _observe(adjit.jit(f), X)
    assert want[0] is TypeError and got[0] is TypeError, (got, want)
    assert HERE in got[1], got[1]


GOOD_AXES = {"int64": np.int64(1), "tuple_int64": (np.int64(0),), "array0": np.array(1),
             "tuple_array0": (np.array(1),), "empty_tuple": (), "negative": (-1, 0)}


@pytest.mark.parametrize("axis", sorted(GOOD_AXES))
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_integer_axes_as_numpy(name, axis):
    fn = getattr(np, name)
    f = lambda a: fn(a, axis=GOOD_AXES[axis])  # noqa: E731
    want, got = f(X), adjit.jit(f)(X)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12)
    assert np.asarray(got).shape == np.shape(want)


OTHER_AXES = {
    "argmax_tuple": lambda a: np.argmax(a, axis=(0, "a")),
    "argmax_list": lambda a: np.argmax(a, axis=[0]),
    "argmax_float": lambda a: np.argmax(a, axis=1.0),
    "cumsum_tuple": lambda a: np.cumsum(a, axis=(0,)),
    "median_tuple_str": lambda a: np.median(a, axis=(0, "a")),
    "median_str": lambda a: np.median(a, axis="a"),
    "norm_list": lambda a: np.linalg.norm(a, axis=[0]),
    "norm_tuple_str": lambda a: np.linalg.norm(a, axis=(0, "a")),
    "norm_tuple_none": lambda a: np.linalg.norm(a, axis=(0, None)),
    "norm_tuple_bool": lambda a: np.linalg.norm(a, axis=(True,)),
}


@pytest.mark.parametrize("case", sorted(OTHER_AXES))
def test_other_axis_type_errors_as_numpy(case):
    f = OTHER_AXES[case]
    want = _observe(f, X)
    got = _observe(adjit.jit(f), X)
    assert want[0] is TypeError and got[0] is TypeError, (got, want)
    assert HERE in got[1], got[1]


def test_axis_error_in_numpys_words():
    _same_as_numpy(lambda a: np.sum(a, axis=5), X)
    _same_as_numpy(lambda a: np.cumsum(a, axis=-3), X)


# ------------------------------------------------------------------ 5. nan-reductions' where=
XN = np.array([[1.0, np.nan, 3.0], [np.nan, 0.5, 2.0], [4.0, 5.0, -1.0]])
MN = np.array([[True, True, False], [True, True, False], [True, True, True]])
XI = np.arange(9).reshape(3, 3)
NAN_WHERE = {
    "nansum": (lambda a: np.nansum(a, axis=1, where=MN), XN),
    "nansum_initial": (lambda a: np.nansum(a, axis=1, where=MN, initial=10), XN),
    "nansum_f32": (lambda a: np.nansum(a.astype(np.float32), axis=1, where=MN), XN),
    "nansum_int": (lambda a: np.nansum(a, axis=1, where=MN), XI),
    "nanprod": (lambda a: np.nanprod(a, axis=1, where=MN), XN),
    "nanprod_initial": (lambda a: np.nanprod(a, axis=0, where=MN, initial=2.0), XN),
    "nanprod_plain": (lambda a: np.nanprod(a, axis=0), XN),
    "nanprod_int": (lambda a: np.nanprod(a, axis=1, where=MN), XI),
    "nanmean": (lambda a: np.nanmean(a, axis=1, where=MN), XN),
    "nanmean_all": (lambda a: np.nanmean(a, where=MN), XN),
    "nanmean_keepdims": (lambda a: np.nanmean(a, axis=1, where=MN, keepdims=True), XN),
    "nanmean_broadcast_mask": (lambda a: np.nanmean(a, axis=0, where=np.array([True, False, True])),
                               XN),
    "nanmean_empty_slice": (lambda a: np.nanmean(a, axis=1, where=~MN), XN),
    "nanmean_int": (lambda a: np.nanmean(a, axis=1, where=MN), XI),
    "nanmax_needs_initial": (lambda a: np.nanmax(a, axis=1, where=MN), XN),
    "nanmax_needs_initial_int": (lambda a: np.nanmax(a, axis=1, where=MN), XI),
    "nanmax_numpy_true_needs_initial": (lambda a: np.nanmax(a, axis=1, where=np.True_), XN),
    "nanmax_initial": (lambda a: np.nanmax(a, axis=1, where=MN, initial=-5), XN),
    "nanmax_initial_no_where": (lambda a: np.nanmax(a, axis=1, initial=2.5), XN),
    "nanmax_nothing_kept": (lambda a: np.nanmax(a, axis=1, where=np.zeros((3, 3), bool),
                                                initial=1.0), XN),
    "nanmax_int": (lambda a: np.nanmax(a, axis=1, where=MN, initial=-1), XI),
    "nanmin_initial": (lambda a: np.nanmin(a, axis=1, where=MN, initial=5), XN),
    "nanmin_plain": (lambda a: np.nanmin(a, axis=1), XN),
    "nanvar": (lambda a: np.nanvar(a, axis=1, where=MN), XN),
    "nanvar_axis0": (lambda a: np.nanvar(a, axis=0, where=MN), XN),
    "nanvar_keepdims": (lambda a: np.nanvar(a, axis=(0, 1), where=MN, keepdims=True), XN),
    "nanvar_ddof_past_count": (lambda a: np.nanvar(a, axis=1, ddof=2), XN),
    "nanvar_correction": (lambda a: np.nanvar(a, axis=1, where=MN, correction=1), XN),
    "nanvar_ddof_and_correction": (lambda a: np.nanvar(a, axis=1, ddof=1, correction=1), XN),
    "nanstd": (lambda a: np.nanstd(a, axis=1, where=MN, ddof=1), XN),
    "mask_wrong_shape": (lambda a: np.nanmean(a, axis=0, where=np.array([True, False])), XN),
    "mask_not_bool": (lambda a: np.nansum(a, axis=0, where=np.array([1, 0, 1])), XN),
}


@pytest.mark.parametrize("case", sorted(NAN_WHERE))
def test_nan_reductions_where_as_numpy(case):
    f, a = NAN_WHERE[case]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's "Mean of empty slice" ...
        want = _observe(f, a)
    got = _observe(adjit.jit(f), a)
    assert got[0] == want[0], (got, want)
    if want[0] == "ok":
        assert got[1].dtype == want[1].dtype and got[1].shape == want[1].shape
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12, equal_nan=True)
    else:
        assert HERE in got[1], got[1]


W3 = np.linspace(0.5, 2.0, 3)


def _nan_losses(N):
    """Scalar losses of nan-reductions with where= (N: numpy or jax.numpy); each nan-reduction
    reads the input itself, so a NaN input has derivative 0 in every library."""
    return {
        "nansum": lambda a: (N.nansum(a, axis=1, where=MN, initial=1.5) ** 2 * W3).sum(),
        "nanprod": lambda a: (N.nanprod(a, axis=0, where=MN) * W3).sum(),
        "nanmean": lambda a: (N.nanmean(a, axis=1, where=MN) ** 3 * W3).sum(),
        "nanmax": lambda a: (N.nanmax(a, axis=1, where=MN, initial=-3.0) * W3).sum(),
        "nanmin": lambda a: (N.nanmin(a, axis=0, where=MN, initial=10.0) * W3).sum(),
        "nanvar": lambda a: (N.nanvar(a, axis=1, where=MN) * W3).sum(),
        # (every column keeps two numbers: a std of one is sqrt at 0, whose derivative is nan)
        "nanstd": lambda a: (N.nanstd(a, axis=0, where=MN | np.eye(3, dtype=bool)[::-1])
                             * W3).sum(),
        "nanvar_all": lambda a: N.nanvar(a, where=MN),
    }


@pytest.mark.parametrize("name", sorted(_nan_losses(np)))
def test_nan_reductions_where_gradients_match_differences(name):
    f = _nan_losses(np)[name]
    g = np.asarray(adjit.grad(f)(XN))
    np.testing.assert_allclose(float(adjit.jit(f)(XN)), f(XN), rtol=1e-12)
    np.testing.assert_allclose(g, central_diff(f, XN), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(_nan_losses(np)))
def test_nan_reductions_where_gradients_match_jax(name):
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    g = np.asarray(adjit.grad(_nan_losses(np)[name])(XN))
    want = np.asarray(jax.grad(_nan_losses(jnp)[name])(jnp.asarray(XN)))
    np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ 6. ** with a broadcast exponent
WP = np.arange(12.0).reshape(3, 4) / 5 - 1
POWER = {  # (base, exponent): every orientation of a broadcast between them
    "x31_p4": (np.array([[0.5], [1.5], [2.0]]), np.array([1.0, 2.5, -0.5, 3.0])),
    "x31_p14": (np.array([[0.5], [1.5], [2.0]]), np.array([[1.0, 2.5, -0.5, 3.0]])),
    "x4_p31": (np.array([0.5, 1.5, 2.0, 2.5]), np.array([[1.0], [2.5], [-0.5]])),
    "x34_p4": (np.abs(WP) + 0.2, np.array([1.0, 2.5, -0.5, 0.0])),
    "x31_p34": (np.array([[0.5], [1.5], [2.0]]), WP * 2),
    "x0d_p34": (np.array(1.5), WP * 2),
    "x31_p0d": (np.array([[0.5], [1.5], [2.0]]), np.array(2.5)),
}
POW_FORMS = {
    "op": lambda N, a, b: a ** b,
    "power": lambda N, a, b: N.power(a, b),
    "float_power": lambda N, a, b: N.float_power(a, b),
}


def _pow_loss(N, form):
    f = POW_FORMS[form]
    return lambda a, b: (N.broadcast_to(f(N, a, b), (3, 4)) * WP).sum()


@pytest.mark.parametrize("form", sorted(POW_FORMS))
@pytest.mark.parametrize("case", sorted(POWER))
def test_power_broadcast_values_and_gradients(case, form):
    a, b = POWER[case]
    f = POW_FORMS[form]
    want = f(np, a, b)
    got = np.asarray(adjit.jit(lambda u, v: f(np, u, v))(a, b))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-14)
    loss = _pow_loss(np, form)
    ga, gb = adjit.grad(loss, argnums=(0, 1))(a, b)
    assert np.shape(ga) == np.shape(a) and np.shape(gb) == np.shape(b)
    np.testing.assert_allclose(ga, central_diff(lambda v: loss(v, b), a), rtol=1e-6)
    np.testing.assert_allclose(gb, central_diff(lambda v: loss(a, v), b), rtol=1e-6)


@pytest.mark.parametrize("case", sorted(POWER))
def test_power_broadcast_gradients_match_jax(case):
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    a, b = POWER[case]
    ours = adjit.grad(_pow_loss(np, "op"), argnums=(0, 1))(a, b)
    ref = jax.grad(_pow_loss(jnp, "op"), argnums=(0, 1))(jnp.asarray(a), jnp.asarray(b))
    for u, v in zip(ours, ref):
        np.testing.assert_allclose(u, np.asarray(v), rtol=1e-10)
    for k in (0, 1):  # second derivatives
        h = adjit.grad(lambda u, v: adjit.grad(_pow_loss(np, "op"), argnums=k)(u, v).sum(),
                       argnums=k)(a, b)
        hj = jax.grad(lambda u, v: jax.grad(_pow_loss(jnp, "op"), argnums=k)(u, v).sum(),
                      argnums=k)(jnp.asarray(a), jnp.asarray(b))
        np.testing.assert_allclose(h, np.asarray(hj), rtol=1e-9)


def test_power_edge_points_match_jax():
    """At a zero base: d/dx of x**0 is 0 and d/dp of 0**p is taken as 0 (JAX's choice); a
    negative base has no derivative in p (nan), as in JAX and in finite differences."""
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    a = np.array([[0.0], [-1.5], [2.0]])
    b = np.array([0.0, 1.0, 2.0, 3.0])
    loss, lj = _pow_loss(np, "op"), _pow_loss(jnp, "op")
    ours = adjit.grad(loss, argnums=(0, 1))(a, b)
    ref = jax.grad(lj, argnums=(0, 1))(jnp.asarray(a), jnp.asarray(b))
    np.testing.assert_allclose(ours[1], np.asarray(ref[1]), rtol=1e-12)
    # JAX's x-derivative at 0 is nan here (its 0 * log 0); ours is the exact one
    np.testing.assert_allclose(ours[0], central_diff(lambda v: loss(v, b), a), rtol=1e-6)
