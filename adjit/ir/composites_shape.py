"""Shape and indexing functions composed of primitives, shared by the NumPy and Tensor fronts.

Every function takes Nodes (or NumPy arrays) whose dtypes the front has already promoted, and
static (Python) arguments for everything that decides a shape. Index patterns that depend only
on shapes are computed here with NumPy on `arange` (np.pad of an arange is the index map of a
padding mode, np.repeat of one the index map of a repeat, ...) and applied with `gather`, whose
derivative is a `scatter_add`: forward and reverse mode to any order, batched and compiled like
any gather. Sorting is the `argsort` primitive followed by such a gather.
"""
from __future__ import annotations

import numpy as np

from . import composites
from . import ops
from .core import REGISTRY, bind


def _ax(axis, nd):
    return composites.norm_axes(axis, nd)[0]


def _flat(x):
    return ops.reshape(x, (composites.count(x),))


def take_index(x, idx, axis):
    """x gathered along `axis` by a constant index array (an ndarray of int64)."""
    return ops.gather(x, np.asarray(idx, dtype=np.int64), axis=axis)


def slice_axis(x, start, stop, axis, step=1):
    shp = ops.shape(x)
    nd = len(shp)
    st = [0] * nd
    lim = list(shp)
    strides = [1] * nd
    st[axis], lim[axis], strides[axis] = start, stop, step
    return ops.slice(x, start=tuple(st), limit=tuple(lim), strides=tuple(strides))


# --- reorderings -------------------------------------------------------------------------------
def roll(x, shift, axis=None):
    if axis is None:
        return ops.reshape(roll(_flat(x), shift, 0), ops.shape(x))
    shifts = np.broadcast_arrays(np.asarray(shift), np.asarray(axis))
    nd = composites.ndim(x)
    total = {}
    for s, a in zip(shifts[0].ravel(), shifts[1].ravel()):
        a = _ax(int(a), nd)
        total[a] = total.get(a, 0) + int(s)
    for a, s in sorted(total.items()):
        n = ops.shape(x)[a]
        if n:
            x = take_index(x, (np.arange(n) - s) % n, a)
    return x


def repeat(x, repeats, axis=None):
    if axis is None:
        x, axis = _flat(x), 0
    n = ops.shape(x)[axis]
    return take_index(x, np.repeat(np.arange(n), repeats), axis)


def tile(x, reps):
    reps = (int(reps),) if np.ndim(reps) == 0 else tuple(int(r) for r in reps)
    shp = ops.shape(x)
    d = max(len(reps), len(shp))
    shp = (1,) * (d - len(shp)) + tuple(shp)
    reps = (1,) * (d - len(reps)) + reps
    inter = tuple(v for r, s in zip(reps, shp) for v in (1, s))
    big = tuple(v for r, s in zip(reps, shp) for v in (r, s))
    y = ops.broadcast_to(ops.reshape(x, inter), big)
    return ops.reshape(y, tuple(r * s for r, s in zip(reps, shp)))


def rot90(x, k=1, axes=(0, 1)):
    nd = composites.ndim(x)
    a0, a1 = (int(a) % nd for a in axes)
    k %= 4
    if k == 0:
        return x
    if k == 2:
        return composites.flip(composites.flip(x, a0), a1)
    perm = list(range(nd))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    if k == 1:
        return ops.transpose(composites.flip(x, a1), tuple(perm))
    return composites.flip(ops.transpose(x, tuple(perm)), a1)


# --- diagonals and triangles -----------------------------------------------------------------
def _diag_positions(n1, n2, offset):
    i0 = max(0, -offset)
    m = max(0, min(n1 - i0, n2 - i0 - offset))
    i = np.arange(i0, i0 + m)
    return i * n2 + i + offset


def diagonal(x, offset=0, axis1=0, axis2=1):
    nd = composites.ndim(x)
    a1, a2 = _ax(axis1, nd), _ax(axis2, nd)
    if a1 == a2:
        raise ValueError("axis1 and axis2 cannot be the same")
    y = composites.moveaxis(x, (a1, a2), (-2, -1))
    shp = ops.shape(y)
    n1, n2 = shp[-2:]
    flat = ops.reshape(y, tuple(shp[:-2]) + (n1 * n2,))
    return take_index(flat, _diag_positions(n1, n2, offset), nd - 2)


def diag_matrix(v, k=0):
    """The square matrix with the 1-d `v` on its k-th diagonal (zeros elsewhere): a gather
    from v with a zero appended, so every dtype works and the derivative is a gather too."""
    n = ops.shape(v)[0]
    big = n + abs(k)
    idx = np.full(big * big, n, dtype=np.int64)
    idx[_diag_positions(big, big, k)] = np.arange(n)
    ext = ops.concatenate(v, ops.zeros((1,), ops.dtype(v)), axis=0)
    return ops.reshape(take_index(ext, idx, 0), (big, big))


def tri_mask(n1, n2, k, upper):
    """Which entries np.triu (upper) or np.tril keeps."""
    ones = np.ones((n1, n2), dtype=bool)
    return np.triu(ones, k) if upper else np.tril(ones, k)


def triangle(x, k, upper):
    shp = ops.shape(x)
    if len(shp) < 2:
        shp = (shp[0], shp[0])
        x = ops.broadcast_to(x, shp)
    mask = np.broadcast_to(tri_mask(shp[-2], shp[-1], k, upper), shp)
    return ops.select(mask, x, ops.zeros(shp, ops.dtype(x)))


# --- products ----------------------------------------------------------------------------------
def kron(a, b):
    sa, sb = ops.shape(a), ops.shape(b)
    d = max(len(sa), len(sb))
    sa, sb = (1,) * (d - len(sa)) + tuple(sa), (1,) * (d - len(sb)) + tuple(sb)
    full = tuple(v for p, q in zip(sa, sb) for v in (p, q))
    ax = ops.broadcast_to(ops.reshape(a, tuple(v for p in sa for v in (p, 1))), full)
    bx = ops.broadcast_to(ops.reshape(b, tuple(v for q in sb for v in (1, q))), full)
    return ops.reshape(ops.mul(ax, bx), tuple(p * q for p, q in zip(sa, sb)))


def cross3(a, b, axis=-1):
    """Cross product of 3-vectors along `axis` (both operands already broadcast)."""
    nd = composites.ndim(a)
    a, b = composites.moveaxis(a, axis, -1), composites.moveaxis(b, axis, -1)
    comp = [[slice_axis(v, i, i + 1, nd - 1) for i in range(3)] for v in (a, b)]
    (a0, a1, a2), (b0, b1, b2) = comp
    c = ops.concatenate(ops.sub(ops.mul(a1, b2), ops.mul(a2, b1)),
                        ops.sub(ops.mul(a2, b0), ops.mul(a0, b2)),
                        ops.sub(ops.mul(a0, b1), ops.mul(a1, b0)), axis=nd - 1)
    return composites.moveaxis(c, -1, axis)


# --- scans and differences ---------------------------------------------------------------------
def cumprod(x, axis):
    """Inclusive product scan by doubling (log2(n) steps of shift-and-multiply): exact with
    zeros, and every step is differentiable."""
    n = ops.shape(x)[axis]
    s = 1
    while s < n:
        shp = list(ops.shape(x))
        shp[axis] = s
        shifted = ops.concatenate(ops.full(tuple(shp), 1, ops.dtype(x)),
                                  slice_axis(x, 0, n - s, axis), axis=axis)
        x = ops.mul(x, shifted)
        s *= 2
    return x


def diff(x, n, axis):
    neq = ops.dtype(x) == "bool"
    for _ in range(n):
        m = ops.shape(x)[axis]
        hi, lo = slice_axis(x, 1, m, axis), slice_axis(x, 0, max(m - 1, 0), axis)
        x = ops.ne(hi, lo) if neq else ops.sub(hi, lo)
    return x


# --- sorting and order statistics --------------------------------------------------------------
def take_along_axis(x, idx, axis, negative=True):
    """np.take_along_axis: x[..., idx[..., j, ...], ...] with the other axes broadcast
    between x and idx; one gather from x's flattened values at computed positions. Without
    `negative` (torch.gather) a negative index recorded for replay is out of range too."""
    xs, ids = ops.shape(x), ops.shape(idx)
    nd = len(xs)
    n = xs[axis]
    other = np.broadcast_shapes(tuple(1 if i == axis else d for i, d in enumerate(xs)),
                                tuple(1 if i == axis else d for i, d in enumerate(ids)))
    out = tuple(ids[axis] if i == axis else d for i, d in enumerate(other))
    xb = ops.broadcast_to(x, tuple(n if i == axis else d for i, d in enumerate(other)))
    strides = np.cumprod((tuple(n if i == axis else d for i, d in enumerate(other)) +
                          (1,))[::-1])[::-1][1:]
    base = sum(np.arange(d).reshape([d if j == i else 1 for j in range(nd)]) * strides[i]
               for i, d in enumerate(out) if i != axis) + np.zeros(out, np.int64)
    ib = ops.broadcast_to(idx, out)
    if isinstance(ib, np.ndarray):
        pos = base + np.where(ib < 0, ib + n, ib) * strides[axis]
    else:
        # an index outside [-n, n) (on a replay: the values traced now are checked by the
        # fronts) becomes a position past the flat x, so the gather raises IndexError rather
        # than read a neighbouring row
        from .indexing import wrap_traced_index
        wrapped = wrap_traced_index(ib, n, int(np.prod(ops.shape(xb), dtype=np.int64)),
                                    negative)
        pos = ops.add(ops.mul(wrapped, int(strides[axis])), base)
    return ops.gather(_flat(xb), pos, axis=0)


def argsort(x, axis, descending=False):
    return bind(REGISTRY["argsort"], x, axis=axis, descending=descending)


def sort(x, axis, descending=False):
    """(sorted values, the permutation): values are a gather through the permutation."""
    idx = argsort(x, axis, descending)
    return take_along_axis(x, idx, axis), idx


def _nan_last(v, axis, r):
    """NaN where the sorted `v` holds a NaN (it sorts last): NumPy's median and percentile
    of data with a NaN are NaN."""
    if not composites.is_float(v):
        return r
    n = ops.shape(v)[axis]
    last = ops.reshape(slice_axis(v, n - 1, n, axis),
                       tuple(d for i, d in enumerate(ops.shape(v)) if i != axis))
    bad = composites.isnan(last)
    if ops.shape(r) != ops.shape(bad):
        bad = ops.broadcast_to(bad, ops.shape(r))
    return ops.select(bad, ops.full(ops.shape(r), float("nan"), ops.dtype(r)), r)


def median(x, axis):
    v, _ = sort(x, axis)
    n = ops.shape(x)[axis]
    h = n // 2
    mid = slice_axis(v, h - 1 if n % 2 == 0 else h, h + 1, axis)
    return _nan_last(v, axis, composites.mean(mid, axis))


def quantile(x, q, axis, method="linear"):
    """np.quantile along one axis for constant q in [0, 1] (q's shape first in the result)."""
    v, _ = sort(x, axis)
    n = ops.shape(x)[axis]
    q = np.asarray(q, dtype=np.float64)
    outs = []
    for qi in q.ravel():
        pos = qi * (n - 1)
        if method == "lower":
            k = int(np.floor(pos))
        elif method == "higher":
            k = int(np.ceil(pos))
        elif method == "nearest":
            k = int(np.around(pos))
        if method in ("lower", "higher", "nearest"):
            r = composites.squeeze(slice_axis(v, k, k + 1, axis), axis)
        elif method == "midpoint":
            lo, hi = int(np.floor(pos)), int(np.ceil(pos))
            a = composites.squeeze(slice_axis(v, lo, lo + 1, axis), axis)
            b = composites.squeeze(slice_axis(v, hi, hi + 1, axis), axis)
            r = ops.mul(ops.add(a, b), 0.5)
        else:  # linear, as NumPy's _lerp (from the nearer end for t >= 0.5)
            lo = int(np.floor(pos))
            hi = min(lo + 1, n - 1)
            t = float(pos - lo)
            a = composites.squeeze(slice_axis(v, lo, lo + 1, axis), axis)
            b = composites.squeeze(slice_axis(v, hi, hi + 1, axis), axis)
            d = ops.sub(b, a)
            r = ops.sub(b, ops.mul(d, 1.0 - t)) if t >= 0.5 else ops.add(a, ops.mul(d, t))
        outs.append(_nan_last(v, axis, r))
    r = ops.concatenate(*[ops.reshape(o, (1,) + ops.shape(o)) for o in outs], axis=0)
    return ops.reshape(r, q.shape + ops.shape(outs[0]))


# --- padding -----------------------------------------------------------------------------------
INDEX_MODES = ("edge", "reflect", "symmetric", "wrap")


def pad(x, widths, mode="constant", value=0):
    """np.pad with `widths` ((before, after) per axis). Index modes gather through np.pad of an
    arange (NumPy's own index map); constant mode concatenates constant blocks."""
    for a, (lo, hi) in enumerate(widths):
        if not lo and not hi:
            continue
        if mode == "constant":
            vals = value[a] if isinstance(value, (list, tuple)) else (value, value)
            parts = []
            for w, c in ((lo, vals[0]), (None, None), (hi, vals[1])):
                if w is None:
                    parts.append(x)
                elif w:
                    shp = list(ops.shape(x))
                    shp[a] = w
                    parts.append(ops.full(tuple(shp), c, ops.dtype(x)))
            x = ops.concatenate(*parts, axis=a)
        else:
            n = ops.shape(x)[a]
            x = take_index(x, np.pad(np.arange(n), (lo, hi), mode=mode), a)
    return x
