"""Builds the one LLVM function for a graph: buffers, the loop nest of each materialised value,
inlined producers, guards and the status it returns.

Calling convention (see docs/codegen.md):
    int32 <name>(void **args)
    args = [input buffers..., const buffers..., output buffers..., workspace]
Every buffer is C-contiguous with the graph's static shape. The workspace is one byte buffer
the runtime allocates per call; temporaries live at fixed 64-byte-aligned offsets in it. The
status is 0 (ok), 1 (a guard failed: retrace) or 2 (an index was out of range).
The exported function only unpacks `args` and calls an always-inlined body whose pointer
parameters are `noalias`, so the optimiser knows outputs and temporaries do not overlap.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from ..ir.core import Lit
from . import mathlib
from .emit import I32, I8, MEM, PTR, Buf, Loops, const, i64
from .fusion import plan
from .inline import fold_transposed_dots, inline_calls

STATUS_OK, STATUS_GUARD, STATUS_INDEX = 0, 1, 2
ALIGN = 64
# byte offsets of a tuple's first item and of an ndarray's data pointer in this interpreter
PY_ABI = (tuple.__basicsize__, object.__basicsize__)


class FnBuilder:
    def __init__(self, g, lowerings, symbol):
        g, self.embedded = inline_calls(g)
        g = fold_transposed_dots(g)  # the dot, now unused, is dropped as dead code
        self.g = g
        self.low = lowerings
        self.symbol = symbol
        self.plan = plan(g, lowerings)
        self.module = ir.Module(name=symbol)
        self.imports = set()          # external symbols the runtime binds at link time
        self.ws_bytes = 0
        self._free = []               # released workspace slices (offset, size)
        self.bufs = {}
        self._flat = {}

    # --- function skeleton ------------------------------------------------------------------
    def build(self) -> str:
        g = self.g
        n_args = len(g.invars) + len(g.constvars) + len(g.outvars) + 1
        body_ty = ir.FunctionType(I32, [PTR] * n_args)
        body = ir.Function(self.module, body_ty, f"{self.symbol}_body")
        body.linkage = "internal"
        body.attributes.add("alwaysinline")
        body.attributes.add("nounwind")
        for a in body.args:
            a.add_attribute("noalias")
        self.fn = body
        self.alloca_bb = body.append_basic_block("allocas")
        start = body.append_basic_block("start")
        self.b = ir.IRBuilder(start)
        self.loops = Loops(self.b)
        self.math = mathlib.Math(self.b)
        self._fail_bbs = {}
        args = list(body.args)
        vs = list(g.invars) + list(g.constvars)
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
        last = self._last_uses(roots, alias)
        temps = {}
        for i, e in enumerate(roots):
            if not e.outvars:
                self.low[e.prim.name].fn(self, e, None)
            elif e.outvars[0] in alias:
                v = e.outvars[0]
                self.bufs[v] = Buf(self.bufs[alias[v]].ptr, v.type)
            else:
                v = e.outvars[0]
                if v not in self.bufs:
                    temps[v] = self.temp(v.type.size * _itemsize(v))
                    self.bufs[v] = Buf(temps[v][0], v.type)
                self.emit_eqn(e, self.bufs[v])
            for v in [v for v in temps if last.get(v, i) <= i]:
                self.release(*temps.pop(v)[1:])  # its space serves later temporaries
        for i, v in enumerate(g.outvars):
            if isinstance(v, Lit) or self.bufs[v].ptr is not outs[i]:
                # an input, a constant, a literal or a value returned twice: copy it
                self.copy_into(v, Buf(outs[i], out_type(v)))
        self.b.ret(ir.Constant(I32, STATUS_OK))
        ir.IRBuilder(self.alloca_bb).branch(start)
        self._entry(body, n_args)
        return str(self.module)

    def _entry(self, body, n_args):
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

    def _last_uses(self, roots, alias):
        """Var -> index of the last root whose loops read its buffer (len(roots): outputs);
        a buffer lives as long as the reshapes that alias it."""
        cone = {}

        def reads(x):
            if isinstance(x, Lit):
                return set()
            if x in self.plan.materialised or x not in self.plan.producer:
                return {x}
            if x not in cone:
                cone[x] = set().union(*[reads(i) for i in self.plan.producer[x].inputs])
            return cone[x]
        last = {}
        for i, e in enumerate(roots):
            for x in e.inputs:
                for v in reads(x):
                    last[v] = i
        for v in self.g.outvars:
            if not isinstance(v, Lit):
                last[v] = len(roots)
        for v, x in reversed(list(alias.items())):
            last[x] = max(last.get(x, 0), last.get(v, 0))
        return last

    def temp(self, nbytes):
        """(pointer, offset, size) of a workspace slice: first fit among released slices,
        else appended to the workspace."""
        size = -(-max(nbytes, 1) // ALIGN) * ALIGN
        for k, (off, n) in enumerate(self._free):
            if n >= size:
                self._free[k:k + 1] = [(off + size, n - size)] if n > size else []
                break
        else:
            off = self.ws_bytes
            self.ws_bytes += size
        return self.b.gep(self.ws, [i64(off)], inbounds=True, source_etype=I8), off, size

    def release(self, off, size):
        blocks = sorted(self._free + [(off, size)])
        merged = [blocks[0]]
        for o, n in blocks[1:]:
            po, pn = merged[-1]
            if po + pn == o:
                merged[-1] = (po, pn + n)
            else:
                merged.append((o, n))
        self._free = merged

    def alloca(self, typ, count=None):
        b = ir.IRBuilder(self.alloca_bb)
        return b.alloca(typ, size=count)

    def fail_unless(self, ok, status):
        """Return `status` from the function unless `ok` (an i1) holds."""
        bb = self._fail_bbs.get(status)
        if bb is None:
            bb = self.fn.append_basic_block(f"fail{status}")
            ir.IRBuilder(bb).ret(ir.Constant(I32, status))
            self._fail_bbs[status] = bb
        cont = self.fn.append_basic_block("ok")
        self.b.cbranch(ok, cont, bb)
        self.b.position_at_end(cont)

    # --- values ------------------------------------------------------------------------------
    def value(self, x, ix, dt=None):
        """The scalar value of `x` at index `ix` (x's own shape): a load from its buffer or, for
        an inlined value, its producer's code. Shared within one loop body per (x, ix)."""
        if isinstance(x, Lit):
            return const(dt or out_type(x).dtype, x.value)
        memo = self.loops.memo
        key = (x, id(ix))
        hit = memo.get(key)
        if hit is not None and hit[0] is ix:
            return hit[1]
        buf = self.bufs.get(x)
        if buf is not None:
            val = buf.load(self.b, ix)
        else:
            val = self.eqn_value(self.plan.producer[x], ix)
        memo[key] = (ix, val)
        return val

    def eqn_value(self, e, ix):
        low = self.low[e.prim.name]
        if low.kind == "index":
            return low.fn(self, e, ix)
        dts = operand_dtypes(e)
        vals = [self.value(x, ix, dt) for x, dt in zip(e.inputs, dts)]
        return low.fn(self, e, dts[0] if dts else None, vals)

    def flat_ok(self, x):
        """True when computing x needs no per-axis indices (only elementwise code between it and
        buffers), so one flat loop can cover it."""
        if isinstance(x, Lit) or x in self.bufs:
            return True
        hit = self._flat.get(x)
        if hit is None:
            e = self.plan.producer[x]
            hit = self.low[e.prim.name].kind == "ew" and all(self.flat_ok(i) for i in e.inputs)
            self._flat[x] = hit
        return hit

    def emit_eqn(self, e, out: Buf):
        low = self.low[e.prim.name]
        if low.kind == "kernel":
            low.fn(self, e, out)
            return
        flat = low.kind == "ew" and all(self.flat_ok(x) for x in e.inputs)

        def body(ix, c):
            out.store(self.b, ix, self.eqn_value(e, ix))
        self.loops.nest(out.type.shape, body, flat=flat)

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


def _itemsize(v):
    return v.type.np_dtype.itemsize


def out_type(v):
    """The type of an output: a Var's, or a literal's (its dtype, else its Python type's)."""
    from ..ir.types import AType
    if isinstance(v, Lit):
        dt = v.dtype or ("bool" if isinstance(v.value, bool) else
                         "i64" if isinstance(v.value, int) else "f64")
        return AType((), dt)
    return v.type
