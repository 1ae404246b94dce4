"""Literal slots: a Python scalar in an equation is specialised on its first value; once the
same slot sees a second value it becomes a runtime scalar input (see "The value model" in
docs/architecture.md).

A slot is promotable when the literal is an int or float operand of an elementwise equation
(every array operand has the result's shape), except pow exponents 0, +-1, 2 and 0.5, which stay
specialised (NumPy's and the code generator's fast paths). The caches that use this (the eager
backward, grad without jit) keep, per structure with promotable values abstracted, the first
values and the set of promoted slots, so a value that changes every step compiles twice: once
specialised, once with that slot as an input.
"""
from __future__ import annotations

import collections

from .core import Lit
from .graph import Eqn, Graph, Var
from .types import AType, DTYPES, float_bits

POW_SPECIAL = frozenset((0.0, 1.0, -1.0, 2.0, 0.5))


def promotable(prim, j, lit, elementwise):
    """May literal `lit`, operand j of an equation of `prim`, become a runtime scalar?"""
    return (elementwise and type(lit.value) in (float, int) and lit.dtype is not None and
            not (prim.name == "pow" and j == 1 and lit.value in POW_SPECIAL))


def bits(v):
    """A literal's value as a key: floats by their bits (-0.0 and nan apart), 1 and 1.0 apart."""
    return float_bits(v) if type(v) is float else (v, type(v))


def slots(g: Graph):
    """(text of g with its promotable literals abstracted, their values' bits, their places
    (eqn index, operand index, NumPy dtype))."""
    from .printer import print_graph
    eqns, bs, where = [], [], []
    extra = []
    for k, e in enumerate(g.eqns):
        ins = e.inputs
        if e.outvars and any(type(x) is Lit for x in ins):
            shape = e.outvars[0].type.shape
            ew = all(x.type.shape == shape for x in ins if type(x) is not Lit)
            new = list(ins)
            for j, x in enumerate(ins):
                if type(x) is Lit and promotable(e.prim, j, x, ew):
                    bs.append(bits(x.value))
                    where.append((k, j, DTYPES[x.dtype]))
                    v = Var(AType((), x.dtype))
                    extra.append(v)
                    new[j] = v
            if any(a is not b for a, b in zip(new, ins)):
                e = Eqn(e.prim, new, e.params, e.outvars, e.loc)
        eqns.append(e)
    if not where:
        return g.structure_key(), bs, where
    gen = Graph(list(g.invars) + extra, g.constvars, eqns, g.outvars, None, g.name)
    return gen.structure_key(), bs, where


def promote(g: Graph, where):
    """g with the literal slots `where` ((eqn index, operand index, dtype)) as scalar inputs
    appended to its invars, each broadcast to its equation's shape."""
    from .core import REGISTRY
    at = collections.defaultdict(list)
    for k, j, dt in where:
        at[k].append(j)
    extra, eqns = [], []
    bcast = REGISTRY["broadcast_in_dim"]
    for k, e in enumerate(g.eqns):
        js = at.get(k)
        if js:
            new = list(e.inputs)
            shape = e.outvars[0].type.shape
            for j in js:
                v = Var(AType((), new[j].dtype))
                extra.append(v)
                if shape:
                    b = Var(AType(shape, new[j].dtype))
                    eqns.append(Eqn(bcast, [v], _bcast_params(shape), [b], e.loc))
                    v = b
                new[j] = v
            e = Eqn(e.prim, new, e.params, e.outvars, e.loc)
        eqns.append(e)
    return Graph(list(g.invars) + extra, g.constvars, eqns, g.outvars, g.consts, g.name)


def _bcast_params(shape):
    return {"shape": tuple(shape), "dims": ()}  # what ops.broadcast_to records for a scalar


class SlotTable:
    """Per abstracted structure: the first values seen and the promoted slot indices."""

    def __init__(self, size=512):
        self.entries = collections.OrderedDict()
        self.size = size

    def promoted(self, key, bs):
        """The promoted slot indices (a sorted tuple) after seeing the values `bs`."""
        e = self.entries.get(key)
        if e is None:
            self.entries[key] = [bs, ()]
            if len(self.entries) > self.size:
                self.entries.popitem(last=False)
            return ()
        self.entries.move_to_end(key)
        first, prom = e
        changed = [i for i, b in enumerate(bs) if b != first[i] and i not in prom]
        if changed:
            e[1] = prom = tuple(sorted(prom + tuple(changed)))
        return prom
