"""PyTorch-level composite operations built from primitives (relu, norm, softmax, ...)."""
from __future__ import annotations

import warnings

import numpy as np

from ..ir import ops
from ..ir import composites as IC
from ..ir.core import EAGER, REGISTRY, STATE, bind, record_eager
from ..ir.types import FLOATS
from .grad_fn import tag
from .grad_mode import no_grad
from .tensor import Tensor
from . import tensor_ops as tracer_tensor_ops


_ZERO = {"f32": 0.0, "f64": 0.0, "bool": False}
_SELECT, _LE = REGISTRY["select"], REGISTRY["le"]


def relu(x):
    """`x.relu()` / `adjit.relu(x)`: select(x <= 0, 0, x), as PyTorch's threshold: NaN stays NaN
    (NaN <= 0 is false) with derivative 1 there; relu'(0) = 0 (a literal zero: no array to
    make). It calls bind itself, see tensor_ops.make_binop."""
    if not isinstance(x, Tensor):
        from .factory import tensor
        x = tensor(x)
    n = x._n
    z = _ZERO.get(n.type.dtype, 0)
    if n.trace is EAGER and n.requires_grad and STATE.grad_enabled:
        out = record_eager(_SELECT, (record_eager(_LE, (n, 0), {}), z, n), {})
    else:
        out = bind(_SELECT, bind(_LE, n, 0), z, n)
    return Tensor._wrap(tag(out, "ReluBackward0", (n,)))


def _wrap(out, name, x):
    return Tensor._wrap(tag(out, name, [x._n]))


def _root_or_zero(s, e):
    """s ** e for a sum of powers s >= 0, with PyTorch's gradient 0 (not NaN) where s == 0: a
    zero vector's norm has subgradient 0, so one zero row does not poison a batch."""
    zero = ops.eq(s, 0.0)
    safe = ops.select(zero, ops.full(ops.shape(s), 1.0, ops.dtype(s)), s)
    root = ops.sqrt(safe) if e == 0.5 else ops.pow(safe, e)
    return ops.select(zero, ops.zeros(ops.shape(s), ops.dtype(s)), root)


_INT_NAMES = {"int64": "Long", "int32": "Int", "bool": "Bool"}


def norm(x, p="fro", dim=None, keepdim=False):
    if x._n.val.dtype.kind != "f":
        raise RuntimeError("linalg.vector_norm: Expected a floating point or complex tensor as "
                           f"input. Got {_INT_NAMES[x._n.val.dtype.name]}")
    n = x._n
    axes = tracer_tensor_ops._axes(dim, n.type.ndim)
    if p in ("fro", 2, 2.0, None):
        out = _root_or_zero(ops.reduce_sum(ops.mul(n, n), axes), 0.5)
    elif p == 1:
        out = ops.reduce_sum(ops.abs(n), axes)
    elif p in (float("inf"), "inf"):
        out = ops.reduce_max(ops.abs(n), axes=axes)
    else:
        out = _root_or_zero(ops.reduce_sum(ops.pow(ops.abs(n), float(p)), axes), 1.0 / float(p))
    return _wrap(tracer_tensor_ops._keep(out, n.type.shape, axes, keepdim), "LinalgVectorNormBackward0", x)


def var(x, dim=None, unbiased=True, keepdim=False, correction=None, what="var"):
    n = x._n
    if n.val.dtype.kind != "f":
        raise RuntimeError("std and var only support floating point and complex dtypes")
    axes = tracer_tensor_ops._axes(dim, n.type.ndim)
    cnt = int(np.prod([n.type.shape[a] for a in axes])) if axes else 1
    ddof = (1 if unbiased else 0) if correction is None else correction
    if cnt - ddof <= 0:
        warnings.warn(f"{what}(): degrees of freedom is <= 0. Correction should be strictly "
                      "less than the reduction factor (input numel divided by output numel).",
                      UserWarning, stacklevel=3)
    m = ops.div(ops.reduce_sum(n, axes), float(cnt))
    kept = tuple(i for i in range(n.type.ndim) if i not in axes)
    d = ops.sub(n, ops.broadcast_in_dim(m, shape=n.type.shape, dims=kept) if axes else m)
    out = ops.div(ops.reduce_sum(ops.mul(d, d), axes), float(max(cnt - ddof, 0)))
    return _wrap(tracer_tensor_ops._keep(out, n.type.shape, axes, keepdim), "VarBackward0", x)


def std(x, dim=None, unbiased=True, keepdim=False, correction=None):
    v = var(x, dim, unbiased, keepdim, correction, what="std")
    return _wrap(_root_or_zero(v._n, 0.5), "StdBackward0", x)  # gradient 0 at std 0


def _prod_dim(dim, function):
    """PyTorch's prod takes one dim (an int), not a tuple of dims: its argument parser's
    TypeError, worded for the method or for torch.prod."""
    if dim is None or not isinstance(dim, bool) and isinstance(dim, (int, np.integer)):
        return
    t, ti = ("Tensor input, ", "Tensor, ") if function else ("", "")
    raise TypeError(f"prod() received an invalid combination of arguments - got "
                    f"({ti}{type(dim).__name__}), but expected one of:\n"
                    f" * ({t}*, torch.dtype dtype = None)\n"
                    f" * ({t}int dim, bool keepdim = False, *, torch.dtype dtype = None"
                    f"{', Tensor out = None' if function else ''})\n")


def prod_function(input, dim=None, keepdim=False):
    """torch.prod(input, dim=None, keepdim=False)."""
    _prod_dim(dim, True)
    return input.prod(dim, keepdim)


def prod(x, dim=None, keepdim=False):
    # product as exp(sum(log|x|)) loses signs and zeros; use a cumulative product by repeated mul
    _prod_dim(dim, False)
    n = x._n
    axes = tracer_tensor_ops._axes(dim, n.type.ndim)
    if not axes:  # a 0-d tensor: the value itself, as a node of its own
        return _wrap(n, "ProdBackward0" if dim is None else "ProdBackward1", x)
    moved = ops.transpose(n, tuple(axes) + tuple(i for i in range(n.type.ndim) if i not in axes))
    k = int(np.prod([n.type.shape[a] for a in axes]))
    rest = tuple(d for i, d in enumerate(n.type.shape) if i not in axes)
    flat = ops.reshape(moved, (k,) + rest)
    out = None
    for i in range(k):
        row = ops.reshape(ops.slice(flat, start=(i,) + (0,) * len(rest),
                                    limit=(i + 1,) + rest, strides=(1,) * (len(rest) + 1)),
                          rest)
        out = row if out is None else ops.mul(out, row)
    return _wrap(tracer_tensor_ops._keep(out, n.type.shape, axes, keepdim),
                 "ProdBackward0" if dim is None else "ProdBackward1", x)


def _softmax_node(n, axis, log):
    if n.type.ndim == 0:  # a 0-d tensor is one element along its dimension 0
        return ops.reshape(_softmax_node(ops.reshape(n, (1,)), 0, log), ())
    kept = tuple(i for i in range(n.type.ndim) if i != axis)
    with no_grad():
        m = ops.reduce_max(ops.stop_gradient(n), axes=(axis,))
    shifted = ops.sub(n, ops.broadcast_in_dim(m, shape=n.type.shape, dims=kept))
    e = ops.exp(shifted)
    s = ops.reduce_sum(e, (axis,))
    sb = ops.broadcast_in_dim(s, shape=n.type.shape, dims=kept)
    if log:
        return ops.sub(shifted, ops.log(sb))
    return ops.div(e, sb)


def _float_only(x, dim, what):
    d = x._n.val.dtype
    if d.kind != "f":
        last = tracer_tensor_ops.wrap_dim(dim, x._n.type.ndim) == max(x._n.type.ndim - 1, 0)
        kernel = f"{what}_lastdim_kernel_impl" if last else f"{what}_kernel_impl"
        name = _INT_NAMES[d.name]
        raise NotImplementedError(f'"{kernel}" not implemented for \'{name}\'')


def softmax(x, dim=None, dtype=None):
    _float_only(x, -1 if dim is None else dim, "softmax")
    axis = tracer_tensor_ops.wrap_dim(-1 if dim is None else dim, x._n.type.ndim)
    return _wrap(_softmax_node(x._n, axis, False), "SoftmaxBackward0", x)


def log_softmax(x, dim=None, dtype=None):
    _float_only(x, -1 if dim is None else dim, "log_softmax")
    axis = tracer_tensor_ops.wrap_dim(-1 if dim is None else dim, x._n.type.ndim)
    return _wrap(_softmax_node(x._n, axis, True), "LogSoftmaxBackward0", x)


def logsumexp(x, dim, keepdim=False):
    """torch.logsumexp(input, dim, keepdim=False): log(sum(exp(x))) over `dim` (an int or a
    tuple) without overflow, ir.composites.logsumexp on the tape (LogsumexpBackward0). An
    integer tensor is computed in float32, as PyTorch does."""
    n = x._n
    if n.val.dtype.kind != "f":
        n = ops.convert(n, "f32")
    nd = n.type.ndim
    axes = logsumexp_axes(dim, nd)
    if nd == 0:  # a 0-d tensor is one element along its dimension 0
        return _wrap(n, "LogsumexpBackward0", x)
    return _wrap(IC.logsumexp(n, axes, bool(keepdim)), "LogsumexpBackward0", x)


def logsumexp_axes(dim, nd):
    """The sorted axes torch.logsumexp reduces for `dim` (an int, or a tuple or list of ints)
    on a tensor of `nd` dimensions. dim=() and dim=[] reduce every dimension, as PyTorch
    does (its sum(dim=()) and its logsumexp(dim=(), keepdim=True)); PyTorch 2.13 raises
    for logsumexp(dim=(), keepdim=False) on a non-empty tensor (an internal out-shape check,
    while its empty tensor gives the reduction), adjit gives the reduction there too. A
    repeated or out-of-range dim is refused with PyTorch's error."""
    def is_int(d):
        return isinstance(d, (int, np.integer)) and not isinstance(d, bool)
    if is_int(dim):
        dims = (dim,)
    elif isinstance(dim, (tuple, list)):
        dims = tuple(dim)
        for i, d in enumerate(dims):
            if not is_int(d):
                raise TypeError(f"logsumexp(): argument 'dim' failed to unpack the object at "
                                f"pos {i + 1} with error \"type must be tuple of ints,but got "
                                f"{type(d).__name__}\"")
    else:
        raise TypeError(f"logsumexp(): argument 'dim' (position 2) must be tuple of ints, "
                        f"not {type(dim).__name__}")
    return tuple(sorted(tracer_tensor_ops._axes(dims, nd)))


def _clamp_bounds(min, max, fn):  # noqa: A002
    """PyTorch's two overloads of clamp: min and max both Tensors, or both numbers (None: no
    bound). A 0-d tensor without requires_grad also passes as a number (PyTorch's argument
    parser: the number it holds, so a Python scalar's promotion and no input of its own);
    any other mix is its parser's TypeError, and so is a NumPy array (neither a Tensor nor a
    number to PyTorch)."""
    if isinstance(min, np.ndarray) or isinstance(max, np.ndarray):
        got = ", ".join(f"{k}={type(b).__module__}.{type(b).__name__}" if isinstance(
            b, np.ndarray) else f"{k}={type(b).__name__}" for k, b in (("min", min), ("max", max))
            if b is not None)
        raise TypeError(f"{fn}() received an invalid combination of arguments - got (Tensor, "
                        f"{got}), but expected one of:\n"
                        f" * (Tensor input, Tensor min = None, Tensor max = None)\n"
                        f" * (Tensor input, Number min = None, Number max = None)\n")
    if min is None or max is None:
        return min, max
    is_t = [isinstance(b, Tensor) for b in (min, max)]
    if is_t[0] == is_t[1]:
        return min, max
    t = min if is_t[0] else max
    if not t._n.type.shape and not t.requires_grad and t._n.trace is EAGER:
        v = t._n.val.item()
        return (v, max) if is_t[0] else (min, v)
    names = ["Tensor" if i else type(b).__name__ for i, b in zip(is_t, (min, max))]
    raise TypeError(f"{fn}() received an invalid combination of arguments - got (Tensor, "
                    f"min={names[0]}, max={names[1]}), but expected one of:\n"
                    f" * (Tensor input, Tensor min = None, Tensor max = None)\n"
                    f" * (Tensor input, Number min = None, Number max = None)\n"
                    f"min and max must both be Tensors or both numbers")


def clip(x, min=None, max=None):  # noqa: A002
    """torch.clip / Tensor.clip: clamp, errors worded for clip."""
    return _clamp(x, min, max, "clip")


def clamp(x, min=None, max=None):  # noqa: A002
    """PyTorch's clamp: the gradient passes where min <= x <= max (both ends included), unlike
    maximum/minimum whose ties split it; a NaN stays NaN, with derivative 0 (the comparisons
    are false there, as in PyTorch's mask)."""
    return _clamp(x, min, max, "clamp")


def _clamp(x, min, max, fn):  # noqa: A002
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    min, max = _clamp_bounds(min, max, fn)  # noqa: A001
    bounds = [(tracer_tensor_ops.as_tensor_like(b), cmp) for b, cmp in
              ((min, ops.lt), (max, ops.gt)) if b is not None]
    # PyTorch's promotion of the input with the bounds (an int tensor clamped at 1.5 is
    # float32) and broadcast of tensor bounds
    dt = tracer_tensor_ops.result_dtype(x, *[b for b, _ in bounds])
    shp = x._n.type.shape
    for b, _ in bounds:
        if isinstance(b, Tensor):
            shp = tracer_tensor_ops.broadcast_shapes(shp, b._n.type.shape)
    n = ops.broadcast_to(ops.convert(x._n, dt), shp)
    out = n
    for bound, cmp in bounds:
        if isinstance(bound, Tensor) or tracer_tensor_ops.traced_number(bound):
            bb = ops.broadcast_to(ops.convert(bound._n, dt), shp)  # (jit's traced number too)
        else:
            bb = ops.full(shp, bound, dt)
        out = ops.select(cmp(out, bb), bb, out)
    if n.type.dtype in FLOATS:  # NaN: the value stays NaN, no gradient passes
        out = ops.select(ops.ne(n, n), ops.stop_gradient(n), out)
    inputs = [x._n] + [b._n if isinstance(b, Tensor) else None for b in (min, max)
                       if isinstance(b, Tensor)]
    name = "ClampBackward0" if isinstance(min, Tensor) or isinstance(max, Tensor) else \
        "ClampBackward1"
    return Tensor._wrap(tag(out, name, inputs))


def cumsum(x, dim, dtype=None):
    n = x._n
    axis = tracer_tensor_ops.wrap_dim(dim, n.type.ndim)
    if n.type.ndim == 0:  # one element: the value itself, as a node of its own
        return _wrap(n, "CumsumBackward0", x)
    return _wrap(ops.cumsum(n, axis=axis, reverse=False), "CumsumBackward0", x)


def tall(x, dim=None, keepdim=False, *, is_all=True):
    """Tensor.all / Tensor.any as PyTorch's: over `dim` (an int, a tuple of ints, or None: every
    dimension), `keepdim` kept as size-1 dimensions; a bool tensor without a gradient."""
    n = x._n
    # dim=() or [] reduces nothing here (sum's reduces every dimension), as in PyTorch
    empty = isinstance(dim, (tuple, list)) and not dim
    axes = () if empty else tracer_tensor_ops._axes(dim, n.type.ndim)
    with no_grad():  # a comparison's result: never part of a gradient
        return Tensor._wrap((IC.all_ if is_all else IC.any_)(n, axes, keepdim))


def targ(x, dim, keepdim, is_max):
    v = x._n.val
    f = np.argmax if is_max else np.argmin
    if dim is None:
        return Tensor._from_array(np.asarray(f(v), np.int64))
    dim = tracer_tensor_ops.wrap_dim(dim, v.ndim)
    if v.ndim == 0:
        return Tensor._from_array(np.zeros((), np.int64))
    r = np.asarray(f(v, axis=dim), np.int64)
    if keepdim:
        r = np.expand_dims(r, dim)
    return Tensor._from_array(r)
