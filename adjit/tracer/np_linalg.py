"""np.linalg on TracedArrays (registered into np_dispatch.FUNCS): the composites of
adjit/ir/composites_linalg.py, results wrapped as NumPy returns them (named tuples included)."""
from __future__ import annotations

import operator

import numpy as np

from ..ir import composites_linalg as ir_composites_linalg
from .ndarray import wrap
from ..ir import ops
from .np_dispatch import _one, func, reduce_axis
from .promote import promote_nobroadcast

_R = np.linalg._linalg


def _floats(*xs):
    return promote_nobroadcast(list(xs), to_float=True)[0]


@func("linalg.solve")
def _solve(a, b):
    x, y = _floats(a, b)
    return wrap(ir_composites_linalg.solve(x, y))


@func("linalg.inv")
def _inv(a):
    return wrap(ir_composites_linalg.inv(_one(a, to_float=True)))


@func("linalg.det")
def _det(a):
    return wrap(ir_composites_linalg.det(_one(a, to_float=True)))


@func("linalg.slogdet")
def _slogdet(a):
    s, l = ir_composites_linalg.slogdet(_one(a, to_float=True))
    return _R.SlogdetResult(wrap(s), wrap(l))


@func("linalg.cholesky")
def _cholesky(a, upper=False):
    return wrap(ir_composites_linalg.cholesky(_one(a, to_float=True), upper))


@func("linalg.eigh")
def _eigh(a, UPLO="L"):  # noqa: N803
    w, v = ir_composites_linalg.eigh(_one(a, to_float=True), UPLO)
    return _R.EighResult(wrap(w), wrap(v))


@func("linalg.eigvalsh")
def _eigvalsh(a, UPLO="L"):  # noqa: N803
    return wrap(ir_composites_linalg.eigvalsh(_one(a, to_float=True), UPLO))


@func("linalg.matrix_power")
def _matrix_power(a, n):
    return wrap(ir_composites_linalg.matrix_power(_one(a), n))


@func("linalg.multi_dot")
def _multi_dot(arrays):
    return wrap(ir_composites_linalg.multi_dot(promote_nobroadcast(list(arrays))[0]))


@func("linalg.svd")
def _svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    r = ir_composites_linalg.svd(_one(a, to_float=True), full_matrices, compute_uv, hermitian)
    if not compute_uv:
        return wrap(r)
    return _R.SVDResult(*(wrap(x) for x in r))


@func("linalg.svdvals")
def _svdvals(x):
    return wrap(ir_composites_linalg.svd(_one(x, to_float=True), compute_uv=False))


@func("linalg.norm")
def _norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    if type(axis) is tuple:  # NumPy: one axis goes to add.reduce, two are normalized
        axis = reduce_axis(axis) if len(axis) == 1 else tuple(operator.index(a) for a in axis)
    return wrap(ir_composites_linalg.norm(_one(x, to_float=True), ord, axis, keepdims))


@func("linalg.matrix_norm")
def _matrix_norm(x, *, keepdims=False, ord="fro"):  # noqa: A002
    return wrap(ir_composites_linalg.norm(_one(x, to_float=True), ord, (-2, -1), keepdims))


@func("linalg.vector_norm")
def _vector_norm(x, *, axis=None, keepdims=False, ord=2):  # noqa: A002
    x = _one(x, to_float=True)
    if axis is None:
        shp = ir_composites_linalg.shape(x)
        r = ir_composites_linalg.norm(ops.reshape(x, (int(np.prod(shp)),)), ord, 0, False)
        return wrap(ops.reshape(r, (1,) * len(shp)) if keepdims else r)
    if isinstance(axis, tuple) and len(axis) > 1:
        from ..ir import composites as ir_composites
        nd = len(ir_composites_linalg.shape(x))
        axes = ir_composites.norm_axes(axis, nd)
        rest = [i for i in range(nd) if i not in axes]
        shp = ir_composites_linalg.shape(x)
        y = ops.reshape(ops.transpose(x, tuple(rest) + axes),
                        tuple(shp[i] for i in rest) + (int(np.prod([shp[i] for i in axes])),))
        r = ir_composites_linalg.norm(y, ord, -1, False)
        if keepdims:
            r = ops.reshape(r, tuple(1 if i in axes else d for i, d in enumerate(shp)))
        return wrap(r)
    return wrap(ir_composites_linalg.norm(x, ord, axis, keepdims))


@func("linalg.pinv")
def _pinv(a, rcond=None, hermitian=False, *, rtol=np._NoValue):
    if rcond is not None and not isinstance(rcond, (int, float)):
        rcond = _one(rcond, to_float=True)
    if rtol is not None and rtol is not np._NoValue and not isinstance(rtol, (int, float)):
        rtol = _one(rtol, to_float=True)
    return wrap(ir_composites_linalg.pinv(_one(a, to_float=True), rcond, hermitian, rtol=rtol))


@func("linalg.lstsq")
def _lstsq(a, b, rcond=None):
    x, y = _floats(a, b)
    xs, res, rank, s = ir_composites_linalg.lstsq(x, y, rcond)
    return wrap(xs), wrap(res), wrap(rank), wrap(s)


@func("linalg.qr")
def _qr(a, mode="reduced"):
    r = ir_composites_linalg.qr(_one(a, to_float=True), mode)
    if mode == "r":
        return wrap(r)
    return _R.QRResult(*(wrap(x) for x in r))
