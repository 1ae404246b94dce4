"""NumPy's ufuncs beyond the basic arithmetic (issue 15 item 1): inverse trigonometric and
hyperbolic functions, exp2/log2/log10/cbrt, trunc/rint, atan2, hypot, copysign, fmax/fmin and
the division family (fmod, remainder, floor_divide, divmod).

Each is one record, as in elementwise.py: the NumPy function is the reference implementation
(so the interpreter gives NumPy's values exactly), codegen lowers it with a function of
codegen/mathlib.py, and the derivative rules are IR. Conventions at discontinuities follow JAX
(x64); see docs/ir.md, "Non-smooth and infinite points".
"""
from __future__ import annotations

import math

import numpy as np

from .. import ops as o
from ..core import Primitive, register
from ..types import AType
from ._helpers import (DOMAINS, FLOATS, NUMERIC, binary_rule, elementwise_jvp, sample_array,
                       unary)

DOMAINS.setdefault("unit", lambda rng, shp: rng.uniform(-0.9, 0.9, shp))
DOMAINS.setdefault("gt_one", lambda rng, shp: rng.uniform(1.2, 3.0, shp))
# away from the integers (floor, trunc, rint are constant in between)
DOMAINS.setdefault("off_int", lambda rng, shp: rng.integers(-3, 3, shp) +
                   rng.uniform(0.1, 0.4, shp) * rng.choice([1.0, 2.8], shp))


def _np(f):
    # NumPy's own function, keeping the operand's dtype (a Python int operand would promote)
    def impl(*args, **_):
        out = f(*args)
        return out.astype(args[0].dtype, copy=False) if out.dtype != args[0].dtype else out
    return impl


def _rec(math_fn, cost, numpy, torch=(), grad_fn=None, torch_saves="inputs"):
    return dict(lowering=("math", math_fn), cost=cost, numpy=numpy, torch=torch,
                grad_fn=grad_fn, torch_saves=torch_saves)


def _zeros(ct):
    return o.zeros(o.shape(ct), o.dtype(ct))


def _one_minus_sq(x):
    return o.mul(o.sub(1.0, x), o.add(x, 1.0))


# --- inverse trigonometric and hyperbolic functions ----------------------------------------
unary("asin", _np(np.arcsin), lambda ct, x, out: o.mul(ct, o.rsqrt(_one_minus_sq(x))),
      domain="unit", **_rec("asin", 50, ("arcsin",), ("asin", "arcsin"), "AsinBackward0"))
unary("acos", _np(np.arccos), lambda ct, x, out: o.neg(o.mul(ct, o.rsqrt(_one_minus_sq(x)))),
      domain="unit", **_rec("acos", 50, ("arccos",), ("acos", "arccos"), "AcosBackward0"))
unary("atan", _np(np.arctan), lambda ct, x, out: o.div(ct, o.add(o.mul(x, x), 1.0)),
      **_rec("atan", 40, ("arctan",), ("atan", "arctan"), "AtanBackward0"))
unary("asinh", _np(np.arcsinh), lambda ct, x, out: o.mul(ct, o.rsqrt(o.add(o.mul(x, x), 1.0))),
      **_rec("asinh", 50, ("arcsinh",), ("asinh", "arcsinh"), "AsinhBackward0"))
unary("acosh", _np(np.arccosh),
      lambda ct, x, out: o.mul(ct, o.rsqrt(o.mul(o.sub(x, 1.0), o.add(x, 1.0)))),
      domain="gt_one", **_rec("acosh", 50, ("arccosh",), ("acosh", "arccosh"), "AcoshBackward0"))
unary("atanh", _np(np.arctanh), lambda ct, x, out: o.div(ct, _one_minus_sq(x)), domain="unit",
      **_rec("atanh", 40, ("arctanh",), ("atanh", "arctanh"), "AtanhBackward0"))
unary("sinh", _np(np.sinh), lambda ct, x, out: o.mul(ct, o.cosh(x)),
      **_rec("sinh", 40, ("sinh",), ("sinh",), "SinhBackward0"))
unary("cosh", _np(np.cosh), lambda ct, x, out: o.mul(ct, o.sinh(x)),
      **_rec("cosh", 40, ("cosh",), ("cosh",), "CoshBackward0"))

# --- exponentials, logarithms, roots -------------------------------------------------------
LN2, LN10 = math.log(2.0), math.log(10.0)
unary("exp2", _np(np.exp2), lambda ct, x, out: o.mul(ct, o.mul(out, LN2)),
      **_rec("exp2", 28, ("exp2",), ("exp2",), "Exp2Backward0", "result"))
unary("log2", _np(np.log2), lambda ct, x, out: o.div(ct, o.mul(x, LN2)), domain="positive",
      **_rec("log2", 40, ("log2",), ("log2",), "Log2Backward0"))
unary("log10", _np(np.log10), lambda ct, x, out: o.div(ct, o.mul(x, LN10)), domain="positive",
      **_rec("log10", 40, ("log10",), ("log10",), "Log10Backward0"))
# d/dx cbrt(x) = 1 / (3 cbrt(x)^2): inf at 0 (as JAX)
unary("cbrt", _np(np.cbrt), lambda ct, x, out: o.div(o.mul(ct, 1.0 / 3.0), o.mul(out, out)),
      domain="nonzero", **_rec("cbrt", 40, ("cbrt",), (), None, "result"))

# --- rounding: piecewise constant, zero derivative (also at the jumps, as JAX) --------------
unary("trunc", _np(np.trunc), lambda ct, x, out: _zeros(ct), dtypes=NUMERIC, domain="off_int",
      smooth=False, saves=False, lowering=("intrinsic", "llvm.trunc", "int_identity"),
      numpy=("trunc",), torch=("trunc", "fix"), grad_fn="TruncBackward0",
      torch_saves="nothing")
# round half to even (the default rounding mode: llvm.rint); NumPy's rint is float-only
unary("rint", _np(np.rint), lambda ct, x, out: _zeros(ct), domain="off_int", smooth=False,
      saves=False, lowering=("intrinsic", "llvm.rint"), numpy=("rint",), torch=(),
      grad_fn="RoundBackward0", torch_saves="nothing")


# --- binary ----------------------------------------------------------------------------------
def _samples(d0, d1, int_divisor=False):
    def samples(dt, rng):
        if dt in ("i32", "i64"):
            x = sample_array(rng, (3, 4), dt, "int") * 3
            y = sample_array(rng, (3, 4), dt, "int")
            x.flat[:3] = [np.iinfo(x.dtype).min, 7, -7]  # MIN // -1, division by zero
            y.flat[:3] = [-1, 0, 0]
            return [([x, y], {}), ([sample_array(rng, (5,), dt, "int") * 4, 3], {})]
        return [([sample_array(rng, (3, 4), dt, d0), sample_array(rng, (3, 4), dt, d1)], {}),
                ([sample_array(rng, (5,), dt, d0), float(sample_array(rng, (), "f64", d1))],
                 {})]
    return samples


def _binary(name, impl, vjp, domain=("any", "any"), dtypes=FLOATS, smooth=True, **record):
    rule = None
    if vjp is not None:
        def rule(ct, x, y, out, **_):
            # a literal operand (a Python number) becomes an array of the cotangent's shape
            # for the rule's arithmetic; it gets no cotangent
            lit = [isinstance(v, (int, float)) for v in (x, y)]
            x, y = [o.full(o.shape(ct), v, o.dtype(ct)) if k else v for k, v in zip(lit, (x, y))]
            return [None if k else c for k, c in zip(lit, vjp(ct, x, y, out))]
    return register(Primitive(name, binary_rule(name), impl, rule,
                              None if rule is None else elementwise_jvp(rule),
                              _samples(*domain), smooth=smooth, dtypes=dtypes, kind="binary",
                              **record))


def _atan2_vjp(ct, y, x, out):
    # d atan2(y, x) = (x dy - y dx) / (x^2 + y^2): NaN at (0, 0), as JAX and PyTorch
    d = o.add(o.mul(x, x), o.mul(y, y))
    return [o.div(o.mul(ct, x), d), o.neg(o.div(o.mul(ct, y), d))]


_binary("atan2", _np(np.arctan2), _atan2_vjp, domain=("nonzero", "nonzero"),
        lowering=("math", "atan2"), cost=60, numpy=("arctan2",))


def _hypot_vjp(ct, x, y, out):
    # x / hypot and y / hypot; at (0, 0) half the cotangent to each (JAX: its hypot takes the
    # maximum of |x| and |y|, a tie there); NaN at an infinity (inf / inf), as JAX
    zero = o.eq(out, 0.0)
    safe = o.select(zero, o.full(o.shape(out), 1.0, o.dtype(out)), out)
    half = o.mul(ct, 0.5)
    return [o.select(zero, half, o.div(o.mul(ct, x), safe)),
            o.select(zero, half, o.div(o.mul(ct, y), safe))]


_binary("hypot", _np(np.hypot), _hypot_vjp, domain=("nonzero", "nonzero"),
        lowering=("math", "hypot"), cost=12, numpy=("hypot",))


def _signbit(x):
    bits = "i32" if o.dtype(x) == "f32" else "i64"
    return o.lt(o.bitcast_convert_type(x, new_dtype=bits), 0)


def _copysign_vjp(ct, x, y, out):
    # copysign(x, y) = +-|x|: d/dx = sign(x) * (-1 if y's sign bit is set else 1), with sign
    # taken as +1 at +-0 and -1 at NaN (JAX's |x|' = select(x >= 0, 1, -1)); 0 for y
    dt = o.dtype(ct)
    one, neg = o.full(o.shape(ct), 1.0, dt), o.full(o.shape(ct), -1.0, dt)
    sx = o.select(o.ge(x, 0.0), one, neg)
    sy = o.select(_signbit(y), neg, one) if not isinstance(y, (int, float)) else \
        (-1.0 if math.copysign(1.0, y) < 0 else 1.0)
    return [o.mul(ct, o.mul(sx, sy)), None if isinstance(y, (int, float)) else _zeros(ct)]


_binary("copysign", _np(np.copysign), _copysign_vjp, domain=("nonzero", "nonzero"),
        smooth=False, lowering=("intrinsic", "llvm.copysign"), cost=1, numpy=("copysign",))


def _fext_vjp(gt):
    # fmax: x where (x > y or y is NaN), else y -- so ties and a NaN x give y the gradient (JAX)
    def vjp(ct, x, y, out):
        z = _zeros(ct)
        take_x = getattr(o, "or")(gt(x, y), o.ne(y, y))
        return [o.select(take_x, ct, z), o.select(take_x, z, ct)]
    return vjp


def _fext_lower(cmp):
    def lower(s, x, y):
        # NumPy: x where (x >= y or y is NaN) (its libm fmax keeps x at a tie of +-0)
        return s.select(getattr(s, "or")(getattr(s, cmp)(x, y), s.ne(y, y)), x, y)
    return lower


_binary("fmax", _np(np.fmax), _fext_vjp(o.gt), dtypes=NUMERIC, smooth=False,
        lowering=("expr", _fext_lower("ge")), cost=2, numpy=("fmax",))
_binary("fmin", _np(np.fmin), _fext_vjp(o.lt), dtypes=NUMERIC, smooth=False,
        lowering=("expr", _fext_lower("le")), cost=2, numpy=("fmin",))


# --- the division family -------------------------------------------------------------------
def _trunc_div(x, y):
    return o.trunc(o.div(x, y))


def _fmod_vjp(ct, x, y, out):
    # fmod(x, y) = x - trunc(x / y) y: d/dx = 1, d/dy = -trunc(x / y) (JAX's rem)
    if isinstance(y, (int, float)):
        return [ct, None]
    return [ct, o.neg(o.mul(ct, _trunc_div(x, y)))]


def _remainder_vjp(ct, x, y, out):
    # Python's remainder is fmod plus y where the signs differ (JAX): d/dy = -(that quotient)
    if isinstance(y, (int, float)):
        return [ct, None]
    q = _trunc_div(x, y)
    r = o.fmod(x, y)
    plus = getattr(o, "and")(o.ne(r, 0.0), o.ne(o.lt(r, 0.0), o.lt(y, 0.0)))
    q = o.select(plus, o.sub(q, 1.0), q)
    return [ct, o.neg(o.mul(ct, q))]


def _floordiv_vjp(ct, x, y, out):
    return [_zeros(ct), None if isinstance(y, (int, float)) else _zeros(ct)]


_binary("fmod", _np(np.fmod), _fmod_vjp, domain=("any", "nonzero"), dtypes=NUMERIC,
        smooth=False, lowering=("math", "fmod"), cost=20, numpy=("fmod",))
_binary("remainder", _np(np.remainder), _remainder_vjp, domain=("any", "nonzero"),
        dtypes=NUMERIC, smooth=False, lowering=("math", "remainder"), cost=24,
        numpy=("remainder",))
_binary("floor_divide", _np(np.floor_divide), _floordiv_vjp, domain=("any", "nonzero"),
        dtypes=NUMERIC, smooth=False, lowering=("math", "floor_divide"), cost=24,
        numpy=("floor_divide",))


def _divmod_rule(x, y, **_):
    t = binary_rule("divmod")(x, y)
    return (t, t)


def _divmod_impl(x, y, **_):
    q, r = np.divmod(x, y)
    dt = np.asarray(x).dtype
    return q.astype(dt, copy=False), r.astype(dt, copy=False)


def _divmod_vjp(ct, x, y, out, **_):
    _, cr = ct
    if cr is None:
        return [_zeros(ct[0]) if ct[0] is not None else None,
                None if isinstance(y, (int, float)) or ct[0] is None else _zeros(ct[0])]
    return _remainder_vjp(cr, x, y, out[1])


def _divmod_jvp(tangents, x, y, out, **_):
    tq = None
    tr = elementwise_jvp(lambda ct, x, y, out: _remainder_vjp(ct, x, y, out))(
        tangents, x, y, out=out[1])
    for t in tangents:
        if t is not None:
            tq = _zeros(t)
            break
    return (tq, tr)


register(Primitive("divmod", _divmod_rule, _divmod_impl, _divmod_vjp, _divmod_jvp,
                   _samples("any", "nonzero"), smooth=False, dtypes=NUMERIC, kind="binary",
                   nout=2, lowering=("expr", lambda s, x, y: (s.floor_divide(x, y),
                                                              s.remainder(x, y))),
                   cost=24, numpy=("divmod",)))

__all__ = ["AType"]
