"""A ufunc's methods on traced arrays: `np.add.reduce`, `np.maximum.accumulate`,
`np.subtract.outer` & co, composed from the dispatched NumPy functions (no primitive of their
own; gradients follow from the parts).

NumPy itself first runs the method on stand-in arrays of the operands' shapes and dtypes (ones,
broadcast from one element): that gives NumPy's own errors (bad axes, several axes of a
non-reorderable ufunc, an empty axis without identity, a unary ufunc) and the result's shape and
dtype, which the traced result must match (else NotImplementedError, never a different answer).
"""
from __future__ import annotations

import warnings

import numpy as np

from ..ir import ops
from .ndarray import TracedArray, where_str
from .promote import const_leaf, deepest, wrap

_NO = np._NoValue
_REORDERABLE: dict = {}
METHODS = ("reduce", "accumulate", "outer")
REFUSED = ("at", "reduceat")  # (listed in docs/numpy.md by scripts/gen_numpy_table.py)


def _stand_in(x):
    """x itself when plain; for a traced array, ones of its shape and dtype (no real copy)."""
    if isinstance(x, TracedArray):
        return np.broadcast_to(np.ones((), x.dtype), x.shape)
    return x


_RESULTS: dict = {}  # (ufunc, method, operands' kinds, keywords) -> NumPy's (dtype, shape)


def _kind(x):
    """What NumPy's result dtype, shape and errors depend on: an array's shape and dtype, a
    number's type and value."""
    if isinstance(x, (TracedArray, np.ndarray)):
        return (x.shape, x.dtype)
    return (type(x), x)


def _numpy_result(uf, method, label, args, kwargs):
    """NumPy's method on stand-ins: its error (with the user's line) or its result's dtype and
    shape (remembered for operands of the same kinds)."""
    try:
        key = (uf, method, tuple(map(_kind, args)),
               tuple((k, _kind(v)) for k, v in kwargs.items()))
        hit = _RESULTS.get(key)
    except TypeError:  # an unhashable keyword value (a list for where=, ...)
        key = hit = None
    if hit is None:
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = np.asarray(getattr(uf, method)(
                    *[_stand_in(a) for a in args],
                    **{k: _stand_in(v) for k, v in kwargs.items()}))
            hit = (r.dtype, r.shape)
        except (ValueError, TypeError, IndexError, OverflowError) as e:
            hit = (type(e), str(e))
        if key is not None:
            if len(_RESULTS) >= 4096:
                _RESULTS.clear()
            _RESULTS[key] = hit
    if isinstance(hit[0], type):
        raise hit[0](f"{label}.{method}: {hit[1]}{where_str()}") from None
    return hit


def _reorderable(uf):
    """NumPy's flag: may a reduction combine the elements in any order (add, maximum,
    logical_and, bitwise_or ...; not subtract, divide, power)."""
    r = _REORDERABLE.get(uf)
    if r is None:
        r = True
        for dt in ("f8", "i8", "?"):
            try:
                with np.errstate(all="ignore"):
                    uf.reduce(np.ones((1, 1), dt), axis=(0, 1))
                break
            except ValueError as e:
                if "reorderable" in str(e):
                    r = False
                    break
            except TypeError:
                continue
        _REORDERABLE[uf] = r
    return r


def ufunc_method(uf, method, inputs, kwargs, label):
    if method in REFUSED:
        alt = {"at": "it writes into an array in place; compute a new value instead "
                     "(for np.add.at(x, idx, v) on a 1-d x: x = x + np.bincount(idx, "
                     "weights=v, minlength=len(x)); for a mask: x = np.where(mask, ..., x))",
               "reduceat": f"reduce each slice with {label}.reduce(x[i:j], axis) and "
                           "np.stack the results"}[method]
        raise NotImplementedError(f"{label}.{method} is not supported on traced arrays"
                                  f"{where_str()}; {alt}")
    if method not in METHODS:
        raise NotImplementedError(f"{label}.{method} is not supported on traced arrays"
                                  f"{where_str()}")
    if kwargs.get("out") is not None:
        raise TypeError(f"{label}.{method}(..., out=...) cannot write a traced value into an "
                        f"ndarray{where_str()}; use the returned value instead")
    kwargs = {k: v for k, v in kwargs.items() if k != "out"}
    if method == "reduce" and "initial" in kwargs and isinstance(kwargs["initial"], TracedArray):
        raise TypeError(f"{label}.reduce(..., initial=...) takes a plain number on traced "
                        f"arrays{where_str()}")
    want = _numpy_result(uf, method, label, inputs, kwargs) if uf.nout == 1 else None
    if method == "outer":
        out = _outer(uf, inputs, kwargs)
        if want is None:  # (divmod & co: each result checked by the ufunc call itself)
            return out
        x = inputs[0] if isinstance(inputs[0], TracedArray) else inputs[1]
    elif method == "reduce":
        (x,) = inputs
        if not isinstance(x, TracedArray):  # a plain array with a traced where= mask
            x = wrap(const_leaf(np.asarray(x), deepest(kwargs.get("where"))))
        out = _reduce(uf, x, want[0], **kwargs)
    else:
        (x,) = inputs
        out = _accumulate(uf, x, want[0], **kwargs)
    got = None if out is None else np.dtype(getattr(out, "dtype", type(out)))
    if got != want[0] or np.shape(out) != want[1]:
        raise NotImplementedError(
            f"{label}.{method} on {np.dtype(x.dtype)} would give {got} where NumPy gives "
            f"{want[0]} {want[1]}; not supported on traced arrays{where_str()}")
    return out


# --- outer: a's axes first, then b's (a.shape + b.shape) ----------------------------------
def _outer(uf, inputs, kwargs):
    # NumPy's outer makes its operands arrays first (a Python number then is an int64 or
    # float64 array, not a weak scalar)
    a, b = (v if isinstance(v, TracedArray) else np.asarray(v) for v in inputs)
    shape = a.shape + (1,) * np.ndim(b)
    a = wrap(ops.reshape(a._n, shape), a.weak) if isinstance(a, TracedArray) else \
        a.reshape(shape)
    return uf(a, b, **kwargs)


# --- reduce ----------------------------------------------------------------------------------
def _axes(axis, nd):
    if axis is None:
        return tuple(range(nd))
    items = axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted(int(a) % nd for a in items)) if nd else ()


def _as_loop_dtype(uf, x, want):
    """x cast to the result's dtype when NumPy's loop computes in it (want, want -> want); else
    None (a loop such as less's, float, float -> bool)."""
    if x.dtype == want:
        return x
    try:
        loop = uf.resolve_dtypes((want, want, None))
    except (TypeError, ValueError):
        return None
    return x.astype(want) if loop[2] == want else None


def _reduce(uf, x, want, axis=0, dtype=None, keepdims=False, initial=_NO, where=True):
    if initial is not _NO:  # NumPy casts it to the result's dtype first (5.5 -> 5 for ints)
        with np.errstate(all="ignore"):
            initial = np.asarray(initial).astype(want).item()
    simple = np.ndim(where) == 0 and not isinstance(where, TracedArray) and bool(where)
    # the ufuncs NumPy's own reductions are: the dispatched functions
    if uf is np.add and np.dtype(want) != np.bool_:
        return np.sum(x, axis=axis, dtype=dtype, keepdims=keepdims, initial=initial,
                      where=where)
    if uf is np.multiply and np.dtype(want) != np.bool_:
        return np.prod(x, axis=axis, dtype=dtype, keepdims=keepdims, initial=initial,
                       where=where)
    if uf is np.maximum or uf is np.minimum:
        f = np.max if uf is np.maximum else np.min
        return f(x if dtype is None else x.astype(dtype), axis=axis, keepdims=keepdims,
                 initial=initial, where=where)
    if (uf is np.logical_and or uf is np.logical_or) and initial is _NO:
        f = np.all if uf is np.logical_and else np.any
        return f(x, axis=axis, keepdims=keepdims, where=where)
    # any other binary ufunc: a fold along the reduced axes (all moved to the front)
    x = _as_loop_dtype(uf, x if dtype is None else x.astype(dtype), want)
    if x is None:
        return None
    nd = x.ndim
    axes = _axes(axis, nd)
    if nd == 0:
        x, axes, nd = np.reshape(x, (1,)), (0,), 1
        keepdims = False
    shape = x.shape
    rest = tuple(d for i, d in enumerate(shape) if i not in axes)
    out_shape = tuple(1 if i in axes else d for i, d in enumerate(shape)) if keepdims else rest
    n = int(np.prod([shape[i] for i in axes], dtype=np.int64))
    m = None if simple else np.broadcast_to(where, shape)
    y = np.reshape(np.moveaxis(x, axes, tuple(range(len(axes)))), (n,) + rest)
    if m is not None:
        m = np.reshape(np.moveaxis(m, axes, tuple(range(len(axes)))), (n,) + rest)
    if n == 0 or (m is not None and not isinstance(m, TracedArray) and not m.any()):
        # nothing to combine: the initial value or the identity, a constant (as NumPy's)
        return np.full(out_shape, initial if initial is not _NO else uf.identity, want)
    if uf is np.subtract and np.dtype(want).kind in "iuf":
        # ((a - b) - c) ...: the first element (or initial) less the sum of the others (in
        # adjit's summation order: the last bits may differ from NumPy's loop)
        if initial is _NO:  # (no where= mask then: subtract has no identity)
            r = y[0] - np.sum(y[1:], axis=0, dtype=want)
        else:
            r = initial - np.sum(y if m is None else np.where(m, y, 0), axis=0, dtype=want)
    elif m is None and _reorderable(uf):
        while y.shape[0] > 1:  # pairwise: log2(n) steps
            h = y.shape[0] // 2
            z = uf(y[:h], y[h:2 * h])
            y = np.concatenate([z, y[2 * h:]], axis=0) if y.shape[0] % 2 else z
        r = y[0]
        if initial is not _NO:
            r = uf(initial, r)
    else:  # in order, skipping the masked-out elements
        r = initial
        for i in range(n):
            if r is _NO:
                r = y[i] if m is None else np.where(m[i], y[i], _fill(uf, y[i]))
                continue
            step = uf(r, y[i])
            r = step if m is None else np.where(m[i], step, r)
    if not isinstance(r, TracedArray) or r.dtype != want:
        r = np.asarray(r, want) if not isinstance(r, TracedArray) else r.astype(want)
    return np.reshape(r, out_shape) if r.shape != out_shape else r


def _fill(uf, like):
    return np.zeros_like(like) + uf.identity if uf.identity is not None else like


# --- accumulate --------------------------------------------------------------------------------
def _accumulate(uf, x, want, axis=0, dtype=None):
    if uf is np.add and np.dtype(want) != np.bool_:
        return np.cumsum(x, axis=axis, dtype=dtype if dtype is not None else want)
    if uf is np.multiply and np.dtype(want) != np.bool_:
        return np.cumprod(x, axis=axis, dtype=dtype if dtype is not None else want)
    x = _as_loop_dtype(uf, x if dtype is None else x.astype(dtype), want)
    if x is None:
        return None
    ax = int(axis) % x.ndim
    y = np.moveaxis(x, ax, 0)
    n = y.shape[0]
    if n <= 1:
        return x
    if uf is np.subtract and np.dtype(want).kind in "iuf":  # a running sum of a, -b, -c ...
        y = np.cumsum(np.concatenate([y[:1], -y[1:]], axis=0), axis=0, dtype=want)
    elif _reorderable(uf):  # prefix by doubling steps: log2(n) ufunc calls
        s = 1
        while s < n:
            y = np.concatenate([y[:s], uf(y[:-s], y[s:])], axis=0)
            s *= 2
    else:
        outs = [y[0]]
        for i in range(1, n):
            outs.append(uf(outs[-1], y[i]))
        y = np.stack(outs, axis=0)
    return np.moveaxis(y, 0, ax)
