"""`import adjit.numpy as np`: NumPy's namespace with its constructors made traceable.

Every name is NumPy's own object (module `__getattr__` forwards it), except the constructors
NumPy gives no dispatch hook for, which here accept traced values: `array`, `asarray`,
`asanyarray`, `full`, `arange` (a traced start/stop/step; the length is guarded), `stack`,
`concatenate`, `hstack`, `vstack` (lists mixing traced and plain values). With no traced value
in their arguments they are NumPy's functions, so the module is a drop-in replacement (as
autograd.numpy and jax.numpy are).
"""
from __future__ import annotations

import numpy as _np

from .tracer.ndarray import TracedArray as _Traced
from .tracer.ndarray import where_str as _where

__all__ = ["array", "asarray", "asanyarray", "full", "arange"]


def __getattr__(name):
    return getattr(_np, name)


def __dir__():
    return sorted(set(dir(_np)) | set(__all__))


def _has_traced(obj):
    if isinstance(obj, _Traced):
        return True
    if isinstance(obj, (list, tuple)):
        return any(_has_traced(o) for o in obj)
    return False


def _build(obj):
    """Nested lists of traced and plain values -> one traced array (NumPy's array coercion:
    a Python float is float64, an int int64, as np.array([...]) makes them)."""
    if isinstance(obj, (list, tuple)):
        parts = [_build(o) for o in obj]
        if not parts:
            return _np.zeros((0,))
        return _np.stack(parts) if any(isinstance(p, _Traced) for p in parts) else \
            _np.asarray(parts)
    if isinstance(obj, _Traced):
        return obj
    return _np.asarray(obj)


def _finish(out, dtype, ndmin=0):
    if dtype is not None:
        out = out.astype(dtype)
    if out.ndim < ndmin:
        out = out.reshape((1,) * (ndmin - out.ndim) + out.shape)
    return out


def array(object, dtype=None, *, copy=True, order="K", subok=False, ndmin=0,  # noqa: A002
          like=None):
    if not _has_traced(object):
        return _np.array(object, dtype=dtype, copy=copy, order=order, subok=subok,
                         ndmin=ndmin, like=like)
    if like is not None:
        raise TypeError(f"adjit.numpy.array(..., like=...) is not supported with traced values"
                        f"{_where()}")
    return _finish(_build(object), dtype, ndmin)


def asarray(a, dtype=None, order=None, *, device=None, copy=None, like=None):
    if not _has_traced(a):
        return _np.asarray(a, dtype=dtype, order=order, device=device, copy=copy, like=like)
    return _finish(_build(a), dtype)


def asanyarray(a, dtype=None, order=None, *, device=None, copy=None, like=None):
    if not _has_traced(a):
        return _np.asanyarray(a, dtype=dtype, order=order, device=device, copy=copy,
                              like=like)
    return _finish(_build(a), dtype)


def full(shape, fill_value, dtype=None, order="C", *, device=None, like=None):
    if not _has_traced(fill_value):
        return _np.full(shape, fill_value, dtype=dtype, order=order, device=device, like=like)
    v = _build(fill_value)
    shape = (shape,) if isinstance(shape, (int, _np.integer)) else tuple(shape)
    return _finish(_np.broadcast_to(v, shape), dtype) + (v.dtype.type(0) if dtype is None
                                                          else _np.dtype(dtype).type(0))


def arange(start=None, stop=None, step=None, dtype=None, *, device=None, like=None):
    args = (start, stop, step)
    if not _has_traced(args):
        a = [v for v in args if v is not None]
        return _np.arange(*a, dtype=dtype, device=device, like=like)
    if stop is None:
        start, stop = 0, start
    step = 1 if step is None else step
    # the length is data-dependent: int() of it records a guard that a replay checks
    length = _np.ceil((stop - start) / step)
    if isinstance(length, _Traced):  # the length carries no derivative
        from .ir import ops
        from .tracer.ndarray import wrap
        length = wrap(ops.stop_gradient(length._n))
    n = max(0, int(length))
    out = _np.arange(n) * step + start
    return out if dtype is None else out.astype(dtype)


def stack(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    return _np.stack([_build(a) for a in arrays], axis=axis, out=out, dtype=dtype,
                     casting=casting)


def concatenate(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    return _np.concatenate([_build(a) for a in arrays], axis=axis, out=out, dtype=dtype,
                           casting=casting)


def hstack(tup, *, dtype=None, casting="same_kind"):
    return _np.hstack([_build(a) for a in tup], dtype=dtype, casting=casting)


def vstack(tup, *, dtype=None, casting="same_kind"):
    return _np.vstack([_build(a) for a in tup], dtype=dtype, casting=casting)

