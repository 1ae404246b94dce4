"""PyTorch operations on adjit.Tensor: promotion, broadcasting, grad_fn names.

Each operation computes through `adjit.ir.ops` (so it records primitives when an input requires
grad) and tags its final node with the grad_fn PyTorch would show, listing the operands that
PyTorch lists in `next_functions` (None for a Python number).
"""
from __future__ import annotations

import builtins
import collections

import numpy as np

from ..ir import ops
from ..ir.core import STATE, Node
from ..ir.indexing import index as _index
from .autograd import tag, no_grad
from .tensor import Tensor, to_np_dtype, float32, int64

_CAT = {"b": 0, "i": 1, "u": 1, "f": 2}
_DEFAULT = {0: np.dtype(np.bool_), 1: np.dtype(np.int64), 2: np.dtype(np.float32)}


def _n(x):
    return x._n if isinstance(x, Tensor) else x


def as_tensor_like(x):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return Tensor._from_array(x)
    return x


def result_dtype(*xs):
    """PyTorch's promotion: dimensioned tensors, then 0-d tensors, then Python numbers; a later
    group only counts if it is of a higher category (bool < int < float)."""
    dimmed = [x._n.val.dtype for x in xs if isinstance(x, Tensor) and x._n.val.ndim > 0]
    zerod = [x._n.val.dtype for x in xs if isinstance(x, Tensor) and x._n.val.ndim == 0]
    scal = [x for x in xs if not isinstance(x, Tensor)]
    res = np.result_type(*dimmed) if dimmed else None
    for group in (zerod,):
        if group:
            g = np.result_type(*group)
            if res is None or _CAT[g.kind] > _CAT[res.kind]:
                res = g
    for s in scal:
        c = 0 if isinstance(s, (bool, np.bool_)) else 2 if isinstance(s, (float, np.floating)) \
            else 1
        if res is None or c > _CAT[res.kind]:
            res = _DEFAULT[c]
    return res


def broadcast_shapes(a, b):
    a, b = tuple(a), tuple(b)
    n = builtins.max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    out = []
    for i, (x, y) in enumerate(zip(pa, pb)):
        if x != y and x != 1 and y != 1:
            raise RuntimeError(f"The size of tensor a ({x}) must match the size of tensor b ({y})"
                               f" at non-singleton dimension {i}")
        out.append(y if x == 1 else x)
    return tuple(out)


def _prep(a, b, dt):
    """Convert and broadcast two operands (Tensors or numbers) to a common dtype and shape."""
    def conv(x):
        if isinstance(x, Tensor):
            return ops.convert(x._n, dt)
        if isinstance(x, np.ndarray):
            return x.astype(dt)
        return x
    a2, b2 = conv(a), conv(b)
    sa = ops.shape(a2) if isinstance(a, Tensor) else None
    sb = ops.shape(b2) if isinstance(b, Tensor) else None
    if sa is not None and sb is not None and sa != sb:
        shp = broadcast_shapes(sa, sb)
        a2, b2 = ops.broadcast_to(a2, shp), ops.broadcast_to(b2, shp)
    return a2, b2


def _fn_inputs(*xs):
    return [x._n if isinstance(x, Tensor) else None for x in xs]


def binary(prim, a, b, name, true_div=False, listed=None):
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


def unary(fn, x, name):
    out = fn(_n(x))
    return Tensor._wrap(tag(out, name, [x._n]))


def _float(x):
    """Math functions of an integer tensor compute in the default float dtype."""
    if x._n.val.dtype.kind != "f":
        return Tensor._wrap(ops.convert(x._n, "f32"))
    return x


def _axes(dim, ndim):
    if dim is None:
        return tuple(range(ndim))
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    out = []
    for d in dims:
        if not -builtins.max(ndim, 1) <= d < builtins.max(ndim, 1):
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[{-builtins.max(ndim, 1)}, {builtins.max(ndim, 1) - 1}], but got "
                             f"{d})")
        out.append(d % builtins.max(ndim, 1))
    return tuple(out) if ndim else ()


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
    axes = _axes(dim, n.type.ndim)
    cnt = int(np.prod([n.type.shape[a] for a in axes])) if axes else 1
    out = ops.div(ops.reduce_sum(n, axes), float(cnt))
    out = _keep(out, n.type.shape, axes, keepdim)
    return Tensor._wrap(tag(out, "MeanBackward0" if dim is None else "MeanBackward1", [x._n]))


def _tname(x):
    return {"f": "Float", "i": "Long", "b": "Bool"}[x._n.val.dtype.kind]


MaxResult = collections.namedtuple("max", ["values", "indices"])
MinResult = collections.namedtuple("min", ["values", "indices"])


def extremum(x, dim=None, keepdim=False, is_max=True):
    red, arg = ("reduce_max", "argmax") if is_max else ("reduce_min", "argmin")
    n = x._n
    name = "MaxBackward" if is_max else "MinBackward"
    if dim is None:
        if n.val.size == 0:
            raise RuntimeError("max(): Expected reduction dim to be specified for input.numel() "
                               "== 0. Specify the reduction dim with the 'dim' argument.")
        out = getattr(ops, red)(n, axes=tuple(range(n.type.ndim))) if n.type.ndim else n
        return Tensor._wrap(tag(out, name + "1", [n]))
    axis = _axes(dim, n.type.ndim)[0] if n.type.ndim else 0
    if n.type.ndim == 0:
        return (MaxResult if is_max else MinResult)(x, Tensor._from_array(np.array(0)))
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


def matmul(a, b):
    a, b = as_tensor_like(a), as_tensor_like(b)
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("matmul(): argument must be a Tensor")
    dt = result_dtype(a, b)
    if a._n.val.dtype != b._n.val.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: "
                           f"{a._n.val.dtype} != {b._n.val.dtype}")
    x, y = a._n, b._n
    sa, sb = x.type.shape, y.type.shape
    if len(sa) == 0 or len(sb) == 0:
        raise RuntimeError("both arguments to matmul need to be at least 1D, but they are "
                           f"{len(sa)}D and {len(sb)}D")
    if len(sa) == 1 and len(sb) == 1:
        if sa != sb:
            raise RuntimeError(f"inconsistent tensor size, expected tensor [{sa[0]}] and src "
                               f"[{sb[0]}] to have the same number of elements, but got {sa[0]} "
                               f"and {sb[0]} elements respectively")
        out = ops.dot_general(x, y, contract=((0,), (0,)), batch=((), ()))
        return Tensor._wrap(tag(out, "DotBackward0", [x, y]))
    if len(sa) <= 2 and len(sb) <= 2:
        ka, kb = sa[-1], sb[0]
        if ka != kb:
            if len(sa) == 2 and len(sb) == 2:
                raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({sa[0]}x{sa[1]} "
                                   f"and {sb[0]}x{sb[1]})")
            raise RuntimeError(f"size mismatch, got input ({sa[0]}), mat ({ka}x{kb})" if
                               len(sa) == 1 else f"size mismatch, got input ({sa[0]}x{sa[1]}), "
                               f"vec ({sb[0]})")
        out = ops.dot_general(x, y, contract=((len(sa) - 1,), (0,)), batch=((), ()))
        name = "MmBackward0" if len(sa) == 2 and len(sb) == 2 else \
            "MvBackward0" if len(sa) == 2 else "SqueezeBackward4"
        return Tensor._wrap(tag(out, name, [x, y]))
    # batched: broadcast the batch dims, then one batched dot_general
    if len(sa) == 1:
        x = ops.reshape(x, (1,) + sa)
    if len(sb) == 1:
        y = ops.reshape(y, sb + (1,))
    xa, ya = ops.shape(x), ops.shape(y)
    if xa[-1] != ya[-2]:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{xa[-1]}] but got: [{ya[-2]}].")
    bshape = broadcast_shapes(xa[:-2], ya[:-2])
    x = ops.broadcast_to(x, bshape + xa[-2:])
    y = ops.broadcast_to(y, bshape + ya[-2:])
    nb = len(bshape)
    out = ops.dot_general(x, y, contract=((nb + 1,), (nb,)),
                          batch=(tuple(range(nb)), tuple(range(nb))))
    final = bshape + (() if len(sa) == 1 else (xa[-2],)) + (() if len(sb) == 1 else (ya[-1],))
    out = ops.reshape(out, final)
    return Tensor._wrap(tag(out, "BmmBackward0" if nb else "MmBackward0", [a._n, b._n]))


def getitem(x, idx):
    if isinstance(idx, Tensor):
        idx = idx._n.val
    elif isinstance(idx, tuple):
        idx = tuple(i._n.val if isinstance(i, Tensor) else i for i in idx)
    out, kind = _index(x._n, idx)
    if out is x._n:  # x[:] or x[...]: a view of the same value
        return Tensor._wrap(out)
    name = {"select": "SelectBackward0", "slice": "SliceBackward0", "index": "IndexBackward0",
            "unsqueeze": "UnsqueezeBackward0"}[kind]
    return Tensor._wrap(tag(out, name, [x._n]))
