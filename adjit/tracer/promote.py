"""NumPy 2 type promotion and broadcasting for TracedArray operations, and wrapping results.

`promote` converts operands to NumPy's result dtype (Python scalars and weak arrays weakly: a
float32 array with a Python float stays float32, an int array with a Python float becomes
float64) and broadcasts them to one shape, recording convert_element_type and broadcast_in_dim.
ndarrays read by traced code become leaves of the trace (`const_leaf`): graph constants bound
by reference.
"""
from __future__ import annotations

import numpy as np

from ..ir import composites
from ..ir import ops
from ..ir.core import EAGER, Node, REGISTRY, _record, atype_of, bind
from .tape import TapeNode
from ..ir.types import AType, DTYPES, FLOATS, dtype_name
from . import ndarray as _nd


def where_str():
    return _nd.where_str()


# --- wrapping, constants, promotion -------------------------------------------------------------
def wrap(x, weak=False):
    """A TracedArray for a Node of an active trace; other results as NumPy values."""
    if isinstance(x, Node):
        if x.trace.active:
            return _nd.TracedArray(x, weak)
        x = x.val
    return x if weak and isinstance(x, (bool, int, float)) else np.asarray(x)


_CONSTS: dict = {}   # id(trace) -> {id(array): (array, leaf Node)}, filled by open transforms


def const_leaf(arr, trace):
    """An ndarray read by traced code: a leaf of `trace`, so everything computed from it is
    recorded and the graph binds the very array (by reference) as a constant."""
    table = _CONSTS.get(id(trace))
    if table is not None and id(arr) in table:
        return table[id(arr)][1]
    a = np.asarray(arr)
    dtype_name(a.dtype)
    # (the shared AType of its shape and dtype, as arguments' leaves take)
    n = (TapeNode if trace is EAGER else Node)(a, atype_of(a), None, trace)
    if table is not None:
        table[id(arr)] = (arr, n)
    return n


def deepest(*xs):
    tr = None
    for x in xs:
        if isinstance(x, _nd.TracedArray) and x._n.trace.active:
            t = x._n.trace
            if tr is None or t.level > tr.level:
                tr = t
    return tr


def as_operand(x, trace):
    """A TracedArray, ndarray or Python scalar as an operand for ops (Node or scalar)."""
    if isinstance(x, _nd.TracedArray):
        return x._n
    if trace is not None and isinstance(x, (np.ndarray, np.generic)) and id(trace) in _CONSTS:
        from .frozen import note
        note(x)  # jit warns about a value NumPy computed from data jit cannot reach
    if isinstance(x, (bool, int, float)):
        return x
    if isinstance(x, (np.ndarray, np.generic)):
        return const_leaf(x, trace) if trace is not None else np.asarray(x)
    if isinstance(x, (list, tuple)):
        return as_operand(np.asarray(x), trace)
    t = _tensor_node(x)
    if t is not None:
        return t
    raise TypeError(f"unsupported operand of type {type(x).__name__} for a traced array")


def _tensor_node(x):
    n = getattr(x, "_n", None)
    return n if isinstance(n, Node) else None


def _is_tensor(x):
    T = _TENSOR[0] if _TENSOR else _tensor_class()
    return T is not None and isinstance(x, T)


_TENSOR: list = []


def _tensor_class():
    from .trace_args import tensor_cls
    T = tensor_cls()
    if T is not None:
        _TENSOR.append(T)
    return T


def is_weak(x):
    return isinstance(x, (bool, int, float)) or (isinstance(x, _nd.TracedArray) and x.weak)


def _example(x):
    if isinstance(x, _nd.TracedArray):
        if x.weak:
            return {"f": 0.0, "i": 0, "b": False}[x.dtype.kind]
        return x.dtype
    if isinstance(x, (bool, int, float)):
        return x
    if isinstance(x, Node):
        return DTYPES[x.type.dtype]
    return np.asarray(x).dtype


def result_dtype(*xs):
    """NumPy 2's promotion of the operands (Python scalars and weak arrays weakly)."""
    # the common case without asking NumPy: traced arrays of one dtype, and Python scalars
    # only next to a float dtype (which they never change)
    dt, scalars = None, False
    for x in xs:
        tx = type(x)
        if (tx is _nd.TracedNDArray or tx is _nd.TracedArray) and not x.weak:
            d = x._n.type.dtype
            if dt is None:
                dt = d
            elif d != dt:
                dt = None
                break
        elif tx is float or tx is int or tx is bool:
            scalars = True
        else:
            dt = None
            break
    if dt is not None and (not scalars or dt in FLOATS):
        return dt
    return dtype_name(np.result_type(*[_example(x) for x in xs]))


def promote(xs, label, to_float=False):
    """Operands converted to one dtype and broadcast to one shape (scalars stay scalars).
    Returns (operands, dtype name, weak)."""
    trace = deepest(*xs)
    dt = result_dtype(*xs)
    if to_float and dt not in FLOATS:
        dt = "f64"
    weak = all(is_weak(x) for x in xs)
    ops_ = []
    for x in xs:
        o = as_operand(x, trace)
        if isinstance(o, (bool, int, float)):
            o = float(o) if dt in FLOATS else (bool(o) if dt == "bool" else int(o))
        else:
            o = ops.convert(o, dt)
        ops_.append(o)
    shapes = [ops.shape(o) for o in ops_ if not isinstance(o, (bool, int, float))]
    try:
        s0 = tuple(shapes[0]) if shapes else ()
        # one shape (the common case) needs no broadcasting rule
        shp = s0 if all(tuple(s) == s0 for s in shapes) else np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"operands could not be broadcast together with shapes "
                         f"{' '.join(str(tuple(s)) for s in shapes)} in {label}"
                         f"{where_str()}") from None
    ops_ = [o if isinstance(o, (bool, int, float)) else ops.broadcast_to(o, shp) for o in ops_]
    return ops_, dt, weak


_LABEL = {"add": "np.add", "sub": "np.subtract", "mul": "np.multiply", "div": "np.divide",
          "pow": "np.power", "lt": "np.less", "le": "np.less_equal", "gt": "np.greater",
          "ge": "np.greater_equal", "eq": "np.equal", "ne": "np.not_equal",
          "and": "np.bitwise_and", "or": "np.bitwise_or", "xor": "np.bitwise_xor", "maximum": "np.maximum",
          "minimum": "np.minimum"}


_BITWISE = ("and", "or", "xor")


def _broadcast_pair(s, t):
    """NumPy's broadcast shape of shapes s and t, or None when they do not broadcast."""
    if len(s) < len(t):
        s, t = t, s
    d = len(s) - len(t)
    out = list(s)
    for i, b in enumerate(t):
        a = s[d + i]
        if a == b or b == 1:
            continue
        if a != 1:
            return None
        out[d + i] = b
    return tuple(out)


_BCAST = [None]  # REGISTRY["broadcast_in_dim"] (found once)


def _bcast(x, shp):
    """Node x (of an active trace, not the eager tape) broadcast to `shp`, a shape x
    broadcasts to: the equation `ops.broadcast_to` records (at x's own trace, as `bind`)."""
    p = _BCAST[0]
    if p is None:
        p = _BCAST[0] = REGISTRY["broadcast_in_dim"]
    return _record(p, x.trace, (x,), {"shape": shp,
                                      "dims": tuple(range(len(shp) - len(x.type.shape),
                                                          len(shp)))})


def binary(name, a, b, sym=None):
    # the common cases without `promote`: non-weak traced arrays of active traces and one float
    # dtype whose shapes broadcast, or one of them with a Python number (which a float dtype
    # keeps); what is recorded is what `promote` would record (no conversion; a
    # broadcast_in_dim of each operand not of the result's shape, in order, at its own trace),
    # then the operation at the deeper trace (where `bind` records it)
    if name not in _BITWISE:
        ta, tb = type(a), type(b)
        if ta is _nd.TracedNDArray or ta is _nd.TracedArray:
            x = a._n
            tr = x.trace
            typ = x.type
            dt = typ.dtype
            if not a.weak and tr.active and dt in FLOATS:
                if tb is _nd.TracedNDArray or tb is _nd.TracedArray:
                    y = b._n
                    ty = y.trace
                    if not b.weak and ty.active and y.type.dtype == dt:
                        if ty.level > tr.level:
                            tr = ty
                        sx, sy = typ.shape, y.type.shape
                        if sx == sy:
                            # (the eager tape's own path for it: `bind`)
                            return _nd.TracedArray(bind(REGISTRY[name], x, y) if tr is EAGER
                                                   else _record(REGISTRY[name], tr, (x, y), {}),
                                                   False)
                        if x.trace is not EAGER and y.trace is not EAGER:
                            shp = _broadcast_pair(sx, sy)
                            if shp is not None:
                                return _nd.TracedArray(_record(
                                    REGISTRY[name], tr, (x if sx == shp else _bcast(x, shp),
                                                         y if sy == shp else _bcast(y, shp)),
                                    {}), False)
                elif tb is float or tb is int or tb is bool:
                    y = b if tb is float else float(b)
                    return _nd.TracedArray(bind(REGISTRY[name], x, y) if tr is EAGER else
                                           _record(REGISTRY[name], tr, (x, y), {}), False)
        elif (tb is _nd.TracedNDArray or tb is _nd.TracedArray) and name != "pow" and \
                (ta is float or ta is int or ta is bool):  # (pow of a number: `full` below)
            y = b._n
            tr = y.trace
            if not b.weak and tr.active and y.type.dtype in FLOATS:
                x = a if ta is float else float(a)
                return _nd.TracedArray(bind(REGISTRY[name], x, y) if tr is EAGER else
                                       _record(REGISTRY[name], tr, (x, y), {}), False)
    if sym is not None and (_is_tensor(a) or _is_tensor(b)):
        return NotImplemented  # `s * t` of a traced number and a Tensor: Tensor's __rmul__
    label = f"`{sym}` ({_LABEL.get(name, name)})" if sym else _LABEL.get(name, name)
    (x, y), dt, weak = promote([a, b], label, to_float=name == "div")
    if name in ("and", "or", "xor") and dt in FLOATS:  # bitwise: NumPy has no float loop either
        raise TypeError(f"{label} is not supported for float operands{where_str()}; "
                        f"compare first (x != 0) or use np.logical_{name}")
    if name == "pow" and isinstance(x, (int, float)):
        x = ops.full(ops.shape(y), x, dt)
    out = bind(REGISTRY[name], x, y)
    return wrap(out, weak and name not in ("lt", "le", "gt", "ge", "eq", "ne"))


def unary(name, a, to_float=False):
    ta = type(a)
    if (ta is _nd.TracedNDArray or ta is _nd.TracedArray) and not a.weak:
        n = a._n
        # a float traced array: `promote` changes nothing (see binary)
        tr = n.trace
        if tr.active and n.type.dtype in FLOATS and name != "not":
            return _nd.TracedArray(bind(REGISTRY[name], n) if tr is EAGER else
                                   _record(REGISTRY[name], tr, (n,), {}), False)
    (x,), dt, weak = promote([a], _LABEL.get(name, name), to_float)
    if name == "not" and dt in FLOATS:
        raise TypeError(f"~ (np.invert) is not supported for float operands{where_str()}; "
                        "use np.logical_not")
    return wrap(bind(REGISTRY[name], x), weak and name in ("neg", "abs"))


_DOT = [None]  # REGISTRY["dot_general"] (found once)


def matmul(a, b):
    # the common case: non-weak traced arrays of active traces (not the eager tape) and one
    # dtype, of 1 or 2 axes each, whose inner extents agree: the one dot_general that
    # `composites.matmul` records for them (its `_gemm`), recorded here at once at the deeper
    # trace (where `bind` records it)
    ta, tb = type(a), type(b)
    if (ta is _nd.TracedNDArray and tb is _nd.TracedNDArray) and not a.weak and not b.weak:
        x, y = a._n, b._n
        tr, ty_ = x.trace, y.trace
        if ty_.level > tr.level:
            tr = ty_
        tx, ty = x.type, y.type
        sx, sy = tx.shape, ty.shape
        if x.trace.active and ty_.active and tr is not EAGER and tx.dtype == ty.dtype and \
                len(sx) <= 2 and len(sy) <= 2 and sx[-1] == sy[0]:
            p = _DOT[0]
            if p is None:
                p = _DOT[0] = REGISTRY["dot_general"]
            return _nd.TracedArray(_record(p, tr, (x, y), {"contract": ((len(sx) - 1,), (0,)),
                                                            "batch": ((), ())}), False)
    (x, y), dt, _ = promote_nobroadcast([a, b])
    return wrap(_shape_errors(composites.matmul, "np.matmul (@)", x, y))


def promote_nobroadcast(xs, to_float=False):
    # non-weak traced arrays of one active trace and one dtype (a float one if `to_float`):
    # their Nodes, as below (no conversion)
    n0 = None
    for x in xs:
        tx = type(x)
        if (tx is not _nd.TracedNDArray and tx is not _nd.TracedArray) or x.weak:
            break
        n = x._n
        if n0 is None:
            n0 = n
            if not n.trace.active or (to_float and n.type.dtype not in FLOATS):
                break
        elif n.trace is not n0.trace or n.type.dtype != n0.type.dtype:
            break
    else:
        if n0 is not None:
            return [x._n for x in xs], n0.type.dtype, False
    trace = deepest(*xs)
    dt = result_dtype(*xs)
    if to_float and dt not in FLOATS:
        dt = "f64"
    out = []
    for x in xs:
        o = as_operand(x, trace)
        out.append(ops.full((), o, dt) if isinstance(o, (bool, int, float)) else
                   ops.convert(o, dt))
    return out, dt, all(is_weak(x) for x in xs)


def _shape_errors(fn, label, *args, **kw):
    try:
        return fn(*args, **kw)
    except ValueError as e:
        if "(at " in str(e):
            raise
        raise ValueError(f"{e} in {label}{where_str()}") from None


