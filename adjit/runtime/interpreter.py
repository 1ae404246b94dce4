"""The interpreter tier: a graph run on NumPy, equation by equation, without `bind`.

`eval_graph` (adjit.ir.graph) runs a graph through `bind`, so that recorded values are recorded
again: that is how transforms compose. On plain arrays that generality costs a dispatch per
equation and keeps every intermediate alive until the end. `Plan` is what the runtime runs
while a graph is not (yet) native code, in two forms that give the same bits:
- the loop (`Plan.loop`, a plan's first calls): the optimised graph's equations as a flat list
  of (implementation, operand slots, parameters, result slots), operands read from a list, each
  value dropped as soon as its last reader has run (so peak memory follows the live set, not
  the whole graph); equations of constants only (`HOISTED`: the identity matrix a graph as
  traced builds by full -> pad -> reshape) run on the first call only, their small results
  kept read-only (`Plan._constants`);
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
else holds: an intermediate (never a constant or an output slot of the graph; an argument
only when the caller handed it over, `Plan.donated`), owning its memory, writable, and with no
other reference (CPython's reference count: no view of it, no other slot or local, no caller
holds it). A ufunc gives the same bits with or without `out=`, except on one element: there
NumPy runs `add`, `fmax` and `fmin` with `out=` the first operand as a reduction, which takes a
NaN's sign from the other operand (`np.add(a, b, out=a)` with a = [nan], b = [-nan] gives -nan,
`np.add(a, b)` nan), so a one-element result is never written into an operand. `Plan.donated` (jit of grad's
first call: the adjoint fed the forward values the trace computed) also keeps the buffers of
dead values for later float elementwise results of their shape, while a later equation may
take them, instead of allocating.
"""
from __future__ import annotations

import math
import sys
import time
from bisect import bisect_left
from operator import itemgetter as _itemgetter

import numpy as np

from .._fp import FP_QUIET, FP_STATE
from ..ir.core import REGISTRY, Lit
from ..ir.prims.gather_dot_control import _OUT_OF_RANGE, set_matmul
from ..ir.types import DTYPES
from . import native


class Plan:
    """A graph's equations prepared for repeated interpretation on arrays."""

    __slots__ = (
        "_geqns",
        "_skipped",
        "due",
        "fn",
        "graph",
        "hoisted",
        "hold",
        "kept",
        "n_const",
        "n_in",
        "name",
        "outs",
        "pool",
        "runs",
        "size",
        "spent",
        "steps",
    )

    def __init__(self, g):
        # made on a new function's second call (W2's 76 equations): one pass over the
        # equations after the one that finds each value's last reader; per-primitive work
        # (the loop's own functions, `out=` candidates) only where the primitive has any
        invars, constvars, geqns = g.invars, g.constvars, g.eqns
        n_in, n_const = len(invars), len(constvars)
        self.n_in, self.n_const = n_in, n_const
        first = n_in + n_const
        slot = {}
        n = 0
        for v in invars:
            slot[v] = n
            n += 1
        for v in constvars:
            slot[v] = n
            n += 1
        last = {}
        for i, e in enumerate(geqns):
            for x in e.inputs:
                if type(x) is not Lit:
                    last[x] = i
        for v in g.outvars:  # a result of the graph never dies
            if type(v) is not Lit:
                last[v] = -1
        refs, outs1, get1 = _slot_tables(n + len(geqns) + 8)
        nrefs = len(refs)
        # `read`: the hoisted constants a per-call step reads (kept though a constant read
        # them last); `skipped`: the indices of the hoisted equations (no step of their own)
        steps, hoisted, known, read, skipped = [], [], set(), set(), []
        lget = last.get
        i = -1
        for e in geqns:
            i += 1
            prim = e.prim
            pname = prim.name
            # an equation of constants only (the identity's full -> pad -> reshape): computed
            # once (`_constants`), its small result kept read-only, not run on every call
            const = False
            if pname in HOISTED:
                for x in e.inputs:
                    if type(x) is not Lit and x not in known:
                        break
                else:
                    const = _plain(e) and len(e.outvars) == 1 and \
                        e.outvars[0].type.size <= FULL_TEMPLATE
                    if const:
                        known.add(e.outvars[0])
            # the operands in one pass: slots, the slots that die here, and whether a literal
            # needs the dtype of the last array operand (as `bind` converts it)
            ins, sl, dl, litdt, lit = [], [], None, None, False
            for x in e.inputs:
                if type(x) is Lit:
                    ins.append(x)
                    lit = True
                    continue
                sx = slot[x]
                ins.append(refs[sx])
                sl.append(sx)
                litdt = x.type.dtype
                if known and not const and x in known:
                    read.add(sx)
                if lget(x) == i:
                    if dl is None:
                        dl = [sx]
                    elif sx not in dl:
                        dl.append(sx)
            # the operands' values as one C call when they are all slots (operator.itemgetter;
            # a 1-slice for one operand: a list), where a list comprehension over `ins` costs
            # ~0.3 us a step
            if lit:
                ldt = DTYPES[litdt] if litdt else None
                ins = tuple((False, np.asarray(x.value, ldt)) if type(x) is Lit else x
                            for x in ins)
                get = None
            else:
                ins = tuple(ins)
                get = _itemgetter(*sl) if len(sl) > 1 else get1[sx] if sl else _no_operands
            if dl is None:
                dead = ()
            else:
                if len(dl) > 1:
                    dl.sort()
                dead = tuple(dl)
            outvars = e.outvars
            if n + len(outvars) > nrefs:
                refs, outs1, get1 = _slot_tables(n + len(outvars) + len(geqns) - i)
                nrefs = len(refs)
            if len(outvars) == 1:
                slot[outvars[0]] = n
                outs = outs1[n]
                n += 1
            else:
                outs = []
                for v in outvars:
                    slot[v] = n
                    outs.append(n)
                    n += 1
                outs = tuple(outs)
            fn = _loop_fn(e) if pname in _LOOP_FNS else None
            impl = prim.impl
            step = (fn or impl, ins, {} if fn else e.params, outs, dead,
                    _reuse(e, ins, dead, first)
                    if dead and getattr(impl, "ufunc", None) is not None else None,
                    get, None, None)
            if const:
                hoisted.append(step[:4])
                skipped.append(i)
                if dead:  # the constants read only by constants are dropped once computed
                    hoisted.append((None, (), {}, dead))
            else:
                steps.append(step)
        self.steps = steps
        self._geqns = geqns  # the equations the steps were made from
        self._skipped = skipped
        self.outs = [(False, o.value) if type(o) is Lit else refs[slot[o]] for o in g.outvars]
        if hoisted:
            # a constant a per-call step or a result reads stays, though a constant read it last
            read.update(s for is_slot, s in self.outs if is_slot)
            self.hoisted = [(f, ins, p, tuple(s for s in outs if s not in read)) if f is None
                            else (f, ins, p, outs) for f, ins, p, outs in hoisted]
        else:
            self.hoisted = hoisted
        self.size = n
        self.kept = None  # [(slot, read-only value)]: the hoisted equations' results, once run
        self.name = g.name
        self.graph = g
        self.pool = None  # what `donated` needs, made on its first call (`_pool_info`)
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

    @property
    def eqns(self):
        """Each step's equation (the graph's, but the hoisted ones)."""
        eqns = self._geqns
        if not self._skipped:
            return eqns
        skip = set(self._skipped)
        return [e for i, e in enumerate(eqns) if i not in skip]

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

    def _env(self, args, consts):
        """The loop's value table: the arguments and constants in their slots."""
        env = [None] * self.size
        env[:self.n_in] = args
        env[self.n_in:self.n_in + self.n_const] = [getattr(c, "val", c) for c in consts]
        return env

    def _fill_kept(self, env):
        """The hoisted constant equations' values (computed once per plan) into env."""
        kept = self.kept
        if kept is None and self.hoisted:
            kept = self.kept = self._constants()
        if kept:
            for s, v in kept:
                env[s] = v

    def loop(self, args, consts):
        """A plan's first calls: the equations run in a loop (no code generated for a graph
        that runs briefly); results as the implementations return them."""
        env = self._env(args, consts)
        token = FP_STATE.set(FP_QUIET)  # NumPy's warnings off (see adjit/_fp.py)
        try:
            self._fill_kept(env)
            _run_steps(env, self.steps)
        finally:
            FP_STATE.reset(token)
        return [np.asarray(env[s]) if is_slot else s for is_slot, s in self.outs]

    def donated(self, args, consts, donate):
        """The graph's results as fresh arrays (see runtime.fresh), run by the loop on `args`, a
        list the caller hands over: the arrays at the positions in `donate` become the loop's
        own (their entries in `args` are cleared; the caller keeps no other reference to them:
        forward values a trace computed, handed to the adjoint that reads them, jit of grad's
        first call). An argument is written into (`out=`) at its last reader like an
        intermediate, and a float elementwise result takes the buffer of a donated or
        intermediate array that has died (`out=`: the same bits) before asking for a new one,
        so the call touches no fresh memory where a buffer of its result's shape is free. A
        buffer is kept for that only while a later equation may take it (so peak memory stays
        that of the donated arrays and the loop's live values). Any other reference to an
        array (a view, a Node, the caller) keeps it from being written or pooled."""
        from . import fresh
        steps, need, unread = self._pool_info()
        env = self._env(args, consts)
        for i in donate:
            args[i] = None
        pool = {}
        for s in donate:
            if s in unread:  # read by nothing: a spare buffer from the start
                _pool_put(pool, env, s, need, 0)
        token = FP_STATE.set(FP_QUIET)  # NumPy's warnings off (see adjit/_fp.py)
        try:
            self._fill_kept(env)
            _run_steps(env, steps, pool, need)
        finally:
            FP_STATE.reset(token)
        pool = None
        outs = [np.asarray(env[s]) if is_slot else s for is_slot, s in self.outs]
        env = None
        return fresh(outs, [a for a in args if a is not None], consts)

    def _pool_info(self):
        """For `donated`: (its steps: the loop's with `_reuse`'s arguments that die there as
        candidates too, the (ufunc, (shape, dtype)) of a float elementwise result a pooled
        buffer may take, and the index of the next step; per (shape, dtype), the indices of
        the steps whose result may take such a buffer, in order; the argument slots nothing
        reads)."""
        info = self.pool
        if info is None:
            keys = [_pool_key(e) for e in self.eqns]
            need = {}  # (shape, dtype) -> the steps whose result may take such a buffer
            for i, k in enumerate(keys):
                if k is not None:
                    need.setdefault(k[1], []).append(i)
            read = {s for st in self.steps for is_slot, s in st[1] if is_slot}
            read.update(s for is_slot, s in self.outs if is_slot)
            first = self.n_in + self.n_const
            steps = [st[:5] + (_reuse(e, st[1], st[4], first, self.n_in), st[6], k, i + 1)
                     for i, (e, st, k) in enumerate(zip(self.eqns, self.steps, keys))]
            info = self.pool = (steps, need, frozenset(range(self.n_in)) - read)
        return info

    def _constants(self):
        """The hoisted equations run once: [(slot, value)] of those a per-call step reads,
        each array made read-only (never written in place: `_into` and `fresh` test the flag;
        a result that is one is copied)."""
        env = {}
        for impl, ins, params, outs in self.hoisted:
            if impl is None:  # slots dead once the constants are made
                for s in outs:
                    env.pop(s, None)
                continue
            vals = [env[s] if is_slot else s for is_slot, s in ins]
            r = impl(*vals, **params) if params else impl(*vals)
            if type(r) is _nd:
                r.flags.writeable = False
            env[outs[0]] = r
        return list(env.items())


# the equations of constants a Plan runs once (`Plan._constants`): no operand but literals and
# other such results, a result of at most FULL_TEMPLATE elements (the identity of jacfwd/jacrev
# bases and ops.eye is full -> pad -> reshape: ~8 us a call on 16 elements)
HOISTED = frozenset({"full", "pad", "reshape", "broadcast_in_dim", "transpose",
                     "convert_element_type", "concatenate", "slice", "eq"})

_getrefcount = sys.getrefcount
_nd = np.ndarray
# the primitives `_loop_fn` has a function of the operands for
_LOOP_FNS = frozenset({"dot_general", "gather", "scatter_add"})


def _no_operands(env):
    """The operands of an equation without any (a step's operand getter)."""
    return ()


# Per slot s, what plans share (made once per process, never changed): (True, s), a step's
# operand of slot s; (s,), a step's results when it has the one; the getter of one operand in
# slot s (a 1-slice of the value table: a list). A plan made on a new function's second call
# allocates none of these (W2: ~200 objects a plan, the cyclic GC's count: its collections
# fall on later calls, less often). Kept for at most SHARED_SLOTS slots (~0.5 MB); a bigger
# plan makes its own beyond that.
SHARED_SLOTS = 2048
_SLOTS: tuple = ([], [], [])


def _slot_tables(n):
    """([(True, s)], [(s,)], [getter of slot s]) for s < n at least."""
    global _SLOTS
    tables = _SLOTS
    have = len(tables[0])
    if have < n:
        end = n if n > SHARED_SLOTS else min(max(n, 2 * have), SHARED_SLOTS)
        new = range(have, end)
        made = (tables[0] + [(True, s) for s in new], tables[1] + [(s,) for s in new],
                tables[2] + [_itemgetter(slice(s, s + 1)) for s in new])
        if n > SHARED_SLOTS:
            return made
        tables = _SLOTS = made  # a new tuple of lists (threads may race: each one is right)
    return tables


def _reuse(e, ins, dead, first_step_slot, n_in=0):
    """(ufunc, ((operand position, expected reference count), ...)) when equation `e` may write
    its result into an operand that dies at it, else None: an intermediate, or (`Plan.donated`)
    an argument (slot < n_in) the caller handed over."""
    if not dead:  # no operand dies here: nothing to write into
        return None
    uf = getattr(e.prim.impl, "ufunc", None)
    if uf is None or len(e.outvars) != 1 or uf.nout != 1 or uf.nin != len(e.inputs):
        return None
    t = e.outvars[0].type
    dt = t.dtype
    if dt != "f32" and dt != "f64":
        return None
    for x in e.inputs:
        if type(x) is not Lit and x.type.dtype != dt:
            return None
    shape = t.shape
    if math.prod(shape) == 1:  # (NumPy's one-element in-place loops: the module doc)
        return None
    cands, taken = [], []
    for k, ((is_slot, s), x) in enumerate(zip(ins, e.inputs)):
        if is_slot and s in dead and (s < n_in or s >= first_step_slot) and \
                s not in taken and x.type.shape == shape:
            taken.append(s)
            # references while it runs: its env slot, each occurrence in the operand list,
            # `_into`'s local name, getrefcount's own argument
            cands.append((k, 3 + ins.count((True, s))))
    return (uf, tuple(cands)) if cands else None


def _pool_key(e):
    """(ufunc, (shape, dtype)) when `e` is a float elementwise ufunc equation whose result may
    be written into a spare buffer of that shape and dtype (`Plan.donated`), else None: the
    same bits as its implementation, as for `_reuse`."""
    uf = getattr(e.prim.impl, "ufunc", None)
    if uf is None or len(e.outvars) != 1 or uf.nout != 1 or uf.nin != len(e.inputs):
        return None
    t = e.outvars[0].type
    if t.dtype not in ("f32", "f64") or not t.shape or \
            any(type(x) is not Lit and x.type.dtype != t.dtype for x in e.inputs):
        return None
    return uf, (tuple(t.shape), np.dtype(DTYPES[t.dtype]))


def _pool_put(pool, env, s, need, j):
    """Slot `s` dies before step `j`: its array joins `pool` (key (shape, dtype) -> spare
    buffers) when it is the loop's alone (owning, writable, C-ordered, no other reference) and
    a step from `j` on may take it (`need`: key -> indices of the steps whose result may take
    such a buffer), no more buffers of a key than such steps remain; the slot is cleared
    either way."""
    b = env[s]
    env[s] = None
    if type(b) is _nd and b.base is None and b.flags.writeable and b.flags.c_contiguous and \
            _getrefcount(b) == _RC:
        k = (b.shape, b.dtype)
        spare = pool.get(k)
        if spare is None:
            spare = pool[k] = []
        steps = need.get(k)
        if steps and len(spare) < len(steps) - bisect_left(steps, j):
            spare.append(b)


def _into(reuse, vals):
    uf, cands = reuse
    for k, n in cands:
        b = vals[k]
        if type(b) is _nd and b.base is None and b.flags.writeable and _getrefcount(b) == n:
            return uf(*vals, out=b)
    return None


def _run_steps(env, steps, pool=None, need=None):
    """Run a plan's steps on the value table `env` (`Plan.loop`, and `Plan.donated` with its
    `pool` of spare buffers and `need`, see `_pool_put`). A step: (implementation, operands
    ((is a slot, slot or literal array), ...), parameters, result slots, the slots that die
    there, `_reuse`'s (ufunc, candidates) or None, a function that reads the operands from
    env or None, the (ufunc, (shape, dtype)) a spare buffer may take or None, the index of
    the next step). The loop's steps take no spare buffer: it never looks at `pool`."""
    for impl, ins, params, outs, dead, reuse, get, spare_key, nxt in steps:
        vals = get(env) if get is not None else [env[s] if is_slot else s for is_slot, s in ins]
        if reuse is None or (r := _into(reuse, vals)) is None:
            if spare_key is not None and (spare := pool.get(spare_key[1])):
                b = spare.pop()
                r = spare_key[0](*vals, out=b)
                b = None
            else:
                r = impl(*vals, **params) if params else impl(*vals)
        vals = None  # no stray reference to a dying operand
        if len(outs) == 1:
            env[outs[0]] = r
        elif outs:  # several results (a guard has none)
            for s, v in zip(outs, r):
                env[s] = v
        r = None  # no stray reference: the next step may reuse its buffer
        if pool is None:
            for s in dead:
                env[s] = None
        else:
            for s in dead:
                if env[s] is not None:
                    _pool_put(pool, env, s, need, nxt)


# ------------------------------------------------------------------ the generated function
# Each value is a local variable; each equation one direct call of its evaluation function: the
# registry's implementation, or the NumPy call that implementation makes, spelled out where the
# plan knows the operands' types (`_Gen.direct_ufunc`, `_EMIT`: ufuncs without the dtype-keeping
# wrapper when the dtype cannot change, np.tensordot's own transpose/reshape/dot sequence with
# the shapes computed once, np.reshape/np.transpose as the array's methods, a broadcast_in_dim
# that only ufuncs read left to NumPy's broadcasting as a view with size-1 axes). `out=` into a
# dying intermediate behind the same ownership test as the loop's (a local's reference count).
# tests/test_interpreter_codegen.py checks the bits against `eval_graph` on every primitive.
# Shortcuts that give the same bits (tests/test_interpreter_fastpaths.py, special values): small
# broadcasts and transposes made C-contiguous for NumPy's trivial loop (`plan_small_layouts`), a
# reshape/transpose chain that is a C-order reshape as one reshape of its root, a product read
# only by one as NumPy's product (`plan_view_chains`), a wrapped integer index behind one range
# test (`_em_index_wrap`), small broadcasts of one operand with the same elements made once
# (`plan_shared_broadcasts`) into a buffer of the plan's pool (`_em_bcast`), the broadcast of
# an IEEE operation of a vector computed on the vector's made broadcast
# (`plan_derived_broadcasts`), a select of an equality mask behind a test of the mask
# (`plan_lazy_selects`), a matrix-vector product as np.dot of the vector (`_dot_recipe`), the
# exact identity product x + sqrt(n - count) as x + 0.0 behind one test that isfinite(x) holds
# everywhere (`plan_exact_identities`).

SMALL_LAYOUT = 4096  # elements: a broadcast or transpose this small is made C-contiguous
VIEW_CHAIN_MAX = 1 << 16  # elements of a reshape/transpose chain the generator follows
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


# np.count_nonzero(a) without axis is this C function behind a Python wrapper (~0.2 us)
try:
    from numpy._core.multiarray import count_nonzero as _count_nonzero
except ImportError:  # pragma: no cover - NumPy 1.x
    _count_nonzero = np.count_nonzero

# names the generated code reads (as globals of its own namespace)
_BASE_NS = {"_asarray": np.asarray, "_rc": _getrefcount, "_nd": _nd, "_fr": _fr,
            "_taken": _taken, "_FP": FP_STATE, "_Q": FP_QUIET,
            # NumPy's C functions without their __array_function__ dispatch (plain arrays)
            "_where": getattr(np.where, "_implementation", np.where),
            "_reshape": np.reshape, "_transpose": np.transpose, "_full": np.full,
            "_addr": np.add.reduce, "_maxr": np.maximum.reduce, "_minr": np.minimum.reduce,
            "_cnz": _count_nonzero, "_empty": np.empty, "_ge": np.greater_equal,
            "_U64": np.dtype(np.uint64), "_U32": np.dtype(np.uint32), "_isfin": np.isfinite}

# provenance of a value, what the generated code may assume about it:
FRESH = "fresh"  # an ndarray (ndim >= 1) this call allocated: owns its memory, writeable
SCALAR = "scalar"  # a 0-d result of NumPy (a NumPy scalar or a 0-d array) this call made
VIEW = "view"  # an ndarray (ndim >= 1) made by a view function: never an argument or constant
BVIEW = "bview"  # an elided broadcast_in_dim: smaller than its type, only ufuncs read it
POOL = "pool"  # a small materialised broadcast in a buffer reused across calls (see
# _em_bcast): an ndarray, never written after it is filled, kept by its `P` local to the end
CONST = "const"  # a read-only array of the namespace (a `full`'s template): never written,
# never returned (a result that is one is copied: `_fr` copies read-only arrays)


class _Gen:
    """Python source for a plan's graph, and the namespace it runs in."""

    def __init__(self, g):
        self.g = g
        self.pools = None
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
        if e.prim.name == "pow":  # NumPy's power squares (0.5: sqrt) for an exponent broadcast
            return False  # along its loop, calls pow for one laid out in memory: other bits
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

    # --- small operands in the layout NumPy's fast loop wants ---
    def plan_small_layouts(self):
        """For values of at most SMALL_LAYOUT elements: NumPy runs an elementwise call whose
        operands all have the result's shape and one contiguous layout through its trivial loop
        (~0.3 us at 256 elements), a call that broadcasts an operand or mixes C and Fortran
        order through its iterator (~0.8 us). So an elided broadcast whose readers are
        elementwise NumPy calls with operands otherwise of the full shape (or single elements)
        is made as an array of its own shape (an empty array, the operand assigned into it,
        ~0.2 us), and a transpose read only by such calls as a C-ordered copy. The same
        values either way. ({broadcast Var: its operand's shape in the result}, {transpose
        Var})."""
        g = self.g
        small = {}
        ccopy = set()
        for e in g.eqns:
            if len(e.outvars) != 1 or not _plain(e) or not e.inputs or \
                    type(e.inputs[0]) is Lit:
                continue
            v = e.outvars[0]
            n = math.prod(v.type.shape)
            if not v.type.shape or n > SMALL_LAYOUT or not self.users.get(v) or \
                    not all(self.direct_ufunc(u) is not None for u in self.users[v]):
                continue
            if e.prim.name == "broadcast_in_dim" and v in self.elided and \
                    math.prod(self.elided[v]) not in (1, n):
                small[v] = self.elided[v]
            elif e.prim.name == "transpose" and len(v.type.shape) >= 2 and n > 1:
                ccopy.add(v)
        changed = True
        while changed:  # a reader must end up with full-shaped (or single-element) operands
            changed = False
            for v in list(small):
                for u in self.users[v]:
                    n = math.prod(u.outvars[0].type.shape)
                    if any(type(a) is not Lit and a in self.elided and a not in small and
                           math.prod(self.elided[a]) not in (1, n) for a in u.inputs):
                        del small[v]
                        changed = True
                        break
        return small, ccopy

    def plan_shared_broadcasts(self, taken):
        """Small broadcasts (`plan_small_layouts`, made as arrays of their own) of one operand
        whose elements lie in the same C order (W5's `1 - t*t` as f64[16,16] rows and as
        f64[16,1,16]): the later ones are a reshape of the first, made once (~0.4 us each), which
        stays alive (and is never written: a view of it exists, see the reference-count test of
        `out=`) until the last of them is made. Equations of groups (`taken`) are not shared.
        {later broadcast Var: the first one}."""
        first, out = {}, {}
        for i, e in enumerate(self.g.eqns):
            if i in taken or e.prim.name != "broadcast_in_dim" or len(e.outvars) != 1:
                continue
            v = e.outvars[0]
            keep = self.small.get(v)
            if keep is None:
                continue
            x = e.inputs[0]
            idx = np.broadcast_to(np.arange(math.prod(keep)).reshape(keep), v.type.shape)
            key = (x, v.type.dtype, idx.ravel().tobytes())
            b = first.get(key)
            if b is None:
                first[key] = v
            else:
                out[v] = b
        return out

    def plan_derived_broadcasts(self, taken):
        """A small broadcast (`plan_small_layouts`) of `q = op(l, literals)`, q read by that
        broadcast alone, op an IEEE operation (add, sub, mul, div, neg: correctly rounded, the
        same bits in any layout), where an earlier small broadcast of l has the same elements
        in the same C order: the broadcast is op on (a reshape of) that one, one call on the
        made array instead of op on the vector plus the filled broadcast (W5: `2 * t`
        broadcast like t). {broadcast Var: (the earlier broadcast, index of q's equation)}."""
        g = self.g
        pos = _defining_index(g)
        first, out = {}, {}
        for i, e in enumerate(g.eqns):
            if i in taken or e.prim.name != "broadcast_in_dim" or len(e.outvars) != 1:
                continue
            v = e.outvars[0]
            keep = self.small.get(v)
            if keep is None or v in self.shared:
                continue
            x = e.inputs[0]
            idx = np.broadcast_to(np.arange(math.prod(keep)).reshape(keep), v.type.shape)
            key = (idx.ravel().tobytes(), v.type.dtype)
            first.setdefault((x,) + key, v)
            q = pos.get(x)
            if q is None or q in taken or x in self.outset or \
                    [u for u in self.users.get(x, ())] != [e]:
                continue
            eq = g.eqns[q]
            uf = self.direct_ufunc(eq)
            vs = [a for a in eq.inputs if type(a) is not Lit]
            if uf not in _EXACT_UFUNCS or len(vs) != 1 or vs[0].type != x.type:
                continue
            b = first.get((vs[0],) + key)
            if b is not None and b not in out:
                out[v] = (self.shared.get(b, b), q)
        return out

    def derived_bcast(self, i, e):
        """The source of derived broadcast `e` (see plan_derived_broadcasts)."""
        v = e.outvars[0]
        b, q = self.derived[v]
        eq = self.g.eqns[q]
        self.name[v] = f"v{i}"
        arg = self.name[b]
        if tuple(b.type.shape) != tuple(v.type.shape):
            arg = f"{arg}.reshape({tuple(v.type.shape)!r})"
        ops, _ = self.operands(eq) if any(type(a) is Lit for a in eq.inputs) else ([], None)
        ops = [arg if type(a) is not Lit else o for a, o in zip(eq.inputs, ops or eq.inputs)]
        self.prov[v] = FRESH
        lines = [f"{self.name[v]} = {self.const(self.direct_ufunc(eq), 'u')}({', '.join(ops)})"]
        dead = [self.name[x] for x in self.also_dead.get(i, ())]
        if v not in self.last:
            dead.append(self.name[v])
        if dead:
            lines.append("del " + ", ".join(dead))
        return lines

    # --- a select whose mask is often all false ---
    def plan_lazy_selects(self):
        """Selects `r = select m x y` whose mask is an equality test (rarely true on floating-point
        data) and whose x is an elementwise NumPy call read by r alone: the
        generated code tests the mask first (`count_nonzero`), and where it holds no true
        element r is y itself and x is never computed; otherwise both run as recorded. Same
        bits (a select of an all-false mask is y, broadcast by r's readers when y is smaller:
        every reader broadcasts its operands itself). The rare branch of a non-smooth point:
        relu's derivative at 0, `select (eq p 0) (mul ct 0.5) 0`. {index of r: index of x}."""
        g = self.g
        pos = _defining_index(g)
        out = {}
        for q, e in enumerate(g.eqns):
            if e.prim.name != "select" or not _plain(e) or any(type(a) is Lit for a in e.inputs):
                continue
            m, x, y = e.inputs
            r = e.outvars[0]
            qx = pos.get(x)
            if qx is None or r in self.outset or x in self.outset or \
                    len(self.users.get(x, ())) != 1 or m.type.dtype != "bool" or \
                    m.type.shape != r.type.shape or y.type.dtype != r.type.dtype:
                continue
            ex = g.eqns[qx]
            qm = pos.get(m)
            if len(ex.outvars) != 1 or self.direct_ufunc(ex) is None or qx in out.values() or \
                    qm is None or g.eqns[qm].prim.name != "eq":
                continue
            ys = tuple(self.elided.get(y, y.type.shape))
            if ys != tuple(r.type.shape):
                ok = bool(self.users.get(r))
                for u in self.users.get(r, ()):
                    if not self.broadcasts_itself(u) or u.prim.name == "select" and \
                            u.inputs[0] is r:
                        ok = False
                        break
                    shapes = [ys if a is r else tuple(self.elided.get(a, a.type.shape))
                              for a in u.inputs if type(a) is not Lit]
                    try:
                        ok = np.broadcast_shapes(*shapes) == tuple(u.outvars[0].type.shape)
                    except ValueError:
                        ok = False
                    if not ok:
                        break
                if not ok:
                    continue
            out[q] = qx
        return out

    def lazy_select(self, q, e, qx):
        """The source of lazy select `q` (see plan_lazy_selects)."""
        eqns = self.g.eqns
        m, x, y = e.inputs
        r = e.outvars[0]
        ex = eqns[qx]
        hold = list(dict.fromkeys(a for a in list(ex.inputs) + [m, y] if type(a) is not Lit
                                  and a is not x and a not in self.pset and
                                  a not in self.outset))
        dead_after = [a for a in hold if self.last.get(a, -1) <= q]
        saved = {a: self.last.get(a) for a in hold}
        for a in hold:
            self.last[a] = len(eqns) + 1
        slow = self.eqn(qx, ex) + self.eqn(q, e)
        for a, v in saved.items():
            if v is None:
                del self.last[a]
            else:
                self.last[a] = v
        ys = tuple(self.elided.get(y, y.type.shape))
        # y itself (never written through r when it is smaller than r) or a fresh array
        self.prov[r] = None if ys == tuple(r.type.shape) else BVIEW
        lines = [f"if not _cnz({self.name[m]}):", f"    {self.name[r]} = {self.name[y]}", "else:"]
        lines += ["    " + ln for ln in slow]
        if dead_after:
            lines.append("del " + ", ".join(self.name[a] for a in dead_after))
        return lines

    # --- the exact product with an identity matrix (passes._exact_identity_product) ---
    def plan_exact_identities(self):
        """`r = add x q` where q is the chain sub(x, x) -> fmin(., 1) -> reduce_sum ->
        broadcast_in_dim -> sub(own, counts) -> sqrt that `passes._dot_identity` emits for
        `x @ eye` (floats), each link read only by the chain. The generated code tests
        `count_nonzero(isfinite(x)) == x.size` first: where every element is finite, each link
        is +0.0 (x - x is +0.0, fmin(+0.0, 1) is +0.0, a sum of +0.0 is +0.0, +0.0 - +0.0 is
        +0.0, sqrt(+0.0) is +0.0), so q is a read-only 0-d +0.0 and r = x + 0.0, the same bits; otherwise the chain
        runs as recorded. {index of r: (indices of the links, in order)}."""
        g = self.g
        pos = _defining_index(g)
        out = {}

        def link(v, name, nin=1):  # the equation defining Var v, a plain `name` read by one
            k = pos.get(v) if type(v) is not Lit else None
            if k is None:
                return None
            e = g.eqns[k]
            if e.prim.name != name or not _plain(e) or len(e.outvars) != 1 or \
                    len(e.inputs) != nin or v in self.outset or v in self.pset:
                return None
            return k, e

        for q, e in enumerate(g.eqns):
            if e.prim.name != "add" or not _plain(e) or len(e.inputs) != 2:
                continue
            x, qv = e.inputs
            r = e.outvars[0]
            if type(x) is Lit or type(qv) is Lit or x.type != r.type or qv.type != r.type or \
                    r.type.dtype not in ("f32", "f64") or not r.type.shape:
                continue
            chain = []
            ok = True
            # q <- sqrt(others) <- sub(own, counts) <- broadcast(count) <- reduce_sum(own)
            # <- fmin(zz, 1) <- sub(x, x)
            t = link(qv, "sqrt")
            ok = t is not None and len(self.users.get(qv, ())) == 1
            if ok:
                chain.append(t[0])
                others = t[1].inputs[0]
                t = link(others, "sub", 2)
                ok = t is not None and len(self.users.get(others, ())) == 1 and \
                    others.type == r.type
            if ok:
                chain.append(t[0])
                own, counts = t[1].inputs
                tb = link(counts, "broadcast_in_dim")
                tm = link(own, "fmin", 2)
                ok = tb is not None and tm is not None and own.type == r.type and \
                    counts.type == r.type and len(self.users.get(counts, ())) == 1 and \
                    len(self.users.get(own, ())) == 2
            if ok:
                count = tb[1].inputs[0]
                tr = link(count, "reduce_sum")
                ok = tr is not None and tr[1].inputs[0] is own and \
                    len(self.users.get(count, ())) == 1 and \
                    count.type.dtype == r.type.dtype
            if ok:
                zz, one = tm[1].inputs
                ok = type(one) is Lit and one.value == 1 and type(zz) is not Lit
            if ok:
                tz = link(zz, "sub", 2)
                ok = tz is not None and tz[1].inputs[0] is x and tz[1].inputs[1] is x and \
                    zz.type == r.type and len(self.users.get(zz, ())) == 1
            if not ok:
                continue
            users_of_own = {id(u) for u in self.users.get(own, ())}
            if users_of_own != {id(tr[1]), id(t[1])}:
                continue
            links = sorted([tz[0], tm[0], tr[0], tb[0], t[0], chain[0]])
            if links[-1] >= q:
                continue
            out[q] = tuple(links)
        return out

    def exact_identity(self, q, e, links):
        """The source of exact-identity add `q` (see plan_exact_identities)."""
        eqns = self.g.eqns
        x, qv = e.inputs
        slow = []
        for k in links:
            slow += self.eqn(k, eqns[k])
        zero = self.const(np.zeros((), DTYPES[e.outvars[0].type.dtype]), "z")
        self.prov[qv] = CONST  # the add never writes into q (a 0-d constant on the fast path)
        # every element finite: a count of the isfinite mask (~0.3 us; `.all()` ~1 us)
        n = math.prod(x.type.shape)
        lines = [f"if _cnz(_isfin({self.name[x]})) == {n}:", f"    {self.name[qv]} = {zero}",
                 "else:"]
        lines += ["    " + ln for ln in slow]
        return lines + self.eqn(q, e)

    # --- reshapes and transposes that only reshape in C order ---
    def plan_view_chains(self):
        """Chains of reshape/transpose equations whose last result is its first operand (the
        root) reshaped in C order: that result is the root's `reshape` (the root itself when
        the shapes agree), and the links between, each read only by the next, are never made.
        A dot_general whose result only such a chain reads is a root as NumPy's product (2-D)
        before its final reshape: W5's Hessian `z = transpose(reshape(transpose(w)))` of the
        product w is the product itself, a fresh array (no copy of a view as the result).
        Pure data movement: the same bits. Returns ({link Var: root}, {final Var: root}, {dot
        result Var: 2-D shape}) for chains of at most VIEW_CHAIN_MAX elements (the index map is
        worked out on an arange of that size)."""
        g = self.g
        info = {}  # Var -> (root Var, root's flat indices in this value's shape, raw root?)
        raw = {}  # dot_general result -> the product's own 2-D shape
        final = {}
        prev = {}  # chain value -> the value it was made from

        def single(x):  # x may be skipped: read only by one chain equation, not a result
            return type(x) is not Lit and x not in self.outset and x not in self.pset and \
                len(self.users.get(x, ())) == 1

        for e in g.eqns:
            nm = e.prim.name
            if nm == "dot_general" and _plain(e):
                rec = _dot_recipe(e)
                v = e.outvars[0]
                if rec is None or rec == "matmul" or rec[4] is None:
                    continue
                x = e.inputs[0]
                lc = e.params["contract"][0]
                sa0 = math.prod(d for a, d in enumerate(x.type.shape) if a not in lc)
                n = math.prod(v.type.shape)
                if not sa0 or n > VIEW_CHAIN_MAX:
                    continue
                vec = _vector_side(x.type.shape, e.inputs[1].type.shape, e.params["contract"])
                raw[v] = (sa0,) if vec == "y" else (n,) if vec == "x" else (sa0, n // sa0)
                info[v] = (v, np.arange(n).reshape(raw[v]).reshape(v.type.shape), True)
                continue
            if nm not in ("reshape", "transpose") or not _plain(e) or type(e.inputs[0]) is Lit:
                continue
            x, v = e.inputs[0], e.outvars[0]
            if x in info and single(x):
                root, idx, rm = info[x]
            elif math.prod(x.type.shape) <= VIEW_CHAIN_MAX:
                root, idx, rm = x, np.arange(math.prod(x.type.shape)).reshape(x.type.shape), False
            else:
                continue
            prev[v] = x
            idx = idx.reshape(tuple(e.params["shape"])) if nm == "reshape" else \
                idx.transpose(tuple(e.params["perm"]))
            info[v] = (root, idx, rm)
            if np.array_equal(idx.ravel(), np.arange(idx.size)):
                final[v] = (root, rm)
        links = {}
        for v, (root, _) in final.items():
            x = prev[v]
            while x is not root:
                links[x] = root
                x = prev[x]
        final = {v: r for v, r in final.items() if v not in links}  # inside a longer chain
        raw = {root: raw[root] for root, rm in final.values() if rm}
        return links, {v: r for v, (r, _) in final.items()}, raw

    def view_final(self, i, e):
        """A chain's last result from its root (see plan_view_chains)."""
        v = e.outvars[0]
        root = self.vfinal[v]
        self.name[v] = f"v{i}"
        rn = self.name[root]
        shape = tuple(v.type.shape)
        own = self.vraw.get(root, tuple(root.type.shape))
        dies = self.last.get(root) == i and root not in self.outset and root not in self.pset
        if shape == own:
            expr = rn
            prov = self.prov.get(root) if dies else None
        else:
            expr = f"{rn}.reshape({shape!r})" if _known(self, root) else \
                f"_reshape({rn}, {shape!r})"
            prov = VIEW if self.prov.get(root) in (FRESH, VIEW) else None
        self.prov[v] = prov
        lines = [f"{self.name[v]} = {expr}"]
        if dies:
            lines.append(f"del {rn}")
        if v not in self.last:
            lines.append(f"del {self.name[v]}")
        return lines

    # --- source ---
    def source(self):
        g = self.g
        self.elided = self.plan_broadcasts()
        self.small, self.ccopy = self.plan_small_layouts()
        self.vlinks, self.vfinal, self.vraw = self.plan_view_chains()
        for i, e in enumerate(g.eqns):  # a chain's root is read at its last equation
            for v in e.outvars:
                if v in self.vfinal:
                    r = self.vfinal[v]
                    self.last[r] = max(self.last.get(r, -1), i)
        lazy = self.plan_lazy_selects()
        deferred = set(lazy.values())
        taken = deferred | set(lazy)
        idents = {}
        for q, links in self.plan_exact_identities().items():
            if q not in taken and not taken.intersection(links) and not any(
                    eqns_k.outvars[0] in self.vlinks or eqns_k.outvars[0] in self.vfinal
                    for eqns_k in (g.eqns[k] for k in links)):
                idents[q] = links
                deferred.update(links)
                taken.update(links)
                taken.add(q)
        for q, qx in lazy.items():  # x's operands are read at the select
            for a in g.eqns[qx].inputs:
                if type(a) is not Lit:
                    self.last[a] = max(self.last.get(a, -1), q)
        self.shared = self.plan_shared_broadcasts(taken)
        self.derived = self.plan_derived_broadcasts(taken)
        skipped = {q for _, q in self.derived.values()}  # made from the broadcast instead
        self.also_dead = {}  # equation index -> Vars read last there though not its operands
        for i, e in enumerate(g.eqns):
            v = e.outvars[0] if len(e.outvars) == 1 else None
            b = self.shared.get(v) or self.derived.get(v, (None,))[0]
            if b is not None:
                self.last[b] = max(self.last.get(b, -1), i)
        for b in set(self.shared.values()) | {b for b, _ in self.derived.values()}:
            k = self.last[b]
            if b not in g.eqns[k].inputs:
                self.also_dead.setdefault(k, []).append(b)
        eqns = g.eqns
        n = len(eqns)
        # pooled broadcast buffers (see _em_bcast) for a graph generated as one function
        self.pools = [] if n <= CHUNK else None
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
                if i in deferred:  # run with its group's last equation
                    continue
                if i in skipped:  # a vector op computed on its broadcast (derived)
                    dead = [self.name[x] for x in dict.fromkeys(
                        x for x in eqns[i].inputs if type(x) is not Lit)
                        if self.last.get(x) == i and x not in self.outset and
                        x not in self.pset]
                    if dead:
                        body.append("del " + ", ".join(dead))
                    continue
                outs = eqns[i].outvars
                if len(outs) == 1 and outs[0] in self.vlinks:  # never made (a chain's link)
                    continue
                if len(outs) == 1 and outs[0] in self.vfinal:
                    body.extend(self.view_final(i, eqns[i]))
                elif len(outs) == 1 and outs[0] in self.derived:
                    body.extend(self.derived_bcast(i, eqns[i]))
                elif i in lazy or i in idents:
                    pools, self.pools = self.pools, None  # in a branch: no pooled buffer
                    if i in lazy:
                        body.extend(self.lazy_select(i, eqns[i], lazy[i]))
                    else:
                        body.extend(self.exact_identity(i, eqns[i], idents[i]))
                    self.pools = pools
                else:
                    body.extend(self.eqn(i, eqns[i]))
                alive.extend(eqns[i].outvars)
            if stop >= n:
                body.extend(self.results())
            else:
                alive = entering = [v for v in alive if self.last.get(v, -1) >= stop]
                body.append("return [" + ", ".join(self.name[v] for v in entering) + "]")
            chunks.append(body)
        if len(chunks) == 1:  # the one chunk is the function (no call of it, ~0.05 us)
            return ("def _run(args, consts):\n    fp_ = _FP.set(_Q)  # NumPy's warnings off\n"
                    "    try:\n        " + "\n        ".join(chunks[0]) +
                    "\n    finally:\n        _FP.reset(fp_)\n")
        chunks = [f"def _c{ci}(S, args, consts):\n    " + "\n    ".join(body)
                  for ci, body in enumerate(chunks)]
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
                        x in self.outset or x.type != t or math.prod(t.shape) <= 1 or \
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
            if type(expr) is tuple:  # an array made, then filled (see _em_bcast)
                expr, fill = expr
                lines.append(f"{self.name[outs[0]]} = {expr}")
                lines.append(f"{self.name[outs[0]]}[...] = {fill}")
            else:
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
        dead += [self.name[x] for x in self.also_dead.get(i, ())]
        if dead:
            lines.append("del " + ", ".join(dead))
        return lines

    def results(self):
        g = self.g
        lines, exprs, dyn = [], [], False
        for keep, pool in self.pools or ():  # nothing else holds it: the next call's buffer
            lines.append(f"if _rc({keep}) == {_RC}:")
            lines.append(f"    {pool}.append({keep})")
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
            return lines + ["return [" + ", ".join(exprs) + "]"]
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


# correctly rounded IEEE operations: the same bits whatever the layout or loop NumPy takes
_EXACT_UFUNCS = frozenset({np.add, np.subtract, np.multiply, np.true_divide, np.negative})

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
    return type(x) is not Lit and gen.prov.get(x) in (FRESH, VIEW, SCALAR, CONST, POOL)


def _em_view(fn, param):
    # np.reshape(x, s) / np.transpose(x, p): the array's own method (what NumPy calls)
    def em(gen, e, ops, dts):
        arg = repr(tuple(e.params[param]))
        prov = VIEW if e.outvars[0].type.shape else None
        # a 2-D array's transpose (1, 0) is its `.T` (~0.1 us less than the method call)
        meth = "T" if fn == "transpose" and arg == "(1, 0)" else f"{fn}({arg})"
        if _known(gen, e.inputs[0]):
            expr = f"{ops[0]}.{meth}"
        else:  # an argument or constant: an ndarray's method, else NumPy's function
            expr = f"({ops[0]}.{meth} if type({ops[0]}) is _nd else _{fn}({ops[0]}, {arg}))"
        if e.outvars[0] in gen.ccopy:  # a C-ordered copy (see _Gen.plan_small_layouts)
            return f"{expr}.copy()", FRESH
        return expr, prov
    return em


def _em_index_wrap(gen, e, ops, dts):
    """index_wrap: where every index is in [0, n) (labels, an arange: the common case) the
    result is the index itself behind one test, `count_nonzero(i as unsigned >= n) == 0` (a
    negative index is a huge unsigned one); otherwise the implementation. An alias of the
    operand (as stop_gradient's): reused only if nothing else holds it."""
    i, n, _ = e.inputs
    if type(i) is Lit or type(n.value) is not int or n.value < 0 or \
            not e.outvars[0].type.shape:
        return None
    u = "_U64" if dts[0] == "i64" else "_U32"
    kn = gen.const(np.asarray(n.value, np.uint64 if u == "_U64" else np.uint32), "n")
    f = gen.const(e.prim.impl, "f")
    return (f"({ops[0]} if type({ops[0]}) is _nd and not _cnz(_ge({ops[0]}.view({u}), {kn})) "
            f"else {f}({', '.join(ops)}))"), None


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
    v = e.outvars[0]
    shp = gen.elided.get(v)
    if shp is None:
        return None
    b = gen.shared.get(v)
    if b is not None:  # a reshape of an earlier broadcast (see _Gen.plan_shared_broadcasts)
        return f"{gen.name[b]}.reshape({tuple(v.type.shape)!r})", VIEW
    if v in gen.small:  # an array of its own: made empty, the operand assigned into it
        dt = gen.const(np.dtype(DTYPES[v.type.dtype]), "d")
        if shp == tuple(e.inputs[0].type.shape):
            fill = ops[0]  # NumPy aligns trailing axes
        elif _known(gen, e.inputs[0]):
            fill = f"{ops[0]}.reshape({shp!r})"
        else:
            fill = f"_reshape({ops[0]}, {shp!r})"
        make = f"_empty({tuple(v.type.shape)!r}, {dt})"
        if gen.pools is None:
            return (make, fill), FRESH
        # a buffer of the plan's pool (np.empty costs ~0.15 us of the ~0.35 a made broadcast
        # costs), held by a `P` local to the end of the call and given back to the pool only
        # if nothing else holds it then (no view, result or alias of it): never written by
        # `out=` (its reference count is never the one the test wants), never shared by two
        # calls running at once (each pops its own or makes one)
        pool = gen.const([], "pool")
        keep = f"P{len(gen.pools)}"
        gen.pools.append((keep, pool))
        return (f"({keep} := ({pool}.pop() if {pool} else {make}))", fill), POOL
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
    if len(xs) == 2 and len(ys) == 2 and len(lc) == 1 and len(rc) == 1:
        # a matrix product (a forward's, an adjoint's transposed ones): the general steps
        # below give x's or y's 2-D transpose, no reshape (what _dot_recipe_general makes)
        c, d = lc[0], rc[0]
        if (c, d) == (1, 0):
            return "matmul"
        if c in (0, 1) and d in (0, 1) and out == (xs[1 - c], ys[1 - d]):
            return (None if c == 1 else (1, 0)), None, (None if d == 0 else (1, 0)), None, None
    return _dot_recipe_general(xs, ys, lc, rc, out)


def _dot_recipe_general(xs, ys, lc, rc, out):
    """_dot_recipe's steps for operand shapes xs, ys contracted on axes lc, rc (no batch)."""
    lc, rc = list(lc), list(rc)
    notin = [k for k in range(len(xs)) if k not in lc]
    sa = (math.prod(xs[a] for a in notin), math.prod(xs[a] for a in lc))
    notin_b = [k for k in range(len(ys)) if k not in rc]
    sb = (math.prod(ys[a] for a in rc), math.prod(ys[a] for a in notin_b))

    def side(perm, shp, own):
        moved = tuple(own[a] for a in perm)
        if perm == list(range(len(own))):
            return None, (None if own == shp else shp)
        return tuple(perm), (None if moved == shp else shp)  # a 2-D transpose: no reshape
    pa, ra = side(notin + lc, sa, xs)
    pb, rb = side(rc + notin_b, sb, ys)
    raw = (sa[0], sb[1])
    # a vector contracted whole stays a vector: np.dot of a matrix and a vector is the same
    # BLAS gemv call as of the matrix and the vector as a column (or row), without the reshapes
    vec = _vector_side(xs, ys, (lc, rc))
    if vec == "y":
        pb, rb, raw = None, None, (sa[0],)
    elif vec == "x":
        pa, ra, raw = None, None, (sb[1],)
    return pa, ra, pb, rb, (None if raw == out else out)


def _vector_side(xs, ys, contract):
    """Which operand of a dot_general (no batch axes) is a vector contracted whole against a
    higher-rank operand ("y" or "x"), so np.dot takes it as it is; None otherwise (an outer
    product contracts nothing: its vector is not contracted)."""
    lc, rc = contract
    if len(ys) == 1 and len(xs) > 1 and tuple(rc) == (0,):
        return "y"
    if len(xs) == 1 and len(ys) > 1 and tuple(lc) == (0,):
        return "x"
    return None


def _defining_index(g):
    """{Var: the index of the equation in g that defines it}."""
    return {v: q for q, e in enumerate(g.eqns) for v in e.outvars}


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


_np_dot = getattr(np.dot, "_implementation", np.dot)
_native_matmul = native.matmul
_BLAS_SMALL = native.BLAS_SMALL


def _matmul(x, y):
    """x @ y; a 2-D float product that OpenBLAS would run on its own pool goes through adjit's
    GEMM helper as native code's does (runtime/native.py `matmul`: no second OpenBLAS packing
    buffer kept resident, the native tier's bits)."""
    if x.ndim == 2 and y.ndim == 2 and x.shape[0] * x.shape[1] * y.shape[1] > _BLAS_SMALL:
        r = _native_matmul(x, y)
        if r is not None:
            return r
    return x @ y


def _dot(x, y):
    """np.dot (without its dispatch), 2-D products as `_matmul`."""
    if x.ndim == 2 and y.ndim == 2 and x.shape[0] * x.shape[1] * y.shape[1] > _BLAS_SMALL:
        r = _native_matmul(x, y)
        if r is not None:
            return r
    return _np_dot(x, y)


_BASE_NS.update(_dot=_dot, _mm=_matmul, _npdot=_np_dot)  # the generated code's products


def _madds(e):
    """The multiply-adds of dot_general equation e: its result's elements times the size of
    the contracted dimensions."""
    n = 1
    for d in e.outvars[0].type.shape:
        n *= d
    xs = e.inputs[0].type.shape
    for a in e.params["contract"][0]:
        n *= xs[a]
    return n
set_matmul(_matmul)  # and the registry's implementation (traces, eval_graph, the eager tiers)


def _first_products():
    """NumPy's first product of each kind in a process costs 15-70 us (its matmul loop's first
    use, the BLAS library's lazy symbol binding and buffer): ~0.1-0.2 ms of a process's first
    trace, paid by whichever call of the user's first function runs a product first. A
    per-process cost: paid once here, at import (~0.15 ms, ~0.6 MB), with tiny products of
    every kind a trace or a tier runs (float32 and float64: matrix x matrix, a transposed
    product (BLAS's syrk), matrix x vector)."""
    for dt in (np.float32, np.float64):
        a = np.ones((2, 3), dt)
        a @ a.T, a.T @ a, a @ a[0]


_first_products()


def _em_dot(gen, e, ops, dts):
    recipe = _dot_recipe(e)
    if recipe is None:
        return None
    # a product no bigger than BLAS_SMALL multiply-adds never takes the GEMM helper (`_matmul`,
    # `_dot`): the generated code calls NumPy's directly (no wrapper call)
    small = _madds(e) <= _BLAS_SMALL
    if recipe == "matmul":
        return (f"({ops[0]} @ {ops[1]})" if small else f"_mm({ops[0]}, {ops[1]})"), FRESH
    pa, ra, pb, rb, ro = recipe
    if e.outvars[0] in gen.vraw:  # a view chain's root: the product as NumPy makes it
        ro = None

    def side(o, perm, shp):
        if perm == (1, 0):
            o = f"{o}.T"
        elif perm is not None:
            o = f"{o}.transpose({perm!r})"
        return o if shp is None else f"{o}.reshape({shp!r})"
    r = f"{'_npdot' if small else '_dot'}({side(ops[0], pa, ra)}, {side(ops[1], pb, rb)})"
    if ro is not None:
        return f"{r}.reshape({ro!r})", VIEW if ro else None
    return r, FRESH


def _loop_fn(e):
    """A function of the operands alone that computes `e` as its implementation does, with what
    depends only on the types worked out once (the loop's dot_general and scatter_add), or
    None: the implementation runs with the parameters."""
    name = e.prim.name
    if name == "gather":
        return _gather_fn(e)
    if name != "dot_general" and name != "scatter_add":
        return None
    # the function depends on the parameters and operand types alone: made once per process
    # for each (a recipe costs 2-4 us: a plan is made on a new function's second call)
    if any(type(x) is Lit for x in e.inputs) or not _plain(e):
        return None
    try:
        key = (name, tuple(e.params.items()), tuple(x.type.shape for x in e.inputs),
               e.outvars[0].type.shape)
        fn = _LOOP_FN_MEMO.get(key, False)
    except TypeError:  # an unhashable parameter
        key, fn = None, False
    if fn is not False:
        return fn
    if name == "dot_general":
        recipe = _dot_recipe(e)
        fn = None if recipe is None else _dot_fn(recipe)
    else:
        r = _scatter_perms(e)
        fn = None
        if r is not None:
            px, pu = r

            def fn(x, idx, upd):
                return _scatter_at(x, idx, upd, px, pu)
    if key is not None:
        if len(_LOOP_FN_MEMO) >= 4096:
            _LOOP_FN_MEMO.clear()
        _LOOP_FN_MEMO[key] = fn
    return fn


_LOOP_FN_MEMO: dict = {}  # (name, params, operand shapes, result shape) -> `_loop_fn`'s result


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
         "stop_gradient": _em_stop_gradient, "index_wrap": _em_index_wrap,
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
