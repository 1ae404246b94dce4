"""NumPy's own functions on TracedArrays: `__array_ufunc__` and `__array_function__` tables.

Each supported function records primitives (composites come from `adjit.ir.composites`). A
function not in the tables raises NotImplementedError naming it and the user's line.
"""
from __future__ import annotations

import functools
import inspect
import operator
import types

import numpy as np

from .. import _ast
from ..ir import composites as ir_composites
from ..ir import ops
from ..ir.core import EAGER, REGISTRY, _record, bind, on_register
from ..ir.prims import special as _special
from ..ir.types import DTYPES, FLOATS, INTS, NAME_OF
from .ndarray import (TracedArray, TracedNDArray, binary, deepest, promote, promote_nobroadcast,
                      unary, where_str, wrap)

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
    if name in _RFAST:
        r = _reduce_fast(name, args, kwargs)
        if r is not None:
            return r
    return _dispatch(name, FUNCS[name], args, kwargs)


# np.sum / max / min / mean / prod (and amax, amin, the methods) -> the reducing primitive
_RFAST = {"sum": "reduce_sum", "mean": "reduce_sum", "max": "reduce_max", "amax": "reduce_max",
          "min": "reduce_min", "amin": "reduce_min", "prod": None}
_RKEYS = ("axis", "keepdims")
# NumPy's function objects -> their name here (`TracedArray.__array_function__` tries
# `_reduce_fast` with it before `array_function`)
_RFUNCS = {getattr(np, n): n for n in _RFAST if hasattr(np, n)}


def _reduce_fast(name, args, kwargs):
    """The common reduction, recorded at once: a non-weak float traced array of an active trace
    (not the eager tape), `axis` (by position or keyword) None, an int or a tuple of ints that
    are in range and distinct, `keepdims` a bool, no other argument, nothing empty to reduce.
    Records what the general path (`_dispatch` -> `_sum` ... -> `ir.composites`) records, in
    the same order; any other call returns None and takes that path (its checks and errors)."""
    na = len(args)
    if na == 0 or na > 2:
        return None
    a = args[0]
    ta = type(a)
    if (ta is not TracedNDArray and ta is not TracedArray) or a.weak:
        return None
    x = a._n
    tr = x.trace
    typ = x.type
    if tr is EAGER or not tr.active or typ.dtype not in FLOATS:
        return None
    axis, keep = (args[1] if na == 2 else None), False
    if kwargs:
        for k in kwargs:
            if k not in _RKEYS or (k == "axis" and na == 2):
                return None
        axis = kwargs.get("axis", axis)
        keep = kwargs.get("keepdims", False)
        if type(keep) is not bool:
            return None
    shp = typ.shape
    nd = len(shp)
    if axis is None:
        axes = tuple(range(nd))
    elif type(axis) is int:
        if not -nd <= axis < nd:
            return None
        axes = (axis % nd,)
    elif type(axis) is tuple:
        for ax in axis:
            if type(ax) is not int or not -nd <= ax < nd:
                return None
        axes = tuple(sorted([ax % nd for ax in axis]))
        if len(set(axes)) != len(axes):
            return None
    else:
        return None
    prim = _RFAST[name]
    if prim is None:  # prod: its composite (a tree of products)
        return TracedArray(ir_composites.prod(x, axes, keep), False)
    n = 1
    for ax in axes:
        n *= shp[ax]
    if not axes or not n:
        return None  # nothing reduced, or an empty reduction (NumPy's identity or error)
    r = _record(REGISTRY[prim], tr, (x,), {"axes": axes})
    if keep:
        r = _record(REGISTRY["reshape"], tr, (r,),
                    {"shape": tuple(1 if i in axes else d for i, d in enumerate(shp))})
    if name == "mean":
        r = _record(REGISTRY["div"], tr, (r, float(n)), {})
    return TracedArray(r, False)


def numpy_function(name):
    return getattr(np.linalg, name[7:]) if name.startswith("linalg.") else getattr(np, name)


_P = inspect.Parameter
_CO_VARARGS, _CO_VARKEYWORDS = inspect.CO_VARARGS, inspect.CO_VARKEYWORDS


class _Param:
    """What this module reads of an inspect.Parameter: name, kind, default (and the kinds and
    `empty` as attributes, as inspect.Parameter has them)."""
    __slots__ = ("name", "kind", "default")
    empty = _P.empty
    POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD = _P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD
    VAR_POSITIONAL, KEYWORD_ONLY, VAR_KEYWORD = _P.VAR_POSITIONAL, _P.KEYWORD_ONLY, _P.VAR_KEYWORD

    def __init__(self, name, kind, default=_P.empty):
        self.name, self.kind, self.default = name, kind, default


class _Signature:
    """inspect.signature(f) as this module reads it, for f a plain Python function or one that
    wraps one (`__wrapped__`: NumPy's public functions): `parameters` read from the code object,
    `bind` inspect's own (made when first needed: the general path only). inspect.signature
    costs 20-100 us a function (the first of a process the most), 5-25 us this way; the
    first trace of a process reads two per NumPy function it calls (W2's step: six)."""
    __slots__ = ("parameters", "_f", "_sig")

    def __init__(self, parameters, f):
        self.parameters, self._f, self._sig = parameters, f, None

    def bind(self, *args, **kwargs):
        sig = self._sig
        if sig is None:
            sig = self._sig = _ast.signature(self._f)
        return sig.bind(*args, **kwargs)

    @classmethod
    def of(cls, f):
        """The signature of `f` read from its code object, or None when inspect.signature has
        to read it (a builtin, a ufunc, an object with `__signature__`, a method, a partial)."""
        g = _function_of(f)
        if g is None:
            return None
        c = g.__code__
        names = c.co_varnames
        npos, nposonly, nkw = c.co_argcount, c.co_posonlyargcount, c.co_kwonlyargcount
        defaults = g.__defaults__ or ()
        kwdefaults = g.__kwdefaults__ or {}
        first_default = npos - len(defaults)
        params = {}
        for i in range(npos):
            kind = _P.POSITIONAL_ONLY if i < nposonly else _P.POSITIONAL_OR_KEYWORD
            params[names[i]] = _Param(names[i], kind, defaults[i - first_default]
                                      if i >= first_default else _P.empty)
        k = npos
        if c.co_flags & _CO_VARARGS:
            params[names[npos + nkw]] = _Param(names[npos + nkw], _P.VAR_POSITIONAL)
        for nm in names[k:k + nkw]:
            params[nm] = _Param(nm, _P.KEYWORD_ONLY, kwdefaults.get(nm, _P.empty))
        if c.co_flags & _CO_VARKEYWORDS:
            j = npos + nkw + (1 if c.co_flags & _CO_VARARGS else 0)
            params[names[j]] = _Param(names[j], _P.VAR_KEYWORD)
        return cls(params, f)


def signature(f):
    """inspect.signature(f) as this module reads it (see _Signature)."""
    sig = _Signature.of(f)
    return sig if sig is not None else _ast.signature(f)


@functools.lru_cache(maxsize=None)
def _signatures(name, fn):
    """(NumPy's signature of np.<name>, the parameter names our implementation takes)."""
    try:
        sig = signature(numpy_function(name))
    except (ValueError, TypeError, AttributeError):
        sig = None
    params = signature(fn).parameters.values()
    # "**": the implementation takes NumPy's **kwargs itself (np.pad's mode keywords)
    return sig, frozenset(p.name if p.kind is not p.VAR_KEYWORD else "**" for p in params)


def _is_default(v, default, key=None):
    if v is default or v is _NO:
        return True
    if key == "where" and v is True:
        # where=True (Python's True): every element takes part, as NumPy's default (a mask is
        # taken only by the reductions whose implementation has where=: `_mask`)
        return True
    return type(v) in (bool, int, float, str, type(None)) and type(v) is type(default) and \
        v == default


def refuse(name, key, value):
    return TypeError(f"np.{name}(..., {key}={value!r}) is not supported on traced arrays"
                     f"{where_str()}")


# (name, implementation, number of positional arguments, keyword names) -> what binding such a
# call to NumPy's signature gives, per argument: (parameter name, position or keyword, whether
# our implementation takes it, NumPy's default); False when the call needs the general path
# (*args, **kwargs, an argument that is not a plain parameter, a required one missing)
_PLANS: dict = {}


def _function_of(f):
    """The plain Python function whose code object `_Signature.of` reads for f, or None
    (inspect.unwrap, as inspect.signature follows it; None where inspect.signature stops and
    reads the rest: an object with `__signature__`, a method, a builtin, a partial)."""
    g = f
    for _ in range(100):
        if hasattr(g, "__signature__") or isinstance(g, types.MethodType):
            return None
        w = getattr(g, "__wrapped__", None)
        if w is None:
            break
        g = w
    else:
        return None
    return g if type(g) is types.FunctionType else None


def _plan(name, fn, nargs, keys):
    # read from the code objects (what `_Signature.of` reads, without building a signature:
    # this runs once per NumPy function and call shape, in a process's first trace); anything
    # `_Signature.of` leaves to inspect takes `_plan_from_signature`
    try:
        g = _function_of(numpy_function(name))
    except AttributeError:
        g = None
    h = _function_of(fn)
    if g is None or h is None:
        return _plan_from_signature(name, fn, nargs, keys)
    hc = h.__code__
    if hc.co_flags & _CO_VARKEYWORDS:
        return False  # the implementation takes NumPy's **kwargs itself
    ours = hc.co_varnames[:hc.co_argcount + hc.co_kwonlyargcount +
                          (1 if hc.co_flags & _CO_VARARGS else 0)]
    c = g.__code__
    names = c.co_varnames
    npos, nposonly, nkw = c.co_argcount, c.co_posonlyargcount, c.co_kwonlyargcount
    if nargs > npos:
        return False  # an argument for *args (or too many): the general path
    defaults = g.__defaults__ or ()
    kwdefaults = g.__kwdefaults__ or {}
    first_default = npos - len(defaults)
    empty = _P.empty
    plan = []
    for i in range(nargs):
        k = names[i]
        plan.append((k, i, k in ours and k != "out",
                     defaults[i - first_default] if i >= first_default else empty))
    kwonly = names[npos:npos + nkw]
    for k in keys:
        if k in kwonly:
            default = kwdefaults.get(k, empty)
        else:
            try:
                i = names.index(k, nposonly, npos)
            except ValueError:
                return False  # not a parameter NumPy takes by keyword
            if i < nargs:
                return False  # given twice
            default = defaults[i - first_default] if i >= first_default else empty
        plan.append((k, k, k in ours and k != "out", default))
    for i in range(nargs, first_default):  # a required argument missing: the general path
        if names[i] not in keys:
            return False
    for k in kwonly:
        if k not in kwdefaults and k not in keys:
            return False
    return tuple(plan)


def _plan_from_signature(name, fn, nargs, keys):
    sig, ours = _signatures(name, fn)
    if sig is None or "**" in ours:
        return False
    params = list(sig.parameters.values())
    if nargs > len(params):
        return False
    plan, bound = [], set()
    for i in range(nargs):
        p = params[i]
        if p.kind is not p.POSITIONAL_ONLY and p.kind is not p.POSITIONAL_OR_KEYWORD:
            return False
        plan.append((p.name, i, p.name in ours and p.name != "out", p.default))
        bound.add(p.name)
    for k in keys:
        p = sig.parameters.get(k)
        if p is None or k in bound or (p.kind is not p.POSITIONAL_OR_KEYWORD and
                                       p.kind is not p.KEYWORD_ONLY):
            return False
        plan.append((k, k, k in ours and k != "out", p.default))
        bound.add(k)
    for p in params:
        if p.name not in bound and p.default is p.empty and \
                p.kind is not p.VAR_POSITIONAL and p.kind is not p.VAR_KEYWORD:
            return False  # a required argument missing: the general path says so
    return tuple(plan)


def _dispatch(name, fn, args, kwargs, bind=True):
    """Bind the call to NumPy's own signature (so positions mean what they mean to NumPy), then
    pass every argument our implementation takes; any other one that is not at NumPy's default
    is refused, never ignored."""
    if bind:
        # the common call (plain parameters by position or keyword): the binding worked out
        # once per call shape, then each argument passed or checked against NumPy's default
        # as below; anything else (out=, a value to refuse) takes the general path
        key = (name, fn, len(args), tuple(kwargs) if kwargs else ())
        plan = _PLANS.get(key)
        if plan is None:
            plan = _PLANS[key] = _plan(name, fn, len(args), key[3])
        if plan:
            kw = {}
            for k, src, take, default in plan:
                v = args[src] if type(src) is int else kwargs[src]
                if take:
                    if v is not _NO:
                        kw[k] = v
                elif k == "out":
                    if v is not None:
                        break
                elif not _is_default(v, default, k):
                    break
            else:
                try:  # (_call inlined: one frame less per NumPy call)
                    return fn(**kw)
                except (ValueError, TypeError, NotImplementedError, IndexError) as e:
                    if "(at " in str(e):
                        raise
                    raise type(e)(f"{e} in np.{name}{where_str()}") from None
    sig, ours = _signatures(name, fn) if bind else (None, ())
    if sig is None:
        pos, kw = args, {k: v for k, v in kwargs.items() if v is not _NO}
    else:
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"np.{name}: {e}{where_str()}") from None
        pos, kw = (), {}
        for key, v in bound.arguments.items():
            p = sig.parameters[key]
            if p.kind is p.VAR_POSITIONAL:
                # the parameters before *args go by position (np.gradient(f, *varargs))
                pos = tuple(kw.pop(k) for k in list(kw)) + tuple(v)
                continue
            extra = v.items() if p.kind is p.VAR_KEYWORD else [(key, v)]
            for k, val in extra:
                if k == "out" and val is not None:
                    raise TypeError(f"np.{name}(..., out=...) cannot write a traced value into "
                                    f"an ndarray{where_str()}; use the returned value instead")
                if (k in ours or (k != key and "**" in ours)) and val is not _NO:
                    kw[k] = val
                elif not _is_default(val, p.default if k == key else _NO, k):
                    raise refuse(name, k, val)
    kw.pop("out", None)
    return _call(name, fn, pos, kw)


def _call(name, fn, pos, kw):
    try:
        return fn(*pos, **kw)
    except (ValueError, TypeError, NotImplementedError, IndexError) as e:
        if "(at " in str(e):
            raise
        raise type(e)(f"{e} in np.{name}{where_str()}") from None


_NAMES: dict = {}  # NumPy's function object -> the name FUNCS knows it by


def array_function(f, args, kwargs):
    name = _NAMES.get(f)
    if name is None:
        mod = getattr(f, "__module__", "") or ""
        name = f.__name__
        if mod.endswith("linalg") or mod.endswith("linalg._linalg"):
            name = "linalg." + name
        _NAMES[f] = name
    fn = FUNCS.get(name)
    if fn is None:
        raise NotImplementedError(
            f"np.{name} is not supported on traced arrays{where_str()}. Supported NumPy "
            f"functions: {', '.join(sorted(FUNCS))}; ufuncs: {', '.join(sorted(UFUNCS))}")
    return _dispatch(name, fn, args, kwargs)


# ufunc keywords whose default value changes nothing; any other value (and any other keyword:
# where=, axes=, signature=, ...) is refused rather than ignored
_UFUNC_DEFAULTS = {"casting": "same_kind", "order": "K", "subok": True}


def _ufunc_dt(x):
    """What NumPy's loop resolution sees for one operand (Python scalars and weak arrays as
    the abstract Python types, so they promote weakly)."""
    if isinstance(x, TracedArray):
        return {"f": float, "i": int, "b": np.dtype(bool)}[x.dtype.kind] if x.weak else x.dtype
    if isinstance(x, (bool, np.generic)):
        return np.dtype(bool) if isinstance(x, bool) else x.dtype
    if isinstance(x, (int, float)):
        return int if isinstance(x, int) else float
    n = getattr(x, "_n", None)
    return DTYPES[n.type.dtype] if n is not None and hasattr(n, "type") else np.asarray(x).dtype


# (ufunc, what its loop resolution sees per operand, dtype=) -> NumPy's resolved loop dtypes:
# a pure function of those, asked for every traced ufunc call
_LOOPS: dict = {}


# (ufunc, per operand its dtype name or Python number type) -> (implementation, NumPy's name
# for it, the result dtype names NumPy's loop gives): a call of NumPy's own ufunc without
# keywords on non-weak traced arrays and Python numbers that `array_ufunc` has resolved and
# accepted once; a later one with the same key skips the keyword checks and loop resolution
_UFAST: dict = {}


def _fast_key(uf, inputs):
    key = [uf]
    for x in inputs:
        tx = type(x)
        if (tx is TracedNDArray or tx is TracedArray) and not x.weak:
            key.append(x._n.type.dtype)
        elif tx is float or tx is int:
            key.append(tx)
        else:
            return None
    return tuple(key)


def array_ufunc(uf, method, inputs, kwargs):
    fast = None
    if method == "__call__" and not kwargs:
        if len(inputs) == 1:  # (_fast_key inlined for one operand)
            x = inputs[0]
            tx = type(x)
            if (tx is TracedNDArray or tx is TracedArray) and not x.weak:
                fast = (uf, x._n.type.dtype)
        elif len(inputs) == 2:  # (and for two: the key `_fast_key` gives)
            a, b = inputs
            ta, tb = type(a), type(b)
            if (ta is TracedNDArray or ta is TracedArray) and not a.weak:
                ka = a._n.type.dtype
            else:
                ka = ta if ta is float or ta is int else None
            if (tb is TracedNDArray or tb is TracedArray) and not b.weak:
                kb = b._n.type.dtype
            else:
                kb = tb if tb is float or tb is int else None
            if ka is not None and kb is not None:
                fast = (uf, ka, kb)
        else:
            fast = _fast_key(uf, inputs)
        hit = _UFAST.get(fast) if fast is not None else None
        if hit is not None:
            fn, name, want = hit
            try:  # (_call inlined)
                out = fn(*inputs)
            except (ValueError, TypeError, NotImplementedError, IndexError) as e:
                if "(at " in str(e):
                    raise
                raise type(e)(f"{e} in np.{name}{where_str()}") from None
            if len(want) == 1:  # one result of the dtype NumPy's loop gives (the common case)
                to = type(out)
                if (to is TracedNDArray or to is TracedArray) and out._n.type.dtype == want[0]:
                    return out
            outs = out if uf.nout > 1 else (out,)
            for o, w in zip(outs, want):
                if type(o) is not TracedNDArray and type(o) is not TracedArray or \
                        o._n.type.dtype != w:
                    _check_results(uf, "np." + name, inputs, outs, _UFAST_LOOPS[fast])
            return out
    name = uf.__name__
    # a ufunc that is not NumPy's own: scipy.special's (scipy.special.log1p is not np.log1p)
    ours = getattr(np, name, None) is uf
    label = f"np.{name}" if ours else f"{_ufunc_module(uf)}.{name}"
    if method != "__call__":  # reduce, accumulate, outer (np_ufunc_methods)
        return np_ufunc_methods.ufunc_method(uf, method, inputs, kwargs, label)
    if kwargs.get("out") is not None:
        raise TypeError(f"{label}(..., out=...) cannot write a traced value into an ndarray"
                        f"{where_str()}; use the returned value instead")
    for k, v in kwargs.items():
        if k in ("out", "dtype") or (k in _UFUNC_DEFAULTS and v == _UFUNC_DEFAULTS[k]) or \
                _is_default(v, _NO, k):
            continue
        raise TypeError(f"{label}(..., {k}={v!r}) is not supported on traced arrays"
                        f"{where_str()}" + ("" if k not in _UFUNC_DEFAULTS else
                                            f"; only {k}={_UFUNC_DEFAULTS[k]!r}"))
    fn = UFUNCS.get(name) if ours else SCIPY_UFUNCS.get(name)
    if fn is None:
        if ours:
            raise NotImplementedError(f"np.{name} is not supported on traced arrays"
                                      f"{where_str()}. Supported ufuncs: "
                                      f"{', '.join(sorted(UFUNCS))}")
        raise NotImplementedError(f"{label} is not supported on traced arrays{where_str()}. "
                                  f"Supported scipy.special ufuncs: "
                                  f"{', '.join(sorted(SCIPY_UFUNCS))}; see also adjit.scipy")
    if not ours:
        name = label  # error messages below name it as the user wrote it
    # NumPy's own loop resolution says which dtypes the call computes in and returns
    dtype = kwargs.get("dtype")
    dts = tuple(_ufunc_dt(x) for x in inputs)
    sig = {} if dtype is None else {"signature": (None,) * uf.nin + (np.dtype(dtype),) * uf.nout}
    key = (uf, dts, dtype)
    try:
        loop = _LOOPS.get(key)
    except TypeError:  # an unhashable dtype= value: resolved every time
        key = loop = None
    if loop is None:
        try:
            loop = uf.resolve_dtypes(dts + (None,) * uf.nout, **sig)
        except TypeError as e:
            raise TypeError(f"{label}: {e}{where_str()}") from None
        if key is not None:
            if len(_LOOPS) >= 4096:
                _LOOPS.clear()
            _LOOPS[key] = loop
    want = loop[uf.nin]
    if want not in NAME_OF:  # (not by `want.name`: NumPy's dtype.name runs Python, 5-25 us)
        names = ", ".join(str(d) if isinstance(d, np.dtype) else d.__name__ for d in dts)
        raise TypeError(f"{label} on {names} gives {want}, a dtype traced arrays do not "
                        f"support{where_str()}; "
                        "convert the operands first (x.astype(np.float64))")
    if dtype is not None or not ours:  # computed in the loop's dtypes: cast the operands first
        # (SciPy's loops: float32 with a Python float computes in float64)
        inputs = tuple(x if isinstance(x, (bool, int, float)) else _astype(x, loop[i])
                       for i, x in enumerate(inputs))
    try:  # (NumPy's own: `_call` inlined, as `_dispatch(..., bind=False)` called it)
        out = fn(*inputs)
    except (ValueError, TypeError, NotImplementedError, IndexError) as e:
        if "(at " in str(e) or (not ours and isinstance(e, IndexError)):
            raise
        raise type(e)(f"{e} in {label}{where_str()}") from None
    outs = out if uf.nout > 1 else (out,)
    _check_results(uf, label, inputs, outs, loop)
    if fast is not None and ours and dtype is None and \
            all(d in NAME_OF for d in loop[uf.nin:]):
        if len(_UFAST) >= 4096:
            _UFAST.clear()
            _UFAST_LOOPS.clear()
        _UFAST_LOOPS[fast] = loop
        _UFAST[fast] = (fn, name, tuple(NAME_OF[d] for d in loop[uf.nin:]))
    return out


_UFAST_LOOPS: dict = {}  # the same keys -> NumPy's resolved loop (for the error message)


def _check_results(uf, label, inputs, outs, loop):
    for got, want in zip((np.dtype(getattr(o, "dtype", type(o))) for o in outs),
                         loop[uf.nin:]):
        if got == want:
            continue
        # a rule that disagrees with NumPy: refuse rather than answer differently
        dts = tuple(_ufunc_dt(x) for x in inputs)
        raise NotImplementedError(f"{label} on {dts} would give {got} where NumPy gives "
                                  f"{want}; not supported on traced arrays{where_str()}")


def _ufunc_module(uf):
    """Where a ufunc that is not NumPy's comes from: scipy.special's are the common case."""
    try:
        import scipy.special as sp
        if getattr(sp, uf.__name__, None) is uf:
            return "scipy.special"
    except ImportError:  # pragma: no cover
        pass
    return "ufunc"


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
    # (partials: no Python frame of their own between `array_ufunc` and `binary` / `unary`)
    if p.kind == "binary":
        return functools.partial(binary, p.name)
    return functools.partial(unary, p.name, to_float=to_float)


def _add_ufuncs(p):
    _UFAST.clear()
    if p.kind in ("unary", "binary"):
        for n in p.numpy:
            UFUNCS[n] = _ufunc(p)


def _remove_ufuncs(p):
    _UFAST.clear()
    for n in p.numpy:
        UFUNCS.pop(n, None)


on_register(_add_ufuncs, _remove_ufuncs)


# --- scipy.special's ufuncs (adjit/ir/prims/special.py SCIPY): float operands, as SciPy's loops
def _scipy_ufunc(entry):
    def f(*args):
        xs, dt, weak = promote(list(args), "scipy.special", to_float=True)
        shp = next((ops.shape(x) for x in xs if not isinstance(x, (bool, int, float))), ())
        if isinstance(entry, str):
            p = REGISTRY[entry]
            if p.kind == "binary" and isinstance(xs[0], (int, float)):
                xs[0] = ops.full(shp, xs[0], dt)
            return wrap(bind(p, *xs), False)
        xs = [ops.full(shp, x, dt) if isinstance(x, (bool, int, float)) else x for x in xs]
        if dt == "f32":  # computed in double and rounded once, as SciPy's float32 loops
            return wrap(ops.convert(entry(*[ops.convert(x, "f64") for x in xs]), "f32"), False)
        return wrap(entry(*xs), False)
    return f


SCIPY_UFUNCS = {n: _scipy_ufunc(e) for n, e in _special.SCIPY.items()}
# where a NumPy name needs more than the generated entry
UFUNCS["logical_and"] = lambda a, b: binary("and", _bool(a), _bool(b))  # "and" is bitwise on ints
UFUNCS["logical_or"] = lambda a, b: binary("or", _bool(a), _bool(b))
UFUNCS["fabs"] = lambda a: unary("abs", a, to_float=True)  # float64 on integers, as NumPy
UFUNCS["positive"] = lambda a: a
UFUNCS["square"] = lambda a: binary("mul", a, a)
UFUNCS["logical_not"] = lambda a: unary("not", _bool(a))


@_reg(UFUNCS, "reciprocal")
def _reciprocal(a):
    (x,), dt, weak = promote([a], "np.reciprocal")
    if dt in ("f32", "f64"):
        return binary("div", 1.0, a)
    # integer division 1 // x truncated toward zero (C): 1 at 1, -1 at -1, 0 elsewhere; NumPy
    # gives the most negative integer at 0 (with a divide-by-zero warning)
    low = int(np.iinfo(DTYPES[dt]).min)
    r = ops.select(ops.eq(x, 1), ops.full(ops.shape(x), 1, dt),
                   ops.select(ops.eq(x, -1), ops.full(ops.shape(x), -1, dt),
                              ops.select(ops.eq(x, 0), ops.full(ops.shape(x), low, dt),
                                         ops.full(ops.shape(x), 0, dt))))
    return wrap(r, weak)
UFUNCS["matmul"] = lambda a, b: a.__matmul__(b) if isinstance(a, TracedArray) else \
    b.__rmatmul__(a)


# sinh, cosh, log2, log10, exp2: primitives (ir/prims/ufuncs.py), generated above
def _float_test(f, ints):
    def impl(a):
        (x,), dt, _ = promote([a], "")
        if dt not in ("f32", "f64"):  # integers and bools are never nan or inf
            return wrap(ops.full(ops.shape(x), ints, "bool"))
        return wrap(f(x))
    return impl


for _n, _f, _i in (("isnan", ir_composites.isnan, False), ("isinf", ir_composites.isinf, False),
                   ("isfinite", ir_composites.isfinite, True)):
    UFUNCS[_n] = _float_test(_f, _i)


@_reg(UFUNCS, "logaddexp")
def _logaddexp(a, b):
    (x, y), _, _ = promote([a, b], "np.logaddexp", to_float=True)
    return wrap(ir_composites.logaddexp(x, y))


def _bool(a):
    return a if np.dtype(getattr(a, "dtype", type(a))) == np.bool_ else binary("ne", a, 0)


# --- reductions ------------------------------------------------------------------------------
def _one(a, to_float=False, int64=False):
    ta = type(a)
    if (ta is TracedNDArray or ta is TracedArray) and not a.weak:
        # (promote_nobroadcast's short path for one operand)
        x = a._n
        dt = x.type.dtype
        if x.trace.active and (dt in FLOATS or not to_float):
            return ops.convert(x, "i64") if int64 and dt in ("bool", "i32") else x
    (x,), dt, _ = promote_nobroadcast([a], to_float)
    if int64 and dt in ("bool", "i32"):
        x = ops.convert(x, "i64")
    return x


def _dt(a, dtype):
    return a if dtype is None else _astype(a, dtype)


def _acc(a, dtype, to_float=False, name="sum"):
    """The operand of a sum-like reduction: NumPy accumulates bool and int32 in int64 unless
    `dtype=` names the accumulator, which then is the result's dtype."""
    if dtype is None:
        return _one(a, to_float=to_float, int64=not to_float)
    x = _one(_dt(a, dtype))
    if to_float and ops.dtype(x) not in ("f32", "f64"):
        raise TypeError(f"np.{name}(..., dtype={dtype!r}): an integer dtype for a mean, var or "
                        f"std is not supported on traced arrays{where_str()}")
    if ops.dtype(x) == "bool":
        raise TypeError(f"np.{name}(..., dtype={dtype!r}): a bool sum or product is not "
                        f"supported on traced arrays{where_str()}")
    return x


def reduce_axis(axis):
    """`axis` of NumPy's ufunc reductions (sum, prod, max, min, any, all, mean, var, std and
    the nan-reductions): None, an integer or a tuple of integers, with NumPy's TypeError for
    a list, a bool, a float or a str ("'list' object cannot be interpreted as an integer",
    "an integer is required")."""
    if axis is None or type(axis) is int:
        return axis
    items = axis if type(axis) is tuple else (axis,)
    out = []
    for a in items:
        if isinstance(a, (bool, np.bool_)):
            raise TypeError("an integer is required")
        out.append(operator.index(a))
    return tuple(out) if type(axis) is tuple else out[0]


def _mask(x, where, name):
    """`where=` of a reduction: None for True (every element), else the bool mask broadcast to
    x's shape (a plain or traced array; NumPy's errors for another dtype or shape)."""
    if where is True:
        return None
    m = where._n if isinstance(where, TracedArray) else np.asarray(where)
    dt = ops.dtype(m) if isinstance(where, TracedArray) else NAME_OF.get(m.dtype, str(m.dtype))
    if dt != "bool":
        have = np.dtype(DTYPES[dt]) if dt in DTYPES else np.dtype(dt)
        raise TypeError(f"np.{name}(..., where=...): cannot cast array data from {have!r} to "
                        f"dtype('bool') according to the rule 'safe'{where_str()}")
    xs, ms = ops.shape(x), tuple(ops.shape(m))
    try:
        ok = np.broadcast_shapes(ms, xs) == tuple(xs)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"np.{name}(..., where=...): a mask of shape {ms} does not broadcast "
                         f"to the array's shape {tuple(xs)}{where_str()}")
    return ops.broadcast_to(m, tuple(xs))


def _masked(x, m, fill):
    """x where the mask holds, `fill` (the reduction's identity) elsewhere."""
    return x if m is None else ops.select(m, x, ops.full(ops.shape(x), fill, ops.dtype(x)))


def _initial_value(name, initial):
    if isinstance(initial, TracedArray) or np.ndim(initial) != 0 or \
            isinstance(initial, (str, bytes)):
        raise TypeError(f"np.{name}(..., initial=...) takes a plain number on traced arrays"
                        f"{where_str()}")
    return np.asarray(initial).item()


def _initial(name, r, initial, op):
    """`initial=` folded into a reduction's result r (sum: +, prod: *, max/min: maximum,
    minimum, whose derivative splits a tie evenly, as JAX's)."""
    if initial is _NO:
        return r
    v = _initial_value(name, initial)
    return ops.__getattr__(op)(r, ops.full(ops.shape(r), v, ops.dtype(r)))


@func("sum")
def _sum(a, axis=None, dtype=None, keepdims=False, initial=_NO, where=True):
    axis = reduce_axis(axis)
    x = _acc(a, dtype)
    r = ir_composites.sum(_masked(x, _mask(x, where, "sum"), 0), axis, keepdims)
    return wrap(_initial("sum", r, initial, "add"))


def _count_where(x, m, axis, keepdims):
    """How many elements the mask m selects per result element (x's dtype)."""
    return ir_composites.sum(ops.convert(m, ops.dtype(x)), axis, keepdims)


@func("mean")
def _mean(a, axis=None, dtype=None, keepdims=False, *, where=True):
    axis = reduce_axis(axis)
    x = _acc(a, dtype, True, "mean")
    m = _mask(x, where, "mean")
    if m is None:
        return wrap(ir_composites.mean(x, axis, keepdims))
    return wrap(ops.div(ir_composites.sum(_masked(x, m, 0), axis, keepdims),
                        _count_where(x, m, axis, keepdims)))


def _extreme(name, a, axis, keepdims, initial, where):
    axis = reduce_axis(axis)
    x = _one(a)
    m = _mask(x, where, name)
    op = "maximum" if name == "max" else "minimum"
    if initial is _NO:
        if m is not None:
            raise ValueError(f"reduction operation '{op}' does not have an identity, so to use "
                             f"a where mask one has to specify 'initial'")
        r = (ir_composites.max if name == "max" else ir_composites.min)(x, axis, keepdims)
        return wrap(r)
    v = _initial_value(name, initial)
    # masked-out elements: the reduction's identity (so they tie with nothing), then initial
    dt = DTYPES[ops.dtype(x)]
    big = np.inf if dt.kind == "f" else True if dt.kind == "b" else np.iinfo(dt).max
    low = -np.inf if dt.kind == "f" else False if dt.kind == "b" else np.iinfo(dt).min
    x = _masked(x, m, low if name == "max" else big)
    axes = ir_composites.norm_axes(axis, ir_composites.ndim(x), scalar_int=True)
    if ir_composites.count(x, axes) == 0:  # nothing to reduce: the initial value
        shp = tuple(1 if i in axes else d for i, d in enumerate(ops.shape(x))) if keepdims \
            else tuple(d for i, d in enumerate(ops.shape(x)) if i not in axes)
        return wrap(ops.full(shp, v, ops.dtype(x)))
    r = (ir_composites.max if name == "max" else ir_composites.min)(x, axes, keepdims)
    return wrap(_initial(name, r, initial, op))


@func("max", "amax")
def _max(a, axis=None, keepdims=False, initial=_NO, where=True):
    return _extreme("max", a, axis, keepdims, initial, where)


@func("min", "amin")
def _min(a, axis=None, keepdims=False, initial=_NO, where=True):
    return _extreme("min", a, axis, keepdims, initial, where)


@func("prod")
def _prod(a, axis=None, dtype=None, keepdims=False, initial=_NO, where=True):
    axis = reduce_axis(axis)
    x = _acc(a, dtype, name="prod")
    r = ir_composites.prod(_masked(x, _mask(x, where, "prod"), 1), axis, keepdims)
    return wrap(_initial("prod", r, initial, "mul"))


def _var_node(a, axis, dtype, ddof, keepdims, where, name):
    axis = reduce_axis(axis)
    x = _acc(a, dtype, True, name)
    m = _mask(x, where, name)
    if m is None:
        return ir_composites.var(x, axis, ddof, keepdims)
    n = _count_where(x, m, axis, True)
    mu = ops.div(ir_composites.sum(_masked(x, m, 0), axis, True), n)
    d = ops.sub(x, ops.broadcast_to(mu, ops.shape(x)))
    s = ir_composites.sum(_masked(ops.mul(d, d), m, 0), axis, keepdims)
    return ops.div(s, ops.maximum(ops.sub(_count_where(x, m, axis, keepdims), float(ddof)),
                                  0.0))


@func("var")
def _var(a, axis=None, dtype=None, ddof=0, keepdims=False, *, where=True):
    return wrap(_var_node(a, axis, dtype, ddof, keepdims, where, "var"))


@func("std")
def _std(a, axis=None, dtype=None, ddof=0, keepdims=False, *, where=True):
    return wrap(ops.sqrt(_var_node(a, axis, dtype, ddof, keepdims, where, "std")))


@func("cumsum")
def _cumsum(a, axis=None, dtype=None):
    axis = _int_axis("cumsum", axis)
    return wrap(ir_composites.cumsum(as_1d(_acc(a, dtype, name="cumsum"), axis), axis))


def as_1d(x, axis):
    """NumPy's functions along one axis (cumsum, cumprod, argmax, argmin, take, argsort) see
    a 0-d array with an integer axis as a 1-d array of one element (axis 0 or -1 then)."""
    return ops.reshape(x, (1,)) if axis is not None and not ops.shape(x) else x


def _int_axis(name, axis):
    """One integer axis or None (NumPy's TypeError, "'tuple' object cannot be interpreted as
    an integer", for anything else; the dispatcher adds the function and the user's line)."""
    return None if axis is None else operator.index(axis)


def _arg(prim):
    def impl(a, axis=None, keepdims=False):
        x = _one(a)
        axis = _int_axis(prim, axis)
        nd = ir_composites.ndim(x)
        if axis is None:
            x, ax = ops.reshape(x, (ir_composites.count(x),)), 0
        else:
            x = as_1d(x, axis)
            ax = ir_composites.norm_axes(axis, ir_composites.ndim(x))[0]
        r = ops.__getattr__(prim)(x, axis=ax)
        if keepdims:
            shp = list(ops.shape(x)) if axis is not None else [1] * nd
            if axis is not None and nd:
                shp[ax] = 1
            else:
                shp = shp[:nd]
            r = ops.reshape(r, tuple(shp))
        return wrap(r)
    return impl


FUNCS["argmax"], FUNCS["argmin"] = _arg("argmax"), _arg("argmin")


def _bool_reduce(name, fill, reduce):
    """np.all / np.any: a where= mask fills the elements it leaves out with `fill`, the
    reduction's identity (True for all, False for any)."""
    def impl(a, axis=None, keepdims=False, *, where=True):
        axis = reduce_axis(axis)
        x = _one(a)
        if where is not True:
            x = ops.convert(x, "bool")
            x = _masked(x, _mask(x, where, name), fill)
        return wrap(reduce(x, axis, keepdims))
    return impl


FUNCS["all"] = _bool_reduce("all", True, ir_composites.all_)
FUNCS["any"] = _bool_reduce("any", False, ir_composites.any_)


# --- elementwise functions ---------------------------------------------------------------------
@func("clip")
def _clip(a, a_min=None, a_max=None, *, min=None, max=None):  # noqa: A002
    if (min is not None or max is not None) and (a_min is not None or a_max is not None):
        raise ValueError("Passing `min` or `max` keyword argument when `a_min` and `a_max` "
                         "are provided is forbidden.")
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    parts = [a] + [v for v in (lo, hi) if v is not None]
    shapes = [tuple(getattr(v, "shape", None) or np.shape(v)) for v in parts]
    xs, _, _ = promote(parts, "np.clip")
    # NumPy's rule at a tie depends on whether both bounds are broadcast (composites.clip)
    out = np.broadcast_shapes(*shapes)
    keep_x = len(parts) == 3 and all(ir_composites.inner_broadcast(s, out) for s in shapes[1:])
    it = iter(xs[1:])
    return wrap(ir_composites.clip(xs[0], next(it) if lo is not None else None,
                                   next(it) if hi is not None else None, keep_x=keep_x))


@func("where")
def _where(condition, x=None, y=None):
    if x is None or y is None:
        raise NotImplementedError(f"np.where(condition) with one argument (nonzero) has a "
                                  f"data-dependent shape{where_str()}; use x[mask] instead")
    c = _bool(condition)
    (cn, xn, yn), dt, _ = _promote_where(c, x, y)
    return wrap(ir_composites.where(cn, xn, yn, dt))


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
        close = ops.__getattr__("or")(close, ops.__getattr__("and")(ir_composites.isnan(x), ir_composites.isnan(y)))
    return close


@func("isclose")
def _isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return wrap(_close(a, b, rtol, atol, equal_nan))


@func("allclose")
def _allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return wrap(ir_composites.all_(_close(a, b, rtol, atol, equal_nan)))


from . import np_shape  # noqa: E402,F401  (registers the shape functions and products)
from . import np_linalg  # noqa: E402,F401  (registers np.linalg)
from . import np_ufuncs  # noqa: E402,F401  (issue 15: the other ufuncs and ufunc-like functions)
from . import np_ufunc_methods  # noqa: E402  (a ufunc's reduce, accumulate, outer)
