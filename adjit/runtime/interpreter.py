"""The interpreter tier: a graph run on NumPy, equation by equation, without `bind`.

`eval_graph` (adjit.ir.graph) runs a graph through `bind`, so that recorded values are recorded
again: that is how transforms compose. On plain arrays that generality costs a dispatch per
equation and keeps every intermediate alive until the end. `Plan` is what the runtime runs
while a graph is not (yet) native code, in two forms that give the same bits:
- the loop (`Plan.loop`, a plan's first calls): the optimised graph's equations as a flat list
  of (implementation, operand slots, parameters, result slots), operands read from a list, each
  value dropped as soon as its last reader has run (so peak memory follows the live set, not
  the whole graph);
- the generated function (`generate`, once the loop has run about as long as generating takes,
  see GEN_SECONDS_PER_EQN; a held plan, one native code will serve soon, only once one loop
  call takes that long, see `Plan.hold`): straight-line Python made from the equations, each
  value a local, each equation one direct call of the NumPy function its implementation calls, `del` after the
  last reader; no per-equation dispatch.
NumPy's floating-point warnings are off in both (native code never warns either). Results are
fresh arrays (`runtime.fresh`), as native code's are.

In-place reuse: a float elementwise equation whose implementation is a NumPy ufunc writes its
result into an operand that dies at that equation (`ufunc(..., out=operand)`), when that operand
has the result's shape and dtype and is a buffer the interpreter itself allocated and nothing
else holds: an intermediate (never an argument, a constant or an output slot of the graph),
owning its memory, writable, and with no other reference (CPython's reference count: no view of
it, no other slot or local, no caller holds it). A ufunc gives the same bits with or without
`out=`.
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

from .._fp import FP_QUIET, FP_STATE
from ..ir.core import REGISTRY, Lit
from ..ir.prims.gather_dot_control import _OUT_OF_RANGE
from ..ir.types import DTYPES


class Plan:
    """A graph's equations prepared for repeated interpretation on arrays."""

    __slots__ = (
        "due",
        "fn",
        "graph",
        "hold",
        "n_const",
        "n_in",
        "name",
        "outs",
        "runs",
        "size",
        "spent",
        "steps",
    )

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
            fn = _loop_fn(e)
            steps.append((fn or e.prim.impl, ins, {} if fn else e.params, outs, dead,
                          _reuse(e, ins, dead, self.n_in + self.n_const)))
        self.steps = steps
        self.size = len(slot)
        self.outs = [(False, o.value) if type(o) is Lit else (True, slot[o]) for o in g.outvars]
        self.name = g.name
        self.graph = g
        self.fn = None  # the generated function (see GEN_SECONDS_PER_EQN)
        self.spent = None  # seconds the loop has run (None: never)
        self.runs = 0  # calls the loop has served
        self.due = GEN_SECONDS_PER_EQN * max(1, len(g.eqns))
        # held (runtime.Interpreted: a graph that native code will serve soon): the function is
        # generated only once one loop call takes about as long as generating it (a big
        # graph), not on the call of a small one that has run `due` seconds in all: that call
        # would pay the generation (0.5-3 ms for W2's 76 equations) for code native code soon
        # replaces. `release()` (the graph is hot, its compile under way) lifts the hold.
        self.hold = False

    def release(self):
        """Generate on the usual rule from now on: once the loop has run `due` more seconds."""
        if self.hold:
            self.hold = False
            self.spent = 0.0 if self.spent is not None else None
            self.runs = 0

    def __call__(self, args, consts):
        """The graph's results on `args` (by position) and `consts` (the constvars' bindings:
        arrays, or Nodes whose `val` is read), as fresh arrays (see runtime.fresh)."""
        fn = self.fn
        if fn is None:
            spent = self.spent
            if spent is None or spent < self.due * (self.runs if self.hold else 1):
                from . import fresh
                t0 = time.perf_counter()
                outs = fresh(self.loop(args, consts), args, consts)
                self.spent = (spent or 0.0) + time.perf_counter() - t0
                self.runs += 1
                return outs
            fn = self.fn = generate(self.graph)
        return fn(args, consts)

    def loop(self, args, consts):
        """A plan's first calls: the equations run in a loop (no code generated for a graph
        that runs briefly); results as the implementations return them."""
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


# ------------------------------------------------------------------ the generated function
# Each value is a local variable; each equation one direct call of its evaluation function: the
# registry's implementation, or the NumPy call that implementation makes, spelled out where the
# plan knows the operands' types (`_Gen.direct_ufunc`, `_EMIT`: ufuncs without the dtype-keeping
# wrapper when the dtype cannot change, np.tensordot's own transpose/reshape/dot sequence with
# the shapes computed once, np.reshape/np.transpose as the array's methods, a broadcast_in_dim
# that only ufuncs read left to NumPy's broadcasting as a view with size-1 axes). `out=` into a
# dying intermediate behind the same ownership test as the loop's (a local's reference count).
# tests/test_interpreter_codegen.py checks the bits against `eval_graph` on every primitive.

CHUNK = 400  # equations per generated function (a long graph runs as several, called in turn)
# Generating costs ~20 us per equation (source and `compile`): a plan generates its function once
# its loop has run that long (from the second call for a graph whose call takes longer than
# that), so code generation at most doubles the interpreted time of a graph that runs briefly.
GEN_SECONDS_PER_EQN = 20e-6


def _rc_alone():
    # the reference count sys.getrefcount reports for an object only a local variable holds
    # (2 on CPython <= 3.13: the local and the argument)
    def probe():
        x = np.empty(1)
        return _getrefcount(x)
    return probe()


_RC = _rc_alone()


def _taken(args, consts, outs):
    t = {id(a) for a in args}
    t.update(id(getattr(c, "val", c)) for c in consts)
    t.update(id(o) for o in outs)
    return t


def _fr(o, taken):
    """One output as `fresh` makes it: a copy when it is an argument, a constant, another
    output, a view or read-only."""
    if isinstance(o, _nd) and (id(o) in taken or o.base is not None or not o.flags.writeable):
        o = o.copy()
    taken.add(id(o))
    return o


_UFUNC_SAME: dict = {}  # (ufunc, operand dtypes) -> whether its result has the first's dtype


def _ufunc_keeps(uf, dts):
    key = (uf, dts)
    r = _UFUNC_SAME.get(key)
    if r is None:
        try:
            res = uf.resolve_dtypes(tuple(np.dtype(DTYPES[d]) for d in dts) + (None,) * uf.nout)
            r = res[-1] == np.dtype(DTYPES[dts[0]])
        except (TypeError, ValueError):  # no loop for these types: the implementation decides
            r = False
        _UFUNC_SAME[key] = r
    return r


# names the generated code reads (as globals of its own namespace)
_BASE_NS = {"_asarray": np.asarray, "_rc": _getrefcount, "_nd": _nd, "_fr": _fr,
            "_taken": _taken, "_FP": FP_STATE, "_Q": FP_QUIET,
            # NumPy's C functions without their __array_function__ dispatch (plain arrays)
            "_where": getattr(np.where, "_implementation", np.where),
            "_dot": getattr(np.dot, "_implementation", np.dot),
            "_reshape": np.reshape, "_transpose": np.transpose, "_full": np.full,
            "_addr": np.add.reduce, "_maxr": np.maximum.reduce, "_minr": np.minimum.reduce}

# provenance of a value, what the generated code may assume about it:
FRESH = "fresh"  # an ndarray (ndim >= 1) this call allocated: owns its memory, writeable
SCALAR = "scalar"  # a 0-d result of NumPy (a NumPy scalar or a 0-d array) this call made
VIEW = "view"  # an ndarray (ndim >= 1) made by a view function: never an argument or constant
BVIEW = "bview"  # an elided broadcast_in_dim: smaller than its type, only ufuncs read it
CONST = "const"  # a read-only array of the namespace (a `full`'s template): never written,
# never returned (a result that is one is copied: `_fr` copies read-only arrays)


class _Gen:
    """Python source for a plan's graph, and the namespace it runs in."""

    def __init__(self, g):
        self.g = g
        self.ns = dict(_BASE_NS)
        self.keep = []  # the constants the namespace names (their ids stay unique)
        self.kname = {}
        self.name = {}
        self.prov = {}
        outs = [v for v in g.outvars if type(v) is not Lit]
        self.outset = set(outs)
        n = len(g.eqns)
        self.last = {}
        for i, e in enumerate(g.eqns):
            for x in e.inputs:
                if type(x) is not Lit:
                    self.last[x] = i
        for v in outs:
            self.last[v] = n  # alive to the end
        self.params = list(g.invars) + list(g.constvars)
        self.pset = set(self.params)  # arguments and constants: never written, never freed
        for k, v in enumerate(self.params):
            self.name[v] = f"a{k}"
            self.prov[v] = None
        self.users = {}
        for i, e in enumerate(g.eqns):
            for x in e.inputs:
                if type(x) is not Lit:
                    self.users.setdefault(x, []).append(e)

    def const(self, obj, hint="k"):
        key = id(obj)
        nm = self.kname.get(key)
        if nm is None:
            nm = self.kname[key] = f"_{hint}{len(self.keep)}"
            self.keep.append(obj)
            self.ns[nm] = obj
        return nm

    def operands(self, e):
        litdt = next((x.type.dtype for x in reversed(e.inputs) if type(x) is not Lit), None)
        ops, dts = [], []
        for x in e.inputs:
            if type(x) is Lit:
                ops.append(self.const(np.asarray(x.value, DTYPES[litdt] if litdt else None)))
                dts.append(litdt)
            else:
                ops.append(self.name[x])
                dts.append(x.type.dtype)
        return ops, dts

    # --- which equations broadcast their operands themselves (NumPy's rules) ---
    def direct_ufunc(self, e):
        """The ufunc whose call gives `e`'s result bit for bit (its implementation's NumPy
        function, the result already of the operand's dtype), else None."""
        impl = e.prim.impl
        uf = getattr(impl, "ufunc", None)
        if uf is not None:
            if len(e.outvars) != 1 or uf.nout != 1 or uf.nin != len(e.inputs) or e.params:
                return None
            _, dts = self.operands_types(e)
            if None in dts or not _ufunc_keeps(uf, tuple(dts)):
                return None
            return uf
        return _PLAIN_UFUNC.get(e.prim.name) if _plain(e) else None

    def operands_types(self, e):
        litdt = next((x.type.dtype for x in reversed(e.inputs) if type(x) is not Lit), None)
        return None, [litdt if type(x) is Lit else x.type.dtype for x in e.inputs]

    def broadcasts_itself(self, e):
        return e.prim.name == "select" and _plain(e) or self.direct_ufunc(e) is not None

    def plan_broadcasts(self):
        """The broadcast_in_dim results the generated code leaves to NumPy: each passes a view
        of its operand with size-1 axes inserted (its `keep` shape) when every reader is an
        elementwise NumPy call whose operands, so shaped, still broadcast to the reader's result
        shape, and the value is not a result of the graph. {Var: keep shape}."""
        cand = {}
        for e in self.g.eqns:
            if e.prim.name == "full" and _plain(e):
                shape = ()  # a 0-d array of the value and dtype, made once (`_em_full`)
            elif e.prim.name != "broadcast_in_dim" or not _plain(e) or type(e.inputs[0]) is Lit:
                continue
            else:
                shape = None
            v = e.outvars[0]
            if v in self.outset or not self.users.get(v) or \
                    not all(self.broadcasts_itself(u) for u in self.users[v]):
                continue
            cand[v] = _bcast_runtime_shape(e) if shape is None else shape
        changed = True
        while changed:
            changed = False
            for v in list(cand):
                for u in self.users.get(v, ()):
                    shapes = [cand.get(y, y.type.shape) for y in u.inputs if type(y) is not Lit]
                    try:
                        ok = np.broadcast_shapes(*shapes) == tuple(u.outvars[0].type.shape)
                    except ValueError:
                        ok = False
                    if not ok:
                        for y in u.inputs:
                            if type(y) is not Lit and y in cand:
                                del cand[y]
                                changed = True
        return cand

    # --- source ---
    def source(self):
        g = self.g
        self.elided = self.plan_broadcasts()
        eqns = g.eqns
        n = len(eqns)
        chunks = []
        alive = list(self.params)  # values defined so far, in definition order
        entering = None
        for ci, start in enumerate(range(0, max(n, 1), CHUNK)):
            stop = min(start + CHUNK, n)
            body = []
            if entering is None:
                if g.invars:
                    body.append(", ".join(self.name[v] for v in g.invars) + ", = args")
                for k, v in enumerate(g.constvars):
                    body.append(f"{self.name[v]} = getattr(consts[{k}], 'val', consts[{k}])")
            elif entering:
                body.append(", ".join(self.name[v] for v in entering) + ", = S")
                body.append("S.clear()  # only this function's locals hold them now")
            for i in range(start, stop):
                body.extend(self.eqn(i, eqns[i]))
                alive.extend(eqns[i].outvars)
            if stop >= n:
                body.extend(self.results())
            else:
                alive = entering = [v for v in alive if self.last.get(v, -1) >= stop]
                body.append("return [" + ", ".join(self.name[v] for v in entering) + "]")
            chunks.append(f"def _c{ci}(S, args, consts):\n    " + "\n    ".join(body))
        drv = ["def _run(args, consts):", "    t = _FP.set(_Q)  # NumPy's warnings off",
               "    try:", "        S = None"]
        drv += [f"        S = _c{ci}(S, args, consts)" for ci in range(len(chunks))]
        drv += ["        return S", "    finally:", "        _FP.reset(t)"]
        return "\n\n".join(chunks + ["\n".join(drv)]) + "\n"

    def eqn(self, i, e):
        ops, dts = self.operands(e)
        nm = e.prim.name
        outs = e.outvars
        for k, v in enumerate(outs):
            self.name[v] = f"v{i}" + (f"_{k}" if len(outs) > 1 else "")
        res = None
        uf = self.direct_ufunc(e)
        if uf is not None:
            f = self.const(uf, "u")
            t = outs[0].type
            call = f"{f}({', '.join(ops)})"
            res = (call, FRESH if t.shape else SCALAR)
            cands = []
            for x, o in zip(e.inputs, ops):
                if type(x) is Lit or x in self.pset or x in cands or self.last.get(x) != i or \
                        x in self.outset or x.type != t or not t.shape or \
                        self.prov.get(x) not in (FRESH, None):
                    continue
                cands.append(x)
            expr = call
            for x in reversed(cands):
                o = self.name[x]
                test = f"_rc({o}) == {_RC}" if self.prov[x] == FRESH else \
                    f"(type({o}) is _nd and {o}.base is None and {o}.flags.writeable and " \
                    f"_rc({o}) == {_RC})"
                expr = f"({f}({', '.join(ops)}, out={o}) if {test} else {expr})"
            res = (expr, res[1])
        else:
            em = _EMIT.get(nm)
            if em is not None and _plain(e):
                res = em(self, e, ops, dts)
        if res is None:
            f = self.const(e.prim.impl, "f")
            args = ", ".join(ops)
            if e.params:
                p = self.const(dict(e.params), "p")
                args = f"{args}, **{p}" if args else f"**{p}"
            res = (f"{f}({args})", None)
        expr, prov = res
        lines = []
        if not outs:
            lines.append(expr)
        elif len(outs) == 1:
            lines.append(f"{self.name[outs[0]]} = {expr}")
            self.prov[outs[0]] = prov
        else:
            lines.append(", ".join(self.name[v] for v in outs) + f", = {expr}")
            for v in outs:
                self.prov[v] = None
        dead = []
        for x in dict.fromkeys(x for x in e.inputs if type(x) is not Lit):
            if self.last.get(x) == i and x not in self.outset and x not in self.pset:
                dead.append(self.name[x])
        dead += [self.name[v] for v in outs if v not in self.last]
        if dead:
            lines.append("del " + ", ".join(dead))
        return lines

    def results(self):
        g = self.g
        lines, exprs, dyn = [], [], False
        seen = set()
        for k, v in enumerate(g.outvars):
            if type(v) is Lit:
                exprs.append(self.const(v.value, "r"))
                continue
            nm, p = self.name[v], self.prov.get(v)
            if v in seen:
                p = "copy"
            seen.add(v)
            if p == FRESH:
                exprs.append(nm)
            elif p == SCALAR:  # a NumPy scalar (or 0-d array) this call made: an array of its own
                exprs.append(f"_asarray({nm})")
            elif p == VIEW or (p == "copy" and v.type.shape):
                exprs.append(f"{nm}.copy()")
            else:
                exprs.append(None)
                dyn = True
        if not dyn:
            return ["return [" + ", ".join(exprs) + "]"]
        for k, ex in enumerate(exprs):
            if ex is not None:
                lines.append(f"o{k} = {ex}")
        static = [f"o{k}" for k, ex in enumerate(exprs) if ex is not None and ex[:2] != "_r"]
        lines.append(f"T = _taken(args, consts, ({', '.join(static)}{',' if static else ''}))")
        for k, ex in enumerate(exprs):
            if ex is None:
                lines.append(f"o{k} = _fr(_asarray({self.name[g.outvars[k]]}), T)")
        lines.append("return [" + ", ".join(f"o{k}" for k in range(len(exprs))) + "]")
        return lines


def _plain(e):
    """Whether `e`'s primitive is the registry's own (a throwaway `registered` one of the same
    name is run through its implementation)."""
    return REGISTRY.get(e.prim.name) is e.prim


# comparisons and bitwise operations: the implementation is this ufunc called on the operands
_PLAIN_UFUNC = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
                "eq": np.equal, "ne": np.not_equal, "and": np.bitwise_and,
                "or": np.bitwise_or, "xor": np.bitwise_xor}


def _em_select(gen, e, ops, dts):
    return f"_where({', '.join(ops)})", FRESH if e.outvars[0].type.shape else None


def _em_reduce(fn):
    def em(gen, e, ops, dts):
        x = e.inputs[0]
        if type(x) is Lit:
            return None
        axes = repr(tuple(e.params["axes"]))
        prov = FRESH if e.outvars[0].type.shape else SCALAR
        if fn == "_addr":  # np.add.reduce(x, axis=axes, dtype=x.dtype)
            dt = gen.const(np.dtype(DTYPES[dts[0]]), "d")
            return f"_addr({ops[0]}, axis={axes}, dtype={dt})", prov
        return f"{fn}({ops[0]}, axis={axes})", prov
    return em


def _known(gen, x):
    """Whether operand x is certainly a NumPy array or scalar (it has NumPy's methods)."""
    return type(x) is not Lit and gen.prov.get(x) in (FRESH, VIEW, SCALAR, CONST)


def _em_view(fn, param):
    # np.reshape(x, s) / np.transpose(x, p): the array's own method (what NumPy calls)
    def em(gen, e, ops, dts):
        arg = repr(tuple(e.params[param]))
        prov = VIEW if e.outvars[0].type.shape else None
        if _known(gen, e.inputs[0]):
            return f"{ops[0]}.{fn}({arg})", prov
        return f"_{fn}({ops[0]}, {arg})", prov
    return em


def _em_stop_gradient(gen, e, ops, dts):
    return ops[0], None  # the operand itself (an alias: reused only if nothing else holds it)


FULL_TEMPLATE = 4096  # a `full` of at most this many elements is a copy of a template made once


def _em_full(gen, e, ops, dts):
    """`full`: np.full costs ~1 us of Python; when every reader broadcasts its operands itself
    (elementwise NumPy calls, see plan_broadcasts) a read-only 0-d array of the value made once
    (the readers' results have the dtype and shape they would have had), else a read-only
    template made once (small shapes; copied when it is a result of the graph), else np.full.
    The same bits either way."""
    p = e.params
    shape, dt = tuple(p["shape"]), DTYPES[p["dtype"]]
    if gen.elided.get(e.outvars[0]) == ():
        k = np.full((), p["value"], dt)
        k.flags.writeable = False
        return gen.const(k, "k"), BVIEW
    if shape and math.prod(shape) <= FULL_TEMPLATE:
        k = np.full(shape, p["value"], dt)
        k.flags.writeable = False
        if e.outvars[0] in gen.outset:
            return f"{gen.const(k, 'k')}.copy()", FRESH
        return gen.const(k, "k"), CONST  # its readers only read it (no `out=` into it)
    call = f"_full({shape!r}, {gen.const(p['value'], 'k')}, {gen.const(dt, 'd')})"
    return call, FRESH if shape else None


def _em_convert(gen, e, ops, dts):
    if not _known(gen, e.inputs[0]):
        return None  # x.astype needs an array: the implementation decides otherwise
    return (f"{ops[0]}.astype({gen.const(DTYPES[e.params['new_dtype']], 'd')})",
            FRESH if e.outvars[0].type.shape else None)


def _bcast_runtime_shape(e):
    """The shape the generated code gives an elided broadcast_in_dim: its operand's own when
    NumPy's broadcasting aligns it as the equation does (trailing axes), else the operand's shape
    with a size-1 axis for each new one."""
    shape, dims = tuple(e.params["shape"]), tuple(e.params["dims"])
    xs = tuple(e.inputs[0].type.shape)
    if dims == tuple(range(len(shape) - len(xs), len(shape))):
        return xs
    keep = [1] * len(shape)
    for i, d in enumerate(dims):
        keep[d] = xs[i]
    return tuple(keep)


def _em_bcast(gen, e, ops, dts):
    shp = gen.elided.get(e.outvars[0])
    if shp is None:
        return None
    if shp == tuple(e.inputs[0].type.shape):
        return ops[0], BVIEW  # NumPy aligns trailing axes: the operand itself broadcasts
    if _known(gen, e.inputs[0]):
        return f"{ops[0]}.reshape({shp!r})", BVIEW
    return f"_reshape({ops[0]}, {shp!r})", BVIEW


def _dot_recipe(e):
    """How `_dot_impl` computes dot_general `e` for operands of its types: "matmul" (x @ y), or
    np.tensordot's own steps with the shapes computed once: (x's transpose or None, x's reshape
    or None, y's ..., y's ..., the result's reshape or None); None when the implementation
    must run (batch dimensions: np.einsum; a 0-d or literal operand)."""
    x, y = e.inputs
    if type(x) is Lit or type(y) is Lit or not _plain(e):
        return None
    (lc, rc), batch = e.params["contract"], e.params["batch"]
    xs, ys = tuple(x.type.shape), tuple(y.type.shape)
    out = tuple(e.outvars[0].type.shape)
    if batch[0] or not xs or not ys:
        return None
    if len(xs) == 2 and len(ys) == 2 and tuple(lc) == (1,) and tuple(rc) == (0,):
        return "matmul"
    lc, rc = list(lc), list(rc)
    notin = [k for k in range(len(xs)) if k not in lc]
    sa = (math.prod(xs[a] for a in notin), math.prod(xs[a] for a in lc))
    notin_b = [k for k in range(len(ys)) if k not in rc]
    sb = (math.prod(ys[a] for a in rc), math.prod(ys[a] for a in notin_b))

    def side(perm, shp, own):
        if perm == list(range(len(own))):
            return None, (None if own == shp else shp)
        return tuple(perm), shp
    pa, ra = side(notin + lc, sa, xs)
    pb, rb = side(rc + notin_b, sb, ys)
    return pa, ra, pb, rb, (None if (sa[0], sb[1]) == out else out)


def _dot_fn(recipe):
    """The loop's function for a dot_general recipe."""
    if recipe == "matmul":
        return _matmul
    pa, ra, pb, rb, ro = recipe

    def dot(x, y):
        if pa is not None:
            x = x.transpose(pa)
        if ra is not None:
            x = x.reshape(ra)
        if pb is not None:
            y = y.transpose(pb)
        if rb is not None:
            y = y.reshape(rb)
        r = _dot(x, y)
        return r if ro is None else r.reshape(ro)
    return dot


_matmul = np.matmul
_dot = getattr(np.dot, "_implementation", np.dot)


def _em_dot(gen, e, ops, dts):
    recipe = _dot_recipe(e)
    if recipe is None:
        return None
    if recipe == "matmul":
        return f"({ops[0]} @ {ops[1]})", FRESH
    pa, ra, pb, rb, ro = recipe

    def side(o, perm, shp):
        if perm is not None:
            o = f"{o}.transpose({perm!r})"
        return o if shp is None else f"{o}.reshape({shp!r})"
    r = f"_dot({side(ops[0], pa, ra)}, {side(ops[1], pb, rb)})"
    if ro is not None:
        return f"{r}.reshape({ro!r})", VIEW if ro else None
    return r, FRESH


def _loop_fn(e):
    """A function of the operands alone that computes `e` as its implementation does, with what
    depends only on the types worked out once (the loop's dot_general and scatter_add), or
    None: the implementation runs with the parameters."""
    name = e.prim.name
    if name == "dot_general":
        recipe = _dot_recipe(e)
        return None if recipe is None else _dot_fn(recipe)
    if name == "gather":
        return _gather_fn(e)
    if name == "scatter_add":
        r = _scatter_perms(e)
        if r is not None:
            px, pu = r
            return lambda x, idx, upd: _scatter_at(x, idx, upd, px, pu)
    return None


def _scatter_at(x, idx, upd, px, pu):
    """scatter_add's implementation with its np.moveaxis permutations computed once (None: the
    identity): the same copy, views and np.add.at."""
    out = np.array(x, copy=True)
    xm = out if px is None else out.transpose(px)
    um = upd if pu is None else upd.transpose(pu)
    try:
        np.add.at(xm, idx, um)
    except IndexError:
        raise IndexError(_OUT_OF_RANGE) from None
    return out


def _moveaxis_perm(ndim, src, dst):
    """np.moveaxis(a, src, dst) is a.transpose(this); None for the identity."""
    order = [n for n in range(ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return None if order == list(range(ndim)) else tuple(order)


_BASE_NS["_scatter_at"] = _scatter_at


def _scatter_perms(e):
    if any(type(v) is Lit for v in e.inputs) or not _plain(e):
        return None
    x, idx, upd = e.inputs
    a, ni = e.params["axis"], len(idx.type.shape)
    return (_moveaxis_perm(len(x.type.shape), [a], [0]),
            _moveaxis_perm(len(upd.type.shape), list(range(a, a + ni)), list(range(ni))))


def _em_scatter(gen, e, ops, dts):
    r = _scatter_perms(e)
    if r is None:
        return None
    return f"_scatter_at({ops[0]}, {ops[1]}, {ops[2]}, {r[0]!r}, {r[1]!r})", \
        FRESH if e.outvars[0].type.shape else None


def _gather_fn(e):
    """gather as NumPy's indexing `x[:, ..., idx]` (np.take(mode="raise")'s values, shape and
    range rule: an index in [-n, n), a negative one counted from the end; ~0.1 us where np.take
    costs ~0.8), its error the implementation's; None when the implementation must run."""
    if not _plain(e) or any(type(v) is Lit for v in e.inputs):
        return None
    key = (slice(None),) * e.params["axis"]

    def gather(x, idx):
        try:
            return x[key + (idx,)]
        except IndexError:
            raise IndexError(_OUT_OF_RANGE) from None
    return gather


def _em_gather(gen, e, ops, dts):
    fn = _gather_fn(e)
    if fn is None:
        return None
    return f"{gen.const(fn, 'g')}({ops[0]}, {ops[1]})", None  # a view? checked where it matters


_EMIT = {"gather": _em_gather, "scatter_add": _em_scatter, "select": _em_select, "reduce_sum": _em_reduce("_addr"),
         "reduce_max": _em_reduce("_maxr"), "reduce_min": _em_reduce("_minr"),
         "reshape": _em_view("reshape", "shape"), "transpose": _em_view("transpose", "perm"),
         "stop_gradient": _em_stop_gradient,
         "full": _em_full, "convert_element_type": _em_convert, "broadcast_in_dim": _em_bcast,
         "dot_general": _em_dot}


def generate(g):
    """The generated function of graph `g`: fn(args, consts) -> list of fresh results."""
    gen = _Gen(g)
    src = gen.source()
    code = compile(src, f"<adjit plan {g.name}>", "exec")
    exec(code, gen.ns)  # noqa: S102 - source made above from the graph's own equations
    fn = gen.ns["_run"]
    fn.source = src
    return fn
