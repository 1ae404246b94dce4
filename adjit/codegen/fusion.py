"""Fusion: which values get a buffer and which are recomputed inside their consumer's loops.

Every value produced by an elementwise or index-map primitive (broadcast_in_dim, transpose,
reshape, slice, pad) is a candidate for *inlining*: instead of a loop writing a temporary, its
consumer's loop computes it at the index it needs. Kernels (reductions, cumsum, concatenate,
gather, scatter_add, dot_general) always write a buffer, but read their operands inline where
each operand element is read once. So an elementwise chain feeding a broadcast feeding a
reduction is one loop nest with no temporaries.

A candidate is *materialised* (given a buffer) instead when
- it is a graph output (the output buffer is its buffer; later consumers read it);
- a consumer needs a real buffer (BLAS operands, gather's table);
- it is not cheap and would be recomputed many times: read through an expanding broadcast, or
  by a kernel that reads each element several times ('repeat' operands);
- it is not cheap and is read at two different indices (in different loop nests, or through
  different index maps in one): it would be computed twice per element, and a chain of such
  values would double the work at every step. Uses at the same index share one computation
  (see builder.value).
"Cheap" = only index maps, conversions and constants over values that already have buffers.
"""
from __future__ import annotations

from ..ir.core import Lit

CHEAP = frozenset(("broadcast_in_dim", "transpose", "reshape", "slice", "pad", "stop_gradient",
                   "convert_element_type", "full", "neg", "not"))


class Plan:
    __slots__ = ("producer", "materialised", "dead", "out_slot", "cheap")

    def __init__(self):
        self.producer = {}      # Var -> Eqn
        self.materialised = set()
        self.dead = set()       # equations whose value nobody needs
        self.out_slot = {}      # Var -> index of the output buffer it lives in
        self.cheap = {}


def _policy(consumer, pos, lowerings):
    low = lowerings[consumer.prim.name]
    if low.kind == "kernel" or low.kind == "guard":
        ops = low.operands
        return ops[min(pos, len(ops) - 1)]
    if consumer.prim.name == "broadcast_in_dim":
        x, out = consumer.inputs[0], consumer.outvars[0]
        return "repeat" if out.type.size > x.type.size else "once"
    return "once"


def _use_sig(c, pos, sig, lowerings, materialised):
    """Which index an operand is read at, as a comparable token: elementwise consumers pass
    their own index through; index maps and kernels read at indices of their own."""
    kind = lowerings[c.prim.name].kind
    if kind == "ew":
        return ("root", id(c)) if c.outvars[0] in materialised else sig[c.outvars[0]]
    if kind == "index":
        return ("map", id(c))
    return ("operand", id(c), pos)


def plan(g, lowerings) -> Plan:
    p = Plan()
    for i, v in enumerate(g.outvars):
        if not isinstance(v, Lit) and v not in p.out_slot:
            p.out_slot[v] = i
    for e in g.eqns:
        for v in e.outvars:
            p.producer[v] = e
            p.cheap[v] = e.prim.name in CHEAP and all(
                isinstance(x, Lit) or p.cheap.get(x, True) for x in e.inputs)
    consumers = {}
    for e in g.eqns:
        for pos, x in enumerate(e.inputs):
            if not isinstance(x, Lit):
                consumers.setdefault(x, []).append((e, pos))
    # sig[v]: the index v is evaluated at inside its loop nest. A value used at two different
    # indices would be computed twice per element, and chains of such values would double the
    # work at every step, so only cheap values may be inlined with differing uses.
    sig = {}
    live = set(p.out_slot)
    for e in reversed(g.eqns):
        if not e.outvars:                   # a guard: always kept, its own root
            live.update(x for x in e.inputs if not isinstance(x, Lit))
            continue
        v = e.outvars[0]
        if v not in live:
            p.dead.add(e)
            continue
        live.update(x for x in e.inputs if not isinstance(x, Lit))
        kind = lowerings[e.prim.name].kind
        uses = [(c, pos) for c, pos in consumers.get(v, ()) if c not in p.dead]
        sigs = {_use_sig(c, pos, sig, lowerings, p.materialised) for c, pos in uses}
        if kind == "kernel" or v in p.out_slot:
            mat = True
        else:
            pols = {_policy(c, pos, lowerings) for c, pos in uses}
            mat = "buffer" in pols or (not p.cheap[v] and ("repeat" in pols or len(sigs) > 1))
        if mat:
            p.materialised.add(v)
        else:
            sig[v] = sigs.pop() if len(sigs) == 1 else ("several",)
    return p
