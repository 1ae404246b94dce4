"""np.linalg / scipy.linalg on traced arrays: values against NumPy (bit for bit where LAPACK
computes them: eigenvector signs), errors as NumPy's, first and second derivatives in both
modes against JAX x64, native code against the interpreter, batched shapes, f32 and f64."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
from adjit.runtime import compile_graph
from peers import require

jax = require("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

RNG = np.random.default_rng(16)


def _spd(shape, rng=RNG):
    a = rng.standard_normal(shape)
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])


def _gen(shape, rng=RNG):
    return rng.standard_normal(shape) + 2 * np.eye(shape[-1])


def _close(a, b, rtol=1e-9, atol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


# scalar functions of a matrix (and a fixed weight), written once for NumPy and once for JAX
def _w(shape):
    return np.random.default_rng(1).standard_normal(shape)


CASES = {
    "solve": (lambda np_, a: (np_.linalg.solve(a, np_.sin(a[..., :, :2])) * _w(a.shape[:-1] + (2,))).sum(), _gen),
    "inv": (lambda np_, a: (np_.linalg.inv(a) * _w(a.shape)).sum(), _gen),
    "det": (lambda np_, a: np_.linalg.det(a).sum(), _gen),
    "slogdet": (lambda np_, a: np_.linalg.slogdet(a)[1].sum(), _gen),
    "cholesky": (lambda np_, a: (np_.linalg.cholesky(a) * _w(a.shape)).sum(), _spd),
    "eigh_w": (lambda np_, a: (np_.linalg.eigh(a)[0] * _w(a.shape[:-1])).sum(), _spd),
    "eigh_v": (lambda np_, a: (np_.abs(np_.linalg.eigh(a)[1]) * _w(a.shape)).sum(), _spd),
    "eigvalsh": (lambda np_, a: (np_.linalg.eigvalsh(a) ** 2).sum(), _spd),
    "matrix_power": (lambda np_, a: (np_.linalg.matrix_power(a, 5) * _w(a.shape)).sum(), _gen),
    "matrix_power_neg": (lambda np_, a: (np_.linalg.matrix_power(a, -2) * _w(a.shape)).sum(), _gen),
}


def _sym(a):
    return (a + np.swapaxes(a, -1, -2)) / 2


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 3)])
def test_value_grad_hessian_vs_jax(name, shape):
    f, gen = CASES[name]
    a = gen(shape)
    fa = lambda x: f(np, x)  # noqa: E731
    fj = lambda x: f(jnp, x)  # noqa: E731
    _close(fa(a), fj(a))
    _close(adjit.grad(fa)(a), jax.grad(fj)(a))
    _close(adjit.jit(adjit.grad(fa))(a), jax.grad(fj)(a))
    t = np.random.default_rng(2).standard_normal(shape)
    if gen is _spd:
        t = _sym(t)
    _close(adjit.jvp(fa, (a,), (t,))[1], jax.jvp(fj, (a,), (t,))[1])
    # second order: Hessian-vector products, reverse-over-reverse and forward-over-reverse
    hv = jax.jvp(jax.grad(fj), (a,), (t,))[1]
    _close(adjit.jvp(adjit.grad(fa), (a,), (t,))[1], hv, rtol=1e-7, atol=1e-8)
    _close(adjit.grad(lambda x: (adjit.grad(fa)(x) * t).sum())(a), hv, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_values_match_numpy_bit_for_bit_native_and_interpreter(dt):
    a = _gen((3, 5, 5)).astype(dt)
    s = _spd((3, 5, 5)).astype(dt)
    b = RNG.standard_normal((3, 5, 2)).astype(dt)

    def f(a, s, b):
        w, v = np.linalg.eigh(s)
        sg, ld = np.linalg.slogdet(a)
        return (np.linalg.solve(a, b), np.linalg.inv(a), sg, ld, np.linalg.cholesky(s), w, v)
    want = (np.linalg.solve(a, b), np.linalg.inv(a), *np.linalg.slogdet(a),
            np.linalg.cholesky(s), *np.linalg.eigh(s))
    jf = adjit.jit(f)
    for got in (jf(a, s, b), jf(a, s, b)):
        for g_, w_ in zip(got, want):
            assert g_.dtype == w_.dtype
            np.testing.assert_array_equal(g_, w_)


def test_native_calls_lapack():
    a = _gen((4, 4))
    from adjit.codegen.lower import lower
    from adjit.ir import extract, new_trace, AType
    from adjit.ir.core import Node, REGISTRY, bind
    for name, args, ps in (("eigh", [a], {"uplo": "L"}), ("linalg_solve", [a, a], {"check": True}),
                           ("cholesky", [_spd((4, 4))], {}), ("linalg_slogdet", [a], {}),
                           ("triangular_solve", [a, a],
                            {"lower": True, "trans": False, "unit_diagonal": False})):
        with new_trace() as tr:
            ins = [Node(None, AType(x.shape, x.dtype), None, tr) for x in args]
            out = bind(REGISTRY[name], *ins, **ps)
            outs = list(out) if isinstance(out, tuple) else [out]
            g = extract(outs, tr, inputs=ins, name=name)
        text, meta = lower(g)
        assert any(i.startswith("lapack_d") for i in meta["imports"]), meta


@pytest.mark.parametrize("jit", [False, True])
def test_errors_are_numpys(jit):
    sing = np.ones((3, 3))
    wrap = adjit.jit if jit else (lambda f: f)
    for fn, x in ((np.linalg.solve, (sing, np.ones(3))), (np.linalg.inv, (sing,)),
                  (np.linalg.cholesky, (-np.eye(3),))):
        with pytest.raises(np.linalg.LinAlgError) as ours:
            wrap(lambda *a: fn(*[v * 1.0 for v in a]))(*x)
        with pytest.raises(np.linalg.LinAlgError) as theirs:
            fn(*x)
        assert str(ours.value).split(" (at")[0].split(" in np.")[0] == str(theirs.value)
    with pytest.raises(np.linalg.LinAlgError, match="must be square"):
        adjit.grad(lambda x: np.linalg.det(x))(np.ones((2, 3)))
    # a singular matrix: det and slogdet as NumPy (no error)
    f = wrap(lambda x: (np.linalg.det(x * 1.0), *np.linalg.slogdet(x * 1.0)))
    for g_, w_ in zip(f(sing), (np.linalg.det(sing), *np.linalg.slogdet(sing))):
        np.testing.assert_array_equal(g_, w_)


def test_degenerate_points_as_jax():
    # repeated eigenvalues: the eigenvalues' gradient is finite, the eigenvectors' inf/NaN
    a = np.diag([1.0, 1.0, 2.0])
    fw = lambda np_: lambda x: np_.linalg.eigh(x)[0].sum()  # noqa: E731
    _close(adjit.grad(fw(np))(a), jax.grad(fw(jnp))(a))
    fv = lambda np_: lambda x: np_.linalg.eigh(x)[1][:, 0].sum()  # noqa: E731
    ours, theirs = np.asarray(adjit.grad(fv(np))(a)), np.asarray(jax.grad(fv(jnp))(a))
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs))
    # slogdet's gradient at a singular matrix: not finite, as JAX's
    s = np.array([[1.0, 2.0], [2.0, 4.0]])
    fl = lambda np_: lambda x: np_.linalg.slogdet(x)[1]  # noqa: E731
    assert not np.isfinite(adjit.grad(fl(np))(s)).all()
    assert not np.isfinite(np.asarray(jax.grad(fl(jnp))(s))).all()


def test_vmap_and_multi_dot():
    a = _gen((3, 4, 4))
    _close(adjit.vmap(np.linalg.inv)(a), np.linalg.inv(a))
    xs = [RNG.standard_normal(s) for s in ((5,), (5, 3), (3, 7), (7, 2))]
    _close(adjit.jit(lambda *v: np.linalg.multi_dot(v))(*xs), np.linalg.multi_dot(xs))
    g = adjit.grad(lambda m: np.linalg.multi_dot([xs[0], m, xs[2], xs[3]]).sum())(xs[1])
    gj = jax.grad(lambda m: jnp.linalg.multi_dot([xs[0], m, xs[2], xs[3]]).sum())(xs[1])
    _close(g, gj)


def test_gaussian_process_marginal_likelihood_vs_jax():
    rng = np.random.default_rng(50)
    n = 50
    x = np.sort(rng.uniform(-3, 3, n))
    y = np.sin(x) + 0.1 * rng.standard_normal(n)

    def nll(np_, params):
        ls, amp, noise = np_.exp(params[0]), np_.exp(params[1]), np_.exp(params[2])
        d = x[:, None] - x[None, :]
        k = amp * np_.exp(-0.5 * d ** 2 / ls ** 2) + (noise + 1e-6) * np_.eye(n)
        L = np_.linalg.cholesky(k)
        alpha = np_.linalg.solve(k, y)
        return 0.5 * y @ alpha + np_.log((L * np_.eye(n)).sum(1)).sum() + 0.5 * n * np_.log(2 * np_.pi)

    p = np.array([0.1, -0.2, -2.0])
    _close(nll(np, p), nll(jnp, p))
    for f in (adjit.value_and_grad(lambda q: nll(np, q)),
              adjit.jit(adjit.value_and_grad(lambda q: nll(np, q)))):
        v, g = f(p)
        _close(v, nll(jnp, p))
        _close(g, jax.grad(lambda q: nll(jnp, q))(p), rtol=1e-7, atol=1e-9)
    _close(adjit.hessian(lambda q: nll(np, q))(p), jax.hessian(lambda q: nll(jnp, q))(p),
           rtol=1e-6, atol=1e-8)


def test_scipy_linalg_vs_jax():
    import scipy.linalg as sl
    import jax.scipy.linalg as jsl
    from adjit.scipy import linalg as asl
    s = _spd((4, 4))
    b = RNG.standard_normal((4, 2))
    L = np.linalg.cholesky(s)
    for lower, trans in ((True, 0), (True, 1), (False, "T"), (False, 0)):
        m = L if lower else L.T
        _close(adjit.jit(lambda x, y: asl.solve_triangular(x, y, trans=trans, lower=lower))(m, b),
               sl.solve_triangular(m, b, trans=trans, lower=lower))
        f = lambda mod: lambda x: (mod.solve_triangular(x, b, trans=trans, lower=lower) ** 2).sum()  # noqa: E731,E501
        _close(adjit.grad(f(asl))(m), jax.grad(f(jsl))(m))
    for lower in (False, True):
        c, lo = adjit.jit(lambda x: asl.cho_factor(x, lower=lower)[0])(s), lower
        np.testing.assert_allclose(c, sl.cho_factor(s, lower=lower)[0], rtol=1e-12)
        f = lambda mod: lambda x: (mod.cho_solve(mod.cho_factor(x, lower=lower), b) ** 2).sum()  # noqa: E731,E501
        ours = np.asarray(adjit.grad(f(asl))(s))
        # SciPy reads one triangle: ours is that function's gradient (central differences of
        # SciPy itself); JAX spreads each symmetric pair over both triangles: the pair sums agree
        fd = np.zeros_like(s)
        for i in range(4):
            for j in range(4):
                e = np.zeros_like(s)
                e[i, j] = 1e-6
                fd[i, j] = (f(sl)(s + e) - f(sl)(s - e)) / 2e-6
        _close(ours, fd, rtol=1e-5, atol=1e-8)
        fold = lambda g: np.tril(g + g.T) - np.diag(np.diag(g))  # noqa: E731
        _close(fold(ours), fold(np.asarray(jax.grad(f(jsl))(s))))
    # plain scipy.linalg on a traced array: the error names adjit.scipy.linalg
    with pytest.raises(TypeError, match=r"adjit\.scipy\.linalg\.solve_triangular"):
        adjit.grad(lambda x: sl.solve_triangular(x, b).sum())(L)
