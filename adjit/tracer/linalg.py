"""`a @ b` as PyTorch's eager matmul performs it, so grad_fn graphs match op for op.

PyTorch dispatches on the ranks (aten/native/LinearAlgebra.cpp `_matmul_impl`): dot, mv, mm,
`unsqueeze(0).mm().squeeze_(0)` for vector @ matrix, folding the batch dims of the larger
operand into an mm/mv, and otherwise expand + reshape + bmm + `_unsafe_view`. Each step here is
one or two primitives tagged with the node PyTorch records (the primitives are what backward
differentiates; the tags are what users see).
"""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir.core import EAGER, REGISTRY, STATE, bind, record_eager
from .grad_fn import tag
from .tensor import Tensor, shape_error
from .tensor_ops import as_tensor_like, broadcast_shapes, fresh


def _step(out, name, *inputs):
    return tag(fresh(out, inputs[0]), name, inputs)


def _reshape(n, shp, name):
    return _step(ops.reshape(n, tuple(shp)), name, n)


def _mm(x, y, name="MmBackward0"):
    return _step(ops.dot_general(x, y, contract=((1,), (0,)), batch=((), ())), name, x, y)


def _check_dtypes(a, b):
    da, db = a._n.val.dtype, b._n.val.dtype
    if da != db:
        names = {"float32": "float", "float64": "double", "int64": "long", "int32": "int",
                 "bool": "bool"}
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: "
                           f"{names[da.name]} != {names[db.name]}")


_DOT = REGISTRY["dot_general"]
_MM_PARAMS = {"contract": ((1,), (0,)), "batch": ((), ())}


def matmul(a, b):
    if type(a) is Tensor and type(b) is Tensor:
        x, y = a._n, b._n
        sa, sb = x.type.shape, y.type.shape
        if len(sa) == 2 and len(sb) == 2 and sa[1] == sb[0] and x.type.dtype == y.type.dtype:
            # the common case (a matrix product, nothing to check or reshape): one equation
            if x.trace is EAGER and y.trace is EAGER and (x.requires_grad or y.requires_grad) \
                    and STATE.grad_enabled:
                out = record_eager(_DOT, (x, y), dict(_MM_PARAMS))
            else:
                out = bind(_DOT, x, y, **_MM_PARAMS)
            return Tensor._wrap(tag(out, "MmBackward0", (x, y)))
    a, b = as_tensor_like(a), as_tensor_like(b)
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"matmul(): argument 'other' (position 1) must be Tensor, not "
                        f"{type(b if isinstance(a, Tensor) else a).__name__}")
    x, y = a._n, b._n
    sa, sb = x.type.shape, y.type.shape
    da, db = len(sa), len(sb)
    if da == 0 or db == 0:
        raise RuntimeError("both arguments to matmul need to be at least 1D, but they are "
                           f"{da}D and {db}D")
    if da == 1 and db == 1:
        if sa != sb:
            raise shape_error(f"inconsistent tensor size, expected tensor [{sa[0]}] and src "
                               f"[{sb[0]}] to have the same number of elements, but got {sa[0]} "
                               f"and {sb[0]} elements respectively")
        _check_dtypes(a, b)
        out = ops.dot_general(x, y, contract=((0,), (0,)), batch=((), ()))
        return Tensor._wrap(tag(out, "DotBackward0", [x, y]))
    if da == 2 and db == 1:
        if sa[1] != sb[0]:
            raise shape_error(f"size mismatch, got input ({sa[0]}), mat ({sa[0]}x{sa[1]}), "
                               f"vec ({sb[0]})")
        _check_dtypes(a, b)
        out = ops.dot_general(x, y, contract=((1,), (0,)), batch=((), ()))
        return Tensor._wrap(tag(out, "MvBackward0", [x, y]))
    if da <= 2 and db == 2:
        rows = sa[0] if da == 2 else 1
        if sa[-1] != sb[0]:
            raise shape_error(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{sa[-1]} "
                               f"and {sb[0]}x{sb[1]})")
        _check_dtypes(a, b)
        if da == 2:
            return Tensor._wrap(_mm(x, y))
        u = _reshape(x, (1,) + sa, "UnsqueezeBackward0")
        return Tensor._wrap(_reshape(_mm(u, y), (sb[1],), "SqueezeBackward4"))
    _check_dtypes(a, b)
    if da >= 3 and db <= 2:
        return Tensor._wrap(_fold(x, y))
    if db >= 3 and da <= 2 and x.requires_grad:
        return Tensor._wrap(_fold_transposed(x, y))
    return Tensor._wrap(_batched(x, y))


def _mismatch(sa, sb):
    batch = broadcast_shapes(sa[:max(len(sa) - 2, 0)], sb[:max(len(sb) - 2, 0)])
    nb = int(np.prod(batch))
    m2 = sb[-2] if len(sb) > 1 else sb[0]
    return shape_error(f"Expected size for first two dimensions of batch2 tensor to be: "
                       f"[{nb}, {sa[-1]}] but got: [{nb}, {m2}].")


def _fold(x, y):
    """(..., n, k) @ (k, p) or (k,): fold the batch into the rows of one mm/mv."""
    sa, sb = x.type.shape, y.type.shape
    if sa[-1] != sb[0]:
        rows = int(np.prod(sa[:-1]))
        if len(sb) == 2:
            raise shape_error(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{sa[-1]} "
                               f"and {sb[0]}x{sb[1]})")
        raise shape_error(f"size mismatch, got input ({rows}), mat ({rows}x{sa[-1]}), "
                           f"vec ({sb[0]})")
    folded = _reshape(x, (int(np.prod(sa[:-1])), sa[-1]), "ViewBackward0")
    if len(sb) == 2:
        out = _mm(folded, y)
        return _reshape(out, sa[:-1] + (sb[1],), "UnsafeViewBackward0")
    out = _step(ops.dot_general(folded, y, contract=((1,), (0,)), batch=((), ())),
                "MvBackward0", folded, y)
    return _reshape(out, sa[:-1], "UnsafeViewBackward0")


def _fold_transposed(x, y):
    """(k,) or (n, k) @ (..., k, p) when the first operand requires grad: PyTorch folds
    y.mT (a copy: Clone + UnsafeView) and multiplies from the other side."""
    sa, sb = x.type.shape, y.type.shape
    if sa[-1] != sb[-2]:
        raise _mismatch(sa, sb)
    nd = len(sb)
    perm = tuple(range(nd - 2)) + (nd - 1, nd - 2)
    yt = _step(ops.transpose(y, perm), "TransposeBackward0", y)
    yt = _step(yt, "CloneBackward0", yt)
    rows = int(np.prod(sb[:-2])) * sb[-1]
    folded = _reshape(yt, (rows, sb[-2]), "UnsafeViewBackward0")
    if len(sa) == 1:
        out = _step(ops.dot_general(folded, x, contract=((1,), (0,)), batch=((), ())),
                    "MvBackward0", folded, x)
        return _reshape(out, sb[:-2] + (sb[-1],), "UnsafeViewBackward0")
    xt = _step(ops.transpose(x, (1, 0)), "TBackward0", x)
    out = _reshape(_mm(folded, xt), sb[:-2] + (sb[-1], sa[0]), "UnsafeViewBackward0")
    out = _step(ops.transpose(out, perm), "TransposeBackward0", out)
    return _step(out, "CloneBackward0", out)


def _batched(x, y):
    """expand both to the broadcast batch shape, reshape to 3-d, bmm, view as the result."""
    sa, sb = x.type.shape, y.type.shape
    n = sa[-2] if len(sa) > 1 else 1
    m1, m2 = sa[-1], (sb[-2] if len(sb) > 1 else sb[0])
    p = sb[-1] if len(sb) > 1 else 1
    if m1 != m2:
        raise _mismatch(sa, sb)
    batch = broadcast_shapes(sa[:max(len(sa) - 2, 0)], sb[:max(len(sb) - 2, 0)])
    nb = int(np.prod(batch))
    xe = _step(ops.broadcast_to(x, batch + (n, m1)), "ExpandBackward0", x)
    xe = _reshape(xe, (nb, n, m1), "ViewBackward0")
    vector = len(sb) == 1
    ye = _step(ops.broadcast_to(y, batch + ((m2,) if vector else (m2, p))), "ExpandBackward0",
               y)
    ye = _reshape(ye, (nb, m2) if vector else (nb, m2, p), "ViewBackward0")
    if vector:
        ye = _reshape(ye, (nb, m2, 1), "UnsqueezeBackward0")
    out = _step(ops.dot_general(xe, ye, contract=((2,), (1,)), batch=((0,), (0,))),
                "BmmBackward0", xe, ye)
    if vector:
        out = _reshape(out, (nb, n), "SqueezeBackward4")
    final = batch + ((n,) if len(sa) > 1 else ()) + ((p,) if len(sb) > 1 else ())
    return _reshape(out, final, "UnsafeViewBackward0")

