"""scipy.special on traced arrays.

The ufuncs (erf, gammaln, digamma, xlogy, ...) are SciPy's own objects: NumPy hands a traced
operand to `TracedArray.__array_ufunc__`, which records adjit's primitives (see
adjit/ir/prims/special.py), so `scipy.special.erf(x)` works inside grad/jit/vmap unchanged and
they are re-exported here. The functions SciPy writes in Python (they convert their arguments
with np.asarray, which a traced array refuses) have adjit versions with SciPy's signatures:
`logsumexp` (b=, keepdims=, return_sign=), `softmax`, `log_softmax`, `polygamma`. On plain
arrays these call SciPy itself.
"""
from __future__ import annotations

import operator

import numpy as np
import scipy.special as _sp
from scipy.special import (betaln, entr, erf, erfc, erfcinv, erfinv, expit, expm1,  # noqa: F401
                           gamma, gammaln, i0e, i1e, kl_div, log1p, log_expit, log_ndtr,
                           logit, ndtr, ndtri, psi, rel_entr, xlog1py, xlogy)

from ..ir.core import REGISTRY, bind
from ..tracer.ndarray import where_str
from ._util import promote, stop_gradient, traced, wrap

digamma = psi

__all__ = ["logsumexp", "softmax", "log_softmax", "polygamma", "softplus", "betaln", "entr",
           "erf", "erfc", "erfcinv", "erfinv", "expit", "expm1", "gamma", "gammaln", "digamma",
           "psi", "i0e", "i1e", "kl_div", "log1p", "log_expit", "log_ndtr", "logit", "ndtr",
           "ndtri", "rel_entr", "xlog1py", "xlogy"]


def softplus(x):
    """log(1 + exp(x)) (scipy.special.softplus)."""
    return np.logaddexp(0.0, x)


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """log(sum(b * exp(a))) along `axis` without overflow, as scipy.special.logsumexp; with
    return_sign=True, (log|s|, sign(s)) of s = sum(b * exp(a))."""
    shape = np.shape(a) if b is None else np.broadcast_shapes(np.shape(a), np.shape(b))
    empty = 0 in shape
    if not traced(a, b) and not (empty and len(shape) > 1 and (
            axis is None or not isinstance(axis, (int, np.integer)))):
        return _sp.logsumexp(a, axis=axis, b=b, keepdims=keepdims, return_sign=return_sign)
    if b is not None and np.shape(a) != np.shape(b):  # SciPy broadcasts a and b first
        a, b = np.broadcast_to(a, shape), np.broadcast_to(b, shape)
    if empty:
        # an empty array (SciPy's branch for it): -inf where the sum is empty (log 0), sign
        # -1 (SciPy's sign of -inf); no max to shift by. Written as log(sum(b * exp(a))), so
        # the gradient is the input's (empty) zeros. SciPy 1.17 raises IndexError for an
        # empty array of several dimensions reduced over several axes (its shape arithmetic);
        # adjit gives the same -inf there, traced or not
        with np.errstate(divide="ignore"):
            e = np.exp(a) if b is None else b * np.exp(a)
            out = np.log(np.sum(e, axis=axis, keepdims=True))
        sgn = np.sign(out) if return_sign else None
    else:
        out, sgn = _shifted_logsumexp(a, b, axis, return_sign)
    if not keepdims:
        ax = tuple(range(len(shape))) if axis is None else axis
        out = np.squeeze(out, axis=ax)
        if return_sign:
            sgn = np.squeeze(sgn, axis=ax)
    return (out, sgn) if return_sign else out


def _shifted_logsumexp(a, b, axis, return_sign):
    """(log|sum(b * exp(a))|, its sign or None) along `axis` (kept), shifted by the max."""
    m = np.max(a, axis=axis, keepdims=True)
    m = stop_gradient(np.where(np.isfinite(m), m, 0.0))
    e = np.exp(a - m)
    if b is not None:
        e = b * e
    s = np.sum(e, axis=axis, keepdims=True)
    sgn = None
    if return_sign:
        sgn = np.sign(s)
        s = np.abs(s)
    return np.log(s) + m, sgn


def softmax(x, axis=None):
    """exp(x) / sum(exp(x)) along `axis` (all elements when None), as scipy.special.softmax."""
    if not traced(x):
        return _sp.softmax(x, axis=axis)
    return np.exp(x - logsumexp(x, axis=axis, keepdims=True))


def log_softmax(x, axis=None):
    """x - logsumexp(x) along `axis`, as scipy.special.log_softmax."""
    if not traced(x):
        return _sp.log_softmax(x, axis=axis)
    return x - logsumexp(x, axis=axis, keepdims=True)


def polygamma(n, x):
    """The n-th derivative of digamma (scipy.special.polygamma); on traced arrays the order n
    is a Python int (one primitive per order: polygamma[n])."""
    if not traced(n, x):
        return _sp.polygamma(n, x)
    if traced(n):
        raise TypeError(f"adjit.scipy.special.polygamma: the order n must be a Python int, "
                        f"not a traced array{where_str()}")
    try:
        k = operator.index(n)
    except TypeError:
        k = int(n) if float(n) == int(n) else -1
    if k < 0:
        raise ValueError(f"adjit.scipy.special.polygamma: order n={n!r} must be a "
                         f"non-negative integer{where_str()}")
    (xn,), _, _ = promote([x], "polygamma", to_float=True)
    return wrap(bind(REGISTRY["polygamma"], xn, n=k))
