"""How transforms see arguments and hand results back.

Array-like leaves of the arguments (ndarrays, NumPy and Python scalars, TracedArrays of an
enclosing transform, adjit.Tensors) become inputs of a fresh trace: Nodes wrapped as
TracedArrays, or as Tensors when Tensors were passed (PyTorch semantics inside). Results go
back as the caller expects: traced inside an enclosing transform, NumPy values (or Tensors) at
the outermost level, gradients shaped and typed like their arguments.
"""
from __future__ import annotations


import numpy as np

from .. import _ast
from ..ir.core import EAGER, STATE, Node, Trace, atype_of, const_node, new_trace, user_location
from ..ir.types import AType, dtype_name
from . import pytree
from .ndarray import _CONSTS, TracedArray


def _live(x):
    """Is x a value some enclosing recorder must see (a Node of a trace, or on the tape)?"""
    return isinstance(x, Node) and x.trace.active and (x.trace is not EAGER or x.requires_grad)


# --- arguments: leaves, tracing ---------------------------------------------------------------
_TENSOR = []  # the Tensor class once imported (an import statement per call costs ~1 us)


def tensor_cls():
    """The Tensor front's class; transforms rely only on Tensor._n and Tensor._wrap."""
    if _TENSOR:
        return _TENSOR[0]
    try:
        from .tensor import Tensor
    except ModuleNotFoundError as e:  # pragma: no cover - adapter while the front is absent
        if e.name != __name__.rsplit(".", 1)[0] + ".tensor":
            raise
        return None
    _TENSOR.append(Tensor)
    return Tensor


class Leaf:
    """One array-like leaf of the arguments: its kind, value for run_graph, type, weakness."""
    __slots__ = ("kind", "outer", "type", "weak", "orig")

    def __init__(self, kind, outer, typ, weak, orig):
        self.kind, self.outer, self.type, self.weak, self.orig = kind, outer, typ, weak, orig


def leaf_info(x):
    if type(x) is np.ndarray:  # the common leaf first (one shared AType per shape and dtype)
        return Leaf("np", x, atype_of(x), False, x)
    if isinstance(x, TracedArray):
        if x._n.trace.active:
            return Leaf("traced", x._n, x._n.type, x.weak, x)
        x = x._n.val
    T = tensor_cls()
    if T is not None and isinstance(x, T):
        return Leaf("tensor", x._n, x._n.type, False, x)
    if isinstance(x, (np.ndarray, np.generic)):
        a = np.asarray(x)
        return Leaf("np", a, AType(a.shape, dtype_name(a.dtype)), False, x)
    if isinstance(x, bool):
        return Leaf("py", np.asarray(x), AType((), "bool"), True, x)
    if isinstance(x, int):
        return Leaf("py", np.asarray(x, np.int64), AType((), "i64"), True, x)
    if isinstance(x, float):
        return Leaf("py", np.asarray(x, np.float64), AType((), "f64"), True, x)
    return None


def make_input(leaf, tr):
    val = leaf.outer.val if isinstance(leaf.outer, Node) else leaf.outer
    node = Node(val, leaf.type, None, tr, requires_grad=True)
    if leaf.kind == "tensor":
        return node, tensor_cls()._wrap(node)
    return node, TracedArray(node, leaf.weak)


class tracing(new_trace):
    """Context manager: a new trace (core.new_trace) with its table of constant leaves."""
    __slots__ = ()

    # (new_trace's entry and exit written out: no super() frames on every transform call)
    def __enter__(self):
        tr = self.trace = Trace(len(STATE.stack), self.kind)
        STATE.stack.append(tr)
        _CONSTS[id(tr)] = {}
        return tr

    def __exit__(self, *exc):
        tr = self.trace
        _CONSTS.pop(id(tr), None)
        tr.active = False
        STATE.stack.remove(tr)
        return False


class Traced:
    """The record of one run of a user function under a transform."""
    __slots__ = ("trace", "inputs", "leaves", "groups", "out")


def trace_call(f, args, kwargs, select, kind, share=False, keep_nodes=False):
    """Run f with the selected array leaves of `args` as inputs of a new trace.

    `select(argpos, leaf) -> bool`. `groups[argpos] = (treedef, [leaf index or None])`.
    share=True (jit): an array (or Tensor) object selected at several places is one traced
    value in `f` (each place is still an input), so identity (`x is y`) in `f` is identity
    outside; the caller keys its traces by where arguments are the same object.
    keep_nodes=True (jit): the trace lists the Nodes recorded at it (`Trace.nodes`); the
    caller sets that list to None when done with it (it is dropped here if f raises).
    """
    t = Traced()
    t.inputs, t.leaves, t.groups = [], [], {}
    memo = {} if share else None  # id of an array object -> its traced value
    with tracing(kind) as tr:
        new_args = []
        for i, a in enumerate(args):
            leaves, td = pytree.flatten(a)
            idx, nl = [], []
            for lf in leaves:
                try:
                    info = leaf_info(lf)
                except TypeError as exc:
                    raise TypeError(f"{kind}: {arg_name(positional_params(f), i)} of "
                                    f"{fname(f)}: {exc}{_at()}") from None
                if info is not None and select(i, info):
                    node, w = make_input(info, tr)
                    if memo is not None and info.kind != "py" and \
                            not isinstance(info.orig, np.generic):
                        w = memo.setdefault(id(info.orig), w)
                    idx.append(len(t.inputs))
                    t.inputs.append(node)
                    t.leaves.append(info)
                    nl.append(w)
                else:
                    idx.append(None)
                    nl.append(lf)
            t.groups[i] = (td, idx)
            new_args.append(pytree.unflatten(td, nl))
        t.trace = tr
        if keep_nodes:
            tr.nodes = []
            try:
                t.out = f(*new_args, **kwargs)
            except BaseException:
                tr.nodes = None  # (the list and its Nodes would make a cycle with the trace)
                raise
        else:
            t.out = f(*new_args, **kwargs)
    return t


def out_nodes(out, what):
    """(Nodes, kinds, treedef) of a function's output pytree. `what` names the function in
    an error: a string, or a callable making it (made only for the error)."""
    leaves, td = pytree.flatten(out)
    nodes, kinds = [], []
    T = tensor_cls()
    for lf in leaves:
        if isinstance(lf, TracedArray):
            nodes.append(lf._n)
            kinds.append("weak" if lf.weak else "np")
        elif T is not None and isinstance(lf, T):
            nodes.append(lf._n)
            kinds.append("tensor")
        elif isinstance(lf, (bool, int, float, np.ndarray, np.generic)):
            a = np.asarray(lf)
            dtype_name(a.dtype)
            nodes.append(const_node(a))
            kinds.append("py" if isinstance(lf, (bool, int, float)) else "np")
        else:
            if callable(what):
                what = what()
            raise TypeError(f"{what} must return arrays (or tuples/lists/dicts of them), got "
                            f"{type(lf).__name__}{_at()}")
    return nodes, kinds, td


def _at():
    loc = user_location(1)
    return f" (at {loc[0]}:{loc[1]})" if loc else ""


def positional_params(f):
    """Names of f's parameters that can be passed by position, in order ([] if unknown)."""
    try:
        sig = _ast.signature(f)
    except (TypeError, ValueError):
        return []
    return [p.name for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def arg_name(params, where):
    """How an error names an argument: its name and position, or the keyword."""
    if isinstance(where, str):
        return f"argument {where!r}"
    if where < len(params):
        return f"argument {params[where]!r} (position {where})"
    return f"argument at position {where}"


def fname(f):
    """`name (file:line)` of a user's function; through functools.wraps wrappers (grad's,
    api_boundary's) to the function they wrap, so the place is the user's definition."""
    name = getattr(f, "__name__", type(f).__name__)
    for _ in range(32):
        inner = getattr(f, "__wrapped__", None)
        if inner is None or inner is f:
            break
        f = inner
    code = getattr(f, "__code__", None)
    return f"{name} ({code.co_filename}:{code.co_firstlineno})" if code else name


# --- results back to the user -----------------------------------------------------------------
def to_user(x, kind):
    """A function output: traced in an enclosing transform, else NumPy (0-d -> scalar)."""
    if isinstance(x, Node):
        if _live(x):
            return tensor_cls()._wrap(x) if kind == "tensor" else TracedArray(x, kind == "weak")
        x = x.val
    if kind == "tensor":
        return tensor_cls()._wrap(const_node(np.asarray(x)))
    a = np.asarray(x)
    if kind == "weak" and a.ndim == 0:
        return a.item()  # a weak value stands for a Python scalar
    return a[()] if a.ndim == 0 else a


def to_user_like(x, leaf):
    """A gradient / tangent with its argument's type: float -> float, ndarray -> same shape and
    dtype (0-d stays 0-d), Tensor -> Tensor; traced inside an enclosing transform."""
    if isinstance(x, Node):
        if _live(x):
            if leaf.kind == "tensor":
                return tensor_cls()._wrap(x)
            return TracedArray(x, leaf.weak)
        x = x.val
    a = np.asarray(x, leaf.type.np_dtype).reshape(leaf.type.shape)
    if leaf.kind == "tensor":
        return tensor_cls()._wrap(const_node(a))
    if leaf.kind == "py":
        return type(leaf.orig)(a)
    if isinstance(leaf.orig, np.generic):
        return a[()]
    return a


def _regroup(t, argnums, values, single):
    """Per-argnum pytrees of per-leaf values (values indexed like t.inputs)."""
    if single:  # one argument, an array itself: its value (what unflatten of a leaf gives)
        td, idx = t.groups[argnums[0]]
        if td.kind == "leaf":
            return values[idx[0]] if idx[0] is not None else None
    res = []
    for i in argnums:
        td, idx = t.groups[i]
        res.append(pytree.unflatten(td, [values[j] if j is not None else None for j in idx]))
    return res[0] if single else tuple(res)
