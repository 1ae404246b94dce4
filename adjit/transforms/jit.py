"""adjit.jit: trace once per argument signature, replay the graph after that.

The cache is keyed by (argument structure, shapes and dtypes, static arguments). Below each key
is the list of traced branches: a call replays a branch with `run_graph`; the graph's guards
(recorded where Python looked at a traced value: if/while on a comparison, float(), int(), the
size of a boolean mask) re-check the new values. A failed guard (GuardFailed) moves on to the
next branch, and when none fits the function is traced again and the new branch added - never
a silently wrong answer.

Arrays the function reads without being passed them - its closure cells, the module globals
its code names, the array attributes of `self` for a method, and the arrays in containers held
there (see live.py) - are inputs too, gathered on every call and keyed by shape and dtype: a
call sees their current values (a new shape traces again). Every array object is one traced
value however it is reached (trace_call's share=True), and where one object is reached twice
is part of the key, so identity in the trace is NumPy's. Arrays it cannot reach (attributes of
other objects, globals of helper functions) are constants of the trace, bound by reference; a
constant computed during the trace from such data is frozen, and jit warns once per trace.

Python scalars in those cells and globals are keyed by value (floats by bit pattern); a float
slot that shows a second value becomes a scalar input (`_promote`), so a decaying learning
rate read as a global traces twice, not on every call. The Python floats inside containers
held there (`cfg["lr"]`) are scalar inputs from the first trace (a schedule in a dict traces
once); the containers' structure and other leaves are keyed.

Called on traced values of an enclosing transform (or inside one), jit inlines: the function
simply runs on the traced values, so the enclosing trace records it.
"""
from __future__ import annotations

import functools
import itertools
import os
import struct
import threading
import types
import warnings
import weakref

import numpy as np

from ..ir.core import EAGER, STATE, GuardFailed, Lit, Node
from ..ir.graph import extract
from ..ir.types import float_bits
from ..tracer import pytree
from ..tracer.grad_fn import tag_outputs
from ..tracer.frozen import FOUND
from ..tracer.trace_args import (_at, _live, arg_name, fname, leaf_info, out_nodes,
                                 positional_params, tensor_cls, to_user, trace_call)
from .autodiff import run_graph
from .jitargs import MAX_LEAVES, aliases, assembler, flattener, leaf_kind
from .live import (_EMPTY, NO_ARRAYS, Slots, is_tree, random_sources, random_state,
                   scalar_key, self_arrays, slot_key, tree_build, tree_changed, tree_flat,
                   tree_pairs, tree_snapshot, tree_write_back, kkey, _kread)
from ..runtime import (Interpreted, compile_now, count_traced_call, fresh,
                       run_graph as _run_concrete)
from .._frames import is_adjit_file, user_stacklevel
from .._traceback import filter_traceback

MAX_BRANCHES = 32
MAX_STRUCTURES = 8  # generated argument flatteners kept per function
COMPILE_MODES = ("auto", "eager")
RETRACE_WARN = 8  # warn (once per function) when it has been traced this many times
# variants (cache keys: shapes, dtypes, static values, scalar globals) kept per function; the
# least recently used is dropped beyond this (and traced again if it comes back)
MAX_VARIANTS = 128


class _Branch:
    """One traced variant: its graph, how its results are assembled, its hot-path entry.

    The call that traced it (the most expensive of all) returns the values computed while
    recording and extracts no graph: the branch keeps the recorded output Nodes, trace and
    inputs (`pend`, their values dropped) and the graph is extracted where it is first needed,
    by the variant's next call (`graph`)."""
    __slots__ = ("_g", "pend", "kinds", "otd", "pyvals", "assemble", "direct", "ndims",
                 "replays", "__weakref__")

    def __init__(self, graph, kinds, otd, pyvals, ndims, pend=None):
        self._g, self.pend, self.kinds, self.otd, self.pyvals = graph, pend, kinds, otd, pyvals
        self.ndims = ndims
        self.replays = 0  # calls of the general path it served
        # the compiled code's generated entry, once it exists (or the interpreter's plan of a
        # graph that is never compiled: Interpreted.direct)
        self.direct = None
        # the result pytree from the outputs in one generated expression (jitargs.py), made
        # by the branch's second replay (_LazyAssembler): not by the call that traced it
        self.assemble = _LazyAssembler(self)

    @property
    def graph(self):
        g = self._g
        if g is None:
            with _PEND_LOCK:  # (one graph per branch, whichever thread gets here first)
                g = self._g
                if g is None:
                    nodes, trace, inputs, name = self.pend
                    g = extract(nodes, trace, inputs=inputs, name=name)
                    count_traced_call(g)  # the tracing call was this variant's first call
                    self._g, self.pend = g, None
        return g


_PEND_LOCK = threading.Lock()


class _LazyAssembler:
    """A branch's `assemble` until its generated assembler exists: the first replay assembles
    in general (generating and compiling the assembler costs about as much as an interpreted
    call of a small step; the tracing call, the most expensive of all, pays none of it); the
    second makes the assembler and puts it in the branch's `assemble`. It holds the branch
    weakly, and the assembler (or the general fallback) holds no reference to the branch: no
    cycle keeps code alive."""
    __slots__ = ("br", "used")

    def __init__(self, br):
        self.br = weakref.ref(br)
        self.used = False

    def __call__(self, outs):
        br = self.br()
        if not self.used:
            self.used = True
            return _unflatten(br.otd, br.kinds, br.pyvals, outs)
        asm = br.assemble = assembler(br.otd, br.kinds, br.pyvals, br.ndims) or \
            functools.partial(_unflatten, br.otd, br.kinds, br.pyvals)
        return asm(outs)


_MISS = object()
_nd = np.ndarray
_TAGS = itertools.count()  # a fresh tag per generated flattener: keys of two never collide


_get_ident = threading.get_ident
_COMPILING_LOCK = threading.Lock()


class _compiling:
    """`with _compiling(jitted):` marks this thread as inside `jitted.compile()` (nested calls
    count), so that the branch serving this thread's call compiles now."""
    __slots__ = ("j", "tid")

    def __init__(self, j):
        self.j, self.tid = j, _get_ident()

    def __enter__(self):
        with _COMPILING_LOCK:
            d = self.j._compiling
            d[self.tid] = d.get(self.tid, 0) + 1

    def __exit__(self, *exc):
        with _COMPILING_LOCK:
            d = self.j._compiling
            if d[self.tid] == 1:
                del d[self.tid]
            else:
                d[self.tid] -= 1


class Jitted:
    """The callable jit(f) returns. `traces` counts how often f was traced."""

    def __init__(self, f, static_argnums=(), static_argnames=(), compile="auto"):
        if compile not in COMPILE_MODES:
            raise ValueError(f"jit: compile={compile!r}: expected one of "
                             f"{', '.join(map(repr, COMPILE_MODES))}")
        functools.update_wrapper(self, f)
        self.f = f
        # "eager": every traced branch is native code before the call that traced it returns
        # (no interpreter tier; ADJIT_TIER=interp / ADJIT_DISABLE_JIT=1 still compile nothing)
        self.eager = compile == "eager"
        # thread id -> depth inside compile() on that thread: only that thread's call compiles
        # its branch at once (another thread calling meanwhile keeps the usual tiers)
        self._compiling = {}
        self.static_argnums = ((static_argnums,) if isinstance(static_argnums, int)
                               else tuple(static_argnums))
        self.static_argnames = ((static_argnames,) if isinstance(static_argnames, str)
                                else tuple(static_argnames))
        self._params = positional_params(f)
        # as JAX: a static argument is static however it is passed, by position or by keyword
        self._static_names = set(self.static_argnames) | {
            self._params[i] for i in self.static_argnums if 0 <= i < len(self._params)}
        self._static_pos = set(self.static_argnums) | {
            i for i, p in enumerate(self._params) if p in self.static_argnames}
        # jit(obj.method): the function, with obj as its `self` (whose arrays are inputs)
        self._self = f.__self__ if isinstance(f, types.MethodType) else _NO_SELF
        self._func = f.__func__ if isinstance(f, types.MethodType) else f
        call = getattr(type(f), "__call__", None)
        if self._self is _NO_SELF and not isinstance(f, (types.FunctionType, functools.partial)) \
                and isinstance(call, types.FunctionType) and \
                not is_adjit_file(call.__code__.co_filename):
            # jit(obj) of a user's class defining __call__: as jit(obj.__call__), a method
            self._self, self._func = f, call
        self._slots = Slots(self._func, static_key)
        self._nslots = self._slots.n
        # float slots (a global `lr`): the first value's bits by slot (Slots.rid); a slot that
        # shows a second value is promoted to a scalar input (as a Python float argument is),
        # unless a trace with it promoted failed (`_lnever`: it stays keyed by value)
        self._lfirst, self._lpromoted, self._lnever = {}, set(), set()
        # containers the function changed while jit traced it (slot rids; self's attribute
        # names): their contents are its side effect, not keyed (see live.slot_key)
        self._lwritten, self._wself = set(), set()
        self.cache = {}
        # least recently used variant first out (MAX_VARIANTS): the clock of each branch
        # list's last use (by id), stamped when the list served differs from the last one
        self._clock, self._mru, self._stamps = 0, None, {}
        self.fast = {}
        self._flats = []  # generated flatteners (jitargs.py), most recently used first
        self._flat_sigs = {}  # argument structure -> its flattener (or None: it has none)
        self.traces = 0
        self.hits = 0
        self.retraces = 0
        self._last_spec = None
        self._warned = False
        self._evicted = False

    def __get__(self, obj, objtype=None):  # jit on methods
        return self if obj is None else _Method(self, obj)

    def _inline(self, args, kwargs):
        if len(STATE.stack) > 1:
            return True
        for lf in pytree.leaves((args, kwargs)):
            n = getattr(lf, "_n", None)
            if isinstance(n, Node) and n.trace.active and n.trace.level > 0:
                return True
        return False

    def __call__(self, *args, **kwargs):
        if self._self is not _NO_SELF:
            return self.call_method(self._self, args, kwargs, shift=1)
        # Hot path: nothing being traced, no keywords, an argument structure seen before
        # (positional arrays, tuples, lists, dicts, namedtuples, None; jitargs.py): its
        # generated flattener checks the structure and returns the shape/dtype key and the
        # leaves. The key maps to the same branch list as the general key.
        if not kwargs and len(STATE.stack) == 1:
            for fl in self._flats:
                hit = fl(args)
                if hit is None:
                    continue
                if fl is not self._flats[0]:  # a new list: other threads may iterate
                    self._flats = [fl] + [f for f in self._flats if f is not fl]
                fkey, vals = hit
                if self._nslots:  # the live slots' arrays (live.py: generated per plan)
                    hit = self._slots.read(vals)
                    if hit is None:
                        break
                    fkey += hit[0]
                    vals = hit[1]
                branches = self.fast.get(fkey)
                if branches is None:
                    break
                if branches is not self._mru:
                    self._touch(branches)
                direct = branches[0].direct if branches else None
                if direct is not None:
                    # the most recent branch's generated entry: checks, one foreign call
                    try:
                        outs = direct(vals, None)
                    except GuardFailed:
                        pass
                    else:
                        self.hits += 1
                        return branches[0].assemble(outs)
                hit = self._replay(branches, vals, _run_concrete)
                if hit is not None:
                    br, outs = hit
                    nat = br.graph.native
                    # native code's generated entry, or the plan of a graph never compiled
                    br.direct = nat.direct(br.graph) if type(nat) is Interpreted else \
                        getattr(nat, "_fast", None)
                    return br.assemble(outs)
                break
        try:
            return self._call(args, kwargs)
        except Exception as exc:
            if os.environ.get("ADJIT_TRACEBACK") == "full":
                raise
            raise exc.with_traceback(filter_traceback(exc.__traceback__))

    def call_method(self, obj, args, kwargs, shift=0):
        """f(obj, *args): obj's array attributes are inputs; obj is keyed by its type and its
        other attributes, not by identity."""
        try:
            return self._call((obj,) + tuple(args), kwargs, has_self=True, shift=shift)
        except Exception as exc:
            if os.environ.get("ADJIT_TRACEBACK") == "full":
                raise
            raise exc.with_traceback(filter_traceback(exc.__traceback__))

    def compile(self, *args, **kwargs):
        """Compile the variant for these arguments before returning (tracing it if needed), so
        that later calls with arguments of the same shapes and dtypes run native code at once:
        for those who time. Runs f once on the arguments (as a call does); returns self."""
        with _compiling(self):
            if self._self is not _NO_SELF:
                self.call_method(self._self, args, kwargs, shift=1)
            else:
                self.__call__(*args, **kwargs)
        return self

    def _live(self, args, has_self):
        """[(slot, value)] of the values f reads without being passed them: closure cells and
        globals (slot numbers), then `self`'s attributes (names); and the key of `self`."""
        live, skey = [], None
        if self._nslots:
            sv = self._slots.gather()
            # a function held in a closure cell was rebound, or a slot planned for an array
            # holds a container now (the hot path reads containers otherwise): plan again
            # or a slot holds a scalar where the plan has an array or the reverse
            if sv is None or self._slots.replan(sv) or self._promote(sv):
                self._slots = Slots(self._func, static_key, self._lpromoted, self._lwritten,
                                self._lnever)
                self._nslots = self._slots.n
                sv = self._slots.gather()
            live = list(zip(self._slots.order(), sv))
        if has_self:
            arrays, skey = self_arrays(args[0], static_key)
            live += sorted(arrays.items())
        return live, skey

    def _promote(self, sv):
        """Note the first value of each float slot; promote (to a scalar input) those that
        show a second value. True when one was promoted now (plan again)."""
        sl, new = self._slots, False
        for i, v, pr in zip(sl.order(), sv, sl.promoted):
            if type(v) is float and not pr:
                rid = sl.rid(i)
                first = self._lfirst.setdefault(rid, scalar_key(v))
                if first != scalar_key(v) and rid not in self._lnever:
                    self._lpromoted.add(rid)
                    new = True
        return new

    def _call(self, args, kwargs, has_self=False, shift=0):
        if self._inline(args, kwargs):
            return self._func(*args, **kwargs)
        n = len(args)
        static = {j % n for j in (i + shift if i >= 0 else i for i in self._static_pos)
                  if -n <= j < n}
        if has_self:
            static.discard(0)
        skw = {k: v for k, v in kwargs.items() if k in self._static_names}
        dkw = sorted(k for k in kwargs if k not in self._static_names)
        first = 1 if has_self else 0
        dyn = [(i, a) for i, a in enumerate(args) if i not in static and i >= first] + \
            [(k, kwargs[k]) for k in dkw]
        tds, spec, vals, fkinds, ids = [], [], [], [], []
        swhere = []  # per spec / lspec entry: where it comes from (a retrace warning names it)
        for where, a in dyn:
            leaves, td = pytree.flatten(a)
            tds.append(td)
            for lf in leaves:
                swhere.append(("arg", where))
                try:
                    info = leaf_info(lf)
                except TypeError as exc:
                    raise TypeError(f"jit: {arg_name(self._params, where)} of "
                                    f"{fname(self.f)}: {exc}{_at()}") from None
                if len(fkinds) <= MAX_LEAVES:
                    fkinds.append(leaf_kind(lf, info))
                if info is None:
                    spec.append(("static", static_key(lf, "a non-array argument")))
                else:
                    spec.append((info.kind, type(lf) if info.kind == "py" else None,
                                 info.type.shape, info.type.dtype))
                    vals.append(info.outer)
                    ids.append(_ident(info))
        live, skey = self._live(args, has_self)
        promo = dict(zip(self._slots.order(), self._slots.promoted)) if self._nslots else {}
        pidx = {}  # trace leaf index of a promoted float slot -> its Slots.rid
        lspec, lleaves = [], []  # lleaves: per live slot, the values the trace takes for it
        # containers the function sees itself: (lspec index, wid, their key now, the key,
        # how a message names them)
        watch = []
        cfl = []  # per live slot: the Python floats of its container are live (inputs)
        for where, v in live:
            swhere.append(("live", where))
            cfl.append(False)
            if type(v) is float and not isinstance(where, str) and promo.get(where):
                # a promoted float slot: a scalar input, as a Python float argument is
                info = leaf_info(v)
                pidx[len(args) + len(dkw) + sum(map(len, lleaves))] = self._slots.rid(where)
                lleaves.append([v])
                lspec.append(("py", "live", info.type.shape, info.type.dtype))
                vals.append(info.outer)
                ids.append(None)
                continue
            if is_tree(v):  # a container: its arrays and Python floats are inputs, its
                # structure and other leaves are keyed
                tl = []
                wid = ("self", where) if isinstance(where, str) else self._slots.rid(where)
                written = wid in (self._wself if isinstance(where, str) else self._lwritten)
                cf = cfl[-1] = not written and wid not in self._lnever
                lspec.append(("tree", slot_key(v, tl, static_key, written, cf)))
                base = len(args) + len(dkw) + sum(map(len, lleaves))
                for j, lf in enumerate(tl):
                    if type(lf) is float:  # a live float: a scalar input (as a promoted slot)
                        pidx[base + j] = wid
                if not tl and not written:
                    watch.append((len(lspec) - 1, wid,
                                  functools.partial(tree_flat, v, [], static_key),
                                  lspec[-1][1], f"attribute `self.{where}`" if
                                  isinstance(where, str) else self._slots.name(where)))
            else:
                tl = [v]
                swhere.pop()  # (one key part: its leaf's, named below)
            lleaves.append(tl)
            for lf in tl:
                swhere.append(("live", where))
                info = leaf_info(lf) if lf is not None and lf is not _EMPTY else None
                if info is not None and info.kind == "py" and cfl[-1] and type(lf) is float:
                    lspec.append(("py", "live", info.type.shape, info.type.dtype))
                    vals.append(info.outer)
                    ids.append(None)
                elif info is None or info.kind == "py":
                    # a scalar (a global `lr = 0.2`) is keyed by value, floats by bit pattern:
                    # a changed value traces again
                    lspec.append(("static", ("unbound", None) if lf is _EMPTY else
                                  static_key(lf, "a global or closure value")))
                else:
                    lspec.append((info.kind, "live", info.type.shape, info.type.dtype))
                    vals.append(info.outer)
                    ids.append(_ident(info))
        if self._nslots:  # key-only slots (live.Slots.kreaders): keyed, never inputs
            sl = self._slots
            for j, kp in enumerate(sl.kparts()):
                swhere.append(("key", j))
                lspec.append(("tree", NO_ARRAYS) if kp is NO_ARRAYS else ("key", kp))
                if sl.kplanned[j] is not None and kp is not NO_ARRAYS:
                    watch.append((len(lspec) - 1, sl.krid(j),
                                  functools.partial(kkey, _kread(*sl.kreaders[j]), static_key),
                                  kp, sl.knames[j]))
        # where the same array object is reached twice (two arguments, an argument and a
        # global, two containers): the trace gives it one traced value, so it is keyed
        al = aliases(ids)
        key = (tuple(tds), tuple(spec), tuple(lspec), skey, tuple(sorted(static)), tuple(dkw),
               tuple(static_key(args[i], f"static argument {i}") for i in sorted(static)),
               tuple(sorted((k, static_key(v, f"static argument {k!r}"))
                            for k, v in skw.items())), al)
        branches = self.cache.get(key)
        if branches is None:
            branches = self.cache.setdefault(key, [])
            if len(self.cache) > MAX_VARIANTS:
                self._evict(branches)
        if branches is not self._mru:
            self._touch(branches)
        # the hot path's key once a branch for these arguments has been replayed (its flattener
        # is generated code: neither the call that traces, the most expensive of all, nor the
        # next one, which makes the interpreter's plan, makes it)
        if branches and branches[0].replays and not kwargs and not has_self:
            hit = self._fast_key(args, static, tds, fkinds)
            if hit is not None and self._nslots:  # the hot path's own reading of the slots
                n, fkey = len(hit[1]), hit[0]
                hit = self._slots.read(hit[1])
                if hit is not None:
                    hit = (fkey + hit[0],) if all(type(v) is _nd for v in hit[1][n:]) else None
            if hit is not None:
                self.fast[hit[0]] = branches
        hit = self._replay(branches, vals, run_graph)
        if hit is not None:
            _name_on_tape(hit[1], vals)
            return _assemble(*hit)
        self._note_retrace(branches, list(zip(swhere, spec + lspec)) + [
            (("static", i), key[6][j]) for j, i in enumerate(sorted(static))] + [
            (("static", k), kv) for k, kv in key[7]] + [(("self", None), skey)])
        try:
            out = self._trace(args, kwargs, static, dkw, skw, branches, live, lleaves, pidx,
                              cfl)
        except _Rewritten as exc:
            # f changes a container whose floats it saw traced (in a copy): it is f's side
            # effect; trace again with f seeing the container itself (its floats keyed by
            # value, its change made once and warned about, as for any container f changes)
            self._lnever.update(exc.args[0])
        except Exception:
            if not pidx:
                nums = [w for w, a in dyn if type(a) in (float, int, bool)]
                if nums and any(sp[0] == "tensor" for sp in spec):
                    # a Tensor-front call whose Python number arguments f saw traced (scalar
                    # inputs) and could not use so (it needs the number itself:
                    # T.tensor([s])): they are static from now on (keyed by value, as
                    # torch.compile specialises a float), unless f fails with them static too
                    return self._call_numbers_static(nums, args, kwargs, has_self, shift)
                raise
            # f could not run with a promoted float slot (or a container's floats) traced (it
            # needs the float itself): those slots stay keyed by value, unless f fails with
            # them keyed too (its error is not theirs: they stay inputs, the error is raised)
            rids = set(pidx.values())
            fresh, promoted = rids - self._lnever, rids & self._lpromoted
            self._lnever.update(rids)
            self._lpromoted.difference_update(rids)
            self._replan()
            try:
                return self._call(args, kwargs, has_self, shift)
            except Exception:
                self._lnever.difference_update(fresh)
                self._lpromoted.update(promoted)
                self._replan()
                raise
        else:
            if watch:
                self._check_written(watch, key)
            return out
        self._slots = Slots(self._func, static_key, self._lpromoted, self._lwritten,
                            self._lnever)
        self._nslots = self._slots.n
        return self._call(args, kwargs, has_self, shift)

    def _call_numbers_static(self, nums, args, kwargs, has_self, shift):
        """_call again with the Python number arguments `nums` (positions in args, names of
        keywords) static; when that fails too, they stay inputs and its error is raised."""
        saved = set(self._static_pos), set(self._static_names)
        self._static_pos |= {w - shift for w in nums if type(w) is int}
        self._static_names |= {w for w in nums if type(w) is str}
        try:
            return self._call(args, kwargs, has_self, shift)
        except Exception:
            self._static_pos, self._static_names = saved
            raise

    def _replan(self):
        self._slots = Slots(self._func, static_key, self._lpromoted, self._lwritten,
                            self._lnever)
        self._nslots = self._slots.n

    def _touch(self, branches):
        """Note that this variant's branch list served a call (for MAX_VARIANTS)."""
        self._mru = branches
        self._clock += 1
        self._stamps[id(branches)] = self._clock

    def _evict(self, keep):
        """Drop the least recently used variants beyond MAX_VARIANTS (never `keep`, the one
        being added): their graphs, code and hot-path keys. A dropped variant that comes back
        traces again."""
        items = list(self.cache.items())
        items.sort(key=lambda kv: self._stamps.get(id(kv[1]), 0))
        drop = [kv for kv in items if kv[1] is not keep][:len(items) - MAX_VARIANTS]
        gone = set()
        for k, brs in drop:
            if self.cache.get(k) is brs:
                del self.cache[k]
            self._stamps.pop(id(brs), None)
            gone.add(id(brs))
        if gone:
            self.fast = {fk: brs for fk, brs in list(self.fast.items()) if id(brs) not in gone}
        if not self._evicted:
            self._evicted = True
            warnings.warn(
                f"adjit.jit: {fname(self.f)} has more than {MAX_VARIANTS} variants (shapes, "
                "dtypes, static arguments or scalar globals seen): the least recently used are "
                "dropped and traced again if they come back. Pass a value that changes every "
                "call as an argument.", RuntimeWarning, stacklevel=user_stacklevel())

    def _check_written(self, watch, key):
        """Containers the function sees itself (they held no array) and changed while jit
        traced it (`hist.append(...)`): the change is a side effect of the trace, which later
        calls do not repeat; key them NO_ARRAYS from now on (instead of by their contents,
        which would trace every call) and warn once per container."""
        changed, names, replan = [], [], False
        for i, wid, now, k, name in watch:
            if now() != k:
                changed.append(i)
                (self._wself if wid[0] == "self" else self._lwritten).add(wid)
                replan = replan or wid[0] != "self"
                names.append(name)
        if not changed:
            return
        warnings.warn(
            f"adjit.jit: {fname(self.f)} changes {', '.join(names)} (a container it reads "
            "without being passed it) while jit traces it: the change is made once, when jit "
            "traces, and not by later calls, which run the recorded arrays only. Return the "
            "values instead (and append them outside the jitted function).",
            RuntimeWarning, stacklevel=user_stacklevel())
        if replan:
            self._slots = Slots(self._func, static_key, self._lpromoted, self._lwritten,
                                self._lnever)
            self._nslots = self._slots.n
        # file the branch just traced under the key later calls compute
        lk = list(key[2])
        for i in changed:
            lk[i] = ("tree", NO_ARRAYS)
        new = key[:2] + (tuple(lk),) + key[3:]
        brs = self.cache.pop(key, None)
        if brs is not None:
            old = self.cache.get(new)
            if old is None:
                self.cache[new] = brs
            else:
                old[:0] = brs

    def _fast_key(self, args, static, tds, fkinds):
        """The hot path's (key, leaves) of these arguments, from their structure's generated
        flattener (made once per structure, see jitargs.py); None when the structure has
        none."""
        sig = (len(args), tuple((i, type(args[i])) for i in sorted(static)), tuple(tds),
               tuple(fkinds))
        fl = self._flat_sigs.get(sig, _MISS)
        if fl is _MISS:
            fl = flattener(next(_TAGS), len(args), {i: type(args[i]) for i in static}, tds,
                           fkinds)
            if len(self._flat_sigs) >= 64:
                self._flat_sigs.clear()
            self._flat_sigs[sig] = fl
        if fl is None:
            return None
        if fl not in self._flats:  # a new list: other threads may iterate the old one
            self._flats = ([fl] + self._flats)[:MAX_STRUCTURES]
        return fl(args)

    def _replay(self, branches, vals, run):
        """(branch, outputs) of the first branch whose guards hold (moved to the front), or
        None when every branch's guards fail."""
        for k, br in enumerate(branches):
            try:
                outs = run(br.graph, vals, br.graph.consts)
            except GuardFailed:
                continue
            if k:
                branches.insert(0, branches.pop(k))
            self.hits += 1
            br.replays += 1
            if (self._compiling and type(br.graph.native) is Interpreted and
                    _get_ident() in self._compiling):
                compile_now(br.graph)  # f.compile(*args): this variant, native now
            return br, outs
        return None

    def _note_retrace(self, branches, spec):
        """Why this call traces again; warn once when a function keeps retracing (as PyTorch
        warns about recompiles), naming the guard, or the argument, static argument, global,
        closure variable or attribute of `self` that changed and its old and new key parts.
        `spec`: [(where, key part)] of this call."""
        reason = None
        if branches:
            locs = sorted({f"{os.path.basename(e.loc[0])}:{e.loc[1]}" for br in branches
                           for e in br.graph.eqns if e.prim.name == "guard" and e.loc})
            reason = "a guard failed (recorded at " + (", ".join(locs) or "?") + ")"
        elif self._last_spec is not None:
            if [w for w, _ in self._last_spec] == [w for w, _ in spec]:
                for (w, a), (_, b) in zip(self._last_spec, spec):
                    if a != b:
                        path, a, b = _key_diff(a, b)
                        reason = (f"{self._where_str(w)}{path} changed from {a} to {b}")
                        break
            reason = reason or "the arguments' structure or the values jit reads changed"
        self._last_spec = spec
        if reason is None:
            return
        self.retraces += 1
        if self.traces >= RETRACE_WARN and not self._warned:
            self._warned = True
            warnings.warn(
                f"adjit.jit: {fname(self.f)} has been traced {self.traces + 1} times; this "
                f"time because {reason}. Every new shape, dtype or failed guard traces and "
                "compiles a new variant: pass such values as static arguments, or keep shapes "
                "fixed.", RuntimeWarning, stacklevel=user_stacklevel())

    def _where_str(self, w):
        """How the retrace warning names where a key part comes from."""
        kind, where = w
        if kind == "arg":
            return arg_name(self._params, where)
        if kind == "static":
            return "static " + arg_name(self._params, where)
        if kind == "self":
            return "an attribute of `self` that holds no array"
        if kind == "key":
            try:
                return self._slots.knames[where]
            except IndexError:
                return "a value a helper function reads"
        if isinstance(where, str):
            return f"attribute `self.{where}`"
        try:
            return self._slots.name(where)
        except IndexError:
            return "a global or closure variable"

    def stats(self):
        """Calls served by a cached variant (hits), traces (misses), retraces and the seconds
        spent compiling this function's variants."""
        # (a branch whose graph waits for its next call has compiled nothing: not extracted)
        secs = sum(getattr(br._g.native, "compile_seconds", 0.0) or 0.0
                   for brs in self.cache.values() for br in brs if br._g is not None)
        return {"hits": self.hits, "misses": self.traces, "retraces": self.retraces,
                "variants": sum(len(b) for b in self.cache.values()),
                "compile_seconds": secs}

    def _trace(self, args, kwargs, static, dkw, skw, branches, live, lleaves, pidx=(),
               cfl=()):
        self.traces += 1
        n, nk = len(args), len(dkw)
        f = self._func
        slots = self._slots
        copies = []  # (wid, it holds floats only, snapshot of its copies)

        def flat(*a):
            pos = list(a[:n])
            subst, attrs = {}, {}
            it, memo = iter(a[n + nk:]), {}
            for (where, v), tl, cf in zip(live, lleaves, cfl or [False] * len(live)):
                if is_tree(v):  # a copy of the container holding the traced values
                    if not tl:  # no arrays: f sees the container itself
                        continue
                    had, orig = len(memo), v
                    v = tree_build(v, it, memo, 0, cf)
                    back, pairs = {}, []
                    tree_pairs(orig, v, back, pairs)
                    copies.append((("self", where) if isinstance(where, str) else
                                   slots.rid(where), all(type(x) is float for x in tl),
                                   tree_snapshot(list(memo.values())[had:]),
                                   (pairs, tree_snapshot([c for _, c in pairs]), back),
                                   f"attribute `self.{where}`" if isinstance(where, str)
                                   else slots.name(where)))
                else:
                    v = next(it)
                    if v is _EMPTY:  # unbound: f's own NameError, not the sentinel
                        continue
                if isinstance(where, str):
                    attrs[where] = v
                else:
                    subst[where] = v
            fn = slots.substitute(subst) or f
            obj = pos[0] if attrs else None
            saved = {k: getattr(obj, k) for k in attrs}
            for k, v in attrs.items():  # self's arrays, traced while f runs
                setattr(obj, k, v)
            try:
                return fn(*pos, **dict(zip(dkw, a[n:n + nk])), **skw)
            finally:
                for k, v in attrs.items():
                    if getattr(obj, k, None) is v:
                        setattr(obj, k, saved[k])

        rng = random_sources(f, args)
        before = [random_state(r) for _, r in rng]
        t = trace_call(flat, tuple(args) + tuple(kwargs[k] for k in dkw) +
                       tuple(lf for tl in lleaves for lf in tl),
                       {}, lambda i, info: i not in static if i < n + nk else
                       info.kind != "py" or i in pidx,
                       "jit", share=True, keep_nodes=True)
        try:
            return self._traced(t, f, copies, rng, before, branches)
        finally:
            t.trace.nodes = None  # (the list holds every Node: a cycle with the trace)

    def _traced(self, t, f, copies, rng, before, branches):
        """_trace, once f has been traced: its checks, the branch, the call's results."""
        rewritten = [c[0] for c in copies if c[1] and tree_changed(c[2])]
        if rewritten:
            FOUND.pop(id(t.trace), None)  # (this trace is dropped: no note of it may stay)
            raise _Rewritten(rewritten)
        # a container holding arrays f changed (`hist.append(...)`): f changed jit's copy;
        # the change is made on the container itself, once (as for a container f sees itself)
        names = [nm for _, fl, _, wb, nm in copies if not fl and tree_write_back(*wb, _concrete)]
        if names:
            warnings.warn(
                f"adjit.jit: {fname(self.f)} changes {', '.join(names)} (a container it reads "
                "without being passed it) while jit traces it: the change is made once, when "
                "jit traces (traced values as their values then), and not by later calls, "
                "which run the recorded arrays only (a new structure traces again). Return the "
                "values instead (and append them outside the jitted function).",
                RuntimeWarning, stacklevel=user_stacklevel())
        drawn = [nm for (nm, r), s in zip(rng, before) if random_state(r) != s]
        if drawn:
            warnings.warn(
                f"adjit.jit: {fname(self.f)} draws random numbers from "
                f"{', '.join(f'`{d}`' for d in drawn)} while jit traces it: the draws are "
                "constants of this trace, and every later call reuses them. Pass the random "
                "numbers as an argument (draw them outside the jitted function).",
                RuntimeWarning, stacklevel=user_stacklevel())
        where = FOUND.pop(id(t.trace), None)
        if where is not None:
            warnings.warn(
                f"adjit.jit: {fname(self.f)}: {where[0]}:{where[1]} computes a value from the "
                f"array `{where[2]}`, which jit does not make an input (only the arrays of the "
                "function's closure, the globals it names, self's attributes and the "
                "containers held there are): the "
                "value is a constant of this trace, and later changes to the array are not "
                "seen. Pass the array as an argument, or read it in the jitted function.",
                RuntimeWarning, stacklevel=user_stacklevel())
        nodes, kinds, otd = out_nodes(t.out, lambda: f"jit: {fname(self.f)}")
        pyvals = [lf if isinstance(lf, (bool, int, float)) else None
                  for lf in pytree.leaves(t.out)]
        name = getattr(f, "__name__", "f")
        ndims = [len(nd.type.shape) for nd in nodes]
        outer = [lf.outer for lf in t.leaves]
        now = self.eager or (self._compiling and _get_ident() in self._compiling)
        if now or any(_live(v) for v in outer):
            g = extract(nodes, t.trace, inputs=t.inputs, name=name)
            br = _Branch(g, kinds, otd, pyvals, ndims)
            if now:
                compile_now(g)
            else:
                count_traced_call(g)  # the tracing call is this variant's first call
            branches.insert(0, br)
            del branches[MAX_BRANCHES:]
            if any(_live(v) for v in outer):  # e.g. Tensors on the tape: record the call there
                outs = run_graph(g, outer, g.consts)
                _name_on_tape(outs, outer)
                return _assemble(br, outs)
            return _assemble(br, fresh([n.val for n in nodes], outer, g.consts))
        # the trace's own values: copies, as every later call returns (no output aliases an
        # argument, a constant or another output). Without the graph's constants at hand: an
        # output that is not an equation's result (an input, a constant) is copied, and one
        # that is the very array of one of its equation's operands (an identity's result)
        kept = []
        for nd in nodes:
            r = nd.rec
            if r is None or nd.trace is not t.trace:
                kept.append(nd)
            else:
                kept.extend(x for x in r.inputs if type(x) is not Lit)
        outs = fresh([nd.val for nd in nodes], outer, kept)
        # the graph waits for the next call (_Branch.graph); the values recorded at this trace
        # are dropped now (the graph's constants are other traces' Nodes: they keep theirs)
        for nd in t.trace.nodes:
            nd.val = None
        for nd in t.inputs:
            nd.val = None
        branches.insert(0, _Branch(None, kinds, otd, pyvals, ndims,
                                   (nodes, t.trace, t.inputs, name)))
        del branches[MAX_BRANCHES:]
        return _assemble(branches[0], outs)


class _Method:
    """A jitted method bound to an object: `self`'s arrays are inputs of each call."""
    __slots__ = ("jitted", "obj")

    def __init__(self, jitted, obj):
        self.jitted, self.obj = jitted, obj

    def __call__(self, *args, **kwargs):
        return self.jitted.call_method(self.obj, args, kwargs)

    def compile(self, *args, **kwargs):
        with _compiling(self.jitted):
            self.jitted.call_method(self.obj, args, kwargs)
        return self

    def __getattr__(self, name):
        return getattr(self.jitted, name)


_NO_SELF = object()


def _concrete(x):
    """A value f put into a container while traced, as the container keeps it: a traced
    array as its value at the trace (NumPy's: 0-d as a NumPy scalar), anything else itself."""
    n = getattr(x, "_n", None)
    if isinstance(n, Node):
        T = tensor_cls()
        return to_user(n, "tensor" if T is not None and isinstance(x, T) else
                       "weak" if getattr(x, "weak", False) else "np")
    return x


class _Rewritten(Exception):
    """A trace changed the copies of containers whose floats it saw traced (their wids)."""


def _ident(info):
    """The object whose identity a leaf has in the trace (arrays and Tensors; None for
    scalars, which are values)."""
    return None if info.kind == "py" or isinstance(info.orig, np.generic) else info.orig


def _name_on_tape(outs, inputs):
    """A call replayed on the eager tape (Tensor arguments requiring grad) records its
    equations there, so backward works through it; name its outputs as torch.compile does:
    one shared `CompiledFunctionBackward` whose next_functions are the Tensor arguments."""
    live = [o for o in outs if isinstance(o, Node) and o.trace is EAGER and o.rec is not None]
    if live:
        tag_outputs(live, "CompiledFunctionBackward",
                    [v for v in inputs if isinstance(v, Node) and v.trace is EAGER])


def _spec_str(s):
    if s[0] == "static":
        return _key_str(s[1])
    if s[0] == "tree":
        return "a container without arrays" if s[1] is NO_ARRAYS else \
            f"a {s[1][0].__name__} of another structure"
    return f"{s[3]}[{','.join(map(str, s[2]))}]"


def _key_diff(a, b, path=""):
    """(path, old, new): where two key parts first differ (`['k']`, `[0]`: inside a
    container) and the values they stand for."""
    if type(a) is tuple and type(b) is tuple and a[:1] == b[:1] and \
            a[:1] in (("tree",), ("static",), ("key",)):
        return _key_diff(a[1], b[1], path)
    if type(a) is tuple and type(b) is tuple and a and b and a[0] is b[0] and \
            isinstance(a[0], type):
        t = a[0]
        if t is dict and len(a) == len(b) == 4 and a[1] == b[1] and a[3] == b[3]:
            for k, x, y in zip(a[1], a[2], b[2]):
                if x != y:
                    return _key_diff(x, y, f"{path}[{k!r}]")
        elif issubclass(t, (tuple, list)) and len(a) == len(b) == 2 and \
                type(a[1]) is tuple and type(b[1]) is tuple and len(a[1]) == len(b[1]):
            for j, (x, y) in enumerate(zip(a[1], b[1])):
                if x != y:
                    return _key_diff(x, y, f"{path}[{j}]")
    return path, _part_str(a), _part_str(b)


def _part_str(k):
    """A key part shown as what it stands for."""
    try:
        if type(k) is bytes:
            return repr(struct.unpack("<d", k)[0])
        if k is float:
            return "a float (an input)"
        if k is NO_ARRAYS:
            return "a container the function writes"
        if type(k) is tuple and len(k) == 2 and k[0] == "id":
            return "another object (keyed by identity)"
        if type(k) is tuple and len(k) == 2 and type(k[0]) is tuple and \
                isinstance(k[1], np.dtype):
            return f"{k[1]}[{','.join(map(str, k[0]))}]"
        if type(k) is tuple and k and (k[0] in ("static", "tree") or (
                len(k) == 4 and type(k[2]) is tuple)):
            return _spec_str(k)
        if type(k) is tuple and len(k) in (2, 3, 4) and isinstance(k[0], type):
            if k[0] in (dict, list) or issubclass(k[0], tuple) and type(k[-1]) is tuple \
                    and k[-1] and type(k[-1][0]) is tuple:
                return f"a {k[0].__name__} of another structure"
            return _key_str(k)
    except Exception:  # noqa: BLE001 - a message: never fail the call over it
        pass
    return "another value"


def _assemble(br, outs):
    return _unflatten(br.otd, br.kinds, br.pyvals, outs)


def _unflatten(otd, kinds, pyvals, outs):
    leaves = [pv if pv is not None else to_user(v, k) for v, k, pv in zip(outs, kinds, pyvals)]
    return pytree.unflatten(otd, leaves)


def _key_str(k):
    """A static_key shown as the value it stands for."""
    t, v = k[0], k[-1]
    if t is float or (isinstance(t, type) and issubclass(t, float)):
        return repr(struct.unpack("<d", v)[0])
    if isinstance(t, type) and issubclass(t, np.generic):
        return repr(np.frombuffer(v, np.dtype(k[1]))[0])
    if isinstance(t, type) and issubclass(t, tuple):
        return "(" + ", ".join(_key_str(e) for e in v) + ")"
    return repr(v)


def static_key(v, what):
    """The cache key of a static value: its type and value, so 1, 1.0, True and np.int64(1)
    (all equal under ==) trace separately, floats by bit pattern (0.0 and -0.0 differ, a NaN
    matches itself), tuples / frozensets element by element."""
    if isinstance(v, np.ndarray):
        raise TypeError(f"jit: {what} is an ndarray; static arguments must be hashable "
                        "(pass it as a regular argument)")
    try:
        hash(v)
    except TypeError:
        raise TypeError(f"jit: {what} of type {type(v).__name__} is not hashable") from None
    t = type(v)
    if isinstance(v, float):
        return (t, float_bits(v))
    if isinstance(v, complex):
        return (t, struct.pack("<dd", v.real, v.imag))
    if isinstance(v, np.generic):
        return (t, v.dtype.str, v.tobytes())
    if isinstance(v, tuple):
        return (t, tuple(static_key(e, what) for e in v))
    if isinstance(v, frozenset):
        return (t, frozenset(static_key(e, what) for e in v))
    return (t, v)


def jit(f=None, *, static_argnums=(), static_argnames=(), compile="auto"):
    """Compile-by-tracing: see the module doc. Usable as @jit or @jit(static_argnums=...).

    compile="auto" (default): a new variant runs as ADJIT_TIER says (by default interpreted
    until it is hot, compiled in the background worker, native from then on). compile="eager":
    each new variant is compiled before the call that traced it returns."""
    if f is None:
        return lambda g: Jitted(g, static_argnums, static_argnames, compile)
    return Jitted(f, static_argnums, static_argnames, compile)
