"""Views and in-place writes through them, as PyTorch's autograd handles them.

A view (x[0], x.T, x.view(...)) shares its base's storage. When an in-place op writes through
a view while recording, PyTorch rebases: the base becomes `CopySlices(old base, new view
values)` and the views of that base are regenerated from the new base (AsStridedBackward0).
adjit does the same eagerly: a base that requires grad keeps a weak set of its live views, and
the positions a view covers are read off the NumPy memory layout, so any strided view works.
"""
from __future__ import annotations

import weakref

import numpy as np

from ..ir import ops
from ..ir.core import Node
from .grad_fn import tag
from .tape import TapeNode, adopt_storage


def set_base(t, base):
    """Record that `t` is a view of `base` (of its root, when `base` is itself a view)."""
    root = getattr(base, "_view_base", None)
    root = base if root is None else root
    t._view_base = root
    # in-place ops through t may have to rebase root and refresh its views
    if root._n.requires_grad:
        views = getattr(root, "_views", None)
        if views is None:
            # id -> weakref (a WeakSet would compare tensors with ==, which is elementwise)
            views = root._views = {}
        views[id(t)] = weakref.ref(t, lambda _, views=views, key=id(t): views.pop(key, None))
    return t


def _offsets(a):
    """Memory offset, in items from a's first byte, of each element of the array `a`."""
    off = np.zeros(a.shape, np.int64)
    for axis, (n, stride) in enumerate(zip(a.shape, a.strides)):
        shape = [1] * a.ndim
        shape[axis] = n
        off = off + (np.arange(n, dtype=np.int64) * (stride // a.itemsize)).reshape(shape)
    return off


def view_positions(v, base):
    """Flat C-order positions in the array `base` of the elements of its view `v`."""
    start = (v.__array_interface__["data"][0] - base.__array_interface__["data"][0])
    voff = start // base.itemsize + _offsets(v)
    if base.flags.c_contiguous:
        return voff
    boff = _offsets(base).reshape(-1)
    order = np.argsort(boff, kind="stable")
    return order[np.searchsorted(boff[order], voff)]


def copy_slices(base, pos, value):
    """The node `base` with the elements at flat positions `pos` replaced by `value` (a node
    or array of pos's shape): keep the rest with a select, add the value with scatter_add."""
    size = base.type.size
    flatpos = pos.reshape(-1)
    vflat = ops.reshape(value, (pos.size,))
    if len(np.unique(flatpos)) != flatpos.size:
        # a position written twice keeps the last write
        uniq, first = np.unique(flatpos[::-1], return_index=True)
        vflat = ops.gather(vflat, (flatpos.size - 1 - first).astype(np.int64), axis=0)
        flatpos = uniq
    keep = np.ones(size, bool)
    keep[flatpos] = False
    flat = ops.reshape(base, (size,))
    kept = ops.select(keep, flat, ops.zeros((size,), base.type.dtype))
    new = ops.scatter_add(kept, flatpos.astype(np.int64), vflat, axis=0)
    return ops.reshape(new, base.type.shape)


def rebase(t):
    """After a recorded in-place write to `t`: if `t` is a view, its base becomes
    CopySlices(base, t) and every live view of the base is regenerated from it."""
    base = getattr(t, "_view_base", None)
    if base is None or not np.shares_memory(t._n.val, base._n.val):
        return
    old, new_t = base._n, t._n
    pos = view_positions(new_t.val, old.val)
    # PyTorch lists the base's old node and the in-place op's other inputs
    fn = new_t.grad_fn if type(new_t) is TapeNode else None
    others = list(fn._inputs[1:]) if fn is not None else [new_t]
    node = tag(copy_slices(old, pos, new_t), "CopySlices", [old] + others)
    adopt_storage(node, old)
    base._n = node
    live = [r() for r in list(getattr(base, "_views", {}).values())]
    for v in live:
        if v is not None:
            _regenerate(v, node)
    if id(t) not in getattr(base, "_views", {}):
        _regenerate(t, node)


def _regenerate(v, base_node):
    n = v._n
    if not isinstance(n, Node) or not np.shares_memory(n.val, base_node.val):
        return
    pos = view_positions(n.val, base_node.val)
    flat = ops.reshape(base_node, (base_node.type.size,))
    out = ops.reshape(ops.gather(flat, pos.reshape(-1).astype(np.int64), axis=0), n.type.shape)
    out = tag(out, "AsStridedBackward0", [base_node])
    # still the view of the storage
    adopt_storage(out, n)
    v._n = out
