"""NumPy's ufuncs and ufunc-like functions of issue 15 item 1 on traced arrays: the entries the
records (ir/prims/ufuncs.py) cannot generate by themselves -- float-only binary ufuncs that
compute integers in float64, composites (ir/composites_ufuncs.py), and functions with keywords
(np.round(decimals), np.nan_to_num, np.fix, np.real/imag)."""
from __future__ import annotations

import math
import operator

from ..ir import composites_ufuncs as ir_composites_ufuncs
from ..ir import ops
from ..ir.core import REGISTRY, bind
from .ndarray import TracedArray, promote, where_str, wrap
from .np_dispatch import UFUNCS, func


def _float_binary(prim):
    """np.arctan2 & co: float functions; integers and bools compute in float64 (NumPy)."""
    def impl(a, b):
        (x, y), _, weak = promote([a, b], f"np.{prim}", to_float=True)
        return wrap(bind(REGISTRY[prim], x, y), weak)
    return impl


for _np_name, _prim in (("arctan2", "atan2"), ("hypot", "hypot"), ("copysign", "copysign")):
    UFUNCS[_np_name] = _float_binary(_prim)


def _float_unary(fn):
    def impl(a):
        (x,), _, weak = promote([a], "", to_float=True)
        return wrap(fn(x), weak)
    return impl


for _n, _f in (("deg2rad", lambda x: ir_composites_ufuncs.scale(x, math.pi / 180.0)),
               ("radians", lambda x: ir_composites_ufuncs.scale(x, math.pi / 180.0)),
               ("rad2deg", lambda x: ir_composites_ufuncs.scale(x, 180.0 / math.pi)),
               ("degrees", lambda x: ir_composites_ufuncs.scale(x, 180.0 / math.pi))):
    UFUNCS[_n] = _float_unary(_f)


@func("sinc")
def _sinc(x):
    (n,), _, _ = promote([x], "np.sinc", to_float=True)
    return wrap(ir_composites_ufuncs.sinc(n))


def _logaddexp2(a, b):
    (x, y), _, _ = promote([a, b], "np.logaddexp2", to_float=True)
    return wrap(ir_composites_ufuncs.logaddexp2(x, y))


def _heaviside(a, b):
    (x, h), _, _ = promote([a, b], "np.heaviside", to_float=True)
    if isinstance(h, (int, float)):
        h = ops.full(ops.shape(x), h, ops.dtype(x))
    if isinstance(x, (int, float)):
        x = ops.full(ops.shape(h), x, ops.dtype(h))
    return wrap(ir_composites_ufuncs.heaviside(x, h))


def _float_power(a, b):
    # float_power computes in float64 whatever the operands (NumPy)
    (x, y), _, _ = promote([a, b], "np.float_power", to_float=True)
    x = ops.convert(x, "f64") if not isinstance(x, (int, float)) else x
    y = ops.convert(y, "f64") if not isinstance(y, (int, float)) else y
    if isinstance(x, (int, float)):
        x = ops.full(ops.shape(y), float(x), "f64")
    return wrap(ops.pow(x, y))


def _signbit(a):
    (x,), _, _ = promote([a], "np.signbit")
    return wrap(ir_composites_ufuncs.signbit(x))


UFUNCS["logaddexp2"] = _logaddexp2
UFUNCS["heaviside"] = _heaviside
UFUNCS["float_power"] = _float_power
UFUNCS["signbit"] = _signbit
UFUNCS["conjugate"] = lambda a: a  # real arrays: the identity


@func("fix")
def _fix(x):
    (n,), _, weak = promote([x], "np.fix")
    return wrap(ops.trunc(n), weak)


@func("round", "around")
def _round(a, decimals=0):
    try:
        d = operator.index(decimals)
    except TypeError:
        raise TypeError(f"np.round: decimals={decimals!r} must be an integer"
                        f"{where_str()}") from None
    (n,), _, weak = promote([a], "np.round")
    return wrap(ir_composites_ufuncs.round_decimals(n, d), weak)


@func("nan_to_num")
def _nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    # copy=False asks NumPy to write into x; a traced value has the same result either way
    for k, v in (("nan", nan), ("posinf", posinf), ("neginf", neginf)):
        if isinstance(v, TracedArray):
            raise TypeError(f"np.nan_to_num({k}=<traced>) is not supported: give a number"
                            f"{where_str()}")
    (n,), _, weak = promote([x], "np.nan_to_num")
    return wrap(ir_composites_ufuncs.nan_to_num(n, nan, posinf, neginf), weak)


@func("real")
def _real(val):
    (n,), _, weak = promote([val], "np.real")
    return wrap(n, weak)


@func("imag")
def _imag(val):
    (n,), _, _ = promote([val], "np.imag")
    return wrap(ops.zeros(ops.shape(n), ops.dtype(n)))

