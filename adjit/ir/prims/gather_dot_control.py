"""gather / scatter_add, dot_general, dtype conversion, stop_gradient, full and guard."""
from __future__ import annotations

from math import prod
import operator

import numpy as np

from .. import ops as o
from ..core import GuardFailed, Primitive, register
from ..types import AType, DTYPES
from ._helpers import ALL, FLOATS, NUMERIC, sample_array
from .structural import linear_jvp, prim


def _s(rng, shp, dt="f64", dom="any"):
    return sample_array(rng, shp, dt, dom)


# --- gather / scatter_add: integer-array indexing along one axis --------------------------------
def _gather_rule(x, idx, *, axis):
    if idx.dtype not in ("i32", "i64"):
        raise TypeError(f"gather: indices must be integers, got {idx.dtype}")
    if not 0 <= axis < x.ndim:
        raise ValueError(f"gather: bad axis {axis} for shape {x.shape}")
    return AType(x.shape[:axis] + idx.shape + x.shape[axis + 1:], x.dtype)


_OUT_OF_RANGE = "an index is out of range in gather/scatter_add"  # as native code's status 2


def _gather_impl(x, idx, *, axis):
    # indices in [-n, n) (a negative one counts from the end, once), as np.take; the fronts
    # turn an index outside its own axis into one outside this range (wrap_traced_index)
    try:
        return np.take(x, idx, axis=axis, mode="raise")
    except IndexError:
        raise IndexError(_OUT_OF_RANGE) from None


def _gather_vjp(ct, x, idx, out, *, axis):
    return [o.scatter_add(o.zeros(o.shape(x), o.dtype(ct)), idx, ct, axis=axis), None]


def _gather_jvp(tangents, x, idx, out, *, axis):
    return None if tangents[0] is None else o.gather(tangents[0], idx, axis=axis)


def _gather_samples(dt, rng):
    return [([_s(rng, (4, 3), dt), np.array([3, 0, 0, 2], np.int64)], {"axis": 0}),
            ([_s(rng, (2, 5), dt), np.array([[1, 4], [4, 4]], np.int64)], {"axis": 1})]


prim("gather", _gather_rule, _gather_impl, _gather_vjp, _gather_jvp, _gather_samples,
     dtypes=ALL, fp_warns=False)


def _scatter_rule(x, idx, upd, *, axis):
    want = _gather_rule(x, idx, axis=axis)
    if upd.shape != want.shape or upd.dtype != x.dtype:
        raise ValueError(f"scatter_add: updates {upd} do not match {want}")
    return AType(x.shape, x.dtype)


def _scatter_impl(x, idx, upd, *, axis):
    out = np.array(x, copy=True)
    xm = np.moveaxis(out, axis, 0)
    um = np.moveaxis(upd, list(range(axis, axis + idx.ndim)), list(range(idx.ndim)))
    try:
        np.add.at(xm, idx, um)
    except IndexError:
        raise IndexError(_OUT_OF_RANGE) from None
    return out


def _scatter_vjp(ct, x, idx, upd, out, *, axis):
    return [ct, None, o.gather(ct, idx, axis=axis)]


def _scatter_jvp(tangents, x, idx, upd, out, *, axis):
    tx, _, tu = tangents
    if tx is None and tu is None:
        return None
    tx = o.zeros(o.shape(x), o.dtype(out)) if tx is None else tx
    tu = o.zeros(o.shape(upd), o.dtype(out)) if tu is None else tu
    return o.scatter_add(tx, idx, tu, axis=axis)


prim("scatter_add", _scatter_rule, _scatter_impl, _scatter_vjp, _scatter_jvp,
     lambda dt, rng: [([_s(rng, (4, 3), dt), np.array([3, 0, 0], np.int64),
                        _s(rng, (3, 3), dt)], {"axis": 0})], dtypes=NUMERIC, saves=False)


# --- dot_general ------------------------------------------------------------------------------
def _free(ndim, contract, batch):
    return [d for d in range(ndim) if d not in contract and d not in batch]


def _dot_rule(x, y, *, contract, batch):
    (lc, rc), (lb, rb) = contract, batch
    if x.dtype != y.dtype:
        raise TypeError(f"dot_general: operand dtypes {x.dtype} and {y.dtype} differ")
    if [x.shape[a] for a in lc] != [y.shape[a] for a in rc] or \
            [x.shape[a] for a in lb] != [y.shape[a] for a in rb]:
        raise ValueError(f"dot_general: shapes {x.shape} and {y.shape} do not match on "
                         f"contracting dims {contract} / batch dims {batch}")
    shp = [x.shape[a] for a in lb] + [x.shape[a] for a in _free(x.ndim, lc, lb)] + \
        [y.shape[a] for a in _free(y.ndim, rc, rb)]
    return AType(shp, x.dtype)


# (x's shape, y's shape, contracted dims of each) -> how np.tensordot computes that product:
# (x's axis order, its 2-D shape, y's axis order, its 2-D shape, the result's shape)
_TENSORDOT: dict = {}


def _tensordot(x, y, lc, rc):
    """np.tensordot(x, y, axes=(lc, rc)): the same transposes, reshapes and np.dot call,
    worked out once per shapes (np.tensordot's Python bookkeeping costs several times the
    product of a small vector), so the same bits."""
    if type(x) is not np.ndarray or type(y) is not np.ndarray or min(lc + rc, default=0) < 0:
        return np.tensordot(x, y, axes=(lc, rc))
    key = (x.shape, y.shape, tuple(lc), tuple(rc))
    how = _TENSORDOT.get(key)
    if how is None:
        xs, ys = x.shape, y.shape
        xfree = [k for k in range(x.ndim) if k not in lc]
        yfree = [k for k in range(y.ndim) if k not in rc]
        how = (tuple(xfree) + tuple(lc), (prod(xs[a] for a in xfree), prod(xs[a] for a in lc)),
               tuple(rc) + tuple(yfree), (prod(ys[a] for a in rc), prod(ys[a] for a in yfree)),
               tuple(xs[a] for a in xfree) + tuple(ys[a] for a in yfree))
        if len(_TENSORDOT) >= 1024:
            _TENSORDOT.clear()
        _TENSORDOT[key] = how
    return np.dot(x.transpose(how[0]).reshape(how[1]),
                  y.transpose(how[2]).reshape(how[3])).reshape(how[4])


# 2-D products of arrays: `x @ y`, or what the runtime installs (`set_matmul`: runtime/native.py
# `matmul` for products OpenBLAS would run on its own thread pool)
_MATMUL = operator.matmul


def set_matmul(fn):
    """Make `fn(x, y)` compute dot_general's 2-D matrix products (x @ y) of arrays."""
    global _MATMUL
    _MATMUL = fn


def _dot_impl(x, y, *, contract, batch):
    (lc, rc), (lb, rb) = contract, batch
    if not lb:
        if x.ndim == 2 and y.ndim == 2 and len(lc) == 1:
            # np.tensordot's 2-D cases are these transposed products (the same BLAS call)
            return _MATMUL(x if lc == (1,) else x.T, y if rc == (0,) else y.T)
        return _tensordot(x, y, lc, rc).astype(x.dtype, copy=False)
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    xs = [None] * x.ndim
    ys = [None] * y.ndim
    for a, b in zip(lb, rb):
        xs[a] = ys[b] = next(letters)
    for a, b in zip(lc, rc):
        xs[a] = ys[b] = next(letters)
    for i in range(x.ndim):
        xs[i] = xs[i] or next(letters)
    for i in range(y.ndim):
        ys[i] = ys[i] or next(letters)
    out = [xs[a] for a in lb] + [xs[a] for a in _free(x.ndim, lc, lb)] + \
        [ys[a] for a in _free(y.ndim, rc, rb)]
    return np.einsum(f"{''.join(xs)},{''.join(ys)}->{''.join(out)}", x, y)


def _dot_ct(ct, other, own_ndim, own_c, own_b, oth_c, oth_b, oth_free, own_free,
            ct_free_other):
    """Cotangent of one operand: contract ct's dims of the other operand's free dims with them,
    then put the dims back in the operand's order."""
    nb = len(own_b)
    # own_c in the order of oth_c (the argsort of distinct dims, without NumPy's ~1 us)
    own_from_oth = [own_c[i] for i in sorted(range(len(oth_c)), key=oth_c.__getitem__)]
    if not nb and own_from_oth + own_free == list(range(own_ndim)):
        # the product with the operands swapped comes out in the operand's own order (the
        # weight's gradient X.T @ dz of a matmul): no transpose, whose copy the interpreter
        # would make (W3: a second 1.6 MB buffer per call)
        return o.dot_general(other, ct, contract=(tuple(oth_free), tuple(ct_free_other)),
                             batch=((), ()))
    r = o.dot_general(ct, other, contract=(tuple(ct_free_other), tuple(oth_free)),
                      batch=(tuple(range(nb)), tuple(oth_b)))
    order = list(own_b) + own_free + own_from_oth
    return o.transpose(r, tuple(order.index(d) for d in range(own_ndim)))


def _dot_vjp(ct, x, y, out, *, contract, batch):
    (lc, rc), (lb, rb) = contract, batch
    xn, yn = len(o.shape(x)), len(o.shape(y))
    xfree, yfree = _free(xn, lc, lb), _free(yn, rc, rb)
    nb, nxf = len(lb), len(xfree)
    ct_xfree = list(range(nb, nb + nxf))
    ct_yfree = list(range(nb + nxf, nb + nxf + len(yfree)))
    cx = _dot_ct(ct, y, xn, lc, lb, rc, rb, yfree, xfree, ct_yfree)
    cy = _dot_ct(ct, x, yn, rc, rb, lc, lb, xfree, yfree, ct_xfree)
    return [cx, cy]


def _dot_jvp(tangents, x, y, out, *, contract, batch):
    tx, ty = tangents
    parts = []
    if tx is not None:
        parts.append(o.dot_general(tx, y, contract=contract, batch=batch))
    if ty is not None:
        parts.append(o.dot_general(x, ty, contract=contract, batch=batch))
    return None if not parts else parts[0] if len(parts) == 1 else o.add(*parts)


def _dot_samples(dt, rng):
    mm = {"contract": ((1,), (0,)), "batch": ((), ())}
    return [([_s(rng, (3, 4), dt), _s(rng, (4, 2), dt)], mm),
            ([_s(rng, (4,), dt), _s(rng, (4,), dt)], {"contract": ((0,), (0,)),
                                                      "batch": ((), ())}),
            ([_s(rng, (2, 3, 4), dt), _s(rng, (2, 4, 5), dt)],
             {"contract": ((2,), (1,)), "batch": ((0,), (0,))}),
            ([_s(rng, (4, 3), dt), _s(rng, (5, 4), dt)], {"contract": ((0,), (1,)),
                                                          "batch": ((), ())})]


prim("dot_general", _dot_rule, _dot_impl, _dot_vjp, _dot_jvp, _dot_samples, dtypes=NUMERIC)


# --- conversions, stop_gradient, full, guard -------------------------------------------------
def _convert_vjp(ct, x, out, *, new_dtype):
    xd = o.dtype(x)
    return [o.convert(ct, xd) if xd in FLOATS and new_dtype in FLOATS else None]


def _convert_jvp(tangents, x, out, *, new_dtype):
    t = tangents[0]
    return None if t is None or new_dtype not in FLOATS else o.convert(t, new_dtype)


prim("convert_element_type", lambda x, *, new_dtype: AType(x.shape, new_dtype),
     lambda x, *, new_dtype: x.astype(DTYPES[new_dtype]), _convert_vjp, _convert_jvp,
     lambda dt, rng: [([_s(rng, (3, 4), dt)], {"new_dtype": "f64" if dt == "f32" else "f32"})],
     dtypes=ALL, saves=False, kind="elementwise")

_BITS_TWIN = {"f32": "i32", "i32": "f32", "f64": "i64", "i64": "f64"}


def _bitcast_rule(x, *, new_dtype):
    if _BITS_TWIN.get(x.dtype) != new_dtype:
        raise TypeError(f"bitcast_convert_type: {x.dtype} has no bit-for-bit twin "
                        f"{new_dtype} (f32 <-> i32, f64 <-> i64)")
    return AType(x.shape, new_dtype)


# the same bits read as another dtype of the same width: what a guard on float() compares, so
# that 0.0 and -0.0 (equal under ==) differ and a NaN matches itself
prim("bitcast_convert_type", _bitcast_rule,
     lambda x, *, new_dtype: np.ascontiguousarray(x).view(DTYPES[new_dtype]), None, None,
     lambda dt, rng: [([_s(rng, (3, 4), dt)], {"new_dtype": _BITS_TWIN[dt]})] + (
         [([np.array([0.0, -0.0, np.nan, -np.inf], DTYPES[dt])], {"new_dtype": _BITS_TWIN[dt]})]
         if dt in FLOATS else []),
     dtypes=NUMERIC, saves=False, smooth=False, kind="elementwise", fp_warns=False)

prim("stop_gradient", lambda x: x, lambda x: x, lambda ct, x, out: [None],
     lambda tangents, x, out: None,
     lambda dt, rng: [([_s(rng, (3,), dt)], {})], dtypes=ALL, saves=False, smooth=False,
     kind="elementwise", fp_warns=False)


def _full_rule(*, shape, value, dtype):
    return AType(shape, dtype)


prim("full", _full_rule, lambda *, shape, value, dtype: np.full(shape, value, DTYPES[dtype]),
     None, None, lambda dt, rng: [([], {"shape": (2, 3), "value": 1.5 if dt in FLOATS else 1,
                                    "dtype": dt})],
     dtypes=ALL, saves=False, smooth=False)


def _guard_rule(c, *, expect=True):
    if c.dtype != "bool" or c.shape != ():
        raise TypeError(f"guard: needs a bool scalar, got {c}")
    return None


def _guard_impl(c, *, expect=True):
    if bool(c) != expect:
        raise GuardFailed(f"guard expected {expect}")
    return None


prim("guard", _guard_rule, _guard_impl, None, None,
     lambda dt, rng: [([np.array(True)], {"expect": True})], dtypes=("bool",), saves=False,
     smooth=False, kind="effect", fp_warns=False)
