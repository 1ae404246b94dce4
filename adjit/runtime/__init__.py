"""Native execution: the LLVM engine, the call path, the compiled-code caches, and `run_graph`,
the one way a Graph runs on arrays.

Every user of graphs (Tensor.backward, grad, jit, vmap) ends in `run_graph` for concrete values,
so the backend switch lives in one place: native code when the graph compiles, else the
reference interpreter. The compiled code is kept on the Graph object itself (`g.native`):
callers that reuse a graph (jit branches, cached derivative graphs, the eager backward cache)
pay one attribute read, not a cache lookup by structure.

`ADJIT_DISABLE_JIT=1` (read when a graph first runs) keeps everything in the interpreter.

    >>> import numpy as np
    >>> from adjit.ir import parse_graph
    >>> g = parse_graph("def f(a: f64[2]) -> f64[2]:\\n  b: f64[2] = add a 1.0\\n  return b\\n")
    >>> run_graph(g, [np.array([1.0, 2.0])])
    [array([2., 3.])]
"""
from __future__ import annotations

import math
import os
import threading
import time
import warnings

import numpy as np

from ..codegen.errors import CompileError  # noqa: F401
from .cache import cache_clear, cache_info  # noqa: F401
from .compile import compile_graph  # noqa: F401
# What links native code, imported here, in the importing thread: a promotion links in a
# background thread (background.py), and importing there put these modules' objects in that
# thread's malloc arena (glibc gives each new thread its own), ~1.4 MB resident for the rest of
# the process at W3 (docs/speed.md F9). Any graph that runs hot needs them anyway; ~6 ms of
# `import adjit`.
from . import call, elfload, native  # noqa: F401,E402
# the compile worker's client, imported now rather than by the call that first finds a graph
# hot (no subprocess module: ~0.3 ms here against ~6 ms on that call, tests/test_first_calls.py)
from . import background  # noqa: E402

_CANNOT_COMPILE_WARNED = set()


def jit_enabled() -> bool:
    """False when ADJIT_DISABLE_JIT=1: nothing is compiled, graphs run in the interpreter."""
    return os.environ.get("ADJIT_DISABLE_JIT", "") in ("", "0")


def get_compiled(g):
    """The native code for graph `g` (cached in memory and on disk), or None when JIT is
    disabled. Raises CompileError when `g` cannot be compiled."""
    if not jit_enabled():
        return None
    from .cache import compiled_for
    return compiled_for(g)


# ---------------------------------------------------------------------------------- tiers
# ADJIT_TIER chooses how a graph runs (read when a graph first runs):
#   auto           (default) interpreted (runtime/interpreter.py: the graph on NumPy; see
#                  OPTIMIZE_MIN_WORK) until HOT_CALLS calls or HOT_SECONDS of interpreted
#                  time, then compiled in the background; calls switch when the code is
#                  ready (the call that traced a graph counts as its first). Code already linked in
#                  this process is used at once; a disk-cache entry an earlier process
#                  wrote (its hot mark, cache.was_hot) is asked of the worker by the first
#                  run and linked off the caller's path (LOAD_AT_ONCE_WORK: a big graph links
#                  it on its first run). No call waits for a compile.
#   deterministic  interpreted for exactly HOT_CALLS - 1 calls; the HOT_CALLS-th waits for the
#                  code: which call runs which tier never depends on timing or the cache.
#                  The compiles run in a low-priority worker process (runtime/background.py)
#                  fed IR text; this process only links the object code.
#   native         compiled (or loaded) in this process before the first run returns.
#   interp         never compiled (ADJIT_DISABLE_JIT=1 is the same).
# `jit(f, compile="eager")` / `jitted.compile(*args)` compile a variant before returning
# (`compile_now`) in any mode but interp.
HOT_CALLS = 20
HOT_SECONDS = 1.0
# A graph whose compile is under way keeps to the interpreter's loop (no generated function,
# Plan.hold) for this long after it was submitted: generating costs a call 1-3 ms (W2's 76
# equations) to save ~20 us per call for the ~0.6 s until native code serves; a compile
# still pending after this long (a big graph, a busy machine) lifts the hold.
PENDING_HOLD_SECONDS = 1.0
TIERS = ("native", "auto", "deterministic", "interp")


def _tier_of(tier, disable):
    """The mode for the values of ADJIT_TIER and ADJIT_DISABLE_JIT (None when unset)."""
    if (disable or "") not in ("", "0"):
        return "interp"
    mode = tier or "auto"
    if mode not in TIERS:
        raise ValueError(f"ADJIT_TIER={mode!r}: expected one of {', '.join(TIERS)}")
    return mode


# tier_mode runs on every grad call and graph run: `os.environ.get` costs ~0.5 us a variable
# (Mapping.get, key and value encoding), so the mode is kept with the raw values it came from
# in os.environ's own table (`os._Environ._data`, which every os.environ write updates): an
# unchanged variable is the very same object there, so two dict reads and identity tests find
# the mode; any change (monkeypatch.setenv, a new value equal to the old) decodes again. The
# memo holds the raw values, so an id is never reused while they are compared.
try:
    _ENV_RAW = (os.environ._data, os.environ.encodekey("ADJIT_TIER"),
                os.environ.encodekey("ADJIT_DISABLE_JIT"), os.environ.decodevalue)
except AttributeError:  # pragma: no cover - an os.environ without CPython's table
    _ENV_RAW = None
_TIER_MEMO = (object(), object(), None)  # (raw ADJIT_TIER, raw ADJIT_DISABLE_JIT, mode)


def tier_mode() -> str:
    global _TIER_MEMO
    if _ENV_RAW is None or _ENV_RAW[0] is not getattr(os.environ, "_data", None):
        return _tier_of(os.environ.get("ADJIT_TIER"), os.environ.get("ADJIT_DISABLE_JIT"))
    data, kt, kd, decode = _ENV_RAW
    t, d = data.get(kt), data.get(kd)
    memo = _TIER_MEMO
    if t is memo[0] and d is memo[1]:
        return memo[2]
    mode = _tier_of(None if t is None else decode(t), None if d is None else decode(d))
    _TIER_MEMO = (t, d, mode)
    return mode


def _warn_cannot_compile(g, exc):
    key = g.structure_key()  # once per graph (not per function name: each variant warns)
    if key not in _CANNOT_COMPILE_WARNED:
        _CANNOT_COMPILE_WARNED.add(key)
        warnings.warn(f"{exc}; running it in the interpreter", RuntimeWarning, stacklevel=4)


# A small graph's interpreter tier runs the graph as traced: the passes cost more than they
# save there (W2's 76 equations: optimize ~1 ms, the same Plan calls as the optimised 71), and
# its native code comes from the worker, which optimises the graph itself (background.py).
# A graph whose equations write at least OPTIMIZE_MIN_WORK elements per call is optimised
# before its first interpreted run (no `pow x 1.0` on a million elements); so is every graph
# that stays interpreted (ADJIT_TIER=interp, a compile that failed).
OPTIMIZE_MIN_WORK = 1 << 15


# A disk-cache hit (a structure an earlier process made hot) is linked on the caller's thread
# only for a graph whose equations write at least LOAD_AT_ONCE_WORK elements per call: its
# interpreted call (~2 ns an element: W4's 15M elements, 30 ms) costs more than reading and
# linking the entry here (the passes, the cache key, the link: 5-15 ms, the first of a
# process). A smaller graph's entry is read by the compile worker and linked off the
# caller's path while its calls run interpreted (65 us for W2): linking it on the caller's
# thread made its second call the slowest of all (10 ms, docs/speed.md).
LOAD_AT_ONCE_WORK = 1 << 22


def _work(g):
    """The elements g's equations write per call: the estimate of its array work."""
    n = 0
    prod = math.prod  # (AType.size without the property's Python frame)
    for e in g.eqns:
        for v in e.outvars:
            n += prod(v.type.shape)
    return n


class Interpreted:
    """`g.native` while graph `g` runs on the interpreter tier: counts its calls and time, asks
    for native code when it is hot and puts that code in `g.native` when it is ready.

    Built for nothing: the caches are looked up (ADJIT_TIER=auto), the graph optimised and its
    plan made when a run first needs them, so the call that traced a graph (jit's first call)
    pays none of it."""

    __slots__ = ("src", "_opt", "_plan", "_key", "mode", "calls", "seconds", "job", "final",
                 "checked", "early", "submitted", "_lock", "_work")

    def __init__(self, g, mode, opt=None):
        from ..ir.graph import Graph
        # g's equations in a Graph of their own: g holds this object (g.native), so holding
        # g itself would make a cycle that keeps g's constants alive until a GC pass
        self.src = Graph(g.invars, g.constvars, g.eqns, g.outvars, g.consts, g.name)
        self._opt = opt
        self._plan = None
        self._key = None
        self.mode = mode
        self.calls = 0
        self.seconds = 0.0
        self.job = None
        self.final = mode == "interp"  # never leaves this tier
        self.checked = mode != "auto"  # caches looked up (only auto loads code before hot)
        self.early = False  # its job reads a disk-cache entry (asked for before hot)
        self.submitted = None  # perf_counter() when its compile was asked for
        self._lock = threading.Lock()
        self._work = None  # _work(src), once asked for

    def work(self):
        """The elements the graph's equations write per call (`_work`), computed once."""
        w = self._work
        if w is None:
            w = self._work = _work(self.src)
        return w

    @property
    def opt(self):
        """The optimised graph (adjit's passes: DCE, CSE, folding, x*1, pow x 1.0, ...; made
        when first asked for)."""
        opt = self._opt
        if opt is None:
            from ..ir.passes import optimize
            opt = self._opt = optimize(self.src)
        return opt

    @property
    def plan(self):
        """The interpreter's Plan: of the optimised graph when this graph never leaves the
        tier or its array work is large (OPTIMIZE_MIN_WORK), else of the graph as traced."""
        plan = self._plan
        if plan is None:
            from .interpreter import Plan
            if self.final or self._opt is not None or self.work() >= OPTIMIZE_MIN_WORK:
                plan = Plan(self.opt)
            else:
                plan = Plan(self.src)
            # no generated function for a graph native code will serve soon, until its compile
            # is under way (`_install`) or it stays here (Plan.hold)
            # (nor while the worker reads a disk-cache entry for it: `_check`)
            plan.hold = not self.final and (self.job is None or self.early)
            self._plan = plan
        return plan

    def key(self):
        """The structure key of the graph as traced (what the worker is sent)."""
        k = self._key
        if k is None:
            k = self._key = self.src.structure_key()
        return k

    def run(self, g, args, consts):
        cs = g.consts if consts is None else consts
        if not self.checked:
            cg = self._check(g)
            if cg is not None:
                return cg(args, None if consts is g.consts else consts)
        if not self.final:
            cg = self._promote(g)
            if cg is not None:
                return cg(args, None if consts is g.consts else consts)
        t0 = time.perf_counter()
        outs = self.plan(args, cs)  # fresh arrays
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return outs

    def direct(self, g):
        """jit's entry for a branch whose graph `g` stays on this tier (ADJIT_TIER=interp, a
        graph that cannot compile): fn(args, consts) -> the plan's fresh results, without
        run_graph, the counts and the promotion test that only a graph that may still be
        compiled needs (~0.5 us of a small graph's call). None while `g` may be compiled."""
        if not self.final:
            return None
        plan = self.plan

        def run(args, consts=None):
            fn = plan.fn  # the generated function, once it exists: called without Plan's test
            if fn is None:
                return plan(args, g.consts if consts is None else consts)
            return fn(args, g.consts if consts is None else consts)
        return run

    def _check(self, g):
        """ADJIT_TIER=auto, on the first run: code already linked in this process for this
        structure, or the disk-cache entry of a structure an earlier process made hot (its
        hot mark, cache.was_hot). A graph whose interpreted call costs more than linking the
        entry here (LOAD_AT_ONCE_WORK) links it now; any other asks the worker for it at once
        (it reads the entry: `_install`) and runs interpreted until the code is linked, off
        this thread. None unless native code serves this call. Nothing to find (a cold cache and
        nothing linked in this process: `cache.may_find`): no structure key is made."""
        from . import cache
        self.checked = True
        if not cache.may_find():  # a cold cache, nothing linked here: no key to look up
            return None
        rkey = self.key()
        try:
            cg = cache.lookup(self.src, rkey, disk=False)
            if cg is None and cache.was_hot(rkey):
                if self.work() < LOAD_AT_ONCE_WORK:
                    # the plan stays held (no generated function: the code comes soon)
                    self.early = True
                    return self._install(g, wait=False, release=False)
                t0 = time.perf_counter()
                opt = self.opt
                cg = _from_disk(opt, opt.structure_key())
                if cg is not None:  # linked now, on this call
                    cache._remember(rkey, cg)
                    cg = cg.for_graph(g)
                    cg.compile_seconds = time.perf_counter() - t0
                    g.native = cg
                    return cg
        except CompileError as exc:
            self._cannot(g, exc)
            return None
        if cg is not None:  # already linked in this process
            cg = g.native = cg.for_graph(g)
        return cg

    def _promote(self, g):
        """Native code for `g` if this call may use it (and installs it), else None."""
        if self.mode == "deterministic":
            if self.calls + 1 < HOT_CALLS:
                return None
            return self._install(g, wait=True)
        if self.job is None:
            if self.calls < HOT_CALLS and self.seconds < HOT_SECONDS:
                return None
        return self._install(g, wait=False)

    def _install(self, g, wait, release=True):
        from . import cache
        from .background import compiler
        with self._lock:
            if g.native is not self:
                return g.native if not isinstance(g.native, Interpreted) else None
            job = self.job
            if job is None or job.state == "lost":
                rkey = self.key()
                try:
                    cg = cache.lookup(self.src, rkey, disk=False)
                    if cg is None and self._opt is not None:
                        cg = cache.lookup(self._opt, self._opt.structure_key(), disk=False)
                except CompileError as exc:
                    return self._cannot(g, exc)
                if cg is not None:
                    return self._use(g, cg)
                # the graph as traced: the worker optimises it (off this thread) and keys
                # the disk entry by the optimised structure
                job = self.job = compiler().submit(rkey, self.src, optimize=True)
                self.submitted = time.perf_counter()
            if wait:
                job.done.wait()
                if job.state == "lost":  # the worker died: once more, then in this process
                    job = self.job = compiler().submit(job.skey, self.src, optimize=True)
                    job.done.wait()
            state = job.state
            if state == "pending":
                plan = self._plan
                if plan is not None and plan.hold and release and \
                        time.perf_counter() - self.submitted > PENDING_HOLD_SECONDS:
                    plan.release()  # the code is late: the loop may generate its function
                return None
            if state == "ready":
                return self._use(g, job.cg)
            if state == "error":
                return self._cannot(g, CompileError(f"graph {self.src.name}", job.message))
            if state == "lost":
                return None  # submitted again on the next call
            try:  # "mismatch": the worker could not take the text; compile here, once
                cg = cache.compiled_for(self.opt)
            except CompileError as exc:
                return self._cannot(g, exc)
            cache._remember(self.key(), cg)
            return self._use(g, cg)

    def _use(self, g, cg):
        cg = cg.for_graph(g)
        cg.compile_seconds = 0.0  # compiled (or loaded) off this thread
        g.native = cg
        return cg

    def _cannot(self, g, exc):
        self.final = True
        if self._plan is not None and self._plan.graph is self.src:
            self._plan = None  # interpreted for good: the optimised graph from now on
        elif self._plan is not None:
            self._plan.release()
        _warn_cannot_compile(g, exc)
        return None


def _first(g):
    """What `g.native` becomes on the first concrete run of `g`."""
    mode = tier_mode()
    if mode == "native":
        # adjit's own passes first (DCE, CSE, folding, x*1, pow x 1.0, ...): smaller code, a
        # cache key that ignores what they remove. Constvars and their bindings are kept.
        from ..ir.passes import optimize
        return compile_now(g, optimize(g))
    return Interpreted(g, mode)  # auto: the caches are looked up by its first run


def _from_disk(opt, skey):
    """The disk-cache entry of a structure an earlier process compiled, linked now: cheaper
    than the calls it would interpret until hot (docs/architecture.md, "When a disk-cache
    entry loads"). None when it is not there (another version or CPU) or LLVM cannot start
    here (the background path reports that later)."""
    from . import cache
    try:
        return cache.lookup(opt, skey, disk=True)
    except CompileError:
        raise
    except Exception:  # noqa: BLE001
        return None


def count_traced_call(g, calls=1, seconds=0.0):
    """Count the call that traced `g` (jit's first call of a variant, evaluated while it was
    recorded) as one of its calls, so that native code serves the HOT_CALLS-th call of a
    jitted function, not the one after; `calls` and `seconds`: the calls (and their time)
    another tier served before `g` existed (grad's eager first tier). Nothing is prepared
    now: the caches, the passes and the plan wait for `g`'s next run (Interpreted)."""
    if tier_mode() == "native":
        return  # compiled by the next call, as before tiers
    cg = g.native
    if cg is None:
        cg = g.native = _first(g)
    if type(cg) is Interpreted:
        cg.calls += calls
        cg.seconds += seconds


def compile_now(g, opt=None):
    """Native code for `g` before this returns (memory, disk, or a compile in this process);
    `g.native` set to it. The interpreter tier (never compiled) when it cannot compile."""
    from ..ir.passes import optimize
    if opt is None:
        cur = g.native
        opt = cur.opt if type(cur) is Interpreted else optimize(g)
    if tier_mode() == "interp":  # ADJIT_TIER=interp / ADJIT_DISABLE_JIT=1: nothing compiles
        it = Interpreted(g, "interp", opt)
        g.native = it
        return it
    t0 = time.perf_counter()
    try:
        # a compile already under way in the worker: wait for it
        cur = g.native
        cg = _background_result(opt, cur.job if type(cur) is Interpreted else None)
        if cg is None:
            cg = get_compiled(opt)
    except CompileError as exc:
        _warn_cannot_compile(g, exc)
        cg = None
    if cg is None:
        it = Interpreted(g, "interp", opt)
        g.native = it
        return it
    cg = cg.for_graph(g)
    cg.compile_seconds = time.perf_counter() - t0  # incl. a disk or memory cache hit
    g.native = cg
    return cg


def wait_for_compiles(timeout=None):
    """Wait for the background compiles asked for so far (benchmarks: time the steady state,
    not the switch). A graph switches to its code on its next call."""
    if background._COMPILER is not None:
        background._COMPILER.wait_idle(timeout)


def _background_result(opt, job=None):
    """The worker's code for `opt` if the worker has (or is compiling) it, waiting for it; None
    when no job for that structure exists or it did not succeed. `job`: the job of the graph
    as traced (an Interpreted tier's), waited for first."""
    comp = background._COMPILER
    if job is None or job.state == "lost":
        job = comp.job(opt.structure_key()) if comp is not None else None
    if job is None:
        return None
    job.done.wait()
    return job.cg if job.state == "ready" else None


def run_graph(g, args, consts=None):
    """Evaluate `g` on NumPy arrays: `args` by position, `consts` binds the constvars (None:
    the graph's own bindings). Returns a list of fresh arrays."""
    cg = g.native
    if cg is None:
        cg = g.native = _first(g)
    if type(cg) is Interpreted:
        return cg.run(g, args, consts)
    return cg(args, None if consts is g.consts else consts)


_TRACE_PLANS: "dict" = {}  # id(graph) -> (graph, Plan of its optimised graph): see interpret


def interpret(g, args, consts=None, donate=()):
    """Evaluate `g` on NumPy arrays on the interpreter tier (its optimised graph), never
    compiling and without counting a call of `g`: how a transform computes, while tracing, the
    values of a derived graph it records into an enclosing trace (jit of grad). Native code
    already linked for `g` serves instead. Returns a list of fresh arrays. `donate`: positions
    of `args` (a list handed over) whose arrays the caller no longer holds, which the plan may
    write into and reuse (`Plan.donated`)."""
    cs = g.consts if consts is None else consts
    cg = g.native
    if cg is not None and type(cg) is not Interpreted:
        return cg(args, None if consts is None or consts is g.consts else consts)
    if cg is not None:
        plan = cg.plan
    else:
        hit = _TRACE_PLANS.get(id(g))
        if hit is None or hit[0] is not g:
            from ..ir.passes import optimize
            from .interpreter import Plan
            if len(_TRACE_PLANS) >= 64:
                _TRACE_PLANS.pop(next(iter(_TRACE_PLANS)))
            hit = _TRACE_PLANS[id(g)] = (g, Plan(optimize(g)))
        plan = hit[1]
    if donate:
        return plan.donated(args, cs, donate)  # fresh arrays
    return plan(args, cs)  # fresh arrays


def fresh(outs, args=(), consts=()):
    """`outs` as fresh arrays, as compiled code returns them: the interpreter's results may be
    an argument or constant itself, a view of one (reshape, slice, transpose, a read-only
    broadcast), or one array named by several outputs. Each such output is copied, so every
    output is a writable array of its own that no argument, constant or other output shares."""
    taken = set(map(id, args))
    for c in consts:
        taken.add(id(getattr(c, "val", c)))
    res = []
    for o in outs:
        if isinstance(o, np.ndarray) and (id(o) in taken or o.base is not None or
                                          not o.flags.writeable):
            o = o.copy()
        taken.add(id(o))
        res.append(o)
    return res
