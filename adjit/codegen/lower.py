"""Lowering of adjit graphs to LLVM IR: the table `LOWERINGS` (one entry per primitive, keyed
by the primitive's name) and `lower(g) -> (LLVM IR text, metadata)`. Compiling, loading and calling
are the runtime's (adjit/runtime/).

Entry kinds (see builder.py for how they are used):
  "ew"     fn(c, eqn, dt, vals) -> value    elementwise, on scalars at one index; `dt` is the
                                            dtype the operands are used at
  "index"  fn(c, eqn, ix) -> (operand, operand index, finish)
                                            an index map: the value at `ix` is finish(the
                                            operand's value at the mapped index), finish None
                                            meaning the identity (operand None: finish(None));
                                            builder.value evaluates chains without recursion
  "kernel" fn(c, eqn, out_buf)              writes its whole output (kernels.py, lapack.py;
                                            a list of buffers, one per result, when the
                                            primitive has several results); `operands`
                                            says how each operand is read: 'once' (may be
                                            inlined), 'repeat' (inlined only if cheap),
                                            'buffer' (needs a buffer)
  "guard"  like a kernel, without an output
  "inline" replaced by the equations of a graph in its params before lowering (inline.py)
  "split"  a primitive with several elementwise results: replaced before lowering by one
           equation per result (inline.split_outputs), whose entries `fn` lists
Entries are generated from each primitive's record (`Primitive.lowering`: a math-library
function, an LLVM intrinsic, one instruction, a comparison or an expression of other
elementwise primitives); the literal table holds only the hand-written ones.
`dtypes` lists what the entry supports; tests/test_codegen.py checks it covers the primitive's.
"""
from __future__ import annotations

import gc

from llvmlite import ir

from ..ir.core import Lit, Primitive, on_register
from ..ir.prims.elementwise import uniform_exponent
from .errors import CompileError
from . import kernels, lapack, mathlib, special
from .builder import FnBuilder
from ..ir.types import ALL, FLOATS, NUMERIC
from .emit import I1, REG, Ix, const, i64



class Lowering:
    __slots__ = ("kind", "fn", "dtypes", "operands")

    def __init__(self, kind, fn, dtypes, operands=("once",)):
        self.kind = kind
        self.fn = fn
        self.dtypes = tuple(dtypes)
        self.operands = operands


# --- elementwise rules ------------------------------------------------------------------------
def _fi(fop, iop):
    def fn(c, e, dt, v):
        return getattr(c.b, fop if dt in FLOATS else iop)(*v)
    return fn


def _cmp(op):
    def fn(c, e, dt, v):
        b = c.b
        if dt in FLOATS:  # NaN compares false, except != (as NumPy)
            return b.fcmp_unordered(op, *v) if op == "!=" else b.fcmp_ordered(op, *v)
        return (b.icmp_unsigned if dt == "bool" else b.icmp_signed)(op, *v)
    return fn


def _extremum(op):
    # NumPy: (a OP b or isnan(a)) ? a : b, so NaN in either operand propagates
    def fn(c, e, dt, v):
        b = c.b
        x, y = v
        if dt in FLOATS:
            take = b.or_(b.fcmp_ordered(op, x, y), b.fcmp_unordered("uno", x, x))
        else:
            take = b.icmp_signed(op, x, y)
        return b.select(take, x, y)
    return fn


def _math(name):
    def fn(c, e, dt, v):
        return c.math_call(name, dt, v)
    return fn


def _pow(c, e, dt, v):
    y = e.inputs[1]
    x = v[0]
    if isinstance(y, Lit) and isinstance(y.value, (int, float)):
        # NumPy's fast paths for scalar exponents (exact squares, sqrt for 0.5, 1/x for -1)
        ev = float(y.value)
        if ev == 2.0:
            return c.b.fmul(x, x)
        if ev == 1.0:
            return x
        if ev == 0.0:  # C99 and NumPy: x**0 == 1 for every x, NaN included
            return const(dt, 1.0)
        if ev == 0.5:
            return mathlib.call(c.b, "sqrt", dt, x)
        if ev == -1.0:
            return c.b.fdiv(const(dt, 1.0), x)
    r = c.math_call("pow", dt, v)
    if y is None or isinstance(y, Lit) or not uniform_exponent(y, c.plan.producer):
        return r
    # one exponent value for the whole result, known at run time: NumPy's fast paths by value
    # (the pow primitive's rule, elementwise._pow_impl)
    b, yv = c.b, v[1]
    for ev, fast in ((2.0, lambda: b.fmul(x, x)), (1.0, lambda: x),
                     (0.0, lambda: const(dt, 1.0)),
                     (0.5, lambda: mathlib.call(b, "sqrt", dt, x)),
                     (-1.0, lambda: b.fdiv(const(dt, 1.0), x))):
        r = b.select(b.fcmp_ordered("==", yv, const(dt, ev)), fast(), r)
    return r


def _neg(c, e, dt, v):
    return c.b.fneg(v[0]) if dt in FLOATS else c.b.sub(const(dt, 0), v[0])


def _abs(c, e, dt, v):
    b, x = c.b, v[0]
    if dt in FLOATS:
        return c.math.intr(f"llvm.fabs.{'f32' if dt == 'f32' else 'f64'}", x, ret=REG[dt])
    return b.select(b.icmp_signed("<", x, const(dt, 0)), b.sub(const(dt, 0), x), x)


def _sign(c, e, dt, v):
    b, x = c.b, v[0]
    if dt in FLOATS:  # NaN stays NaN, +-0 gives +0 (as NumPy)
        z = const(dt, 0.0)
        r = b.select(b.fcmp_ordered("==", x, z), z, x)
        r = b.select(b.fcmp_ordered("<", x, z), const(dt, -1.0), r)
        return b.select(b.fcmp_ordered(">", x, z), const(dt, 1.0), r)
    z = const(dt, 0)
    return b.sub(b.zext(b.icmp_signed(">", x, z), REG[dt]),
                 b.zext(b.icmp_signed("<", x, z), REG[dt]))


def _convert(c, e, dt, v):
    b, x, to = c.b, v[0], e.outvars[0].type.dtype
    if to == dt:
        return x
    if dt in FLOATS:
        if to in FLOATS:
            return b.fpext(x, REG[to]) if to == "f64" else b.fptrunc(x, REG[to])
        if to == "bool":
            return b.fcmp_unordered("!=", x, const(dt, 0.0))
        # NumPy on x86: NaN and out-of-range values give INT_MIN (fptosi would be poison)
        lo = -(2.0 ** (31 if to == "i32" else 63))
        ok = b.and_(b.fcmp_ordered(">=", x, const(dt, lo)), b.fcmp_ordered("<", x, const(dt, -lo)))
        r = b.fptosi(b.select(ok, x, const(dt, 0.0)), REG[to])
        return b.select(ok, r, const(to, int(lo)))
    if dt == "bool":
        return b.uitofp(x, REG[to]) if to in FLOATS else b.zext(x, REG[to])
    if to in FLOATS:
        return b.sitofp(x, REG[to])
    if to == "bool":
        return b.icmp_signed("!=", x, const(dt, 0))
    return b.sext(x, REG[to]) if to == "i64" else b.trunc(x, REG[to])


def _full(c, e, dt, v):
    return const(e.params["dtype"], e.params["value"])


# --- index maps -------------------------------------------------------------------------------
def _bcast(c, e, ix):
    x = e.inputs[0]
    out = e.outvars[0].type.shape
    od = ix.get_dims(c.b, out)
    dims = [i64(0) if x.type.shape[i] == 1 else od[d] for i, d in enumerate(e.params["dims"])]
    return x, Ix(dims), None


def _transpose(c, e, ix):
    x = e.inputs[0]
    od = ix.get_dims(c.b, e.outvars[0].type.shape)
    dims = [None] * len(od)
    for j, p in enumerate(e.params["perm"]):
        dims[p] = od[j]
    return x, Ix(dims), None


def _reshape(c, e, ix):
    return e.inputs[0], Ix(None, ix.get_lin(c.b, e.outvars[0].type.shape)), None


def _slice(c, e, ix):
    b, p = c.b, e.params
    od = ix.get_dims(b, e.outvars[0].type.shape)
    dims = [d if (s, st) == (0, 1) else b.add(b.mul(d, i64(st)), i64(s))
            for d, s, st in zip(od, p["start"], p["strides"])]
    return e.inputs[0], Ix(dims), None


def _pad(c, e, ix):
    # branch-free: read the operand at a clamped (valid) index, then select the padding value
    b, p, x = c.b, e.params, e.inputs[0]
    dt = x.type.dtype
    if x.type.size == 0:
        return None, None, lambda _: const(dt, 0)
    od = ix.get_dims(b, e.outvars[0].type.shape)
    dims, ok = [], ir.Constant(I1, 1)
    for d, lo, hi, it, n in zip(od, p["low"], p["high"], p["interior"], x.type.shape):
        if lo == hi == it == 0:
            dims.append(d)
            continue
        j = b.sub(d, i64(lo))
        q = b.sdiv(j, i64(it + 1)) if it else j
        good = b.and_(b.icmp_signed(">=", j, i64(0)), b.icmp_signed("<", q, i64(n)))
        if it:
            good = b.and_(good, b.icmp_signed("==", b.srem(j, i64(it + 1)), i64(0)))
        ok = b.and_(ok, good)
        dims.append(b.select(good, q, i64(0)))
    return x, Ix(dims), lambda v: b.select(ok, v, const(dt, 0))


# --- the table --------------------------------------------------------------------------------
# Hand-written entries: elementwise operations with NumPy corner cases of their own, index
# maps and kernels. Every other primitive's entry is generated from its record below.
LOWERINGS = {
    "pow": Lowering("ew", _pow, FLOATS),
    "maximum": Lowering("ew", _extremum(">"), NUMERIC),
    "minimum": Lowering("ew", _extremum("<"), NUMERIC),
    "neg": Lowering("ew", _neg, NUMERIC),
    "abs": Lowering("ew", _abs, NUMERIC),
    "sign": Lowering("ew", _sign, NUMERIC),
    "convert_element_type": Lowering("ew", _convert, ALL),
    "bitcast_convert_type": Lowering(
        "ew", lambda c, e, dt, v: c.b.bitcast(v[0], REG[e.outvars[0].type.dtype]), NUMERIC),
    "stop_gradient": Lowering("ew", lambda c, e, dt, v: v[0], ALL),
    "full": Lowering("ew", _full, ALL),
    "broadcast_in_dim": Lowering("index", _bcast, ALL),
    "transpose": Lowering("index", _transpose, ALL),
    "reshape": Lowering("index", _reshape, ALL),
    "slice": Lowering("index", _slice, ALL),
    "pad": Lowering("index", _pad, ALL),
    "reduce_sum": Lowering("kernel", kernels.reduce, NUMERIC),
    "reduce_max": Lowering("kernel", kernels.reduce, NUMERIC),
    "reduce_min": Lowering("kernel", kernels.reduce, NUMERIC),
    "argmax": Lowering("kernel", kernels.argext, NUMERIC),
    "argmin": Lowering("kernel", kernels.argext, NUMERIC),
    "cumsum": Lowering("kernel", kernels.cumsum, NUMERIC),
    "argsort": Lowering("kernel", kernels.argsort, NUMERIC, ("buffer",)),
    "concatenate": Lowering("kernel", kernels.concatenate, ALL),
    "gather": Lowering("kernel", kernels.gather, ALL, ("buffer", "repeat")),
    "scatter_add": Lowering("kernel", kernels.scatter_add, NUMERIC, ("once", "repeat", "once")),
    "dot_general": Lowering("kernel", kernels.dot_general, NUMERIC, ("buffer", "buffer")),
    "guard": Lowering("guard", kernels.guard, ("bool",)),
    # LAPACK calls (lapack.py); the multi-result ones get one output buffer per result
    **{name: Lowering("kernel", fn, FLOATS, operands)
       for name, (fn, operands) in lapack.KERNELS.items()},
    # inlined before lowering (inline.py): their `fun` graph's equations take their place
    "custom_vjp_call": Lowering("inline", None, FLOATS),
    "custom_jvp_call": Lowering("inline", None, FLOATS),
}


HAND_WRITTEN = frozenset(LOWERINGS)


# --- entries generated from the primitive records (core.Primitive.lowering) ------------------
def _intrinsic(name, ints):
    def fn(c, e, dt, v):
        if dt in FLOATS:
            return c.math.intr(f"{name}.{dt}", *v, ret=REG[dt])
        return v[0]  # "int_identity": an integer is its own floor, ceil, ...
    return fn


class _Stub:
    """What an elementwise lowering sees of its equation inside an ("expr", fn) lowering."""
    __slots__ = ("inputs", "params", "outvars")

    def __init__(self, n):
        self.inputs, self.params, self.outvars = [None] * n, {}, []


class ScalarOps:
    """The `o` of an ("expr", fn) lowering: `o.mul(x, y)` emits primitive mul's elementwise
    lowering on scalar values; Python numbers become constants of the operand dtype. Usable:
    elementwise primitives whose lowering needs no params (not convert_element_type, full)."""

    def __init__(self, c, dt):
        self._c, self._dt = c, dt

    def __getattr__(self, name):
        low = LOWERINGS.get(name)
        if low is None or low.kind != "ew":
            raise AttributeError(f"{name} has no elementwise lowering to use in an expression")

        def emit(*args):
            vals = [const(self._dt, a) if isinstance(a, (bool, int, float)) else a for a in args]
            return low.fn(self._c, _Stub(len(vals)), self._dt, vals)
        return emit


def _expr(fn, k=None):
    def lower_expr(c, e, dt, v):
        r = fn(ScalarOps(c, dt), *v)
        return r if k is None else r[k]
    return lower_expr


def _generated(p, k=None):
    """The Lowering of a record's `lowering` spec (result k of a multi-result one)."""
    spec = p.lowering
    how = spec[0]
    if how == "math":
        ints = spec[1] in mathlib.INTEGER  # NumPy's division family: integers too
        return Lowering("ew", _math(spec[1]), [d for d in p.dtypes if d in FLOATS or ints])
    if how == "intrinsic":
        ints = len(spec) > 2 and spec[2] == "int_identity"
        return Lowering("ew", _intrinsic(spec[1], ints),
                        [d for d in p.dtypes if d in FLOATS or ints])
    if how == "instr":
        return Lowering("ew", _fi(spec[1], spec[2]), p.dtypes)
    if how == "cmp":
        return Lowering("ew", _cmp(spec[1]), p.dtypes)
    if how == "expr":
        return Lowering("ew", _expr(spec[1], k), p.dtypes)
    if how == "extern":  # SciPy's scalar function (codegen/special.py), on floats
        return Lowering("ew", special.extern(spec[1]), [d for d in p.dtypes if d in FLOATS])
    if how == "special":  # a function of codegen/special.py, given the equation (params)
        return Lowering("ew", getattr(special, spec[1]), [d for d in p.dtypes if d in FLOATS])
    raise ValueError(f"primitive {p.name}: unknown lowering {spec!r}")


def _add(p):
    if p.lowering is None:
        return
    if p.name in HAND_WRITTEN:
        raise ValueError(f"primitive {p.name} is lowered twice (record and hand-written table)")
    if p.nout == 1:
        LOWERINGS[p.name] = _generated(p)
        return
    # several results: split before lowering into one elementwise equation per result (a
    # projection), which fuse like any others (in one loop nest LLVM shares their common work)
    projs = []
    for k in range(p.nout):
        proj = Primitive(f"{p.name}.{k}", None, None, kind=p.kind, cost=p.cost)
        LOWERINGS[proj.name] = _generated(p, k)
        projs.append(proj)
    LOWERINGS[p.name] = Lowering("split", projs, LOWERINGS[projs[0].name].dtypes)


def _remove(p):
    low = LOWERINGS.get(p.name)
    if p.name in HAND_WRITTEN or low is None:
        return
    if low.kind == "split":
        for proj in low.fn:
            LOWERINGS.pop(proj.name, None)
    del LOWERINGS[p.name]


on_register(_add, _remove)


SYMBOL = "adjit_entry"  # one function per JIT library, so one fixed name is enough


def eqn_dtype(e):
    """The dtype a primitive's record speaks of: its operands' (the branches' for select, the
    result's for full)."""
    if e.prim.name in ("full", "select"):
        return e.outvars[0].type.dtype
    return next((x.type.dtype for x in e.inputs if not isinstance(x, Lit)), None)


def check_supported(g):
    """CompileError naming the first equation codegen cannot lower."""
    for e in g.eqns:
        low = LOWERINGS.get(e.prim.name)
        if low is None:
            raise CompileError(f"graph {g.name}", f"no lowering for {e.prim.name}")
        if len(e.outvars) > 1 and low.kind not in ("split", "kernel"):
            raise CompileError(f"graph {g.name}", f"{e.prim.name} has several results: "
                               "only kernels and elementwise ones (an expression lowering) "
                               "compile")
        dt = eqn_dtype(e)
        if dt not in low.dtypes:
            raise CompileError(f"graph {g.name}", f"{e.prim.name} has no lowering for "
                                      f"{dt} (supported: {', '.join(low.dtypes)})")


def lower(g):
    """LLVM IR text of graph `g` plus what the runtime needs to call it:
    (ir_text, {"symbol", "workspace", "imports"})."""
    check_supported(g)
    # Lowering allocates hundreds of thousands of llvmlite objects, all alive until the text
    # is printed: the cyclic garbage collector's full passes over them were half of the time
    # (the 50-step LSTM: 490 -> 250 ms without). It runs again when lowering is over.
    collect = gc.isenabled()
    gc.disable()
    try:
        fb = FnBuilder(g, LOWERINGS, SYMBOL)
        try:
            text = fb.build()
        except CompileError:
            raise
        except Exception as exc:  # a bug in a lowering: say where, not a raw traceback
            raise CompileError(f"graph {g.name}", f"lowering failed: {exc!r}") from exc
        meta = {"symbol": SYMBOL, "workspace": fb.ws_bytes, "imports": sorted(fb.imports),
                "fastcall": SYMBOL + "_fc"}
        _dismantle(fb)
    finally:
        if collect:
            gc.enable()
    return text, meta


def _dismantle(fb):
    """Break the reference cycles of a finished lowering (instructions and their block,
    blocks and their function, functions and the module, the builder and its tables), so that
    its llvmlite objects (~130,000 for mlp-1000) are freed by reference counting as it goes,
    not left to the cyclic garbage collector (whose passes over them took 0.1-0.15 s there)."""
    for fn in fb.module.functions:
        for bb in fn.blocks:
            for ins in bb.instructions:
                ins.__dict__.clear()  # (a phi and the update of its loop's counter: a cycle)
            bb.__dict__.clear()
        for a in fn.args:
            a.__dict__.clear()
        fn.__dict__.clear()
    fb.module.__dict__.clear()  # (a loop's metadata refers to itself)
    fb.__dict__.clear()

