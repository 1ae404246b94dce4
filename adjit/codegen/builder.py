"""Builds the LLVM functions for a graph: buffers, the loop nests of its materialised values
(several roots per nest with sibling fusion, see fusion.py), inlined producers, guards and the
status it returns; chunk functions for nests split across threads (parallel.py).

Calling convention (see docs/codegen.md):
    int32 <name>(void **args)
    args = [input buffers..., const buffers..., output buffers..., workspace]
Every buffer is C-contiguous with the graph's static shape. The workspace is one byte buffer
the runtime keeps between calls (one per running call); temporaries live at fixed
64-byte-aligned offsets in it. The status is 0 (ok), 1 (a guard failed: retrace) or 2 (an
index was out of range). The body is one internal `noinline` function whose pointer
parameters are `noalias` (the optimiser knows outputs and temporaries do not overlap); the
entries (`void **args`, a Python tuple, METH_FASTCALL) only unpack their arguments and call it.
"""
from __future__ import annotations

import bisect

import numpy as np
from llvmlite import ir

from ..ir.core import Lit
from . import kernels, mathlib, parallel
from .emit import I32, I64, I8, MEM, PTR, Buf, Ix, Loops, const, i64
from .abi import PY_ABI, out_type
from .fusion import MEMORY_SIBLINGS_MIN, REDUCE, VEC_MIN, plan
from .inline import fold_transposed_dots, fold_transposed_operands, inline_calls, \
    split_outputs

STATUS_OK, STATUS_GUARD, STATUS_INDEX = 0, 1, 2
GIL_WORK = 1 << 16            # work from which the fastcall entry releases the GIL
ALIGN = 64
# A body that would grow past this many LLVM instructions is split into sections: internal
# `noinline` functions of about this size, called one after another by the body (see
# FnBuilder.build). LLVM's -O3 pipeline is superlinear in the size of one function (an
# unrolled 50-step LSTM, one 3,400-equation function: 16.6 s; in sections: linear).
SECTION_INSNS = 3000
# A graph of at least BIG_GRAPH live equations is lowered in sections of BIG_SECTION_INSNS
# from the start: -O3 is still superlinear at 3,000 instructions (the 50-step LSTM: 3.6 s of
# optimisation in sections of 3,000, 2.2 s in sections of 1,000). A module in sections starts
# with SECTIONED (the runtime's engine gives it a cheaper pipeline, see engine.optimize).
# Smaller graphs (every `adjit bench` workload) are lowered as before.
BIG_GRAPH = 400
BIG_SECTION_INSNS = 1000
BIG_SECTION_UNITS = 64
# workspace slices placed by the quadratic biggest-first search up to this many (_place_temps)
PLACE_EXACT_MAX = 400
SECTIONED = "; adjit: sectioned\n"
# A graph with more than WIDE_ARGS buffers (inputs, constants, outputs, workspace) is built
# with a body taking the `void **args` array, its code in sections that get only the buffers
# they use: thousands of parameters (an MLP of 1,000 layers: a weight and a gradient each) made
# code generation quadratic (instruction selection clusters every load of an incoming
# argument with every other: mlp-1000 3.1 s of 3.6 s; the entries' loads likewise).
WIDE_ARGS = 128
# In a graph of at least SHARE_MIN live equations, a loop nest whose computation occurs at
# least OUTLINE_REPEATS times (the same primitives, parameters, literals, shapes and dtypes
# over other buffers: an MLP stack's layers, an unrolled RNN's steps) is built once, as an
# internal `noinline` function taking its buffers as `noalias` pointer parameters, and called
# at each place (FnBuilder._emit_shared).
# LLVM optimises one loop per distinct computation instead of one per occurrence (mlp-128:
# ~500 loops, most of its -O3 time in LoopVectorize, became a handful).
# Graphs of fewer live equations (every `adjit bench` workload: 6-87) keep every nest inline:
# their compile is short, and their lowered code stays what it was (no call per nest).
OUTLINE_REPEATS = 2
SHARE_MIN = 100


class _NotPassed(Exception):
    """A shared nest's code asked for a buffer it was not given (builder._emit_shared builds
    it inline instead)."""


class _NestBufs(dict):
    """`FnBuilder.bufs` inside a shared nest's function: exactly the buffers it was passed. A
    value that has a buffer in the calling function but was not passed raises _NotPassed
    (never silently recomputed); values without a buffer are computed as usual."""

    def __init__(self, passed, outer):
        super().__init__(passed)
        self.outer = outer

    def _check(self, v):
        if v in self.outer:
            raise _NotPassed(v)

    def __missing__(self, v):
        self._check(v)
        raise KeyError(v)

    def __contains__(self, v):
        if dict.__contains__(self, v):
            return True
        self._check(v)
        return False

    def get(self, v, default=None):
        if dict.__contains__(self, v):
            return dict.__getitem__(self, v)
        self._check(v)
        return default


class _WsOffset(ir.Constant):
    """A workspace slice's offset: an i64 constant whose value is set after the code using it
    was emitted (FnBuilder._place_temps). llvmlite caches a constant's text and hashes by it,
    so this one renders its current value every time and hashes by identity."""

    def __str__(self):
        return self._to_string()

    def get_reference(self):
        return self._get_reference()

    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other


class _SectionArgs:
    """The parameters of a section function, made on first use: `args[k]` is the parameter
    standing for the body's k-th buffer (`args[-1]`: the workspace), a `noalias` pointer.
    `made`: {position: parameter} (FnBuilder._close_section gives the function those its
    code uses, in order of position)."""

    def __init__(self, fn, n):
        self.fn = fn
        self.n = n
        self.made = {}

    def __getitem__(self, k):
        k = k % self.n
        a = self.made.get(k)
        if a is None:
            a = ir.Argument(self.fn, PTR)
            a.add_attribute("noalias")
            self.made[k] = a
        return a


class _SectionBufs(dict):
    """`FnBuilder.bufs` inside one function of a split body: every buffer of the graph, its
    pointer translated into this function (a parameter of the same position, or a fresh
    pointer into this function's workspace at the same offset) on first use. Buffers created
    here are recorded in the graph-wide table too, for the sections after this one."""

    def __init__(self, c, every, args):
        super().__init__()
        self.c = c
        self.every = every
        self.args = args
        self.ws_ptrs = {}

    def _translate(self, b):
        origin = self.c.origin.get(id(b.ptr))
        if origin is None:  # a module-level global (embedded constants)
            return b
        kind, k = origin
        if kind == "arg":
            return Buf(self.args[k], b.type)
        p = self.ws_ptrs.get(k)
        if p is None:
            bb = ir.IRBuilder(self.c.alloca_bb)
            p = self.ws_ptrs[k] = bb.gep(self.args[-1], [k], inbounds=True,
                                         source_etype=I8)
            self.c.origin[id(p)] = origin
        return Buf(p, b.type)

    def __missing__(self, v):
        nb = self._translate(self.every[v])
        dict.__setitem__(self, v, nb)
        return nb

    def __contains__(self, v):
        return dict.__contains__(self, v) or v in self.every

    def get(self, v, default=None):
        return self[v] if v in self else default

    def __setitem__(self, v, b):
        dict.__setitem__(self, v, b)
        self.every[v] = b


class FnBuilder:
    def __init__(self, g, lowerings, symbol):
        g, self.embedded = inline_calls(g)
        g = split_outputs(g, lowerings)
        g = fold_transposed_dots(g)  # the dot, now unused, is dropped as dead code
        g = fold_transposed_operands(g)  # likewise transposes only a product read
        self.g = g
        self.low = lowerings
        self.symbol = symbol
        self.plan = plan(g, lowerings)
        self.module = ir.Module(name=symbol)
        self.imports = set()          # external symbols the runtime binds at link time
        self.ws_bytes = 0             # set by _place_temps when the body is built
        self._temps = []              # [offset constant, size, first tick, last tick]
        self._tick = 0
        self.bufs = {}
        self._flat = {}
        self._start = None
        self.n_chunks = 0             # chunk functions of split loop nests (parallel.py)
        self.work = 0                 # elements written or reduced, multiply-adds (rough)
        self.origin = {}              # id(buffer pointer) -> ("arg", i) | ("ws", offset)
        self.n_sections = 0
        self.math_uses = _math_uses(g, self.plan)   # (function, dtype) -> equations
        self.live = sum(1 for e in g.eqns if e not in self.plan.dead)
        self.n_products = sum(1 for e in g.eqns if e.prim.name == "dot_general" and
                              e not in self.plan.dead)  # (kernels.GEMM_INLINE_MAX)
        self.big = self.live >= BIG_GRAPH
        self.math_keep = []           # outlined math functions' vector variants
        self._shared = {}             # nest key -> (function, work, whether it checks)

    # --- function skeleton ------------------------------------------------------------------
    def build(self) -> str:
        g = self.g
        n_args = len(g.invars) + len(g.constvars) + len(g.outvars) + 1
        # a graph of more than WIDE_ARGS buffers: the body takes the `void **args` array and
        # its code runs in sections (each given, as noalias parameters, the buffers it uses)
        wide = self.wide = n_args > WIDE_ARGS
        self._sec_type = ir.FunctionType(I32, [PTR] * n_args)
        body_ty = ir.FunctionType(I32, [PTR]) if wide else self._sec_type
        body = ir.Function(self.module, body_ty, f"{self.symbol}_body")
        body.linkage = "internal"
        body.attributes.add("noinline")  # one copy, shared by both entries
        body.attributes.add("nounwind")
        for a in body.args:
            a.add_attribute("noalias")
        self.fn = body
        self.alloca_bb = body.append_basic_block("allocas")
        start = self._start = body.append_basic_block("start")
        self.b = ir.IRBuilder(start)
        self.loops = Loops(self.b, self.big)
        self.math = mathlib.Math(self.b)
        self._fail_bbs = {}
        # wide: placeholders, never in the code (sections translate them to their parameters)
        args = [ir.Argument(body, PTR) for _ in range(n_args)] if wide else list(body.args)
        vs = list(g.invars) + list(g.constvars)
        for k, a in enumerate(args):
            self.origin[id(a)] = ("arg", k)
        for v, a in zip(vs, args):
            self.bufs.setdefault(v, Buf(a, v.type))
        for i, (v, arr) in enumerate(self.embedded.items()):
            self.bufs[v] = Buf(self._global(f"embedded{i}", v.type.dtype, arr), v.type)
        outs = args[len(vs):len(vs) + len(g.outvars)]
        self.ws = args[-1]
        for v, slot in self.plan.out_slot.items():
            if v in self.plan.producer:
                self.bufs[v] = Buf(outs[slot], v.type)
        roots = [e for e in g.eqns if e not in self.plan.dead and
                 (not e.outvars or e.outvars[0] in self.plan.materialised)]
        # a reshape of a value that has a buffer is that buffer (C order): no copy
        alias = {e.outvars[0]: e.inputs[0] for e in roots if e.prim.name == "reshape" and
                 e.outvars[0] not in self.plan.out_slot and not isinstance(e.inputs[0], Lit)
                 and (e.inputs[0] in self.plan.materialised or
                      e.inputs[0] not in self.plan.producer)}
        # one unit per loop nest, at the place of its first root (see fusion.plan)
        units, seen = [], set()
        for e in roots:
            lid = self.plan.loop[e]
            if lid not in seen:
                seen.add(lid)
                units.append((lid, self.plan.loops[lid]))
        last = self._last_uses([u for _, u in units], alias)
        shared = self._repeated_nests(units, alias) if self.live >= SHARE_MIN else {}
        limit = BIG_SECTION_INSNS if self.big else SECTION_INSNS
        temps = {}
        dies = {}           # unit index -> temporaries whose last use it is
        every = self.bufs   # every buffer, whichever function created its pointer
        section = None      # (function, what enter_function saved) while building a section
        in_section = 0      # loop nests (units) in the open section
        for i, (lid, unit) in enumerate(units):
            if section is None and (wide or self.n_sections or self._insns(body) > limit):
                section = self._open_section(body, every)
                in_section = 0
            in_section += 1
            for e in unit:
                for v in e.outvars:  # several: a kernel with several results
                    if v in alias:
                        self.bufs[v] = Buf(self.bufs[alias[v]].ptr, v.type)
                    elif v not in self.bufs:
                        temps[v] = self.temp(v.type.size * _itemsize(v))
                        self.bufs[v] = Buf(temps[v][0], v.type)
                        dies.setdefault(max(last.get(v, i), i), []).append(v)
            dom = self.plan.domain[lid]
            split = None
            if dom is not None and not (len(unit) == 1 and unit[0].outvars[0] in alias):
                split = parallel.plan_split(self, unit, dom)
            if split is None and lid in shared and self._emit_shared(unit, dom, *shared[lid]):
                pass  # a call of the nest's shared function
            elif split is not None or (len(unit) > 1 and self.vectorises(unit, dom)):
                self.emit_loop(unit, dom, split)
            else:  # each root its own nest (in program order: they read each other's buffers)
                for e in unit:
                    if not e.outvars:
                        self.low[e.prim.name].fn(self, e, None)
                    elif len(e.outvars) > 1:  # a kernel writing one buffer per result
                        self.low[e.prim.name].fn(self, e, [self.bufs[v] for v in e.outvars])
                    elif e.outvars[0] not in alias:
                        self.emit_eqn(e, self.bufs[e.outvars[0]])
            for v in dies.pop(i, ()):  # (by the unit of their last use: not a scan of all)
                self.release(*temps.pop(v)[1:])  # its space serves later temporaries
            if section is not None and (self._insns(self.fn) > limit or
                                        (self.big and in_section >= BIG_SECTION_UNITS)):
                self._close_section(section, every)
                section = None
        if wide:  # the copies below run in a section too
            if section is None:
                section = self._open_section(body, every)
        elif section is not None:
            self._close_section(section, every)
            section = None
        if self.n_sections and section is None:
            self.bufs = _SectionBufs(self, every, list(body.args))
        for i, v in enumerate(g.outvars):
            if isinstance(v, Lit) or every[v].ptr is not outs[i]:
                # an input, a constant, a literal or a value returned twice: copy it
                out = Buf(outs[i], out_type(v))
                self.copy_into(v, self.bufs._translate(out) if wide else out)
        if section is not None:
            self._close_section(section, every)
        self.b.ret(ir.Constant(I32, STATUS_OK))
        ir.IRBuilder(self.alloca_bb).branch(start)
        self._entry(body, n_args)
        mathlib.keep_alive(self.module, self.math_keep)
        self._place_temps()
        return (SECTIONED if self.n_sections else "") + str(self.module)

    # --- shared nests (OUTLINE_REPEATS) ----------------------------------------------------------
    def _repeated_nests(self, units, alias):
        """{loop id: (key, buffer vars)} of the units whose computation (`_nest_key`) occurs
        at least OUTLINE_REPEATS times: elementwise, index-map and reduction roots only (no
        kernel, guard or several results)."""
        pos = {e: i for i, e in enumerate(self.g.eqns)}
        keys, count = {}, {}
        for lid, unit in units:
            if not all(len(e.outvars) == 1 and e.outvars[0] not in alias and
                       (self.low[e.prim.name].kind in ("ew", "index") or e.prim.name in REDUCE)
                       for e in unit):
                continue
            key, vs = self._nest_key(unit, self.plan.domain[lid], pos)
            keys[lid] = (key, vs)
            count[key] = count.get(key, 0) + 1
        return {lid: kv for lid, kv in keys.items() if count[kv[0]] >= OUTLINE_REPEATS}

    def _nest_key(self, unit, domain, pos):
        """(text, buffer vars) naming what the nest of `unit` computes with its buffers
        renamed in order of first use: equal texts build the same code over the buffers
        listed (in that order)."""
        plan = self.plan

        def has_buffer(v):
            return v in plan.materialised or v not in plan.producer or v in self.bufs
        cone, stack = set(), [x for e in unit for x in e.inputs]
        while stack:
            x = stack.pop()
            if isinstance(x, Lit) or has_buffer(x):
                continue
            e = plan.producer[x]
            if e not in cone:
                cone.add(e)
                stack.extend(e.inputs)
        names, bufs = {}, []

        def name(x):
            if isinstance(x, Lit):
                return f"#{x.value!r}:{x.dtype}"
            n = names.get(x)
            if n is None:
                if has_buffer(x):
                    n = f"B{len(bufs)}:{x.type}"
                    bufs.append(x)
                else:
                    n = f"t{len(names)}:{x.type}"
                names[x] = n
            return n
        lines = [repr(domain)]
        roots = set(unit)
        for e in sorted(cone, key=pos.get) + list(unit):
            ins = " ".join(name(x) for x in e.inputs)
            outs = " ".join(name(v) for v in e.outvars)
            lines.append(f"{'*' if e in roots else ''}{e.prim.name}"
                         f"{_params_key(e.params)} {ins} -> {outs}")
        return "\n".join(lines), bufs

    def _emit_shared(self, unit, domain, key, vs):
        """Call the shared function of the nest `key` (built on first use) on this unit's
        buffers `vs`. False (nothing emitted) when it cannot: two of the buffers are one, or
        the nest's code needs what a shared function does not have (then it is built
        inline)."""
        ptrs, seen = [], set()
        for v in vs:
            buf = self.bufs.get(v)
            if buf is None:
                return False
            o = self.origin.get(id(buf.ptr), ("ptr", id(buf.ptr)))
            if o in seen:  # one buffer under two names: noalias would be wrong
                return False
            seen.add(o)
            ptrs.append(buf.ptr)
        if key not in self._shared:
            fn = ir.Function(self.module, ir.FunctionType(I32, [PTR] * len(vs)),
                             f"{self.symbol}_nest{len(self._shared)}")
            fn.linkage = "internal"
            fn.attributes.add("noinline")
            fn.attributes.add("nounwind")
            for a in fn.args:
                a.add_attribute("noalias")
            outer = self.bufs
            saved = self.enter_function(fn)
            saved_ws, self.ws = self.ws, None  # no workspace slices of its own
            work = self.work
            self.bufs = _NestBufs({v: Buf(a, v.type) for v, a in zip(vs, fn.args)}, outer)
            try:
                if len(unit) > 1 and self.vectorises(unit, domain):
                    self.loop_unit(unit, domain)
                else:
                    for e in unit:
                        self.emit_eqn(e, self.bufs[e.outvars[0]])
                checks = bool(self._fail_bbs)
                self.b.ret(ir.Constant(I32, STATUS_OK))
            except Exception:  # noqa: BLE001 - built inline instead (the same code as before)
                self.leave_function(saved)
                self.ws = saved_ws
                self.work = work
                del self.module.globals[fn.name]
                self._shared[key] = None
                return False
            self.leave_function(saved)
            self.ws = saved_ws
            self._shared[key] = (fn, self.work - work, checks)
            self.work -= self._shared[key][1]  # counted below, as for every later call
        hit = self._shared[key]
        if hit is None:
            return False
        fn, work, checks = hit
        self.work += work
        st = self.b.call(fn, ptrs)
        if checks:
            self.fail_unless(self.b.icmp_unsigned("==", st, ir.Constant(I32, STATUS_OK)), None,
                             status_value=st)
        return True

    @staticmethod
    def _insns(fn):
        return sum(len(bb.instructions) for bb in fn.blocks)

    def _open_section(self, body, every):
        """Continue the body in a new section function (same parameters, noalias, status)."""
        k = self.n_sections
        self.n_sections += 1
        # its parameters are made as its code first uses them (_SectionArgs): creating every
        # one of the body's (mlp-1000: 2,005 pointers per section) and keeping the used ones
        # was most of the lowering's llvmlite objects (and of its garbage collection)
        fn = ir.Function(self.module, ir.FunctionType(I32, []), f"{self.symbol}_sec{k}")
        fn.linkage = "internal"
        fn.attributes.add("noinline")  # else -O3 inlines it back (one caller)
        fn.attributes.add("nounwind")
        args = fn.adjit_args = _SectionArgs(fn, len(self._sec_type.args))
        saved = self.enter_function(fn)
        saved_ws = self.ws
        self.ws = args[-1]
        self.bufs = _SectionBufs(self, every, args)
        return fn, saved, saved_ws

    def _close_section(self, section, every):
        """End the section (it returns OK) and call it from the body, returning its status
        when it is not OK (a guard failed, an index out of range)."""
        fn, saved, saved_ws = section
        self.b.ret(ir.Constant(I32, STATUS_OK))
        self.leave_function(saved)
        self.ws = saved_ws
        self.bufs = every
        body = self.fn
        made = dict(sorted(fn.adjit_args.made.items()))  # {body position: parameter}
        fn.args = tuple(made.values())
        pos = list(made)
        keep = [pos[k] for k in _used_args(fn)]
        fn.args = tuple(made[k] for k in keep)
        fn.ftype = ir.FunctionType(I32, [a.type for a in fn.args])
        fn.type = fn.ftype.as_pointer()
        if self.wide:  # the pointers it uses, read from the args array just before the call
            arr = body.args[0]
            ptrs = [self.b.load(self.b.gep(arr, [i64(k)], inbounds=True, source_etype=PTR),
                                typ=PTR) for k in keep]
        else:
            ptrs = [body.args[k] for k in keep]
        st = self.b.call(fn, ptrs)
        self.fail_unless(self.b.icmp_unsigned("==", st, ir.Constant(I32, STATUS_OK)), None,
                         status_value=st)

    def _entry(self, body, n_args):
        if self.wide:
            return self._wide_entry(body, n_args)
        # <symbol>(void **args): the documented ABI.
        fn = ir.Function(self.module, ir.FunctionType(I32, [PTR]), self.symbol)
        fn.attributes.add("nounwind")
        b = ir.IRBuilder(fn.append_basic_block())
        ptrs = [b.load(b.gep(fn.args[0], [i64(i)], inbounds=True, source_etype=PTR), typ=PTR)
                for i in range(n_args)]
        b.ret(b.call(body, ptrs))
        # <symbol>_py(tuple of ndarrays): what the runtime calls. Reading each array's data
        # pointer here saves ~1 us per array over doing it in Python (arr.ctypes.data). The
        # offsets come from the running interpreter (PY_ABI) and are part of the cache key.
        fn = ir.Function(self.module, ir.FunctionType(I32, [PTR]), self.symbol + "_py")
        fn.attributes.add("nounwind")
        b = ir.IRBuilder(fn.append_basic_block())
        items, data = PY_ABI
        ptrs = []
        for i in range(n_args):
            obj = b.load(b.gep(fn.args[0], [i64(items + 8 * i)], inbounds=True,
                               source_etype=I8), typ=PTR)
            ptrs.append(b.load(b.gep(obj, [i64(data)], inbounds=True, source_etype=I8),
                               typ=PTR))
        b.ret(b.call(body, ptrs))
        # <symbol>_fc(self, PyObject *const *args, nargs): a METH_FASTCALL builtin (runtime/
        # call.py wraps it with PyCFunction_NewEx): called like a Python function, without
        # ctypes (~0.3 us less per call) and without packing a tuple. `self` is a tuple of
        # three objects returned for status 0, 1, 2 (their reference count is ours to raise:
        # the GIL is held there). Graphs with enough work release the GIL around the body.
        fn = ir.Function(self.module, ir.FunctionType(PTR, [PTR, PTR, I64]),
                         self.symbol + "_fc")
        fn.attributes.add("nounwind")
        b = ir.IRBuilder(fn.append_basic_block())
        ptrs = []
        for i in range(n_args):
            obj = b.load(b.gep(fn.args[1], [i64(8 * i)], inbounds=True, source_etype=I8),
                         typ=PTR)
            ptrs.append(b.load(b.gep(obj, [i64(data)], inbounds=True, source_etype=I8),
                               typ=PTR))
        self._fastcall_return(fn, b, body, ptrs)

    def _wide_entry(self, body, n_args):
        """The three entries of a wide graph (WIDE_ARGS): the body takes the pointer array;
        the tuple and fastcall entries fill one on their stack in a loop (not thousands of
        loads in one block)."""
        fn = ir.Function(self.module, ir.FunctionType(I32, [PTR]), self.symbol)
        fn.attributes.add("nounwind")
        b = ir.IRBuilder(fn.append_basic_block())
        b.ret(b.call(body, [fn.args[0]]))
        items, data = PY_ABI

        def gather(fn, b, objs):
            """A stack array of the arrays' data pointers; objs: PyObject *[n_args]."""
            arr = b.alloca(PTR, size=i64(n_args))
            head = fn.append_basic_block("copy")
            loop = fn.append_basic_block("copy.body")
            done = fn.append_basic_block("copy.done")
            entry = b.block
            b.branch(head)
            b.position_at_end(head)
            i = b.phi(I64)
            i.add_incoming(i64(0), entry)
            b.cbranch(b.icmp_signed("<", i, i64(n_args)), loop, done)
            b.position_at_end(loop)
            obj = b.load(b.gep(objs, [i], inbounds=True, source_etype=PTR), typ=PTR)
            ptr = b.load(b.gep(obj, [i64(data)], inbounds=True, source_etype=I8), typ=PTR)
            b.store(ptr, b.gep(arr, [i], inbounds=True, source_etype=PTR))
            i.add_incoming(b.add(i, i64(1)), loop)
            b.branch(head)
            b.position_at_end(done)
            return arr
        fn = ir.Function(self.module, ir.FunctionType(I32, [PTR]), self.symbol + "_py")
        fn.attributes.add("nounwind")
        b = ir.IRBuilder(fn.append_basic_block())
        objs = b.gep(fn.args[0], [i64(items)], inbounds=True, source_etype=I8)
        b.ret(b.call(body, [gather(fn, b, objs)]))
        fn = ir.Function(self.module, ir.FunctionType(PTR, [PTR, PTR, I64]),
                         self.symbol + "_fc")
        fn.attributes.add("nounwind")
        b = ir.IRBuilder(fn.append_basic_block())
        arr = gather(fn, b, fn.args[1])
        self._fastcall_return(fn, b, body, [arr])

    def _fastcall_return(self, fn, b, body, ptrs):
        """The end of a `_fc` entry: call `body` on `ptrs` (releasing the GIL around it when
        `releases_gil`) and return the status's object of the `self` tuple, its reference
        count raised."""
        items = PY_ABI[0]
        if self.releases_gil():
            save = ir.Function(self.module, ir.FunctionType(PTR, []), "adjit_PyEval_SaveThread")
            restore = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [PTR]),
                                  "adjit_PyEval_RestoreThread")
            self.imports.update(("PyEval_SaveThread", "PyEval_RestoreThread"))
            ts = b.call(save, [])
            st = b.call(body, ptrs)
            b.call(restore, [ts])
        else:
            st = b.call(body, ptrs)
        res = b.load(b.gep(fn.args[0], [b.add(i64(items), b.mul(b.zext(st, I64), i64(8)))],
                           inbounds=True, source_etype=I8), typ=PTR)
        b.store(b.add(b.load(res, typ=I64), i64(1)), res)   # Py_INCREF
        b.ret(res)

    def releases_gil(self):
        """Whether the fastcall entry lets other Python threads run during the call: when the
        graph's work (elements its nests write or reduce, multiply-adds) makes the ~0.1 us of
        PyEval_SaveThread/RestoreThread negligible, or it may start threads."""
        return self.n_chunks > 0 or self.work >= GIL_WORK

    def _global(self, name, dt, arr):
        flat = np.asarray(arr).reshape(-1)
        mem = MEM[dt]
        vals = [ir.Constant(I8, int(x)) if dt == "bool" else const(dt, x) for x in flat]
        init = ir.Constant(ir.ArrayType(mem, len(vals)), vals or [ir.Constant(mem, 0)])
        gv = ir.GlobalVariable(self.module, init.type, name=name)
        gv.global_constant = True
        gv.linkage = "internal"
        gv.initializer = init
        return gv

    def _last_uses(self, units, alias):
        """Var -> index of the last unit (loop nest) whose code reads its buffer (len(units):
        outputs); a buffer lives as long as the reshapes that alias it."""
        cone = {}
        plan = self.plan

        def reads(x):  # the buffers x's inlined code reads (iterative: chains may be deep)
            if isinstance(x, Lit):
                return set()
            if x in plan.materialised or x not in plan.producer:
                return {x}
            stack = [x]
            while stack:
                y = stack[-1]
                if y in cone:
                    stack.pop()
                    continue
                ins = [i for i in plan.producer[y].inputs if not isinstance(i, Lit)]
                todo = [i for i in ins if i not in cone and i not in plan.materialised
                        and i in plan.producer]
                if todo:
                    stack.extend(todo)
                    continue
                cone[y] = set().union(*[cone[i] if i in cone else {i} for i in ins])
                stack.pop()
            return cone[x]
        last = {}
        for i, unit in enumerate(units):
            for e in unit:
                for x in e.inputs:
                    for v in reads(x):
                        last[v] = i
        for v in self.g.outvars:
            if not isinstance(v, Lit):
                last[v] = len(units)
        for v, x in reversed(list(alias.items())):
            last[x] = max(last.get(x, 0), last.get(v, 0))
        return last

    def temp(self, nbytes):
        """(pointer, handle, size) of a workspace slice, live until `release(handle, size)`
        (or the end). Its offset is a constant placed when the body is built
        (`_place_temps`), knowing every slice's lifetime: deciding it here, first fit among
        released slices, let small temporaries split the hole a big one had left, and the
        next big one was appended (W3: 2 MB of workspace for 1.5 MB live at once)."""
        size = -(-max(nbytes, 1) // ALIGN) * ALIGN
        off = _WsOffset(I64, 0)
        self._tick += 1
        self._temps.append([off, size, self._tick, None])
        p = self.b.gep(self.ws, [off], inbounds=True, source_etype=I8)
        self.origin[id(p)] = ("ws", off)
        return p, len(self._temps) - 1, size

    def release(self, handle, size):
        self._tick += 1
        self._temps[handle][3] = self._tick

    def _place_temps(self):
        """Offsets of the workspace slices; sets ws_bytes. Slices live at disjoint times may
        share bytes. Up to PLACE_EXACT_MAX slices: biggest first, each at the lowest offset
        where it overlaps no placed slice live at the same time (quadratic in the slices), or
        the order of first use when that is smaller; more slices (a big graph's thousands):
        the order of first use only, first fit in a free list merged with its neighbours."""
        temps = self._temps
        if not temps:
            return
        end = self._tick + 1
        best = self._place_in_order(end)
        if len(temps) <= PLACE_EXACT_MAX:
            ws, offs = 0, []
            placed = []  # (offset, size, first, last)
            for t in sorted(temps, key=lambda t: (-t[1], t[2])):
                first, last = t[2], t[3] or end
                busy = sorted((o, o + n) for o, n, f, la in placed if f < last and first < la)
                off = 0
                for lo, hi in busy:
                    if off + t[1] <= lo:
                        break
                    off = max(off, hi)
                offs.append((t, off))
                placed.append((off, t[1], first, last))
                ws = max(ws, off + t[1])
            if ws <= best[0]:
                best = (ws, offs)
        self.ws_bytes, offs = best
        for t, off in offs:
            t[0].constant = off

    def _place_in_order(self, end):
        """(workspace bytes, [(slice, offset)]): slices placed as their lives start, first fit
        among the bytes released so far (a sorted free list, neighbours merged)."""
        events = []
        for t in self._temps:
            events.append((t[2], 1, id(t), t))
            events.append((t[3] or end, 0, id(t), t))  # a release before an allocation
        free, ws, offs, at = [], 0, [], {}
        for _, alloc, _, t in sorted(events):
            size = t[1]
            if alloc:
                for k, (o, n) in enumerate(free):
                    if n >= size:
                        free[k:k + 1] = [(o + size, n - size)] if n > size else []
                        break
                else:
                    o = ws
                    ws += size
                at[id(t)] = o
                offs.append((t, o))
                continue
            o = at.pop(id(t))
            k = bisect.bisect_left(free, (o, size))
            if k < len(free) and o + size == free[k][0]:
                size += free.pop(k)[1]
            if k and free[k - 1][0] + free[k - 1][1] == o:
                free[k - 1] = (free[k - 1][0], free[k - 1][1] + size)
            else:
                free.insert(k, (o, size))
        return ws, offs

    def alloca(self, typ, count=None):
        b = ir.IRBuilder(self.alloca_bb)
        return b.alloca(typ, size=count)

    def fail_unless(self, ok, status, status_value=None):
        """Return `status` from the function unless `ok` (an i1) holds (`status_value`: an
        i32 computed here instead, a section's status)."""
        if status_value is not None:
            bb = self.fn.append_basic_block("failed")
            ir.IRBuilder(bb).ret(status_value)
            cont = self.fn.append_basic_block("ok")
            self.b.cbranch(ok, cont, bb)
            self.b.position_at_end(cont)
            return
        bb = self._fail_bbs.get(status)
        if bb is None:
            bb = self.fn.append_basic_block(f"fail{status}")
            ir.IRBuilder(bb).ret(ir.Constant(I32, status))
            self._fail_bbs[status] = bb
        cont = self.fn.append_basic_block("ok")
        self.b.cbranch(ok, cont, bb)
        self.b.position_at_end(cont)

    def math_call(self, name, dt, vals):
        """Math function `name` on scalar values of dtype `dt`: inlined, or a call of the
        module's outlined copy when the graph uses it often (mathlib.OUTLINE_MIN)."""
        if (dt in ("f32", "f64") and name in mathlib.OUTLINABLE and
                self.math_uses.get((name, dt), 0) >= mathlib.OUTLINE_MIN):
            fn, variants = mathlib.outlined(self.module, name, dt, len(vals))
            self.math_keep.extend(variants)
            return self.b.call(fn, list(vals))
        return mathlib.call(self.b, name, dt, *vals)

    # --- values ------------------------------------------------------------------------------
    def value(self, x, ix, dt=None):
        """The scalar value of `x` at index `ix` (x's own shape): a load from its buffer or, for
        an inlined value, its producer's code. Shared within one loop body per (x, ix).
        Iterative (an explicit stack, not recursion): a fused chain may be thousands of
        equations deep."""
        if isinstance(x, Lit):
            return const(dt or out_type(x).dtype, x.value)
        memo = self.loops.memo
        hit = memo.get((x, id(ix)))
        if hit is not None and hit[0] is ix:
            return hit[1]
        # frames [var, index, pending]: pending is None on the first visit, then what the
        # producer waits for: ("ew", operand dtypes) or ("index", operand, mapped index, finish)
        stack = [[x, ix, None]]
        while stack:
            fr = stack[-1]
            v, vix, pending = fr
            key = (v, id(vix))
            if pending is None:
                hit = memo.get(key)
                if hit is not None and hit[0] is vix:
                    stack.pop()
                    continue
                buf = self.bufs.get(v)
                if buf is not None:
                    memo[key] = (vix, buf.load(self.b, vix))
                    stack.pop()
                    continue
                e = self.plan.producer[v]
                low = self.low[e.prim.name]
                if low.kind == "index":
                    y, yix, finish = low.fn(self, e, vix)
                    fr[2] = ("index", y, yix, finish)
                    if y is not None and not isinstance(y, Lit):
                        stack.append([y, yix, None])
                else:
                    dts = operand_dtypes(e)
                    fr[2] = ("ew", dts)
                    stack.extend([y, vix, None] for y in reversed(e.inputs)
                                 if not isinstance(y, Lit))
                continue
            e = self.plan.producer[v]
            if pending[0] == "index":
                _, y, yix, finish = pending
                val = None if y is None else self._get(y, yix)
                val = finish(val) if finish is not None else val
            else:
                dts = pending[1]
                vals = [self._get(y, vix, d) for y, d in zip(e.inputs, dts)]
                val = self.low[e.prim.name].fn(self, e, dts[0] if dts else None, vals)
            memo[key] = (vix, val)
            stack.pop()
        return memo[(x, id(ix))][1]

    def _get(self, y, ix, dt=None):
        """An operand's value that `value` has just computed (or a literal)."""
        if isinstance(y, Lit):
            return const(dt or out_type(y).dtype, y.value)
        return self.loops.memo[(y, id(ix))][1]

    def eqn_value(self, e, ix):
        low = self.low[e.prim.name]
        if low.kind == "index":
            y, yix, finish = low.fn(self, e, ix)
            val = None if y is None else self.value(y, yix)
            return finish(val) if finish is not None else val
        dts = operand_dtypes(e)
        vals = [self.value(x, ix, dt) for x, dt in zip(e.inputs, dts)]
        return low.fn(self, e, dts[0] if dts else None, vals)

    def flat_ok(self, x):
        """True when computing x needs no per-axis indices (only elementwise code between it and
        buffers), so one flat loop can cover it. Iterative, like `value`."""
        stack = [x]
        while stack:
            y = stack[-1]
            if isinstance(y, Lit) or y in self.bufs or y in self._flat:
                stack.pop()
                continue
            e = self.plan.producer[y]
            if self.low[e.prim.name].kind != "ew":
                self._flat[y] = False
                stack.pop()
                continue
            todo = [i for i in e.inputs if not (isinstance(i, Lit) or i in self.bufs or
                                                 i in self._flat)]
            if todo:
                stack.extend(todo)
                continue
            self._flat[y] = all(isinstance(i, Lit) or i in self.bufs or self._flat[i]
                                for i in e.inputs)
            stack.pop()
        return isinstance(x, Lit) or x in self.bufs or self._flat[x]

    def emit_eqn(self, e, out: Buf):
        low = self.low[e.prim.name]
        self.work += max((x.type.size for x in e.inputs if not isinstance(x, Lit)),
                         default=0) + out.type.size
        if low.kind == "kernel":
            low.fn(self, e, out)
            return
        flat = low.kind == "ew" and all(self.flat_ok(x) for x in e.inputs)

        def body(ix, c):
            out.store(self.b, ix, self.eqn_value(e, ix))
        self.loops.nest(out.type.shape, body, flat=flat)

    def emit_loop(self, unit, domain, split=None):
        """One loop nest for the roots of `unit` (several: sibling fusion, see fusion.plan),
        split in two halves run on two threads when `split` says so (see parallel.py)."""
        if split is None:
            self.loop_unit(unit, domain)
        else:
            parallel.emit_split(self, unit, domain, split)

    def enter_function(self, fn):
        """Build code into another function `fn` (a chunk of a split nest); returns what
        leave_function restores."""
        saved = (self.fn, self.b, self.loops, self.math, self.alloca_bb, self.bufs,
                 self._fail_bbs, self._start)
        self.fn = fn
        self.alloca_bb = fn.append_basic_block("allocas")
        self._start = fn.append_basic_block("start")
        self.b = ir.IRBuilder(self._start)
        self.loops = Loops(self.b, self.big)
        self.math = mathlib.Math(self.b)
        self._fail_bbs = {}
        return saved

    def leave_function(self, saved):
        ir.IRBuilder(self.alloca_bb).branch(self._start)
        (self.fn, self.b, self.loops, self.math, self.alloca_bb, self.bufs, self._fail_bbs,
         self._start) = saved

    def flat_unit(self, unit):
        """True when the nest of `unit` needs no per-axis index (one flat loop)."""
        return all(self.flat_ok(x) for e in unit for x in e.inputs) and all(
            self.low[e.prim.name].kind == "ew" or e.prim.name in REDUCE for e in unit)

    def vectorises(self, unit, domain):
        """Whether a shared nest keeps a vectorisable innermost loop: flat, or a long enough
        last axis (fusion.plan sees to it for reductions). Otherwise elementwise roots that
        would each have had a flat loop run in their own nests (a few values are computed
        twice, but vectorised)."""
        shape, _ = domain
        if len(shape) <= 1 or any(e.prim.name in REDUCE for e in unit) or self.flat_unit(unit):
            return True
        if self.big:
            # compile time first: one nest instead of one per root halves the loops LLVM
            # optimises (the 50-step LSTM: 2,674 -> 1,500 loops, -O3 2.1 -> 1.4 s CPU) for a
            # few percent of run time
            return True
        size = 1
        for d in shape:
            size *= d
        # a small nested nest is unrolled and vectorised across rows by LLVM (badly, with
        # gathers); separate nests are cheaper there, and there is little memory to save
        return size >= MEMORY_SIBLINGS_MIN and shape[-1] >= VEC_MIN

    def reduce_info(self, unit, domain):
        shape, t = domain
        n = len(shape)
        reds = [e for e in unit if e.prim.name in REDUCE]
        k = t if reds else 0
        info = {}
        for e in reds:
            axes = set(e.params["axes"])
            dt = e.inputs[0].type.dtype
            kept = [i for i in range(n) if i not in axes]
            in_memory = any(a < n - k for a in axes)
            info[e] = (kernels._combiner(self, e.prim.name, dt), kept, in_memory,
                       self.bufs[e.outvars[0]])
        return reds, k, info

    def init_reductions(self, unit, domain):
        """Reductions that accumulate in their output start from the identity."""
        b = self.b
        reds, _, info = self.reduce_info(unit, domain)
        for e in reds:
            _, _, in_memory, out = info[e]
            if in_memory:
                ident = kernels._identity(e.prim.name, e.inputs[0].type.dtype)
                self.loops.nest(out.type.shape, lambda ix, c, out=out, ident=ident:
                                out.store(b, ix, ident), flat=True)

    def loop_unit(self, unit, domain, span=None, partial=None, init=True):
        """Every root of `unit` is computed at the loop's index: elementwise and index-map
        roots store, reductions accumulate (in a register over the trailing reduced axes, which
        all of them share, else into their output). A value read by several roots at that
        index is computed once. `span` (lo, hi) restricts the outermost loop (a thread's
        share); `partial`: a pointer where full reductions leave their accumulators (one
        8-byte slot each) instead of writing their outputs."""
        b = self.b
        shape, _ = domain
        n = len(shape)
        size = 1
        for d in shape:
            size *= d
        self.work += size * len(unit)
        reds, k, info = self.reduce_info(unit, domain)
        outer, inner = shape[:n - k], shape[n - k:]
        flat = self.flat_unit(unit)
        if init:
            self.init_reductions(unit, domain)

        def members(ix, carry):
            new = []
            for e in unit:
                if e.prim.name in REDUCE:
                    combine, kept, in_memory, out = info[e]
                    val = self.value(e.inputs[0], ix)
                    if k:
                        new.append(combine(carry[len(new)], val))
                        continue
                    oi = Ix([ix.get_dims(b, shape)[i] for i in kept])
                    out.store(b, oi, combine(out.load(b, oi), val) if in_memory else val)
                    continue
                v = e.outvars[0]
                val = self.eqn_value(e, ix)
                self.bufs[v].store(b, ix, val)
                self.loops.memo[(v, id(ix))] = (ix, val)  # later roots read it here
            return new

        if not k:  # reductions (if any) accumulate in memory at per-axis indices
            self.loops.nest(shape, members, flat=flat and not reds, span=span)
            return

        def outer_body(oix, _):
            od = oix.get_dims(b, outer)
            ids = [kernels._identity(e.prim.name, e.inputs[0].type.dtype) for e in reds]

            def inner_body(iix, carry):
                return members(Ix(od + iix.get_dims(b, inner)) if od else iix, carry)
            accs = kernels.accumulate(
                self, inner, inner_body, ids, [info[e][0] for e in reds], flat=flat and not od,
                span=None if outer else span,
                exact=not any(kernels._inexact(e.prim.name, e.inputs[0].type.dtype)
                              for e in reds))
            for j, (e, acc) in enumerate(zip(reds, accs)):
                combine, kept, in_memory, out = info[e]
                if partial is not None:
                    b.store(acc, b.gep(partial, [i64(8 * j)], inbounds=True,
                                       source_etype=I8))
                    continue
                oi = Ix([od[i] for i in kept])
                out.store(b, oi, combine(out.load(b, oi), acc) if in_memory else acc)
        self.loops.nest(outer, outer_body, span=span if outer else None)

    def copy_into(self, x, out: Buf):
        def body(ix, c):
            out.store(self.b, ix, self.value(x, ix, out.type.dtype))
        self.loops.nest(out.type.shape, body, flat=True)

    def buffer(self, x) -> Buf:
        return self.bufs[x]


def operand_dtypes(e):
    """The dtype each operand is used at (a literal takes its neighbours' dtype)."""
    if e.prim.name == "select":
        return ["bool"] + [e.outvars[0].type.dtype] * 2
    vdt = next((x.type.dtype for x in e.inputs if not isinstance(x, Lit)),
               e.outvars[0].type.dtype if e.outvars else "bool")
    return [vdt] * len(e.inputs)


def _math_uses(g, plan):
    """(math function, dtype) -> how many live equations of `g` call it (primitives lowered to
    a math-library function, and pow)."""
    uses = {}
    for e in g.eqns:
        if e in plan.dead:
            continue
        spec = e.prim.lowering
        name = spec[1] if spec is not None and spec[0] == "math" else e.prim.name
        if name in mathlib.OUTLINABLE:
            key = (name, operand_dtypes(e)[0] if e.inputs else None)
            uses[key] = uses.get(key, 0) + 1
    return uses


def _used_args(fn):
    """Positions of the parameters of `fn` its code uses. A section is built with every
    parameter of the body and keeps only these: thousands of unused pointer parameters (an
    MLP of 1,000 layers: one per weight and gradient) in each section and call made LLVM's
    interprocedural passes superlinear (CalledValuePropagation 8.3 s of mlp-1000's 10.9 s)."""
    pos = {id(a): k for k, a in enumerate(fn.args)}
    used = set()
    for bb in fn.blocks:
        for ins in bb.instructions:
            for op in ins.operands:
                k = pos.get(id(op))
                if k is not None:
                    used.add(k)
            for val, _ in getattr(ins, "incomings", ()):
                k = pos.get(id(val))
                if k is not None:
                    used.add(k)
    return sorted(used)


def _params_key(params):
    """Equation parameters as text for a nest key (arrays by their bytes: repr elides)."""
    if not params:
        return ""
    parts = []
    for k in sorted(params):
        v = params[k]
        if isinstance(v, np.ndarray):
            import hashlib
            v = (v.dtype.str, v.shape, hashlib.sha256(np.ascontiguousarray(v).tobytes())
                 .hexdigest())
        parts.append(f"{k}={v!r}")
    return "[" + ", ".join(parts) + "]"


def _itemsize(v):
    return v.type.np_dtype.itemsize
