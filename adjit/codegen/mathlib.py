"""Vectorisable transcendental functions written as LLVM IR: range reduction + polynomial.

Why not `llvm.exp` & co.: the loop vectoriser turns a vector `llvm.exp` into one libm call per
lane (there is no SVML here), so a fused loop containing exp would not vectorise. Everything
below is branch-free (selects, not branches) so the vectoriser can widen it.

For f32, exp, expm1, tanh, logistic, log and log1p run in single precision (twice the
lanes); sin, cos, tan and pow widen to f64 (their range reduction and double-double log need
it) with shorter polynomials, and round once at the end. Polynomials are truncated Taylor
series (their coefficients are exact fractions, so nothing hand-fitted can be mistyped);
reduction keeps the argument small enough that the truncation error is below half an ulp.
NaN and inf propagate as NumPy's libm results do; -0.0 is kept where NumPy keeps it.
Accuracy: see docs/codegen.md and tests/test_mathlib.py (they state the ulp bound per
function).
"""
from __future__ import annotations

import copy
import math
import struct

from llvmlite import ir

F32, F64, I1, I64 = ir.FloatType(), ir.DoubleType(), ir.IntType(1), ir.IntType(64)

LN2_HI = 6.93147180369123816490e-01  # 32 significant bits: n * LN2_HI is exact for |n| < 2^21
LN2_LO = 1.90821492927058770002e-10
LOG2E = 1.4426950408889634
# pi/2 in 33-bit pieces (fdlibm's pio2_1, pio2_2, pio2_3, pio2_3t): n * piece is exact for
# |n| < 2^20, so the reduction is accurate for |x| up to about 1.6e6.
PIO2 = (1.57079632673412561417e+00, 6.07710050630396597660e-11,
        2.02226624871116645580e-21, 8.47842766036889956997e-32)
TWO_OVER_PI = 0.63661977236758134308


def _taylor(first, last, step=1, sign=1):
    """1/k! for k = first, first+step, ..., last; signs alternate if `sign` is -1 or 1 (the
    first term's sign), all positive if `sign` is 0."""
    out = []
    for j, k in enumerate(range(first, last + 1, step)):
        s = 1.0 if not sign else sign * (-1.0) ** j
        out.append(s / math.factorial(k))
    return out


# Terms per precision: the first dropped term is < 2^-55 (f64) or < 2^-29 (f32) relative.
EXP = {"f64": _taylor(0, 13, sign=0), "f32": _taylor(0, 7, sign=0)}  # |r| <= ln2/2
EXPM1 = {"f64": _taylor(2, 14, sign=0), "f32": _taylor(2, 8, sign=0)}  # r + r^2 * P(r)
LOGS = {"f64": [1.0 / k for k in range(3, 23, 2)],            # atanh series in s^2 <= 0.0295
        "f32": [1.0 / k for k in range(3, 15, 2)]}
SIN = {"f64": _taylor(3, 17, 2, -1), "f32": _taylor(3, 11, 2, -1)}  # |r| <= pi/4
COS = {"f64": _taylor(4, 18, 2, 1), "f32": _taylor(4, 12, 2, 1)}


def _bits(v):
    return struct.unpack("<q", struct.pack("<d", v))[0]


class Fmt:
    """What the code depends on in a floating-point format."""

    def __init__(self, name, ft, it, mbits, bias, ln2, tiny, scale, exp_lo, exp_hi, em1_lo,
                 em1_big):
        self.name, self.ft, self.it, self.mbits, self.bias = name, ft, it, mbits, bias
        self.ln2 = ln2              # ln 2 = hi + lo, hi with few bits so n*hi is exact
        self.tiny, self.scale = tiny, scale  # smallest normal; 2^scale lifts subnormals
        self.exp_lo, self.exp_hi = exp_lo, exp_hi  # exp is 0 / inf beyond
        self.em1_lo, self.em1_big = em1_lo, em1_big  # expm1 is -1 below; 2^n overflows above
        self.sfx = name             # intrinsic suffix: f64, or v8f64 for 8 lanes
        self.i64 = I64              # the quadrant's integer type (i64 or <n x i64>)

    def lanes(self, n):
        """The same format on vectors of n lanes (an outlined function's vector variant)."""
        v = copy.copy(self)
        v.ft, v.it = ir.VectorType(self.ft, n), ir.VectorType(self.it, n)
        v.sfx, v.i64 = f"v{n}{self.name}", ir.VectorType(I64, n)
        return v


FMT = {"f64": Fmt("f64", F64, I64, 52, 1023, (LN2_HI, LN2_LO), 2.2250738585072014e-308, 54,
                  -746.0, 710.0, -80.0, 700.0),
       "f32": Fmt("f32", F32, ir.IntType(32), 23, 127, (0.693359375, -2.12194440e-4),
                  1.1754943508222875e-38, 25, -104.0, 89.0, -20.0, 88.0)}


class Math:
    """Builds math code with one IRBuilder. `fmt` is the arithmetic's format, `terms` ('f32'
    or 'f64') the precision the polynomials are long enough for."""

    def __init__(self, builder, fmt="f64", terms=None, lanes=None):
        self.b = builder
        self.f = FMT[fmt] if lanes is None else FMT[fmt].lanes(lanes)
        self.terms = terms or fmt

    # --- small helpers --------------------------------------------------------------------
    def k(self, v):
        return ir.Constant(self.f.ft, v)

    def ik(self, v):
        return ir.Constant(self.f.it, v)

    def intr(self, name, *args, ret=None):
        mod = self.b.module
        fn = mod.globals.get(name)
        if fn is None:
            fn = ir.Function(mod, ir.FunctionType(ret or self.f.ft, [a.type for a in args]),
                             name)
        return self.b.call(fn, list(args))

    def fma(self, a, b, c):
        # fmuladd: fused where the CPU has FMA; every use below is accurate either way
        return self.intr(f"llvm.fmuladd.{self.f.sfx}", a, b, c)

    def poly(self, x, coeffs):
        acc = self.k(coeffs[-1])
        for c in reversed(coeffs[:-1]):
            acc = self.fma(acc, x, self.k(c))
        return acc

    def sel(self, c, a, b):
        return self.b.select(c, a, b)

    def cmp(self, op, a, b):
        return self.b.fcmp_ordered(op, a, b if isinstance(b, ir.Value) else self.k(b))

    def isnan(self, x):
        return self.b.fcmp_unordered("uno", x, x)

    def fabs(self, x):
        return self.intr(f"llvm.fabs.{self.f.sfx}", x)

    def rint(self, x):
        return self.intr(f"llvm.rint.{self.f.sfx}", x)

    def copysign(self, a, b):
        return self.intr(f"llvm.copysign.{self.f.sfx}", a, b)

    def clamp(self, x, lo, hi):
        # NaN is replaced by 0 so integer conversions below never see it (fptosi of NaN is
        # poison); every caller re-selects NaN at the end.
        x = self.sel(self.isnan(x), self.k(0.0), x)
        x = self.sel(self.cmp("<", x, lo), self.k(lo), x)
        return self.sel(self.cmp(">", x, hi), self.k(hi), x)

    def pow2(self, n_int):
        """2^n for an integer n in the normal exponent range."""
        b = self.b
        e = b.shl(b.add(n_int, self.ik(self.f.bias)), self.ik(self.f.mbits))
        return b.bitcast(e, self.f.ft)

    def ldexp(self, x, n):
        """x * 2^n for an integral float n (|n| < 2 * bias + mbits), in two exact steps so
        results in the subnormal range are rounded once and 2^(bias+1) * 0.5 is finite."""
        b = self.b
        ni = b.fptosi(n, self.f.it)
        h = b.ashr(ni, self.ik(1))
        return b.fmul(b.fmul(x, self.pow2(h)), self.pow2(b.sub(ni, h)))

    # --- exp family -----------------------------------------------------------------------
    def _reduce_ln2(self, x, lo=None, hi=None):
        """n, r with x = n*ln2 + r, |r| <= ln2/2 (x clamped to where exp is finite/nonzero)."""
        xc = self.clamp(x, self.f.exp_lo if lo is None else lo,
                        self.f.exp_hi if hi is None else hi)
        n = self.rint(self.b.fmul(xc, self.k(LOG2E)))
        nn = self.b.fneg(n)
        r = self.fma(nn, self.k(self.f.ln2[0]), xc)
        r = self.fma(nn, self.k(self.f.ln2[1]), r)
        return n, r

    def exp(self, x):
        n, r = self._reduce_ln2(x)
        p = self.poly(r, EXP[self.terms])
        return self.sel(self.isnan(x), x, self.ldexp(p, n))

    def _expm1_poly(self, r):
        b = self.b
        return self.fma(b.fmul(r, r), self.poly(r, EXPM1[self.terms]), r)

    def expm1(self, x):
        # expm1(n*ln2 + r) = 2^n * expm1(r) + (2^n - 1): no cancellation for small |x| (n = 0)
        b = self.b
        n, r = self._reduce_ln2(x, self.f.em1_lo, self.f.exp_hi)
        p = self._expm1_poly(r)
        big = self.cmp(">", x, self.f.em1_big)  # 2^n itself would overflow: expm1 = exp
        one = self.k(1.0)
        res = self.sel(big, b.fsub(self.ldexp(b.fadd(p, one), n), one),
                       b.fadd(self.ldexp(p, n), b.fsub(self.ldexp(one, n), one)))
        res = self.sel(self.cmp("==", x, 0.0), x, res)  # keeps -0.0
        return self.sel(self.isnan(x), x, res)

    def tanh(self, x):
        # tanh|x| = -e / (2 + e) with e = expm1(-2|x|) in (-1, 0]: never overflows
        b = self.b
        e = self.expm1(b.fmul(self.fabs(x), self.k(-2.0)))
        t = b.fdiv(b.fneg(e), b.fadd(e, self.k(2.0)))
        return self.copysign(t, x)

    def logistic(self, x):
        # as the reference: exp of a non-positive number only, so nothing overflows
        b = self.b
        e = self.exp(b.fneg(self.fabs(x)))
        d = b.fadd(e, self.k(1.0))
        return self.sel(self.cmp(">=", x, 0.0), b.fdiv(self.k(1.0), d), b.fdiv(e, d))

    # --- log family -----------------------------------------------------------------------
    def _log_parts(self, x):
        """x = 2^e * (1 + f) with 1 + f in [sqrt(1/2), sqrt(2)); s = f / (2 + f);
        log(1 + f) = 2s + 2s*R(s^2). Returns (e, f, s, R) as floats."""
        b, F = self.b, self.f
        tiny = self.cmp("<", x, F.tiny)  # subnormal (or <= 0): scale up
        xs = self.sel(tiny, b.fmul(x, self.k(2.0 ** F.scale)), x)
        bits = b.bitcast(xs, F.it)
        e = b.sub(b.and_(b.lshr(bits, self.ik(F.mbits)), self.ik(2 * F.bias + 1)),
                  self.ik(F.bias))
        m = b.bitcast(b.or_(b.and_(bits, self.ik((1 << F.mbits) - 1)),
                            self.ik(F.bias << F.mbits)), F.ft)
        big = self.cmp(">", m, math.sqrt(2.0))  # |s| <= 0.1716, s^2 <= 0.0295
        m = self.sel(big, b.fmul(m, self.k(0.5)), m)
        ef = b.sitofp(e, F.ft)
        ef = b.fadd(ef, self.sel(big, self.k(1.0), self.k(0.0)))
        ef = b.fadd(ef, self.sel(tiny, self.k(-float(F.scale)), self.k(0.0)))
        f = b.fsub(m, self.k(1.0))  # exact
        s = b.fdiv(f, b.fadd(f, self.k(2.0)))
        s2 = b.fmul(s, s)
        return ef, f, s, b.fmul(s2, self.poly(s2, LOGS[self.terms]))

    def _log_special(self, x, res):
        b = self.b
        inf = self.k(math.inf)
        res = self.sel(self.cmp("==", x, 0.0), b.fneg(inf), res)
        res = self.sel(self.cmp("==", x, math.inf), inf, res)
        res = self.sel(self.cmp("<", x, 0.0), self.k(math.nan), res)
        return self.sel(self.isnan(x), x, res)

    def log(self, x):
        b = self.b
        ef, f, s, rr = self._log_parts(x)
        # log(1+f) = f - s*(f - 2R): f is exact, the error of s is damped by s*f
        lm = b.fsub(f, b.fmul(s, b.fsub(f, b.fmul(rr, self.k(2.0)))))
        res = self.fma(ef, self.k(self.f.ln2[0]), self.fma(ef, self.k(self.f.ln2[1]), lm))
        return self._log_special(x, res)

    def log_dd(self, x):
        """log(x) as an unevaluated sum hi + lo, good to ~2^-62 relative (for pow, whose
        result is exp(y*log x): the error of log x is multiplied by |y log x|)."""
        b = self.b
        ef, f, s, rr = self._log_parts(x)
        d = b.fadd(f, self.k(2.0))
        d_lo = b.fadd(b.fsub(self.k(2.0), d), f)          # 2 + f = d + d_lo exactly
        res = self.fma(b.fneg(s), d, f)                   # f - s*d, exact
        s_lo = b.fdiv(b.fsub(res, b.fmul(s, d_lo)), d)    # s + s_lo = f / (2 + f)
        two_s = b.fmul(s, self.k(2.0))
        tail = b.fadd(b.fmul(two_s, rr), b.fmul(s_lo, self.k(2.0)))
        e_hi = b.fmul(ef, self.k(LN2_HI))                 # exact: 32-bit constant
        hi = b.fadd(e_hi, two_s)
        lo = b.fadd(b.fsub(e_hi, hi), two_s)              # Fast2Sum (|e_hi| >= |2s| or e = 0)
        lo = b.fadd(lo, self.fma(ef, self.k(LN2_LO), tail))
        hi2 = b.fadd(hi, lo)
        lo2 = b.fsub(lo, b.fsub(hi2, hi))
        hi2 = self._log_special(x, hi2)
        finite = self.cmp("<", self.fabs(hi2), math.inf)
        return hi2, self.sel(finite, lo2, self.k(0.0))

    def log1p(self, x):
        # Kahan: log1p(x) = log(u) * x / (u - 1) with u = 1 + x, which cancels u's rounding
        b = self.b
        u = b.fadd(x, self.k(1.0))
        d = b.fsub(u, self.k(1.0))
        res = b.fmul(self.log(u), b.fdiv(x, d))
        res = self.sel(self.cmp("==", d, 0.0), x, res)
        return self.sel(self.cmp("==", x, math.inf), x, res)

    # --- trigonometry ---------------------------------------------------------------------
    def _reduce_pio2(self, x):
        """q (i64, quadrant mod 4), r with x = n*pi/2 + r, |r| <= pi/4 (r is NaN for inf)."""
        b = self.b
        n = self.rint(b.fmul(x, self.k(TWO_OVER_PI)))
        nn = b.fneg(n)
        r = x
        for piece in PIO2:
            r = self.fma(nn, self.k(piece), r)
        # Beyond |x| = 2^43 this reduction loses every bit (that needs Payne-Hanek, which is
        # not implemented): keep the result bounded there rather than let the polynomial
        # explode. NaN and inf still give NaN. `ok` is also false for NaN/inf, so fptosi
        # stays defined.
        ok = self.cmp("<", self.fabs(x), 2.0 ** 43)
        q = b.fptosi(self.sel(ok, n, self.k(0.0)), self.f.i64)
        r = self.sel(b.or_(ok, self.cmp("==", self.fabs(x), math.inf)), r, self.k(0.0))
        r = self.sel(self.isnan(x), x, r)
        return b.and_(q, ir.Constant(self.f.i64, 3)), r

    def _sincos_r(self, r):
        b = self.b
        r2 = b.fmul(r, r)
        s = self.fma(b.fmul(r2, r), self.poly(r2, SIN[self.terms]), r)
        c = self.fma(r2, self.fma(r2, self.poly(r2, COS[self.terms]), self.k(-0.5)), self.k(1.0))
        return s, c

    def _quadrant(self, q, m):
        return self.b.icmp_unsigned("!=", self.b.and_(q, ir.Constant(self.f.i64, m)),
                                    ir.Constant(self.f.i64, 0))

    def sin(self, x):
        b = self.b
        q, r = self._reduce_pio2(x)
        s, c = self._sincos_r(r)
        v = self.sel(self._quadrant(q, 1), c, s)
        v = self.sel(self._quadrant(q, 2), b.fneg(v), v)
        return self.sel(self.cmp("==", x, 0.0), x, v)

    def cos(self, x):
        b = self.b
        q, r = self._reduce_pio2(x)
        s, c = self._sincos_r(r)
        v = self.sel(self._quadrant(q, 1), b.fneg(s), c)
        return self.sel(self._quadrant(q, 2), b.fneg(v), v)

    def tan(self, x):
        b = self.b
        q, r = self._reduce_pio2(x)
        s, c = self._sincos_r(r)
        odd = self._quadrant(q, 1)
        v = b.fdiv(self.sel(odd, b.fneg(c), s), self.sel(odd, s, c))
        return self.sel(self.cmp("==", x, 0.0), x, v)

    # --- roots and powers -----------------------------------------------------------------
    def sqrt(self, x):
        return self.intr(f"llvm.sqrt.{self.f.sfx}", x)

    def rsqrt(self, x):
        return self.b.fdiv(self.k(1.0), self.sqrt(x))

    def pow(self, x, y):
        """C99/NumPy pow: exp(y * log|x|) with log in double-double (so the error does not
        grow with |y log x|), then the sign and the special cases fixed up."""
        b = self.b
        ax = self.fabs(x)
        lh, ll = self.log_dd(ax)
        t = b.fmul(y, lh)
        ay = self.fabs(y)
        # |x| == 1 with y = +-inf gives 0*inf = NaN in the formula; C says 1
        t = self.sel(b.and_(self.cmp("==", ax, 1.0), self.cmp("==", ay, math.inf)),
                     self.k(0.0), t)
        t_lo = b.fadd(self.fma(y, lh, b.fneg(t)), b.fmul(y, ll))
        ok = b.and_(self.cmp("<", self.fabs(t), 746.0), self.cmp("<", self.fabs(t_lo), 1.0))
        t_lo = self.sel(ok, t_lo, self.k(0.0))  # NaN/inf tails (0*inf) carry nothing
        n, r = self._reduce_ln2(t)
        mag = self.ldexp(self.poly(b.fadd(r, t_lo), EXP[self.terms]), n)
        mag = self.sel(self.isnan(t), t, mag)
        is_int = self.cmp("==", self.rint(y), y)
        half = b.fmul(y, self.k(0.5))
        odd = b.and_(is_int, self.cmp("!=", self.rint(half), half))
        neg = self.cmp("<", x, 0.0)
        neg0 = b.and_(self.cmp("==", x, 0.0),
                      b.icmp_signed("<", b.bitcast(x, self.f.i64), ir.Constant(self.f.i64, 0)))
        res = self.sel(b.and_(b.or_(neg, neg0), odd), b.fneg(mag), mag)
        finite_neg = b.and_(neg, self.cmp("!=", ax, math.inf))  # pow(-inf, 0.5) is inf
        res = self.sel(b.and_(finite_neg, b.not_(is_int)), self.k(math.nan), res)
        res = self.sel(self.isnan(x), x, res)
        res = self.sel(self.isnan(y), y, res)
        one = self.k(1.0)
        res = self.sel(self.cmp("==", x, 1.0), one, res)   # pow(1, anything) = 1
        return self.sel(self.cmp("==", y, 0.0), one, res)  # pow(anything, 0) = 1


# --- the ufuncs of issue 15: inverse trigonometry and hyperbolics, exp2/log2/log10, cbrt,
# hypot, atan2, and NumPy's division family (floats here, integers in IntMath) -------------------
# double-double constants (tests/test_mathlib.py checks them with mpmath)
LOG2E_DD = (1.4426950408889634, 2.0355273740931033e-17)
LOG10E_DD = (0.4342944819032518, 1.098319650216765e-17)
PI_DD = (3.141592653589793, 1.2246467991473532e-16)
PIO2_DD = (1.5707963267948966, 6.123233995736766e-17)
# atan(c) = hi + lo at the breakpoints c of the reduction atan(x) = atan(c) + atan(t)
ATAN_C = ((0.0, 0.0, 0.0), (0.25, 0.24497866312686414, 1.0698755618734451e-17),
          (0.5, 0.4636476090008061, 2.2698777452961687e-17),
          (0.75, 0.6435011087932844, 1.5834785051444286e-17),
          (1.0, 0.7853981633974483, 3.061616997868383e-17))
# atan(t) = t + t^3 * P(t^2), |t| <= 1/8 after the reduction: (-1)^k / (2k + 1), k >= 1
ATAN = {"f64": [(-1.0) ** k / (2 * k + 1) for k in range(1, 10)],
        "f32": [(-1.0) ** k / (2 * k + 1) for k in range(1, 5)]}


class MathUfuncs(Math):
    """The functions added for NumPy's ufuncs (same conventions as Math: branch-free)."""

    def _signbit(self, x):
        return self.b.icmp_signed("<", self.b.bitcast(x, self.f.it), self.ik(0))

    def _atan_pos(self, a):
        """atan(a) for a >= 0 (NaN in, NaN out; inf gives pi/2)."""
        b = self.b
        inv = self.cmp(">", a, 1.0)
        t0 = self.sel(inv, b.fdiv(self.k(1.0), a), a)
        c, hi, lo = self.k(0.0), self.k(0.0), self.k(0.0)
        for (cv, hv, lv), (cn, _, _) in zip(ATAN_C[1:], ATAN_C[:-1]):
            up = self.cmp(">=", t0, (cv + cn) / 2)
            c, hi, lo = self.sel(up, self.k(cv), c), self.sel(up, self.k(hv), hi), \
                self.sel(up, self.k(lv), lo)
        t = b.fdiv(b.fsub(t0, c), self.fma(t0, c, self.k(1.0)))
        t2 = b.fmul(t, t)
        p = self.fma(b.fmul(t2, t), self.poly(t2, ATAN[self.terms]), lo)
        p = b.fadd(p, t)
        direct = b.fadd(hi, p)
        # pi/2 - atan(1/a): (pi/2 - hi) is exact enough, then the small parts
        flipped = b.fadd(b.fsub(self.k(PIO2_DD[0]), hi), b.fsub(self.k(PIO2_DD[1]), p))
        return self.sel(inv, flipped, direct)

    def atan(self, x):
        r = self.copysign(self._atan_pos(self.fabs(x)), x)
        return self.sel(self.isnan(x), x, r)

    def atan2(self, y, x):
        """C99 atan2: quadrants from the signs (of zeros too), both infinite or both zero."""
        b = self.b
        ax, ay = self.fabs(x), self.fabs(y)
        r = self._atan_pos(b.fdiv(ay, ax))
        inf = math.inf
        r = self.sel(b.and_(self.cmp("==", ax, inf), self.cmp("==", ay, inf)),
                     self.k(math.pi / 4), r)
        r = self.sel(b.and_(self.cmp("==", ax, 0.0), self.cmp("==", ay, 0.0)), self.k(0.0), r)
        left = b.fadd(b.fsub(self.k(PI_DD[0]), r), self.k(PI_DD[1]))
        r = self.sel(self._signbit(x), left, r)
        r = self.copysign(r, y)
        return self.sel(b.or_(self.isnan(x), self.isnan(y)), b.fadd(x, y), r)

    def _cos_of_asin(self, x):
        b = self.b
        one = self.k(1.0)
        return self.sqrt(b.fmul(b.fsub(one, x), b.fadd(one, x)))

    def asin(self, x):
        return self.atan2(x, self._cos_of_asin(x))

    def acos(self, x):
        return self.atan2(self._cos_of_asin(x), x)

    def asinh(self, x):
        b = self.b
        a = self.fabs(x)
        a2 = b.fmul(a, a)
        one = self.k(1.0)
        small = self.log1p(b.fadd(a, b.fdiv(a2, b.fadd(one, self.sqrt(b.fadd(one, a2))))))
        big = b.fadd(self.log(a), self.k(math.log(2.0)))
        r = self.sel(self.cmp(">", a, 2.0 ** 28), big, small)
        return self.sel(self.isnan(x), x, self.copysign(r, x))

    def acosh(self, x):
        b = self.b
        t = b.fsub(x, self.k(1.0))
        small = self.log1p(b.fadd(t, self.sqrt(self.fma(t, t, b.fmul(t, self.k(2.0))))))
        big = b.fadd(self.log(x), self.k(math.log(2.0)))
        r = self.sel(self.cmp(">", x, 2.0 ** 28), big, small)
        return self.sel(self.cmp("<", x, 1.0), self.k(math.nan), r)

    def atanh(self, x):
        b = self.b
        a = self.fabs(x)
        a2 = b.fmul(a, self.k(2.0))
        d = b.fsub(self.k(1.0), a)
        small = b.fadd(a2, b.fdiv(b.fmul(a2, a), d))  # 2a + 2a^2 / (1 - a), a < 1/2
        arg = self.sel(self.cmp("<", a, 0.5), small, b.fdiv(a2, d))
        r = b.fmul(self.log1p(arg), self.k(0.5))
        r = self.sel(self.cmp(">", a, 1.0), self.k(math.nan), r)
        return self.sel(self.isnan(x), x, self.copysign(r, x))

    def _half_exp_sq(self, a):
        # exp(a) / 2 for large a without overflowing before the result does: (exp(a/2)/2) * exp(a/2)
        w = self.exp(self.b.fmul(a, self.k(0.5)))
        return self.b.fmul(self.b.fmul(w, self.k(0.5)), w)

    def sinh(self, x):
        b = self.b
        a = self.fabs(x)
        t = self.expm1(a)
        small = b.fmul(self.k(0.5), b.fadd(t, b.fdiv(t, b.fadd(t, self.k(1.0)))))
        r = self.sel(self.cmp("<", a, 22.0), small, self._half_exp_sq(a))
        return self.sel(self.isnan(x), x, self.copysign(r, x))

    def cosh(self, x):
        b = self.b
        a = self.fabs(x)
        e = self.exp(a)
        small = b.fadd(b.fmul(e, self.k(0.5)), b.fdiv(self.k(0.5), e))
        r = self.sel(self.cmp("<", a, 22.0), small, self._half_exp_sq(a))
        return self.sel(self.isnan(x), x, r)

    def exp2(self, x):
        # 2^x = 2^n * exp(r ln2), n = rint(x), r = x - n exact, |r ln 2| <= ln2/2
        b = self.b
        xc = self.clamp(x, -1100.0, 1100.0)
        n = self.rint(xc)
        r = b.fsub(xc, n)
        rl = self.fma(r, self.k(LN2_HI), b.fmul(r, self.k(LN2_LO)))
        res = self.ldexp(self.poly(rl, EXP[self.terms]), n)
        return self.sel(self.isnan(x), x, res)

    def _log_scaled(self, x, c):
        """log(x) * c with log(x) and c in double-double (close to correctly rounded, so
        log2(2^k) and log10(10^k) are exact)."""
        b = self.b
        hi, lo = self.log_dd(x)
        p = b.fmul(hi, self.k(c[0]))
        err = self.fma(hi, self.k(c[0]), b.fneg(p))
        tail = self.fma(hi, self.k(c[1]), self.fma(lo, self.k(c[0]), err))
        res = b.fadd(p, tail)
        return self.sel(self.cmp("<", self.fabs(hi), math.inf), res, hi)

    def log2(self, x):
        return self._log_scaled(x, LOG2E_DD)

    def log10(self, x):
        return self._log_scaled(x, LOG10E_DD)

    def cbrt(self, x):
        b, F = self.b, self.f
        a = self.fabs(x)
        tiny = self.cmp("<", a, F.tiny)
        a_s = self.sel(tiny, b.fmul(a, self.k(2.0 ** (3 * 18))), a)
        one = self.ik(F.bias << F.mbits)  # the bits of 1.0
        bits = b.bitcast(a_s, F.it)
        guess = b.bitcast(b.add(b.sdiv(b.sub(bits, one), self.ik(3)), one), F.ft)
        y = guess
        third = self.k(1.0 / 3.0)
        for _ in range(5 if self.terms == "f64" else 4):  # Newton: y += (a/y^2 - y) / 3
            y = self.fma(b.fsub(b.fdiv(b.fdiv(a_s, y), y), y), third, y)
        y = self.sel(tiny, b.fmul(y, self.k(2.0 ** -18)), y)
        special = b.or_(self.cmp("==", a, 0.0), b.or_(self.cmp("==", a, math.inf),
                                                     self.isnan(a)))
        return self.sel(special, x, self.copysign(y, x))

    def hypot(self, x, y):
        b = self.b
        ax, ay = self.fabs(x), self.fabs(y)
        m = self.sel(self.cmp(">", ay, ax), ay, ax)
        n = self.sel(self.cmp(">", ay, ax), ax, ay)
        r = b.fdiv(n, m)
        h = b.fmul(m, self.sqrt(self.fma(r, r, self.k(1.0))))
        h = self.sel(self.cmp("==", m, 0.0), self.k(0.0), h)
        h = self.sel(b.or_(self.isnan(x), self.isnan(y)), self.k(math.nan), h)
        inf = b.or_(self.cmp("==", ax, math.inf), self.cmp("==", ay, math.inf))
        return self.sel(inf, self.k(math.inf), h)

    # --- NumPy's division family on floats (npy_divmod: fmod, then Python's sign rule) ------
    def fmod(self, a, b_):
        return self.b.frem(a, b_)

    def _divmod(self, a, d):
        b = self.b
        zero = self.k(0.0)
        mod = b.frem(a, d)
        div = b.fdiv(b.fsub(a, mod), d)
        nz = b.fcmp_unordered("!=", mod, zero)
        adj = b.and_(nz, b.xor(self.cmp("<", d, 0.0), self.cmp("<", mod, 0.0)))
        mod2 = self.sel(adj, b.fadd(mod, d), mod)
        mod2 = self.sel(nz, mod2, self.copysign(zero, d))
        div = self.sel(adj, b.fsub(div, self.k(1.0)), div)
        fl = self.intr(f"llvm.floor.{self.f.sfx}", div)
        fl = self.sel(self.cmp(">", b.fsub(div, fl), 0.5), b.fadd(fl, self.k(1.0)), fl)
        q = b.fdiv(a, d)
        fl = self.sel(self.cmp("==", div, 0.0), self.copysign(zero, q), fl)
        dz = self.cmp("==", d, 0.0)
        return self.sel(dz, q, fl), self.sel(dz, mod, mod2)

    def floor_divide(self, a, d):
        return self._divmod(a, d)[0]

    def remainder(self, a, d):
        return self._divmod(a, d)[1]


class IntMath:
    """NumPy's integer division family: no trap (x86's idiv traps on 0 and MIN / -1), a zero
    divisor gives 0, MIN // -1 wraps to MIN (as NumPy, which warns)."""

    def __init__(self, builder, dt):
        self.b = builder
        self.t = ir.IntType(32 if dt == "i32" else 64)

    def _parts(self, a, d):
        b, k = self.b, (lambda v: ir.Constant(self.t, v))
        bad = b.or_(b.icmp_signed("==", d, k(0)), b.icmp_signed("==", d, k(-1)))
        ds = b.select(bad, k(1), d)
        q, r = b.sdiv(a, ds), b.srem(a, ds)
        neg1 = b.icmp_signed("==", d, k(-1))
        q = b.select(neg1, b.sub(k(0), a), b.select(bad, k(0), q))
        r = b.select(bad, k(0), r)
        return q, r

    def fmod(self, a, d):
        return self._parts(a, d)[1]

    def _floor(self, a, d):
        b, k = self.b, (lambda v: ir.Constant(self.t, v))
        q, r = self._parts(a, d)
        adj = b.and_(b.icmp_signed("!=", r, k(0)),
                     b.xor(b.icmp_signed("<", r, k(0)), b.icmp_signed("<", d, k(0))))
        return b.select(adj, b.sub(q, k(1)), q), b.select(adj, b.add(r, d), r)

    def floor_divide(self, a, d):
        return self._floor(a, d)[0]

    def remainder(self, a, d):
        return self._floor(a, d)[1]


# computed in single precision for f32 (16 lanes on AVX-512 rather than 8); the division
# family too, since NumPy's float32 loops compute in float32
NATIVE_F32 = ("exp", "expm1", "tanh", "logistic", "log", "log1p", "sqrt", "rsqrt", "fmod",
              "floor_divide", "remainder")
UNARY = ("exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "logistic", "sqrt",
         "rsqrt")
UFUNC_UNARY = ("atan", "asin", "acos", "asinh", "acosh", "atanh", "sinh", "cosh", "exp2",
               "log2", "log10", "cbrt")
INTEGER = ("fmod", "floor_divide", "remainder")  # also defined on i32/i64 (IntMath)


def call(builder, name, dt, *args, lanes=None):
    """Apply math function `name` to scalar values of IR dtype `dt` (f32 or f64; i32 or i64
    for the functions in INTEGER); with `lanes`, to vectors of that many lanes (the same
    operations lane by lane: an outlined function's vector variant)."""
    if dt in ("i32", "i64"):
        return getattr(IntMath(builder, dt), name)(*args)
    if dt == "f64":
        return getattr(MathUfuncs(builder, lanes=lanes), name)(*args)
    if name in NATIVE_F32:
        return getattr(MathUfuncs(builder, "f32", lanes=lanes), name)(*args)
    # the rest widens: trig needs f64 range reduction, pow a double-double log
    wt, nt = (F64, F32) if lanes is None else (ir.VectorType(F64, lanes), ir.VectorType(F32, lanes))
    wide = [builder.fpext(a, wt) for a in args]
    return builder.fptrunc(getattr(MathUfuncs(builder, "f64", "f32", lanes=lanes), name)(*wide),
                           nt)


# --- outlining ------------------------------------------------------------------------------
# Inlined, every use of a function is a copy of its polynomial (sin: ~60 instructions), which
# the optimiser and the code generator then process once per use (a 3,600-equation chain: 80%
# of its LLVM time). A graph using one function (and dtype) at least OUTLINE_MIN times calls
# one copy instead: an internal `noinline` function per module, with vector variants that the
# loop vectoriser substitutes for the call (the `vector-function-abi-variant` attribute), so
# loops stay vectorised. The variants apply the same operations lane by lane, so results are
# bit for bit those of the inlined code. Graphs with fewer uses (every `adjit bench` workload)
# keep the inlined code: there, a call would only add a call's cost to the loop.
OUTLINE_MIN = 4
OUTLINABLE = frozenset(UNARY + UFUNC_UNARY + ("pow", "atan2", "hypot")) - {"sqrt", "rsqrt"}
# vector widths offered: 128/256/512-bit registers (the vectoriser picks the VF by the loop's
# widest type; a width without a variant would scalarise the call)
LANES = {"f64": (2, 4, 8), "f32": (4, 8, 16)}


def outlined(module, name, dt, nargs):
    """(function, its vector variants) for math function `name` on dtype `dt` (f32/f64) in
    `module`, built on first use; the variants must be kept (`keep_alive`): until the
    vectoriser uses them nothing refers to them."""
    sym = f"adjit_math_{name}_{dt}"
    fn = module.globals.get(sym)
    if fn is not None:
        return fn, []
    t = F64 if dt == "f64" else F32
    variants = []
    for n in LANES[dt]:
        vt = ir.VectorType(t, n)
        variants.append(_define(ir.Function(module, ir.FunctionType(vt, [vt] * nargs),
                                            f"{sym}_v{n}"), name, dt, n))
    fn = _define(ir.Function(module, ir.FunctionType(t, [t] * nargs), sym), name, dt, None)
    abi = ",".join(f"_ZGV_LLVM_N{n}{'v' * nargs}_{sym}({sym}_v{n})" for n in LANES[dt])
    set.add(fn.attributes, f'"vector-function-abi-variant"="{abi}"')  # (llvmlite: known
    return fn, variants                                                  # names only)


def _define(fn, name, dt, lanes):
    fn.linkage = "internal"
    for a in ("noinline", "nounwind", "readnone"):
        fn.attributes.add(a)
    b = ir.IRBuilder(fn.append_basic_block())
    b.ret(call(b, name, dt, *fn.args, lanes=lanes))
    return fn


def keep_alive(module, fns):
    """@llvm.compiler.used: functions the optimiser must not delete while nothing calls them."""
    if not fns:
        return
    t = ir.ArrayType(ir.PointerType(), len(fns))
    gv = ir.GlobalVariable(module, t, "llvm.compiler.used")
    gv.linkage = "appending"
    gv.section = "llvm.metadata"
    gv.initializer = ir.Constant(t, list(fns))
