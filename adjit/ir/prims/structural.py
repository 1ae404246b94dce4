"""Shape primitives (broadcast_in_dim, reshape, transpose, slice, pad, concatenate), the
reductions, argmax/argmin and cumsum; `prim`, the registration helper of the non-elementwise
primitive files."""
from __future__ import annotations

import math

import numpy as np

from .. import ops as o
from ..core import GuardFailed, Primitive, register
from ..types import AType, DTYPES, dtype_name
from ._helpers import ALL, FLOATS, NUMERIC, sample_array


def linear_jvp(name):
    """jvp of an operation linear in its first operand: the same operation on the tangent."""
    def jvp(tangents, *primals, out, **params):
        if tangents[0] is None:
            return None
        return o.__getattr__(name)(tangents[0], *primals[1:], **params)
    return jvp


def prim(name, rule, impl, vjp=None, jvp=None, samples=None, **kw):
    return register(Primitive(name, rule, impl, vjp, jvp, samples, **kw))


def _s(rng, shp, dt="f64", dom="any"):
    return sample_array(rng, shp, dt, dom)


# --- broadcast_in_dim, reshape, transpose ---------------------------------------------------
def _bcast_rule(x, *, shape, dims):
    # dims must be strictly increasing (as in XLA): the impl places axes by reshape, which
    # would silently scramble a permuted mapping instead of transposing it
    if len(dims) != x.ndim or list(dims) != sorted(set(dims)) or \
            any(not 0 <= d < len(shape) for d in dims) or \
            any(x.shape[i] not in (1, shape[d]) for i, d in enumerate(dims)):
        raise ValueError(f"broadcast_in_dim: cannot broadcast {x.shape} to {shape} along {dims}")
    return AType(shape, x.dtype)


# (x.itemsize, x.shape, x.strides, shape, dims) -> strides of the view, or None. The itemsize
# is part of the key: the same strides are contiguous for one dtype and a strided view for a
# narrower one (a float32 x[::2] has a float64 array's strides)
_BCAST_STRIDES: dict = {}


def _bcast_strides(x, shape, dims):
    """The strides of x broadcast to `shape` as a view of x's own buffer, when x is
    C-contiguous (else None: np.broadcast_to makes the view)."""
    st, expect = [], x.itemsize
    for d in reversed(x.shape):  # C-contiguous means the canonical strides
        st.append(expect)
        expect *= d
    if tuple(reversed(st)) != x.strides or not x.size:
        return None
    out = [0] * len(shape)
    for i, d in enumerate(dims):
        if x.shape[i] == shape[d]:
            out[d] = x.strides[i]
    return tuple(out)


def _bcast_impl(x, *, shape, dims):
    key = (x.itemsize, x.shape, x.strides, shape, dims)
    st = _BCAST_STRIDES.get(key, False)
    if st is False:
        st = _bcast_strides(x, shape, dims)
        if len(_BCAST_STRIDES) >= 1024:
            _BCAST_STRIDES.clear()
        _BCAST_STRIDES[key] = st
    if st is not None:
        # the read-only view np.broadcast_to makes, built directly (several times faster)
        v = np.ndarray(shape, x.dtype, x, 0, st)
        v.flags.writeable = False
        return v
    keep = [1] * len(shape)
    for i, d in enumerate(dims):
        keep[d] = x.shape[i]
    return np.broadcast_to(x.reshape(keep), shape)


def _bcast_vjp(ct, x, out, *, shape, dims):
    xs = o.shape(x)
    axes = [d for d in range(len(shape)) if d not in dims]
    axes += [d for i, d in enumerate(dims) if xs[i] == 1 and shape[d] != 1]
    return [o.reshape(o.reduce_sum(ct, axes), xs)]


prim("broadcast_in_dim", _bcast_rule, _bcast_impl, _bcast_vjp, linear_jvp("broadcast_in_dim"),
     lambda dt, rng: [([_s(rng, (3, 1), dt)], {"shape": (2, 3, 4), "dims": (1, 2)}),
                      ([_s(rng, (), dt)], {"shape": (3,), "dims": ()})],
     dtypes=ALL, saves=False, fp_warns=False)


def _reshape_rule(x, *, shape):
    # (math.prod: exact, where np.prod's int64 product wrapped (an empty array "reshaped" to
    # (2**32, 2**32)), and without NumPy's reduction: ~10 us of every new shape's rule)
    if math.prod(shape) != x.size:
        raise ValueError(f"reshape: cannot reshape {x.shape} ({x.size} elements) to {shape}")
    try:
        return AType(shape, x.dtype)
    except ValueError as e:  # an empty array's other dimensions too big (AType's check)
        raise ValueError(f"reshape: cannot reshape {x.shape} to {shape}: {e}") from None


prim("reshape", _reshape_rule, lambda x, *, shape: np.reshape(x, shape),
     lambda ct, x, out, *, shape: [o.reshape(ct, o.shape(x))], linear_jvp("reshape"),
     lambda dt, rng: [([_s(rng, (3, 4), dt)], {"shape": (2, 6)}),
                      ([_s(rng, (1,), dt)], {"shape": ()})], dtypes=ALL, saves=False,
     fp_warns=False)


def _transpose_rule(x, *, perm):
    if sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"transpose: {perm} is not a permutation of {x.ndim} axes")
    return AType(tuple(x.shape[p] for p in perm), x.dtype)


prim("transpose", _transpose_rule, lambda x, *, perm: np.transpose(x, perm),
     # (the inverse permutation: the argsort of distinct axes, without NumPy's ~1 us)
     lambda ct, x, out, *, perm: [o.transpose(ct, tuple(sorted(range(len(perm)),
                                                               key=list(perm).__getitem__)))],
     linear_jvp("transpose"),
     lambda dt, rng: [([_s(rng, (2, 3, 4), dt)], {"perm": (2, 0, 1)})], dtypes=ALL, saves=False,
     fp_warns=False)


# --- reductions -----------------------------------------------------------------------------
def _reduce_rule(x, *, axes):
    if any(not 0 <= a < x.ndim for a in axes) or len(set(axes)) != len(axes):
        raise ValueError(f"reduce: bad axes {axes} for shape {x.shape}")
    return AType(tuple(d for i, d in enumerate(x.shape) if i not in axes), x.dtype)


def _expand(ct, xshape, axes):
    if not axes:
        return ct
    p = o.full_of(ct)
    if p is not None:  # a constant cotangent (a sum's or mean's seed): one `full`
        return o.full(xshape, p["value"], p["dtype"])
    kept = tuple(i for i in range(len(xshape)) if i not in axes)
    return o.broadcast_in_dim(ct, shape=tuple(xshape), dims=kept)


def _reduce_samples(dt, rng):
    return [([_s(rng, (3, 4), dt)], {"axes": (1,)}), ([_s(rng, (2, 3, 4), dt)], {"axes": (0, 2)}),
            ([_s(rng, (5,), dt)], {"axes": (0,)})]


prim("reduce_sum", _reduce_rule,
     # np.add.reduce is np.sum without its Python-level dispatch (a microsecond per call)
     lambda x, *, axes: np.add.reduce(x, axis=axes, dtype=x.dtype),
     lambda ct, x, out, *, axes: [_expand(ct, o.shape(x), axes)], linear_jvp("reduce_sum"),
     _reduce_samples, dtypes=NUMERIC, saves=False, kind="reduction")


def _extremum_mask(x, out, axes):
    """Where x is the extremum; a NaN extremum (NumPy propagates NaN) is where x is NaN, as
    PyTorch routes the gradient."""
    xs = o.shape(x)
    mask = o.eq(x, _expand(out, xs, axes))
    if o.dtype(x) in ("f32", "f64"):
        # a NaN element makes its slice's extremum NaN (NaN propagates, docs/ir.md), so "x is
        # NaN" implies "the extremum is NaN": x != x alone marks the NaN positions
        mask = o.__getattr__("or")(mask, o.ne(x, x))
    return mask


def _extremum_vjp(ct, x, out, *, axes):
    # ties share the gradient evenly (as PyTorch's and JAX's max/min reductions do)
    xs = o.shape(x)
    mask = _extremum_mask(x, out, axes)
    cnt = o.reduce_sum(o.convert(mask, o.dtype(ct)), axes)
    share = _expand(o.div(ct, cnt), xs, axes)
    return [o.select(mask, share, o.zero_of(ct))]  # +0 (not -0) off the extremum


def _extremum_jvp(tangents, x, out, *, axes):
    t = tangents[0]
    if t is None:
        return None
    w = o.convert(_extremum_mask(x, out, axes), o.dtype(out))
    return o.div(o.reduce_sum(o.mul(w, t), axes), o.reduce_sum(w, axes))


for _n, _f in (("reduce_max", np.maximum.reduce), ("reduce_min", np.minimum.reduce)):
    prim(_n, _reduce_rule, (lambda f: lambda x, *, axes: f(x, axis=axes))(_f), _extremum_vjp,
         _extremum_jvp, _reduce_samples, dtypes=NUMERIC, smooth=False, kind="reduction",
         fp_warns=False)


def _arg_rule(x, *, axis):
    if not 0 <= axis < x.ndim:
        raise ValueError(f"argmax/argmin: bad axis {axis} for shape {x.shape}")
    return AType(tuple(d for i, d in enumerate(x.shape) if i != axis), "i64")


for _n, _f in (("argmax", np.argmax), ("argmin", np.argmin)):
    prim(_n, _arg_rule, (lambda f: lambda x, *, axis: f(x, axis=axis).astype(np.int64))(_f),
         None, None, lambda dt, rng: [([_s(rng, (3, 4), dt)], {"axis": 1})], dtypes=NUMERIC,
         smooth=False, saves=False, kind="axis", fp_warns=False)


def _cumsum_impl(x, *, axis, reverse=False):
    # the ndarray method np.cumsum calls, and np.flip's view, without their Python wrappers
    if reverse:
        flip = (slice(None),) * axis + (slice(None, None, -1),)
        return x[flip].cumsum(axis=axis, dtype=x.dtype)[flip]
    return x.cumsum(axis=axis, dtype=x.dtype)


prim("cumsum", lambda x, *, axis, reverse=False: AType(x.shape, x.dtype), _cumsum_impl,
     lambda ct, x, out, *, axis, reverse=False: [o.cumsum(ct, axis=axis, reverse=not reverse)],
     linear_jvp("cumsum"),
     lambda dt, rng: [([_s(rng, (3, 4), dt)], {"axis": 1, "reverse": False}),
                      ([_s(rng, (5,), dt)], {"axis": 0, "reverse": True})],
     dtypes=NUMERIC, saves=False, kind="axis")


# --- slice / pad / concatenate --------------------------------------------------------------
def _slice_len(start, limit, stride):
    return max(0, -(-(limit - start) // stride))


def _slice_rule(x, *, start, limit, strides):
    if not (len(start) == len(limit) == len(strides) == x.ndim):
        raise ValueError("slice: start/limit/strides must have one entry per axis")
    for s, l, st, d in zip(start, limit, strides, x.shape):
        if not (0 <= s <= d and 0 <= l <= d and st >= 1):
            raise ValueError(f"slice: [{s}:{l}:{st}] out of range for a dimension of {d}")
    return AType(tuple(_slice_len(*a) for a in zip(start, limit, strides)), x.dtype)


def _slice_vjp(ct, x, out, *, start, limit, strides):
    low, high, interior = [], [], []
    for s, l, st, d in zip(start, limit, strides, o.shape(x)):
        n = _slice_len(s, l, st)
        low.append(s)
        interior.append(st - 1 if n > 0 else 0)
        high.append(d - (s + (n - 1) * st + 1) if n > 0 else d - s)
    return [o.pad(ct, low=tuple(low), high=tuple(high), interior=tuple(interior))]


prim("slice", _slice_rule,
     lambda x, *, start, limit, strides: x[tuple(slice(*a) for a in zip(start, limit, strides))],
     _slice_vjp, linear_jvp("slice"),
     lambda dt, rng: [([_s(rng, (5, 6), dt)], {"start": (1, 0), "limit": (4, 6),
                                                "strides": (1, 2)})], dtypes=ALL, saves=False,
     fp_warns=False)


def _pad_rule(x, *, low, high, interior):
    shp = tuple(lo + hi + (d + max(d - 1, 0) * it)
                for d, lo, hi, it in zip(x.shape, low, high, interior))
    if any(v < 0 for v in low + high + interior):
        raise ValueError("pad: negative padding")
    return AType(shp, x.dtype)


def _pad_impl(x, *, low, high, interior):
    # (the shape and check of _pad_rule, without an AType)
    if min(low + high + interior, default=0) < 0:
        raise ValueError("pad: negative padding")
    out = np.zeros(tuple(lo + hi + (d + max(d - 1, 0) * it)
                         for d, lo, hi, it in zip(x.shape, low, high, interior)), x.dtype)
    idx = tuple(slice(lo, lo + (d - 1) * (it + 1) + 1 if d else lo, it + 1)
                for d, lo, it in zip(x.shape, low, interior))
    out[idx] = x
    return out


def _pad_vjp(ct, x, out, *, low, high, interior):
    xs = o.shape(x)
    return [o.slice(ct, start=tuple(low),
                    limit=tuple(lo + (d - 1) * (it + 1) + 1 if d else lo
                                for d, lo, it in zip(xs, low, interior)),
                    strides=tuple(it + 1 for it in interior))]


prim("pad", _pad_rule, _pad_impl, _pad_vjp, linear_jvp("pad"),
     lambda dt, rng: [([_s(rng, (3, 2), dt)], {"low": (1, 0), "high": (0, 2),
                                                "interior": (1, 0)})], dtypes=ALL, saves=False,
     fp_warns=False)


def _concat_rule(*xs, axis):
    first = xs[0]
    for x in xs[1:]:
        if x.ndim != first.ndim or x.dtype != first.dtype or any(
                a != b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if i != axis):
            raise ValueError(f"concatenate: shapes {[x.shape for x in xs]} do not fit on axis "
                             f"{axis}")
    shp = list(first.shape)
    shp[axis] = sum(x.shape[axis] for x in xs)
    return AType(shp, first.dtype)


def _concat_vjp(ct, *xs, out, axis):
    cts, off = [], 0
    cs = o.shape(ct)
    for x in xs:
        n = o.shape(x)[axis]
        start = tuple(off if i == axis else 0 for i in range(len(cs)))
        limit = tuple(off + n if i == axis else d for i, d in enumerate(cs))
        cts.append(o.slice(ct, start=start, limit=limit, strides=(1,) * len(cs)))
        off += n
    return cts


def _concat_jvp(tangents, *xs, out, axis):
    if all(t is None for t in tangents):
        return None
    ts = [o.zeros(o.shape(x), o.dtype(out)) if t is None else t for t, x in zip(tangents, xs)]
    return o.concatenate(*ts, axis=axis)


prim("concatenate", _concat_rule, lambda *xs, axis: np.concatenate(xs, axis=axis),
     _concat_vjp, _concat_jvp,
     lambda dt, rng: [([_s(rng, (2, 3), dt), _s(rng, (4, 3), dt)], {"axis": 0})],
     dtypes=ALL, saves=False, fp_warns=False)
