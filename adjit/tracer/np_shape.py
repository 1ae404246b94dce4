"""NumPy's shape functions and products on TracedArrays (registered into np_dispatch.FUNCS)."""
from __future__ import annotations

import numpy as np

from ..ir import composites as C
from ..ir import ops
from ..ir.types import dtype_name
from .ndarray import deepest, promote_nobroadcast, wrap
from .np_dispatch import FUNCS, _dt, _one, func


# --- shape functions ---------------------------------------------------------------------------
def _reshape_shape(size, shape):
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(d) for d in shape)
    if shape.count(-1) > 1:
        raise ValueError("can only specify one unknown dimension")
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
        shape = tuple(size // known if d == -1 else d for d in shape)
    if int(np.prod(shape, dtype=np.int64)) != size:
        raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
    return shape


@func("reshape")
def _reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    x = _one(a)
    return wrap(ops.reshape(x, _reshape_shape(C.count(x), newshape if shape is None else shape)),
                getattr(a, "weak", False))


@func("transpose")
def _transpose(a, axes=None):
    x = _one(a)
    nd = C.ndim(x)
    perm = tuple(reversed(range(nd))) if axes is None else tuple(int(p) % nd for p in axes)
    return wrap(ops.transpose(x, perm))


@func("swapaxes")
def _swapaxes(a, axis1, axis2):
    return wrap(C.swapaxes(_one(a), axis1, axis2))


@func("moveaxis")
def _moveaxis(a, source, destination):
    return wrap(C.moveaxis(_one(a), source, destination))


@func("expand_dims")
def _expand_dims(a, axis):
    return wrap(C.expand_dims(_one(a), axis))


@func("squeeze")
def _squeeze(a, axis=None):
    return wrap(C.squeeze(_one(a), axis))


@func("ravel")
def _ravel(a, order="C"):
    x = _one(a)
    return wrap(ops.reshape(x, (C.count(x),)))


@func("broadcast_to")
def _broadcast_to(a, shape):
    return wrap(ops.broadcast_to(_one(a), tuple(shape)))


@func("flip")
def _flip(m, axis=None):
    return wrap(C.flip(_one(m), axis))


@func("take")
def _take(a, indices, axis=None):
    from .indexing import _index_operand
    x = _one(a)
    if axis is None:
        x, axis = ops.reshape(x, (C.count(x),)), 0
    axis = C.norm_axes(axis, C.ndim(x))[0]
    idx = _index_operand(np.asarray(indices) if isinstance(indices, list) else indices,
                         ops.shape(x)[axis], deepest(a))
    return wrap(ops.gather(x, idx, axis=axis))


@func("concatenate")
def _concatenate(arrays, axis=0, dtype=None):
    xs, _, _ = promote_nobroadcast(list(arrays))
    if axis is None:
        xs, axis = [ops.reshape(x, (C.count(x),)) for x in xs], 0
    nd = C.ndim(xs[0])
    if any(C.ndim(x) != nd for x in xs):
        raise ValueError("all the input arrays must have the same number of dimensions, got "
                         f"shapes {[ops.shape(x) for x in xs]}")
    return _dt(wrap(ops.concatenate(*xs, axis=C.norm_axes(axis, nd)[0])), dtype)


@func("stack")
def _stack(arrays, axis=0, dtype=None):
    xs, _, _ = promote_nobroadcast(list(arrays))
    shapes = {ops.shape(x) for x in xs}
    if len(shapes) != 1:
        raise ValueError(f"all input arrays must have the same shape, got "
                         f"{[ops.shape(x) for x in xs]}")
    ax = int(axis) % (C.ndim(xs[0]) + 1)
    return _dt(wrap(ops.concatenate(*[C.expand_dims(x, ax) for x in xs], axis=ax)), dtype)


@func("hstack")
def _hstack(tup, dtype=None):
    xs, _, _ = promote_nobroadcast(list(tup))
    xs = [ops.reshape(x, (1,)) if not ops.shape(x) else x for x in xs]
    return _dt(wrap(ops.concatenate(*xs, axis=0 if C.ndim(xs[0]) == 1 else 1)), dtype)


@func("vstack")
def _vstack(tup, dtype=None):
    xs, _, _ = promote_nobroadcast(list(tup))
    xs = [ops.reshape(x, (1,) * (2 - C.ndim(x)) + ops.shape(x)) if C.ndim(x) < 2 else x
          for x in xs]
    return _dt(wrap(ops.concatenate(*xs, axis=0)), dtype)


def _make_like(value):
    def impl(a, *args, dtype=None, shape=None, **_):
        v = value if value is not None else args[0]
        if value is None:
            args = args[1:]
        dtype = dtype if dtype is not None else (args[0] if args else a.dtype)
        shp = tuple(np.shape(a) if shape is None else shape)
        return wrap(ops.full(shp, v, dtype_name(dtype)))
    return impl


FUNCS["zeros_like"], FUNCS["ones_like"] = _make_like(0), _make_like(1)
FUNCS["empty_like"], FUNCS["full_like"] = _make_like(0), _make_like(None)


@func("shape")
def _shape(a):
    return tuple(a.shape)


@func("ndim")
def _ndim(a):
    return a.ndim


@func("size")
def _size(a, axis=None):
    return a.size if axis is None else a.shape[axis]


@func("copy")
def _copy(a, *args, **kwargs):
    dt = kwargs.get("dtype", args[0] if args else None)
    return _dt(a, dt)


# --- products --------------------------------------------------------------------------------
@func("dot")
def _dot(a, b):
    (x, y), _, _ = promote_nobroadcast([a, b])
    return wrap(C.dot(x, y))


@func("matmul")
def _matmul(a, b):
    (x, y), _, _ = promote_nobroadcast([a, b])
    return wrap(C.matmul(x, y))


@func("tensordot")
def _tensordot(a, b, axes=2):
    (x, y), _, _ = promote_nobroadcast([a, b])
    return wrap(C.tensordot(x, y, axes))


@func("outer")
def _outer(a, b):
    (x, y), _, _ = promote_nobroadcast([a, b])
    return wrap(C.outer(x, y))


@func("inner")
def _inner(a, b):
    (x, y), _, _ = promote_nobroadcast([a, b])
    return wrap(C.inner(x, y))


@func("einsum")
def _einsum(subscripts, *operands, optimize=False, **_):
    if not isinstance(subscripts, str):
        raise NotImplementedError("np.einsum with the interleaved (operand, sublist) form")
    xs, _, _ = promote_nobroadcast(list(operands))
    return wrap(C.einsum(subscripts, *xs))


@func("trace")
def _trace(a, offset=0, axis1=0, axis2=1):
    if offset:
        raise NotImplementedError("np.trace with offset != 0")
    x = C.moveaxis(_one(a, int64=True), (axis1, axis2), (-2, -1))
    letters = "abcdefghijklmnopqrstuvw"[:C.ndim(x) - 2]
    return wrap(C.einsum(f"{letters}yy->{letters}", x))

