"""np.linalg on TracedArrays (registered into np_dispatch.FUNCS): the composites of
adjit/ir/composites_linalg.py, results wrapped as NumPy returns them (named tuples included)."""
from __future__ import annotations

import numpy as np

from ..ir import composites_linalg as L
from .ndarray import wrap
from ..ir import ops
from .np_dispatch import _one, func
from .promote import promote_nobroadcast

_R = np.linalg._linalg


def _floats(*xs):
    return promote_nobroadcast(list(xs), to_float=True)[0]


@func("linalg.solve")
def _solve(a, b):
    x, y = _floats(a, b)
    return wrap(L.solve(x, y))


@func("linalg.inv")
def _inv(a):
    return wrap(L.inv(_one(a, to_float=True)))


@func("linalg.det")
def _det(a):
    return wrap(L.det(_one(a, to_float=True)))


@func("linalg.slogdet")
def _slogdet(a):
    s, l = L.slogdet(_one(a, to_float=True))
    return _R.SlogdetResult(wrap(s), wrap(l))


@func("linalg.cholesky")
def _cholesky(a, upper=False):
    return wrap(L.cholesky(_one(a, to_float=True), upper))


@func("linalg.eigh")
def _eigh(a, UPLO="L"):  # noqa: N803
    w, v = L.eigh(_one(a, to_float=True), UPLO)
    return _R.EighResult(wrap(w), wrap(v))


@func("linalg.eigvalsh")
def _eigvalsh(a, UPLO="L"):  # noqa: N803
    return wrap(L.eigvalsh(_one(a, to_float=True), UPLO))


@func("linalg.matrix_power")
def _matrix_power(a, n):
    return wrap(L.matrix_power(_one(a), n))


@func("linalg.multi_dot")
def _multi_dot(arrays):
    return wrap(L.multi_dot(promote_nobroadcast(list(arrays))[0]))


@func("linalg.svd")
def _svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    r = L.svd(_one(a, to_float=True), full_matrices, compute_uv, hermitian)
    if not compute_uv:
        return wrap(r)
    return _R.SVDResult(*(wrap(x) for x in r))


@func("linalg.svdvals")
def _svdvals(x):
    return wrap(L.svd(_one(x, to_float=True), compute_uv=False))


@func("linalg.norm")
def _norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    return wrap(L.norm(_one(x, to_float=True), ord, axis, keepdims))


@func("linalg.matrix_norm")
def _matrix_norm(x, *, keepdims=False, ord="fro"):  # noqa: A002
    return wrap(L.norm(_one(x, to_float=True), ord, (-2, -1), keepdims))


@func("linalg.vector_norm")
def _vector_norm(x, *, axis=None, keepdims=False, ord=2):  # noqa: A002
    x = _one(x, to_float=True)
    if axis is None:
        shp = L.shape(x)
        r = L.norm(ops.reshape(x, (int(np.prod(shp)),)), ord, 0, False)
        return wrap(ops.reshape(r, (1,) * len(shp)) if keepdims else r)
    if isinstance(axis, tuple) and len(axis) > 1:
        from ..ir import composites as C
        nd = len(L.shape(x))
        axes = C.norm_axes(axis, nd)
        rest = [i for i in range(nd) if i not in axes]
        shp = L.shape(x)
        y = ops.reshape(ops.transpose(x, tuple(rest) + axes),
                        tuple(shp[i] for i in rest) + (int(np.prod([shp[i] for i in axes])),))
        r = L.norm(y, ord, -1, False)
        if keepdims:
            r = ops.reshape(r, tuple(1 if i in axes else d for i, d in enumerate(shp)))
        return wrap(r)
    return wrap(L.norm(x, ord, axis, keepdims))


@func("linalg.pinv")
def _pinv(a, rcond=None, hermitian=False, *, rtol=np._NoValue):
    if rcond is not None and not isinstance(rcond, (int, float)):
        rcond = _one(rcond, to_float=True)
    if rtol is not None and rtol is not np._NoValue and not isinstance(rtol, (int, float)):
        rtol = _one(rtol, to_float=True)
    return wrap(L.pinv(_one(a, to_float=True), rcond, hermitian, rtol=rtol))


@func("linalg.lstsq")
def _lstsq(a, b, rcond=None):
    x, y = _floats(a, b)
    xs, res, rank, s = L.lstsq(x, y, rcond)
    return wrap(xs), wrap(res), wrap(rank), wrap(s)
