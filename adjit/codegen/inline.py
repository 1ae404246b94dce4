"""Graph rewrites before lowering: inlining of call-like primitives (custom_vjp_call,
custom_jvp_call), splitting of elementwise primitives with several results into one equation
per result (`split_outputs`), and transposed matrix products.

Their value is their `fun` graph applied to (fun's captured operands, args); the derivative
graphs in their params matter only to transforms. Inlining `fun` lets its equations fuse with
the caller's like any others. A constant captured inside such a graph (a batching rule may put
one there) is embedded in the code: its value is part of the parameter's printed digest and so
of every cache key.
"""
from __future__ import annotations

import numpy as np

from ..ir.core import Lit, Node
from ..ir.graph import Eqn, Graph, Var
from ..ir.prims.custom import graph_param
from .errors import CompileError

INLINE = ("custom_vjp_call", "custom_jvp_call")


def _fun_operands(e):
    a = e.params["nconsts"][0]
    skip = sum(e.params["nconsts"])
    return list(e.inputs[:a]) + list(e.inputs[skip:])


def split_outputs(g: Graph, lowerings) -> Graph:
    """Each equation of an elementwise primitive with several results (a "split" lowering)
    becomes one equation per result, each computing its own result at an index."""
    if all(len(e.outvars) <= 1 for e in g.eqns):
        return g
    eqns = []
    for e in g.eqns:
        low = lowerings.get(e.prim.name)
        if len(e.outvars) > 1 and low is not None and low.kind == "split":
            eqns.extend(Eqn(proj, e.inputs, e.params, [v], e.loc)
                        for proj, v in zip(low.fn, e.outvars))
        else:
            eqns.append(e)
    return Graph(g.invars, g.constvars, eqns, g.outvars, g.consts, g.name)


def inline_calls(g: Graph):
    """(graph without call primitives, {Var: array} of embedded constants)."""
    if not any(e.prim.name in INLINE for e in g.eqns):
        return g, {}
    embedded = {}
    sub = {}   # Var of g -> replacement (Var or Lit)

    def get(x):
        return x if isinstance(x, Lit) else sub.get(x, x)

    eqns = []
    for e in g.eqns:
        ins = [get(x) for x in e.inputs]
        if e.prim.name not in INLINE:
            eqns.append(Eqn(e.prim, ins, e.params, e.outvars, e.loc))
            continue
        # a GraphParam, or its printed text when the graph was parsed (the compile worker
        # reads the caller's graph as text)
        inner, emb = inline_calls(graph_param(e.params["fun"]).graph)
        embedded.update(emb)
        env = dict(zip(inner.invars, _fun_operands(Eqn(e.prim, ins, e.params, []))))
        for v, c in zip(inner.constvars, inner.consts):
            if c is None:  # parsed from text, which carries a digest of the values only
                raise CompileError(f"graph {g.name}", f"the values of {e.prim.name}'s "
                                   "constants are not known (a graph read from its text)")
            w = Var(v.type)
            embedded[w] = np.ascontiguousarray(c.val if isinstance(c, Node) else c)
            env[v] = w
        for ie in inner.eqns:
            outs = [Var(v.type) for v in ie.outvars]
            env.update(zip(ie.outvars, outs))
            eqns.append(Eqn(ie.prim, [x if isinstance(x, Lit) else env[x] for x in ie.inputs],
                            ie.params, outs, ie.loc or e.loc))
        res = inner.outvars[0]
        sub[e.outvars[0]] = res if isinstance(res, Lit) else env[res]
    out = Graph(g.invars, list(g.constvars), eqns, [get(v) for v in g.outvars], g.consts,
                g.name)
    return out, embedded


def fold_transposed_dots(g: Graph) -> Graph:
    """transpose(dot_general(x, y)) that only swaps the two free blocks is dot_general(y, x):
    GEMM then writes the transposed product directly (reverse mode makes these for every
    weight gradient) instead of a temporary and a transpose pass."""
    uses = {}
    for e in g.eqns:
        for x in e.inputs:
            if not isinstance(x, Lit):
                uses[x] = uses.get(x, 0) + 1
    for v in g.outvars:
        if not isinstance(v, Lit):
            uses[v] = uses.get(v, 0) + 2
    producer = {e.outvars[0]: e for e in g.eqns if e.outvars}
    eqns, changed = [], False
    for e in g.eqns:
        d = e.inputs[0] if e.prim.name == "transpose" else None
        de = producer.get(d) if d is not None else None
        if de is not None and de.prim.name == "dot_general" and uses.get(d) == 1:
            x, y = de.inputs
            (lc, rc), (lb, rb) = de.params["contract"], de.params["batch"]
            nb = len(lb)
            nxf = x.type.ndim - len(lc) - nb
            nyf = y.type.ndim - len(rc) - nb
            swap = tuple(range(nb)) + tuple(range(nb + nxf, nb + nxf + nyf)) + \
                tuple(range(nb, nb + nxf))
            if tuple(e.params["perm"]) == swap:
                params = dict(de.params, contract=(rc, lc), batch=(rb, lb))
                eqns.append(Eqn(de.prim, [y, x], params, e.outvars, e.loc))
                changed = True
                continue
        eqns.append(e)
    if not changed:
        return g
    return Graph(g.invars, g.constvars, eqns, g.outvars, g.consts, g.name)


def fold_transposed_operands(g: Graph) -> Graph:
    """dot_general(transpose(a), b) reads `a` with its contracting and batch axes renamed, when
    that keeps the order of the free axes (so the product's layout is unchanged) and the result
    is a GEMM with transpose flags: no transposed copy of `a` (x.T @ y, y @ w.T in reverse
    mode). The transpose itself stays only if something else reads it."""
    from .kernels import _gemm_layout, _squeeze
    producer = {e.outvars[0]: e for e in g.eqns if e.outvars}
    eqns, changed = [], False
    for e in g.eqns:
        if e.prim.name != "dot_general":
            eqns.append(e)
            continue
        ins = list(e.inputs)
        (lc, rc), (lb, rb) = e.params["contract"], e.params["batch"]
        dims = [[list(lc), list(lb)], [list(rc), list(rb)]]
        for k in (0, 1):
            t = producer.get(ins[k]) if not isinstance(ins[k], Lit) else None
            if t is None or t.prim.name != "transpose" or isinstance(t.inputs[0], Lit):
                continue
            perm = t.params["perm"]
            c, bt = dims[k]
            free = [j for j in range(len(perm)) if j not in c and j not in bt]
            if [perm[j] for j in free] != sorted(perm[j] for j in free):
                continue
            trial = [list(d) for d in dims]
            trial[k] = [[perm[j] for j in c], [perm[j] for j in bt]]
            shapes = [x.type.shape for x in ins]
            shapes[k] = t.inputs[0].type.shape
            sq = _squeeze(shapes[0], shapes[1], trial[0][0], trial[1][0], trial[0][1],
                          trial[1][1])
            if _gemm_layout(len(sq[0]), len(sq[1]), *sq[2:]) is None:
                continue
            dims = trial
            ins[k] = t.inputs[0]
        if ins != list(e.inputs):
            params = dict(e.params, contract=(tuple(dims[0][0]), tuple(dims[1][0])),
                          batch=(tuple(dims[0][1]), tuple(dims[1][1])))
            eqns.append(Eqn(e.prim, ins, params, e.outvars, e.loc))
            changed = True
        else:
            eqns.append(e)
    if not changed:
        return g
    return Graph(g.invars, g.constvars, eqns, g.outvars, g.consts, g.name)
