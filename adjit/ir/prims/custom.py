"""Custom derivative rules as IR: `custom_vjp_call` and `custom_jvp_call`.

The user's functions are traced into closed graphs (no constvars: every captured value is an
explicit operand) held in the equation's params as `GraphParam`s:

    custom_vjp_call[fun, fwd, bwd, nconsts=(a, b, c)] *fun_consts *fwd_consts *bwd_consts *args
        value: fun(fun_consts, args); vjp: res = fwd(fwd_consts, args)[1:],
        cts = bwd(bwd_consts, res, ct) (captured values get no cotangent); under vjp_graph the
        value is fwd's output (residual_vjp), so a second derivative differentiates fwd and
        bwd, as in JAX; jvp: a TypeError, as in JAX (a reverse-mode rule says nothing about
        forward mode; differentiating `fun` instead would silently ignore the rule).
    custom_jvp_call[fun, jvp, nconsts=(a, b)] *fun_consts *jvp_consts *args
        value: fun; jvp: jvp(jvp_consts, args, tangents)[1]; vjp: the jvp rule is linear in the
        tangents, so its cotangent is the vjp of that graph w.r.t. the tangents (at zero).

The rules evaluate these graphs through `bind`, so the custom rule is recorded as ordinary
primitives in derivative graphs and can be differentiated again. A lowering can inline `fun`.
"""
from __future__ import annotations

import hashlib

from .. import ops as o
from ..core import Node, Primitive, new_trace, register
from ..graph import Graph, eval_graph, extract
from ..types import AType
from ..types import FLOATS
from ._helpers import sample_array


class GraphParam:
    """A graph as a primitive parameter. It prints as its text (a string literal, so an
    equation holding it prints and parses back); it compares and hashes by that text and the
    values of the few constants a batching rule may have put in it. Rules also accept the text
    itself (what the parser produces): see `graph_param`."""
    __slots__ = ("graph", "text", "key", "cache")

    def __init__(self, g: Graph, text=None):
        import numpy as np
        from ..printer import print_graph
        self.text = text if text is not None else print_graph(g)
        parts = []
        for c in g.consts:
            if isinstance(c, Node) and (c.rec is not None or c.requires_grad):
                raise ValueError("GraphParam: a graph parameter cannot capture traced values")
            arr = np.ascontiguousarray(c.val if isinstance(c, Node) else c)
            parts.append(f"{arr.dtype}{arr.shape}{hashlib.sha1(arr.tobytes()).hexdigest()}")
        if parts and text is None:
            self.text += f"# consts {hashlib.sha1('|'.join(parts).encode()).hexdigest()[:16]}\n"
        self.graph = g
        self.key = self.text
        self.cache = {}

    def __repr__(self):
        return repr(self.text)

    def __eq__(self, other):
        if isinstance(other, str):
            return self.text == other
        return isinstance(other, GraphParam) and self.key == other.key

    def __hash__(self):
        return hash(self.key)

    def derived(self, kind, build):
        d = self.cache.get(kind)
        if d is None:
            d = self.cache[kind] = build(self.graph)
        return d


_FROM_TEXT: dict = {}


def graph_param(p) -> GraphParam:
    """A GraphParam, or one read from its printed text (a parsed custom_*_call equation)."""
    if isinstance(p, GraphParam):
        return p
    if isinstance(p, str):
        gp = _FROM_TEXT.get(p)
        if gp is None:
            from ..parser import parse_graph
            gp = _FROM_TEXT[p] = GraphParam(parse_graph(p), text=p)
        return gp
    raise TypeError(f"expected a graph parameter, got {type(p).__name__}")


def _graphs(fn):
    """Let a rule take its graph params as GraphParams or as their text."""
    import functools

    @functools.wraps(fn)
    def rule(*args, **params):
        for k in ("fun", "fwd", "bwd", "jvp"):
            if k in params:
                params[k] = graph_param(params[k])
        return fn(*args, **params)
    return rule


def close(g: Graph) -> Graph:
    """g with its constvars turned into leading invars (its consts become the caller's)."""
    return Graph(list(g.constvars) + list(g.invars), [], g.eqns, g.outvars, [], g.name)


def graph_of(fn, types, name="f"):
    """Trace fn over abstract inputs of `types` into a closed graph (for samples and tests)."""
    with new_trace("custom") as tr:
        ins = [Node(None, t, None, tr) for t in types]
        outs = fn(*ins)
        outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
        g = extract(outs, tr, inputs=ins, name=name)
    return close(g)


def _zeros_like(x):
    return o.zeros(o.shape(x), o.dtype(x))


def _check(types, g, what):
    want = g.in_types
    got = [AType(t.shape, t.dtype) for t in types]
    if got != want:
        raise TypeError(f"{what}: operand types {got} do not match the graph's {want}")


# --- custom_vjp_call ---------------------------------------------------------------------------
@_graphs
def _vjp_rule(*types, fun, fwd, bwd, nconsts, name="f"):
    a = nconsts[0]
    _check(types[:a] + types[sum(nconsts):], fun.graph, "custom_vjp_call")
    return fun.graph.out_types[0]


@_graphs
def _vjp_impl(*ops, fun, fwd, bwd, nconsts, name="f"):
    a, b, c = nconsts
    return eval_graph(fun.graph, list(ops[:a]) + list(ops[a + b + c:]))[0]


@_graphs
def _vjp_fwd(*ops, fun, fwd, bwd, nconsts, name="f"):
    """Reverse mode's forward, as in JAX: fwd's output and residuals (so differentiating the
    result again differentiates fwd and bwd, never `fun` with the user's rule ignored)."""
    a, b, c = nconsts
    outs = eval_graph(fwd.graph, list(ops[a:a + b]) + list(ops[a + b + c:]))
    return outs[0], list(outs[1:])


@_graphs
def _vjp_bwd(res, ct, *ops, out, fun, fwd, bwd, nconsts, name="f"):
    a, b, c = nconsts
    cts = eval_graph(bwd.graph, list(ops[a + b:a + b + c]) + list(res) + [ct])
    return [None] * (a + b + c) + list(cts)


@_graphs
def _vjp_vjp(ct, *ops, out, fun, fwd, bwd, nconsts, name="f"):
    res = _vjp_fwd(*ops, fun=fun, fwd=fwd, bwd=bwd, nconsts=nconsts, name=name)[1]
    return _vjp_bwd(res, ct, *ops, out=out, fun=fun, fwd=fwd, bwd=bwd, nconsts=nconsts,
                    name=name)


@_graphs
def _vjp_jvp(tangents, *ops, out, fun, fwd, bwd, nconsts, name="f"):
    # A reverse-mode rule says nothing about forward mode, and differentiating `fun` instead
    # would silently ignore the user's rule (jacfwd != jacrev): refuse, as JAX does. The rule
    # runs only when a nonzero tangent reaches the call (jvp_graph skips symbolic zeros).
    from ..core import STATE, user_location
    loc = STATE.loc or user_location(1)
    where = f" (the call at {loc[0]}:{loc[1]})" if loc else ""
    raise TypeError(f"can't apply forward-mode autodiff (jvp) to a custom_vjp function: "
                    f"{name}{where} defines only a reverse-mode rule, so jvp, jacfwd and "
                    "hessian's outer jacfwd cannot differentiate it; use grad, vjp or "
                    "jacrev, or give it a forward rule with adjit.custom_jvp")


_vjp_jvp.refuses = True  # the registry sweep and docs/ir.md's table: forward mode refused


@_graphs
def _vjp_batch(args, bd, *, fun, fwd, bwd, nconsts, name="f"):
    from ..batching import _all_batched, batch_graph, _size
    n = _size(args, bd)
    args = _all_batched(args, bd)
    a, b, c = nconsts
    nres = len(bwd.graph.invars) - c - 1
    fb = batch_graph(fun.graph, [0] * (a + len(args) - a - b - c), n)[0]
    wb = batch_graph(fwd.graph, [0] * (b + len(args) - a - b - c), n)[0]
    bb = batch_graph(bwd.graph, [0] * (c + nres + 1), n)[0]
    return bind_vjp(args, fb, wb, bb, nconsts, name), 0


def bind_vjp(ops, fun, fwd, bwd, nconsts, name="f"):
    from ..core import REGISTRY, bind
    return bind(REGISTRY["custom_vjp_call"], *ops, fun=GraphParam(fun), fwd=GraphParam(fwd),
                bwd=GraphParam(bwd), nconsts=tuple(nconsts), name=name)


def _square_graphs(dt):
    t = AType((3,), dt)
    fun = graph_of(lambda x: o.mul(x, x), [t], "square")
    fwd = graph_of(lambda x: (o.mul(x, x), x), [t], "square_fwd")
    bwd = graph_of(lambda x, ct: o.mul(o.mul(x, 2.0), ct), [t, t], "square_bwd")
    return fun, fwd, bwd


def _vjp_samples(dt, rng):
    fun, fwd, bwd = _square_graphs(dt)
    return [([sample_array(rng, (3,), dt)],
             {"fun": GraphParam(fun), "fwd": GraphParam(fwd), "bwd": GraphParam(bwd),
              "nconsts": (0, 0, 0), "name": "square"})]


p_vjp = register(Primitive("custom_vjp_call", _vjp_rule, _vjp_impl, _vjp_vjp, _vjp_jvp,
                           _vjp_samples, dtypes=FLOATS,
                           doc="a function with a user-defined vjp (graphs in params)",
                           kind="call"))
p_vjp.batch = _vjp_batch
p_vjp.residual_vjp = (_vjp_fwd, _vjp_bwd)


# --- custom_jvp_call ---------------------------------------------------------------------------
@_graphs
def _jvp_rule(*types, fun, jvp, nconsts, name="f"):
    a = nconsts[0]
    _check(types[:a] + types[sum(nconsts):], fun.graph, "custom_jvp_call")
    return fun.graph.out_types[0]


@_graphs
def _jvp_impl(*ops, fun, jvp, nconsts, name="f"):
    a, b = nconsts
    return eval_graph(fun.graph, list(ops[:a]) + list(ops[a + b:]))[0]


@_graphs
def _jvp_jvp(tangents, *ops, out, fun, jvp, nconsts, name="f"):
    a, b = nconsts
    args = list(ops[a + b:])
    tans = [t if t is not None else _zeros_like(x) for t, x in zip(tangents[a + b:], args)]
    return eval_graph(jvp.graph, list(ops[a:a + b]) + args + tans)[1]


@_graphs
def _jvp_vjp(ct, *ops, out, fun, jvp, nconsts, name="f"):
    from ..autodiff import vjp_graph
    a, b = nconsts
    args = list(ops[a + b:])
    na = len(args)
    g = jvp.graph
    vg = jvp.derived("vjp_tangents", lambda g: vjp_graph(g, wrt=range(b + na, b + 2 * na)))
    zt = [_zeros_like(x) for x in args]
    res = eval_graph(vg, list(ops[a:a + b]) + args + zt + [_zeros_like(out), ct])
    cts = res[len(g.outvars):]
    return [None] * (a + b) + [c if o.dtype(x) in FLOATS else None for c, x in zip(cts, args)]


@_graphs
def _jvp_batch(args, bd, *, fun, jvp, nconsts, name="f"):
    from ..batching import _all_batched, batch_graph, _size
    n = _size(args, bd)
    args = _all_batched(args, bd)
    a, b = nconsts
    na = len(args) - a - b
    fb = batch_graph(fun.graph, [0] * (a + na), n)[0]
    jb = batch_graph(jvp.graph, [0] * (b + 2 * na), n)[0]
    return bind_jvp(args, fb, jb, nconsts, name), 0


def bind_jvp(ops, fun, jvp, nconsts, name="f"):
    from ..core import REGISTRY, bind
    return bind(REGISTRY["custom_jvp_call"], *ops, fun=GraphParam(fun), jvp=GraphParam(jvp),
                nconsts=tuple(nconsts), name=name)


def _jvp_samples(dt, rng):
    t = AType((3,), dt)
    fun = graph_of(lambda x: o.exp(x), [t], "exp")
    jvp = graph_of(lambda x, tx: (o.exp(x), o.mul(o.exp(x), tx)), [t, t], "exp_jvp")
    return [([sample_array(rng, (3,), dt)],
             {"fun": GraphParam(fun), "jvp": GraphParam(jvp), "nconsts": (0, 0),
              "name": "exp"})]


p_jvp = register(Primitive("custom_jvp_call", _jvp_rule, _jvp_impl, _jvp_vjp, _jvp_jvp,
                           _jvp_samples, dtypes=FLOATS,
                           doc="a function with a user-defined jvp (graphs in params)",
                           kind="call"))
p_jvp.batch = _jvp_batch
