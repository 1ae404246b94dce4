"""Batching rules (vmap) for every primitive, and `batch_graph`, the graph transform.

A rule is `rule(args, dims, **params) -> (out, out_dim)`: `args` are the operands (Nodes,
arrays or Python scalars), `dims[i]` is 0 when operand i carries the batch as its leading axis
and None when it is the same for every example; `out_dim` is 0 or None likewise. Rules are
written with `ops`, so a batched graph is ordinary IR. Importing this module fills
`REGISTRY[name].batch` for every primitive: generated from its declared `kind` (elementwise,
reduction over `axes`, one `axis`), hand-written below for the structural ones. A primitive with
several results returns a tuple and one out dim (or a tuple of them).
"""
from __future__ import annotations

import numpy as np

from . import ops
from .core import Lit, Node, REGISTRY, bind, new_trace, on_register, recording_only
from .graph import Graph, bind_outputs, extract
from .types import AType


def _size(args, dims):
    for a, d in zip(args, dims):
        if d is not None:
            return ops.shape(a)[0]
    raise AssertionError("batching rule called without a batched operand")


def _is_scalar(a):
    return isinstance(a, (bool, int, float))


def bcast(a, size):
    """An unbatched operand repeated along a new leading batch axis."""
    s = ops.shape(a)
    return ops.broadcast_in_dim(a, shape=(size,) + tuple(s), dims=tuple(range(1, len(s) + 1)))


def _all_batched(args, dims):
    n = _size(args, dims)
    return [a if d is not None or _is_scalar(a) else bcast(a, n) for a, d in zip(args, dims)]


def _move0(x, pos):
    """Move axis `pos` of x to the front."""
    nd = len(ops.shape(x))
    return ops.transpose(x, (pos,) + tuple(i for i in range(nd) if i != pos))


def _elementwise(name):
    p = REGISTRY[name]

    def rule(args, bd, **params):
        return bind(p, *_all_batched(args, bd), **params), 0
    return rule


def _shift(t):
    return tuple(a + 1 for a in t)


# Structural rules name the batch dims `bd`: some primitives have a parameter called `dims`.
def _bid_rule(args, bd, **params):
    (x,) = args
    n = ops.shape(x)[0]
    return ops.broadcast_in_dim(x, shape=(n,) + tuple(params["shape"]),
                                dims=(0,) + _shift(params["dims"])), 0


def _reshape_rule(args, bd, *, shape):
    (x,) = args
    return ops.reshape(x, (ops.shape(x)[0],) + tuple(shape)), 0


def _transpose_rule(args, bd, *, perm):
    return ops.transpose(args[0], (0,) + _shift(perm)), 0


def _reduce_rule(name):
    def rule(args, bd, *, axes):
        return bind(REGISTRY[name], args[0], axes=_shift(axes)), 0
    return rule


def _axis_rule(name):
    def rule(args, bd, *, axis, **params):
        return bind(REGISTRY[name], args[0], axis=axis + 1, **params), 0
    return rule


def _slice_rule(args, bd, *, start, limit, strides):
    x = args[0]
    return ops.slice(x, start=(0,) + tuple(start), limit=(ops.shape(x)[0],) + tuple(limit),
                     strides=(1,) + tuple(strides)), 0


def _pad_rule(args, bd, *, low, high, interior):
    return ops.pad(args[0], low=(0,) + tuple(low), high=(0,) + tuple(high),
                   interior=(0,) + tuple(interior)), 0


def _concat_rule(args, bd, *, axis):
    return ops.concatenate(*_all_batched(args, bd), axis=axis + 1), 0


def _wrapped(idx, d, size):
    """gather's indices are in [-d, d), a negative one counting from the end of its own row:
    offset into a merged axis of `size`, they must be non-negative, and one outside that range
    (a front's poison, see indexing.wrap_traced_index) must stay outside the merged axis, not
    land in another row. One index_wrap: a front's own for this axis (whose poison had only to
    be outside [-d, d)) is replaced, not wrapped again."""
    r = getattr(idx, "rec", None)
    if r is not None and r.prim.name == "index_wrap" and type(r.inputs[0]) is type(idx) and \
            r.inputs[1].value == d and not -d <= r.inputs[2].value < d:
        idx = r.inputs[0]
    return ops.index_wrap(ops.convert(idx, "i64"), d, size)


def _flat_index(x, idx, axis):
    """For a batched x (B, ...) and batched idx (B, ...): x with the batch and `axis` merged
    into one leading axis, and idx offset into it. Returns (x2, idx2, rest_perm info)."""
    xs = ops.shape(x)
    n, d = xs[0], xs[axis + 1]
    order = (0, axis + 1) + tuple(i for i in range(1, len(xs)) if i != axis + 1)
    xt = ops.transpose(x, order)
    x2 = ops.reshape(xt, (n * d,) + tuple(xs[i] for i in order[2:]))
    off = np.arange(n, dtype=np.int64) * d
    ish = ops.shape(idx)
    idx = _wrapped(idx, d, n * d)
    offb = ops.broadcast_in_dim(off, shape=ish, dims=(0,))
    return x2, ops.add(idx, offb), order


def _gather_rule(args, bd, *, axis):
    x, idx = args
    dx, di = bd
    if di is None:
        return ops.gather(x, idx, axis=axis + 1), 0
    if dx is None:
        return _move0(ops.gather(x, idx, axis=axis), axis), 0
    x2, idx2, _ = _flat_index(x, idx, axis)
    out = ops.gather(x2, idx2, axis=0)  # (B, *is, *xs[:axis], *xs[axis+1:])
    ni = len(ops.shape(idx)) - 1
    nx = len(ops.shape(x)) - 1
    lead = tuple(range(1 + ni, 1 + ni + axis))
    mid = tuple(range(1, 1 + ni))
    tail = tuple(range(1 + ni + axis, ni + nx))
    return ops.transpose(out, (0,) + lead + mid + tail), 0


def _scatter_rule(args, bd, *, axis):
    x, idx, upd = args
    dx, di, du = bd
    n = _size(args, bd)
    x = x if dx is not None else bcast(x, n)
    upd = upd if du is not None else bcast(upd, n)
    if di is None:
        return ops.scatter_add(x, idx, upd, axis=axis + 1), 0
    xs = ops.shape(x)
    x2, idx2, order = _flat_index(x, idx, axis)
    ni = len(ops.shape(idx)) - 1
    nu = len(ops.shape(upd))
    # upd (B, *xs[:axis], *is, *xs[axis+1:]) -> (B, *is, *xs[:axis], *xs[axis+1:])
    perm = (0,) + tuple(range(1 + axis, 1 + axis + ni)) + tuple(range(1, 1 + axis)) + \
        tuple(range(1 + axis + ni, nu))
    out = ops.scatter_add(x2, idx2, ops.transpose(upd, perm), axis=0)
    out = ops.reshape(out, tuple(xs[i] for i in order))
    return ops.transpose(out, tuple(int(i) for i in np.argsort(order))), 0


def _dot_rule(args, bd, *, contract, batch):
    x, y = args
    dx, dy = bd
    (lc, rc), (lb, rb) = contract, batch
    if dx is not None and dy is not None:
        return ops.dot_general(x, y, contract=(_shift(lc), _shift(rc)),
                               batch=((0,) + _shift(lb), (0,) + _shift(rb))), 0
    if dx is not None:
        out = ops.dot_general(x, y, contract=(_shift(lc), rc), batch=(_shift(lb), rb))
        return _move0(out, len(lb)), 0
    out = ops.dot_general(x, y, contract=(lc, _shift(rc)), batch=(lb, _shift(rb)))
    nxf = len(ops.shape(x)) - len(lc) - len(lb)
    return _move0(out, len(lb) + nxf), 0


def _full_rule(args, bd, **params):
    return bind(REGISTRY["full"], **params), None


def _guard_rule(args, bd, *, expect=True):
    (c,) = args
    bad = ops.convert(ops.ne(c, bool(expect)), "i64")
    bind(REGISTRY["guard"], ops.eq(ops.reduce_sum(bad, (0,)), 0), expect=True)
    return None, None


# the hand-written rules: primitives of kind "structural" (and the guard)
_STRUCTURAL = {
    "broadcast_in_dim": _bid_rule, "reshape": _reshape_rule, "transpose": _transpose_rule,
    "slice": _slice_rule, "pad": _pad_rule, "concatenate": _concat_rule,
    "gather": _gather_rule, "scatter_add": _scatter_rule, "dot_general": _dot_rule,
    "full": _full_rule, "guard": _guard_rule,
}
# the rules generated from a primitive's declared kind
_BY_KIND = {"unary": _elementwise, "binary": _elementwise, "elementwise": _elementwise,
            "reduction": _reduce_rule, "axis": _axis_rule}


def _add(p):
    if p.batch is not None:
        return
    if p.name in _STRUCTURAL:
        p.batch = _STRUCTURAL[p.name]
    elif p.kind in _BY_KIND:
        p.batch = _BY_KIND[p.kind](p.name)
        p.batch.generated = True


def _remove(p):
    if getattr(p.batch, "generated", False):
        p.batch = None


def install():
    """Fill `batch` for every registered primitive (now and when one is registered later)."""
    on_register(_add, _remove)


# --- the graph transform ---------------------------------------------------------------------
def batched_type(t, size):
    return AType((size,) + tuple(t.shape), t.dtype)


def batch_graph(g: Graph, in_dims, size, force=None, name=None):
    """(graph over batched inputs, natural out dims). `in_dims[i]` is 0 or None; outputs whose
    `force` flag is set (default: all) are made batched at axis 0 even if they do not vary.
    g's constvars stay first, in order, among the result's constvars."""
    force = [True] * len(g.outvars) if force is None else list(force)
    with new_trace("batch") as tr, recording_only():
        ins = [Node(None, batched_type(v.type, size) if d is not None else v.type, None, tr)
               for v, d in zip(g.invars, in_dims)]
        cs = [Node(None, v.type, None, tr) for v in g.constvars]
        env = dict(zip(g.invars, ins))
        env.update(zip(g.constvars, cs))
        bdim = {v: d for v, d in zip(g.invars, in_dims)}
        for e in g.eqns:
            args = [x.value if type(x) is Lit else env[x] for x in e.inputs]
            ds = [None if type(x) is Lit else bdim.get(x) for x in e.inputs]
            if all(d is None for d in ds):
                out, od = bind(e.prim, *args, **e.params), None
            else:
                if e.prim.batch is None:
                    raise NotImplementedError(f"vmap: primitive {e.prim.name} has no "
                                              "batching rule")
                out, od = e.prim.batch(args, ds, **e.params)
            bind_outputs(env, e, out)
            if len(e.outvars) == 1:
                bdim[e.outvars[0]] = od
            else:  # several results: one batch dim each (or one for all)
                for k, v in enumerate(e.outvars):
                    bdim[v] = od[k] if isinstance(od, (tuple, list)) else od
        outs, odims = [], []
        for v, f in zip(g.outvars, force):
            x = ops.full(v.type.shape, v.value, v.type.dtype) if type(v) is Lit else env[v]
            d = None if type(v) is Lit else bdim.get(v)
            odims.append(d)
            if d is None and f:
                x = bcast(x, size)
            if not isinstance(x, Node):
                from .core import const_node
                x = const_node(x)
            outs.append(x)
        res = extract(outs, tr, inputs=ins, const_inputs=cs, name=name or f"{g.name}_batched")
    res.consts = list(g.consts) + res.consts[len(g.consts):]
    return res, odims


install()
