"""NumPy's shape, indexing, sorting and nan-reduction functions on TracedArrays (registered into
np_dispatch.FUNCS). The computations are composites of adjit.ir.composites_shape; this module
does NumPy's argument handling (axes, keywords, dtypes) and refuses what it does not support."""
from __future__ import annotations

import operator

import numpy as np

from ..ir import composites as ir_composites
from ..ir import composites_shape
from ..ir import ops
from ..ir.core import REGISTRY, bind
from .np_indexing import _mask_indices
from .ndarray import TracedArray, deepest, promote, promote_nobroadcast, where_str, wrap
from . import np_dispatch
from .np_dispatch import FUNCS, _acc, _dt, _int_axis, _one, as_1d, func, reduce_axis, refuse

_NO = np._NoValue


def _static(name, what, v):
    """A shape-deciding argument must be a plain value (a traced one would make the result's
    shape data-dependent)."""
    if isinstance(v, TracedArray) or (isinstance(v, (list, tuple)) and
                                      any(isinstance(e, TracedArray) for e in v)):
        raise TypeError(f"np.{name}: {what} decides the result's shape and must not be traced"
                        f"{where_str()}")
    return v


def _axis1(name, x, axis):
    """One axis: an integer (None and tuples are TypeErrors, as NumPy's)."""
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"np.{name}: axis={axis!r} must be an integer{where_str()}") from None
    return ir_composites.norm_axes(axis, ir_composites.ndim(x))[0]


def _dtype_of(v):
    return np.dtype(v.dtype) if hasattr(v, "dtype") else np.asarray(v).dtype


def _weak(a):
    return getattr(a, "weak", False)


# --- reorderings -------------------------------------------------------------------------------
@func("flipud")
def _flipud(m):
    return wrap(ir_composites.flip(_one(m), 0))


@func("fliplr")
def _fliplr(m):
    x = _one(m)
    if ir_composites.ndim(x) < 2:
        raise ValueError("Input must be >= 2-d.")
    return wrap(ir_composites.flip(x, 1))


@func("rot90")
def _rot90(m, k=1, axes=(0, 1)):
    x = _one(m)
    axes = tuple(axes)
    nd = ir_composites.ndim(x)
    if len(axes) != 2:
        raise ValueError("len(axes) must be 2.")
    if axes[0] == axes[1] or abs(axes[0] - axes[1]) == nd:
        raise ValueError("Axes must be different.")
    if not all(-nd <= a < nd for a in axes):
        raise ValueError(f"Axes={axes} out of range for array of ndim={nd}.")
    return wrap(composites_shape.rot90(x, operator.index(k), axes))


@func("roll")
def _roll(a, shift, axis=None):
    _static("roll", "shift", shift)
    x = _one(a)
    nd = ir_composites.ndim(x)
    # NumPy's order: the axes normalized, shift and axis broadcast (1-D at most), then the
    # rolls; axis=None rolls the flat array along its axis 0
    axes = (0,) if axis is None else ir_composites.axis_tuple(axis, nd)
    if np.broadcast(np.asarray(shift), np.asarray(axes, dtype=np.intp)).ndim > 1:
        raise ValueError("'shift' and 'axis' should be scalars or 1D sequences")
    if axis is not None and nd == 0:  # (NumPy's loop over a 0-d array's rolls unpacks nothing)
        raise ValueError("not enough values to unpack (expected 2, got 0)")
    return wrap(composites_shape.roll(x, shift, None if axis is None else axes), _weak(a))


@func("rollaxis")
def _rollaxis(a, axis, start=0):
    x = _one(a)
    nd = ir_composites.ndim(x)
    axis = ir_composites.norm_axes(axis, nd)[0]
    if not -nd <= start <= nd:
        raise ValueError(f"start={start} out of range")
    start = start % (nd + 1) if start < 0 else start
    if axis < start:
        start -= 1
    return wrap(ir_composites.moveaxis(x, axis, start) if axis != start else x)


@func("repeat")
def _repeat(a, repeats, axis=None):
    _static("repeat", "repeats", repeats)
    x = as_1d(_one(a), axis)
    ax = None if axis is None else _axis1("repeat", x, axis)
    return wrap(composites_shape.repeat(x, np.asarray(repeats), ax), _weak(a))


@func("tile")
def _tile(A, reps):  # noqa: N803  (NumPy's parameter name)
    _static("tile", "reps", reps)
    return wrap(composites_shape.tile(_one(A), reps))


# --- diagonals and triangles -----------------------------------------------------------------
@func("diag")
def _diag(v, k=0):
    x = _one(v)
    if ir_composites.ndim(x) == 1:
        return wrap(composites_shape.diag_matrix(x, operator.index(k)))
    if ir_composites.ndim(x) == 2:
        return wrap(composites_shape.diagonal(x, operator.index(k)))
    raise ValueError("Input must be 1- or 2-d.")


@func("diagflat")
def _diagflat(v, k=0):
    x = _one(v)
    return wrap(composites_shape.diag_matrix(ops.reshape(x, (ir_composites.count(x),)), operator.index(k)))


@func("diagonal")
def _diagonal(a, offset=0, axis1=0, axis2=1):
    x = _one(a)
    if ir_composites.ndim(x) < 2:
        raise ValueError("diag requires an array of at least two dimensions")
    return wrap(composites_shape.diagonal(x, operator.index(offset), axis1, axis2))


@func("trace")
def _trace(a, offset=0, axis1=0, axis2=1, dtype=None):
    x = _acc(a, dtype, name="trace")
    if ir_composites.ndim(x) < 2:
        raise ValueError("diag requires an array of at least two dimensions")
    return wrap(ir_composites.sum(composites_shape.diagonal(x, operator.index(offset), axis1, axis2), -1))


@func("triu")
def _triu(m, k=0):
    return wrap(composites_shape.triangle(_one(m), operator.index(k), True))


@func("tril")
def _tril(m, k=0):
    return wrap(composites_shape.triangle(_one(m), operator.index(k), False))


# --- products ----------------------------------------------------------------------------------
@func("kron")
def _kron(a, b):
    (x, y), _, _ = promote_nobroadcast([a, b])
    return wrap(composites_shape.kron(x, y))


@func("cross")
def _cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    if axis is not None:
        axisa = axisb = axisc = axis
    axisa, axisb, axisc = (operator.index(v) for v in (axisa, axisb, axisc))
    (x, y), _, _ = promote_nobroadcast([a, b])
    x, y = ir_composites.moveaxis(x, axisa, -1), ir_composites.moveaxis(y, axisb, -1)
    if ops.shape(x)[-1] != 3 or ops.shape(y)[-1] != 3:
        raise ValueError("np.cross of 2-vectors is deprecated in NumPy 2 and not supported on "
                         "traced arrays; both operands need 3 components along the axis")
    x, y = ir_composites.broadcast_arrays(x, y)
    return wrap(ir_composites.moveaxis(composites_shape.cross3(x, y, -1), -1, axisc))


# --- scans, differences ------------------------------------------------------------------------
@func("cumprod")
def _cumprod(a, axis=None, dtype=None):
    x = _acc(a, dtype, name="cumprod")
    axis = _int_axis("cumprod", axis)
    if axis is None:
        x, axis = ops.reshape(x, (ir_composites.count(x),)), 0
    x = as_1d(x, axis)
    return wrap(composites_shape.cumprod(x, ir_composites.norm_axes(axis, ir_composites.ndim(x))[0]))


def _edge(e, x, axis):
    if ir_composites.ndim(e) == 0:
        shp = list(ops.shape(x))
        shp[axis] = 1
        e = ops.broadcast_to(e, tuple(shp))
    return e


@func("diff")
def _diff(a, n=1, axis=-1, prepend=_NO, append=_NO):
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"order must be non-negative but got {n}")
    parts = [a] + [v for v in (prepend, append) if v is not _NO]
    xs, _, _ = promote_nobroadcast(parts)
    x = xs[0]
    if ir_composites.ndim(x) == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    ax = _axis1("diff", x, axis)
    it = iter(xs[1:])
    pieces = []
    if prepend is not _NO:
        pieces.append(_edge(next(it), x, ax))
    pieces.append(x)
    if append is not _NO:
        pieces.append(_edge(next(it), x, ax))
    if len(pieces) > 1:
        x = ops.concatenate(*pieces, axis=ax)
    return wrap(composites_shape.diff(x, n, ax))


@func("ediff1d")
def _ediff1d(ary, to_end=None, to_begin=None):
    x = _one(ary)
    x = ops.reshape(x, (ir_composites.count(x),))
    d = composites_shape.diff(ops.convert(x, ops.dtype(x)), 1, 0)
    parts = []
    for v in (to_begin, None, to_end):
        if v is None and parts and parts[-1] is d:
            continue
        if v is None:
            if not any(p is d for p in parts):
                parts.append(d)
            continue
        (e,), _, _ = promote_nobroadcast([v])
        parts.append(ops.convert(ops.reshape(e, (ir_composites.count(e),)), ops.dtype(d)))
    if not any(p is d for p in parts):
        parts.insert(0 if to_begin is None else 1, d)
    return wrap(ops.concatenate(*parts, axis=0) if len(parts) > 1 else d)


@func("gradient")
def _gradient(f, *varargs, axis=None, edge_order=1):
    x = _one(f, to_float=True)
    nd = ir_composites.ndim(x)
    axes = ir_composites.norm_axes(axis, nd) if axis is not None else tuple(range(nd))
    if axis is not None and not isinstance(axis, (int, np.integer)):
        axes = tuple(int(a) % nd for a in axis)
    if len(varargs) == 0:
        dx = [1.0] * len(axes)
    elif len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        dx = [varargs[0]] * len(axes)
    elif len(varargs) == len(axes) and all(np.ndim(v) == 0 for v in varargs):
        dx = list(varargs)
    else:
        raise NotImplementedError(f"np.gradient with coordinate arrays (non-uniform spacing) "
                                  f"is not supported on traced arrays{where_str()}")
    if edge_order not in (1, 2):
        raise ValueError("'edge_order' greater than 2 not supported")
    outs = []
    for a, h in zip(axes, dx):
        if isinstance(h, TracedArray):
            raise TypeError(f"np.gradient: a traced spacing is not supported{where_str()}")
        h = float(h)
        n = ops.shape(x)[a]
        if n < edge_order + 1:
            raise ValueError("Shape of array too small to calculate a numerical gradient, at "
                             "least (edge_order + 1) elements are required.")
        sl = lambda i, j: composites_shape.slice_axis(x, i, j, a)  # noqa: E731
        mid = ops.div(ops.sub(sl(2, n), sl(0, n - 2)), 2.0 * h)
        if edge_order == 1:
            first = ops.div(ops.sub(sl(1, 2), sl(0, 1)), h)
            last = ops.div(ops.sub(sl(n - 1, n), sl(n - 2, n - 1)), h)
        else:
            first = ops.add(ops.add(ops.mul(sl(0, 1), -1.5 / h), ops.mul(sl(1, 2), 2.0 / h)),
                            ops.mul(sl(2, 3), -0.5 / h))
            last = ops.add(ops.add(ops.mul(sl(n - 3, n - 2), 0.5 / h),
                                   ops.mul(sl(n - 2, n - 1), -2.0 / h)),
                           ops.mul(sl(n - 1, n), 1.5 / h))
        outs.append(wrap(ops.concatenate(first, mid, last, axis=a)))
    return outs[0] if len(outs) == 1 else tuple(outs)


# --- sorting and order statistics --------------------------------------------------------------
def _sort_axis(name, x, axis, kind, order, stable):
    if order is not None:
        raise refuse(name, "order", order)
    if stable is False and kind is None:
        pass  # an unstable sort may return any order of ties: the stable one is one of them
    if kind not in (None, "quicksort", "mergesort", "heapsort", "stable"):
        raise ValueError(f"sort kind must be one of 'quick', 'heap', or 'stable' (got {kind!r})")
    axis = _int_axis(name, axis)
    if axis is None:
        return ops.reshape(x, (ir_composites.count(x),)), 0
    return x, ir_composites.norm_axes(axis, ir_composites.ndim(x))[0]


def _sortable(a, name):
    x = _one(a)
    if ops.dtype(x) == "bool":
        x = ops.convert(x, "i32")
        return x, True
    return x, False


@func("sort")
def _sort(a, axis=-1, kind=None, order=None, *, stable=None):
    x, was_bool = _sortable(a, "sort")
    x, ax = _sort_axis("sort", x, axis, kind, order, stable)
    v, _ = composites_shape.sort(x, ax)
    return wrap(ops.convert(v, "bool") if was_bool else v)


@func("argsort")
def _argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    x, _ = _sortable(a, "argsort")
    x = as_1d(x, axis)
    x, ax = _sort_axis("argsort", x, axis, kind, order, stable)
    return wrap(composites_shape.argsort(x, ax))


def _partition_args(name, a, kth, axis, kind, order):
    """NumPy's checks of np.partition/argpartition. A full stable sort is one of the orders
    NumPy's contract allows (the kth elements in their sorted places, smaller ones before,
    larger ones after; the order within each part is unspecified), so partition is a sort:
    functions that do not depend on that unspecified order (the kth values, sums over the
    parts, ...) get the derivative NumPy's semantics define."""
    if order is not None:
        raise refuse(name, "order", order)
    if kind != "introselect":
        raise ValueError(f"select kind must be 'introselect' (got {kind!r})")
    _static(name, "kth", kth)
    x, _ = _sortable(a, name)
    x, ax = _sort_axis(name, x, axis, None, None, None)
    n = ops.shape(x)[ax]
    ks = np.asarray(kth)
    if ks.dtype.kind not in "iub":
        raise TypeError(f"Partition index must be integer{where_str()}")
    if ks.ndim > 1:
        raise ValueError(f"kth array must have dimension <= 1{where_str()}")
    for k in ks.reshape(-1):
        k = int(k) + (n if k < 0 else 0)
        if not 0 <= k < n:
            raise ValueError(f"kth(={k}) out of bounds ({n}){where_str()}")
    return x, ax


@func("partition")
def _partition(a, kth, axis=-1, kind="introselect", order=None):
    was_bool = ops.dtype(_one(a)) == "bool"
    x, ax = _partition_args("partition", a, kth, axis, kind, order)
    v, _ = composites_shape.sort(x, ax)
    return wrap(ops.convert(v, "bool") if was_bool else v)


@func("argpartition")
def _argpartition(a, kth, axis=-1, kind="introselect", order=None):
    x, ax = _partition_args("argpartition", a, kth, axis, kind, order)
    return wrap(composites_shape.argsort(x, ax))


@func("take_along_axis")
def _take_along_axis(arr, indices, axis=-1):
    trace = deepest(arr, indices)
    from .ndarray import as_operand
    x, idx = as_operand(arr, trace), as_operand(indices, trace)
    if isinstance(idx, (int, float, bool)) or ops.dtype(idx) not in ("i32", "i64"):
        raise IndexError("`indices` must be an integer array")
    if axis is None:
        x, axis = ops.reshape(x, (ir_composites.count(x),)), 0
        if ir_composites.ndim(idx) != 1:
            raise ValueError("when axis=None, `indices` must have a single dimension.")
    if ir_composites.ndim(idx) != ir_composites.ndim(x):
        raise ValueError("`indices` and `arr` must have the same number of dimensions")
    ax = ir_composites.norm_axes(axis, ir_composites.ndim(x))[0]
    # the values traced now (a later call's out of range: IndexError from the gather)
    val = idx if isinstance(idx, np.ndarray) else getattr(idx, "val", None)
    if val is not None:
        n = ops.shape(x)[ax]
        if val.size and (val.min() < -n or val.max() >= n):
            raise IndexError(f"index out of bounds for axis {ax} with size {n}")
    return wrap(composites_shape.take_along_axis(x, idx, ax))


@func("put_along_axis")
def _put_along_axis(arr, indices, values, axis):
    raise TypeError(f"np.put_along_axis writes into `arr` in place, which a traced array "
                    f"cannot be{where_str()}; build the result with np.where(mask, new, x) "
                    "or a scatter (x + np.zeros_like(x) ...) instead")


def _stat_axis(name, x, axis):
    axis = _int_axis(name, axis) if not isinstance(axis, (tuple, list)) else tuple(axis)
    nd = ir_composites.ndim(x)
    if axis is None:
        return ops.reshape(x, (ir_composites.count(x),)), 0, tuple(range(nd))
    axes = ir_composites.norm_axes(axis, nd)
    rest = [i for i in range(nd) if i not in axes]
    y = ops.transpose(x, tuple(rest + list(axes)))
    y = ops.reshape(y, tuple(ops.shape(x)[i] for i in rest) + (ir_composites.count(x, axes),))
    return y, len(rest), axes


def _keepdims(r, xshape, axes, keepdims, lead=()):
    if not keepdims:
        return r
    return ops.reshape(r, tuple(lead) + tuple(1 if i in axes else d
                                              for i, d in enumerate(xshape)))


@func("median")
def _median(a, axis=None, overwrite_input=False, keepdims=False):
    x = _one(a, to_float=True)
    y, ax, axes = _stat_axis("median", x, axis)
    return wrap(_keepdims(composites_shape.median(y, ax), ops.shape(x), axes, keepdims))


_METHODS = ("linear", "lower", "higher", "nearest", "midpoint")


def _quantile(name, a, q, axis, method, keepdims, weights, scale):
    if weights is not None:
        raise refuse(name, "weights", "...")
    if method not in _METHODS:
        raise NotImplementedError(f"np.{name}(..., method={method!r}) is not supported on "
                                  f"traced arrays{where_str()}; supported: {_METHODS}")
    _static(name, "q", q)
    qa = np.asarray(q, dtype=np.float64) / scale
    if np.any(qa < 0) or np.any(qa > 1):
        raise ValueError("Percentiles must be in the range [0, 100]" if scale == 100 else
                         "Quantiles must be in the range [0, 1]")
    x = _one(a, to_float=True)
    # NumPy's result dtype: the data's and q's (a Python number promotes weakly)
    want = np.result_type(x.type.np_dtype, q if isinstance(q, (int, float)) else np.asarray(q))
    x = ops.convert(x, want.name)
    y, ax, axes = _stat_axis(name, x, axis)
    r = composites_shape.quantile(y, qa, ax, method)
    return wrap(_keepdims(r, ops.shape(x), axes, keepdims, qa.shape))


@func("percentile")
def _percentile(a, q, axis=None, overwrite_input=False, method="linear", keepdims=False, *,
                weights=None):
    return _quantile("percentile", a, q, axis, method, keepdims, weights, 100.0)


@func("quantile")
def _quantile_f(a, q, axis=None, overwrite_input=False, method="linear", keepdims=False, *,
                weights=None):
    return _quantile("quantile", a, q, axis, method, keepdims, weights, 1.0)


# --- splitting and joining -----------------------------------------------------------------------
def _split(name, ary, ios, axis, equal):
    _static(name, "indices_or_sections", ios)
    x = _one(ary)
    ax = _axis1(name, x, axis)
    n = ops.shape(x)[ax]
    pieces = (np.split if equal else np.array_split)(np.arange(n), ios)
    out, start = [], 0
    for p in pieces:
        stop = start + len(p)
        out.append(wrap(composites_shape.slice_axis(x, start, stop, ax)))
        start = stop
    return out


@func("split")
def _split_f(ary, indices_or_sections, axis=0):
    return _split("split", ary, indices_or_sections, axis, True)


@func("array_split")
def _array_split(ary, indices_or_sections, axis=0):
    return _split("array_split", ary, indices_or_sections, axis, False)


@func("hsplit")
def _hsplit(ary, indices_or_sections):
    if np.ndim(ary) == 0:
        raise ValueError("hsplit only works on arrays of 1 or more dimensions")
    return _split("hsplit", ary, indices_or_sections, 1 if np.ndim(ary) > 1 else 0, True)


@func("vsplit")
def _vsplit(ary, indices_or_sections):
    if np.ndim(ary) < 2:
        raise ValueError("vsplit only works on arrays of 2 or more dimensions")
    return _split("vsplit", ary, indices_or_sections, 0, True)


@func("dsplit")
def _dsplit(ary, indices_or_sections):
    if np.ndim(ary) < 3:
        raise ValueError("dsplit only works on arrays of 3 or more dimensions")
    return _split("dsplit", ary, indices_or_sections, 2, True)


def _atleast(nd):
    def impl(*arys):
        out = []
        for a in arys:
            x = _one(a)
            s = ops.shape(x)
            if len(s) < nd:
                if nd == 3:
                    s = {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}[len(s)]
                else:
                    s = (1,) * (nd - len(s)) + s
            out.append(wrap(ops.reshape(x, s)))
        return out[0] if len(out) == 1 else tuple(out)
    return impl


FUNCS["atleast_1d"], FUNCS["atleast_2d"], FUNCS["atleast_3d"] = (_atleast(1), _atleast(2),
                                                                 _atleast(3))


@func("column_stack")
def _column_stack(tup):
    xs, _, _ = promote_nobroadcast(list(tup))
    xs = [ops.reshape(x, (ir_composites.count(x), 1)) if ir_composites.ndim(x) < 2 else x for x in xs]
    return wrap(ops.concatenate(*xs, axis=1))


@func("dstack")
def _dstack(tup):
    xs, _, _ = promote_nobroadcast(list(tup))
    out = []
    for x in xs:
        s = ops.shape(x)
        s = {0: (1, 1, 1), 1: (1,) + s + (1,), 2: s + (1,)}.get(len(s), s)
        out.append(ops.reshape(x, s))
    return wrap(ops.concatenate(*out, axis=2))


@func("block")
def _block(arrays):
    def depth(a):
        return 1 + depth(a[0]) if isinstance(a, list) and a else (1 if isinstance(a, list) else 0)

    def leaves(a):
        return [v for e in a for v in leaves(e)] if isinstance(a, list) else [a]
    d = depth(arrays)
    flat = leaves(arrays)
    xs, _, _ = promote_nobroadcast(flat)
    nd = max(d, max(ir_composites.ndim(x) for x in xs))
    it = iter(ops.reshape(x, (1,) * (nd - ir_composites.ndim(x)) + ops.shape(x)) for x in xs)

    def build(a, level):
        if not isinstance(a, list):
            return next(it)
        return ops.concatenate(*[build(e, level + 1) for e in a], axis=nd - d + level)
    return wrap(build(arrays, 0))


@func("append")
def _append(arr, values, axis=None):
    xs, _, _ = promote_nobroadcast([arr, values])
    if axis is None:
        return wrap(ops.concatenate(*[ops.reshape(x, (ir_composites.count(x),)) for x in xs], axis=0))
    return wrap(ops.concatenate(*xs, axis=_axis1("append", xs[0], axis)))


@func("delete")
def _delete(arr, obj, axis=None):
    _static("delete", "obj", obj)
    x = _one(arr)
    if axis is None:
        x, axis = ops.reshape(x, (ir_composites.count(x),)), 0
    ax = _axis1("delete", x, axis)
    keep = np.delete(np.arange(ops.shape(x)[ax]), obj)
    return wrap(composites_shape.take_index(x, keep, ax))


@func("insert")
def _insert(arr, obj, values, axis=None):
    _static("insert", "obj", obj)
    (x, v), _, _ = promote_nobroadcast([arr, values])
    if axis is None:
        x, axis = ops.reshape(x, (ir_composites.count(x),)), 0
    ax = _axis1("insert", x, axis)
    n = ops.shape(x)[ax]
    if np.ndim(obj) != 0 or ir_composites.ndim(v) > ir_composites.ndim(x):
        raise NotImplementedError(f"np.insert with several positions or values of more "
                                  f"dimensions than arr is not supported on traced arrays"
                                  f"{where_str()}; use np.concatenate")
    # one position: values broadcast to arr's shape with their own length along the axis
    vs = ops.shape(v)
    k = 1 if ir_composites.ndim(v) == 0 else (vs[0] if ir_composites.ndim(x) == 1 else
                                  (vs[ax] if ir_composites.ndim(v) == ir_composites.ndim(x) else 1))
    shp = list(ops.shape(x))
    shp[ax] = k
    if ir_composites.ndim(v) == ir_composites.ndim(x) or ir_composites.ndim(v) == 0:
        vb = ops.broadcast_to(v, tuple(shp))
    else:  # NumPy moves a lower-dimensional value's first axis onto the insertion axis
        vb = ops.broadcast_to(ir_composites.moveaxis(ops.reshape(v, (1,) * (ir_composites.ndim(x) - ir_composites.ndim(v)) + vs),
                                         0, ax), tuple(shp))
    o = operator.index(obj)
    if not -n <= o <= n:
        raise IndexError(f"index {o} is out of bounds for axis {ax} with size {n}")
    o %= n + 1 if o < 0 else n + 1
    idx = np.concatenate([np.arange(o), n + np.arange(k), np.arange(o, n)])
    return wrap(composites_shape.take_index(ops.concatenate(x, vb, axis=ax), idx, ax))


# --- padding, selection ------------------------------------------------------------------------
@func("pad")
def _pad(array, pad_width, mode="constant", **kwargs):
    _static("pad", "pad_width", pad_width)
    x = _one(array)
    nd = ir_composites.ndim(x)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (nd, 2)).tolist()
    if np.any(np.asarray(widths) < 0):
        raise ValueError("index can't contain negative values")
    allowed = {"constant": {"constant_values"}, "reflect": {"reflect_type"},
               "symmetric": {"reflect_type"}}.get(mode, set())
    if callable(mode) or mode not in ("constant",) + composites_shape.INDEX_MODES:
        raise NotImplementedError(f"np.pad(..., mode={mode!r}) is not supported on traced "
                                  f"arrays{where_str()}; supported: constant, edge, reflect, "
                                  "symmetric, wrap")
    for k, v in kwargs.items():
        if k not in allowed:
            raise ValueError(f"unsupported keyword arguments for mode '{mode}': {{'{k}'}}")
        if k == "reflect_type" and v != "even":
            raise refuse("pad", k, v)
    value = 0
    if "constant_values" in kwargs:
        cv = kwargs["constant_values"]
        _static("pad", "constant_values", cv)
        value = [tuple(r) for r in np.broadcast_to(np.asarray(cv), (nd, 2)).tolist()]
        if ops.dtype(x) not in ("f32", "f64"):
            value = [tuple(np.asarray(p).astype(np.dtype(x.type.np_dtype)).tolist())
                     if hasattr(x, "type") else p for p in value]
    return wrap(composites_shape.pad(x, widths, mode, value))


@func("select")
def _select(condlist, choicelist, default=0):
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    if not condlist:
        raise ValueError("select with an empty condition list is not possible")
    xs, dt, _ = promote(list(choicelist) + [default], "np.select")
    conds = [c for c in condlist]
    for c in conds:
        if _dtype_of(c) != np.bool_:
            raise TypeError("invalid entry in condlist: should be boolean ndarray")
    trace = deepest(*conds, *choicelist, default)
    from .ndarray import as_operand
    cn = [as_operand(c, trace) for c in conds]
    shp = np.broadcast_shapes(*[ops.shape(c) for c in cn],
                              *[ops.shape(x) for x in xs if not isinstance(x, (int, float, bool))])
    out = ops.broadcast_to(xs[-1], shp) if not isinstance(xs[-1], (int, float, bool)) else \
        ops.full(shp, xs[-1], dt)
    for c, x in reversed(list(zip(cn, xs[:-1]))):
        x = ops.full(shp, x, dt) if isinstance(x, (int, float, bool)) else ops.broadcast_to(x, shp)
        out = ops.select(ops.broadcast_to(c, shp), x, out)
    return wrap(out)


@func("piecewise")
def _piecewise(x, condlist, funclist, *args, **kw):
    # every function is evaluated on the whole x and the results selected (NumPy evaluates
    # each on its own elements only; the selected values are the same)
    xv = x
    if isinstance(condlist, (TracedArray, np.ndarray)) and np.ndim(condlist) == np.ndim(x) or \
            not isinstance(condlist, (list, tuple)):
        condlist = [condlist]
    n = len(condlist)
    if len(funclist) not in (n, n + 1):
        raise ValueError(f"with {n} condition(s), either {n} or {n + 1} functions are expected")
    conds = list(condlist)
    if len(funclist) == n + 1:
        rest = ~conds[0] if len(conds) == 1 else ~np.any(np.stack(conds), axis=0) \
            if not any(isinstance(c, TracedArray) for c in conds) else None
        if rest is None:
            acc = conds[0]
            for c in conds[1:]:
                acc = acc | c
            rest = ~acc
        conds.append(rest)
    dt = _dtype_of(xv)
    out = np.zeros(np.shape(xv), dt)
    for c, f in zip(conds, funclist):
        val = f(xv, *args, **kw) if callable(f) else f
        out = np.where(c, val, out)
    return out.astype(dt) if not isinstance(out, TracedArray) else _dt(out, dt)


@func("meshgrid")
def _meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    xs = [_one(x) for x in xi]
    xs = [ops.reshape(x, (ir_composites.count(x),)) for x in xs]
    nd = len(xs)
    shp = [ir_composites.count(x) for x in xs]
    if indexing == "xy" and nd > 1:
        shp[0], shp[1] = shp[1], shp[0]
    out = []
    for i, x in enumerate(xs):
        pos = i
        if indexing == "xy" and nd > 1 and i < 2:
            pos = 1 - i
        s = [1] * nd
        s[pos] = ir_composites.count(x)
        y = ops.reshape(x, tuple(s))
        out.append(wrap(y if sparse else ops.broadcast_to(y, tuple(shp))))
    return tuple(out)


# --- data-dependent sizes: a guard on the count --------------------------------------------------
def _nonzero_flat(x):
    m = x if ops.dtype(x) == "bool" else ops.ne(x, 0)
    return _mask_indices(TracedArray(m), m.trace)


@func("nonzero")
def _nonzero(a):
    x = _one(a)
    if ir_composites.ndim(x) == 0:
        raise ValueError("Calling nonzero on 0d arrays is not allowed. Use "
                         "np.atleast_1d(scalar).nonzero() instead.")
    pos = _nonzero_flat(x)
    coords = np.unravel_index(np.arange(ir_composites.count(x)), ops.shape(x))
    return tuple(wrap(ops.gather(np.asarray(c, np.int64), pos, axis=0)) for c in coords)


@func("argwhere")
def _argwhere(a):
    x = _one(a)
    if ir_composites.ndim(x) == 0:
        x = ops.reshape(x, (1,))
        pos = _nonzero_flat(x)
        return wrap(ops.reshape(pos, (ops.shape(pos)[0], 0)))
    cs = _nonzero(a)
    return wrap(ops.concatenate(*[ops.reshape(c._n if isinstance(c, TracedArray) else c,
                                              (len(c), 1)) for c in cs], axis=1))


@func("flatnonzero")
def _flatnonzero(a):
    x = _one(a)
    return wrap(_nonzero_flat(ops.reshape(x, (ir_composites.count(x),))))


@func("unique")
def _unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, *,
            equal_nan=True, sorted=True):  # noqa: A002
    for k, v in (("return_index", return_index), ("return_inverse", return_inverse),
                 ("return_counts", return_counts)):
        if v:
            raise refuse("unique", k, v)
    if axis is not None:
        raise refuse("unique", "axis", axis)
    if not sorted:
        raise refuse("unique", "sorted", sorted)
    x = _one(ar)
    x = ops.reshape(x, (ir_composites.count(x),))
    n = ir_composites.count(x)
    if n == 0:
        return wrap(x)
    v, _ = composites_shape.sort(x, 0)
    head = ops.full((1,), True, "bool")
    new = ops.ne(composites_shape.slice_axis(v, 1, n, 0), composites_shape.slice_axis(v, 0, n - 1, 0))
    if ir_composites.is_float(v) and equal_nan:
        both = ops.__getattr__("and")(ir_composites.isnan(composites_shape.slice_axis(v, 1, n, 0)),
                                      ir_composites.isnan(composites_shape.slice_axis(v, 0, n - 1, 0)))
        new = ops.__getattr__("and")(new, ops.__getattr__("not")(both))
    keep = ops.concatenate(head, new, axis=0)
    pos = _mask_indices(TracedArray(keep), keep.trace)
    return wrap(ops.gather(v, pos, axis=0))


# --- nan-reductions ------------------------------------------------------------------------------
# NumPy's nan-reductions with where= and initial= (NumPy >= 1.22): NaN and the elements the mask
# leaves out are replaced by the reduction's identity; counts (nanmean, nanvar) count the
# elements that are both selected and not NaN.
def _no_nan(x, fill):
    if not ir_composites.is_float(x):
        return x, None
    nan = ir_composites.isnan(x)
    return ops.select(nan, ops.full(ops.shape(x), fill, ops.dtype(x)), x), nan


def _kept(nan, m):
    """The elements a nan-reduction reads (a bool node), or None for all of them."""
    if nan is None:
        return m
    ok = ops.__getattr__("not")(nan)
    return ok if m is None else ops.__getattr__("and")(ok, m)


def _count(ok, x, axis, keepdims):
    c = ops.convert(ok, ops.dtype(x)) if ok is not None else \
        ops.full(ops.shape(x), 1, ops.dtype(x))
    return ir_composites.sum(c, axis, keepdims)


def _nan_sumprod(name, fill, reduce, op):
    def impl(a, axis=None, dtype=None, keepdims=False, initial=_NO, where=True):
        axis = reduce_axis(axis)
        x, _ = _no_nan(_acc(a, dtype, name=name), fill)
        x = np_dispatch._masked(x, np_dispatch._mask(x, where, name), fill)
        return wrap(np_dispatch._initial(name, reduce(x, axis, keepdims), initial, op))
    return impl


FUNCS["nansum"] = _nan_sumprod("nansum", 0.0, ir_composites.sum, "add")
FUNCS["nanprod"] = _nan_sumprod("nanprod", 1.0, ir_composites.prod, "mul")


@func("nanmean")
def _nanmean(a, axis=None, dtype=None, keepdims=False, *, where=True):
    axis = reduce_axis(axis)
    x0 = _acc(a, dtype, True, "nanmean")
    x, nan = _no_nan(x0, 0.0)
    m = np_dispatch._mask(x, where, "nanmean")
    tot = ir_composites.sum(np_dispatch._masked(x, m, 0.0), axis, keepdims)
    return wrap(ops.div(tot, _count(_kept(nan, m), x, axis, keepdims)))


def _nanext(is_max):
    name, op = ("nanmax", "fmax") if is_max else ("nanmin", "fmin")

    def impl(a, axis=None, keepdims=False, initial=_NO, where=True):
        axis = reduce_axis(axis)
        x0 = _one(a)
        m = np_dispatch._mask(x0, where, name)
        if m is not None and initial is _NO:
            raise ValueError(f"reduction operation '{op}' does not have an identity, so to use "
                             "a where mask one has to specify 'initial'")
        if not ir_composites.is_float(x0):  # NumPy: np.amax / np.amin
            return np_dispatch._extreme(name[3:], a, axis, keepdims, initial, where)
        inf = -np.inf if is_max else np.inf
        x, nan = _no_nan(x0, inf)
        x = np_dispatch._masked(x, m, inf)
        axes = ir_composites.norm_axes(axis, ir_composites.ndim(x), scalar_int=True)
        r = (ir_composites.max if is_max else ir_composites.min)(x, axes, keepdims)
        if initial is not _NO:  # fmax(initial, the kept values): initial where none is kept
            return wrap(np_dispatch._initial(name, r, initial, "maximum" if is_max else
                                             "minimum"))
        alln = ir_composites.all_(nan, axes, keepdims)
        return wrap(ops.select(alln, ops.full(ops.shape(r), float("nan"), ops.dtype(r)), r))
    return impl


FUNCS["nanmax"], FUNCS["nanmin"] = _nanext(True), _nanext(False)


def _nanvar_node(a, axis, dtype, ddof, keepdims, where, correction, name):
    axis = reduce_axis(axis)
    if correction is not _NO:
        if ddof != 0:
            raise ValueError("ddof and correction can't be provided simultaneously.")
        ddof = correction
    x0 = _acc(a, dtype, True, name)
    x, nan = _no_nan(x0, 0.0)
    ok = _kept(nan, np_dispatch._mask(x, where, name))
    cnt = _count(ok, x, axis, True)
    mean = ops.div(ir_composites.sum(np_dispatch._masked(x, ok, 0.0), axis, True), cnt)
    d = np_dispatch._masked(ops.sub(x0, ops.broadcast_to(mean, ops.shape(x0))), ok, 0.0)
    s = ir_composites.sum(ops.mul(d, d), axis, keepdims)
    dof = ops.sub(_count(ok, x, axis, keepdims), float(ddof))
    bad = ops.le(dof, 0.0)  # NumPy: NaN where the degrees of freedom are <= 0
    one = ops.full(ops.shape(dof), 1.0, ops.dtype(dof))
    v = ops.div(s, ops.select(bad, one, dof))  # (no 0/0 in the derivative either)
    return ops.select(bad, ops.full(ops.shape(v), float("nan"), ops.dtype(v)), v)


@func("nanvar")
def _nanvar(a, axis=None, dtype=None, ddof=0, keepdims=False, *, where=True, correction=_NO):
    return wrap(_nanvar_node(a, axis, dtype, ddof, keepdims, where, correction, "nanvar"))


@func("nanstd")
def _nanstd(a, axis=None, dtype=None, ddof=0, keepdims=False, *, where=True, correction=_NO):
    return wrap(ops.sqrt(_nanvar_node(a, axis, dtype, ddof, keepdims, where, correction,
                                      "nanstd")))


# --- constructors with traced values ---------------------------------------------------------
@func("linspace")
def _linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *,
              device=None):
    if device not in (None, "cpu"):
        raise refuse("linspace", "device", device)
    num = operator.index(num)
    if num < 0:
        raise ValueError(f"Number of samples, {num}, must be non-negative.")
    (a, b), dt, _ = promote([start, stop, 0.0][:2], "np.linspace", to_float=True)
    a, b = [ops.full((), v, dt) if isinstance(v, float) else v for v in (a, b)]
    div = (num - 1) if endpoint else num
    shp = ops.shape(a)
    steps = np.arange(num, dtype=np.float64).reshape((-1,) + (1,) * len(shp))
    full = (num,) + tuple(shp)
    delta = ops.sub(b, a)
    step = ops.div(delta, float(div)) if div > 0 else None
    bc = lambda v: ops.broadcast_to(ops.reshape(v, (1,) + tuple(shp)), full)  # noqa: E731
    if step is not None:
        y = ops.add(ops.mul(ops.convert(np.broadcast_to(steps, full), dt), bc(step)), bc(a))
    else:
        y = ops.add(ops.mul(ops.convert(np.broadcast_to(steps, full), dt), bc(delta)), bc(a))
    if endpoint and num > 1:
        y = ops.concatenate(composites_shape.slice_axis(y, 0, num - 1, 0), ops.reshape(b, (1,) + tuple(shp)),
                            axis=0)
    ax = ir_composites.norm_axes(operator.index(axis), ir_composites.ndim(y))[0]
    if ax != 0:
        y = ir_composites.moveaxis(y, 0, ax)
    if dtype is not None and np.dtype(dtype).kind in "iu":
        y = ops.floor(y)  # NumPy floors before an integer cast
    out = wrap(y)
    if dtype is not None:
        out = _dt(out, dtype)
    if retstep:
        return out, wrap(step) if step is not None else float("nan")
    return out


@func("copyto")
def _copyto(dst, src, casting="same_kind", where=True):
    raise TypeError(f"np.copyto(dst, src, casting=, where=) (also what np.full(shape, value) does) cannot write a traced "
                    f"value into an ndarray{where_str()}: write `import adjit.numpy as np` "
                    "(its np.full, np.array, np.asarray accept traced values), or use "
                    "np.full_like / np.broadcast_to")
