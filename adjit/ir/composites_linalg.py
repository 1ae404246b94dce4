"""np.linalg and scipy.linalg as composites of the linear-algebra primitives (prims/linalg.py):
NumPy's shape rules, broadcasting and errors; the fronts wrap these."""
from __future__ import annotations

import numpy as np

from . import ops
from .composites_dot import matmul
from .prims import linalg as P

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
    return ops.linalg_solve(a, P.eye_like(a), check=True)


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
    return P.mT(L) if upper else L


def eigh(a, UPLO="L"):  # noqa: N803
    if UPLO not in ("L", "U"):
        raise ValueError("UPLO argument must be 'L' or 'U'")
    _square(a)
    return ops.eigh(a, uplo=UPLO)


def eigvalsh(a, UPLO="L"):  # noqa: N803
    return eigh(a, UPLO)[0]


def matrix_power(a, n):
    _square(a)
    try:
        n = int(n) if not isinstance(n, bool) and int(n) == n else None
    except TypeError:
        n = None
    if n is None:
        raise TypeError("exponent must be an integer")
    if n == 0:
        return P.eye_like(a)
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
        from .composites_dot import dot
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
    t = P.tril(a) if lower else P.triu(a)
    k = -1 if lower else 1
    L = ops.cholesky(ops.add(t, P.mT(P.tril(a, k) if lower else P.triu(a, k))))
    if lower:
        return ops.select(P._mask(a, 0), L, a), lower
    return ops.select(P._mask(a, 0, upper=True), P.mT(L), a), lower


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
