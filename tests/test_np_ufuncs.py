"""Issue 15 item 1: NumPy's ufuncs on traced arrays and their Tensor-front meanings.

Values and dtypes against NumPy (special points included), native code against NumPy and the
interpreter, the math library's accuracy in ulps, first and second derivatives in both modes
against JAX (x64), conventions at discontinuities against JAX, vmap against a Python loop, and
the Tensor front against PyTorch (values, gradients, grad_fn names)."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import adjit
from adjit.codegen import mathlib
from adjit.ir import REGISTRY

from peers import require
from test_mathlib import kernel, ulp_error

SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, 3.0,
                    1e-310, -7.25, 1e300, 1000.0, 8.0])

# name, f(np, x[, y]), (x domain, y domain) for the gradient checks (away from discontinuities)
UNARY = [
    ("arcsin", lambda np, x: np.arcsin(x), (-0.9, 0.9)),
    ("arccos", lambda np, x: np.arccos(x), (-0.9, 0.9)),
    ("arctan", lambda np, x: np.arctan(x), (-3.0, 3.0)),
    ("arcsinh", lambda np, x: np.arcsinh(x), (-3.0, 3.0)),
    ("arccosh", lambda np, x: np.arccosh(x), (1.2, 4.0)),
    ("arctanh", lambda np, x: np.arctanh(x), (-0.9, 0.9)),
    ("sinh", lambda np, x: np.sinh(x), (-3.0, 3.0)),
    ("cosh", lambda np, x: np.cosh(x), (-3.0, 3.0)),
    ("exp2", lambda np, x: np.exp2(x), (-3.0, 3.0)),
    ("log2", lambda np, x: np.log2(x), (0.2, 4.0)),
    ("log10", lambda np, x: np.log10(x), (0.2, 4.0)),
    ("cbrt", lambda np, x: np.cbrt(x), (0.2, 4.0)),
    ("square", lambda np, x: np.square(x), (-3.0, 3.0)),
    ("reciprocal", lambda np, x: np.reciprocal(x), (0.2, 4.0)),
    ("sinc", lambda np, x: np.sinc(x), (-2.0, 2.0)),
    ("sinc_near_0", lambda np, x: np.sinc(x * 1e-3), (-2.0, 2.0)),
    ("deg2rad", lambda np, x: np.deg2rad(x) ** 2, (-3.0, 3.0)),
    ("rad2deg", lambda np, x: np.rad2deg(x) ** 2, (-3.0, 3.0)),
    ("degrees_radians", lambda np, x: np.degrees(x) * np.radians(x), (-3.0, 3.0)),
    ("floor_ceil_trunc_rint", lambda np, x: x * (np.floor(x) + np.ceil(x) + np.trunc(x) +
                                                 np.rint(x) + np.round(x, 1)), (0.1, 0.4)),
    ("nan_to_num", lambda np, x: np.nan_to_num(x) ** 2, (-3.0, 3.0)),
    ("positive", lambda np, x: np.positive(x) ** 3, (-3.0, 3.0)),
    ("float_power", lambda np, x: np.float_power(x, 2.5), (0.2, 4.0)),
    ("real_conj", lambda np, x: np.real(x) * np.conj(x) + np.imag(x), (-3.0, 3.0)),
]
BINARY = [
    ("arctan2", lambda np, x, y: np.arctan2(x, y), (-3.0, 3.0)),
    ("hypot", lambda np, x, y: np.hypot(x, y), (-3.0, 3.0)),
    ("logaddexp2", lambda np, x, y: np.logaddexp2(x, y), (-3.0, 3.0)),
    ("mod", lambda np, x, y: np.mod(x, y) * x, (0.3, 3.0)),
    ("remainder_neg", lambda np, x, y: np.remainder(x, -y) * y, (0.3, 3.0)),
    ("fmod", lambda np, x, y: np.fmod(-x, y) * y, (0.3, 3.0)),
    ("floor_divide", lambda np, x, y: np.floor_divide(x, y) * x * y, (0.3, 3.0)),
    ("divmod", lambda np, x, y: np.divmod(x, y)[1] * np.divmod(x, y)[0] + x, (0.3, 3.0)),
    ("operators", lambda np, x, y: (x % y) * (x // y) + (7.0 % y) * (2.0 // y), (0.3, 3.0)),
    ("fmax_fmin", lambda np, x, y: np.fmax(x, y) * np.fmin(x, y ** 2), (-3.0, 3.0)),
    ("copysign", lambda np, x, y: np.copysign(x, y) * x, (-3.0, 3.0)),
    ("heaviside", lambda np, x, y: np.heaviside(x, y) * x + np.heaviside(x * 0.0, y) * y,
     (-3.0, 3.0)),
    ("float_power2", lambda np, x, y: np.float_power(np.abs(x) + 0.5, y), (-2.0, 2.0)),
]
CASES = [(n, f, d, 1) for n, f, d in UNARY] + [(n, f, d, 2) for n, f, d in BINARY]
IDS = [c[0] for c in CASES]


def _args(case, dtype=np.float64, n=5):
    rng = np.random.default_rng(zlib.crc32(case[0].encode()))
    lo, hi = case[2]
    return [rng.uniform(lo, hi, n).astype(dtype) for _ in range(case[3])]


def _jnp_fn(case):
    def f(*a):
        import jax.numpy as jnp
        return jnp.sum(case[1](jnp, *a))
    return f


@pytest.fixture(scope="module")
def jax():
    j = require("jax")
    j.config.update("jax_enable_x64", True)
    return j


# --- values: NumPy ---------------------------------------------------------------------------
UFUNC_NAMES = ["arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "sinh", "cosh",
               "exp2", "log2", "log10", "cbrt", "square", "reciprocal", "deg2rad", "rad2deg",
               "degrees", "radians", "floor", "ceil", "trunc", "rint", "positive", "isfinite",
               "isnan", "isinf", "signbit", "conjugate"]
BINARY_NAMES = ["arctan2", "hypot", "logaddexp2", "mod", "remainder", "fmod", "floor_divide",
                "fmax", "fmin", "copysign", "heaviside", "float_power", "divmod"]
FUNCS = {"sinc": np.sinc, "fix": np.fix, "round": np.round, "around": np.around,
         "nan_to_num": np.nan_to_num, "real": np.real, "imag": np.imag, "conj": np.conj}
INTS = np.array([-7, -3, -1, 0, 1, 2, 5, 9])


def _assert_same(got, want, label, ulps=4, signed_zero=True):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (label, got.dtype, want.dtype)
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=label)
        return
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=label)
    ok = ~np.isnan(want)
    exact = ok & ((want == 0) | np.isinf(want))
    np.testing.assert_array_equal(got[exact], want[exact], err_msg=label)
    if signed_zero:
        np.testing.assert_array_equal(np.signbit(got[exact]), np.signbit(want[exact]),
                                      err_msg=f"sign of zero/inf: {label}")
    err = ulp_error(got[ok], want[ok].astype(np.float64), want.dtype.type)
    assert err.max(initial=0) <= ulps, (label, err.max())


def _dtypes_operands():
    return [SPECIAL, SPECIAL.astype(np.float32), INTS, INTS.astype(np.int32)]


@pytest.mark.parametrize("name", UFUNC_NAMES + list(FUNCS))
def test_unary_values_and_dtypes_match_numpy(name):
    fn = FUNCS.get(name) or getattr(np, name)
    for x in _dtypes_operands():
        if name == "sinc":  # sin beyond |x| = 2^43 is inaccurate natively (docs/codegen.md)
            x = x[~(np.abs(x) > 1e15)]
        with np.errstate(all="ignore"):
            want = fn(x)
        for mode in ("native", "interpreted", "vmap"):
            if mode == "native":
                got = adjit.jit(fn)(x)
            elif mode == "interpreted":
                got = _interpreted(fn, x)
            else:
                got = adjit.vmap(fn)(x)
            _assert_same(got, want, f"{name}({x.dtype}) {mode}",
                         ulps=2 if mode == "interpreted" else 4)


def _interpreted(fn, *args):
    """The graph `fn` records, run by the reference interpreter."""
    from adjit.ir import eval_graph
    g = adjit.make_ir(fn)(*args)
    outs = eval_graph(g, list(args))
    return outs[0] if len(outs) == 1 else tuple(outs)


@pytest.mark.parametrize("name", BINARY_NAMES)
def test_binary_values_and_dtypes_match_numpy(name):
    fn = getattr(np, name)
    xs, ys = [a.ravel() for a in np.meshgrid(SPECIAL, SPECIAL)]
    ix, iy = [a.ravel() for a in np.meshgrid(INTS, INTS)]
    pairs = [(xs, ys), (xs.astype(np.float32), ys.astype(np.float32)), (ix, iy),
             (ix.astype(np.int32), iy.astype(np.int32)), (xs, 2.5), (xs.astype(np.float32), 3),
             (ix, 3), (np.array([np.iinfo(np.int64).min]), np.array([-1]))]
    for x, y in pairs:
        with np.errstate(all="ignore"):
            want = fn(x, y)
        if np.asarray(want if not isinstance(want, tuple) else want[0]).dtype.name not in (
                "float32", "float64", "int32", "int64", "bool"):
            continue
        for mode, run in (("native", lambda: adjit.jit(lambda a: fn(a, y))(x)),
                          ("interpreted", lambda: _interpreted(lambda a: fn(a, y), x)),
                          ("vmap", lambda: adjit.vmap(lambda a: fn(a, y))(x)
                           if np.ndim(y) == 0 else adjit.vmap(fn)(x, y))):
            got = run()
            label = f"{name}({x.dtype}, {type(y).__name__}) {mode}"
            if isinstance(want, tuple):
                for g1, w1 in zip(got, want):
                    _assert_same(g1, w1, label, 2 if mode == "interpreted" else 4)
            else:
                # NumPy's fmax/fmin give either zero at a tie of +0 and -0 (its scalar and SIMD
                # loops differ), so their sign of zero is not compared
                _assert_same(got, want, label, 2 if mode == "interpreted" else 4,
                             signed_zero=name not in ("fmax", "fmin"))


def test_round_decimals_match_numpy():
    x = np.array([1.2345, -2.675, 1260.0, -1250.0, 0.5, 1.5, 2.5, np.nan, -0.0])
    for d in (-2, -1, 0, 1, 2, 3):
        for a in (x, x.astype(np.float32), np.array([1260, -1250, 1350, 7])):
            _assert_same(adjit.jit(lambda t: np.round(t, d))(a), np.round(a, d), f"round {d}",
                         ulps=0)
            _assert_same(adjit.jit(lambda t: np.around(t, decimals=d))(a), np.around(a, d),
                         f"around {d}", ulps=0)


def test_nan_to_num_keywords():
    x = np.array([np.nan, np.inf, -np.inf, 1.5], np.float32)
    for kw in ({}, {"nan": 2.0}, {"posinf": 9.0, "neginf": -9.0}, {"copy": False}):
        _assert_same(adjit.jit(lambda t: np.nan_to_num(t, **kw))(x), np.nan_to_num(x, **kw),
                     str(kw), ulps=0)


def test_unsupported_keywords_are_refused():
    x = np.array([1.0, 2.0])
    with pytest.raises(TypeError, match="where"):
        adjit.jit(lambda t: np.arcsin(t, where=t > 0))(x)
    with pytest.raises(TypeError, match="decimals"):
        adjit.jit(lambda t: np.round(t, 1.5))(x)


# --- native accuracy -------------------------------------------------------------------------
ULP = {"atan": (1, 1), "asin": (2, 1), "acos": (2, 1), "asinh": (2, 1), "acosh": (2, 1),
       "atanh": (2, 1), "sinh": (3, 1), "cosh": (2, 1), "exp2": (1, 1), "log2": (1, 1),
       "log10": (1, 1), "cbrt": (1, 1), "atan2": (2, 1), "hypot": (2, 1)}
REF = {"atan": np.arctan, "asin": np.arcsin, "acos": np.arccos, "asinh": np.arcsinh,
       "acosh": np.arccosh, "atanh": np.arctanh, "sinh": np.sinh, "cosh": np.cosh,
       "exp2": np.exp2, "log2": np.log2, "log10": np.log10, "cbrt": np.cbrt}
DOM = {"atan": (-1e3, 1e3), "asin": (-1, 1), "acos": (-1, 1), "asinh": (-1e6, 1e6),
       "acosh": (1, 1e6), "atanh": (-1, 1), "sinh": (-710, 710), "cosh": (-710, 710),
       "exp2": (-1074, 1023), "log2": (0, 1e300), "log10": (0, 1e300), "cbrt": (-1e300, 1e300)}


@pytest.mark.parametrize("dt", ["f64", "f32"])
@pytest.mark.parametrize("name", mathlib.UFUNC_UNARY)
def test_mathlib_unary_accuracy(name, dt):
    npdt = np.float64 if dt == "f64" else np.float32
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    lo, hi = DOM[name]
    parts = [rng.uniform(-1, 1, 20000), rng.uniform(-1e-6, 1e-6, 2000), rng.uniform(lo, hi, 40000),
             SPECIAL, -SPECIAL]
    if hi > 1e10:
        parts.append(np.exp(rng.uniform(np.log(1e-300), np.log(hi), 40000)) *
                     (rng.choice([1.0, -1.0], 40000) if lo < 0 else 1.0))
    with np.errstate(all="ignore"):
        x = np.concatenate(parts).astype(npdt)
        got = kernel(name, dt)(x)
        want = REF[name](x.astype(np.float64))
    _assert_same(got, want.astype(npdt), name, ulps=ULP[name][dt == "f32"])
    err = ulp_error(got, want, npdt)
    assert err[~np.isnan(want)].max() <= ULP[name][dt == "f32"]


def test_mathlib_exact_points():
    for name, x, want in (("log2", [8.0, 0.125, 2.0 ** 1000], [3.0, -3.0, 1000.0]),
                          ("log10", [1000.0, 1e-5, 1e22], [3.0, -5.0, 22.0]),
                          ("exp2", [3.0, -10.0, 0.0], [8.0, 2.0 ** -10, 1.0]),
                          ("cbrt", [27.0, -8.0, 1e-300], [3.0, -2.0, 1e-100])):
        np.testing.assert_array_equal(kernel(name, "f64")(np.array(x)), np.array(want))


@pytest.mark.parametrize("dt", ["f64", "f32"])
@pytest.mark.parametrize("name", ["atan2", "hypot"])
def test_mathlib_binary_accuracy(name, dt):
    npdt = np.float64 if dt == "f64" else np.float32
    rng = np.random.default_rng(3)
    xs, ys = [a.ravel() for a in np.meshgrid(SPECIAL, SPECIAL)]
    x = np.concatenate([rng.uniform(-10, 10, 30000), rng.standard_normal(10000) * 1e5, xs])
    y = np.concatenate([rng.uniform(-10, 10, 30000), rng.standard_normal(10000), ys])
    x, y = x.astype(npdt), y.astype(npdt)
    got = kernel(name, dt, 2)(x, y)
    want = getattr(np, {"atan2": "arctan2"}.get(name, name))(x.astype(np.float64),
                                                             y.astype(np.float64))
    _assert_same(got, want.astype(npdt), name, ulps=ULP[name][dt == "f32"])


def test_double_double_constants():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 200
    for (hi, lo), v in ((mathlib.LOG2E_DD, 1 / mpmath.log(2)),
                        (mathlib.LOG10E_DD, 1 / mpmath.log(10)), (mathlib.PI_DD, mpmath.pi),
                        (mathlib.PIO2_DD, mpmath.pi / 2)):
        assert abs(mpmath.mpf(hi) + lo - v) < mpmath.mpf(2) ** -105
    for c, hi, lo in mathlib.ATAN_C:
        assert abs(mpmath.mpf(hi) + lo - mpmath.atan(c)) < mpmath.mpf(2) ** -105


# --- derivatives against JAX -------------------------------------------------------------------
def _adjit_sum(case):
    return lambda *a: np.sum(case[1](np, *a))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_first_and_second_derivatives_vs_jax(jax, case):
    if case[0] == "floor_ceil_trunc_rint":
        pytest.skip("jax.numpy has no fix; trunc/rint/round covered by other cases")
    args = _args(case)
    n = len(args)
    argnums = tuple(range(n))
    f, jf = _adjit_sum(case), _jnp_fn(case)
    g = adjit.grad(f, argnums=argnums)(*args)
    jg = jax.grad(jf, argnums=argnums)(*args)
    for a, b in zip(g, jg):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-9, atol=1e-12)
    # forward mode: jvp along a direction
    t = [np.linspace(0.5, 1.5, a.size) for a in args]
    _, jv = adjit.jvp(f, args, t)
    _, jjv = jax.jvp(jf, tuple(args), tuple(t))
    np.testing.assert_allclose(jv, np.asarray(jjv), rtol=1e-9, atol=1e-12)
    # second order: reverse over reverse (hessian) and forward over reverse
    h = adjit.hessian(lambda x: f(x, *args[1:]))(args[0])
    jh = jax.hessian(lambda x: jf(x, *args[1:]))(args[0])
    np.testing.assert_allclose(h, np.asarray(jh), rtol=1e-8, atol=1e-10)
    fr = adjit.jacfwd(adjit.grad(lambda x: f(x, *args[1:])))(args[0])
    np.testing.assert_allclose(fr, np.asarray(jh), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients_native_vmap_and_f32(case):
    args = _args(case)
    f = _adjit_sum(case)
    argnums = tuple(range(len(args)))
    g = adjit.grad(f, argnums=argnums)(*args)
    gj = adjit.jit(adjit.grad(f, argnums=argnums))(*args)
    for a, b in zip(g, gj):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # vmap of the elementwise function against a Python loop
    fn = lambda *a: case[1](np, *a)  # noqa: E731
    got = adjit.vmap(fn)(*[a.reshape(5, 1) for a in args])
    want = np.stack([fn(*[a[i:i + 1] for a in args]) for i in range(5)])
    np.testing.assert_allclose(got, want, rtol=1e-13)
    g32 = adjit.grad(f, argnums=argnums)(*[a.astype(np.float32) for a in args])
    for a, b in zip(g32, g):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5)


# conventions at discontinuities and special points (docs/ir.md), each against JAX x64
POINTS = [
    ("floor_divide", lambda np, x, y: np.floor_divide(x, y), [6.0, -6.0, 0.0], [3.0, 3.0, 2.0]),
    ("remainder", lambda np, x, y: np.remainder(x, y), [6.0, -6.0, 5.0, -5.0], [3.0, 3.0, -3.0, 3.0]),
    ("fmod", lambda np, x, y: np.fmod(x, y), [6.0, -6.0, -5.0], [3.0, 3.0, 3.0]),
    ("fmax", lambda np, x, y: np.fmax(x, y), [1.0, np.nan, 1.0], [1.0, 1.0, np.nan]),
    ("fmin", lambda np, x, y: np.fmin(x, y), [1.0, np.nan, 1.0], [1.0, 1.0, np.nan]),
    ("copysign", lambda np, x, y: np.copysign(x, y), [0.0, 0.0, -0.0, np.nan], [1.0, -1.0, 1.0, 1.0]),
    ("heaviside", lambda np, x, y: np.heaviside(x, y), [0.0, -1.0, 1.0], [0.5, 0.5, 0.5]),
    ("hypot", lambda np, x, y: np.hypot(x, y), [0.0, 3.0], [0.0, 0.0]),
    ("logaddexp2", lambda np, x, y: np.logaddexp2(x, y), [1.0, 2.0], [1.0, -1.0]),
    ("round_half", lambda np, x, y: np.round(x) + np.rint(y), [0.5, 1.5, 2.5], [0.5, -0.5, 1.5]),
    ("trunc", lambda np, x, y: np.trunc(x) * y, [1.0, -2.0, 0.0], [1.0, 2.0, 3.0]),
    ("nan_to_num", lambda np, x, y: np.nan_to_num(x) * y, [np.inf, -np.inf, np.nan], [1.0, 1.0, 1.0]),
    ("arctan2_origin", lambda np, x, y: np.arctan2(x, y), [0.0, 1.0], [0.0, 0.0]),
    ("cbrt_zero", lambda np, x, y: np.cbrt(x) * y, [0.0, 1.0], [1.0, 1.0]),
    ("sinc_zero", lambda np, x, y: np.sinc(x) * y, [0.0, 1.0], [1.0, 1.0]),
]


@pytest.mark.parametrize("point", POINTS, ids=[p[0] for p in POINTS])
def test_conventions_at_discontinuities_vs_jax(jax, point):
    import jax.numpy as jnp
    name, fn, xs, ys = point
    x, y = np.array(xs), np.array(ys)
    with np.errstate(all="ignore"):
        want = fn(np, x, y)
    np.testing.assert_array_equal(adjit.jit(lambda a, b: fn(np, a, b))(x, y), want)
    g = adjit.grad(lambda a, b: np.sum(fn(np, a, b)), argnums=(0, 1))(x, y)
    jg = jax.grad(lambda a, b: jnp.sum(fn(jnp, a, b)), argnums=(0, 1))(x, y)
    for a, b in zip(g, jg):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-15, atol=0, err_msg=name)
    if name == "sinc_zero":  # the second derivative at 0 is the series' -pi^2/3, as JAX
        h = adjit.grad(adjit.grad(lambda a: np.sinc(a)))(0.0)
        assert h == pytest.approx(float(jax.grad(jax.grad(jnp.sinc))(0.0)), rel=1e-12)


# --- the Tensor front against PyTorch -------------------------------------------------------------
TORCH = [
    ("asin", lambda m, x, y: m.asin(x * 0.4)), ("arcsin", lambda m, x, y: m.arcsin(x * 0.4)),
    ("acos", lambda m, x, y: m.acos(x * 0.4)), ("atan", lambda m, x, y: m.atan(x)),
    ("arctan", lambda m, x, y: m.arctan(x)), ("asinh", lambda m, x, y: m.asinh(x)),
    ("acosh", lambda m, x, y: m.acosh(x.abs() + 1)), ("atanh", lambda m, x, y: m.atanh(x * 0.4)),
    ("sinh", lambda m, x, y: m.sinh(x)), ("cosh", lambda m, x, y: x.cosh()),
    ("atan2", lambda m, x, y: m.atan2(x, y)), ("arctan2", lambda m, x, y: x.arctan2(y)),
    ("hypot", lambda m, x, y: m.hypot(x, y)), ("fmod", lambda m, x, y: m.fmod(x, y)),
    ("fmod_scalar", lambda m, x, y: m.fmod(x, 0.7)),
    ("remainder", lambda m, x, y: m.remainder(x, y)), ("percent", lambda m, x, y: x % y),
    ("remainder_scalar", lambda m, x, y: x.remainder(0.7)),
    ("trunc", lambda m, x, y: m.trunc(x * 3) * x), ("fix", lambda m, x, y: m.fix(x * 3) * x),
    ("round", lambda m, x, y: m.round(x * 3) * x),
    ("round_decimals", lambda m, x, y: m.round(x, decimals=1) * x),
    ("copysign", lambda m, x, y: m.copysign(x, y)), ("fmax", lambda m, x, y: m.fmax(x, y)),
    ("fmin", lambda m, x, y: m.fmin(x, y)), ("nan_to_num", lambda m, x, y: m.nan_to_num(x / y)),
    ("clamp", lambda m, x, y: m.clamp(x, -0.5, 0.5)),
    ("float_power", lambda m, x, y: m.float_power(x.abs(), y)),
    ("float_power_scalar", lambda m, x, y: m.float_power(x, 2)),
    ("sinc", lambda m, x, y: m.sinc(x)), ("deg2rad", lambda m, x, y: m.deg2rad(x)),
    ("rad2deg", lambda m, x, y: m.rad2deg(x)), ("logaddexp2", lambda m, x, y: m.logaddexp2(x, y)),
    ("exp2", lambda m, x, y: m.exp2(x)), ("log2", lambda m, x, y: m.log2(y.abs())),
    ("log10", lambda m, x, y: m.log10(y.abs())), ("square", lambda m, x, y: m.square(x)),
    ("reciprocal", lambda m, x, y: m.reciprocal(y)), ("frac", lambda m, x, y: m.frac(x * 3)),
]


@pytest.mark.parametrize("case", TORCH, ids=[c[0] for c in TORCH])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tensor_front_vs_torch(case, dtype):
    torch = require("torch")
    xs = np.array([0.5, -1.2, 2.05, -0.3, 1.7], dtype)
    ys = np.array([1.5, 0.7, -2.0, -0.45, 0.9], dtype)
    res = []
    for m in (adjit, torch):
        x = m.tensor(xs, requires_grad=True)
        y = m.tensor(ys, requires_grad=True)
        r = case[1](m, x, y)
        (r * m.tensor(np.arange(1.0, 6.0, dtype=dtype))).sum().backward()
        res.append((r.detach().numpy(), str(r.dtype).split(".")[-1], type(r.grad_fn).__name__,
                    None if x.grad is None else x.grad.numpy(),
                    None if y.grad is None else y.grad.numpy()))
    a, t = res
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(a[0], t[0], rtol=tol, atol=tol)
    assert a[1:3] == t[1:3]
    for u, v in zip(a[3:], t[3:]):
        assert (u is None) == (v is None)
        if u is not None:
            np.testing.assert_allclose(u, v, rtol=tol * 10, atol=tol)


def test_tensor_float_tests_and_integer_inputs_vs_torch():
    torch = require("torch")
    v = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.5, -2.0])
    i = np.array([-7, -2, 0, 3, 5])
    for name in ("isnan", "isinf", "isfinite", "signbit"):
        for a in (v, v.astype(np.float32), i):
            got = getattr(adjit, name)(adjit.tensor(a)).numpy()
            np.testing.assert_array_equal(got, getattr(torch, name)(torch.tensor(a)).numpy())
    for name in ("atan2", "copysign", "fmod", "remainder", "hypot"):
        if name == "hypot":
            continue  # PyTorch: hypot needs floats
        got = getattr(adjit, name)(adjit.tensor(i), adjit.tensor(np.array([2, -3, 4, 2, 3])))
        want = getattr(torch, name)(torch.tensor(i), torch.tensor(np.array([2, -3, 4, 2, 3])))
        assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    for name in ("asin", "exp2", "log2", "trunc", "sinh"):
        got = getattr(adjit, name)(adjit.tensor(i))
        want = getattr(torch, name)(torch.tensor(i))
        assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, equal_nan=True)


def test_every_new_primitive_is_registered_with_a_lowering():
    from adjit.codegen.lower import LOWERINGS
    for name in ("asin", "acos", "atan", "asinh", "acosh", "atanh", "sinh", "cosh", "exp2",
                 "log2", "log10", "cbrt", "trunc", "rint", "atan2", "hypot", "copysign", "fmax",
                 "fmin", "fmod", "remainder", "floor_divide", "divmod"):
        assert name in REGISTRY and name in LOWERINGS
