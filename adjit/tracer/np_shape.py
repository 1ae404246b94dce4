"""NumPy's shape functions and products on TracedArrays (registered into np_dispatch.FUNCS)."""
from __future__ import annotations

import math

import numpy as np

from ..ir import composites
from ..ir import einsum as ir_einsum
from ..ir import ops
from ..ir.types import dtype_name
from .ndarray import deepest, promote_nobroadcast, wrap
from .ndarray import where_str
from .np_dispatch import FUNCS, _acc, _dt, _int_axis, _one, as_1d, func


# --- shape functions ---------------------------------------------------------------------------
def _reshape_shape(size, shape):
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)
    if shape.count(-1) > 1:
        raise ValueError("can only specify one unknown dimension")
    # (math.prod: exact, where an int64 product wraps: (-1, 2**62 + 1, 4) of 8 elements
    # "resolved" to (2, 2**62 + 1, 4))
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
        shape = tuple(size // known if d == -1 else d for d in shape)
    if math.prod(shape) != size:
        raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
    return shape


def _order(name, order):
    if order not in ("C", "F", None):
        raise TypeError(f"np.{name}(..., order={order!r}) is not supported on traced arrays"
                        f"{where_str()}: 'A' and 'K' follow the memory layout, which traced "
                        "values do not have; use order='C' or 'F'")
    return order or "C"


def reshape_order(x, shape, order):
    """Reshape Node x; order 'F' reads and writes the elements with the first index fastest,
    which is a C reshape between reversed axes."""
    if order == "C":
        return ops.reshape(x, shape)
    xt = ops.transpose(x, tuple(reversed(range(composites.ndim(x)))))
    y = ops.reshape(xt, tuple(reversed(shape)))
    return ops.transpose(y, tuple(reversed(range(len(shape)))))


@func("reshape")
def _reshape(a, shape=None, order="C", copy=None):
    x = _one(a)
    shape = _reshape_shape(composites.count(x), shape)
    return wrap(reshape_order(x, shape, _order("reshape", order)), getattr(a, "weak", False))


@func("transpose")
def _transpose(a, axes=None):
    x = _one(a)
    nd = composites.ndim(x)
    if axes is None:
        return wrap(ops.transpose(x, tuple(reversed(range(nd)))))
    axes = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
    if len(axes) != nd:
        raise ValueError("axes don't match array")
    perm = tuple(composites.norm_axis(p, nd) for p in axes)
    if len(set(perm)) != nd:
        raise ValueError("repeated axis in transpose")
    return wrap(ops.transpose(x, perm))


@func("swapaxes")
def _swapaxes(a, axis1, axis2):
    return wrap(composites.swapaxes(_one(a), axis1, axis2))


@func("moveaxis")
def _moveaxis(a, source, destination):
    return wrap(composites.moveaxis(_one(a), source, destination))


@func("expand_dims")
def _expand_dims(a, axis):
    return wrap(composites.expand_dims(_one(a), axis))


@func("squeeze")
def _squeeze(a, axis=None):
    return wrap(composites.squeeze(_one(a), axis))


@func("ravel")
def _ravel(a, order="C"):
    x = _one(a)
    return wrap(reshape_order(x, (composites.count(x),), _order("ravel", order)),
                getattr(a, "weak", False))


@func("broadcast_to")
def _broadcast_to(array, shape):
    return wrap(ops.broadcast_to(_one(array), tuple(shape)))


@func("flip")
def _flip(m, axis=None):
    return wrap(composites.flip(_one(m), axis))


@func("take")
def _take(a, indices, axis=None):
    from .np_indexing import _index_operand
    x = _one(a)
    axis = _int_axis("take", axis)
    if axis is None:
        x, axis = ops.reshape(x, (composites.count(x),)), 0
    x = as_1d(x, axis)
    axis = composites.norm_axes(axis, composites.ndim(x))[0]
    idx = _index_operand(np.asarray(indices) if isinstance(indices, list) else indices,
                         ops.shape(x)[axis], deepest(a))
    return wrap(ops.gather(x, idx, axis=axis))


def _cast_all(name, arrays, dtype, casting):
    """The arrays of a joining function converted to `dtype` under NumPy's casting rule."""
    if dtype is None:
        if casting != "same_kind":
            raise TypeError(f"np.{name}(..., casting={casting!r}) without dtype= is not "
                            f"supported on traced arrays{where_str()}")
        return arrays
    want = np.dtype(dtype)
    for x in arrays:
        have = np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype
        if not np.can_cast(have, want, casting):
            raise TypeError(f"np.{name}: cannot cast array data from {have!r} to {want!r} "
                            f"according to the rule {casting!r}{where_str()}")
    return [_dt(x, want) for x in arrays]


@func("concatenate")
def _concatenate(arrays, axis=0, dtype=None, casting="same_kind"):
    xs, _, _ = promote_nobroadcast(_cast_all("concatenate", list(arrays), dtype, casting))
    axis = _int_axis("concatenate", axis)
    if axis is None:
        xs, axis = [ops.reshape(x, (composites.count(x),)) for x in xs], 0
    nd = composites.ndim(xs[0])
    if nd == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    if any(composites.ndim(x) != nd for x in xs):
        raise ValueError("all the input arrays must have the same number of dimensions, got "
                         f"shapes {[ops.shape(x) for x in xs]}")
    return _dt(wrap(ops.concatenate(*xs, axis=composites.norm_axes(axis, nd)[0])), dtype)


@func("stack")
def _stack(arrays, axis=0, dtype=None, casting="same_kind"):
    xs, _, _ = promote_nobroadcast(_cast_all("stack", list(arrays), dtype, casting))
    axis = _int_axis("stack", axis)
    if axis is None:
        raise TypeError(f"np.stack: axis=None is not an integer{where_str()}")
    shapes = {ops.shape(x) for x in xs}
    if len(shapes) != 1:
        raise ValueError(f"all input arrays must have the same shape, got "
                         f"{[ops.shape(x) for x in xs]}")
    ax = composites.norm_axis(axis, composites.ndim(xs[0]) + 1)
    return _dt(wrap(ops.concatenate(*[composites.expand_dims(x, ax) for x in xs], axis=ax)), dtype)


@func("hstack")
def _hstack(tup, dtype=None, casting="same_kind"):
    xs, _, _ = promote_nobroadcast(_cast_all("hstack", list(tup), dtype, casting))
    xs = [ops.reshape(x, (1,)) if not ops.shape(x) else x for x in xs]
    return _dt(wrap(ops.concatenate(*xs, axis=0 if composites.ndim(xs[0]) == 1 else 1)), dtype)


@func("vstack")
def _vstack(tup, dtype=None, casting="same_kind"):
    xs, _, _ = promote_nobroadcast(_cast_all("vstack", list(tup), dtype, casting))
    xs = [ops.reshape(x, (1,) * (2 - composites.ndim(x)) + ops.shape(x)) if composites.ndim(x) < 2 else x
          for x in xs]
    return _dt(wrap(ops.concatenate(*xs, axis=0)), dtype)


def _like(name, value):
    # order= and subok= only choose the memory layout and the array class of NumPy's result;
    # a traced result has the same values either way
    def impl(a, fill_value=None, dtype=None, order="K", subok=True, shape=None, device=None):
        if device not in (None, "cpu"):
            raise TypeError(f"np.{name}(..., device={device!r}) is not supported{where_str()}")
        v = value if value is not None else fill_value
        dtype = dtype if dtype is not None else a.dtype
        shp = tuple(np.shape(a) if shape is None else
                    ((shape,) if isinstance(shape, (int, np.integer)) else shape))
        return wrap(ops.full(shp, v, dtype_name(dtype)))
    if value is not None:  # zeros_like(a, dtype, order, subok, shape): no fill_value
        def f(a, dtype=None, order="K", subok=True, shape=None, device=None):
            return impl(a, None, dtype, order, subok, shape, device)
        return f
    return impl


FUNCS["zeros_like"], FUNCS["ones_like"] = _like("zeros_like", 0), _like("ones_like", 1)
FUNCS["full_like"] = _like("full_like", None)
_zeros_like = _like("empty_like", 0)


def _empty_like(prototype, dtype=None, order="K", subok=True, shape=None, device=None):
    return _zeros_like(prototype, dtype, order, subok, shape, device)


FUNCS["empty_like"] = _empty_like


@func("shape")
def _shape(a):
    return tuple(a.shape)


@func("ndim")
def _ndim(a):
    return a.ndim


@func("size")
def _size(a, axis=None):
    if axis is None:
        return a.size
    return int(np.prod([a.shape[ax] for ax in composites.norm_axes(axis, a.ndim)], dtype=np.int64))


@func("copy")
def _copy(a, order="K", subok=False):
    return a  # traced values are immutable; order= only chooses the memory layout


# --- products --------------------------------------------------------------------------------
@func("dot")
def _dot(a, b):
    (x, y), _, _ = promote_nobroadcast([a, b])
    return wrap(composites.dot(x, y))


@func("matmul")
def _matmul(x1, x2):
    (x, y), _, _ = promote_nobroadcast([x1, x2])
    return wrap(composites.matmul(x, y))


@func("tensordot")
def _tensordot(a, b, axes=2):
    (x, y), _, _ = promote_nobroadcast([a, b])
    return wrap(composites.tensordot(x, y, axes))


@func("outer")
def _outer(a, b):
    (x, y), _, _ = promote_nobroadcast([a, b])
    return wrap(composites.outer(x, y))


@func("inner")
def _inner(a, b):
    (x, y), _, _ = promote_nobroadcast([a, b])
    return wrap(composites.inner(x, y))


@func("vdot")
def _vdot(a, b):
    (x, y), _, _ = promote_nobroadcast([a, b])
    return wrap(composites.vdot(x, y))


def _einsum_args(subscripts, operands):
    if isinstance(subscripts, str):
        return subscripts, list(operands)
    spec, ops_ = ir_einsum.sublists_to_string((subscripts,) + tuple(operands), "np.einsum")
    return spec, list(ops_)


@func("einsum")
def _einsum(subscripts, *operands, optimize=False, dtype=None, order="K", casting="safe"):
    subscripts, operands = _einsum_args(subscripts, operands)
    if casting != "safe" and dtype is None or casting not in ("safe", "same_kind", "unsafe"):
        raise TypeError(f"np.einsum(..., casting={casting!r}) is not supported on traced "
                        f"arrays{where_str()}")
    if dtype is not None:
        want = np.dtype(dtype)
        for x in operands:
            have = np.asarray(x).dtype if not hasattr(x, "dtype") else np.dtype(x.dtype)
            if not np.can_cast(have, want, casting):
                raise TypeError(f"np.einsum: cannot cast {have} to {want} with casting="
                                f"{casting!r}{where_str()}")
        operands = [_dt(x, want) for x in operands]
    xs, dt, _ = promote_nobroadcast(list(operands))
    if dt == "bool":  # NumPy's boolean einsum: any of the products (or of ands)
        xs = [ops.convert(x, "i64") for x in xs]
        return wrap(ops.ne(composites.einsum(subscripts, *xs, optimize=optimize), 0))
    return wrap(composites.einsum(subscripts, *xs, optimize=optimize))


from . import np_shape_functions  # noqa: E402,F401  (sorting, padding, splitting, nan*...)
