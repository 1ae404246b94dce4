"""LLVM IR building blocks for the lowering: types, constants, indices, loops, buffers.

Values are scalars in *register* types (bool is i1); buffers hold *memory* types (bool is i8,
NumPy's layout). Every loop is a counted loop over a static extent (shapes are known at compile
time), written with phi nodes so the loop vectoriser sees canonical induction variables.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
F32, F64 = ir.FloatType(), ir.DoubleType()
PTR = ir.PointerType()
REG = {"f32": F32, "f64": F64, "i32": I32, "i64": I64, "bool": I1}
MEM = {"f32": F32, "f64": F64, "i32": I32, "i64": I64, "bool": I8}
ITEMSIZE = {"f32": 4, "f64": 8, "i32": 4, "i64": 8, "bool": 1}
from ..ir.types import FLOATS  # noqa: E402,F401 (one definition, in the IR)
from .abi import REDUCE_FLAGS  # noqa: F401 (see abi.py)


def const(dt, value):
    """An LLVM constant of IR dtype `dt` holding a Python/NumPy scalar (wrapped like NumPy)."""
    if dt in FLOATS:
        return ir.Constant(REG[dt], float(np.asarray(value, np.float64 if dt == "f64"
                                                      else np.float32)))
    if dt == "bool":
        return ir.Constant(I1, int(bool(value)))
    bits = 32 if dt == "i32" else 64
    v = int(value) & ((1 << bits) - 1)
    return ir.Constant(REG[dt], v - (1 << bits) if v >> (bits - 1) else v)


def i64(v):
    return ir.Constant(I64, int(v))


def strides(shape):
    """C-order strides in elements."""
    out, s = [], 1
    for d in reversed(shape):
        out.append(s)
        s *= d
    return tuple(reversed(out))


class Ix:
    """An index into a value of one fixed shape: the per-axis indices, the C-order linear index,
    or both; the missing form is computed on demand (and kept)."""
    __slots__ = ("dims", "lin")

    def __init__(self, dims=None, lin=None):
        self.dims = dims
        self.lin = lin

    def get_lin(self, b, shape):
        if self.lin is None:
            lin = i64(0)
            for d, s in zip(self.dims, strides(shape)):
                if s == 0 or isinstance(d, ir.Constant) and d.constant == 0:
                    continue
                lin = b.add(lin, d if s == 1 else b.mul(d, i64(s), flags=("nuw", "nsw")),
                            flags=("nuw", "nsw"))
            self.lin = lin
        return self.lin

    def get_dims(self, b, shape):
        if self.dims is None:
            dims, rest = [], self.lin
            for d, s in zip(shape, strides(shape)):
                if d == 1:
                    dims.append(i64(0))
                    continue
                dims.append(b.udiv(rest, i64(s)) if s != 1 else rest)
                if s != 1:
                    rest = b.urem(rest, i64(s))
            self.dims = dims
        return self.dims


SCALAR = Ix([], i64(0))


class Buf:
    """A materialised array: pointer to its first element, IR type (C-contiguous)."""
    __slots__ = ("ptr", "type")

    def __init__(self, ptr, typ):
        self.ptr = ptr
        self.type = typ

    def addr(self, b, lin):
        return b.gep(self.ptr, [lin], inbounds=True, source_etype=MEM[self.type.dtype])

    def load(self, b, ix):
        dt = self.type.dtype
        v = b.load(self.addr(b, ix.get_lin(b, self.type.shape)), typ=MEM[dt])
        return b.icmp_unsigned("!=", v, ir.Constant(I8, 0)) if dt == "bool" else v

    def store(self, b, ix, value):
        if self.type.dtype == "bool":
            value = b.zext(value, I8)
        b.store(value, self.addr(b, ix.get_lin(b, self.type.shape)))


# A loop whose body has more instructions than this is not vectorised: LLVM's loop vectoriser
# takes time quadratic in the body (a 10,000-equation elementwise chain: 37 s instead of 0.5 s),
# and such a body is compute-bound with little to gain per instruction (issue 14.8).
BIG_BODY = 2500
# In a big graph (builder.BIG_GRAPH, Loops.short) a loop of at most this many iterations (a
# compile-time count) is not vectorised either: such graphs have thousands of short loops
# (the 50-step LSTM: 8 to 128 iterations), where the vectoriser was ~40% of -O3 time for no
# measurable run time; longer loops (big arrays) stay vectorised.
SHORT_LOOP = 128


def _no_vectorise(branch):
    """Loop metadata on a loop's back edge: do not vectorise (or interleave) it."""
    mod = branch.parent.parent.module
    opts = [mod.add_metadata([ir.MetaDataString(mod, "llvm.loop.vectorize.enable"),
                              ir.Constant(I1, 0)])]
    md = ir.values.MDValue(mod, opts, name=str(len(mod.metadata)))
    md.operands = (md, *opts)  # a loop ID refers to itself (unique per loop)
    branch.set_metadata("llvm.loop", md)


class Loops:
    """Loop emission with a per-scope memo: a value computed inside a loop body is forgotten
    when the body ends (it does not dominate code after the loop)."""

    def __init__(self, builder, short=False):
        self.b = builder
        self.memo = {}
        self.short = short  # big graph: loops of <= SHORT_LOOP iterations are not vectorised

    def for_range(self, n, body, carry=(), reverse=False, span=None):
        """for i in range(n) (or reversed): carry = body(i, carry). Returns the final carry.
        `span` = (lo, hi), i64 values: for i in range(lo, hi) instead (a thread's share)."""
        b = self.b
        carry = list(carry)
        if span is None:
            if n == 0:
                return carry
            if n == 1:
                return self._scoped(body, i64(0), carry)
        pre = b.block
        head = b.append_basic_block("loop")
        body_bb = b.append_basic_block("body")
        exit_bb = b.append_basic_block("done")
        b.branch(head)
        b.position_at_end(head)
        k = b.phi(I64, name="k")
        k.add_incoming(i64(0) if span is None else span[0], pre)
        phis = []
        for c in carry:
            p = b.phi(c.type)
            p.add_incoming(c, pre)
            phis.append(p)
        b.cbranch(b.icmp_signed("<", k, i64(n) if span is None else span[1]), body_bb,
                  exit_bb)
        b.position_at_end(body_bb)
        blocks = b.function.blocks
        first = len(blocks)
        i = b.sub(i64(n - 1), k, flags=("nuw", "nsw")) if reverse else k
        new = self._scoped(body, i, phis)
        latch = b.block
        k.add_incoming(b.add(k, i64(1), flags=("nuw", "nsw")), latch)
        for p, v in zip(phis, new):
            p.add_incoming(v, latch)
        back = b.branch(head)
        size = len(body_bb.instructions) + sum(len(bb.instructions) for bb in blocks[first:])
        if size > BIG_BODY or (self.short and span is None and n <= SHORT_LOOP):
            _no_vectorise(back)
        b.position_at_end(exit_bb)
        return phis

    def _scoped(self, body, i, carry):
        saved = self.memo
        self.memo = dict(saved)
        try:
            out = body(i, carry)
        finally:
            self.memo = saved
        return list(out) if out is not None else []

    def nest(self, shape, body, carry=(), flat=False, span=None):
        """Loops over every index of `shape` in C order: carry = body(ix, carry). With `flat`,
        one loop over the linear index (for code that never needs per-axis indices). `span`
        (lo, hi) restricts the outermost loop: the linear index when flat, else axis 0."""
        shape = tuple(shape)
        if flat or len(shape) <= 1:
            n = int(np.prod(shape, dtype=np.int64))
            if len(shape) == 1:
                return self.for_range(n, lambda i, c: body(Ix([i], i), c), carry, span=span)
            return self.for_range(n, lambda i, c: body(Ix(None, i), c), carry, span=span)
        b = self.b

        def rec(k, dims, lin, c):
            if k == len(shape):
                return body(Ix(dims, lin), c)

            def inner(i, c2):
                lin2 = b.add(b.mul(lin, i64(shape[k]), flags=("nuw", "nsw")), i,
                             flags=("nuw", "nsw")) if k else i
                return rec(k + 1, dims + [i], lin2, c2)
            return self.for_range(shape[k], inner, c, span=span if k == 0 else None)
        return rec(0, [], i64(0), list(carry))

    def cond(self, pred, then, otherwise=None):
        """if pred: then() [else: otherwise()] (no values flow out)."""
        b = self.b
        with b.if_else(pred) as (t, e):
            with t:
                self._scoped(lambda i, c: then(), None, [])
            with e:
                if otherwise is not None:
                    self._scoped(lambda i, c: otherwise(), None, [])
