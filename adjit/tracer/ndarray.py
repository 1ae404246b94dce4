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
from ..ir import composites
from ..ir.core import Node, REGISTRY, STATE, bind, user_location
from ..ir.types import DTYPES, FLOATS, dtype_name

# kinds of trace whose values carry a derivative (float() of them would drop it)
DERIVATIVE_KINDS = ("grad", "vjp", "jvp", "jacobian", "custom")


def where_str(loc=None):
    loc = loc or user_location(1)
    return f" (at {loc[0]}:{loc[1]})" if loc else ""


_new = object.__new__


class TracedArray:
    """An array being traced by a transform. Behaves like a NumPy array; see module doc."""
    __slots__ = ("_n", "weak")
    __array_priority__ = 1000

    def __new__(cls, node, weak=False):
        # 0-d values are not subscriptable: NumPy then converts them with float() when they are
        # assigned into an ndarray (out[i] = t), which gives a clear error instead of its own.
        if cls is TracedArray and node.type.shape:
            cls = TracedNDArray
        # the fields are set here (no __init__: one Python frame per traced value, not two)
        self = _new(cls)
        self._n = node
        self.weak = weak
        return self

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
        sci = _scipy_caller()
        if sci is not None:
            name, loc, alt = sci
            raise TypeError(
                f"{name} cannot take a traced array ({self._n.type}){where_str(loc)}: SciPy "
                "converts its arguments with np.asarray, which would drop the derivative and "
                "freeze the value. " + (f"Use {alt} instead" if alt else
                                         "adjit.scipy has no counterpart of it yet") +
                " (adjit.scipy.special, adjit.scipy.stats and adjit.scipy.linalg take traced arrays; "
                "scipy.special's ufuncs such as erf or gammaln work unchanged).")
        v = self._concrete_ints()
        if v is not None:
            return v if dtype is None else v.astype(dtype)
        raise TypeError(
            f"a traced array ({self._n.type}) cannot become a NumPy ndarray{where_str()}: the "
            "transform would lose track of it (its gradient would be dropped and a jitted "
            "replay would use a stale value). To build arrays from traced values, write "
            "`import adjit.numpy as np` (its np.array, np.asarray, np.full accept them). "
            "Keep it inside NumPy functions: np.stack([...]) "
            "instead of np.array([...]), A @ t or np.dot(A, t) instead of A.dot(t), "
            "np.where / np.concatenate instead of assigning into an ndarray, and "
            "adjit.stop_gradient(t) if you really want a constant.")

    def _concrete_ints(self):
        """The value of an integer or bool traced array, for NumPy code that converts it
        (`plain_ndarray[traced_indices]`, as HIPS autograd's fluidsim indexes its initial
        smoke with np.floor(...).astype(int) of traced coordinates): such values carry no
        derivative, so nothing is dropped; a guard records the whole value, so a jitted replay
        whose indices differ re-traces instead of using stale ones (as int() of a traced
        scalar). None where no concrete value exists (vmap's batched values)."""
        n = self._n
        if n.type.dtype not in ("i32", "i64", "bool") or not isinstance(n.val, np.ndarray) or \
                n.val.shape != tuple(n.type.shape):
            return None
        v = np.array(n.val)
        if n.trace.active and v.size:
            bad = ops.reduce_sum(ops.convert(ops.ne(n, v), "i64"), tuple(range(v.ndim)))
            bind(REGISTRY["guard"], ops.eq(bad, 0), expect=True)
        return v

    def _concrete(self, what):
        n = self._n
        tr = n.trace
        carrier = carries_derivative(n)
        if carrier is not None:
            raise TypeError(
                f"{what} of a traced value that carries the derivative of an enclosing "
                f"{carrier.kind} transform{where_str()}: the Python number would drop its "
                "gradient. "
                "Keep the computation in arrays (np.where instead of if/else on a value, "
                "np.stack instead of filling an ndarray), or call adjit.stop_gradient(x) "
                "first if no gradient should flow.")
        if n.type.size != 1:
            raise TypeError(f"only size-1 arrays can be converted to Python scalars "
                            f"(shape {n.type.shape}){where_str()}")
        v = np.asarray(n.val).reshape(())
        if tr.active:
            bind(REGISTRY["guard"], composites.same_value(ops.reshape(n, ()), v), expect=True)
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
        val = bool(np.asarray(c.val if isinstance(c, Node) else c))
        if isinstance(c, Node) and c.trace.active:
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
    def __xor__(self, o): return binary("xor", self, o, "^")
    def __rxor__(self, o): return binary("xor", o, self, "^")
    def __neg__(self): return unary("neg", self)
    def __pos__(self): return self
    def __abs__(self): return unary("abs", self)

    def __invert__(self):
        return unary("not", self)

    # //, % and divmod: NumPy's floor_divide, remainder and divmod ufuncs (their dtypes)
    def __floordiv__(self, o): return np.floor_divide(self, o)
    def __rfloordiv__(self, o): return np.floor_divide(o, self)
    def __mod__(self, o): return np.remainder(self, o)
    def __rmod__(self, o): return np.remainder(o, self)
    def __divmod__(self, o): return np.divmod(self, o)
    def __rdivmod__(self, o): return np.divmod(o, self)

    # --- methods ----------------------------------------------------------------------------
    # ndarray's methods take NumPy's function arguments in the same order (after `a`), so they
    # go through the same dispatch: every keyword honoured or refused
    def _method(name):
        def m(self, *args, **kwargs):
            return (_NP[0] if _NP else _np()).call(name, self, *args, **kwargs)
        m.__name__ = name
        return m

    sum = _method("sum")
    mean = _method("mean")
    max = _method("max")
    min = _method("min")
    prod = _method("prod")
    var = _method("var")
    std = _method("std")
    argmax = _method("argmax")
    argmin = _method("argmin")
    cumsum = _method("cumsum")
    clip = _method("clip")
    all = _method("all")
    any = _method("any")
    dot = _method("dot")
    del _method

    def reshape(self, *shape, order="C", copy=None):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        return _np().call("reshape", self, shape, order=order, copy=copy)

    def transpose(self, *axes):
        if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = axes[0]
        return _np().call("transpose", self, axes or None)

    def swapaxes(self, a, b):
        return _np().call("swapaxes", self, a, b)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        if casting != "unsafe" and not np.can_cast(self.dtype, np.dtype(dtype), casting):
            raise TypeError(f"Cannot cast array data from {self.dtype!r} to "
                            f"{np.dtype(dtype)!r} according to the rule {casting!r}"
                            f"{where_str()}")
        # order=, subok= and copy= choose the layout, class and sharing of NumPy's result; a
        # traced value has the same values either way
        return wrap(ops.convert(self._n, dtype_name(dtype)), False)

    def ravel(self, order="C"):
        return _np().call("ravel", self, order)

    flatten = ravel

    def squeeze(self, axis=None):
        try:
            return wrap(composites.squeeze(self._n, axis), self.weak)
        except (ValueError, IndexError) as e:
            raise type(e)(f"{e} in np.squeeze{where_str()}") from None

    def copy(self, order="C"):
        return self

    # --- NumPy protocols --------------------------------------------------------------------
    # entry points: the user's location is found here once (core._State.entry_loc); an entry
    # nested in another (NumPy code between them) finds its own
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        st = STATE
        prev = st.entry_loc
        st.entry_loc = user_location(2)
        try:
            return (_NP[0] if _NP else _np()).array_ufunc(ufunc, method, inputs, kwargs)
        finally:
            st.entry_loc = prev

    def __array_function__(self, func, types, args, kwargs):
        st = STATE
        prev = st.entry_loc
        # np.piecewise runs the user's functions: what they record is located by its own walk
        st.entry_loc = user_location(2) if func is not np.piecewise else None
        try:
            d = _NP[0] if _NP else _np()
            name = d._RFUNCS.get(func)  # np.sum & co: their short path first (np_dispatch)
            if name is not None:
                r = d._reduce_fast(name, args, kwargs)
                if r is not None:
                    return r
            return d.array_function(func, args, kwargs)
        finally:
            st.entry_loc = prev


def _scipy_caller():
    """(what SciPy function the user called, the user's line, adjit's counterpart) when a SciPy
    function is converting a traced array, else None. Only on the error path: walks the stack."""
    import sys
    f = sys._getframe(2)
    outer = None
    while f is not None:
        mod = f.f_globals.get("__name__", "") or ""
        if mod == "scipy" or mod.startswith("scipy."):
            outer = f
        elif not (mod == "numpy" or mod.startswith("numpy.") or mod.startswith("adjit.")
                  or mod.startswith("functools")):
            break
        f = f.f_back
    if outer is None:
        return None
    mod = outer.f_globals.get("__name__", "")
    fname = outer.f_code.co_name
    for v in list(outer.f_locals.values()):  # a decorator's wrapper: the function it wraps
        vm = getattr(v, "__module__", None) or ""
        if callable(v) and vm.startswith("scipy.") and hasattr(v, "__name__") and \
                fname in ("wrapper", "wrapped", "inner", "decorated"):
            mod, fname = vm, v.__name__
            break
    obj = outer.f_locals.get("self")
    dist = getattr(obj, "name", None) if mod.startswith("scipy.stats") else None
    if isinstance(dist, str):
        name = f"scipy.stats.{dist}.{fname}"
        alt_mod, alt_attr = "stats", (dist, fname)
    else:
        pkg = ".".join(mod.split(".")[:2])
        name = f"{pkg}.{fname}"
        alt_mod, alt_attr = pkg.split(".")[1] if "." in pkg else "", (fname,)
    alt = f"adjit.scipy.{alt_mod}.{'.'.join(alt_attr)}"
    try:
        import importlib
        target = importlib.import_module(f"adjit.scipy.{alt_mod}")
        for a in alt_attr:
            target = getattr(target, a)
    except (ImportError, AttributeError):
        alt = None
    loc = (f.f_code.co_filename, f.f_lineno) if f is not None else None
    return name, loc, alt


def carries_derivative(n):
    """The trace of a transform whose derivative flows into Node n (through float values not
    cut by stop_gradient), or None: float() of such a value would drop a gradient."""
    seen, stack = set(), [n]
    while stack:
        m = stack.pop()
        if id(m) in seen or not m.trace.active or m.type.dtype not in FLOATS:
            continue
        seen.add(id(m))
        if m.rec is None:
            if m.requires_grad and m.trace.kind in DERIVATIVE_KINDS:
                return m.trace
            continue
        if m.rec.prim.name != "stop_gradient":
            stack.extend(i for i in m.rec.inputs if isinstance(i, Node))
    return None


class TracedNDArray(TracedArray):
    """A TracedArray of at least one dimension: subscriptable, iterable, has len()."""
    __slots__ = ()

    def __len__(self):
        return self.shape[0]

    def __iter__(self):
        return (self[i] for i in range(self.shape[0]))

    def __getitem__(self, key):
        # an entry point like __array_function__ (its equations, one to a dozen, take the
        # user's location found once here); inside another entry, that entry's location stays
        st = STATE
        if st.entry_loc is not None:
            return wrap((_GETITEM[0] if _GETITEM else _getitem())(self, key), self.weak)
        st.entry_loc = user_location(2)
        try:
            return wrap((_GETITEM[0] if _GETITEM else _getitem())(self, key), self.weak)
        finally:
            st.entry_loc = None


_GETITEM = []  # np_indexing.getitem once imported (np_indexing imports this module)


def _getitem():
    from .np_indexing import getitem
    _GETITEM.append(getitem)
    return getitem


_NP = []  # the np_dispatch module once imported (an import statement per call costs ~1 us)


def _np():
    if _NP:
        return _NP[0]
    from . import np_dispatch
    _NP.append(np_dispatch)
    return np_dispatch


from .promote import (_CONSTS, as_operand, binary, const_leaf, deepest, is_weak,  # noqa: E402,F401
                      matmul, promote, promote_nobroadcast, result_dtype, unary, wrap)
