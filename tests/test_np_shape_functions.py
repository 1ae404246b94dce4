"""NumPy's shape and indexing functions on traced arrays (issue 15 items 2-4): values and dtypes
against NumPy, second derivatives in both modes against JAX x64, native code against the
interpreter, vmap against a Python loop, `adjit.numpy` constructors, grad of a size-1 output,
and small programs in the spirit of HIPS autograd's examples against autograd itself."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import adjit
import adjit.numpy as anp
from adjit import grad, jacfwd, jacrev, jit, vmap

from peers import require

RNG = np.random.default_rng(15)
K = np.linspace(0.5, 1.5, 12).reshape(3, 4)

# name -> f(np, x) on x of shape (3, 4); smooth away from ties (random data has none)
FUNCS = {
    "roll": lambda np, x: np.roll(x, 1, axis=1) * K,
    "roll_flat": lambda np, x: np.roll(x, -5),
    "repeat": lambda np, x: np.repeat(x, np.array([2, 0, 1]), axis=0),
    "repeat_flat": lambda np, x: np.repeat(x, 2),
    "tile": lambda np, x: np.tile(x, (2, 1, 2)),
    "rot90": lambda np, x: np.rot90(x, 3),
    "diag": lambda np, x: np.diag(x, -1),
    "diag_matrix": lambda np, x: np.diag(x[0], 1),
    "diagonal": lambda np, x: np.diagonal(x, 1),
    "trace": lambda np, x: np.trace(x, -1),
    "triu": lambda np, x: np.triu(x, 1),
    "tril": lambda np, x: np.tril(x, -1),
    "kron": lambda np, x: np.kron(x[:2, :2], x[1:, 2:]),
    "cross": lambda np, x: np.cross(x[:, :3], x[:, 1:]),
    "cumprod": lambda np, x: np.cumprod(x, axis=1),
    "cumprod_flat": lambda np, x: np.cumprod(x),
    "diff": lambda np, x: np.diff(x, 2, axis=1),
    "sort": lambda np, x: np.sort(x, axis=0),
    "sort_flat": lambda np, x: np.sort(x, axis=None),
    "take_along_axis": lambda np, x: np.take_along_axis(x, np.argsort(x, axis=1), axis=1),
    "median": lambda np, x: np.median(x, axis=1),
    "median_all": lambda np, x: np.median(x),
    "percentile": lambda np, x: np.percentile(x, np.array([5.0, 50.0, 90.0]), axis=0),
    "quantile": lambda np, x: np.quantile(x, 0.4),
    "pad_constant": lambda np, x: np.pad(x, ((1, 0), (2, 1)), constant_values=1.5),
    "pad_edge": lambda np, x: np.pad(x, 2, mode="edge"),
    "pad_reflect": lambda np, x: np.pad(x, ((2, 1), (3, 3)), mode="reflect"),
    "pad_symmetric": lambda np, x: np.pad(x, 2, mode="symmetric"),
    "pad_wrap": lambda np, x: np.pad(x, ((4, 1), (0, 6)), mode="wrap"),
    "nansum": lambda np, x: np.nansum(x, axis=0),
    "nanmean": lambda np, x: np.nanmean(x, axis=1),
    "nanmax": lambda np, x: np.nanmax(x, axis=0),
    "nanvar": lambda np, x: np.nanvar(x, axis=1),
    "nanstd": lambda np, x: np.nanstd(x),
    "moveaxis": lambda np, x: np.moveaxis(x[None], 0, 2),
    "split": lambda np, x: np.concatenate(np.split(x, [1, 3], axis=1)[::-1], axis=1),
    "block": lambda np, x: np.block([[x, x * 2], [x[:, ::-1], x]]),
    "select": lambda np, x: np.select([x > 0.5, x < -0.5], [x ** 2, x * 3.0], default=0.25),
    "insert_delete": lambda np, x: np.delete(np.insert(x, 1, 2.0, axis=1), 3, axis=1),
    "linspace": lambda np, x: np.linspace(x[0, 0], x[1, 1], 6),
}
NAMES = sorted(FUNCS)


def _x(dtype=np.float64):
    return RNG.uniform(-1.5, 1.5, (3, 4)).astype(dtype)


def _loss(name):
    f = FUNCS[name]
    return lambda np_, x: np_.sum(np_.sin(f(np_, x)) * f(np_, x))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", NAMES)
def test_values_and_dtypes_match_numpy(name, dtype):
    x = _x(dtype)
    f = lambda a: FUNCS[name](np, a)  # noqa: E731
    want = f(x)
    for got in (jit(f)(x), jit(f)(x)):  # traced, then replayed
        assert got.dtype == want.dtype and got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-13,
                                   atol=1e-12)


@pytest.mark.parametrize("name", ["sort", "argsort", "repeat", "roll", "diag", "triu", "unique",
                                  "cumprod", "nonzero"])
def test_integer_operands_match_numpy(name):
    x = RNG.integers(-5, 6, (3, 4))
    f = {"sort": lambda a: np.sort(a), "argsort": lambda a: np.argsort(a, axis=0),
         "repeat": lambda a: np.repeat(a, 2, axis=1), "roll": lambda a: np.roll(a, 3),
         "diag": lambda a: np.diag(a), "triu": lambda a: np.triu(a),
         "unique": lambda a: np.unique(a), "cumprod": lambda a: np.cumprod(a, axis=0),
         "nonzero": lambda a: np.stack(np.nonzero(a))}[name]
    want, got = f(x), jit(f)(x)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", NAMES)
def test_second_derivatives_both_modes_vs_jax(name):
    jax = require("jax")
    import jax.numpy as jnp
    x = _x()
    loss = _loss(name)
    with jax.enable_x64(True):
        want = np.asarray(jax.hessian(lambda a: loss(jnp, a))(x))
    for how in (jacfwd, jacrev):
        got = how(grad(lambda a: loss(np, a)))(x)
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-9, err_msg=how.__name__)


@pytest.mark.parametrize("name", NAMES)
def test_native_matches_interpreter(name, monkeypatch):
    x = _x()
    f = lambda a: grad(lambda b: _loss(name)(np, b))(a)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback to the interpreter
        jf = jit(f)
        jf(x)
        native = jf(x)
    monkeypatch.setenv("ADJIT_DISABLE_JIT", "1")
    interp = jit(f)(x)
    np.testing.assert_allclose(native, interp, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_matches_a_python_loop(name):
    xs = RNG.uniform(-1.5, 1.5, (3, 3, 4))
    f = lambda a: FUNCS[name](np, a)  # noqa: E731
    got = vmap(f)(xs)
    want = np.stack([f(x) for x in xs])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


def test_sort_handles_ties_nan_and_descending_natively():
    x = np.array([[2.0, np.nan, 1.0, 2.0, -0.0, 0.0, np.nan, -3.0]])
    f = jit(lambda a: (np.sort(a, axis=1), np.argsort(a, axis=1)))
    for _ in range(2):
        v, i = f(x)
        np.testing.assert_array_equal(v, np.sort(x, axis=1))
        np.testing.assert_array_equal(i, np.argsort(x, axis=1, kind="stable"))


def test_sort_gradient_scatters_through_the_permutation():
    x = np.array([0.3, -1.2, 2.5, 0.1])
    w = np.array([1.0, 2.0, 3.0, 4.0])
    g = grad(lambda a: np.sum(np.sort(a) * w))(x)
    np.testing.assert_array_equal(g, w[np.argsort(np.argsort(x))])


def test_data_dependent_sizes_guard_a_replay():
    f = jit(lambda a: np.sum(a[np.nonzero(a > 0)] ** 2) + np.unique(np.floor(a)).size)
    x = np.array([1.0, -2.0, 3.0, 0.5])
    assert f(x) == pytest.approx(np.sum(x[x > 0] ** 2) + np.unique(np.floor(x)).size)
    y = np.array([-1.0, 2.0, 4.0, 0.25])  # three positive values, other unique count
    assert f(y) == pytest.approx(np.sum(y[y > 0] ** 2) + np.unique(np.floor(y)).size)


def test_unsupported_keywords_and_modes_are_refused():
    x = _x()
    with pytest.raises(NotImplementedError, match="mode='median'"):
        jit(lambda a: np.pad(a, 1, mode="median"))(x)
    with pytest.raises(TypeError, match="return_counts"):
        jit(lambda a: np.unique(a, return_counts=True))(x)
    with pytest.raises(TypeError, match="shift"):
        jit(lambda a: np.roll(a, a[0, 0].astype(int)))(x)
    with pytest.raises(TypeError, match="in place"):
        jit(lambda a: np.put_along_axis(a, np.zeros((3, 1), int), 1.0, 1))(x)


# --- adjit.numpy: arrays built from traced values (item 3) ---------------------------------------
def test_adjit_numpy_constructors_match_numpy_and_differentiate():
    x = np.array([0.5, -1.25, 2.0])

    def f(np_, a):
        m = np_.array([[a[0], 1.0], [a[1] * a[2], a[0] ** 2]])
        v = np_.asarray([a[2], 3.0, a[1]])
        c = np_.concatenate([a, [1.0, 2.0]])
        s = np_.stack([a[0], 2.0, a[1]])
        full = np_.full((2, 2), a[1])
        return np_.sum(m @ m) + np_.dot(v, v) + np_.sum(c ** 3) + np_.sum(s * s) + \
            np_.sum(full * m)
    assert jit(lambda a: f(anp, a))(x) == pytest.approx(f(np, x), rel=1e-13)
    ag = require("autograd")
    import autograd.numpy as agnp
    np.testing.assert_allclose(grad(lambda a: f(anp, a))(x), ag.grad(lambda a: f(agnp, a))(x),
                               rtol=1e-12)


def test_adjit_numpy_is_numpys_namespace():
    assert anp.pi == np.pi and anp.linalg is np.linalg and anp.float32 is np.float32
    assert anp.sum is np.sum and anp.where is np.where
    np.testing.assert_array_equal(anp.array([1, 2]), np.array([1, 2]))
    assert anp.array([1, 2]).dtype == np.array([1, 2]).dtype
    np.testing.assert_array_equal(anp.full(3, 2.5), np.full(3, 2.5))
    np.testing.assert_array_equal(anp.arange(5), np.arange(5))


def test_adjit_numpy_arange_with_a_traced_start_guards_its_length():
    f = jit(lambda a: np.sum(anp.arange(a, 4.0, 0.5) ** 2))
    for a in (1.0, 1.2, 0.3):
        assert f(a) == pytest.approx(np.sum(np.arange(a, 4.0, 0.5) ** 2), rel=1e-13)
    g = grad(lambda a: np.sum(anp.arange(a, 4.0, 0.5) ** 2))(1.0)
    assert g == pytest.approx(2 * np.sum(np.arange(1.0, 4.0, 0.5)), rel=1e-13)


def test_plain_numpy_constructors_point_to_adjit_numpy():
    x = np.array([1.0, 2.0])
    with pytest.raises(TypeError, match="import adjit.numpy as np"):
        jit(lambda a: np.array([a[0], a[1]]))(x)
    with pytest.raises(TypeError, match="import adjit.numpy as np"):
        jit(lambda a: np.full((2,), a[0]))(x)


# --- grad of a size-1 output (item 4) ------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1,), (1, 1)])
def test_grad_of_a_size_one_output_as_autograd(shape):
    ag = require("autograd")
    import autograd.numpy as agnp
    x = np.array([0.5, -1.0, 2.0])

    def f(np_, a):
        return np_.reshape(np_.sum(np_.sin(a) * a, keepdims=True), shape)
    v, g = adjit.value_and_grad(lambda a: f(np, a))(x)
    wv, wg = ag.value_and_grad(lambda a: f(agnp, a))(x)
    assert np.shape(v) == np.shape(wv) == shape
    np.testing.assert_allclose(v, wv, rtol=1e-14)
    np.testing.assert_allclose(g, wg, rtol=1e-14)
    np.testing.assert_allclose(jit(grad(lambda a: f(np, a)))(x), wg, rtol=1e-14)


def test_grad_of_other_non_scalar_outputs_is_still_refused():
    with pytest.raises(ValueError, match="scalar output"):
        grad(lambda a: a * 2)(np.array([1.0, 2.0]))


# --- programs in the spirit of HIPS autograd's examples ("Done when") ------------------------------
def _rnn_loss(np_, w, xs):
    """A small recurrent net over a sequence, its hidden state repeated per batch row."""
    h0 = np_.repeat(w[:1, :3], 2, axis=0)
    h = h0
    total = 0.0
    for t in range(xs.shape[0]):
        inp = np_.concatenate([xs[t], h], axis=1)
        h = np_.tanh(inp @ w[1:6, :3] + w[6, :3])
        out = h @ w[7:10, :1]
        total = total + np_.sum((out - xs[t][:, :1]) ** 2)
    return total


def _fluid_loss(np_, v):
    """A few steps of advection on a periodic grid: np.roll neighbours, np.floor cells."""
    u = v.reshape(6, 6)
    for _ in range(3):
        lap = (np_.roll(u, 1, axis=0) + np_.roll(u, -1, axis=0) + np_.roll(u, 1, axis=1) +
               np_.roll(u, -1, axis=1) - 4.0 * u)
        shift = np_.floor(u * 0.1 + 3.0)  # piecewise constant: no derivative
        u = u + 0.1 * lap + 0.01 * shift * u
    return np_.sum(u ** 2)


def _filled_loss(np_, a):
    """Build arrays from a traced scalar with full and array (define_gradient's spirit)."""
    b = np_.full((3, 2), a[0] * a[1])
    c = np_.array([a[0], a[1] ** 2, 1.5])
    return np_.sum(np_.log1p(b ** 2)) + np_.dot(c, c)


@pytest.mark.parametrize("program", ["rnn", "fluid", "filled"])
def test_autograd_style_programs_match_autograd(program):
    ag = require("autograd")
    import autograd.numpy as agnp
    rng = np.random.default_rng(7)
    if program == "rnn":
        w, xs = rng.normal(size=(10, 3)) * 0.5, rng.normal(size=(4, 2, 2))
        f, args = _rnn_loss, (w, xs)
    elif program == "fluid":
        f, args = _fluid_loss, (rng.normal(size=36),)
    else:
        f, args = _filled_loss, (np.array([0.7, -1.3]),)
    np_ = anp if program == "filled" else np  # np.full(shape, traced) needs adjit.numpy
    v, g = adjit.value_and_grad(lambda *a: f(np_, *a))(*args)
    wv, wg = ag.value_and_grad(lambda *a: f(agnp, *a))(*args)
    assert v == pytest.approx(wv, rel=1e-6)
    np.testing.assert_allclose(g, wg, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(jit(grad(lambda *a: f(np_, *a)))(*args), wg, rtol=1e-6,
                               atol=1e-9)
