"""The arrays a jitted function reads from outside its arguments, made inputs of every call.

`Slots(f)` finds, once, where `f` can read arrays without being passed them: its closure
cells, the module globals its code (and the code of functions defined inside it) loads by
name, the closure cells of functions held in those cells (the function `jit(grad(loss))`
wraps: grad's wrapper holds `loss` in a cell), and, for a method, the attributes of `self`.
Each call `gather`s their current values (one read per slot); the arrays among them are
inputs of the trace, keyed by shape and dtype like arguments, and while tracing `substitute`
runs a copy of the function whose cells / globals dict / `self` attributes hold the traced
values instead, so `np.sum(X)` of such an array is recorded, not computed by NumPy.

Not reached (frozen: constants of the trace, bound by reference): arrays held by other
objects or containers, and the globals of helper functions that `f` calls by name.
"""
from __future__ import annotations

import builtins
import dis
import types

import numpy as np

_EMPTY = object()     # an empty cell / an undefined global
_STORES = {"STORE_GLOBAL", "DELETE_GLOBAL"}
MAX_DEPTH = 4


def _candidate(v):
    """Can this slot hold a live array? Arrays and array-like NumPy scalars, and (so that a
    name bound later is seen) None and unbound slots; functions, modules, classes, numbers
    and strings are structure."""
    return v is _EMPTY or v is None or isinstance(v, (np.ndarray, np.generic)) or \
        _is_tensor(v)


def _is_tensor(v):
    n = getattr(type(v), "_wrap", None)
    return n is not None and type(getattr(v, "_n", None)).__name__ == "Node"


def _global_names(code, out, stores):
    for ins in dis.get_instructions(code):
        if ins.opname == "LOAD_GLOBAL":
            out.append(ins.argval)
        elif ins.opname in _STORES:
            stores.add(ins.argval)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _global_names(c, out, stores)


def _cell(c):
    try:
        return c.cell_contents
    except ValueError:
        return _EMPTY


class _Plan:
    """Where one function reads values: [(cell index, slot number | sub-plan)], [(name, slot
    number)] of its globals."""
    __slots__ = ("fn", "cells", "gnames")


class Slots:
    """The live slots of a function (see the module doc)."""

    def __init__(self, f):
        self.readers = []   # (kind, where, name): "cell", cell; "global", dict, name
        self.checks = []    # (cell, function it held when planned): structure
        self.plan = self._plan(f, 0, set()) if isinstance(f, types.FunctionType) else None
        self.n = len(self.readers)
        cells = [w for k, w, _ in self.readers if k == "cell"]
        gl = [(w, nm) for k, w, nm in self.readers if k == "global"]
        self.cells, self.globs = cells, gl

    def _plan(self, fn, depth, seen):
        seen.add(id(fn))
        p = _Plan()
        p.fn, p.cells, p.gnames = fn, [], []
        for i, c in enumerate(fn.__closure__ or ()):
            v = _cell(c)
            if isinstance(v, types.FunctionType) and depth < MAX_DEPTH and id(v) not in seen:
                sub = self._plan(v, depth + 1, seen)
                if sub.cells or sub.gnames:
                    self.checks.append((c, v))
                    p.cells.append((i, sub))
            elif _candidate(v):
                p.cells.append((i, len(self.readers)))
                self.readers.append(("cell", c, None))
        names, stores = [], set()
        _global_names(fn.__code__, names, stores)
        if stores:  # f writes module globals: a copy of the dict would lose the writes
            return p
        g = fn.__globals__
        for nm in dict.fromkeys(names):
            v = g.get(nm, _EMPTY)
            if v is _EMPTY and hasattr(builtins, nm):
                continue
            if _candidate(v):
                p.gnames.append((nm, len(self.readers)))
                self.readers.append(("global", g, nm))
        return p

    def gather(self):
        """The current value of every slot (None when a function held in a cell changed:
        plan again)."""
        for c, fn in self.checks:
            if _cell(c) is not fn:
                return None
        vals = []
        for c in self.cells:
            try:
                vals.append(c.cell_contents)
            except ValueError:
                vals.append(_EMPTY)
        for g, nm in self.globs:
            vals.append(g.get(nm, _EMPTY))
        return vals

    def order(self):
        """Slot numbers in the order `gather` returns them."""
        cells = [i for i, (k, _, _) in enumerate(self.readers) if k == "cell"]
        return cells + [i for i, (k, _, _) in enumerate(self.readers) if k == "global"]

    def substitute(self, subst):
        """A copy of the planned function whose slots (slot number -> value) hold the given
        values; the function itself when there is nothing to substitute."""
        return _build(self.plan, subst) if self.plan is not None and subst else None


def _build(p, subst):
    fn = p.fn
    closure = list(fn.__closure__ or ())
    changed = False
    for i, s in p.cells:
        if isinstance(s, _Plan):
            nf = _build(s, subst)
            if nf is not s.fn:
                closure[i] = types.CellType(nf)
                changed = True
        elif s in subst:
            closure[i] = types.CellType(subst[s])
            changed = True
    g = fn.__globals__
    gsub = {nm: subst[s] for nm, s in p.gnames if s in subst}
    if gsub:
        g = dict(g)
        g.update(gsub)
        changed = True
    if not changed:
        return fn
    nf = types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, tuple(closure))
    nf.__kwdefaults__ = fn.__kwdefaults__
    nf.__qualname__ = fn.__qualname__
    nf.__module__ = fn.__module__
    nf.__dict__.update(fn.__dict__)
    return nf


def self_arrays(obj, static_key):
    """The array attributes of `self` (name -> value) and the key of the rest: its type and,
    per other attribute, `static_key` of its value when hashable, else its identity."""
    d = getattr(obj, "__dict__", None)
    if not isinstance(d, dict):
        return {}, (type(obj), id(obj))
    arrays, rest = {}, []
    for k, v in d.items():
        if isinstance(v, (np.ndarray, np.generic)) or _is_tensor(v):
            arrays[k] = v
        else:
            try:
                rest.append((k, static_key(v, f"attribute {k!r} of self")))
            except TypeError:
                rest.append((k, ("id", id(v))))
    return arrays, (type(obj), tuple(rest))
