"""np.linalg.qr on traced arrays: values and signs against NumPy bit for bit (geqrf + orgqr,
native and interpreter, vmap, f32 and f64, every mode), first and second derivatives in both
modes against JAX x64 (mode 'complete' of a tall matrix included)."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
from peers import require

jax = require("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

RNG = np.random.default_rng(160)


def _close(a, b, rtol=1e-9, atol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def _w(shape):
    return np.random.default_rng(1).standard_normal(shape)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 3), (3, 5), (2, 4, 4), (5, 1), (2, 0, 3), (3, 0)])
def test_qr_bit_for_bit_native_interpreter_vmap(dt, shape):
    a = RNG.standard_normal(shape).astype(dt)
    for mode in ("reduced", "complete", "r"):
        want = np.linalg.qr(a, mode=mode)
        want = (want,) if mode == "r" else tuple(want)
        for got in (adjit.jit(lambda x: np.linalg.qr(x * 1, mode=mode))(a),
                    adjit.vjp(lambda x: np.linalg.qr(x, mode=mode), a)[0],
                    adjit.vmap(lambda y: np.linalg.qr(y, mode=mode))(a[None])):
            got = (got,) if mode == "r" else tuple(got)
            assert len(got) == len(want)
            for g_, w_ in zip(got, want):
                g_ = np.asarray(g_).reshape(w_.shape)
                assert g_.dtype == w_.dtype
                np.testing.assert_array_equal(g_, w_)
    assert type(adjit.jit(lambda x: np.linalg.qr(x))(a)).__name__ == "QRResult"


def test_qr_is_native_geqrf_orgqr():
    from adjit.codegen.lower import lower
    from adjit.ir import extract, new_trace, AType
    from adjit.ir.core import Node, REGISTRY, bind
    with new_trace() as tr:
        x = Node(None, AType((5, 3), "f64"), None, tr)
        out = bind(REGISTRY["qr"], x, mode="complete")
        g = extract(list(out), tr, inputs=[x], name="qr")
    imports = lower(g)[1]["imports"]
    assert "lapack_dgeqrf" in imports and "lapack_dorgqr" in imports


CASES = {
    "q": lambda np_, a, mode: (np_.linalg.qr(a, mode=mode)[0] * _w(a.shape[:-1] + (
        a.shape[-2] if mode == "complete" else min(a.shape[-2:]),))).sum(),
    "r": lambda np_, a, mode: (np_.sin(np_.linalg.qr(a, mode=mode)[1])).sum(),
    "qr": lambda np_, a, mode: (np_.linalg.qr(a, mode=mode)[0] @
                                np_.cos(np_.linalg.qr(a, mode=mode)[1])).sum(),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("shape,mode", [((4, 3), "reduced"), ((2, 3, 3), "reduced"),
                                        ((3, 3), "complete"), ((2, 5, 2), "reduced"),
                                        ((3, 5), "reduced"), ((2, 2, 4), "complete"),
                                        ((5, 3), "complete"), ((2, 4, 2), "complete")])
def test_qr_value_grad_hessian_vs_jax(name, shape, mode):
    f = CASES[name]
    a = RNG.standard_normal(shape)
    fa = lambda x: f(np, x, mode)  # noqa: E731
    fj = lambda x: f(jnp, x, mode)  # noqa: E731
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


@pytest.mark.parametrize("tier", ["interp", "native"])
def test_qr_complete_tall_derivative_as_jax(tier, monkeypatch):
    # q's extra columns are those of LAPACK's Householder product (NumPy's and JAX's): a
    # smooth function of a where no reflector is the identity, whose derivative JAX 0.10
    # gives (arXiv 2409.13374); both Jacobians against JAX's and central differences of
    # NumPy's own qr, f64 and f32
    monkeypatch.setenv("ADJIT_TIER", tier)
    for shape in ((5, 3), (4, 1), (2, 6, 4)):
        a = RNG.standard_normal(shape)
        fq = lambda np_: lambda x: np_.linalg.qr(x, mode="complete")[0]  # noqa: E731
        want = jax.jacrev(fq(jnp))(a)
        _close(adjit.jacrev(fq(np))(a), want, 1e-8, 1e-9)
        _close(adjit.jit(adjit.jacfwd(fq(np)))(a), want, 1e-8, 1e-9)
        t = RNG.standard_normal(shape)
        fd = (np.linalg.qr(a + 1e-6 * t, mode="complete")[0] -
              np.linalg.qr(a - 1e-6 * t, mode="complete")[0]) / 2e-6
        _close(adjit.jvp(fq(np), (a,), (t,))[1], fd, 1e-6, 1e-7)
        g32 = adjit.grad(lambda x: (fq(np)(x) * _w(shape[:-1] + shape[-2:-1])).sum())(
            a.astype(np.float32))
        assert np.asarray(g32).dtype == np.float32
        _close(g32, jax.grad(lambda x: (fq(jnp)(x) * _w(shape[:-1] + shape[-2:-1])).sum())(a),
               2e-3, 2e-3)
        # r of the complete mode: its zero rows have no derivative
        fr = lambda np_: lambda x: np_.linalg.qr(x, mode="complete")[1]  # noqa: E731
        _close(adjit.jacrev(fr(np))(a), jax.jacrev(fr(jnp))(a), 1e-8, 1e-9)
    # a reflector that is the identity (a already upper triangular): Q_nn - I is singular,
    # the derivative of q's extra columns NaN, as JAX's
    a = np.triu(RNG.standard_normal((4, 2))) + np.eye(4, 2)
    ours = np.asarray(adjit.jacrev(fq(np))(a))
    theirs = np.asarray(jax.jacrev(fq(jnp))(a))
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))


def test_qr_modes_errors_are_numpys():
    with pytest.raises(ValueError, match="Unrecognized mode"):
        adjit.jit(lambda x: np.linalg.qr(x, mode="bogus"))(np.ones((3, 3)))
    with pytest.raises(NotImplementedError, match="raw"):
        adjit.jit(lambda x: np.linalg.qr(x, mode="raw"))(np.ones((3, 3)))
    with pytest.raises(np.linalg.LinAlgError) as theirs:
        np.linalg.qr(np.ones(3))
    with pytest.raises(np.linalg.LinAlgError) as ours:
        adjit.jit(lambda x: np.linalg.qr(x))(np.ones(3))
    assert str(theirs.value) in str(ours.value)
