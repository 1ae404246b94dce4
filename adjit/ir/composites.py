"""Composite operations built from primitives, shared by the NumPy front and the Tensor front.

Every function takes recorded Nodes (or NumPy arrays, or Python scalars where noted) and calls
`adjit.ir.ops`, so under a trace it records primitives and outside one it computes with NumPy.
Operands of a binary composite must already have one dtype (each front applies its own type
promotion first); broadcasting is done here, explicitly. Axes may be negative; `axis=None`
means every axis.
"""
from __future__ import annotations

import operator

import numpy as np

from . import ops
from .core import Node
from .types import FLOATS


def shape(x):
    return ops.shape(x)


def ndim(x):
    return len(ops.shape(x))


# NumPy's exception for an axis out of range: an IndexError and a ValueError (np.exceptions
# from NumPy 1.25, np.AxisError before)
AxisError = getattr(np, "exceptions", np).AxisError


def axis_error(a, nd):
    return AxisError(f"axis {a} is out of bounds for array of dimension {nd}")


def norm_axis(a, nd):
    """One non-negative axis for an integer axis `a` of an array of `nd` dimensions; AxisError
    outside [-nd, nd), TypeError for a non-integer (NumPy's normalize_axis_index)."""
    a = operator.index(a)
    if not -nd <= a < nd:
        raise axis_error(a, nd)
    return a % nd


def norm_axes(axis, nd, scalar_int=False):
    """A sorted tuple of non-negative axes for `axis` (None, an int or a sequence): AxisError for
    an axis outside [-nd, nd), ValueError for a repeated one (NumPy's normalize_axis_tuple).
    `scalar_int`: NumPy's ufunc reductions (sum, max, min, prod, any, all) take the int axis 0
    or -1 of a 0-d array and reduce nothing (a legacy rule; a tuple such as (0,) is refused,
    and so are mean, var, std): () then."""
    if axis is None:
        return tuple(range(nd))
    if type(axis) is int and -nd <= axis < nd:  # (the common case)
        return (axis % nd,)
    if isinstance(axis, (int, np.integer)):
        if scalar_int and nd == 0 and axis in (0, -1):
            return ()
        axes = (axis,)
    else:
        axes = tuple(axis)
    out = [norm_axis(a, nd) for a in axes]
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axis}")
    return tuple(sorted(out))


def axis_tuple(axis, nd):
    """NumPy's normalize_axis_tuple with duplicates allowed: an integer or an iterable of
    integers (a float is "not iterable", a str's letters are no integers), each normalized."""
    if type(axis) not in (tuple, list):
        try:
            axis = [operator.index(axis)]
        except TypeError:
            pass
    return tuple(norm_axis(a, nd) for a in axis)


def _keep(r, xshape, axes, keepdims):
    if not keepdims:
        return r
    return ops.reshape(r, tuple(1 if i in axes else d for i, d in enumerate(xshape)))


def broadcast_arrays(*xs):
    """Broadcast every array operand to the common shape (Python scalars stay as they are)."""
    shp = np.broadcast_shapes(*[ops.shape(x) for x in xs if not _is_scalar(x)])
    return [x if _is_scalar(x) else ops.broadcast_to(x, shp) for x in xs]


def _is_scalar(x):
    return isinstance(x, (bool, int, float))


# --- reductions ------------------------------------------------------------------------------
def sum(x, axis=None, keepdims=False):  # noqa: A001
    axes = norm_axes(axis, ndim(x), scalar_int=True)
    return _keep(ops.reduce_sum(x, axes), shape(x), axes, keepdims)


def count(x, axis=None):
    axes = norm_axes(axis, ndim(x))
    n = 1
    for a in axes:
        n *= shape(x)[a]
    return n


def mean(x, axis=None, keepdims=False):
    n = count(x, axis)
    return ops.div(sum(x, axis, keepdims), float(n) if n else float("nan"))


def max(x, axis=None, keepdims=False):  # noqa: A001
    axes = norm_axes(axis, ndim(x), scalar_int=True)
    return _keep(ops.reduce_max(x, axes=axes) if axes else x, shape(x), axes, keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001
    axes = norm_axes(axis, ndim(x), scalar_int=True)
    return _keep(ops.reduce_min(x, axes=axes) if axes else x, shape(x), axes, keepdims)


def var(x, axis=None, ddof=0, keepdims=False):
    n = count(x, axis)
    d = ops.sub(x, ops.broadcast_to(mean(x, axis, keepdims=True), shape(x)))
    return ops.div(sum(ops.mul(d, d), axis, keepdims), float(n - ddof) if n > ddof else 0.0)


def std(x, axis=None, ddof=0, keepdims=False):
    return ops.sqrt(var(x, axis, ddof, keepdims))


def prod(x, axis=None, keepdims=False):
    """Product by a pairwise tree of multiplications: exact, zero-safe, log(n) deep."""
    xs = shape(x)
    axes = norm_axes(axis, len(xs), scalar_int=True)
    rest = [i for i in range(len(xs)) if i not in axes]
    n = count(x, axes)
    y = ops.reshape(ops.transpose(x, tuple(rest + list(axes))),
                    tuple(xs[i] for i in rest) + (n,))
    lead = tuple(xs[i] for i in rest)
    nd = len(lead)
    if n == 0:
        return _keep(ops.full(lead, 1, ops.dtype(x)), xs, axes, keepdims)
    while n > 1:
        if n % 2:
            y = ops.concatenate(y, ops.full(lead + (1,), 1, ops.dtype(x)), axis=nd)
            n += 1
        h = n // 2
        a = ops.slice(y, start=(0,) * nd + (0,), limit=lead + (h,), strides=(1,) * (nd + 1))
        b = ops.slice(y, start=(0,) * nd + (h,), limit=lead + (n,), strides=(1,) * (nd + 1))
        y, n = ops.mul(a, b), h
    return _keep(ops.reshape(y, lead), xs, axes, keepdims)


def logsumexp(x, axis=None, keepdims=False):
    if 0 in [shape(x)[a] for a in norm_axes(axis, ndim(x))]:
        # an empty sum: log 0 = -inf (max, the shift, has no identity there)
        r = ops.log(sum(ops.exp(x), axis, keepdims=True))
        return r if keepdims else ops.reshape(r, tuple(
            d for i, d in enumerate(shape(x)) if i not in norm_axes(axis, ndim(x))))
    m = ops.stop_gradient(max(x, axis, keepdims=True))
    m = ops.select(isfinite(m), m, ops.zeros(shape(m), ops.dtype(m)))
    s = sum(ops.exp(ops.sub(x, ops.broadcast_to(m, shape(x)))), axis, keepdims=True)
    r = ops.add(ops.log(s), m)
    axes = norm_axes(axis, ndim(x))
    return r if keepdims else ops.reshape(r, tuple(d for i, d in enumerate(shape(x))
                                                   if i not in axes))


def softmax(x, axis=-1):
    m = ops.stop_gradient(max(x, axis, keepdims=True))
    e = ops.exp(ops.sub(x, ops.broadcast_to(m, shape(x))))
    return ops.div(e, ops.broadcast_to(sum(e, axis, keepdims=True), shape(x)))


def log_softmax(x, axis=-1):
    return ops.sub(x, ops.broadcast_to(logsumexp(x, axis, keepdims=True), shape(x)))


def cumsum(x, axis=None):
    if axis is None:
        x, axis = ops.reshape(x, (count(x),)), 0
    return ops.cumsum(x, axis=norm_axes(axis, ndim(x))[0], reverse=False)


def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    nd = ndim(x)
    axes = norm_axes(axis, nd)
    ax = abs_(x)
    if ord is None or (ord == "fro" and len(axes) == 2) or (ord == 2 and len(axes) == 1):
        return ops.sqrt(sum(ops.mul(x, x), axes, keepdims))
    if len(axes) == 1:
        if ord == np.inf:
            return max(ax, axes, keepdims)
        if ord == -np.inf:
            return min(ax, axes, keepdims)
        if ord == 0:
            return sum(ops.convert(ops.ne(x, 0.0), ops.dtype(x)), axes, keepdims)
        if ord == 1:
            return sum(ax, axes, keepdims)
        p = float(ord)
        return ops.pow(sum(ops.pow(ax, p), axes, keepdims), 1.0 / p)
    if len(axes) == 2 and ord in (1, -1, np.inf, -np.inf):
        inner = axes[0] if ord in (1, -1) else axes[1]
        s = sum(ax, inner, keepdims=True)
        r = (max if ord > 0 else min)(s, axes[1] if ord in (1, -1) else axes[0], keepdims=True)
        return _keep(ops.reshape(r, tuple(d for i, d in enumerate(shape(x)) if i not in axes)),
                     shape(x), axes, keepdims)
    raise NotImplementedError(f"norm with ord={ord!r} over axes {axes}")


# --- elementwise composites ----------------------------------------------------------------
def abs_(x):
    return ops.abs(x)


def square(x):
    return ops.mul(x, x)


def isnan(x):
    return ops.ne(x, x)


def same_value(x, v):
    """bool: does scalar x hold exactly the value v (a NumPy scalar or 0-d array of x's dtype)?
    Floats compare bit patterns, so 0.0 and -0.0 differ and a NaN matches the same NaN (== would
    call 0.0 and -0.0 equal and a NaN unequal to itself): what a guard on float() must check."""
    v = np.asarray(v)
    if v.dtype.kind == "f":
        it = {4: np.int32, 8: np.int64}[v.dtype.itemsize]
        bits = ops.bitcast_convert_type(x, new_dtype="i32" if it is np.int32 else "i64")
        return ops.eq(bits, int(v.astype(v.dtype).reshape(()).view(it)))
    return ops.eq(x, v.item())


def isinf(x):
    return ops.eq(ops.abs(x), float("inf"))


def isfinite(x):
    return ops.__getattr__("not")(ops.__getattr__("or")(isnan(x), isinf(x)))


def sinh(x):
    return ops.mul(ops.sub(ops.exp(x), ops.exp(ops.neg(x))), 0.5)


def cosh(x):
    return ops.mul(ops.add(ops.exp(x), ops.exp(ops.neg(x))), 0.5)


def sigmoid(x):
    return ops.logistic(x)


def relu(x):
    return ops.maximum(x, 0.0)


def softplus(x):
    """log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))."""
    return ops.add(ops.maximum(x, 0.0), ops.log1p(ops.exp(ops.neg(ops.abs(x)))))


def logaddexp(a, b):
    """log(exp(a) + exp(b)) as NumPy: -inf at (-inf, -inf), inf at (inf, inf), NaN in NaN out.
    Where a - b is NaN (equal infinities, or a NaN) the result is a + b; the gradient there is
    NaN, as PyTorch's (docs/ir.md, non-smooth points)."""
    a, b = broadcast_arrays(a, b)
    m = ops.maximum(a, b)
    diff = ops.sub(a, b)
    d = ops.neg(ops.abs(diff))
    return ops.select(isnan(diff), ops.add(a, b), ops.add(m, ops.log1p(ops.exp(d))))


def clip(x, lo=None, hi=None, keep_x=None):
    """np.clip, bit for bit (signed zeros included). NumPy has two rules. With both bounds
    broadcast along the innermost axis (scalars: `np.clip(x, 0, 1)`) it keeps x where
    lo <= x <= hi, so -0.0 stays -0.0 at a bound 0.0; otherwise (array bounds, or one bound
    None) it is minimum(maximum(x, lo), hi), which takes the bound at a tie. `maximum` and
    `minimum` return their second operand at a tie (NumPy's rule, kept by both tiers), so the
    operand order gives either rule; their derivative splits a tie evenly in either order
    (docs/ir.md). NaN in x or a bound gives NaN. `keep_x`: the caller's decision, made on the
    operands' shapes before it broadcast them (else decided here)."""
    if keep_x is None:
        keep_x = all(b is not None and inner_broadcast(shape(b), shape(x))
                     for b in (lo, hi))
    if lo is not None:
        lo, x = broadcast_arrays(lo, x)
        x = ops.maximum(lo, x) if keep_x else ops.maximum(x, lo)
    if hi is not None:
        hi, x = broadcast_arrays(hi, x)
        x = ops.minimum(hi, x) if keep_x else ops.minimum(x, hi)
    return x


def inner_broadcast(bs, xs):
    """Whether an operand of shape bs is broadcast along the innermost axis of the result
    shape xs (NumPy's loop sees it with stride 0): a scalar, a 0-d array, a last axis of 1
    against a longer one (C order)."""
    return len(bs) == 0 or (bs[-1] == 1 and len(xs) > 0 and xs[-1] != 1)


def where(c, x, y, dtype=None):
    """select with NumPy broadcasting; scalar branches take `dtype` (or the other's)."""
    c, x, y = broadcast_arrays(c, x, y)
    shp = shape(c)
    dt = dtype or (ops.dtype(x) if not _is_scalar(x) else ops.dtype(y))
    if dt is None:
        raise TypeError("where: give a dtype when both branches are Python scalars")
    x = ops.full(shp, x, dt) if _is_scalar(x) else x
    y = ops.full(shp, y, dt) if _is_scalar(y) else y
    return ops.select(c, x, y)


def all_(x, axis=None, keepdims=False):
    bad = ops.convert(ops.__getattr__("not")(ops.convert(x, "bool")), "i64")
    return ops.eq(sum(bad, axis, keepdims), 0)


def any_(x, axis=None, keepdims=False):
    return ops.gt(sum(ops.convert(ops.convert(x, "bool"), "i64"), axis, keepdims), 0)


# --- shape helpers -------------------------------------------------------------------------
def expand_dims(x, axis):
    xs = list(shape(x))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in norm_axes(axes, len(xs) + len(axes)):
        xs.insert(a, 1)
    return ops.reshape(x, tuple(xs))


def squeeze(x, axis=None):
    xs = shape(x)
    if axis is None:
        axes = tuple(i for i, d in enumerate(xs) if d == 1)
    else:
        axes = norm_axes(axis, len(xs), scalar_int=True)
        for a in axes:
            if xs[a] != 1:
                raise ValueError(f"cannot squeeze axis {a} of size {xs[a]} (shape {xs})")
    return ops.reshape(x, tuple(d for i, d in enumerate(xs) if i not in axes))


def moveaxis(x, src, dst):
    nd = ndim(x)
    src = [norm_axis(a, nd) for a in ((src,) if isinstance(src, (int, np.integer)) else src)]
    dst = [norm_axis(a, nd) for a in ((dst,) if isinstance(dst, (int, np.integer)) else dst)]
    if len(src) != len(dst):
        raise ValueError("`source` and `destination` arguments must have the same number of "
                         "elements")
    for axes, what in ((src, "source"), (dst, "destination")):
        if len(set(axes)) != len(axes):
            raise ValueError(f"repeated axis in `{what}` argument")
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return ops.transpose(x, tuple(order))


def swapaxes(x, a, b):
    nd = ndim(x)
    perm = list(range(nd))
    a, b = norm_axis(a, nd), norm_axis(b, nd)
    perm[a], perm[b] = perm[b], perm[a]
    return ops.transpose(x, tuple(perm))


def flip(x, axis=None):
    for a in norm_axes(axis, ndim(x)):
        n = shape(x)[a]
        x = ops.gather(x, np.arange(n - 1, -1, -1, dtype=np.int64), axis=a)
    return x


# --- products (matmul, dot, tensordot, outer, inner, einsum) live in composites_products ---------
from .composites_products import dot, einsum, inner, matmul, outer, tensordot, vdot  # noqa: E402,F401


def is_float(x):
    return ops.dtype(x) in FLOATS


def is_node(x):
    return isinstance(x, Node)
