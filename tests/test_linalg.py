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


# --- triangular_matmul (BLAS trmm) and right-side triangular solves (trsm side 'R') ----------
# Used by Cholesky's derivative rules; called in place on the row-major buffers (no
# column-major copies), big ones as two halves on adjit's threads. NumPy front: the
# primitives through ops (they have no NumPy name of their own).
def _tri_op(kind, lower, trans):
    from adjit.ir.prims import linalg as la
    from adjit.tracer.ndarray import wrap
    from adjit.tracer.promote import promote_nobroadcast

    def f(a, b):
        (x, y), _, _ = promote_nobroadcast([a, b], to_float=True)
        if kind == "trmm":
            return wrap(la.triangular_matmul(x, y, lower, trans))
        return wrap(la.triangular_solve(x, y, lower, trans, left_side=kind == "left"))
    return f


def _tri_jax(kind, lower, trans):
    def f(a, b):
        if kind == "trmm":
            t = jnp.tril(a) if lower else jnp.triu(a)
            return (jnp.swapaxes(t, -1, -2) if trans else t) @ b
        return jax.lax.linalg.triangular_solve(a, b, left_side=kind == "left", lower=lower,
                                               transpose_a=trans)
    return f


def _tri_ref(kind, a, b, lower, trans):
    """NumPy/SciPy: op(T) @ b, or scipy's solve_triangular (a right solve x op(T) = b is the
    left solve op(T)^T x^T = b^T)."""
    import scipy.linalg as sl
    out = np.empty(b.shape, np.float64)
    for i in np.ndindex(a.shape[:-2]):
        t = np.tril(a[i]) if lower else np.triu(a[i])
        if kind == "trmm":
            out[i] = (t.T if trans else t).astype(np.float64) @ b[i]
        elif kind == "left":
            out[i] = sl.solve_triangular(a[i], b[i], lower=lower, trans=int(trans))
        else:
            out[i] = sl.solve_triangular(a[i], b[i].T, lower=lower, trans=int(not trans)).T
    return out


TRI_KINDS = [(k, lo, tr) for k in ("trmm", "left", "right") for lo in (True, False)
             for tr in (False, True)]


def _tri_args(kind, shape, k, dt, rng):
    a = (rng.standard_normal(shape) + 3 * np.eye(shape[-1])).astype(dt)
    bs = shape[:-1] + (k,) if kind != "right" else shape[:-2] + (k, shape[-1])
    return a, rng.standard_normal(bs).astype(dt)


@pytest.mark.parametrize("kind,lower,trans", TRI_KINDS)
@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 3)])
def test_triangular_matmul_and_right_solve_vs_jax(kind, lower, trans, shape):
    rng = np.random.default_rng(61)
    a, b = _tri_args(kind, shape, 2, np.float64, rng)
    fa, fj = _tri_op(kind, lower, trans), _tri_jax(kind, lower, trans)
    w = rng.standard_normal(b.shape)
    sa = lambda f: lambda x, y: ((f(x, y) ** 2) * w).sum()  # noqa: E731
    _close(adjit.jit(fa)(a, b), fj(a, b))
    _close(adjit.jit(fa)(a, b), _tri_ref(kind, a, b, lower, trans))
    gj = jax.grad(sa(fj), (0, 1))(a, b)
    for g in (adjit.grad(sa(fa), (0, 1))(a, b), adjit.jit(adjit.grad(sa(fa), (0, 1)))(a, b)):
        for x, y in zip(g, gj):
            _close(x, y)
    ta, tb = rng.standard_normal(a.shape), rng.standard_normal(b.shape)
    _close(adjit.jvp(sa(fa), (a, b), (ta, tb))[1], jax.jvp(sa(fj), (a, b), (ta, tb))[1])
    # second order: forward-over-reverse and reverse-over-reverse Hessian-vector products
    hv = jax.jvp(jax.grad(sa(fj), (0, 1)), (a, b), (ta, tb))[1]
    ours = adjit.jvp(adjit.grad(sa(fa), (0, 1)), (a, b), (ta, tb))[1]
    for x, y in zip(ours, hv):
        _close(x, y, rtol=1e-7, atol=1e-8)
    rr = adjit.grad(lambda x, y: sum((g * t).sum() for g, t in zip(
        adjit.grad(sa(fa), (0, 1))(x, y), (ta, tb))), (0, 1))(a, b)
    for x, y in zip(rr, hv):
        _close(x, y, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("kind,lower,trans", TRI_KINDS)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_triangular_kernels_native_vs_interpreter_and_scipy(kind, lower, trans, dt):
    """Big enough to run as two halves on adjit's threads (n^2 k >= 2^22): bit for bit the
    interpreter's (SciPy's dtrsm/dtrmm, one call), and NumPy/SciPy to rounding."""
    from adjit.ir.prims import linalg as la
    rng = np.random.default_rng(62)
    a, b = _tri_args(kind, (2, 170, 170), 161, dt, rng)
    got = adjit.jit(_tri_op(kind, lower, trans))(a, b)
    assert got.dtype == dt
    ref = la._trmm_impl(a, b, lower=lower, trans=trans) if kind == "trmm" else \
        la._tri_impl(a, b, lower=lower, trans=trans, left_side=kind == "left")
    np.testing.assert_array_equal(got, ref)
    # against NumPy/SciPy in f64: the summation order differs (trsm's blocking, trmm vs a
    # GEMM), so rounding differs: 1e-10 of the largest entry (these solves' inverses grow, so
    # a relative bound per entry is too strict); f32 is computed in f64 and rounded once, so
    # within 2 f32 ulp of the f64 result
    want = _tri_ref(kind, a.astype(np.float64), b.astype(np.float64), lower, trans)
    if dt == np.float32:
        np.testing.assert_allclose(got, want, rtol=2.4e-7, atol=1e-30)
    else:
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * np.abs(want).max())


def test_cholesky_vjp_uses_trmm_and_right_solves():
    """Cholesky's vjp: L^T @ L-bar as trmm (no GEMM), the second solve as trsm side 'R' (no
    transposes around it); the trsm kernel works on the row-major buffers in place (no
    scratch workspace) and splits big right-hand sides over adjit's threads."""
    from adjit.codegen.lower import lower
    from adjit.ir import parse_graph
    from adjit.ir.autodiff import vjp_graph
    from adjit.ir.passes import optimize
    g = parse_graph("def f(a: f64[300,300]) -> f64[300,300]:\n"
                    "  b: f64[300,300] = cholesky a\n  return b\n")
    names = [e.prim.name for e in optimize(vjp_graph(g)).eqns]
    assert names.count("triangular_matmul") == 1 and "dot_general" not in names, names
    assert names.count("transpose") == 1, names  # sym(S) = (S + S^T) / 2 only
    assert names.count("triangular_solve") == 2, names
    _, meta = lower(optimize(vjp_graph(g)))
    assert {"lapack_dtrsm", "lapack_dtrmm", "parallel_for"} <= set(meta["imports"]), meta
    t = parse_graph("def f(a: f64[300,300], b: f64[300,300]) -> f64[300,300]:\n"
                    "  c: f64[300,300] = triangular_solve[lower=True, trans=True, "
                    "unit_diagonal=False, left_side=False] a b\n"
                    "  d: f64[300,300] = triangular_matmul[lower=True, trans=True] a c\n"
                    "  return d\n")
    _, meta = lower(t)
    assert meta["workspace"] == 8 * 300 * 300, meta  # c only: no column-major scratch copies
    # and its values: the gradient of a W10-sized problem against JAX x64
    s = _spd((300, 300))
    w = np.random.default_rng(3).standard_normal((300, 300))
    f = lambda np_: lambda x: (np_.linalg.cholesky(x) * w).sum()  # noqa: E731
    _close(adjit.jit(adjit.grad(f(np)))(s), jax.grad(f(jnp))(s), rtol=1e-8, atol=1e-11)
