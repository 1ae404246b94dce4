"""TracedArray: a recorded value with NumPy semantics, what transforms hand a NumPy function.

A TracedArray wraps a Node (`_n`). Arithmetic, comparisons, methods, indexing and NumPy's own
functions (through `__array_ufunc__` / `__array_function__`, see `np_dispatch`) record
primitives. Type promotion follows NumPy 2: float32 in gives float32 out; Python scalars are
weak; an int array with a Python float gives float64. A `weak` TracedArray stands for a Python
scalar argument of a transform and promotes like one. Conversions and broadcasts are recorded
explicitly (convert_element_type, broadcast_in_dim).
"""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir import composites as C
from ..ir.core import GuardFailed, Node, REGISTRY, bind, user_location
from ..ir.types import AType, DTYPES, FLOATS, dtype_name

# kinds of trace whose values carry a derivative (float() of them would drop it)
DERIVATIVE_KINDS = ("grad", "vjp", "jvp", "jacobian", "custom")


def where_str(loc=None):
    loc = loc or user_location(1)
    return f" (at {loc[0]}:{loc[1]})" if loc else ""


class TracedArray:
    """An array being traced by a transform. Behaves like a NumPy array; see module doc."""
    __slots__ = ("_n", "weak")
    __array_priority__ = 1000

    def __new__(cls, node, weak=False):
        # 0-d values are not subscriptable: NumPy then converts them with float() when they are
        # assigned into an ndarray (out[i] = t), which gives a clear error instead of its own.
        if cls is TracedArray and node.type.shape:
            cls = TracedNDArray
        return object.__new__(cls)

    def __init__(self, node, weak=False):
        self._n = node
        self.weak = weak

    # --- static facts -------------------------------------------------------------------
    @property
    def shape(self):
        return self._n.type.shape

    @property
    def ndim(self):
        return len(self._n.type.shape)

    @property
    def size(self):
        return self._n.type.size

    @property
    def dtype(self):
        return DTYPES[self._n.type.dtype]

    @property
    def T(self):
        return self.transpose()

    def __repr__(self):
        tr = self._n.trace
        return (f"TracedArray({self._n.type}, {tr.kind} level {tr.level}, "
                f"value={self._n.val!r})")

    # --- escaping to NumPy / Python -------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            f"a traced array ({self._n.type}) cannot become a NumPy ndarray{where_str()}: the "
            "transform would lose track of it (its gradient would be dropped and a jitted "
            "replay would use a stale value). Keep it inside NumPy functions: np.stack([...]) "
            "instead of np.array([...]), A @ t or np.dot(A, t) instead of A.dot(t), "
            "np.where / np.concatenate instead of assigning into an ndarray, and "
            "adjit.stop_gradient(t) if you really want a constant.")

    def _concrete(self, what):
        n = self._n
        tr = n.trace
        if tr.active and tr.kind in DERIVATIVE_KINDS and n.type.dtype in FLOATS:
            raise TypeError(
                f"{what} of a traced value that carries the derivative of an enclosing "
                f"{tr.kind} transform{where_str()}: the Python number would drop its gradient. "
                "Keep the computation in arrays (np.where instead of if/else on a value, "
                "np.stack instead of filling an ndarray), or call adjit.stop_gradient(x) "
                "first if no gradient should flow.")
        if n.type.size != 1:
            raise TypeError(f"only size-1 arrays can be converted to Python scalars "
                            f"(shape {n.type.shape}){where_str()}")
        v = np.asarray(n.val).reshape(())
        if tr.active:
            flat = ops.reshape(n, ())
            if v.dtype.kind == "f" and np.isnan(v):
                bind(REGISTRY["guard"], C.isnan(flat), expect=True)
            else:
                bind(REGISTRY["guard"], ops.eq(flat, v.item()), expect=True)
        return v

    def __float__(self):
        return float(self._concrete("float()"))

    def __int__(self):
        return int(self._concrete("int()"))

    def __index__(self):
        if self.dtype.kind not in "iu":
            raise TypeError(f"only integer traced arrays can be used as an index{where_str()}")
        return int(self._concrete("an index"))

    def item(self):
        return self._concrete(".item()").item()

    def tolist(self):
        return self._concrete(".tolist()").tolist()

    def __bool__(self):
        n = self._n
        if n.type.size != 1:
            raise ValueError("The truth value of an array with more than one element is "
                             f"ambiguous. Use a.any() or a.all(){where_str()}")
        c = ops.reshape(n, ())
        if n.type.dtype != "bool":
            c = ops.ne(c, 0)
        val = bool(np.asarray(c.val if type(c) is Node else c))
        if type(c) is Node and c.trace.active:
            bind(REGISTRY["guard"], c, expect=val)
        return val

    def __setitem__(self, key, value):
        raise TypeError(f"traced arrays are immutable{where_str()}: write "
                        "np.where(mask, new, x), or build the result with np.concatenate / "
                        "np.stack, instead of assigning into it")

    def __hash__(self):
        raise TypeError("unhashable type: 'TracedArray'")

    # --- operators ------------------------------------------------------------------------
    def __add__(self, o): return binary("add", self, o, "+")
    def __radd__(self, o): return binary("add", o, self, "+")
    def __sub__(self, o): return binary("sub", self, o, "-")
    def __rsub__(self, o): return binary("sub", o, self, "-")
    def __mul__(self, o): return binary("mul", self, o, "*")
    def __rmul__(self, o): return binary("mul", o, self, "*")
    def __truediv__(self, o): return binary("div", self, o, "/")
    def __rtruediv__(self, o): return binary("div", o, self, "/")
    def __pow__(self, o): return binary("pow", self, o, "**")
    def __rpow__(self, o): return binary("pow", o, self, "**")
    def __matmul__(self, o): return matmul(self, o)
    def __rmatmul__(self, o): return matmul(o, self)
    def __lt__(self, o): return binary("lt", self, o, "<")
    def __le__(self, o): return binary("le", self, o, "<=")
    def __gt__(self, o): return binary("gt", self, o, ">")
    def __ge__(self, o): return binary("ge", self, o, ">=")
    def __eq__(self, o): return binary("eq", self, o, "==")  # noqa: E704
    def __ne__(self, o): return binary("ne", self, o, "!=")
    def __and__(self, o): return binary("and", self, o, "&")
    def __rand__(self, o): return binary("and", o, self, "&")
    def __or__(self, o): return binary("or", self, o, "|")
    def __ror__(self, o): return binary("or", o, self, "|")
    def __neg__(self): return unary("neg", self)
    def __pos__(self): return self
    def __abs__(self): return unary("abs", self)

    def __invert__(self):
        if self.dtype != np.bool_:
            raise NotImplementedError("~ on integer traced arrays is not supported")
        return unary("not", self)

    def __floordiv__(self, o):
        raise NotImplementedError(f"// on traced arrays is not supported{where_str()}")

    __rfloordiv__ = __mod__ = __rmod__ = __floordiv__

    # --- methods ----------------------------------------------------------------------------
    def sum(self, axis=None, dtype=None, keepdims=False):
        return _np().call("sum", self, axis=axis, dtype=dtype, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return _np().call("mean", self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return _np().call("max", self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return _np().call("min", self, axis=axis, keepdims=keepdims)

    def prod(self, axis=None, keepdims=False):
        return _np().call("prod", self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, ddof=0, keepdims=False):
        return _np().call("var", self, axis=axis, ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, ddof=0, keepdims=False):
        return _np().call("std", self, axis=axis, ddof=ddof, keepdims=keepdims)

    def argmax(self, axis=None):
        return _np().call("argmax", self, axis=axis)

    def argmin(self, axis=None):
        return _np().call("argmin", self, axis=axis)

    def cumsum(self, axis=None):
        return _np().call("cumsum", self, axis=axis)

    def clip(self, min=None, max=None):  # noqa: A002
        return _np().call("clip", self, min, max)

    def all(self, axis=None, keepdims=False):
        return _np().call("all", self, axis=axis, keepdims=keepdims)

    def any(self, axis=None, keepdims=False):
        return _np().call("any", self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        return _np().call("reshape", self, shape)

    def transpose(self, *axes):
        if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = axes[0]
        return _np().call("transpose", self, axes or None)

    def swapaxes(self, a, b):
        return _np().call("swapaxes", self, a, b)

    def astype(self, dtype, copy=True):
        return wrap(ops.convert(self._n, dtype_name(dtype)), False)

    def dot(self, o):
        return _np().call("dot", self, o)

    def ravel(self):
        return wrap(ops.reshape(self._n, (self.size,)), self.weak)

    flatten = ravel

    def squeeze(self, axis=None):
        return wrap(C.squeeze(self._n, axis), self.weak)

    def copy(self):
        return self

    # --- NumPy protocols --------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _np().array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return _np().array_function(func, args, kwargs)


class TracedNDArray(TracedArray):
    """A TracedArray of at least one dimension: subscriptable, iterable, has len()."""
    __slots__ = ()

    def __len__(self):
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(self.shape[0]))

    def __getitem__(self, key):
        from .indexing import getitem
        return wrap(getitem(self, key), self.weak)


def _np():
    from . import np_dispatch
    return np_dispatch


# --- wrapping, constants, promotion -------------------------------------------------------------
def wrap(x, weak=False):
    """A TracedArray for a Node of an active trace; other results as NumPy values."""
    if type(x) is Node:
        if x.trace.active:
            return TracedArray(x, weak)
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
    n = Node(a, AType(a.shape, a.dtype), None, trace)
    if table is not None:
        table[id(arr)] = (arr, n)
    return n


def deepest(*xs):
    tr = None
    for x in xs:
        if isinstance(x, TracedArray) and x._n.trace.active:
            t = x._n.trace
            if tr is None or t.level > tr.level:
                tr = t
    return tr


def as_operand(x, trace):
    """A TracedArray, ndarray or Python scalar as an operand for ops (Node or scalar)."""
    if isinstance(x, TracedArray):
        return x._n
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
    return n if type(n) is Node else None


def is_weak(x):
    return isinstance(x, (bool, int, float)) or (isinstance(x, TracedArray) and x.weak)


def _example(x):
    if isinstance(x, TracedArray):
        if x.weak:
            return {"f": 0.0, "i": 0, "b": False}[x.dtype.kind]
        return x.dtype
    if isinstance(x, (bool, int, float)):
        return x
    if type(x) is Node:
        return DTYPES[x.type.dtype]
    return np.asarray(x).dtype


def result_dtype(*xs):
    """NumPy 2's promotion of the operands (Python scalars and weak arrays weakly)."""
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
        shp = np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"operands could not be broadcast together with shapes "
                         f"{' '.join(str(tuple(s)) for s in shapes)} in {label}"
                         f"{where_str()}") from None
    ops_ = [o if isinstance(o, (bool, int, float)) else ops.broadcast_to(o, shp) for o in ops_]
    return ops_, dt, weak


_LABEL = {"add": "np.add", "sub": "np.subtract", "mul": "np.multiply", "div": "np.divide",
          "pow": "np.power", "lt": "np.less", "le": "np.less_equal", "gt": "np.greater",
          "ge": "np.greater_equal", "eq": "np.equal", "ne": "np.not_equal",
          "and": "np.logical_and", "or": "np.logical_or", "maximum": "np.maximum",
          "minimum": "np.minimum"}


def binary(name, a, b, sym=None):
    label = f"`{sym}` ({_LABEL.get(name, name)})" if sym else _LABEL.get(name, name)
    if name in ("and", "or"):
        a = a if _is_bool(a) else _np().call("not_equal", a, 0)
        b = b if _is_bool(b) else _np().call("not_equal", b, 0)
    (x, y), dt, weak = promote([a, b], label, to_float=name == "div")
    if name == "pow" and isinstance(x, (int, float)):
        x = ops.full(ops.shape(y), x, dt)
    out = bind(REGISTRY[name], x, y)
    return wrap(out, weak and name not in ("lt", "le", "gt", "ge", "eq", "ne"))


def _is_bool(x):
    return isinstance(x, bool) or (hasattr(x, "dtype") and np.dtype(x.dtype) == np.bool_)


def unary(name, a, to_float=False):
    (x,), dt, weak = promote([a], _LABEL.get(name, name), to_float)
    return wrap(bind(REGISTRY[name], x), weak and name in ("neg", "abs"))


def matmul(a, b):
    (x, y), dt, _ = promote_nobroadcast([a, b])
    return wrap(_shape_errors(C.matmul, "np.matmul (@)", x, y))


def promote_nobroadcast(xs, to_float=False):
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


__all__ = ["TracedArray", "wrap", "binary", "unary", "promote", "GuardFailed"]
