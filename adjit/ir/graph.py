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


_new = object.__new__


class Var:
    # (extract builds Vars and Eqns without calling __init__: keep it in step)
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
    `nodes`, a dict, each equation result's Node. `return_env`: (graph, {Node: its Var}).
    """
    env = {}  # Node -> Var (Nodes hash by identity); a Lit is never a key
    invars = []
    for n in inputs:
        v = env[n] = Var(n.type)
        invars.append(v)
    constvars, consts = [], []
    for n in const_inputs:
        v = env[n] = Var(n.type)
        constvars.append(v)
        consts.append(n)
    recs = {}  # seq -> (record, its output Vars, its result Node or None)
    stack = [o for o in outputs if isinstance(o, Node)]
    for g in (guards if guards is not None else trace.guards):
        recs[g.seq] = (g, [], None)
        stack.extend(g.inputs)
    # iterative DFS: the equations of this trace that the roots depend on, their results' Vars
    # made as they are reached (one pass: an equation is then built from its operands' Vars)
    pop, push = stack.pop, stack.extend
    while stack:
        n = pop()
        if n in env or type(n) is Lit:
            continue
        rec = n.rec
        if rec is None or n.trace is not trace:
            v = env[n] = _new(Var)
            v.type = n.type
            v.name = None
            constvars.append(v)
            consts.append(n)
            continue
        if type(rec) is MultiRec:  # every result gets a Var, used or not
            outs = []
            for t, w in zip(rec.types, rec.outs):
                v = Var(t)
                m = w()
                if m is not None:
                    env[m] = v
                outs.append(v)
            recs[rec.seq] = (rec, outs, None)
        else:
            v = env[n] = _new(Var)  # (Var.__init__ written out: ~0.1 us per equation)
            v.type = n.type
            v.name = None
            recs[rec.seq] = (rec, [v], n)
        push(rec.inputs)
    get = env.get
    eqns = []
    for seq in sorted(recs):
        rec, outs, _ = item = recs[seq]
        ins = rec.inputs
        e = _new(Eqn)  # (Eqn.__init__ written out)
        e.prim = rec.prim
        e.inputs = list(map(get, ins, ins))  # (env.get(x, x): an operand's Var, a Lit itself)
        e.params = rec.params
        e.outvars = outs
        e.loc = rec.loc
        eqns.append(e)
        if values is not None:
            _note_values(item, values, nodes)
    outvars = []
    for o in outputs:
        if isinstance(o, Node):
            outvars.append(env[o])
        else:
            raise TypeError(f"graph output must be a recorded value, got {type(o).__name__}")
    g = Graph(invars, constvars, eqns, outvars, consts, name)
    if values is not None:  # (the equations' results were entered above)
        for v, n in zip(invars, inputs):
            values[v] = n.val
        for v, c in zip(constvars, consts):
            values[v] = c.val if isinstance(c, Node) else c
    return (g, env) if return_env else g


def _note_values(item, values, nodes):
    """extract's `values` (and `nodes`) for one equation's results."""
    rec, outs, node = item
    if type(rec) is MultiRec:
        for v, w in zip(outs, rec.outs):
            m = w()
            if m is not None:
                values[v] = m.val
                if nodes is not None:
                    nodes[v] = m
    elif node is not None:
        v = outs[0]
        values[v] = node.val
        if nodes is not None:
            nodes[v] = node


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
