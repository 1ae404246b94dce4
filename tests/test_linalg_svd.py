"""np.linalg.svd / norm / pinv / lstsq on traced arrays: values and signs against NumPy (bit
for bit, native and interpreter), errors as NumPy's, first and second derivatives in both modes
against JAX x64 (degenerate points included), vmap against a loop."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
from peers import require

jax = require("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

RNG = np.random.default_rng(116)


def _close(a, b, rtol=1e-9, atol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def _w(shape):
    return np.random.default_rng(1).standard_normal(shape)


def _abs_u(np_, a):
    # singular vectors are defined up to sign: differentiate a sign-invariant function
    u, s, vh = np_.linalg.svd(a, full_matrices=False)
    return (np_.abs(u) * _w(u.shape)).sum() + (s * _w(s.shape)).sum() + \
        ((u * vh[..., :, :1].swapaxes(-1, -2)) ** 2 * _w(u.shape)).sum()


CASES = {
    "svd_uv": _abs_u,
    "svd_vals": lambda np_, a: (np_.linalg.svd(a, compute_uv=False) * _w(a.shape[:-2] + (min(a.shape[-2:]),))).sum(),
    "svd_recon": lambda np_, a: (np_.sin(np_.linalg.svd(a, full_matrices=False)[0]
                                         @ np_.linalg.svd(a, full_matrices=False)[2])).sum(),
    "norm2": lambda np_, a: np_.linalg.norm(a, 2, axis=(-2, -1)).sum(),
    "norm_m2": lambda np_, a: np_.linalg.norm(a, -2, axis=(-1, -2)).sum(),
    "norm_nuc": lambda np_, a: np_.linalg.norm(a, "nuc", axis=(-2, -1)).sum(),
    "pinv": lambda np_, a: (np_.linalg.pinv(a) * _w(a.shape[:-2] + a.shape[-1:] + a.shape[-2:-1])).sum(),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("shape", [(4, 3), (3, 5), (2, 3, 3)])
def test_value_grad_hessian_vs_jax(name, shape):
    f = CASES[name]
    a = RNG.standard_normal(shape)
    fa = lambda x: f(np, x)  # noqa: E731
    fj = lambda x: f(jnp, x)  # noqa: E731
    _close(fa(a), fj(a))
    _close(adjit.jit(fa)(a), fj(a))
    g = jax.grad(fj)(a)
    _close(adjit.grad(fa)(a), g, rtol=1e-8, atol=1e-9)
    _close(adjit.jit(adjit.grad(fa))(a), g, rtol=1e-8, atol=1e-9)
    t = np.random.default_rng(2).standard_normal(shape)
    _close(adjit.jvp(fa, (a,), (t,))[1], jax.jvp(fj, (a,), (t,))[1], rtol=1e-8, atol=1e-9)
    hv = jax.jvp(jax.grad(fj), (a,), (t,))[1]
    _close(adjit.jvp(adjit.grad(fa), (a,), (t,))[1], hv, rtol=1e-6, atol=1e-7)
    _close(adjit.grad(lambda x: (adjit.grad(fa)(x) * t).sum())(a), hv, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 3), (3, 5), (2, 4, 4), (5, 1), (2, 0, 3)])
def test_svd_bit_for_bit_native_interpreter_vmap(dt, shape):
    a = RNG.standard_normal(shape).astype(dt)
    for fm in (False, True):
        want = np.linalg.svd(a, full_matrices=fm)
        for got in (adjit.jit(lambda x: np.linalg.svd(x * 1, full_matrices=fm))(a),
                    adjit.vjp(lambda x: np.linalg.svd(x, full_matrices=fm), a)[0],
                    adjit.vmap(lambda y: np.linalg.svd(y, full_matrices=fm))(a[None])):
            for g_, w_ in zip(got, want):
                g_ = np.asarray(g_).reshape(w_.shape)
                assert g_.dtype == w_.dtype
                np.testing.assert_array_equal(g_, w_)
    sv = adjit.jit(lambda x: np.linalg.svd(x * 1, compute_uv=False))(a)
    np.testing.assert_array_equal(sv, np.linalg.svd(a, compute_uv=False))
    assert sv.dtype == dt


def test_svd_is_native_gesdd():
    from adjit.codegen.lower import lower
    from adjit.ir import extract, new_trace, AType
    from adjit.ir.core import Node, REGISTRY, bind
    for name, ps in (("svd", {"full_matrices": True}), ("svdvals", {})):
        with new_trace() as tr:
            x = Node(None, AType((3, 4), "f64"), None, tr)
            out = bind(REGISTRY[name], x, **ps)
            g = extract(list(out) if isinstance(out, tuple) else [out], tr, inputs=[x], name=name)
        assert "lapack_dgesdd" in lower(g)[1]["imports"]


ORDS_VEC = [None, 2, 1, -1, np.inf, -np.inf, 0, 3, 0.5, -2]
ORDS_MAT = [None, "fro", 1, -1, 2, -2, np.inf, -np.inf, "nuc"]


def test_norm_every_ord_and_axis_vs_numpy_and_jax():
    x = RNG.standard_normal((2, 3, 4))
    cases = [(o, ax) for o in ORDS_VEC for ax in (0, 1, -1, (2,))] + \
        [(o, ax) for o in ORDS_MAT for ax in ((0, 1), (1, 0), (-1, -2), (2, 0))] + \
        [(None, None)]
    for o, ax in cases:
        for kd in (False, True):
            want = np.linalg.norm(x, o, ax, kd)
            got = adjit.jit(lambda v: np.linalg.norm(v, o, ax, kd))(x)
            assert got.shape == want.shape, (o, ax, kd)
            _close(got, want, rtol=1e-12, atol=1e-12)
        if o == 0:
            continue
        want = np.linalg.norm(x, o, ax)
        fj = lambda v: (jnp.linalg.norm(v, o, ax) * _w(want.shape)).sum()  # noqa: E731
        fa = lambda v: (np.linalg.norm(v, o, ax) * _w(want.shape)).sum()  # noqa: E731
        _close(adjit.grad(fa)(x), jax.grad(fj)(x), rtol=1e-8, atol=1e-10)
    for o in (None, "fro", 2, 1, np.inf, "nuc", -2):
        m = x[0]
        _close(adjit.jit(lambda v: np.linalg.norm(v, o))(m), np.linalg.norm(m, o), 1e-12)
    v = x[0, 0]
    for o in (None, 2, 1, np.inf, 3):
        _close(adjit.jit(lambda y: np.linalg.norm(y, o))(v), np.linalg.norm(v, o), 1e-12)


@pytest.mark.parametrize("bad", [dict(ord="fro", axis=0), dict(ord=3, axis=(0, 1)),
                                 dict(ord=None, axis=(0, 0)), dict(ord=2, axis=None),
                                 dict(ord=1, axis=(0, 1, 2))])
def test_norm_errors_are_numpys(bad):
    x = np.ones((2, 3, 4))
    with pytest.raises(ValueError) as theirs:
        np.linalg.norm(x, **bad)
    with pytest.raises(ValueError) as ours:
        adjit.grad(lambda v: np.linalg.norm(v, **bad).sum())(x)
    assert str(theirs.value) in str(ours.value)


def test_pinv_rcond_rtol_hermitian_vs_numpy():
    a = RNG.standard_normal((2, 5, 3))
    a[1, :, 2] = a[1, :, 0]  # rank deficient
    for kw in ({}, {"rcond": 1e-3}, {"rtol": None}, {"rtol": 0.3}, {"rcond": np.array([1e-2, 0.5])}):
        _close(adjit.jit(lambda x: np.linalg.pinv(x, **kw))(a), np.linalg.pinv(a, **kw))
    s = RNG.standard_normal((4, 4))
    s = s + s.T
    _close(adjit.jit(lambda x: np.linalg.pinv(x, hermitian=True))(s),
           np.linalg.pinv(s, hermitian=True))
    for fm, cuv in ((True, True), (False, False)):
        got = adjit.jit(lambda x: np.linalg.svd(x, fm, cuv, hermitian=True))(s)
        want = np.linalg.svd(s, fm, cuv, hermitian=True)
        for g_, w_ in zip(got if cuv else [got], want if cuv else [want]):
            _close(g_, w_, 1e-12, 1e-12)
    with pytest.raises(ValueError, match="can't be both set"):
        adjit.jit(lambda x: np.linalg.pinv(x, rcond=0.1, rtol=0.1))(a)
    # the derivative of pinv where singular values are cut: JAX's (the cut ones contribute 0)
    f = lambda np_: lambda x: (np_.linalg.pinv(x, rtol=1e-6) * _w((2, 3, 5))).sum()  # noqa: E731
    _close(adjit.grad(f(np))(a), jax.grad(f(jnp))(a), rtol=1e-7, atol=1e-9)


def test_lstsq_vs_numpy_and_jax():
    a = RNG.standard_normal((6, 3))
    for b in (RNG.standard_normal(6), RNG.standard_normal((6, 2))):
        want = np.linalg.lstsq(a, b)
        for f in (lambda x, y: np.linalg.lstsq(x, y), adjit.jit(lambda x, y: np.linalg.lstsq(x, y))):
            got = f(a, b) if f.__name__ != "<lambda>" else adjit.jit(f)(a, b)
            assert len(got) == 4
            for g_, w_ in zip(got, want):
                assert np.shape(g_) == np.shape(w_)
                _close(g_, w_, 1e-10, 1e-12)
        fa = lambda np_: lambda x: (np_.linalg.lstsq(x, b)[0] ** 2).sum()  # noqa: E731
        _close(adjit.grad(fa(np))(a), jax.grad(fa(jnp))(a), rtol=1e-8, atol=1e-10)
    # rank deficient and wide: residuals empty, rank as NumPy's
    d = a.copy()
    d[:, 2] = d[:, 1]
    jl = adjit.jit(lambda x, y: np.linalg.lstsq(x, y))
    for m in (d, a.T):
        b = RNG.standard_normal(m.shape[0])
        got, want = jl(m, b), np.linalg.lstsq(m, b)
        for g_, w_ in zip(got, want):
            assert np.shape(g_) == np.shape(w_)
            _close(g_, w_, 1e-9, 1e-10)
    # the same compiled function on a full-rank matrix after a rank-deficient one (a guard
    # re-specialises: the residuals' shape depends on the rank)
    b = RNG.standard_normal(6)
    for m in (d, a, d):
        for g_, w_ in zip(jl(m, b), np.linalg.lstsq(m, b)):
            assert np.shape(g_) == np.shape(w_)
            _close(g_, w_, 1e-9, 1e-10)
    with pytest.raises(np.linalg.LinAlgError, match="Incompatible dimensions"):
        jl(a, np.ones(5))


def test_degenerate_singular_values_as_jax():
    # repeated singular values: JAX zeroes the 1/(s_j^2 - s_i^2) terms; a zero singular value
    # of a tall matrix divides by zero (inf/NaN), as JAX's
    for a in (np.diag([2.0, 2.0, 1.0]), np.eye(3), np.vstack([np.diag([1.0, 0.0]), [[0, 0]]])):
        for f in (lambda np_: lambda x: (np_.linalg.svd(x, full_matrices=False)[0] * _w(
                      (a.shape[0], min(a.shape)))).sum(),
                  lambda np_: lambda x: np_.linalg.svd(x, compute_uv=False).sum()):
            ours = np.asarray(adjit.grad(f(np))(a))
            theirs = np.asarray(jax.grad(f(jnp))(a))
            np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs))
            fin = np.isfinite(theirs)
            _close(ours[fin], theirs[fin])
    # full_matrices=True of a non-square matrix: no derivative (JAX raises too)
    with pytest.raises(NotImplementedError, match="full_matrices=False"):
        adjit.grad(lambda x: np.linalg.svd(x)[0].sum())(np.ones((3, 2)))


def test_svd_errors_are_numpys():
    with pytest.raises(np.linalg.LinAlgError) as theirs:
        np.linalg.svd(np.ones(3))
    with pytest.raises(np.linalg.LinAlgError) as ours:
        adjit.jit(lambda x: np.linalg.svd(x * 1.0))(np.ones(3))
    assert str(theirs.value) in str(ours.value)
    bad = np.full((3, 3), np.nan)
    with pytest.raises(np.linalg.LinAlgError) as theirs:
        np.linalg.svd(bad)
    for wrap in (adjit.jit, lambda f: f):
        with pytest.raises(np.linalg.LinAlgError) as ours:
            wrap(lambda x: np.linalg.svd(x * 1.0))(bad)
        assert str(theirs.value) in str(ours.value)
