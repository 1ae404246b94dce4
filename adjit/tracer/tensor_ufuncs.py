"""The Tensor front of issue 15 item 1: PyTorch's meaning and grad_fn names for the ufuncs that
are not generated from a unary record (those are: asin, acos, atan, asinh, acosh, atanh and
their arc* names, sinh, cosh, exp2, log2, log10, trunc, fix)."""
from __future__ import annotations

import math

import numpy as np

from ..ir import composites_ufuncs
from ..ir import ops
from .grad_fn import tag
from .grad_mode import no_grad
from .tensor import Tensor
from . import tensor_ops


def _binary(prim, name0, name1=None, float_only=False):
    """A binary op; `name1` is the grad_fn when `other` is a tensor (PyTorch's overloads:
    FmodBackward0 for a number, FmodBackward1 for a tensor)."""
    def f(self, other):
        name = name1 if name1 is not None and isinstance(other, Tensor) else name0
        return tensor_ops.binary(prim, self, other, name, true_div=float_only)
    f.__name__ = prim
    return f


def _tensors_only(prim, grad_fn, float_only=False):
    def f(self, other):
        if not isinstance(other, Tensor):
            raise TypeError(f"{prim}(): argument 'other' (position 1) must be Tensor, not "
                            f"{type(other).__name__}")
        return tensor_ops.binary(prim, self, other, grad_fn, true_div=float_only)
    f.__name__ = prim
    return f


def _unary(fn, grad_fn):
    def f(self):
        x = tensor_ops._float(self)
        return Tensor._wrap(tag(fn(x._n), grad_fn, [self._n]))
    return f


def _pair(a, b, float_only=True):
    dt = tensor_ops.result_dtype(a, b)
    if float_only and dt.kind != "f":
        dt = np.dtype(np.float32)
    x, y = tensor_ops._prep(a, b, dt)
    shp = ops.shape(x) if not isinstance(x, (int, float)) else ops.shape(y)
    x = ops.full(shp, x, dt) if isinstance(x, (int, float)) else x
    y = ops.full(shp, y, dt) if isinstance(y, (int, float)) else y
    return x, y


def _logaddexp2(self, other):
    x, y = _pair(self, other)
    return Tensor._wrap(tag(composites_ufuncs.logaddexp2(x, y), "Logaddexp2Backward0", tensor_ops._fn_inputs(self, other)))


def _float_power(self, exponent):
    # PyTorch computes in float64 (PowBackward1 for a tensor exponent, PowBackward0 else)
    x = self._n if isinstance(self, Tensor) else self
    x = ops.convert(x, "f64")
    if isinstance(exponent, Tensor):
        e = ops.convert(exponent._n, "f64")
        shp = tensor_ops.broadcast_shapes(ops.shape(x), ops.shape(e))
        out = ops.pow(ops.broadcast_to(x, shp), ops.broadcast_to(e, shp))
        return Tensor._wrap(tag(out, "PowBackward1", [self._n, exponent._n]))
    return Tensor._wrap(tag(ops.pow(x, float(exponent)), "PowBackward0", [self._n]))


def _round(self, decimals=0):
    if self._n.val.dtype.kind != "f":
        return self.clone() if decimals == 0 else Tensor._from_array(self._n.val.copy())
    return Tensor._wrap(tag(composites_ufuncs.round_decimals(self._n, decimals),
                            "RoundBackward0" if decimals == 0 else "RoundBackward1",
                            [self._n]))


def _nan_to_num(self, nan=0.0, posinf=None, neginf=None):
    return Tensor._wrap(tag(composites_ufuncs.nan_to_num(self._n, nan, posinf, neginf), "NanToNumBackward0",
                            [self._n]))


def _test(fn):
    def f(self):
        with no_grad():
            return Tensor._from_array(np.asarray(fn(self._n.val)))
    return f


def _isfinite(v):
    return np.isfinite(v)


def _isinf(v):
    return np.isinf(v)


def _no_grad_binary(npfn, float_only=False):
    """heaviside, floor_divide: PyTorch defines no derivative; the result has no history."""
    def f(self, other):
        dt = tensor_ops.result_dtype(self, other)
        if float_only and dt.kind != "f":
            dt = np.dtype(np.float32)
        a = self._n.val
        b = other._n.val if isinstance(other, Tensor) else other
        with np.errstate(all="ignore"):
            out = npfn(a, b)
        return Tensor._from_array(np.asarray(out).astype(dt, copy=False))
    return f


METHODS = {
    "atan2": _binary("atan2", "Atan2Backward0", float_only=True),
    "hypot": _tensors_only("hypot", "HypotBackward0", float_only=True),
    "fmod": _binary("fmod", "FmodBackward0", "FmodBackward1"),
    "remainder": _binary("remainder", "RemainderBackward0", "RemainderBackward1"),
    "copysign": _binary("copysign", "CopysignBackward0", float_only=True),
    "fmax": _tensors_only("fmax", "FmaxBackward0"),
    "fmin": _tensors_only("fmin", "FminBackward0"),
    "logaddexp2": _logaddexp2,
    "float_power": _float_power,
    "round": _round,
    "nan_to_num": _nan_to_num,
    "frac": _unary(composites_ufuncs.frac, "FracBackward0"),
    "sinc": _unary(composites_ufuncs.sinc, "SincBackward0"),
    "deg2rad": _unary(lambda n: composites_ufuncs.scale(n, math.pi / 180.0), "Deg2RadBackward0"),
    "rad2deg": _unary(lambda n: composites_ufuncs.scale(n, 180.0 / math.pi), "Rad2DegBackward0"),
    "square": lambda s: s.pow(2),
    "reciprocal": _unary(lambda n: ops.div(1.0, n), "ReciprocalBackward0"),
    "isnan": _test(np.isnan),
    "isinf": _test(_isinf),
    "isfinite": _test(_isfinite),
    "signbit": _test(np.signbit),
    "heaviside": _no_grad_binary(np.heaviside),
    "floor_divide": _no_grad_binary(np.floor_divide),
}
METHODS["arctan2"] = METHODS["atan2"]


def install():
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)
    Tensor.__mod__ = METHODS["remainder"]
    Tensor.__rmod__ = lambda s, o: tensor_ops.binary("remainder", o, s, "RemainderBackward0",
                                            listed=[s._n, None])


def _fn(name):
    def f(input, *args, **kwargs):
        if not isinstance(input, Tensor):
            from .factory import tensor
            input = tensor(input)
        return getattr(input, name)(*args, **kwargs)
    f.__name__ = name
    return f


FUNCTIONS = {name: _fn(name) for name in METHODS}
