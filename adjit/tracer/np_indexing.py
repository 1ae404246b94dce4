"""NumPy indexing of a TracedArray, recorded as slice / gather / reshape / transpose.

Basic indices (ints, slices, None, Ellipsis) become one `slice` (plus a `gather` per negative
step) and a `reshape`. Advanced indices (integer arrays, traced integer arrays, boolean masks)
follow NumPy's rules: they broadcast together, ints among them count as 0-d arrays, and the
result dims go where the advanced indices were if they are adjacent, else first. All advanced
dims are merged into one axis and read with a single `gather` of the linear index. A traced
boolean mask records a guard on how many elements it selects (the result's shape) and computes
the selected positions in the IR, so a replay with a different mask of the same count is right.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import ops
from ..ir.core import Node, REGISTRY, bind
from ..ir.indexing import first_out_of_bounds, index_bounds, wrap_traced_index
from ..ir.types import INTS
from . import ndarray as _nd
from .ndarray import TracedArray, const_leaf, where_str
from .promote import _broadcast_pair


def _is_int(k):
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


_ALL = ("slice", slice(None), 1)


def _classify(x, key):
    """[(kind, value, ndims consumed)] with Ellipsis expanded."""
    if type(key) is not tuple:
        key = (key,)
    items = []
    used = 0
    ell = []
    for k in key:
        tk = type(k)
        # the common kinds by their exact type; anything else below
        if tk is slice:
            items.append(("slice", k, 1))
            used += 1
            continue
        if tk is int:
            items.append(("int", k, 1))
            used += 1
            continue
        if tk is np.ndarray and k.dtype.kind in "iu":
            items.append(("array", k, 1))
            used += 1
            continue
        if (tk is _nd.TracedNDArray or tk is TracedArray) and k._n.type.dtype in INTS:
            items.append(("array", k, 1))
            used += 1
            continue
        if isinstance(k, list):
            k = np.asarray(k)
            if k.dtype == object:
                raise IndexError("ragged or traced lists cannot index a traced array; "
                                 "use np.stack first")
        if k is None:
            items.append(("none", None, 0))
        elif k is Ellipsis:
            ell.append(len(items))
            items.append(("ellipsis", None, 0))
        elif isinstance(k, slice):
            items.append(("slice", k, 1))
        elif _is_int(k):
            items.append(("int", int(k), 1))
        elif isinstance(k, (TracedArray, np.ndarray, np.generic)):
            dt = np.dtype(k.dtype)
            if dt == np.bool_:
                items.append(("mask", k, max(np.ndim(k) if not isinstance(k, TracedArray)
                                             else k.ndim, 1)))
                if (k.ndim if isinstance(k, TracedArray) else np.ndim(k)) == 0:
                    raise IndexError("0-d boolean indices are not supported on traced arrays")
            elif dt.kind in "iu":
                items.append(("array", k, 1))
            else:
                raise IndexError(f"arrays used as indices must be of integer (or boolean) "
                                 f"type, not {dt}{where_str()}")
        else:
            raise IndexError(f"unsupported index {k!r} of type {type(k).__name__}{where_str()}")
        used += items[-1][2]
    nd = len(x._n.type.shape)
    if used > nd:
        raise IndexError(f"too many indices for array: array is {nd}-dimensional, but {used} "
                         f"were indexed{where_str()}")
    if len(ell) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    fill = [_ALL] * (nd - used)
    if ell:
        items[ell[0]:ell[0] + 1] = fill
    else:
        items += fill
    return items


def _mask_indices(mask, trace):
    """Flat positions of True in `mask` (traced): guard on the count, then compute them."""
    m = mask._n
    flat = ops.reshape(m, (mask.size,))
    cnt_i = ops.convert(flat, "i64")
    n = int(np.count_nonzero(np.asarray(m.val)))
    total = ops.reduce_sum(cnt_i, (0,))
    bind(REGISTRY["guard"], ops.eq(total, n), expect=True)
    c = ops.cumsum(cnt_i, axis=0, reverse=False)
    slots = ops.select(flat, ops.sub(c, 1), ops.full((mask.size,), n, "i64"))
    pos = const_leaf(np.arange(mask.size, dtype=np.int64), trace)
    out = ops.scatter_add(ops.zeros((n + 1,), "i64"), slots, pos, axis=0)
    return ops.slice(out, start=(0,), limit=(n,), strides=(1,))


def _index_operand(k, d, trace, poison=None, copy=True):
    """An integer index array (ndarray or traced) made non-negative; a Node or ndarray. A
    traced index outside [-d, d) on a later replay becomes `poison` (see wrap_traced_index:
    at least the size of the axis the gather reads, d by default). An ndarray index is a
    fresh array unless `copy` is False (then it may be the caller's own: the caller copies
    it before it becomes a graph constant)."""
    if isinstance(k, TracedArray):
        val = k._n.val
        bad = first_out_of_bounds(val, d) if val is not None else None
        if bad is not None:
            raise IndexError(f"index {bad} is out of bounds for axis with size {d}{where_str()}")
        return wrap_traced_index(k._n, d, d if poison is None else poison)
    if type(k) is not np.ndarray or k.dtype is not _I64:
        k = np.asarray(k, dtype=np.int64)
    bad, negative = index_bounds(k, d)
    if bad is not None:
        raise IndexError(f"index {bad} is out of bounds for axis with size {d}{where_str()}")
    if negative:
        return np.where(k < 0, k + d, k)
    # (the graph's constant is never the caller's array)
    return k.copy() if copy else k


_I64 = np.dtype(np.int64)


def _leading_arrays(key, nd):
    """The index arrays of `key` when it is an integer index array (ndarray or traced) or a
    tuple of at most `nd` of them: NumPy's advanced indexing of the leading dims, every other
    dim whole (x[idx], x[rows, cols]); else None."""
    ks = key if type(key) is tuple else (key,)
    if not ks or len(ks) > nd:
        return None
    for k in ks:
        tk = type(k)
        if tk is np.ndarray:
            if k.dtype.kind not in "iu":
                return None
        elif (tk is not _nd.TracedNDArray and tk is not TracedArray) or \
                k._n.type.dtype not in INTS:
            return None
    return ks


def getitem(x: TracedArray, key):
    node = x._n
    trace = node.trace if node.trace.active else None
    shp = node.type.shape
    ks = _leading_arrays(key, len(shp))
    if ks is not None:
        # what the general path below does for such a key, without its general steps: no
        # slice, no transpose; the indexed dims merged (a reshape), one gather of the linear
        # index along axis 0, whose result has the final shape (the broadcast index shape,
        # then the other dims)
        n = len(ks)
        merged = math.prod(shp[:n])
        advs = [([j], _index_operand(k, shp[j], trace, merged, False))
                for j, k in enumerate(ks)]
        node = ops.reshape(node, (merged,) + shp[n:])
        return ops.gather(node, _linear_index(advs, shp)[0], axis=0)
    items = _classify(x, key)
    adv = False
    for it in items:
        if it[0] == "array" or it[0] == "mask":
            adv = True
            break
    node = x._n
    shp = list(x.shape)
    # 1. basic slicing over every dim (ints read one element; advanced dims stay whole)
    start, limit, strides, flips = [], [], [], []
    dim = 0
    for kind, k, m in items:
        if kind == "slice":
            s, e, st = k.indices(shp[dim])
            if st < 0:
                n = len(range(s, e, st))
                flips.append((dim, n))
                s, e, st = (s + (n - 1) * st, s + 1, -st) if n else (0, 0, 1)
            start.append(s)
            limit.append(max(s, e))
            strides.append(st)
        elif kind == "int" and not adv:
            i = k + shp[dim] if k < 0 else k
            if not 0 <= i < shp[dim]:
                raise IndexError(f"index {k} is out of bounds for axis {dim} with size "
                                 f"{shp[dim]}{where_str()}")
            start.append(i)
            limit.append(i + 1)
            strides.append(1)
        else:
            start += [0] * m
            limit += shp[dim:dim + m]
            strides += [1] * m
        dim += m
    if any(s != 0 for s in start) or any(st != 1 for st in strides) or limit != shp:
        node = ops.slice(node, start=tuple(start), limit=tuple(limit), strides=tuple(strides))
    for d, n in flips:
        node = ops.gather(node, np.arange(n - 1, -1, -1, dtype=np.int64), axis=d)
    cur = list(ops.shape(node))
    if not adv:
        final, dim = [], 0
        for kind, k, m in items:
            if kind == "none":
                final.append(1)
            elif kind == "slice":
                final.append(cur[dim])
            dim += m
        return ops.reshape(node, tuple(final))
    # 2. advanced indices: merge their dims into one axis and gather the linear index
    advs, dim, positions = [], 0, []
    merged = 1  # the size of the one axis the gather reads (poison for bad indices)
    for kind, k, m in items:
        if kind == "array" or kind == "mask" or kind == "int":
            merged *= math.prod(cur[dim:dim + m])
        dim += m
    dim = 0
    for j, (kind, k, m) in enumerate(items):
        if kind == "array" or kind == "mask" or kind == "int":
            positions.append(j)
            dims = list(range(dim, dim + m))
            if kind == "mask":
                advs.append((dims, _mask_nodes(k, trace, [cur[d] for d in dims])))
            else:
                advs.append((dims, _index_operand(np.asarray(k) if kind == "int" else k,
                                                  cur[dim], trace, merged, False)))
        dim += m
    adjacent = positions == list(range(positions[0], positions[-1] + 1))
    adv_dims = [d for dims, _ in advs for d in dims]
    rest = [d for d in range(len(cur)) if d not in adv_dims]
    p = sum(1 for d in rest if d < adv_dims[0]) if adjacent else 0
    node = ops.transpose(node, tuple(rest[:p] + adv_dims + rest[p:]))
    node = ops.reshape(node, tuple(cur[d] for d in rest[:p]) + (merged,) +
                       tuple(cur[d] for d in rest[p:]))
    lin, S = _linear_index(advs, cur)
    node = ops.gather(node, lin, axis=p)
    # the result: the sliced dims and Nones in index order, the advanced block's dims (S) in
    # place of the first advanced index if they were adjacent, else first
    final = [] if adjacent else list(S)
    it = iter(ops.shape(node)[:p] + ops.shape(node)[p + len(S):])
    for j, (kind, k, m) in enumerate(items):
        if kind == "none":
            final.append(1)
        elif kind == "slice":
            final.append(next(it))
        elif adjacent and j == positions[0]:
            final += S
    return ops.reshape(node, tuple(final))


def _mask_nodes(k, trace, dims_sizes):
    shape = tuple(k.shape)
    if shape != tuple(dims_sizes):
        raise IndexError(f"boolean index of shape {shape} does not match the indexed dims "
                         f"{tuple(dims_sizes)}{where_str()}")
    if isinstance(k, TracedArray):
        return _mask_indices(k, trace)
    return np.flatnonzero(np.asarray(k)).astype(np.int64)


def _linear_index(advs, cur):
    """Broadcast the advanced index arrays together and combine them into one flat index:
    (index, its shape)."""
    shapes = [ops.shape(i) for _, i in advs]
    S = tuple(shapes[0])
    for t in shapes[1:]:
        S = _broadcast_pair(S, tuple(t)) if S is not None else None
    if S is None:
        raise IndexError(f"shape mismatch: indexing arrays could not be broadcast together "
                         f"with shapes {' '.join(map(str, shapes))}{where_str()}")
    lin, stride = None, 1
    fresh = True  # whether an ndarray `lin` is an array of its own (not an operand's)
    for dims, idx in reversed(advs):
        if type(idx) is np.ndarray:  # a constant index: NumPy's arithmetic, not recorded
            # (the operand may be the caller's array, see _index_operand: copied before it
            # becomes a graph constant itself)
            if idx.shape != S:
                idx = np.broadcast_to(idx, S)
            term = idx if stride == 1 else idx * stride
            if lin is None:
                lin, fresh = term, stride != 1
            elif type(lin) is np.ndarray:
                lin, fresh = lin + term, True
            else:
                lin = ops.add(lin, term if stride != 1 else np.array(term))
        else:
            idx = ops.broadcast_to(idx, S) if ops.shape(idx) != S else idx
            term = idx if stride == 1 else ops.mul(idx, stride)
            lin = term if lin is None else ops.add(lin if fresh else np.array(lin), term)
        for d in dims:
            stride *= cur[d]
    if not isinstance(lin, Node):
        lin = np.asarray(lin, dtype=np.int64) if fresh else np.array(lin, dtype=np.int64)
    return lin, S
