"""NumPy/PyTorch indexing lowered to primitives: slice, gather, reshape, transpose.

Shared by both fronts. Basic indices (ints, slices, None, Ellipsis) become one `slice` and a
`reshape`; integer arrays, boolean masks (and ints, when any array index is present, as NumPy
treats them) become one `gather` over the merged indexed axes, placed where NumPy places them.
Index arrays may be recorded values (labels passed to a jitted loss), so index arithmetic is done
with ops too; concrete indices are bounds-checked here.
"""
from __future__ import annotations

import numpy as np

from . import ops
from .core import EAGER, REGISTRY, Node, _record, bind


def _is_array_index(i):
    return isinstance(i, (list, np.ndarray, Node)) or (
        hasattr(i, "_n") and not isinstance(i, (int, np.integer)))


def _concrete(i):
    if hasattr(i, "_n"):
        i = i._n
    if isinstance(i, Node):
        # recorded (computed, or an input of the trace): data; a constant leaf: its value
        return i if i.trace.active and i.trace.level > 0 and (
            i.rec is not None or i.requires_grad) else i.val
    return np.asarray(i)


def first_out_of_bounds(a, n):
    """The first index in `a` outside [-n, n) (an int), or None."""
    a = np.asarray(a)
    if a.size <= _SMALL_INDEX:
        # a small index (a batch's labels) checked in Python: NumPy's comparisons, `|` and
        # `any` on its dtype, each one's first use in a process ~10-30 us, were ~90 us of a
        # process's first trace (the same test as below: nan is in bounds)
        vs = a.ravel().tolist()
        if vs and a.dtype.kind in "iu" and min(vs) >= -n and max(vs) < n:
            return None  # (integers in bounds, the common case: no Python loop)
        for v in vs:
            if v >= n or v < -n:
                return int(v)
        return None
    bad = (a >= n) | (a < -n)
    return int(a[bad].flat[0]) if bad.any() else None


_SMALL_INDEX = 64


def index_bounds(a, n):
    """(the first index in integer array `a` outside [-n, n) or None, whether any index of
    `a` is negative): what an index needs checked, and whether it needs wrapping."""
    if a.size <= _SMALL_INDEX:
        vs = a.ravel().tolist()  # (in Python: see first_out_of_bounds)
        if vs and a.dtype.kind in "iu":
            lo, hi = min(vs), max(vs)
            if lo >= -n and hi < n:
                return None, lo < 0
        neg = False
        for v in vs:
            if v < 0:
                if v < -n:
                    return int(v), True
                neg = True
            elif v >= n:
                return int(v), neg
        return None, neg
    lo, hi = int(a.min()), int(a.max())
    if lo >= -n and hi < n:
        return None, lo < 0
    return first_out_of_bounds(a, n), lo < 0


def wrap_traced_index(i, n, poison, negative=True):
    """A recorded integer index into an axis of size n, made non-negative for `gather`: i + n
    where -n <= i < 0. An index outside [-n, n) becomes `poison`, which callers choose at least
    as large as the axis the gather finally reads (the product of the merged indexed axes), so
    that gather rejects it on replay (IndexError in the interpreter, status 2 -> IndexError in
    native code) instead of wrapping it a second time or, once merged with the other indices
    into one linear index, reading a neighbouring row. One `index_wrap` equation.
    negative=False (PyTorch's gather, index_select, scatter_add): a negative index recorded
    for replay is out of range too (moved below -n first, so it is poisoned)."""
    i = ops.convert(i, "i64")
    n = int(n)
    tr = i.trace
    if not negative and tr is not EAGER:
        i = ops.select(ops.lt(i, 0), ops.sub(i, n), i)
    args = (i, n, max(int(poison), n))
    if type(i) is Node and tr.active and tr is not EAGER:
        # what `bind` records (at i's trace: n and the poison are literals), without its
        # search for the trace
        return _record(REGISTRY["index_wrap"], tr, args, {})
    return bind(REGISTRY["index_wrap"], *args)


def normalize_index(idx, ndim):
    if not isinstance(idx, tuple):
        idx = (idx,)
    n_ell = sum(1 for i in idx if i is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = 0
    for i in idx:
        if i is None or i is Ellipsis:
            continue
        a = _concrete(i) if _is_array_index(i) else None
        if a is not None and not isinstance(a, Node) and a.dtype == np.bool_:
            used += max(a.ndim, 1)
        else:
            used += 1
    if used > ndim:
        raise IndexError(f"too many indices for array: array is {ndim}-dimensional, but {used} "
                         "were indexed")
    out = []
    for i in idx:
        if i is Ellipsis:
            out.extend([slice(None)] * (ndim - used))
        else:
            out.append(i)
    if n_ell == 0:
        out.extend([slice(None)] * (ndim - used))
    return out


def index(x, idx):
    """x[idx] for a Node or array `x`. Returns (result, kind) where kind names the PyTorch op
    ('select', 'slice', 'index', 'unsqueeze', 'view')."""
    shp = ops.shape(x)
    items = normalize_index(idx, len(shp))
    has_adv = any(_is_array_index(i) for i in items)
    start, limit, strides = [], [], []
    dims = []       # per input dim: ('keep'|'int'|'adv', payload)
    reversed_axes = []
    d = 0
    nones = []
    for i in items:
        if i is None:
            nones.append(len(dims))
            continue
        size = shp[d]
        if isinstance(i, slice):
            s, e, st = i.indices(size)
            if st < 0:
                reversed_axes.append((d, np.arange(s, e, st)))
                s, e, st = 0, size, 1
            start.append(s)
            limit.append(max(e, s))
            strides.append(st)
            dims.append(("keep", None))
        elif _is_array_index(i):
            a = _concrete(i)
            if not isinstance(a, Node) and a.dtype == np.bool_:
                if a.shape != tuple(shp[d:d + a.ndim]):
                    raise IndexError(f"The shape of the mask {list(a.shape)} at index {d} does "
                                     f"not match the shape of the indexed tensor "
                                     f"{list(shp[d:d + a.ndim])}")
                nz = np.nonzero(a) if a.ndim else (np.nonzero(np.atleast_1d(a))[0],)
                for k, arr in enumerate(nz):
                    start.append(0)
                    limit.append(shp[d + k])
                    strides.append(1)
                    dims.append(("adv", arr.astype(np.int64)))
                d += max(a.ndim, 1)
                continue
            start.append(0)
            limit.append(size)
            strides.append(1)
            dims.append(("adv", a))
        elif isinstance(i, (int, np.integer)) or hasattr(i, "__index__"):
            k = int(i)
            if not -size <= k < size:
                raise IndexError(f"index {k} is out of bounds for dimension {d} with size {size}")
            k %= size
            if has_adv:
                start.append(0)
                limit.append(size)
                strides.append(1)
                dims.append(("adv", np.asarray(k, np.int64)))
            else:
                start.append(k)
                limit.append(k + 1)
                strides.append(1)
                dims.append(("int", None))
        else:
            raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and integer "
                             f"or boolean arrays are valid indices, not {type(i).__name__}")
        d += 1
    y = x
    if any((s, e, st) != (0, n, 1) for s, e, st, n in zip(start, limit, strides, shp)):
        y = ops.slice(y, start=tuple(start), limit=tuple(limit), strides=tuple(strides))
    for ax, arr in reversed_axes:
        y = ops.gather(y, np.ascontiguousarray(arr, np.int64) - 0, axis=ax)
    if has_adv:
        if nones:
            raise NotImplementedError("adjit: None together with array indices is not supported")
        return _advanced(y, dims), "index"
    # drop the int dims (size 1 after slicing) and insert the None dims, in index order
    final, it = [], iter(ops.shape(y))
    k = 0
    for i in items:
        if i is None:
            final.append(1)
            continue
        n = next(it)
        if dims[k][0] != "int":
            final.append(n)
        k += 1
    if tuple(final) != tuple(ops.shape(y)):
        y = ops.reshape(y, tuple(final))
    kinds = [t[0] for t in dims]
    if "int" in kinds:
        kind = "select"
    elif nones:
        kind = "unsqueeze"
    else:
        kind = "slice"
    return y, kind


def _advanced(y, dims):
    shp = list(ops.shape(y))
    pos = [k for k, t in enumerate(dims) if t[0] == "adv"]
    arrays = [dims[k][1] for k in pos]
    contiguous = pos == list(range(pos[0], pos[0] + len(pos)))
    if not contiguous:
        perm = pos + [k for k in range(len(shp)) if k not in pos]
        y = ops.transpose(y, tuple(perm))
        shp = [shp[p] for p in perm]
        first = 0
    else:
        first = pos[0]
    sizes = [shp[first + j] for j in range(len(pos))]
    lin = None
    bshape = np.broadcast_shapes(*[tuple(ops.shape(a)) for a in arrays])
    for a, n in zip(arrays, sizes):
        if not isinstance(a, Node):
            a = np.asarray(a)
            if a.dtype.kind not in "iu":
                raise IndexError(f"tensors used as indices must be long, int, byte or bool "
                                 f"tensors, not {a.dtype}")
            bad = first_out_of_bounds(a, n)
            if bad is not None:
                raise IndexError(f"index {bad} is out of bounds for dimension with size {n}")
            a = np.where(a < 0, a + n, a).astype(np.int64)
        else:
            if a.val is not None:  # the values traced now: refused now, as PyTorch does
                bad = first_out_of_bounds(a.val, n)
                if bad is not None:
                    raise IndexError(f"index {bad} is out of bounds for dimension with size {n}")
            a = wrap_traced_index(a, n, int(np.prod(sizes)))
        a = ops.broadcast_to(a, bshape)
        lin = a if lin is None else ops.add(ops.mul(lin, n), a)
    merged = shp[:first] + [int(np.prod(sizes))] + shp[first + len(pos):]
    y = ops.reshape(y, tuple(merged))
    return ops.gather(y, lin, axis=first)
