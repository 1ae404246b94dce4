"""vmap, and the Jacobians built on it: jacrev / jacfwd / hessian.

vmap traces the function once on one example (the first slice of each mapped argument), then
rewrites that graph with every primitive's batching rule (`adjit.ir.batching.batch_graph`) and
runs the batched graph on the whole batch. Python control flow that depends on the values is
recorded as guards; a batched guard checks every example, and examples that would take another
path raise a clear error (use np.where). jacrev/jacfwd batch the vjp/jvp graph over the
standard basis: one graph, not a loop over rows.
"""
from __future__ import annotations

import functools

import numpy as np

from ..ir import ops
from ..ir.autodiff import jvp_graph, vjp_graph
from ..ir.batching import batch_graph
from ..ir.core import GuardFailed, Node, const_node
from ..ir.graph import extract
from ..ir.types import FLOATS
from ..tracer import pytree
from ..tracer.ndarray import TracedArray
from ..tracer.trace_args import (_at, _live, _regroup, fname, leaf_info, out_nodes, tensor_cls,
                                to_user, trace_call)
from .autodiff import (_argnums, _diff_select, _split_aux, consts_for, derived, realize,
                         run_graph)


def _moveaxis(x, src, dst):
    nd = len(ops.shape(x))
    if src == dst:
        return x
    order = [i for i in range(nd) if i != src]
    order.insert(dst, src)
    return ops.transpose(x, tuple(order))


def _example(info, axis, size):
    val = info.outer.val if isinstance(info.outer, Node) else np.asarray(info.outer)
    if size:
        ex = np.take(val, 0, axis=axis)
    else:
        ex = np.zeros(val.shape[:axis] + val.shape[axis + 1:], val.dtype)
    if info.kind == "tensor":
        return tensor_cls()._wrap(const_node(ex))
    return np.asarray(ex)


def vmap(f, in_axes=0, out_axes=0, *, in_dims=None, out_dims=None):
    """Map f over an axis of its arguments (in_axes: int, None, or a pytree prefix of the
    arguments), stacking results along out_axes. Keyword arguments are not mapped. in_dims /
    out_dims are accepted as torch.vmap spells them."""
    in_axes = in_axes if in_dims is None else in_dims
    out_axes = out_axes if out_dims is None else out_dims

    @functools.wraps(f)
    def vf(*args, **kwargs):
        ia = tuple(in_axes) if isinstance(in_axes, list) else in_axes
        if isinstance(ia, tuple) and len(ia) != len(args):
            raise ValueError(f"vmap: in_axes has {len(ia)} entries but {fname(f)} was called "
                             f"with {len(args)} positional arguments{_at()}")
        axes = pytree.broadcast_prefix(ia, tuple(args), "vmap in_axes")
        leaves, atd = pytree.flatten(tuple(args))
        sizes, subst, batched = [], list(leaves), []
        for k, (lf, ax) in enumerate(zip(leaves, axes)):
            if ax is None:
                continue
            info = leaf_info(lf)
            if info is None or not info.type.shape:
                raise ValueError(f"vmap: in_axes={ax} for a value of shape "
                                 f"{getattr(info, 'type', None) and info.type.shape or ()} "
                                 f"({type(lf).__name__}){_at()}")
            nd = len(info.type.shape)
            if not -nd <= ax < nd:
                raise ValueError(f"vmap: in_axes={ax} out of range for shape {info.type.shape}")
            ax %= nd
            sizes.append((k, info.type.shape, ax, info.type.shape[ax]))
            batched.append((k, info, ax))
        if not sizes:
            raise ValueError(f"vmap needs at least one mapped argument (in_axes={in_axes!r})")
        if len({s[3] for s in sizes}) > 1:
            desc = "; ".join(f"leaf {k} of shape {shp} has size {n} along axis {ax}"
                             for k, shp, ax, n in sizes)
            raise ValueError(f"vmap got inconsistent sizes for the mapped axes: {desc}{_at()}")
        size = sizes[0][3]
        for k, info, ax in batched:
            subst[k] = _example(info, ax, size)
        ids = {id(subst[k]) for k, _, _ in batched}
        ex_args = pytree.unflatten(atd, subst)
        t = trace_call(f, ex_args, kwargs, lambda i, info: id(info.orig) in ids, "vmap")
        nodes, kinds, otd = out_nodes(t.out, f"vmap: {fname(f)}")
        oaxes = pytree.broadcast_prefix(out_axes, t.out, "vmap out_axes")
        g = extract(nodes, t.trace, inputs=t.inputs, name=getattr(f, "__name__", "f"))
        force = tuple(a is not None for a in oaxes)
        nin = len(t.inputs)
        bg, odims = derived("batch", g, lambda: batch_graph(g, [0] * nin, size, force),
                            nin, size, force)
        for k, (a, d) in enumerate(zip(oaxes, odims)):
            if a is None and d is not None:
                raise ValueError(f"vmap: output {k} varies along the mapped axis but its "
                                 f"out_axes is None{_at()}")
        moved = [_moveaxis(info.outer, ax, 0) for _, info, ax in batched]
        try:
            res = run_graph(bg, moved, consts_for(bg, g))
        except GuardFailed:
            raise ValueError(
                f"vmap: the examples take different paths through Python control flow in "
                f"{fname(f)} (an if/while/float() on a mapped value){_at()}; write the "
                "branches with np.where so every example runs the same code") from None
        outs = []
        for x, a, kind in zip(res, oaxes, kinds):
            if a is not None:
                nd = len(ops.shape(x))
                x = _moveaxis(x, 0, a % nd)
            outs.append(to_user(x, kind))
        return pytree.unflatten(otd, outs)
    return vf


# --- Jacobians -------------------------------------------------------------------------------
def _jac_user(x, leaf, shape):
    if isinstance(x, Node):
        if _live(x):
            return tensor_cls()._wrap(x) if leaf.kind == "tensor" else TracedArray(x)
        x = x.val
    a = np.asarray(x).reshape(shape)
    if leaf.kind == "tensor":
        return tensor_cls()._wrap(const_node(a))
    if leaf.kind == "py" and shape == ():
        return type(leaf.orig)(a)
    return a


def _rows(x, off, n):
    s = ops.shape(x)
    if off == 0 and n == s[0]:
        return x
    return ops.slice(x, start=(off,) + (0,) * (len(s) - 1), limit=(off + n,) + tuple(s[1:]),
                     strides=(1,) * len(s))


def _setup(f, args, kwargs, argnums, has_aux, what):
    nums, single = _argnums(argnums, len(args), f)
    t = trace_call(f, args, kwargs, _diff_select(nums, what), "jacobian")
    out, aux = _split_aux(t.out, has_aux, f)
    nodes, kinds, otd = out_nodes(out, f"{what}: {fname(f)}")
    for n in nodes:
        if n.type.dtype not in FLOATS:
            raise TypeError(f"{what} needs float outputs, {fname(f)} returned "
                            f"{n.type.np_dtype}{_at()}")
    g = extract(nodes, t.trace, inputs=t.inputs, name=getattr(f, "__name__", "f"))
    return t, nums, single, nodes, otd, aux, g


def _basis(types):
    """The standard basis of the space of values of `types`, split per value: (n, [array of
    shape (n,) + type.shape]). A basis of one element (a scalar's: jacrev of a scalar function)
    is a `full` of ones, a bigger one made of identity matrices (`ops.eye`), recorded when a
    trace is active (bind records a constant-maker into the innermost trace), so that what is
    computed from them stays visible to the passes (`x * 1` and `x @ eye` simplify away)
    instead of becoming an opaque constant bound by reference."""
    n = sum(tp.size for tp in types)
    if n == 1:
        return n, [ops.full((1,) + tp.shape, 1.0 if tp.dtype in FLOATS else 1, tp.dtype)
                   if tp.size else np.zeros((1,) + tp.shape, tp.np_dtype) for tp in types]
    out, off = [], 0
    for tp in types:
        e = ops.eye(n, tp.dtype)  # recorded in a trace: `x @ eye` simplifies (ir/passes.py)
        if tp.size != n:
            e = ops.slice(e, start=(0, off), limit=(n, off + tp.size), strides=(1, 1))
        out.append(ops.reshape(e, (n,) + tp.shape))
        off += tp.size
    return n, out


def jacrev(f, argnums=0, has_aux=False):
    """The Jacobian by reverse mode: vjp over the basis of the output space (batched)."""
    @functools.wraps(f)
    def jf(*args, **kwargs):
        t, nums, single, nodes, otd, aux, g = _setup(f, args, kwargs, argnums, has_aux,
                                                     "jacrev")
        nin, nout = len(t.inputs), len(nodes)
        if nout == 1 and nodes[0].type.size == 1:
            # a one-element output (a scalar function's: hessian's jacfwd(jacrev(f))): one vjp
            # seeded with 1, no batch of one (whose unit axis every equation of an enclosing
            # jacfwd would carry and reshape away)
            tp = nodes[0].type
            bd = derived("vjp", g, lambda: vjp_graph(g))
            res = run_graph(bd, [lf.outer for lf in t.leaves] + [ops.full(tp.shape, 1.0, tp.dtype)],
                            consts_for(bd, g))
            vals = [_jac_user(ops.reshape(gj, tp.shape + lf.type.shape), lf,
                              tp.shape + lf.type.shape) for gj, lf in zip(res[1:], t.leaves)]
            jac = pytree.unflatten(otd, [_regroup(t, nums, vals, single)])
            return (jac, realize(t, aux)) if has_aux else jac
        n, cts = _basis([x.type for x in nodes])
        bd = derived("jacrev", g, lambda: batch_graph(
            vjp_graph(g), [None] * nin + [0] * nout, n, [False] * nout + [True] * nin)[0],
            nin, n)
        res = run_graph(bd, [lf.outer for lf in t.leaves] + cts, consts_for(bd, g))
        grads = res[nout:]
        per_out, off = [], 0
        for node in nodes:
            sz = node.type.size
            vals = [_jac_user(ops.reshape(_rows(gj, off, sz), node.type.shape + lf.type.shape),
                              lf, node.type.shape + lf.type.shape)
                    for gj, lf in zip(grads, t.leaves)]
            per_out.append(_regroup(t, nums, vals, single))
            off += sz
        jac = pytree.unflatten(otd, per_out)
        return (jac, realize(t, aux)) if has_aux else jac
    return jf


def jacfwd(f, argnums=0, has_aux=False):
    """The Jacobian by forward mode: jvp over the basis of the input space (batched)."""
    @functools.wraps(f)
    def jf(*args, **kwargs):
        t, nums, single, nodes, otd, aux, g = _setup(f, args, kwargs, argnums, has_aux,
                                                     "jacfwd")
        nin, nout = len(t.inputs), len(nodes)
        if nin == 1 and t.leaves[0].type.size == 1:
            # a one-element input (a scalar's): one jvp with tangent 1, no batch of one (as
            # jacrev of a one-element output)
            tp = t.leaves[0].type
            d = derived("jvp", g, lambda: jvp_graph(g))
            one = ops.full(tp.shape, 1.0 if tp.dtype in FLOATS else 1, tp.dtype)
            res = run_graph(d, [t.leaves[0].outer, one],
                            consts_for(d, g))
            per_out = [_regroup(t, nums, [_jac_user(ops.reshape(tk, node.type.shape + tp.shape),
                                                    t.leaves[0], node.type.shape + tp.shape)],
                                single) for node, tk in zip(nodes, res[nout:])]
            jac = pytree.unflatten(otd, per_out)
            return (jac, realize(t, aux)) if has_aux else jac
        n, tans = _basis([lf.type for lf in t.leaves])
        bd = derived("jacfwd", g, lambda: batch_graph(
            jvp_graph(g), [None] * nin + [0] * nin, n, [False] * nout + [True] * nout)[0],
            nin, n)
        res = run_graph(bd, [lf.outer for lf in t.leaves] + tans, consts_for(bd, g))
        touts = res[nout:]
        per_out = []
        for node, tk in zip(nodes, touts):
            vals, off = [], 0
            for lf in t.leaves:
                sz = lf.type.size
                shp = node.type.shape + lf.type.shape
                r = _rows(tk, off, sz)  # (sz, *out)
                r = _moveaxis(r, 0, len(node.type.shape))
                vals.append(_jac_user(ops.reshape(r, shp), lf, shp))
                off += sz
            per_out.append(_regroup(t, nums, vals, single))
        jac = pytree.unflatten(otd, per_out)
        return (jac, realize(t, aux)) if has_aux else jac
    return jf


def hessian(f, argnums=0):
    """jacfwd(jacrev(f)): forward-over-reverse, each level one batched graph (a level whose
    basis has one element, a scalar function's or a scalar argument's, one unbatched vjp or
    jvp)."""
    return jacfwd(jacrev(f, argnums), argnums)
