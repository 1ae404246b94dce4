"""np.linalg on TracedArrays (registered into np_dispatch.FUNCS): the composites of
adjit/ir/composites_linalg.py, results wrapped as NumPy returns them (named tuples included)."""
from __future__ import annotations

import numpy as np

from ..ir import composites_linalg as L
from .ndarray import wrap
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
