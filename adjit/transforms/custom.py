"""adjit.custom_vjp and adjit.custom_jvp: user-defined derivative rules, recorded as IR.

    @adjit.custom_vjp
    def clip_gradient(x): return x
    def fwd(x): return x, None
    def bwd(res, g): return (np.clip(g, -1.0, 1.0),)
    clip_gradient.defvjp(fwd, bwd)

    @adjit.custom_jvp
    def log1pexp(x): return np.log1p(np.exp(x))
    @log1pexp.defjvp
    def log1pexp_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return log1pexp(x), t * (1 - 1 / (1 + np.exp(x)))

Called on plain values, the function just runs. Called on traced values, the function, fwd/bwd
(or the jvp rule) are traced once into graphs held by a `custom_vjp_call` / `custom_jvp_call`
equation (adjit/ir/prims/custom.py); derivative graphs then contain the user's rule as
ordinary primitives. The function must return one array. `nondiff_argnums` name static
arguments (passed first to bwd / to the jvp rule's closure, as in JAX). Values the functions
capture from an enclosing transform become operands that receive no cotangent.

As in JAX, forward mode (jvp, jacfwd) of a custom_vjp function raises a TypeError (its rule is
reverse-mode only), and under reverse mode its value is fwd's output, so higher derivatives
(hessian = jacfwd(jacrev)) differentiate fwd and bwd. The rules may use any NumPy code the
function may, constant arrays included.
"""
from __future__ import annotations

import functools

import numpy as np

from ..ir.core import EAGER, Node, const_node
from ..tracer.tape import TapeNode
from ..ir.graph import extract
from ..ir.prims.custom import bind_jvp, bind_vjp, close
from ..tracer import pytree
from ..tracer.trace_args import _at, _live, fname, leaf_info, out_nodes, to_user, trace_call


def _is_live_arg(x):
    n = getattr(x, "_n", None)
    return isinstance(n, Node) and _live(n)


class _Custom:
    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff = tuple(nondiff_argnums)
        # > 0 while tracing our own rule: a call from inside it runs fun plainly (a list, shared
        # with the copies jit makes to trace the rules on its live closure arrays: live.py)
        self._busy = [0]

    @property
    def busy(self):
        return self._busy[0]

    @busy.setter
    def busy(self, v):
        self._busy[0] = v

    def _rule_trace(self, *a):
        self.busy += 1
        try:
            return trace_call(*a)
        finally:
            self.busy -= 1

    def _live(self, args):
        return not self.busy and any(_is_live_arg(lf) for i, a in enumerate(args)
                                     if i not in self.nondiff for lf in pytree.leaves(a))

    def _trace(self, fn, args, what):
        """(closed graph, its operands, output kinds) of fn over the array leaves of args."""
        t = trace_call(fn, args, {}, lambda i, info: i not in self.nondiff, "custom")
        nodes, kinds, td = out_nodes(t.out, f"{what}: {fname(fn)}")
        g = extract(nodes, t.trace, inputs=t.inputs, name=getattr(fn, "__name__", "f"))
        return close(g), _operands(g), [lf.outer for lf in t.leaves], t, nodes, kinds, td

    def _single(self, nodes, kinds, what):
        if len(nodes) != 1:
            raise TypeError(f"{what}: {fname(self.fun)} must return a single array "
                            f"(got {len(nodes)} outputs){_at()}")
        return kinds[0]


def _operands(g):
    """g's constants as operands of the custom_*_call equation, in an enclosing trace. A
    constant array the rule read (`g * np.ones(3)`) is a leaf of the rule's own trace, which
    has ended: it is handed over as its array. Values of enclosing traces stay as they are."""
    return [c.val if isinstance(c, Node) and c.rec is None and not c.requires_grad
            and not c.trace.active else c for c in g.consts]


def _concrete(x):
    return x.val if isinstance(x, Node) else np.asarray(x)


def _user_like(node, kind):
    v = np.asarray(_concrete(node))
    return to_user(const_node(v), kind) if kind == "tensor" else v


class custom_vjp(_Custom):
    """A function with a user-defined reverse-mode rule (see the module doc)."""

    def __init__(self, fun, nondiff_argnums=()):
        super().__init__(fun, nondiff_argnums)
        self.fwd = self.bwd = None

    def defvjp(self, fwd, bwd):
        self.fwd, self.bwd = fwd, bwd
        return self

    def __call__(self, *args):
        if self.fwd is None:
            raise TypeError(f"custom_vjp {fname(self.fun)}: call .defvjp(fwd, bwd) first")
        if not self._live(args):
            return self.fun(*args)
        F, fcs, ops, t, nodes, kinds, _ = self._trace(self.fun, args, "custom_vjp")
        kind = self._single(nodes, kinds, "custom_vjp")
        self.busy += 1
        try:
            W, wcs, _, _, wnodes, wkinds, wtd = self._trace(self.fwd, args, "custom_vjp fwd")
        finally:
            self.busy -= 1
        if wtd.kind not in ("tuple", "list") or len(wtd.children) != 2:
            raise TypeError(f"custom_vjp: fwd {fname(self.fwd)} must return (output, "
                            f"residuals){_at()}")
        nout = wtd.children[0].num_leaves
        if nout != 1:
            raise TypeError(f"custom_vjp: fwd must return one output array{_at()}")
        if wnodes[0].type != nodes[0].type:
            raise TypeError(f"custom_vjp: fwd {fname(self.fwd)} returned an output of type "
                            f"{wnodes[0].type}, {fname(self.fun)} one of type "
                            f"{nodes[0].type}{_at()}")
        res_td = wtd.children[1]
        res_vals = [_user_like(n, k) for n, k in zip(wnodes[1:], wkinds[1:])]
        res = pytree.unflatten(res_td, res_vals)
        tr = nodes[0].trace
        ct = _user_like((TapeNode if tr is EAGER else Node)(
            np.ones(nodes[0].type.shape, nodes[0].type.np_dtype), nodes[0].type, None, tr), kind)
        static = [args[i] for i in self.nondiff]
        diff_pos = [i for i in range(len(args)) if i not in self.nondiff]
        bwd = self.bwd

        def bwd_flat(r, c):
            return bwd(*static, r, c)

        tb = self._rule_trace(bwd_flat, (res, ct), {}, lambda i, info: True, "custom")
        cts = tb.out
        if not isinstance(cts, (tuple, list)) or len(cts) != len(diff_pos):
            raise TypeError(f"custom_vjp: bwd {fname(bwd)} must return a tuple with one "
                            f"cotangent per differentiable argument ({len(diff_pos)}){_at()}")
        flat = []
        for i, c in zip(diff_pos, cts):
            arg_leaves, atd = pytree.flatten(args[i])
            if c is None:
                c = pytree.unflatten(atd, [None] * len(arg_leaves))
            cl, ctd = pytree.flatten(c, is_leaf=lambda v: v is None)
            if len(cl) != len(arg_leaves):
                raise TypeError(f"custom_vjp: bwd's cotangent {i} has structure {ctd}, the "
                                f"argument {atd}{_at()}")
            for v, a in zip(cl, arg_leaves):
                info = leaf_info(a)
                if info is None:
                    continue
                if v is None:
                    v = np.zeros(info.type.shape, info.type.np_dtype)
                flat.append(v)
        cnodes, _, _ = out_nodes(tuple(flat), f"custom_vjp bwd: {fname(bwd)}")
        for cn, op in zip(cnodes, t.leaves):
            if cn.type.shape != op.type.shape:
                raise ValueError(f"custom_vjp: bwd returned a cotangent of shape "
                                 f"{cn.type.shape} for an argument of shape {op.type.shape}"
                                 f"{_at()}")
        gb = extract(cnodes, tb.trace, inputs=tb.inputs, name=getattr(bwd, "__name__", "bwd"))
        bconsts = _operands(gb)
        out = bind_vjp(fcs + wcs + bconsts + ops, F, W, close(gb),
                       (len(fcs), len(wcs), len(bconsts)), getattr(self.fun, "__name__", "f"))
        return to_user(out, kind)


class custom_jvp(_Custom):
    """A function with a user-defined forward-mode rule (see the module doc); reverse mode
    uses the same rule (it is linear in the tangents)."""

    def __init__(self, fun, nondiff_argnums=()):
        super().__init__(fun, nondiff_argnums)
        self.jvp = None

    def defjvp(self, jvp):
        self.jvp = jvp
        return jvp

    def __call__(self, *args):
        if self.jvp is None:
            raise TypeError(f"custom_jvp {fname(self.fun)}: define the rule with @f.defjvp")
        if not self._live(args):
            return self.fun(*args)
        F, fcs, ops, t, nodes, kinds, _ = self._trace(self.fun, args, "custom_jvp")
        kind = self._single(nodes, kinds, "custom_jvp")
        static = [args[i] for i in self.nondiff]
        diff = tuple(a for i, a in enumerate(args) if i not in self.nondiff)
        tans = pytree.tree_map(_ones_like, diff)
        rule = self.jvp

        def jvp_flat(p, tn):
            return rule(*static, p, tn) if static else rule(p, tn)

        tj = self._rule_trace(jvp_flat, (diff, tans), {}, lambda i, info: True, "custom")
        r = tj.out
        if not isinstance(r, (tuple, list)) or len(r) != 2:
            raise TypeError(f"custom_jvp: the rule {fname(rule)} must return (output, "
                            f"tangent){_at()}")
        jn, _, _ = out_nodes(tuple(r), f"custom_jvp rule: {fname(rule)}")
        if len(jn) != 2 or jn[1].type.shape != nodes[0].type.shape:
            raise ValueError(f"custom_jvp: the rule's tangent has shape "
                             f"{jn[-1].type.shape}, the output {nodes[0].type.shape}{_at()}")
        gj = extract(jn, tj.trace, inputs=tj.inputs, name=getattr(rule, "__name__", "jvp"))
        J = close(gj)
        out = bind_jvp(fcs + _operands(gj) + ops, F, J, (len(fcs), len(gj.consts)),
                       getattr(self.fun, "__name__", "f"))
        return to_user(out, kind)


def _ones_like(x):
    info = leaf_info(x)
    if info is None:
        return x
    v = np.ones(info.type.shape, info.type.np_dtype)
    if info.kind == "tensor":
        return to_user(const_node(v), "tensor")
    return v
