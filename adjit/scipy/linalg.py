"""scipy.linalg on traced arrays: solve_triangular, cho_factor, cho_solve (differentiable,
batched over leading axes, native through BLAS trsm and LAPACK potrf). On plain arrays each
calls SciPy itself."""
from __future__ import annotations

import scipy.linalg as _sl

from ..ir import composites_linalg as _L
from ..tracer.ndarray import TracedArray as _T, wrap as _wrap
from ..tracer.promote import promote_nobroadcast as _promote

__all__ = ["solve_triangular", "cho_factor", "cho_solve"]


def _traced(*xs):
    return any(isinstance(x, _T) for x in xs)


def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False,
                     check_finite=True):
    """scipy.linalg.solve_triangular. On traced arrays a zero on the diagonal gives inf/NaN
    (as JAX) instead of SciPy's LinAlgError; overwrite_b and check_finite change nothing
    there."""
    if not _traced(a, b):
        return _sl.solve_triangular(a, b, trans=trans, lower=lower,
                                    unit_diagonal=unit_diagonal, overwrite_b=overwrite_b,
                                    check_finite=check_finite)
    (x, y), _, _ = _promote([a, b], to_float=True)
    return _wrap(_L.solve_triangular(x, y, trans, lower, unit_diagonal))


def cho_factor(a, lower=False, overwrite_a=False, check_finite=True):
    """scipy.linalg.cho_factor: (c, lower); the other triangle of c holds a's entries."""
    if not _traced(a):
        return _sl.cho_factor(a, lower=lower, overwrite_a=overwrite_a,
                              check_finite=check_finite)
    (x,), _, _ = _promote([a], to_float=True)
    c, low = _L.cho_factor(x, lower)
    return _wrap(c), low


def cho_solve(c_and_lower, b, overwrite_b=False, check_finite=True):
    c, lower = c_and_lower
    if not _traced(c, b):
        return _sl.cho_solve((c, lower), b, overwrite_b=overwrite_b, check_finite=check_finite)
    (x, y), _, _ = _promote([c, b], to_float=True)
    return _wrap(_L.cho_solve((x, lower), y))
