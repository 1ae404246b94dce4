"""Linear algebra through LAPACK: solve, slogdet, cholesky, eigh, triangular_solve, svd, qr,
lstsq.

Every primitive works on stacks of matrices (..., m, n): the leading axes are a batch. The
NumPy impl is NumPy's own np.linalg (which computes in f64 through LAPACK, as the lowering in
codegen/lapack.py does: f32 operands are widened, the results narrowed). Derivative rules are
the standard ones, written as IR (a solve's vjp is another solve; Cholesky's and eigh's follow
JAX's forward rules, transposed by hand), so they are differentiable again.

Conventions (docs/ir.md):
- eigh and cholesky read the symmetric part (a + a^T)/2, as JAX's symmetrize_input: equal to
  NumPy's result (which reads the lower triangle) bit for bit on symmetric inputs, and the
  derivative is the symmetric one JAX and PyTorch give.
- A singular matrix: linalg_solve[check=True] raises NumPy's LinAlgError("Singular matrix");
  with check=False (the solves derivative rules make) the result is NaN, as JAX's.
- eigh's eigenvector derivative at repeated eigenvalues divides by the zero gap: inf/NaN, as
  JAX's F-matrix 1/(w_j - w_i). svd's likewise at repeated singular values.
"""
from __future__ import annotations

import numpy as np

from .. import ops as o
from ..types import AType, FLOATS
from ._helpers import sample_array
from .structural import prim


def _nd(x):
    return len(o.shape(x))


def mT(x):
    """Swap the last two axes."""
    n = _nd(x)
    return o.transpose(x, tuple(range(n - 2)) + (n - 1, n - 2))


def mm(x, y):
    """Batched matrix product of (..., m, k) and (..., k, n) with equal batch shapes."""
    n = _nd(x)
    b = tuple(range(n - 2))
    return o.dot_general(x, y, contract=((n - 1,), (n - 2,)), batch=(b, b))


def _mask(x, k, upper=False):
    """bool constant of x's shape: the lower (k-th diagonal and below) or upper triangle."""
    s = o.shape(x)
    m = np.tri(s[-2], s[-1], k, dtype=bool)
    if upper:
        m = ~np.tri(s[-2], s[-1], k - 1, dtype=bool)
    return o.broadcast_to(m, s)


def tril(x, k=0):
    return o.select(_mask(x, k), x, o.zeros(o.shape(x), o.dtype(x)))


def triu(x, k=0):
    return o.select(_mask(x, k, upper=True), x, o.zeros(o.shape(x), o.dtype(x)))


def eye_like(x):
    s = o.shape(x)
    return o.broadcast_to(np.eye(s[-2], s[-1], dtype=_np_dt(o.dtype(x))), s)


def diag(x):
    """(..., n, n) -> (..., n): the diagonal."""
    e = o.broadcast_to(np.eye(o.shape(x)[-1], dtype=bool), o.shape(x))
    return o.reduce_sum(o.select(e, x, o.zeros(o.shape(x), o.dtype(x))), (_nd(x) - 1,))


def diag_embed(d):
    """(..., n) -> (..., n, n) with d on the diagonal."""
    s = o.shape(d)
    full = tuple(s) + (s[-1],)
    e = o.broadcast_to(np.eye(s[-1], dtype=bool), full)
    col = o.broadcast_in_dim(d, shape=full, dims=tuple(range(len(s) - 1)) + (len(s),))
    return o.select(e, col, o.zeros(full, o.dtype(d)))


def sym(x):
    return o.mul(o.add(x, mT(x)), 0.5)


def _row(v, n):
    """(..., n) -> (..., n, n) with v[..., j] in column j of every row."""
    s = o.shape(v)
    return o.broadcast_in_dim(v, shape=tuple(s) + (n,), dims=tuple(range(len(s) - 1)) +
                              (len(s),))


def _col(v, n):
    """(..., n) -> (..., n, n) with v[..., i] in row i."""
    s = o.shape(v)
    return o.broadcast_in_dim(v, shape=tuple(s[:-1]) + (s[-1], n), dims=tuple(range(len(s))))


def _bcast_scalar_mat(v, like):
    """(...) -> like's shape (..., m, n)."""
    s = o.shape(like)
    return o.broadcast_in_dim(v, shape=s, dims=tuple(range(len(s) - 2)))


def _square(name, a):
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name}: needs (..., n, n) square matrices, got {a}")
    if a.dtype not in FLOATS:
        raise TypeError(f"{name}: needs floating-point matrices, got {a.dtype}")


def _np_dt(dt):
    return np.float32 if dt == "f32" else np.float64


def _spd(rng, shp, dt):
    a = rng.uniform(-1, 1, shp)
    n = shp[-1]
    return (a @ np.swapaxes(a, -1, -2) + n * np.eye(n)).astype(_np_dt(dt))


def _s(rng, shp, dt):
    return sample_array(rng, shp, dt)


def _wellcond(rng, shp, dt):
    a = rng.uniform(-1, 1, shp) + 3 * np.eye(shp[-1])
    return a.astype(_np_dt(dt))


# --- solve --------------------------------------------------------------------------------------
def _solve_rule(a, b, *, check):
    _square("linalg_solve", a)
    if b.ndim != a.ndim or b.shape[:-2] != a.shape[:-2] or b.shape[-2] != a.shape[-1] or \
            b.dtype != a.dtype:
        raise ValueError(f"linalg_solve: right-hand sides {b} do not match {a} "
                         "(want (..., n, k), the same batch and dtype)")
    return AType(b.shape, b.dtype)


def _solve_impl(a, b, *, check=True):
    if not check:
        try:
            return np.linalg.solve(a, b)
        except np.linalg.LinAlgError:
            # singular somewhere in the stack: NaN there (JAX's result), the rest solved
            out = np.full(b.shape, np.nan, b.dtype)
            for i in np.ndindex(a.shape[:-2]):
                try:
                    out[i] = np.linalg.solve(a[i], b[i])
                except np.linalg.LinAlgError:
                    pass
            return out
    return np.linalg.solve(a, b)


def solve_nocheck(a, b):
    return o.linalg_solve(a, b, check=False)


def _solve_vjp(ct, a, b, out, *, check=True):
    cb = solve_nocheck(mT(a), ct)
    return [o.neg(mm(cb, mT(out))), cb]


def _solve_jvp(tangents, a, b, out, *, check=True):
    ta, tb = tangents
    if ta is None and tb is None:
        return None
    rhs = tb
    if ta is not None:
        d = mm(ta, out)
        rhs = o.neg(d) if tb is None else o.sub(tb, d)
    return solve_nocheck(a, rhs)


def _solve_samples(dt, rng):
    return [([_wellcond(rng, (3, 3), dt), _s(rng, (3, 2), dt)], {"check": True}),
            ([_wellcond(rng, (2, 4, 4), dt), _s(rng, (2, 4, 1), dt)], {"check": False})]


def _batch_leading(name):
    """vmap: the batch is one more leading axis."""
    def rule(args, bd, **params):
        from ..batching import _all_batched
        from ..core import REGISTRY, bind
        return bind(REGISTRY[name], *_all_batched(args, bd), **params), 0
    return rule


prim("linalg_solve", _solve_rule, _solve_impl, _solve_vjp, _solve_jvp, _solve_samples,
     batch=_batch_leading("linalg_solve"),
     doc="x with a @ x = b (LAPACK gesv): np.linalg.solve/inv, torch.linalg.solve/inv")


# --- slogdet ------------------------------------------------------------------------------------
def _slogdet_rule(a):
    _square("linalg_slogdet", a)
    t = AType(a.shape[:-2], a.dtype)
    return (t, t)


def _slogdet_impl(a):
    s, l = np.linalg.slogdet(a)
    return np.asarray(s), np.asarray(l)


def _slogdet_vjp(ct, a, out):
    cl = ct[1]
    if cl is None:
        return [None]
    inv_t = solve_nocheck(mT(a), eye_like(a))
    return [o.mul(_bcast_scalar_mat(cl, a), inv_t)]


def _slogdet_jvp(tangents, a, out):
    ta = tangents[0]
    if ta is None:
        return (None, None)
    return (o.zeros(o.shape(out[0]), o.dtype(a)), diag_sum(solve_nocheck(a, ta)))


def diag_sum(x):
    return o.reduce_sum(diag(x), (_nd(x) - 2,))


prim("linalg_slogdet", _slogdet_rule, _slogdet_impl, _slogdet_vjp, _slogdet_jvp,
     lambda dt, rng: [([_wellcond(rng, (3, 3), dt)], {}),
                      ([_wellcond(rng, (2, 4, 4), dt) * np.array([1, -1])[:, None, None]
                        .astype(_np_dt(dt))], {})],
     nout=2, batch=_batch_leading("linalg_slogdet"),
     doc="(sign, log|det a|) (LAPACK getrf): np.linalg.slogdet/det")


# --- triangular_solve ---------------------------------------------------------------------------
def _tri_rule(a, b, *, lower, trans, unit_diagonal, left_side=True):
    _square("triangular_solve", a)
    k = -2 if left_side else -1
    if b.ndim != a.ndim or b.shape[:-2] != a.shape[:-2] or b.shape[k] != a.shape[-1] or \
            b.dtype != a.dtype:
        raise ValueError(f"triangular_solve: right-hand sides {b} do not match {a}")
    return AType(b.shape, b.dtype)


def _blas_tri(routine, a, b, lower, trans, unit_diagonal, left_side):
    """scipy.linalg.blas d<routine> (trsm or trmm) per matrix of the batch, called as the
    compiled kernel calls it (codegen/lapack.py): the C-order operands are read in place as
    the column-major transposes A^T and B^T, so op(A) X = B is X^T op(A^T) = B^T: side and
    uplo flipped, trans kept. f64 throughout (f32 widened, the result narrowed)."""
    from scipy.linalg import blas
    fn = getattr(blas, routine)
    out = np.empty(b.shape, b.dtype)
    for i in np.ndindex(a.shape[:-2]):
        at = np.asarray(a[i], np.float64).T      # Fortran order: no copy for C-order f64
        bt = np.array(b[i], np.float64).T
        out[i] = fn(1.0, at, bt, side=int(bool(left_side)), lower=int(not lower),
                    trans_a=int(bool(trans)), diag=int(bool(unit_diagonal))).T
    return out


def _tri_impl(a, b, *, lower, trans=False, unit_diagonal=False, left_side=True):
    """op(A) x = b (left_side) or x op(A) = b, reading one triangle of A (no singularity
    check: a zero pivot gives inf/NaN, as BLAS trsm and JAX)."""
    return _blas_tri("dtrsm", a, b, lower, trans, unit_diagonal, left_side)


def _tri_mask(a, lower, unit):
    k = -1 if unit else 0
    return tril(a, k) if lower else triu(a, -k)


def triangular_solve(a, b, lower, trans=False, unit_diagonal=False, left_side=True):
    if left_side:  # the parameter is written only when it is not the default
        return o.triangular_solve(a, b, lower=lower, trans=trans, unit_diagonal=unit_diagonal)
    return o.triangular_solve(a, b, lower=lower, trans=trans, unit_diagonal=unit_diagonal,
                              left_side=False)


def _tri_vjp(ct, a, b, out, *, lower, trans=False, unit_diagonal=False, left_side=True):
    cb = triangular_solve(a, ct, lower, not trans, unit_diagonal, left_side)
    if left_side:   # op(A) X = B: dA-part -op(dA) X
        ca = o.neg(mm(out, mT(cb)) if trans else mm(cb, mT(out)))
    else:           # X op(A) = B: dX = -X op(dA) op(A)^-1
        ca = o.neg(mm(mT(cb), out) if trans else mm(mT(out), cb))
    return [_tri_mask(ca, lower, unit_diagonal), cb]


def _tri_jvp(tangents, a, b, out, *, lower, trans=False, unit_diagonal=False, left_side=True):
    ta, tb = tangents
    if ta is None and tb is None:
        return None
    rhs = tb
    if ta is not None:
        tm = _tri_mask(ta, lower, unit_diagonal)
        op = mT(tm) if trans else tm
        d = mm(op, out) if left_side else mm(out, op)
        rhs = o.neg(d) if tb is None else o.sub(tb, d)
    return triangular_solve(a, rhs, lower, trans, unit_diagonal, left_side)


def _tri_samples(dt, rng):
    return [([_wellcond(rng, (3, 3), dt), _s(rng, (3, 2), dt)],
             {"lower": True, "trans": False, "unit_diagonal": False}),
            ([_wellcond(rng, (2, 3, 3), dt), _s(rng, (2, 3, 2), dt)],
             {"lower": False, "trans": True, "unit_diagonal": False}),
            ([_wellcond(rng, (3, 3), dt), _s(rng, (3, 1), dt)],
             {"lower": True, "trans": False, "unit_diagonal": True}),
            ([_wellcond(rng, (2, 3, 3), dt), _s(rng, (2, 4, 3), dt)],
             {"lower": True, "trans": True, "unit_diagonal": False, "left_side": False}),
            ([_wellcond(rng, (3, 3), dt), _s(rng, (2, 3), dt)],
             {"lower": False, "trans": False, "unit_diagonal": False, "left_side": False})]


prim("triangular_solve", _tri_rule, _tri_impl, _tri_vjp, _tri_jvp, _tri_samples,
     batch=_batch_leading("triangular_solve"),
     doc="x with op(a) x = b (left_side, the default) or x op(a) = b, a triangular (BLAS "
         "trsm): scipy.linalg.solve_triangular")


# --- triangular_matmul --------------------------------------------------------------------------
def _trmm_rule(a, b, *, lower, trans):
    _square("triangular_matmul", a)
    if b.ndim != a.ndim or b.shape[:-2] != a.shape[:-2] or b.shape[-2] != a.shape[-1] or \
            b.dtype != a.dtype:
        raise ValueError(f"triangular_matmul: right-hand operand {b} does not match {a}")
    return AType(b.shape, b.dtype)


def _trmm_impl(a, b, *, lower, trans=False):
    """op(tril(a) or triu(a)) @ b: only one triangle of a is read (BLAS trmm)."""
    return _blas_tri("dtrmm", a, b, lower, trans, False, True)


def triangular_matmul(a, b, lower, trans=False):
    """op(T) @ b with T the lower (or upper) triangle of a: half a GEMM's multiply-adds."""
    return o.triangular_matmul(a, b, lower=lower, trans=trans)


def _trmm_vjp(ct, a, b, out, *, lower, trans=False):
    # C = op(T) B: dB = op(T)^T ct, dT = the triangle of ct B^T (or of B ct^T when op = ^T)
    cb = triangular_matmul(a, ct, lower, not trans)
    ca = mm(b, mT(ct)) if trans else mm(ct, mT(b))
    return [_tri_mask(ca, lower, False), cb]


def _trmm_jvp(tangents, a, b, out, *, lower, trans=False):
    ta, tb = tangents
    t = None if tb is None else triangular_matmul(a, tb, lower, trans)
    if ta is not None:
        tm = _tri_mask(ta, lower, False)
        d = mm(mT(tm) if trans else tm, b)
        t = d if t is None else o.add(t, d)
    return t


prim("triangular_matmul", _trmm_rule, _trmm_impl, _trmm_vjp, _trmm_jvp,
     lambda dt, rng: [([_s(rng, (3, 3), dt), _s(rng, (3, 2), dt)],
                       {"lower": True, "trans": True}),
                      ([_s(rng, (2, 4, 4), dt), _s(rng, (2, 4, 3), dt)],
                       {"lower": False, "trans": False})],
     batch=_batch_leading("triangular_matmul"),
     doc="op(t) @ b with t one triangle of a (BLAS trmm): the Cholesky derivative rules")


# --- cholesky -----------------------------------------------------------------------------------
def _chol_rule(a):
    _square("cholesky", a)
    return AType(a.shape, a.dtype)


def _chol_impl(a):
    s = (a + np.swapaxes(a, -1, -2)) * a.dtype.type(0.5)
    return np.linalg.cholesky(s)


def _phi(x):
    """The lower triangle with the diagonal halved."""
    return o.select(_mask(x, -1), x, o.select(o.broadcast_to(np.eye(o.shape(x)[-1], dtype=bool),
                                                             o.shape(x)),
                                              o.mul(x, 0.5), o.zeros(o.shape(x), o.dtype(x))))


def _chol_jvp(tangents, a, out):
    ta = tangents[0]
    if ta is None:
        return None
    L = out
    # L^{-1} sym(dA) L^{-T}: a left solve, then a right one
    t1 = triangular_solve(L, sym(ta), True)
    t2 = triangular_solve(L, t1, True, trans=True, left_side=False)
    return triangular_matmul(L, _phi(t2), True)


def _chol_vjp(ct, a, out):
    L = out
    p = _phi(triangular_matmul(L, ct, True, trans=True))
    # S = L^{-T} P L^{-1}: a left solve, then a right one
    s1 = triangular_solve(L, p, True, trans=True)
    s = triangular_solve(L, s1, True, left_side=False)
    return [sym(s)]


prim("cholesky", _chol_rule, _chol_impl, _chol_vjp, _chol_jvp,
     lambda dt, rng: [([_spd(rng, (3, 3), dt)], {}), ([_spd(rng, (2, 4, 4), dt)], {})],
     batch=_batch_leading("cholesky"),
     doc="lower Cholesky factor of (a + a^T)/2 (LAPACK potrf): np.linalg.cholesky")


# --- eigh ---------------------------------------------------------------------------------------
def _eigh_rule(a, *, uplo):
    _square("eigh", a)
    return (AType(a.shape[:-1], a.dtype), AType(a.shape, a.dtype))


def _eigh_impl(a, *, uplo="L"):
    s = (a + np.swapaxes(a, -1, -2)) * a.dtype.type(0.5)
    w, v = np.linalg.eigh(s, UPLO=uplo)
    return w, v


def _fmat(w):
    """F[i, j] = 1 / (w_j - w_i) off the diagonal, 0 on it (JAX's eigh rule)."""
    n = o.shape(w)[-1]
    d = o.sub(_row(w, n), _col(w, n))
    e = eye_like(d)
    return o.sub(o.div(1.0, o.add(d, e)), e)


def _eigh_jvp(tangents, a, out, *, uplo="L"):
    ta = tangents[0]
    if ta is None:
        return (None, None)
    w, v = out
    m = mm(mm(mT(v), sym(ta)), v)
    return (diag(m), mm(v, o.mul(_fmat(w), m)))


def _eigh_vjp(ct, a, out, *, uplo="L"):
    w, v = out
    cw, cv = ct
    if cw is None and cv is None:
        return [None]
    inner = None
    if cv is not None:
        inner = o.mul(_fmat(w), mm(mT(v), cv))
    if cw is not None:
        dw = diag_embed(cw)
        inner = dw if inner is None else o.add(inner, dw)
    return [sym(mm(mm(v, inner), mT(v)))]


def _eigh_samples(dt, rng):
    return [([_spd(rng, (3, 3), dt)], {"uplo": "L"}),
            ([_spd(rng, (2, 4, 4), dt)], {"uplo": "U"})]


prim("eigh", _eigh_rule, _eigh_impl, _eigh_vjp, _eigh_jvp, _eigh_samples, nout=2,
     batch=_batch_leading("eigh"),
     doc="eigenvalues (ascending) and eigenvectors of (a + a^T)/2 (LAPACK syevd): "
         "np.linalg.eigh/eigvalsh")


def _eigvalsh_rule(a, *, uplo):
    return _eigh_rule(a, uplo=uplo)[0]


def _eigvalsh_impl(a, *, uplo="L"):
    s = (a + np.swapaxes(a, -1, -2)) * a.dtype.type(0.5)
    return np.linalg.eigvalsh(s, UPLO=uplo)


def _eigvalsh_jvp(tangents, a, out, *, uplo="L"):
    ta = tangents[0]
    if ta is None:
        return None
    _, v = o.eigh(a, uplo=uplo)
    return diag(mm(mm(mT(v), sym(ta)), v))


def _eigvalsh_vjp(ct, a, out, *, uplo="L"):
    _, v = o.eigh(a, uplo=uplo)
    return [sym(mm(mm(v, diag_embed(ct)), mT(v)))]


prim("eigvalsh", _eigvalsh_rule, _eigvalsh_impl, _eigvalsh_vjp, _eigvalsh_jvp,
     lambda dt, rng: [([_spd(rng, (3, 3), dt)], {"uplo": "L"}),
                      ([_spd(rng, (2, 4, 4), dt)], {"uplo": "U"})],
     batch=_batch_leading("eigvalsh"),
     doc="eigenvalues (ascending) of (a + a^T)/2 (LAPACK syevd jobz 'N', as NumPy's eigvalsh, "
         "whose values differ in the last bits from jobz 'V'): np.linalg.eigvalsh, "
         "torch.linalg.eigvalsh")


# --- svd ----------------------------------------------------------------------------------------
def _slice_last2(x, rows, cols):
    s = o.shape(x)
    return o.slice(x, start=(0,) * len(s), limit=tuple(s[:-2]) + (rows, cols),
                   strides=(1,) * len(s))


def _svd_rule(a, *, full_matrices):
    if a.ndim < 2:
        raise ValueError(f"svd: needs (..., m, n) matrices, got {a}")
    if a.dtype not in FLOATS:
        raise TypeError(f"svd: needs floating-point matrices, got {a.dtype}")
    m, n = a.shape[-2:]
    k = min(m, n)
    bt = a.shape[:-2]
    ur, vc = (m, n) if full_matrices else (k, k)
    return (AType(bt + (m, ur), a.dtype), AType(bt + (k,), a.dtype),
            AType(bt + (vc, n), a.dtype))


def _svd_impl(a, *, full_matrices=False):
    u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
    return u, s, vh


def _svd_thin(a, out, full_matrices):
    """(U, s, V) with U (m, k) and V (n, k), k = min(m, n)."""
    u, s, vh = out
    m, n = o.shape(a)[-2:]
    k = min(m, n)
    if full_matrices and m != n:
        raise NotImplementedError(
            "the derivative of svd(full_matrices=True) of a non-square matrix is not "
            "defined (the extra singular vectors are arbitrary; JAX raises too): use "
            "full_matrices=False")
    if full_matrices:
        u, vh = _slice_last2(u, m, k), _slice_last2(vh, k, n)
    return u, s, mT(vh)


def _over_rows(s, rows):
    """(..., k) -> (..., rows, k) with s[..., j] in column j (dividing column j by s_j)."""
    sh = o.shape(s)
    return o.broadcast_in_dim(s, shape=tuple(sh[:-1]) + (rows, sh[-1]),
                              dims=tuple(range(len(sh) - 1)) + (len(sh),))


def _sv_fmat(s):
    """F[i, j] = 1 / (s_j^2 - s_i^2) off the diagonal, 0 on it (JAX's rule: repeated singular
    values divide by zero, inf/NaN)."""
    k = o.shape(s)[-1]
    sr, sc = _row(s, k), _col(s, k)
    d = o.mul(o.add(sr, sc), o.sub(sr, sc))
    e = eye_like(d)
    return o.sub(o.div(1.0, o.add(d, e)), e)


def _svd_jvp(tangents, a, out, *, full_matrices=False):
    ta = tangents[0]
    if ta is None:
        return (None, None, None)
    u, s, v = _svd_thin(a, out, full_matrices)
    m, n = o.shape(a)[-2:]
    k = min(m, n)
    ds_m = mm(mm(mT(u), ta), v)
    ds = diag(ds_m)
    f = _sv_fmat(s)
    sr, sc = _row(s, k), _col(s, k)
    dss = o.mul(ds_m, sr)
    sds = o.mul(sc, ds_m)
    du = mm(u, o.mul(f, o.add(dss, mT(dss))))
    dv = mm(v, o.mul(f, o.add(sds, mT(sds))))
    if m > n:
        dav = mm(ta, v)
        du = o.add(du, o.div(o.sub(dav, mm(u, mm(mT(u), dav))), _over_rows(s, m)))
    if n > m:
        dau = mm(mT(ta), u)
        dv = o.add(dv, o.div(o.sub(dau, mm(v, mm(mT(v), dau))), _over_rows(s, n)))
    return (du, ds, mT(dv))


def _svd_vjp(ct, a, out, *, full_matrices=False):
    cu, cs, cvh = ct
    if cu is None and cs is None and cvh is None:
        return [None]
    u, s, v = _svd_thin(a, out, full_matrices)
    m, n = o.shape(a)[-2:]
    k = min(m, n)
    if full_matrices:
        if cu is not None:
            cu = _slice_last2(cu, m, k)
        if cvh is not None:
            cvh = _slice_last2(cvh, k, n)
    f = _sv_fmat(s)
    sr = _row(s, k)
    cds = diag_embed(cs) if cs is not None else None

    def acc(x, y):
        return y if x is None else o.add(x, y)
    extra = None
    if cu is not None:
        x = o.mul(f, mm(mT(u), cu))
        cds = acc(cds, o.mul(o.add(x, mT(x)), sr))
        if m > n:
            # (I - U U^T) cU S^{-1} V^T
            p = o.sub(cu, mm(u, mm(mT(u), cu)))
            extra = mm(o.div(p, _over_rows(s, m)), mT(v))
    cv = mT(cvh) if cvh is not None else None
    if cv is not None:
        y = o.mul(f, mm(mT(v), cv))
        cds = acc(cds, o.mul(_col(s, k), o.add(y, mT(y))))
        if n > m:
            z = o.div(o.sub(cv, mm(v, mm(mT(v), cv))), _over_rows(s, n))
            extra = acc(extra, mm(u, mT(z)))
    ca = mm(mm(u, cds), mT(v))
    return [acc(extra, ca)]


def _svd_samples(dt, rng):
    return [([_s(rng, (4, 3), dt)], {"full_matrices": False}),
            ([_s(rng, (2, 3, 5), dt)], {"full_matrices": False}),
            ([_s(rng, (3, 3), dt)], {"full_matrices": True})]


prim("svd", _svd_rule, _svd_impl, _svd_vjp, _svd_jvp, _svd_samples, nout=3,
     batch=_batch_leading("svd"),
     doc="(u, s, vh) with a = u diag(s) vh, s descending (LAPACK gesdd jobz 'S' or 'A'): "
         "np.linalg.svd, torch.linalg.svd")


def _svdvals_rule(a):
    return _svd_rule(a, full_matrices=False)[1]


def _svdvals_jvp(tangents, a, out):
    ta = tangents[0]
    if ta is None:
        return None
    u, _, vh = o.svd(a, full_matrices=False)
    return diag(mm(mm(mT(u), ta), mT(vh)))


def _svdvals_vjp(ct, a, out):
    u, _, vh = o.svd(a, full_matrices=False)
    return [mm(mm(u, diag_embed(ct)), vh)]


prim("svdvals", _svdvals_rule, lambda a: np.linalg.svd(a, compute_uv=False),
     _svdvals_vjp, _svdvals_jvp,
     lambda dt, rng: [([_s(rng, (4, 3), dt)], {}), ([_s(rng, (2, 3, 5), dt)], {})],
     batch=_batch_leading("svdvals"),
     doc="singular values, descending (LAPACK gesdd jobz 'N'): np.linalg.svd(compute_uv="
         "False), norm(ord=2/-2/'nuc'), torch.linalg.svdvals")


# --- lstsq --------------------------------------------------------------------------------------
def _lstsq_rule(a, b, *, rcond):
    if a.ndim < 2 or b.ndim != a.ndim or b.shape[:-2] != a.shape[:-2] or \
            b.shape[-2] != a.shape[-2] or b.dtype != a.dtype:
        raise ValueError(f"lstsq: right-hand sides {b} do not match {a} (want (..., m, k), the "
                         "same batch and dtype)")
    if a.dtype not in FLOATS:
        raise TypeError(f"lstsq: needs floating-point matrices, got {a.dtype}")
    m, n = a.shape[-2:]
    bt, k, dt = a.shape[:-2], b.shape[-1], a.dtype
    return (AType(bt + (n, k), dt), AType(bt + (k,), dt), AType(bt, "i32"),
            AType(bt + (min(m, n),), dt))


def _lstsq_impl(a, b, *, rcond):
    """np.linalg.lstsq per matrix (gelsd); the residuals as NumPy's gufunc: NaN unless m >= n
    and the rank is n (np.linalg.lstsq returns them when m > n)."""
    m, n = a.shape[-2:]
    bt, k = a.shape[:-2], b.shape[-1]
    x = np.empty(bt + (n, k), a.dtype)
    res = np.full(bt + (k,), np.nan, a.dtype)
    rank = np.empty(bt, np.int32)
    s = np.empty(bt + (min(m, n),), a.dtype)
    for i in np.ndindex(bt):
        x[i], r, rank[i], s[i] = np.linalg.lstsq(a[i], b[i], rcond=rcond)
        if m >= n and rank[i] == n:
            res[i] = r if m > n else 0
    return x, res, rank, s


def _lstsq_svd(a, rank):
    """The thin SVD of a and the reciprocals of its first `rank` singular values (0 for the
    others): the derivative rules differentiate x = V diag(si) U^T b through svd's rules."""
    u, s, vh = o.svd(a, full_matrices=False)
    sh, dt = o.shape(s), o.dtype(s)
    keep = o.lt(o.broadcast_to(np.arange(sh[-1], dtype=np.int32), sh),
                o.broadcast_in_dim(rank, shape=sh, dims=tuple(range(len(sh) - 1))))
    one = o.full(sh, 1.0, dt)
    si = o.select(keep, o.div(one, o.select(keep, s, one)), o.zeros(sh, dt))
    return u, s, vh, si


def _acc(x, y):
    return y if x is None else o.add(x, y)


def _lstsq_jvp(tangents, a, b, out, *, rcond):
    """x = V diag(si) U^T b differentiated through svd's jvp (si: the kept reciprocals, fixed
    rank); the residuals |b - a x|^2 per column: 2 <r, db - da x - a dx>."""
    ta, tb = tangents
    if ta is None and tb is None:
        return (None, None, None, None)
    x, _, rank, _ = out
    u, s, vh, si = _lstsq_svd(a, rank)
    k = o.shape(b)[-1]
    c = mm(mT(u), b)
    dc = ds = None
    if ta is not None:
        du, ds, dvh = _svd_jvp((ta,), a, (u, s, vh))
        dc = mm(mT(du), b)
    if tb is not None:
        dc = _acc(dc, mm(mT(u), tb))
    dw = o.mul(_col(si, k), dc)
    if ds is not None:
        dw = o.sub(dw, o.mul(_col(o.mul(o.mul(si, si), ds), k), c))
    dx = mm(mT(vh), dw)
    if ta is not None:
        dx = o.add(dx, mm(mT(dvh), o.mul(_col(si, k), c)))
    dr = o.neg(mm(a, dx))
    if tb is not None:
        dr = o.add(dr, tb)
    if ta is not None:
        dr = o.sub(dr, mm(ta, x))
    r = o.sub(b, mm(a, x))
    dres = o.mul(o.reduce_sum(o.mul(r, dr), (_nd(b) - 2,)), 2.0)
    return (dx, dres, None, ds)


def _lstsq_vjp(ct, a, b, out, *, rcond):
    """The jvp transposed."""
    cx, cres, _, cs = ct
    if cx is None and cres is None and cs is None:
        return [None, None]
    x, _, rank, _ = out
    u, s, vh, si = _lstsq_svd(a, rank)
    m, k = o.shape(b)[-2:]
    ca = cb = None
    if cres is not None:
        g = o.mul(o.mul(o.sub(b, mm(a, x)), _over_rows(cres, m)), 2.0)
        cb, ca = g, o.neg(mm(g, mT(x)))
        cx = _acc(cx, o.neg(mm(mT(a), g)))
    cu = cvh = None
    if cx is not None:
        c = mm(mT(u), b)
        cvh = mm(o.mul(_col(si, k), c), mT(cx))
        cw = mm(vh, cx)
        cc = o.mul(_col(si, k), cw)
        cu = mm(b, mT(cc))
        cb = _acc(cb, mm(u, cc))
        csi = o.reduce_sum(o.mul(cw, c), (_nd(b) - 1,))
        cs = _acc(cs, o.neg(o.mul(o.mul(si, si), csi)))
    ca = _acc(ca, _svd_vjp((cu, cs, cvh), a, (u, s, vh))[0])
    return [ca, cb]


def _lstsq_samples(dt, rng):
    # tall or square and of full rank: the residuals are defined (NaN otherwise)
    return [([_s(rng, (5, 3), dt), _s(rng, (5, 2), dt)], {"rcond": 1e-15}),
            ([_s(rng, (2, 4, 2), dt), _s(rng, (2, 4, 1), dt)], {"rcond": -1.0}),
            ([_wellcond(rng, (3, 3), dt), _s(rng, (3, 2), dt)], {"rcond": 1e-3})]


prim("lstsq", _lstsq_rule, _lstsq_impl, _lstsq_vjp, _lstsq_jvp, _lstsq_samples, nout=4,
     batch=_batch_leading("lstsq"),
     doc="(x, residuals, rank, s): the minimum-norm least-squares solution of a x = b "
         "(LAPACK gelsd, singular values at most rcond * max(s) dropped), the squared residual "
         "norms (NaN unless m >= n and the rank is n), the rank (i32), a's singular values: "
         "np.linalg.lstsq")


# --- qr -----------------------------------------------------------------------------------------
# the derivative PyTorch refuses (torch.linalg.qr sets `refuse`): raised when a derivative
# rule runs (backward or forward mode), never by the forward computation
QR_REFUSALS = {
    "r": "The derivative of linalg.qr depends on Q, which is not computed when mode='r'. "
         "Please use linalg.qr(A, mode='reduced') if you are going to differentiate through "
         "linalg.qr.",
    "complete": "The QR decomposition is not differentiable when mode='complete' and "
                "nrows > ncols.",
}


def _qr_rule(a, *, mode, refuse=""):
    if refuse and refuse not in QR_REFUSALS:
        raise ValueError(f"qr: refuse must be '' or one of {sorted(QR_REFUSALS)}, got "
                         f"{refuse!r}")
    if a.ndim < 2:
        raise ValueError(f"qr: needs (..., m, n) matrices, got {a}")
    if a.dtype not in FLOATS:
        raise TypeError(f"qr: needs floating-point matrices, got {a.dtype}")
    if mode not in ("reduced", "complete"):
        raise ValueError(f"qr: mode must be 'reduced' or 'complete', got {mode!r}")
    m, n = a.shape[-2:]
    mc = m if mode == "complete" else min(m, n)
    bt = a.shape[:-2]
    return (AType(bt + (m, mc), a.dtype), AType(bt + (mc, n), a.dtype))


def _qr_impl(a, *, mode="reduced", refuse=""):
    q, r = np.linalg.qr(a, mode=mode)
    return q, r


def _cols(x, lo, hi):
    s = o.shape(x)
    return o.slice(x, start=(0,) * (len(s) - 1) + (lo,), limit=tuple(s[:-1]) + (hi,),
                   strides=(1,) * len(s))


def _thin_qr_jvp(q, r, ta):
    x = triangular_solve(r, ta, False, left_side=False)  # ta R^-1
    at = mm(mT(q), x)
    lo = tril(at, -1)
    om = o.sub(lo, mT(lo))
    return o.add(mm(q, o.sub(om, at)), x), mm(o.sub(at, om), r)


def _thin_qr_vjp(q, r, cq, cr):
    m_ = None
    if cq is not None:
        m_ = mm(mT(q), cq)
    if cr is not None:
        t = mm(cr, mT(r))
        m_ = o.neg(t) if m_ is None else o.sub(m_, t)
    nn = o.sub(tril(o.sub(m_, mT(m_)), -1), m_)
    cx = mm(q, nn) if cq is None else o.add(cq, mm(q, nn))
    return triangular_solve(r, cx, False, trans=True, left_side=False)  # cx R^-T


def _block(x, r0, r1, c0, c1):
    """x[..., r0:r1, c0:c1]."""
    s = o.shape(x)
    nb = len(s) - 2
    return o.slice(x, start=(0,) * nb + (r0, c0), limit=tuple(s[:-2]) + (r1, c1),
                   strides=(1,) * len(s))


def _householder_z(q_mn):
    """Z^T = (Q_nn - I)^-T Q_pn^T for Q_mn = [Q_nn; Q_pn], the first n columns of a complete
    Householder Q (geqrf + orgqr): its other columns are E_p + (Q_mn - E_n) Z^T (E = columns of
    the identity), a function of Q_mn alone. (Q_nn - I singular, a reflector with tau = 0:
    NaN, as JAX.)"""
    m, n = o.shape(q_mn)[-2:]
    a_t = mT(o.sub(_block(q_mn, 0, n, 0, n), eye_like(_block(q_mn, 0, n, 0, n))))
    return a_t, solve_nocheck(a_t, mT(_block(q_mn, n, m, 0, n)))


def _qr_refused(refuse):
    if refuse:
        raise RuntimeError(QR_REFUSALS[refuse])


def _qr_jvp(tangents, a, out, *, mode="reduced", refuse=""):
    """JAX's rule for m >= n: X = dA R^-1, A_ = Q^T X, O = tril(A_, -1) - tril(A_, -1)^T;
    dQ = Q (O - A_) + X, dR = (A_ - O) R. For m < n, the rule on the square block
    a = q [r1 r2] and dR2 = dQ^T a2 + Q^T da2 (JAX's wide case). mode 'complete' of a tall
    matrix: the thin rule on the first n columns, and the derivative of the other columns
    E_p + (Q_mn - E_n) Z^T (_householder_z): dQ_mn Z^T + (Q_mn - E_n) (Q_nn - I)^-T
    (dQ_pn - Z dQ_nn)^T; R's zero rows stay zero (docs/ir.md)."""
    ta = tangents[0]
    if ta is None:
        return (None, None)
    _qr_refused(refuse)
    q, r = out
    m, n = o.shape(a)[-2:]
    nd = len(o.shape(a))
    if m > n and mode == "complete":
        q_mn = _cols(q, 0, n)
        dq_mn, dr = _thin_qr_jvp(q_mn, _block(r, 0, n, 0, n), ta)
        a_t, z_t = _householder_z(q_mn)
        d = o.sub(_block(dq_mn, n, m, 0, n), mm(mT(z_t), _block(dq_mn, 0, n, 0, n)))
        dq_mp = o.add(mm(dq_mn, z_t), mm(o.sub(q_mn, eye_like(q_mn)),
                                          solve_nocheck(a_t, mT(d))))
        return (o.concatenate(dq_mn, dq_mp, axis=nd - 1),
                o.concatenate(dr, o.zeros(o.shape(a)[:-2] + (m - n, n), o.dtype(a)),
                              axis=nd - 2))
    if m >= n:
        return _thin_qr_jvp(q, r, ta)
    dq, dr1 = _thin_qr_jvp(q, _cols(r, 0, m), _cols(ta, 0, m))
    dr2 = o.add(mm(mT(dq), _cols(a, m, n)), mm(mT(q), _cols(ta, m, n)))
    return dq, o.concatenate(dr1, dr2, axis=nd - 1)


def _qr_vjp(ct, a, out, *, mode="reduced", refuse=""):
    """The jvp transposed: M = Q^T cQ - cR R^T, N = tril(M - M^T, -1) - M,
    cA = (cQ + Q N) R^-T; for m < n, cQ gains a2 cR2^T and cA2 = Q cR2. mode 'complete' of a
    tall matrix: with G = (Q_mn - E_n)^T cQ_mp and H = ((Q_nn - I)^-1 G)^T, Q_mn's cotangent
    gains cQ_mp Z + [-Z^T H; H] (cR's zero rows are ignored)."""
    cq, cr = ct
    if cq is None and cr is None:
        return [None]
    _qr_refused(refuse)
    q, r = out
    m, n = o.shape(a)[-2:]
    nd = len(o.shape(a))
    if m > n and mode == "complete":
        q_mn = _cols(q, 0, n)
        cq_mn = None
        if cq is not None:
            a_t, z_t = _householder_z(q_mn)
            cq_mp = _cols(cq, n, m)
            g = mm(mT(o.sub(q_mn, eye_like(q_mn))), cq_mp)
            h = mT(solve_nocheck(mT(a_t), g))
            cq_mn = o.add(o.add(_cols(cq, 0, n), mm(cq_mp, mT(z_t))),
                          o.concatenate(o.neg(mm(z_t, h)), h, axis=nd - 2))
        return [_thin_qr_vjp(q_mn, _block(r, 0, n, 0, n), cq_mn,
                             None if cr is None else _block(cr, 0, n, 0, n))]
    if m >= n:
        return [_thin_qr_vjp(q, r, cq, cr)]
    if cr is None:
        return [o.concatenate(_thin_qr_vjp(q, _cols(r, 0, m), cq, None),
                              o.zeros(o.shape(a)[:-1] + (n - m,), o.dtype(a)),
                              axis=nd - 1)]
    cr2 = _cols(cr, m, n)
    extra = mm(_cols(a, m, n), mT(cr2))
    cq = extra if cq is None else o.add(cq, extra)
    ca1 = _thin_qr_vjp(q, _cols(r, 0, m), cq, _cols(cr, 0, m))
    return [o.concatenate(ca1, mm(q, cr2), axis=nd - 1)]


def _qr_samples(dt, rng):
    return [([_wellcond(rng, (3, 3), dt)[:, :3].copy()], {"mode": "reduced"}),
            ([(_s(rng, (4, 3), dt) + np.eye(4, 3, dtype=_np_dt(dt)) * 3)], {"mode": "reduced"}),
            ([_wellcond(rng, (2, 3, 3), dt)], {"mode": "complete"}),
            ([(_s(rng, (5, 2), dt) + np.eye(5, 2, dtype=_np_dt(dt)) * 3)], {"mode": "complete"}),
            ([(_s(rng, (2, 4), dt) + np.eye(2, 4, dtype=_np_dt(dt)) * 3)], {"mode": "reduced"})]


prim("qr", _qr_rule, _qr_impl, _qr_vjp, _qr_jvp, _qr_samples, nout=2,
     batch=_batch_leading("qr"),
     doc="(q, r) with a = q r, r upper triangular (LAPACK geqrf + orgqr, as NumPy): "
         "np.linalg.qr, torch.linalg.qr (`refuse`: 'r' or 'complete', the derivative rules "
         "raise PyTorch's error for that mode)")
