"""Native code of the special functions (scipy.special's, adjit/ir/prims/special.py).

Most of them call SciPy's own scalar implementation: `scipy.special.cython_special` exports
each as a C function `double f(double, ..., int skip_dispatch)` in its `__pyx_capi__`. Compiled
code declares the external symbol `adjit_sf<nin>_<capsule>` and records `sf<nin>_<capsule>`
among its imports; the runtime (adjit/runtime/special.py) resolves it to the capsule's pointer
when it links the object, so no address is ever part of the object code or the disk cache, and
SciPy is imported only when a graph uses one. A float32 operand is computed in double and
rounded once (as SciPy's float32 loops do). Such a call is one scalar call per element: the loop
around it does not vectorise.

`polygamma` of order n >= 1 has no C entry point in SciPy: it is an internal function of the
module (a real loop), see `polygamma`.
"""
from __future__ import annotations

import math
from fractions import Fraction

from llvmlite import ir

from .emit import F32, F64, I32

CAPI_PREFIX = "sf"


def import_name(capsule, nin):
    """The import (runtime-resolved symbol) of a cython_special capsule taking `nin` doubles."""
    return f"{CAPI_PREFIX}{nin}_{capsule}"


def call_capsule(c, capsule, dt, args):
    """Emit a call of SciPy's scalar `capsule` on `args` (values of dtype dt) in double."""
    b = c.b
    name = import_name(capsule, len(args))
    sym = "adjit_" + name
    mod = b.module
    fn = mod.globals.get(sym)
    if fn is None:
        fn = ir.Function(mod, ir.FunctionType(F64, [F64] * len(args) + [I32]), sym)
        fn.attributes.add("nounwind")
    c.imports.add(name)
    wide = [b.fpext(a, F64) if dt == "f32" else a for a in args]
    r = b.call(fn, wide + [ir.Constant(I32, 0)])
    return b.fptrunc(r, F32) if dt == "f32" else r


def extern(capsule):
    """The elementwise lowering of a record's ("extern", capsule)."""
    def fn(c, e, dt, v):
        return call_capsule(c, capsule, dt, list(v))
    return fn


# --- polygamma ------------------------------------------------------------------------------
# psi^(n)(x) = (-1)^(n+1) n! [sum_{k<m} (x+k)^-(n+1) + zeta(n+1, y)], y = x + m >= SHIFT, and
# n! zeta(n+1, y) = (n-1)!/y^n + n!/(2 y^(n+1)) + sum_j B_2j (2j+n-1)!/((2j)! y^(2j+n)):
# with y >= 16 and 12 Bernoulli terms the first dropped term is below 1e-19 relative (n <= 8).
SHIFT = 16.0
BERNOULLI = [Fraction(1, 6), Fraction(-1, 30), Fraction(1, 42), Fraction(-1, 30),
             Fraction(5, 66), Fraction(-691, 2730), Fraction(7, 6), Fraction(-3617, 510),
             Fraction(43867, 798), Fraction(-174611, 330), Fraction(854513, 138),
             Fraction(-236364091, 2730)]
FAR = -1.0e7  # below this the upward recurrence would take too long: NaN (docs/ir.md)


def _coeffs(n):
    return [float(B * math.factorial(2 * j + n - 1) / math.factorial(2 * j))
            for j, B in enumerate(BERNOULLI, 1)]


def _powi(b, x, k):
    r = x
    for _ in range(k - 1):
        r = b.fmul(r, x)
    return r


def _polygamma_fn(mod, n):
    """The module's internal `double adjit_polygamma<n>(double x)` for n >= 1."""
    name = f"adjit_polygamma{n}"
    fn = mod.globals.get(name)
    if fn is not None:
        return fn
    fn = ir.Function(mod, ir.FunctionType(F64, [F64]), name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    x = fn.args[0]
    entry, loop, body, tail = (fn.append_basic_block(s) for s in ("entry", "loop", "body",
                                                                   "tail"))
    b = ir.IRBuilder(entry)
    k = lambda v: ir.Constant(F64, v)  # noqa: E731
    far = b.fcmp_ordered("<", x, k(FAR))
    b.branch(loop)
    b.position_at_end(loop)
    y = b.phi(F64)
    acc = b.phi(F64)
    y.add_incoming(x, entry)
    acc.add_incoming(k(0.0), entry)
    go = b.and_(b.fcmp_ordered("<", y, k(SHIFT)), b.not_(far))
    b.cbranch(go, body, tail)
    b.position_at_end(body)
    p = _powi(b, y, n + 1)
    # a pole (x a non-positive integer): +inf whatever the sign of zero
    term = b.select(b.fcmp_ordered("==", y, k(0.0)), k(math.inf), b.fdiv(k(1.0), p))
    acc2 = b.fadd(acc, term)
    y2 = b.fadd(y, k(1.0))
    y.add_incoming(y2, body)
    acc.add_incoming(acc2, body)
    b.branch(loop)
    b.position_at_end(tail)
    fact = float(math.factorial(n))
    inv = b.fdiv(k(1.0), y)
    inv2 = b.fmul(inv, inv)
    ypn = _powi(b, inv, n)  # y^-n
    # Bernoulli series in 1/y^2 (Horner), times y^-(n+2)
    cs = _coeffs(n)
    s = k(cs[-1])
    for cf in reversed(cs[:-1]):
        s = b.fadd(b.fmul(s, inv2), k(cf))
    asym = b.fmul(ypn, b.fadd(b.fadd(k(float(math.factorial(n - 1))),
                                     b.fmul(inv, k(fact / 2.0))), b.fmul(inv2, s)))
    total = b.fadd(b.fmul(acc, k(fact)), asym)
    sign = 1.0 if n % 2 else -1.0
    r = b.fmul(total, k(sign))
    r = b.select(far, k(math.nan), r)
    b.ret(r)
    return fn


def polygamma(c, e, dt, v):
    """Elementwise lowering of polygamma[n]: digamma's capsule for n = 0, else the module's
    recurrence + asymptotic series function."""
    n = e.params["n"]
    if n == 0:
        return call_capsule(c, "__pyx_fuse_1psi", dt, list(v))
    b = c.b
    x = b.fpext(v[0], F64) if dt == "f32" else v[0]
    r = b.call(_polygamma_fn(b.module, n), [x])
    return b.fptrunc(r, F32) if dt == "f32" else r
