"""Ufuncs built from other primitives where that is exact and cheap (issue 15 item 1), shared by
the NumPy front (tracer/np_ufuncs.py) and the Tensor front. Operands are Nodes (or arrays) of
one shape and dtype, already promoted; Python numbers are literals."""
from __future__ import annotations

import math

import numpy as np

from . import ops
from .types import DTYPES, FLOATS

_or = getattr(ops, "or")
_and = getattr(ops, "and")
_not = getattr(ops, "not")


def _full(x, v):
    return ops.full(ops.shape(x), v, ops.dtype(x))


def isnan(x):
    return ops.ne(x, x)


def signbit(x):
    """The sign bit (so -0.0 and -nan are negative), bool; x < 0 for integers."""
    dt = ops.dtype(x)
    if dt not in FLOATS:
        return ops.lt(x, 0)
    bits = ops.bitcast_convert_type(x, new_dtype="i32" if dt == "f32" else "i64")
    return ops.lt(bits, 0)


def scale(x, c):
    """x * c for a constant c (deg2rad: x * (pi/180), as NumPy computes it)."""
    return ops.mul(x, c)


# sinc(x) = sin(pi x) / (pi x); near 0 its Maclaurin series in z = pi x (exact to well below an
# ulp for |z| < 0.1), so the first and second derivatives at 0 are the series' (0 and -pi^2/3),
# as JAX's sinc; NumPy's value there is 1
_SINC = [(-1.0) ** k / math.factorial(2 * k + 1) for k in range(5)]


def sinc(x):
    z = ops.mul(x, math.pi)
    small = ops.lt(ops.abs(z), 0.1)
    z2 = ops.mul(z, z)
    p = _full(x, _SINC[-1])
    for c in reversed(_SINC[:-1]):
        p = ops.add(ops.mul(p, z2), c)
    safe = ops.select(small, _full(x, 1.0), z)
    return ops.select(small, p, ops.div(ops.sin(safe), safe))


def logaddexp2(a, b):
    """log2(2^a + 2^b) as NumPy: a + 1 at a == b (so inf at (inf, inf), -inf at (-inf, -inf)),
    else max + log2(1 + 2^-|a - b|); NaN in, NaN out. At a tie each operand gets half the
    gradient; at equal infinities the gradient is NaN (as logaddexp)."""
    from .composites import broadcast_arrays
    a, b = broadcast_arrays(a, b)
    a = _full(b, a) if isinstance(a, (int, float)) else a  # a number: an array like the other
    b = _full(a, b) if isinstance(b, (int, float)) else b
    m = ops.maximum(a, b)
    diff = ops.sub(a, b)
    d = ops.neg(ops.abs(diff))
    gen = ops.add(m, ops.mul(ops.log1p(ops.exp2(d)), 1.0 / math.log(2.0)))
    tie = ops.add(ops.add(ops.mul(a, 0.5), ops.mul(b, 0.5)), 1.0)
    return ops.select(isnan(diff), ops.add(a, b), ops.select(ops.eq(a, b), tie, gen))


def heaviside(x, h):
    """0 for x < 0, h at x == 0, 1 for x > 0, NaN at NaN (NumPy); the gradient reaches h only
    where x == 0 (JAX)."""
    r = ops.select(ops.gt(x, 0.0), _full(x, 1.0), ops.select(ops.lt(x, 0.0), _full(x, 0.0), h))
    return ops.select(isnan(x), x, r)


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """NaN -> nan, inf -> posinf (default: the dtype's largest), -inf -> neginf; gradient 1 on
    finite values, 0 on the replaced ones (JAX)."""
    dt = ops.dtype(x)
    if dt not in FLOATS:
        return x
    fi = np.finfo(DTYPES[dt])
    hi = float(fi.max) if posinf is None else float(posinf)
    lo = float(fi.min) if neginf is None else float(neginf)
    r = ops.select(isnan(x), _full(x, float(nan)), x)
    r = ops.select(ops.eq(x, math.inf), _full(x, hi), r)
    return ops.select(ops.eq(x, -math.inf), _full(x, lo), r)


def round_decimals(x, decimals=0):
    """NumPy's round: rint(x * 10^d) / 10^d (d >= 0) or rint(x / 10^-d) * 10^-d, in x's dtype;
    integers are unchanged for d >= 0 and rounded half to even through float64 otherwise.
    Zero derivative."""
    dt = ops.dtype(x)
    d = int(decimals)
    if dt not in FLOATS:
        if d >= 0:
            return x
        f = ops.convert(x, "f64")
        p = float(10 ** -d)
        return ops.convert(ops.mul(ops.rint(ops.div(f, p)), p), dt)
    if d == 0:
        return ops.rint(x)
    p = float(10 ** abs(d))
    if d > 0:
        return ops.div(ops.rint(ops.mul(x, p)), p)
    return ops.mul(ops.rint(ops.div(x, p)), p)


def frac(x):
    """x - trunc(x) (PyTorch's frac): derivative 1."""
    return ops.sub(x, ops.trunc(x))
