"""Lowering of adjit graphs to LLVM IR: the table `LOWERINGS` (one entry per primitive, keyed
by the primitive's name) and `compile_graph`.

Entry kinds (see builder.py for how they are used):
  "ew"     fn(c, eqn, dt, vals) -> value    elementwise, on scalars at one index; `dt` is the
                                            dtype the operands are used at
  "index"  fn(c, eqn, ix) -> (operand, operand index, finish)
                                            an index map: the value at `ix` is finish(the
                                            operand's value at the mapped index), finish None
                                            meaning the identity (operand None: finish(None));
                                            builder.value evaluates chains without recursion
  "kernel" fn(c, eqn, out_buf)              writes its whole output (kernels.py); `operands`
                                            says how each operand is read: 'once' (may be
                                            inlined), 'repeat' (inlined only if cheap),
                                            'buffer' (needs a buffer)
  "guard"  like a kernel, without an output
  "inline" replaced by the equations of a graph in its params before lowering (inline.py)
`dtypes` lists what the entry supports; tests/test_codegen.py checks it covers the primitive's.
"""
from __future__ import annotations

from llvmlite import ir

from ..ir.core import Lit
from ..runtime import engine
from . import kernels, mathlib
from .builder import FnBuilder
from .emit import FLOATS, I1, REG, Ix, const, i64

from .abi import LOWERING_VERSION, MATH_FLAGS  # noqa: F401 (part of the disk-cache key)
ALL = ("f32", "f64", "i32", "i64", "bool")
NUMERIC = ("f32", "f64", "i32", "i64")


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
        return mathlib.call(c.b, name, dt, *v)
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
    return mathlib.call(c.b, "pow", dt, *v)


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
LOWERINGS = {
    "add": Lowering("ew", _fi("fadd", "add"), NUMERIC),
    "sub": Lowering("ew", _fi("fsub", "sub"), NUMERIC),
    "mul": Lowering("ew", _fi("fmul", "mul"), NUMERIC),
    "div": Lowering("ew", _fi("fdiv", "sdiv"), FLOATS),
    "pow": Lowering("ew", _pow, FLOATS),
    "maximum": Lowering("ew", _extremum(">"), NUMERIC),
    "minimum": Lowering("ew", _extremum("<"), NUMERIC),
    "lt": Lowering("ew", _cmp("<"), ALL),
    "le": Lowering("ew", _cmp("<="), ALL),
    "gt": Lowering("ew", _cmp(">"), ALL),
    "ge": Lowering("ew", _cmp(">="), ALL),
    "eq": Lowering("ew", _cmp("=="), ALL),
    "ne": Lowering("ew", _cmp("!="), ALL),
    "and": Lowering("ew", _fi("and_", "and_"), ("bool",)),
    "or": Lowering("ew", _fi("or_", "or_"), ("bool",)),
    "not": Lowering("ew", lambda c, e, dt, v: c.b.not_(v[0]), ("bool",)),
    "neg": Lowering("ew", _neg, NUMERIC),
    "abs": Lowering("ew", _abs, NUMERIC),
    "sign": Lowering("ew", _sign, NUMERIC),
    "select": Lowering("ew", lambda c, e, dt, v: c.b.select(*v), ALL),
    "convert_element_type": Lowering("ew", _convert, ALL),
    "stop_gradient": Lowering("ew", lambda c, e, dt, v: v[0], ALL),
    "full": Lowering("ew", _full, ALL),
    **{n: Lowering("ew", _math(n), FLOATS) for n in mathlib.UNARY},
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
    "concatenate": Lowering("kernel", kernels.concatenate, ALL),
    "gather": Lowering("kernel", kernels.gather, ALL, ("buffer", "repeat")),
    "scatter_add": Lowering("kernel", kernels.scatter_add, NUMERIC, ("once", "repeat", "once")),
    "dot_general": Lowering("kernel", kernels.dot_general, NUMERIC, ("buffer", "buffer")),
    "guard": Lowering("guard", kernels.guard, ("bool",)),
    # inlined before lowering (inline.py): their `fun` graph's equations take their place
    "custom_vjp_call": Lowering("inline", None, FLOATS),
    "custom_jvp_call": Lowering("inline", None, FLOATS),
}


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
            raise engine.CompileError(f"graph {g.name}", f"no lowering for {e.prim.name}")
        dt = eqn_dtype(e)
        if dt not in low.dtypes:
            raise engine.CompileError(f"graph {g.name}", f"{e.prim.name} has no lowering for "
                                      f"{dt} (supported: {', '.join(low.dtypes)})")


def lower(g):
    """LLVM IR text of graph `g` plus what the runtime needs to call it:
    (ir_text, {"symbol", "workspace", "imports"})."""
    check_supported(g)
    fb = FnBuilder(g, LOWERINGS, SYMBOL)
    try:
        text = fb.build()
    except engine.CompileError:
        raise
    except Exception as exc:  # a bug in a lowering: say where, not a raw traceback
        raise engine.CompileError(f"graph {g.name}", f"lowering failed: {exc!r}") from exc
    return text, {"symbol": SYMBOL, "workspace": fb.ws_bytes, "imports": sorted(fb.imports),
                  "fastcall": SYMBOL + "_fc"}


def compile_object(g):
    """(object code, meta) for graph `g`: lower, optimise (-O3, vectorised), emit."""
    text, meta = lower(g)
    what = f"graph {g.name}"
    mod = engine.optimize(text, what)
    return engine.emit_object(mod, what), meta


def compile_graph(g):
    """Compile graph `g` to native code (no caching: see adjit.runtime.get_compiled).

    >>> import numpy as np
    >>> from adjit.ir import parse_graph
    >>> g = parse_graph("def f(a: f64[3]) -> f64[3]:\n  b: f64[3] = mul a 2.0\n  return b\n")
    >>> compile_graph(g)([np.arange(3.0)])[0]
    array([0., 2., 4.])
    """
    from ..runtime.call import CompiledGraph
    obj, meta = compile_object(g)
    return CompiledGraph(g, obj, meta)
