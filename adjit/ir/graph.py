"""Typed SSA graphs: Var, Eqn, Graph; extraction from recorded Nodes; the interpreter.

A Graph is a function: `invars` (arguments), `constvars` (arrays the runtime binds, printed as
`const #i`, never by value), `eqns` in order, `outvars` (Var or Lit). Guards are equations with
no outputs (`guard[expect=True] c`); a primitive with several results (`nout`) binds that many
output Vars. Every Eqn keeps the user's source location.
"""
from __future__ import annotations

import numpy as np

from .core import Lit, MultiRec, Node, REGISTRY, bind
from .types import AType


class Var:
    __slots__ = ("type", "name")

    def __init__(self, typ: AType, name: str | None = None):
        self.type = typ
        self.name = name

    def __repr__(self):
        return f"Var({self.name or '?'}: {self.type})"


class Eqn:
    __slots__ = ("prim", "inputs", "params", "outvars", "loc")

    def __init__(self, prim, inputs, params, outvars, loc=None):
        self.prim = prim
        self.inputs = inputs
        self.params = params
        self.outvars = outvars
        self.loc = loc


class Graph:
    __slots__ = ("invars", "constvars", "eqns", "outvars", "consts", "name", "native")

    def __init__(self, invars, constvars, eqns, outvars, consts=None, name="f"):
        self.invars = list(invars)
        self.constvars = list(constvars)
        self.eqns = list(eqns)
        self.outvars = list(outvars)
        self.consts = list(consts) if consts is not None else [None] * len(self.constvars)
        self.name = name
        self.native = None  # the compiled code, set by adjit.runtime.run_graph on first concrete run

    def __str__(self):
        from .printer import print_graph
        return print_graph(self)

    def _repr_pretty_(self, p, cycle):  # IPython
        p.text(str(self))

    def structure_key(self) -> str:
        """A text key that identifies the graph up to renaming (literals included)."""
        from .printer import print_graph
        return print_graph(self, locations=False)

    @property
    def in_types(self):
        return [v.type for v in self.invars]

    @property
    def out_types(self):
        return [v.type for v in self.outvars]


def extract(outputs, trace, inputs=(), guards=None, name="f", const_inputs=(), return_env=False,
            values=None, nodes=None):
    """The graph of `trace`'s equations reachable from `outputs` (Nodes or other values).

    `inputs` become invars in order; any other value the equations read that is not recorded at
    `trace` (a leaf, a constant array, a value of an enclosing trace) becomes a constvar whose
    binding (`consts`) is that Node. Guards of the trace are included where they were recorded.
    `values`, a dict, receives each Var's recorded value (`Node.val`: None where abstract);
    `nodes`, a dict, each equation result's Node.
    """
    env = {}
    invars = []
    for n in inputs:
        v = Var(n.type)
        env[id(n)] = v
        invars.append(v)
    constvars, consts = [], []
    for n in const_inputs:
        v = Var(n.type)
        env[id(n)] = v
        constvars.append(v)
        consts.append(n)
    recs = {}
    stack = [o for o in outputs if isinstance(o, Node)]
    for g in (guards if guards is not None else trace.guards):
        recs[g.seq] = (g, None)
        stack.extend(i for i in g.inputs if isinstance(i, Node))
    # iterative DFS: collect the equations of this trace that the roots depend on
    seen = set(env)
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.rec is None or n.trace is not trace:
            v = Var(n.type)
            env[id(n)] = v
            constvars.append(v)
            consts.append(n)
            continue
        rec = n.rec
        recs[rec.seq] = (rec, n)
        for i in rec.inputs:
            if isinstance(i, Node):
                stack.append(i)
    eqns = []
    for seq in sorted(recs):
        rec, node = recs[seq]
        ins = [i if type(i) is Lit else env[id(i)] for i in rec.inputs]
        outs = []
        if type(rec) is MultiRec:  # every result gets a Var, used or not
            for t, w in zip(rec.types, rec.outs):
                v = Var(t)
                m = w()
                if m is not None:
                    env[id(m)] = v
                    if values is not None:
                        values[v] = m.val
                        if nodes is not None:
                            nodes[v] = m
                outs.append(v)
        elif node is not None:
            v = Var(node.type)
            env[id(node)] = v
            outs = [v]
            if values is not None:
                values[v] = node.val
                if nodes is not None:
                    nodes[v] = node
        eqns.append(Eqn(rec.prim, ins, rec.params, outs, rec.loc))
    outvars = []
    for o in outputs:
        if isinstance(o, Node):
            outvars.append(env[id(o)])
        else:
            raise TypeError(f"graph output must be a recorded value, got {type(o).__name__}")
    g = Graph(invars, constvars, eqns, outvars, consts, name)
    if values is not None:  # (the equations' results were entered above)
        for v, n in zip(invars, inputs):
            values[v] = n.val
        for v, c in zip(constvars, consts):
            values[v] = c.val if isinstance(c, Node) else c
    return (g, env) if return_env else g


def eval_graph(g: Graph, args, consts=None):
    """Run a graph through `bind`: NumPy arrays in give arrays out; recorded values in are
    recorded again (this is how transforms compose and how a graph is inlined)."""
    env = {}
    for v, a in zip(g.invars, args):
        env[v] = a
    cs = g.consts if consts is None else consts
    for v, c in zip(g.constvars, cs):
        env[v] = c.val if isinstance(c, Node) and c.rec is None and not c.requires_grad else c
    for e in g.eqns:
        ins = [x.value if type(x) is Lit else env[x] for x in e.inputs]
        # a constant-maker (`full`) too: inside a trace bind records it, so what an inlined
        # graph computes from it is recorded (and simplified by the passes: `x * 1`), not
        # computed here into an opaque constant of the enclosing trace (which kept it alive:
        # W3's adjoint constants)
        out = bind(e.prim, *ins, **e.params)
        bind_outputs(env, e, out)
    return [o.value if type(o) is Lit else env[o] for o in g.outvars]


def bind_outputs(env, e, out):
    """env[v] = value for each output Var of `e`, given what `bind` returned for it (a tuple
    when the primitive has several results)."""
    ov = e.outvars
    if len(ov) == 1:
        env[ov[0]] = out
    elif ov:
        for v, o in zip(ov, out):
            env[v] = o


def prim(name):
    return REGISTRY[name]
