"""PyTorch operations on adjit.Tensor: promotion, broadcasting, grad_fn names.

Each operation computes through `adjit.ir.ops` (so it records primitives when an input requires
grad) and tags its final node with the grad_fn PyTorch would show, listing the operands that
PyTorch lists in `next_functions` (None for a Python number).
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from .._fp import FP_QUIET, fp_reset as _fp_reset, fp_set as _fp_set
from ..ir import ops
from ..ir.core import EAGER, REGISTRY, STATE, Node, atype_of, bind, record_eager
from .grad_fn import tag
from .ndarray import TracedArray
from .tape import TapeNode
from .tensor import Tensor, shape_error, to_np_dtype
from . import views

_CAT = {"b": 0, "i": 1, "u": 1, "f": 2}
_DEFAULT = {0: np.dtype(np.bool_), 1: np.dtype(np.int64), 2: np.dtype(np.float32)}


def _n(x):
    return x._n if isinstance(x, Tensor) else x


def as_tensor_like(x):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return Tensor._from_array(x)
    if isinstance(x, TracedArray) and not traced_number(x):
        return Tensor._wrap(x._n)  # a traced ndarray (jit's ndarray argument): as an ndarray
    return x


def traced_number(x):
    """Is x a traced Python number (a transform's Python scalar argument or a float jit made a
    scalar input: a weak 0-d TracedArray)? Tensor operations take it as the number it stands
    for (PyTorch's promotion of a Python scalar; no next_functions entry)."""
    return type(x) is TracedArray and x.weak and not x._n.type.shape


def promote_types(a, b):
    """PyTorch's promote_types: a higher category wins whatever its size (f32 with i64 is
    f32, unlike NumPy's f64); within a category the wider dtype wins."""
    ca, cb = _CAT[a.kind], _CAT[b.kind]
    if ca != cb:
        return a if ca > cb else b
    return a if a.itemsize >= b.itemsize else b


def result_dtype(*xs):
    """PyTorch's promotion: dimensioned tensors, then 0-d tensors, then Python numbers; a later
    group only counts if it is of a higher category (bool < int < float)."""
    dimmed = zerod = None
    scalar_cat = -1
    for x in xs:
        if isinstance(x, Tensor):
            d = x._n.val.dtype
            if x._n.val.ndim:
                dimmed = d if dimmed is None or dimmed == d else promote_types(dimmed, d)
            else:
                zerod = d if zerod is None or zerod == d else promote_types(zerod, d)
        else:
            c = _CAT[x.dtype.kind] if isinstance(x, TracedArray) else 0 if isinstance(
                x, (bool, np.bool_)) else 2 if isinstance(x, (float, np.floating)) else 1
            scalar_cat = c if c > scalar_cat else scalar_cat
    res = dimmed
    if zerod is not None and (res is None or _CAT[zerod.kind] > _CAT[res.kind]):
        res = zerod
    if scalar_cat >= 0 and (res is None or scalar_cat > _CAT[res.kind]):
        res = _DEFAULT[scalar_cat]
    return res


_BSHAPES: dict = {}  # (shape, shape) -> broadcast shape, for the shapes seen


def broadcast_shapes(a, b):
    a, b = tuple(a), tuple(b)
    if a == b:
        return a
    shp = _BSHAPES.get((a, b))
    if shp is None:
        shp = _broadcast_shapes(a, b)
        if len(_BSHAPES) >= 1024:
            _BSHAPES.clear()
        _BSHAPES[(a, b)] = shp
    return shp


_BCAST = REGISTRY["broadcast_in_dim"]


def _bcast(n, shp):
    """ops.broadcast_to of a Node to a shape broadcast_shapes() returned (so no checks)."""
    xs = n.type.shape
    if xs == shp:
        return n
    return bind(_BCAST, n, shape=shp, dims=tuple(range(len(shp) - len(xs), len(shp))))


def _broadcast_shapes(a, b):
    n = builtins.max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    for i in reversed(range(n)):  # PyTorch reports the last mismatching dimension
        x, y = pa[i], pb[i]
        if x != y and x != 1 and y != 1:
            raise shape_error(f"The size of tensor a ({x}) must match the size of tensor b "
                              f"({y}) at non-singleton dimension {i}")
    return tuple(y if x == 1 else x for x, y in zip(pa, pb))


def _prep(a, b, dt):
    """Convert and broadcast two operands (Tensors or numbers) to a common dtype and shape."""
    def conv(x):
        if isinstance(x, Tensor):
            return ops.convert(x._n, dt)
        if isinstance(x, np.ndarray):
            return x.astype(dt)
        if isinstance(x, TracedArray):  # a traced Python number: a 0-d operand
            return ops.convert(x._n, dt)
        return x
    a2, b2 = conv(a), conv(b)
    sa = ops.shape(a2) if isinstance(a, (Tensor, TracedArray)) else None
    sb = ops.shape(b2) if isinstance(b, (Tensor, TracedArray)) else None
    if sa is not None and sb is not None and sa != sb:
        shp = broadcast_shapes(sa, sb)
        a2, b2 = ops.broadcast_to(a2, shp), ops.broadcast_to(b2, shp)
    return a2, b2


def _fn_inputs(*xs):
    return [x._n if isinstance(x, Tensor) else None for x in xs]


_FLOAT_NAMES = ("f32", "f64")
_PRIM = REGISTRY


# The 0-d array of the last Python number a float tensor was combined with under no_grad
# (`LR * p.grad` in a training loop), keyed by the number object's identity (the entry holds
# it, so the id cannot be reused) and the dtype: (number, dtype, read-only array)
_LAST_LIT = (None, None, None)


def _literal(b, dt):
    """np.asarray(b, dt) for a Python number, read-only (the cached array is shared)."""
    global _LAST_LIT
    c = _LAST_LIT
    if c[0] is b and c[1] is dt:
        return c[2]
    a = np.asarray(b, dt)
    a.flags.writeable = False
    _LAST_LIT = (b, dt, a)
    return a


def _plain(prim, x, y):
    """An operation nothing records (no_grad, or no operand requires grad): NumPy only."""
    p = _PRIM[prim]
    if p.fp_warns:
        token = _fp_set(FP_QUIET)  # nan/inf silently, as PyTorch (see adjit/_fp.py)
        try:
            out = p.impl(x, y)
        finally:
            _fp_reset(token)
    else:
        out = p.impl(x, y)
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    return Tensor._wrap(TapeNode(out, atype_of(out), None, EAGER))


def binary(prim, a, b, name, true_div=False, listed=None):
    # fast paths: no promotion to record -- two tensors of one dtype, or a float tensor with a
    # Python number (which takes the tensor's dtype)
    ta, tb = type(a), type(b)
    if ta is Tensor:
        na = a._n
        if tb is Tensor:
            nb = b._n
            x, y = na.type, nb.type
            if (x is y or x.dtype == y.dtype) and (not true_div or x.dtype in _FLOAT_NAMES):
                if x is not y and x.shape != y.shape:
                    shp = broadcast_shapes(x.shape, y.shape)
                    out = bind(_PRIM[prim], _bcast(na, shp), _bcast(nb, shp))
                elif na.trace is EAGER and nb.trace is EAGER:
                    if not ((na.requires_grad or nb.requires_grad) and STATE.grad_enabled):
                        return _plain(prim, na.val, nb.val)
                    out = record_eager(_PRIM[prim], (na, nb), {})
                else:
                    out = bind(_PRIM[prim], na, nb)
                return Tensor._wrap(tag(out, name, (na, nb) if listed is None else listed))
        elif (tb is float or tb is int) and na.type.dtype in _FLOAT_NAMES:
            if na.trace is EAGER:
                if not (na.requires_grad and STATE.grad_enabled):
                    return _plain(prim, na.val, _literal(b, na.val.dtype))
                out = record_eager(_PRIM[prim], (na, b), {})
            else:
                out = bind(_PRIM[prim], na, b)
            return Tensor._wrap(tag(out, name, (na, None) if listed is None else listed))
    elif tb is Tensor and (ta is float or ta is int) and b._n.type.dtype in _FLOAT_NAMES:
        nb = b._n
        if nb.trace is EAGER:
            if not (nb.requires_grad and STATE.grad_enabled):
                return _plain(prim, _literal(a, nb.val.dtype), nb.val)
            out = record_eager(_PRIM[prim], (a, nb), {})
        else:
            out = bind(_PRIM[prim], a, nb)
        return Tensor._wrap(tag(out, name, (None, nb) if listed is None else listed))
    a, b = as_tensor_like(a), as_tensor_like(b)
    dt = result_dtype(a, b)
    if true_div and dt.kind != "f":
        dt = np.dtype(np.float32)
    x, y = _prep(a, b, dt)
    if not isinstance(x, Node) and not isinstance(y, Node):
        x = ops.convert(np.asarray(x, dt), dt)
    out = getattr(ops, prim)(x, y)
    inputs = _fn_inputs(a, b) if listed is None else listed
    return Tensor._wrap(tag(out, name, inputs))


def make_binop(prim, name, true_div=False):
    """`Tensor.__mul__` & co: `binary` (with its fast paths for same-dtype tensors and float
    tensors with Python numbers) under the dunder's name."""
    def op(a, b):
        return binary(prim, a, b, name, true_div)
    op.__name__ = op.__qualname__ = f"__{prim}__"
    return op


def make_rbinop(prim, name):
    """`Tensor.__rmul__` & co (`2 * x`): PyTorch lists the tensor first."""
    P = _PRIM[prim]

    def op(s, o):
        to = type(o)
        if type(s) is Tensor and (to is float or to is int):
            ns = s._n
            if ns.type.dtype in _FLOAT_NAMES:
                if ns.trace is EAGER:
                    if not (ns.requires_grad and STATE.grad_enabled):
                        return _plain(prim, _literal(o, ns.val.dtype), ns.val)
                    return Tensor._wrap(tag(record_eager(P, (o, ns), {}), name, (ns, None)))
                return Tensor._wrap(tag(bind(P, o, ns), name, (ns, None)))
        return binary(prim, o, s, name, listed=[s._n, None] if not isinstance(o, Tensor)
                      else None)
    op.__name__ = op.__qualname__ = f"__r{prim}__"
    return op


def unary(fn, x, name):
    out = fn(_n(x))
    return Tensor._wrap(tag(out, name, [x._n]))


def _float(x):
    """Math functions of an integer tensor compute in the default float dtype."""
    if x._n.val.dtype.kind != "f":
        return Tensor._wrap(ops.convert(x._n, "f32"))
    return x


def wrap_dim(dim, ndim, scalar=True):
    """`dim` of a tensor with `ndim` dimensions as an index in [0, ndim), checked and worded
    as PyTorch's maybe_wrap_dim. With `scalar` a 0-d tensor accepts 0 and -1 (returned as 0:
    the caller treats the scalar as one element), as PyTorch's reductions, softmax, cumsum,
    transpose... do; without it (size, unbind) a 0-d tensor has no dimension to name."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"dim must be an int, not {type(dim).__name__}")
    n = builtins.max(ndim, 1) if scalar else ndim
    if n == 0:
        raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return int(dim) % n


def _axes(dim, ndim):
    if dim is None or (isinstance(dim, (tuple, list)) and not dim):
        return tuple(range(ndim))  # PyTorch reduces every dimension for dim=() too
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    out = tuple(wrap_dim(d, ndim) for d in dims)
    for k, d in enumerate(out):
        if d in out[:k]:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
    return out if ndim else ()


def _keep(out, shp, axes, keepdim):
    if keepdim:
        return ops.reshape(out, tuple(1 if i in axes else d for i, d in enumerate(shp)))
    return out


def tsum(x, dim=None, keepdim=False, dtype=None):
    n = x._n
    if n.val.dtype.kind in "bi" and dtype is None:
        n = ops.convert(n, "i64")
    elif dtype is not None:
        n = ops.convert(n, to_np_dtype(dtype))
    axes = _axes(dim, n.type.ndim)
    out = _keep(ops.reduce_sum(n, axes), n.type.shape, axes, keepdim)
    return Tensor._wrap(tag(out, "SumBackward0" if dim is None else "SumBackward1", [x._n]))


def mean(x, dim=None, keepdim=False, dtype=None):
    if x._n.val.dtype.kind != "f":
        raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either a "
                           f"floating point or complex dtype. Got: {_tname(x)}")
    n = x._n
    shp = n.type.shape
    if dim is None and shp:
        axes = tuple(range(len(shp)))
        if n.trace is EAGER and n.requires_grad and STATE.grad_enabled:
            out = record_eager(_DIV, (record_eager(_REDUCE_SUM, (n,), {"axes": axes}),
                                      float(math.prod(shp))), {})
        else:
            out = bind(_DIV, bind(_REDUCE_SUM, n, axes=axes), float(math.prod(shp)))
        return Tensor._wrap(tag(out, "MeanBackward0", (n,)))
    axes = _axes(dim, n.type.ndim)
    cnt = math.prod([n.type.shape[a] for a in axes])
    out = ops.div(ops.reduce_sum(n, axes), float(cnt))
    out = _keep(out, n.type.shape, axes, keepdim)
    return Tensor._wrap(tag(out, "MeanBackward0" if dim is None else "MeanBackward1", [x._n]))


_TNAMES = {"f32": "Float", "f64": "Double", "i32": "Int", "i64": "Long", "bool": "Bool"}


def _tname(x):
    """PyTorch's scalar type name of x's dtype (Float, Double, Int, Long, Bool)."""
    return _TNAMES[x._n.type.dtype]


def extremum(x, dim=None, keepdim=False, is_max=True):
    red, arg = ("reduce_max", "argmax") if is_max else ("reduce_min", "argmin")
    n = x._n
    name = "MaxBackward" if is_max else "MinBackward"
    if dim is None:
        if n.val.size == 0:
            raise RuntimeError(f"{'max' if is_max else 'min'}(): Expected reduction dim to be "
                               "specified for input.numel() == 0. Specify the reduction dim "
                               "with the 'dim' argument.")
        out = getattr(ops, red)(n, axes=tuple(range(n.type.ndim))) if n.type.ndim else n
        return Tensor._wrap(tag(out, name + "1", [n]))
    axis = wrap_dim(dim, n.type.ndim)
    if n.type.ndim == 0:  # the value itself, as a node of its own, at index 0
        return (MaxResult if is_max else MinResult)(Tensor._wrap(tag(n, name + "0", [n])),
                                                    Tensor._from_array(np.array(0)))
    # PyTorch sends the gradient to the index it returns: gather at the argmax
    idx = getattr(ops, arg)(n.val if not isinstance(n, Node) else n, axis=axis)
    idx_val = idx.val if isinstance(idx, Node) else idx
    moved = ops.transpose(n, tuple([axis] + [i for i in range(n.type.ndim) if i != axis]))
    flat_n = int(np.prod(n.type.shape)) // n.type.shape[axis]
    rest = tuple(d for i, d in enumerate(n.type.shape) if i != axis)
    m2 = ops.reshape(moved, (n.type.shape[axis] * flat_n,))
    lin = np.asarray(idx_val, np.int64).reshape(-1) * flat_n + np.arange(flat_n)
    vals = ops.reshape(ops.gather(m2, lin, axis=0), rest)
    vals = _keep(vals, n.type.shape, (axis,), keepdim)
    ind = np.asarray(idx_val, np.int64)
    if keepdim:
        ind = np.expand_dims(ind, axis)
    res = MaxResult if is_max else MinResult
    return res(Tensor._wrap(tag(vals, name + "0", [n])), Tensor._from_array(ind))


def amax(x, dim=(), keepdim=False, is_max=True, pos=None):
    """torch.amax / amin (and the methods): the largest (smallest) value over `dim` (an int or
    a tuple; () and None reduce every dim), the gradient shared evenly among ties (the
    reduce_max / reduce_min primitives; AmaxBackward0 / AminBackward0). `pos`: the positions
    of dim and keepdim in the user's call (None: given by keyword), for PyTorch's errors."""
    fn = "amax" if is_max else "amin"
    at = [f" (position {p})" if p else "" for p in (pos or (None, None))]
    if isinstance(dim, bool) or dim is not None and not isinstance(
            dim, (int, np.integer, tuple, list)):
        raise TypeError(f"{fn}(): argument 'dim'{at[0]} must be tuple of ints, not "
                        f"{type(dim).__name__}")
    for i, d in enumerate(dim if isinstance(dim, (tuple, list)) else ()):
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise TypeError(f"{fn}(): argument 'dim'{at[0]} must be tuple of ints, but found "
                            f"element of type {type(d).__name__} at pos {i}")
    if not isinstance(keepdim, (bool, np.bool_)):
        raise TypeError(f"{fn}(): argument 'keepdim'{at[1]} must be bool, not "
                        f"{type(keepdim).__name__}")
    n = x._n
    shp = n.type.shape
    axes = _axes(dim, n.type.ndim)
    if n.val.size == 0:
        if dim is None or isinstance(dim, (tuple, list)) and not dim:
            raise RuntimeError(f"{fn}(): Expected reduction dim to be specified for "
                               "input.numel() == 0. Specify the reduction dim with the 'dim' "
                               "argument.")
        for a in axes:
            if shp[a] == 0:
                raise IndexError(f"{fn}(): Expected reduction dim {a} to have non-zero size.")
    if not axes:  # a 0-d tensor: the value itself, as a node of its own
        out = fresh(n, n)
    else:
        src = ops.convert(n, "i32") if n.type.dtype == "bool" else n
        out = (ops.reduce_max if is_max else ops.reduce_min)(src, axes=axes)
        if n.type.dtype == "bool":
            out = ops.convert(out, "bool")
        out = _keep(out, shp, axes, keepdim)
    return Tensor._wrap(tag(out, "AmaxBackward0" if is_max else "AminBackward0", [n]))


def amax_call(is_max, function):
    """Tensor.amax / amin (function=False) or torch.amax / amin: (input,) dim=(), keepdim=False
    by position or keyword."""
    first = 2 if function else 1

    def call(x, *args, **kwargs):
        fn = "amax" if is_max else "amin"
        if not isinstance(x, Tensor):
            raise TypeError(f"{fn}(): argument 'input' (position 1) must be Tensor, not "
                            f"{type(x).__name__}")
        names = ("dim", "keepdim")
        if len(args) > 2 or set(kwargs) - set(names) or any(
                n in kwargs for n in names[:len(args)]):
            raise TypeError(f"{fn}() received an invalid combination of arguments")
        vals = dict(zip(names, args), **kwargs)
        pos = tuple(first + i if i < len(args) else None for i in range(2))
        return amax(x, vals.get("dim", ()), vals.get("keepdim", False), is_max, pos)
    call.__name__ = "amax" if is_max else "amin"
    import inspect
    P = inspect.Parameter
    call.__signature__ = inspect.Signature([
        P("input" if function else "self", P.POSITIONAL_OR_KEYWORD),
        P("dim", P.POSITIONAL_OR_KEYWORD, default=()),
        P("keepdim", P.POSITIONAL_OR_KEYWORD, default=False)])
    return call


_RESHAPE = REGISTRY["reshape"]
_DIV = REGISTRY["div"]
_REDUCE_SUM = REGISTRY["reduce_sum"]


def fresh(out, n):
    """`out` as a node of its own. ops.reshape & co return their input for an identity, but
    PyTorch records a new grad_fn (and a view is a new tensor sharing the storage)."""
    if out is not n or not isinstance(n, Node):
        return out
    if n.requires_grad and STATE.grad_enabled:
        return bind(_RESHAPE, n, shape=n.type.shape)
    return TapeNode(n.val, n.type, None, EAGER, version=n.version)


def view(out, x, name, base=None):
    """Wrap the result of a view op (reshape, slice, transpose...): a new tensor tagged `name`
    that shares the version counter when it shares the storage, as PyTorch's views do.
    `base` is the Tensor viewed (its own base if it is a view), shown by make_dot."""
    out = fresh(out, x)
    if type(out) is TapeNode and type(x) is TapeNode and out.version is not x.version and \
            np.may_share_memory(out.val, x.val):
        out.version, out.recorded_version = x.version, x.version[0]
    t = Tensor._wrap(tag(out, name, [x]))
    if base is not None:
        views.set_base(t, base)
    return t


class _ReturnType(tuple):
    """`torch.return_types.max(values=..., indices=...)`: a named pair printed as PyTorch."""
    __slots__ = ()
    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])

    def __new__(cls, values, indices):
        return tuple.__new__(cls, (values, indices))

    def __repr__(self):
        return (f"adjit.return_types.{type(self).__name__}(\nvalues={self[0]!r},\n"
                f"indices={self[1]!r})")


MaxResult = type("max", (_ReturnType,), {"__slots__": ()})
MinResult = type("min", (_ReturnType,), {"__slots__": ()})


def floordiv(a, b, reverse=False):
    """`a // b` (no gradient in PyTorch: floor_divide is not differentiable)."""
    a, b = as_tensor_like(a), as_tensor_like(b)
    if reverse:
        a, b = b, a
    dt = result_dtype(a, b)
    x = a._n.val if isinstance(a, Tensor) else a
    y = b._n.val if isinstance(b, Tensor) else b
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.floor_divide(x, y)
    return Tensor._from_array(np.asarray(out).astype(dt, copy=False))


# ---------------------------------------------------------------------------- in-place support
def refuse_overlap(self, v):
    """PyTorch refuses to write a view whose elements share memory (`b.expand(3, 4).sin_()`).
    (A read-only array without a user view base, as a `.grad` adjit broadcast, is copied.)"""
    if getattr(self, "_view_base", None) is not None and any(
            st == 0 and d > 1 for st, d in zip(v.strides, v.shape)):
        raise RuntimeError("unsupported operation: more than one element of the written-to "
                           "tensor refers to a single memory location. Please clone() the "
                           "tensor before performing the operation.")


def write(n, value):
    """Store `value` into n's storage (shared with views, detach() and numpy())."""
    if not n.val.flags.writeable:
        n.val = n.val.copy()
    np.copyto(n.val, value, casting="unsafe")
    if type(n) is TapeNode:  # (a value traced by a transform has no counter)
        n.version[0] += 1
