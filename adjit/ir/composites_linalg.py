"""np.linalg and scipy.linalg as composites of the linear-algebra primitives (prims/linalg.py):
NumPy's shape rules, broadcasting and errors; the fronts wrap these."""
from __future__ import annotations

import numpy as np

from . import ops
from .composites_products import matmul
from .prims import linalg as prims_linalg

LinAlgError = np.linalg.LinAlgError


def shape(x):
    return ops.shape(x)


def _at_least_2d(*xs):
    for x in xs:
        if len(shape(x)) < 2:
            raise LinAlgError(f"{len(shape(x))}-dimensional array given. Array must be at "
                              "least two-dimensional")


def _square(*xs):
    _at_least_2d(*xs)
    for x in xs:
        if shape(x)[-1] != shape(x)[-2]:
            raise LinAlgError("Last 2 dimensions of the array must be square")


def solve(a, b):
    """np.linalg.solve (NumPy 2: b is a vector only when 1-D; batch axes broadcast)."""
    _square(a)
    sa, sb = shape(a), shape(b)
    n = sa[-1]
    vector = len(sb) == 1
    if vector:
        b = ops.reshape(b, (sb[0], 1))
    sb2 = shape(b)
    if sb2[-2] != n:
        raise ValueError(f"solve: Input operand 1 has a mismatch in its core dimension 0, with "
                         f"gufunc signature (m,m),(m,n)->(m,n) (size {sb2[-2]} is different "
                         f"from {n})")
    batch = tuple(np.broadcast_shapes(sa[:-2], sb2[:-2]))
    a = ops.broadcast_to(a, batch + (n, n))
    b = ops.broadcast_to(b, batch + sb2[-2:])
    x = ops.linalg_solve(a, b, check=True)
    return ops.reshape(x, batch + (n,)) if vector else x


def inv(a):
    """np.linalg.inv: gesv with the identity as right-hand sides (as NumPy)."""
    _square(a)
    return ops.linalg_solve(a, prims_linalg.eye_like(a), check=True)


def slogdet(a):
    _square(a)
    return ops.linalg_slogdet(a)


def det(a):
    """NumPy's det: sign * exp(log|det|) from the same LU factorisation."""
    s, logdet = slogdet(a)
    return ops.mul(s, ops.exp(logdet))


def cholesky(a, upper=False):
    _square(a)
    L = ops.cholesky(a)
    return prims_linalg.mT(L) if upper else L


def eigh(a, UPLO="L"):  # noqa: N803
    if UPLO not in ("L", "U"):
        raise ValueError("UPLO argument must be 'L' or 'U'")
    _square(a)
    return ops.eigh(a, uplo=UPLO)


def eigvalsh(a, UPLO="L"):  # noqa: N803
    """syevd jobz 'N' as NumPy (its values differ in the last bits from eigh's)."""
    if UPLO not in ("L", "U"):
        raise ValueError("UPLO argument must be 'L' or 'U'")
    _square(a)
    return ops.eigvalsh(a, uplo=UPLO)


def matrix_power(a, n):
    _square(a)
    try:
        n = int(n) if not isinstance(n, bool) and int(n) == n else None
    except TypeError:
        n = None
    if n is None:
        raise TypeError("exponent must be an integer")
    if n == 0:
        return prims_linalg.eye_like(a)
    if n < 0:
        a, n = inv(a), -n
    if n == 1:
        return a
    z = result = None
    while n > 0:
        z = a if z is None else matmul(z, z)
        n, bit = divmod(n, 2)
        if bit:
            result = z if result is None else matmul(result, z)
    return result


def multi_dot(arrays):
    """np.linalg.multi_dot: the product in the cheapest order (the first and last operands may
    be vectors)."""
    arrays = list(arrays)
    n = len(arrays)
    if n < 2:
        raise ValueError("Expecting at least two arrays.")
    if n == 2:
        from .composites_products import dot
        return dot(arrays[0], arrays[1])
    first, last = arrays[0], arrays[-1]
    v0, v1 = len(shape(first)) == 1, len(shape(last)) == 1
    if v0:
        arrays[0] = ops.reshape(first, (1,) + shape(first))
    if v1:
        arrays[-1] = ops.reshape(last, shape(last) + (1,))
    for x in arrays:
        if len(shape(x)) != 2:
            raise LinAlgError(f"{len(shape(x))}-dimensional array given. Array must be "
                              "two-dimensional")
    dims = [shape(x)[0] for x in arrays] + [shape(arrays[-1])[1]]
    # matrix-chain order: cost[i][j] of the product of arrays i..j, split[i][j] its split
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for ln in range(1, n):
        for i in range(n - ln):
            j = i + ln
            cost[i][j] = None
            for k in range(i, j):
                q = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if cost[i][j] is None or q < cost[i][j]:
                    cost[i][j], split[i][j] = q, k

    def prod(i, j):
        if i == j:
            return arrays[i]
        k = split[i][j]
        return matmul(prod(i, k), prod(k + 1, j))
    r = prod(0, n - 1)
    if v0 and v1:
        return ops.reshape(r, ())
    if v0:
        return ops.reshape(r, shape(r)[1:])
    if v1:
        return ops.reshape(r, shape(r)[:-1])
    return r


# --- scipy.linalg -------------------------------------------------------------------------------
def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False):
    """scipy.linalg.solve_triangular (trans 0/'N', 1/'T', 2/'C'; b a vector or matrix)."""
    _square(a)
    t = {0: False, "N": False, 1: True, "T": True, 2: True, "C": True}.get(trans)
    if t is None:
        raise ValueError(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or 'C', got "
                         f"{trans!r}")
    sa, sb = shape(a), shape(b)
    vector = len(sb) == len(sa) - 1
    if vector:
        b = ops.reshape(b, sb + (1,))
    if shape(b)[-2] != sa[-1]:
        raise ValueError(f"shapes of a {sa} and b {sb} are incompatible")
    batch = tuple(np.broadcast_shapes(sa[:-2], shape(b)[:-2]))
    a = ops.broadcast_to(a, batch + sa[-2:])
    b = ops.broadcast_to(b, batch + shape(b)[-2:])
    x = ops.triangular_solve(a, b, lower=bool(lower), trans=t,
                             unit_diagonal=bool(unit_diagonal))
    return ops.reshape(x, shape(x)[:-1]) if vector else x


def cho_factor(a, lower=False):
    """scipy.linalg.cho_factor: (c, lower), c holding the factor in one triangle and a's
    entries in the other (as potrf leaves them)."""
    _square(a)
    # SciPy's potrf reads one triangle only: the symmetric matrix that triangle defines (the
    # same matrix for a symmetric a; the derivative reaches that triangle only, as JAX's)
    t = prims_linalg.tril(a) if lower else prims_linalg.triu(a)
    k = -1 if lower else 1
    L = ops.cholesky(ops.add(t, prims_linalg.mT(prims_linalg.tril(a, k) if lower else prims_linalg.triu(a, k))))
    if lower:
        return ops.select(prims_linalg._mask(a, 0), L, a), lower
    return ops.select(prims_linalg._mask(a, 0, upper=True), prims_linalg.mT(L), a), lower


def cho_solve(c_and_lower, b):
    c, lower = c_and_lower
    sb = shape(b)
    vector = len(sb) == len(shape(c)) - 1
    if vector:
        b = ops.reshape(b, sb + (1,))
    if lower:
        y = ops.triangular_solve(c, b, lower=True, trans=False, unit_diagonal=False)
        x = ops.triangular_solve(c, y, lower=True, trans=True, unit_diagonal=False)
    else:
        y = ops.triangular_solve(c, b, lower=False, trans=True, unit_diagonal=False)
        x = ops.triangular_solve(c, y, lower=False, trans=False, unit_diagonal=False)
    return ops.reshape(x, sb) if vector else x


# --- svd and what is built on it ----------------------------------------------------------------
def _concrete_bool(c):
    """A bool scalar's value, with a guard on the trace (as `bool(x)` on a traced array): the
    compiled program re-specialises when it changes."""
    from .core import Node, REGISTRY, bind
    val = bool(np.asarray(c.val if isinstance(c, Node) else c))  # an eager TapeNode too
    if type(c) is Node and c.trace.active:
        bind(REGISTRY["guard"], c, expect=val)
    return val


def _svd_hermitian(a, compute_uv):
    """NumPy's svd(hermitian=True): eigh, |w| in descending order (NumPy reverses an ascending
    argsort), the signs of w moved into vh."""
    from . import composites as ir_composites
    from .composites_shape import argsort, take_along_axis
    _square(a)
    w, v = ops.eigh(a, uplo="L")
    ax = len(shape(w)) - 1
    sidx = ir_composites.flip(argsort(ir_composites.abs_(w), ax), ax)
    s = take_along_axis(ir_composites.abs_(w), sidx, ax)
    if not compute_uv:
        return s
    sgn = take_along_axis(ops.sign(w), sidx, ax)
    nd = len(shape(v))
    u = take_along_axis(v, ops.reshape(sidx, shape(sidx)[:-1] + (1, shape(sidx)[-1])), nd - 1)
    vt = prims_linalg.mT(ops.mul(u, ops.broadcast_in_dim(sgn, shape=shape(u),
                                              dims=tuple(range(nd - 2)) + (nd - 1,))))
    return u, s, vt


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """np.linalg.svd: gesdd as NumPy calls it (u, s, vh; s alone without compute_uv)."""
    _at_least_2d(a)
    if hermitian:
        return _svd_hermitian(a, compute_uv)
    if not compute_uv:
        return ops.svdvals(a)
    return ops.svd(a, full_matrices=bool(full_matrices))


def _moveaxes_last2(x, r, c):
    nd = len(shape(x))
    rest = [i for i in range(nd) if i not in (r, c)]
    return ops.transpose(x, tuple(rest) + (r, c))


def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    """np.linalg.norm: every ord for vectors and matrices (2, -2 and 'nuc' through the singular
    values), axis None, an int or a pair (in either order), keepdims."""
    from . import composites as ir_composites
    nd = len(shape(x))
    if axis is None:
        if ord is None or (ord in ("f", "fro") and nd == 2) or (ord == 2 and nd == 1):
            r = ops.sqrt(ir_composites.sum(ops.mul(x, x)))
            return ops.reshape(r, (1,) * nd) if keepdims else r
        axis = tuple(range(nd))
    elif not isinstance(axis, tuple):
        try:
            axis = (int(axis),)
        except Exception:
            raise TypeError("'axis' must be None, an integer or a tuple of integers") from None
    if len(axis) == 1:
        ax = ir_composites.abs_(x)
        if isinstance(ord, str):
            raise ValueError(f"Invalid norm order '{ord}' for vectors")
        if ord == np.inf:
            return ir_composites.max(ax, axis, keepdims)
        if ord == -np.inf:
            return ir_composites.min(ax, axis, keepdims)
        if ord == 0:
            return ir_composites.sum(ops.convert(ops.ne(x, 0.0), ops.dtype(x)), axis, keepdims)
        if ord == 1:
            return ir_composites.sum(ax, axis, keepdims)
        if ord is None or ord == 2:
            return ops.sqrt(ir_composites.sum(ops.mul(x, x), axis, keepdims))
        p = float(ord)
        return ops.pow(ir_composites.sum(ops.pow(ax, p), axis, keepdims), 1.0 / p)
    if len(axis) != 2:
        raise ValueError("Improper number of dimensions to norm.")
    r_ax, c_ax = (ir_composites.norm_axes(a, nd)[0] for a in axis)
    if r_ax == c_ax:
        raise ValueError("Duplicate axes given.")
    if ord in (2, -2, "nuc"):
        s = ops.svdvals(_moveaxes_last2(x, r_ax, c_ax))
        red = {2: ir_composites.max, -2: ir_composites.min, "nuc": ir_composites.sum}[ord]
        ret = red(s, len(shape(s)) - 1)
    elif ord in (1, -1):
        c2 = c_ax - 1 if c_ax > r_ax else c_ax
        ret = (ir_composites.max if ord == 1 else ir_composites.min)(ir_composites.sum(ir_composites.abs_(x), r_ax), c2)
    elif ord in (np.inf, -np.inf):
        r2 = r_ax - 1 if r_ax > c_ax else r_ax
        ret = (ir_composites.max if ord > 0 else ir_composites.min)(ir_composites.sum(ir_composites.abs_(x), c_ax), r2)
    elif ord in (None, "fro", "f"):
        ret = ops.sqrt(ir_composites.sum(ops.mul(x, x), (r_ax, c_ax)))
    else:
        raise ValueError("Invalid norm order for matrices.")
    if keepdims:
        rs = list(shape(x))
        rs[r_ax] = rs[c_ax] = 1
        ret = ops.reshape(ret, tuple(rs))
    return ret


def _rcond_cutoff(s, rcond):
    """rcond[..., None] * max(s, -1, keepdims): rcond a Python number or an array broadcasting
    against the batch."""
    from . import composites as ir_composites
    smax = ir_composites.max(s, len(shape(s)) - 1, keepdims=True)
    if isinstance(rcond, (int, float)):
        return ops.mul(smax, float(rcond))
    r = ops.convert(rcond, ops.dtype(s)) if ops.dtype(rcond) != ops.dtype(s) else rcond
    r = ops.reshape(r, shape(r) + (1,))
    out = tuple(np.broadcast_shapes(shape(r), shape(smax)))
    return ops.mul(ops.broadcast_to(r, out), ops.broadcast_to(smax, out))


def _inv_large(s, cutoff):
    """1/s where s > cutoff, else 0 (the masked reciprocal keeps the derivative finite)."""
    large = ops.gt(s, ops.broadcast_to(cutoff, shape(s)))
    one = ops.full(shape(s), 1.0, ops.dtype(s))
    return ops.select(large, ops.div(one, ops.select(large, s, one)),
                      ops.zeros(shape(s), ops.dtype(s)))


_NOVALUE = np._NoValue


def pinv(a, rcond=None, hermitian=False, *, rtol=_NOVALUE):
    """np.linalg.pinv: v diag(1/s) u^T over the singular values above rcond * max(s)."""
    _at_least_2d(a)
    if rcond is None:
        if rtol is _NOVALUE:
            rcond = 1e-15
        elif rtol is None:
            rcond = max(shape(a)[-2:]) * float(np.finfo(np.dtype(
                {"f32": np.float32, "f64": np.float64}[ops.dtype(a)])).eps)
        else:
            rcond = rtol
    elif rtol is not _NOVALUE:
        raise ValueError("`rtol` and `rcond` can't be both set.")
    m, n = shape(a)[-2:]
    if m == 0 or n == 0:
        return ops.zeros(tuple(shape(a)[:-2]) + (n, m), ops.dtype(a))
    u, s, vt = svd(a, full_matrices=False, hermitian=hermitian)
    if not isinstance(rcond, (int, float)):
        rcond = _as_node(rcond)
    si = _inv_large(s, _rcond_cutoff(s, rcond))
    return matmul(prims_linalg.mT(vt), ops.mul(_scale_rows(si, m), prims_linalg.mT(u)))


def _scale_rows(s, cols):
    """(..., k) -> (..., k, cols) with s[..., i] in row i."""
    sh = shape(s)
    return ops.broadcast_in_dim(s, shape=tuple(sh) + (cols,), dims=tuple(range(len(sh))))


def _as_node(x):
    from .core import Node
    if type(x) is Node:
        return x
    return np.asarray(x, dtype=float)


def lstsq(a, b, rcond=None):
    """np.linalg.lstsq -> (x, residuals, rank, s): LAPACK gelsd as NumPy calls it (the
    `lstsq` primitive; f32 computed in f64, as NumPy); residuals as NumPy: the squared
    residual norms when m > n and the rank is n (a guarded, data-dependent shape), else
    empty."""
    from .core import Node
    is_1d = len(shape(b)) == 1
    if is_1d:
        b = ops.reshape(b, shape(b) + (1,))
    for x in (a, b):
        if len(shape(x)) != 2:
            raise LinAlgError(f"{len(shape(x))}-dimensional array given. Array must be "
                              "two-dimensional")
    m, n = shape(a)
    m2, k = shape(b)
    if m != m2:
        raise LinAlgError("Incompatible dimensions")
    dt = ops.dtype(a)
    if rcond is None:
        rcond = float(np.finfo(np.float64).eps) * max(n, m)
    elif isinstance(rcond, Node) or np.ndim(rcond) != 0:
        raise TypeError(f"np.linalg.lstsq: rcond must be a number (a concrete scalar), got "
                        f"{rcond!r}")
    rcond = float(rcond)
    if k == 0:  # LAPACK cannot take no right-hand side: NumPy solves for one zero column
        b = ops.zeros((m, 1), dt)
    x, resids, rank, s = ops.lstsq(a, b, rcond=rcond)
    if m == 0:  # NumPy zeroes the solution (gelsd leaves it unset)
        x = ops.zeros((n, 1 if k == 0 else k), dt)
    if k == 0:
        x = ops.zeros((n, 0), dt)
    if not (m > n and k and _concrete_bool(ops.eq(rank, n))):
        resids = ops.zeros((0,), dt)
    if is_1d:
        x = ops.reshape(x, (n,))
    return x, resids, rank, s


def qr(a, mode="reduced"):
    """np.linalg.qr: (q, r) for 'reduced' and 'complete', r alone for 'r' (geqrf + orgqr as
    NumPy calls them, so the signs are NumPy's); 'raw' (Householder reflectors) is refused."""
    if mode not in ("reduced", "complete", "r", "raw"):
        raise ValueError(f"Unrecognized mode '{mode}'")
    if mode == "raw":
        raise NotImplementedError("np.linalg.qr(mode='raw') is not supported (the Householder "
                                  "reflectors are LAPACK's storage): use 'reduced', 'complete' "
                                  "or 'r'")
    _at_least_2d(a)
    q, r = ops.qr(a, mode="complete" if mode == "complete" else "reduced")
    return r if mode == "r" else (q, r)
