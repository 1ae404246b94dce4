"""The interpreter tier: a graph run on NumPy, equation by equation, without `bind`.

`eval_graph` (adjit.ir.graph) runs a graph through `bind`, so that recorded values are recorded
again: that is how transforms compose. On plain arrays that generality costs a dispatch per
equation and keeps every intermediate alive until the end. `Plan` is what the runtime runs
while a graph is not (yet) native code: the optimised graph's equations as a flat list of
(implementation, operand slots, parameters, result slots), operands read from a list, each
value dropped as soon as its last reader has run (so peak memory follows the live set, not
the whole graph), NumPy's floating-point warnings off (native code never warns either).
Results are fresh arrays (`fresh`), as native code's are.

In-place reuse: a float elementwise equation whose implementation is a NumPy ufunc writes its
result into an operand that dies at that equation (`ufunc(..., out=operand)`), when that operand
has the result's shape and dtype and is a buffer the interpreter itself allocated and nothing
else holds: an intermediate (never an argument, a constant or an output slot of the graph),
owning its memory, writable, and with no other reference (CPython's reference count: no view of
it, no other slot, no caller holds it). A ufunc gives the same bits with or without `out=`.
"""
from __future__ import annotations

import sys

import numpy as np

from .._fp import FP_QUIET, FP_STATE
from ..ir.core import Lit
from ..ir.types import DTYPES


class Plan:
    """A graph's equations prepared for repeated interpretation on arrays."""

    __slots__ = ("steps", "n_in", "n_const", "size", "outs", "name")

    def __init__(self, g):
        slot = {}
        for v in list(g.invars) + list(g.constvars):
            slot[v] = len(slot)
        self.n_in, self.n_const = len(g.invars), len(g.constvars)
        last = {}
        for i, e in enumerate(g.eqns):
            for x in e.inputs:
                if type(x) is not Lit:
                    last[x] = i
        keep = {v for v in g.outvars if type(v) is not Lit}
        steps = []
        for i, e in enumerate(g.eqns):
            for v in e.outvars:
                slot[v] = len(slot)
            # a literal takes the dtype of the last array operand (as `bind` converts it)
            litdt = next((x.type.dtype for x in reversed(e.inputs) if type(x) is not Lit), None)
            ins = tuple((True, slot[x]) if type(x) is not Lit else
                        (False, np.asarray(x.value, DTYPES[litdt] if litdt else None))
                        for x in e.inputs)
            dead = tuple(sorted({slot[x] for x in e.inputs
                                 if type(x) is not Lit and last.get(x) == i and x not in keep}))
            outs = tuple(slot[v] for v in e.outvars)
            steps.append((e.prim.impl, ins, e.params, outs, dead,
                          _reuse(e, ins, dead, self.n_in + self.n_const)))
        self.steps = steps
        self.size = len(slot)
        self.outs = [(False, o.value) if type(o) is Lit else (True, slot[o]) for o in g.outvars]
        self.name = g.name

    def __call__(self, args, consts):
        env = [None] * self.size
        env[:self.n_in] = args
        env[self.n_in:self.n_in + self.n_const] = [getattr(c, "val", c) for c in consts]
        token = FP_STATE.set(FP_QUIET)  # NumPy's warnings off (see adjit/_fp.py)
        try:
            for impl, ins, params, outs, dead, reuse in self.steps:
                vals = [env[s] if is_slot else s for is_slot, s in ins]
                if reuse is not None:
                    r = _into(reuse, vals)
                    if r is None:
                        r = impl(*vals, **params) if params else impl(*vals)
                else:
                    r = impl(*vals, **params) if params else impl(*vals)
                if len(outs) == 1:
                    env[outs[0]] = r
                elif outs:  # several results (a guard has none)
                    for s, v in zip(outs, r):
                        env[s] = v
                r = None  # no stray reference: the next step may reuse its buffer
                for s in dead:
                    env[s] = None
        finally:
            FP_STATE.reset(token)
        return [np.asarray(env[s]) if is_slot else s for is_slot, s in self.outs]


_getrefcount = sys.getrefcount
_nd = np.ndarray


def _reuse(e, ins, dead, first_step_slot):
    """(ufunc, ((operand position, expected reference count), ...)) when equation `e` may write
    its result into an operand that dies at it, else None."""
    uf = getattr(e.prim.impl, "ufunc", None)
    if uf is None or len(e.outvars) != 1 or uf.nout != 1 or uf.nin != len(e.inputs):
        return None
    t = e.outvars[0].type
    if t.dtype not in ("f32", "f64") or any(type(x) is not Lit and x.type.dtype != t.dtype
                                             for x in e.inputs):
        return None
    cands = []
    for k, ((is_slot, s), x) in enumerate(zip(ins, e.inputs)):
        if is_slot and s in dead and s >= first_step_slot and x.type.shape == t.shape and \
                all(c[0] != s for c in cands):
            # references while it runs: its env slot, each occurrence in the operand list,
            # `_into`'s local name, getrefcount's own argument
            n = sum(1 for b, s2 in ins if b and s2 == s)
            cands.append((s, k, 3 + n))
    return (uf, tuple((k, n) for _, k, n in cands)) if cands else None


def _into(reuse, vals):
    uf, cands = reuse
    for k, n in cands:
        b = vals[k]
        if type(b) is _nd and b.base is None and b.flags.writeable and _getrefcount(b) == n:
            return uf(*vals, out=b)
    return None
