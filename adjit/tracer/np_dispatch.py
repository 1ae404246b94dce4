"""NumPy's own functions on TracedArrays: `__array_ufunc__` and `__array_function__` tables.

Each supported function records primitives (composites come from `adjit.ir.composites`). A
function not in the tables raises NotImplementedError naming it and the user's line.
"""
from __future__ import annotations

import numpy as np

from ..ir import composites as C
from ..ir import ops
from ..ir.core import bind, on_register
from ..ir.types import INTS
from .ndarray import (TracedArray, binary, deepest, promote, promote_nobroadcast, unary, where_str,
                      wrap)

FUNCS: dict = {}
UFUNCS: dict = {}
_NO = np._NoValue


def _reg(table, *names):
    def deco(fn):
        for n in names:
            table[n] = fn
        return fn
    return deco


def func(*names):
    return _reg(FUNCS, *names)


def call(name, *args, **kwargs):
    return _dispatch(name, FUNCS[name], args, kwargs)


def _dispatch(name, fn, args, kwargs):
    kwargs = {k: v for k, v in kwargs.items() if v is not _NO}
    if kwargs.get("out") is not None:
        raise TypeError(f"np.{name}(..., out=...) cannot write a traced value into an ndarray"
                        f"{where_str()}; use the returned value instead")
    kwargs.pop("out", None)
    try:
        return fn(*args, **kwargs)
    except ValueError as e:
        if "(at " in str(e):
            raise
        raise ValueError(f"{e} in np.{name}{where_str()}") from None


def array_function(f, args, kwargs):
    mod = getattr(f, "__module__", "") or ""
    name = f.__name__
    if mod.endswith("linalg") or mod.endswith("linalg._linalg"):
        name = "linalg." + name
    fn = FUNCS.get(name)
    if fn is None:
        raise NotImplementedError(
            f"np.{name} is not supported on traced arrays{where_str()}. Supported NumPy "
            f"functions: {', '.join(sorted(FUNCS))}; ufuncs: {', '.join(sorted(UFUNCS))}")
    return _dispatch(name, fn, args, kwargs)


def array_ufunc(uf, method, inputs, kwargs):
    name = uf.__name__
    if method != "__call__":
        raise NotImplementedError(f"np.{name}.{method} is not supported on traced arrays"
                                  f"{where_str()}; use the plain np.{name}(...) or np.sum etc.")
    if kwargs.get("out") is not None:
        raise TypeError(f"np.{name}(..., out=...) cannot write a traced value into an ndarray"
                        f"{where_str()}; use the returned value instead")
    extra = set(kwargs) - {"out", "dtype"}
    if extra:
        raise TypeError(f"np.{name}: keyword(s) {sorted(extra)} are not supported on traced "
                        f"arrays{where_str()}")
    fn = UFUNCS.get(name)
    if fn is None:
        raise NotImplementedError(f"np.{name} is not supported on traced arrays{where_str()}. "
                                  f"Supported ufuncs: {', '.join(sorted(UFUNCS))}")
    out = _dispatch(name, fn, inputs, {})
    if kwargs.get("dtype") is not None:
        out = _astype(out, kwargs["dtype"])
    return out


def _astype(x, dt):
    return x.astype(dt) if isinstance(x, TracedArray) else np.asarray(x, dt)


# --- ufuncs ----------------------------------------------------------------------------------
# generated from the primitive records: each unary or binary primitive under its NumPy names
# (`Primitive.numpy`); a unary one defined on floats only computes an integer operand in f64
def _ufunc(p):
    to_float = not any(d in INTS for d in p.dtypes)
    if p.nout != 1:  # several results (np.divmod & co): one TracedArray each
        def several(*args):
            xs, _, _ = promote(list(args), f"np.{p.numpy[0]}", to_float)
            return tuple(wrap(o) for o in bind(p, *xs))
        return several
    if p.kind == "binary":
        return lambda a, b: binary(p.name, a, b)
    return lambda a: unary(p.name, a, to_float=to_float)


def _add_ufuncs(p):
    if p.kind in ("unary", "binary"):
        for n in p.numpy:
            UFUNCS[n] = _ufunc(p)


def _remove_ufuncs(p):
    for n in p.numpy:
        UFUNCS.pop(n, None)


on_register(_add_ufuncs, _remove_ufuncs)
UFUNCS["positive"] = lambda a: a
UFUNCS["square"] = lambda a: binary("mul", a, a)
UFUNCS["reciprocal"] = lambda a: binary("div", 1.0, a)
UFUNCS["logical_not"] = UFUNCS["invert"] = lambda a: unary("not", _bool(a))
UFUNCS["matmul"] = lambda a, b: a.__matmul__(b) if isinstance(a, TracedArray) else \
    b.__rmatmul__(a)


def _fl(a):
    """(node, weak) of one operand converted to float."""
    (x,), _, weak = promote([a], "", to_float=True)
    return x, weak


def _composite_unary(fn):
    def impl(a):
        x, _ = _fl(a)
        return wrap(fn(x))
    return impl


for _n, _f in (("sinh", C.sinh), ("cosh", C.cosh),
               ("log2", lambda x: ops.div(ops.log(x), float(np.log(2.0)))),
               ("log10", lambda x: ops.div(ops.log(x), float(np.log(10.0)))),
               ("exp2", lambda x: ops.exp(ops.mul(x, float(np.log(2.0)))))):
    UFUNCS[_n] = _composite_unary(_f)
for _n, _f in (("isnan", C.isnan), ("isinf", C.isinf), ("isfinite", C.isfinite)):
    UFUNCS[_n] = (lambda f: lambda a: wrap(f(promote([a], "")[0][0])))(_f)


@_reg(UFUNCS, "logaddexp")
def _logaddexp(a, b):
    (x, y), _, _ = promote([a, b], "np.logaddexp", to_float=True)
    return wrap(C.logaddexp(x, y))


def _bool(a):
    return a if np.dtype(getattr(a, "dtype", type(a))) == np.bool_ else binary("ne", a, 0)


# --- reductions ------------------------------------------------------------------------------
def _one(a, to_float=False, int64=False):
    (x,), dt, _ = promote_nobroadcast([a], to_float)
    if int64 and dt in ("bool", "i32"):
        x = ops.convert(x, "i64")
    return x


def _dt(a, dtype):
    return a if dtype is None else _astype(a, dtype)


@func("sum")
def _sum(a, axis=None, dtype=None, keepdims=False):
    return wrap(C.sum(_one(_dt(a, dtype), int64=True), axis, keepdims))


@func("mean")
def _mean(a, axis=None, dtype=None, keepdims=False):
    return wrap(C.mean(_one(_dt(a, dtype), to_float=True), axis, keepdims))


@func("max", "amax")
def _max(a, axis=None, keepdims=False):
    return wrap(C.max(_one(a), axis, keepdims))


@func("min", "amin")
def _min(a, axis=None, keepdims=False):
    return wrap(C.min(_one(a), axis, keepdims))


@func("prod")
def _prod(a, axis=None, dtype=None, keepdims=False):
    return wrap(C.prod(_one(_dt(a, dtype), int64=True), axis, keepdims))


@func("var")
def _var(a, axis=None, dtype=None, ddof=0, keepdims=False):
    return wrap(C.var(_one(_dt(a, dtype), to_float=True), axis, ddof, keepdims))


@func("std")
def _std(a, axis=None, dtype=None, ddof=0, keepdims=False):
    return wrap(C.std(_one(_dt(a, dtype), to_float=True), axis, ddof, keepdims))


@func("linalg.norm")
def _norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    return wrap(C.norm(_one(x, to_float=True), ord, axis, keepdims))


@func("cumsum")
def _cumsum(a, axis=None, dtype=None):
    return wrap(C.cumsum(_one(_dt(a, dtype), int64=True), axis))


def _arg(prim):
    def impl(a, axis=None, keepdims=False):
        x = _one(a)
        if axis is None:
            x, ax = ops.reshape(x, (C.count(x),)), 0
        else:
            ax = C.norm_axes(axis, C.ndim(x))[0]
        r = ops.__getattr__(prim)(x, axis=ax)
        if keepdims:
            shp = list(ops.shape(x)) if axis is not None else [1] * len(ops.shape(_one(a)))
            if axis is not None:
                shp[ax] = 1
            r = ops.reshape(r, tuple(shp))
        return wrap(r)
    return impl


FUNCS["argmax"], FUNCS["argmin"] = _arg("argmax"), _arg("argmin")


@func("all")
def _all(a, axis=None, keepdims=False):
    return wrap(C.all_(_one(a), axis, keepdims))


@func("any")
def _any(a, axis=None, keepdims=False):
    return wrap(C.any_(_one(a), axis, keepdims))


# --- elementwise functions ---------------------------------------------------------------------
@func("clip")
def _clip(a, a_min=None, a_max=None, *, min=None, max=None):  # noqa: A002
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    parts = [a] + [v for v in (lo, hi) if v is not None]
    xs, _, _ = promote(parts, "np.clip")
    it = iter(xs[1:])
    return wrap(C.clip(xs[0], next(it) if lo is not None else None,
                       next(it) if hi is not None else None))


@func("where")
def _where(condition, x=None, y=None):
    if x is None or y is None:
        raise NotImplementedError(f"np.where(condition) with one argument (nonzero) has a "
                                  f"data-dependent shape{where_str()}; use x[mask] instead")
    c = _bool(condition)
    (cn, xn, yn), dt, _ = _promote_where(c, x, y)
    return wrap(C.where(cn, xn, yn, dt))


def _promote_where(c, x, y):
    (xn, yn), dt, weak = promote([x, y], "np.where")
    tr = deepest(c, x, y)
    from .ndarray import as_operand
    cn = as_operand(c, tr)
    return (cn, xn, yn), dt, weak


def _close(a, b, rtol, atol, equal_nan):
    (x, y), _, _ = promote([a, b], "np.isclose", to_float=True)
    close = ops.le(ops.abs(ops.sub(x, y)), ops.add(ops.mul(ops.abs(y), rtol), atol))
    if equal_nan:
        close = ops.__getattr__("or")(close, ops.__getattr__("and")(C.isnan(x), C.isnan(y)))
    return close


@func("isclose")
def _isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return wrap(_close(a, b, rtol, atol, equal_nan))


@func("allclose")
def _allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return wrap(C.all_(_close(a, b, rtol, atol, equal_nan)))


from . import np_shape  # noqa: E402,F401  (registers the shape functions and products)
