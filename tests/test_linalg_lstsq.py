"""np.linalg.lstsq through LAPACK gelsd as NumPy's `_umath_linalg` calls it: every result
(x, residuals, rank, s) NumPy's bit for bit, shapes and dtypes included, in the interpreter
and in native code, f32 and f64, rank-deficient and empty inputs; NumPy's errors; first and
second derivatives in both modes against JAX x64 (tall, square, wide; where JAX is finite at
rank-deficient points)."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
from peers import require

jax = require("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

RNG = np.random.default_rng(1616)
TIERS = ("interp", "native")


def _close(a, b, rtol=1e-8, atol=1e-9):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def _w(shape):
    return np.random.default_rng(1).standard_normal(shape)


def _deficient(m, n, r):
    return RNG.standard_normal((m, r)) @ RNG.standard_normal((r, n))


def _same(got, want):
    assert len(got) == len(want) == 4
    for g_, w_ in zip(got, want):
        g_, w_ = np.asarray(g_), np.asarray(w_)
        assert (g_.shape, g_.dtype) == (w_.shape, w_.dtype)
        np.testing.assert_array_equal(g_, w_)


SHAPES = [((6, 3), (6,)), ((6, 3), (6, 2)), ((3, 5), (3, 2)), ((4, 4), (4,)),
          ((60, 7), (60, 3)), ((7, 60), (7, 3)), ((1, 1), (1,)), ((3, 0), (3, 2)),
          ((0, 3), (0,)), ((0, 3), (0, 2)), ((3, 2), (3, 0))]


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_lstsq_bit_for_bit(tier, dt, monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", tier)
    cases = [(RNG.standard_normal(sa), RNG.standard_normal(sb)) for sa, sb in SHAPES]
    cases += [(_deficient(6, 4, 2), RNG.standard_normal((6, 2))),      # rank 2 < n: no residuals
              (_deficient(3, 5, 2), RNG.standard_normal(3)),
              (np.zeros((4, 3)), RNG.standard_normal(4)),
              (np.diag([1.0, 1e-17, 1.0]), np.ones(3))]
    for i, (a, b) in enumerate(cases):
        a, b = a.astype(dt), b.astype(dt)
        _same(adjit.jit(lambda x, y: np.linalg.lstsq(x, y))(a, b), np.linalg.lstsq(a, b))
        for rcond in (0.1, -1, 2.0, np.float64(1e-3)) if i in (1, 2, 11) else ():
            _same(adjit.jit(lambda x, y: np.linalg.lstsq(x, y, rcond=rcond))(a, b),
                  np.linalg.lstsq(a, b, rcond=rcond))
    # mixed and integer operands: computed in f64, as NumPy
    a, b = RNG.standard_normal((5, 3)).astype(np.float32), RNG.standard_normal(5)
    _same(adjit.jit(lambda x, y: np.linalg.lstsq(x, y))(a, b), np.linalg.lstsq(a, b))
    ai = RNG.integers(-3, 4, (5, 2))
    _same(adjit.jit(lambda x: np.linalg.lstsq(x, x[:, 0]))(ai), np.linalg.lstsq(ai, ai[:, 0]))


def test_lstsq_is_native_gelsd():
    from adjit.codegen.lower import lower
    from adjit.ir import extract, new_trace, AType
    from adjit.ir.core import Node, REGISTRY, bind
    with new_trace() as tr:
        x = Node(None, AType((5, 3), "f64"), None, tr)
        y = Node(None, AType((5, 2), "f64"), None, tr)
        out = bind(REGISTRY["lstsq"], x, y, rcond=1e-3)
        g = extract(list(out), tr, inputs=[x, y], name="lstsq")
    imports = lower(g)[1]["imports"]  # + the BLAS pool guard around the call (speed.md F12)
    assert [i for i in imports if i.startswith("lapack_")] == ["lapack_dgelsd"]


@pytest.mark.parametrize("tier", TIERS)
def test_lstsq_errors_are_numpys(tier, monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", tier)
    jl = adjit.jit(lambda x, y: np.linalg.lstsq(x, y))
    bad = [(np.ones((2, 3, 2)), np.ones((2, 3))), (np.ones(3), np.ones(3)),
           (np.ones((3, 2)), np.ones(4)), (np.full((3, 2), np.nan), np.ones(3))]
    for a, b in bad:
        with pytest.raises(np.linalg.LinAlgError) as theirs:
            np.linalg.lstsq(a, b)
        with pytest.raises(np.linalg.LinAlgError) as ours:
            jl(a, b)
        assert str(theirs.value) in str(ours.value)


def _loss(np_, a, b, which):
    x, res, _, s = np_.linalg.lstsq(a, b)
    out = (np_.sin(x) * _w(x.shape)).sum()
    if "s" in which:
        out = out + (s * _w(s.shape)).sum()
    if "res" in which:
        out = out + (res * _w(res.shape)).sum()
    return out


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("sa,sb,which", [((6, 3), (6, 2), "x,s,res"), ((6, 3), (6,), "x,res"),
                                         ((4, 4), (4, 2), "x,s"), ((3, 5), (3, 2), "x,s"),
                                         ((2, 4), (2,), "x")])
def test_lstsq_derivatives_vs_jax(tier, sa, sb, which, monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", tier)
    a, b = RNG.standard_normal(sa), RNG.standard_normal(sb)
    ta, tb = RNG.standard_normal(sa), RNG.standard_normal(sb)
    fa = lambda x, y: _loss(np, x, y, which)  # noqa: E731
    fj = lambda x, y: _loss(jnp, x, y, which)  # noqa: E731
    _close(fa(a, b), fj(a, b))
    want = jax.grad(fj, (0, 1))(a, b)
    for got in (adjit.grad(fa, (0, 1))(a, b), adjit.jit(adjit.grad(fa, (0, 1)))(a, b)):
        _close(got[0], want[0])
        _close(got[1], want[1])
    _close(adjit.jvp(fa, (a, b), (ta, tb))[1], jax.jvp(fj, (a, b), (ta, tb))[1])
    # second order: forward over reverse and reverse over reverse
    hv = jax.jvp(jax.grad(fj, (0, 1)), (a, b), (ta, tb))[1]
    got = adjit.jvp(adjit.grad(fa, (0, 1)), (a, b), (ta, tb))[1]
    _close(got[0], hv[0], 1e-6, 1e-7)
    _close(got[1], hv[1], 1e-6, 1e-7)
    g2 = adjit.grad(lambda x, y: sum((g_ * t_).sum() for g_, t_ in
                                     zip(adjit.grad(fa, (0, 1))(x, y), (ta, tb))), (0, 1))(a, b)
    _close(g2[0], hv[0], 1e-6, 1e-7)
    _close(g2[1], hv[1], 1e-6, 1e-7)


@pytest.mark.parametrize("tier", TIERS)
def test_lstsq_derivative_f32(tier, monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", tier)
    for sa, sb in (((6, 3), (6, 2)), ((3, 5), (3,))):
        a, b = RNG.standard_normal(sa), RNG.standard_normal(sb)
        fa = lambda x, y: _loss(np, x, y, "x,s")  # noqa: E731
        want = jax.grad(lambda x, y: _loss(jnp, x, y, "x,s"), (0, 1))(a, b)
        got = adjit.grad(fa, (0, 1))(a.astype(np.float32), b.astype(np.float32))
        for g_, w_ in zip(got, want):
            assert np.asarray(g_).dtype == np.float32
            _close(g_, w_, 1e-3, 1e-3)


@pytest.mark.parametrize("tier", TIERS)
def test_lstsq_rank_deficient_derivative_where_jax_is_finite(tier, monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", tier)
    for a in (_deficient(6, 4, 2), _deficient(3, 5, 2), np.diag([2.0, 1.0, 0.0])):
        b = RNG.standard_normal(a.shape[0])
        f = lambda np_: lambda x, y: (np_.linalg.lstsq(x, y)[0] * _w(x.shape[1:])).sum()  # noqa: E731
        ours = adjit.grad(f(np), (0, 1))(a, b)
        theirs = jax.grad(f(jnp), (0, 1))(a, b)
        for o_, t_ in zip(ours, theirs):
            o_, t_ = np.asarray(o_), np.asarray(t_)
            fin = np.isfinite(t_)
            assert fin.any()
            _close(o_[fin], t_[fin], 1e-7, 1e-8)
