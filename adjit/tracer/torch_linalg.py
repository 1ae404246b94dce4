"""torch.linalg on Tensors: solve, inv, det, slogdet, cholesky, eigh, eigvalsh with PyTorch's
shape rules and grad_fn names (one PyTorch node per call; the primitives underneath are what
backward differentiates)."""
from __future__ import annotations

import collections

from ..ir import composites_linalg
from ..ir import ops
from .grad_fn import tag, tag_outputs
from .tensor import Tensor

_SlogdetResult = collections.namedtuple("slogdet", ["sign", "logabsdet"])
_EighResult = collections.namedtuple("eigh", ["eigenvalues", "eigenvectors"])


def _node(x, name):
    if not isinstance(x, Tensor):
        raise TypeError(f"linalg.{name}(): argument 'A' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")
    n = x._n
    if n.type.dtype not in ("f32", "f64"):
        raise RuntimeError(f"linalg.{name}: Expected a floating point or complex tensor as "
                           f"input. Got {x.dtype}")
    if len(n.type.shape) < 2:
        raise RuntimeError(f"linalg.{name}: The input tensor A must have at least 2 dimensions.")
    if n.type.shape[-1] != n.type.shape[-2]:
        raise RuntimeError(f"linalg.{name}: A must be batches of square matrices, but they are "
                           f"{n.type.shape[-2]} by {n.type.shape[-1]} matrices")
    return n


def _one(out, name, inputs):
    return Tensor._wrap(tag(out, name, inputs))


def solve(A, B, *, left=True):  # noqa: N803
    if not left:
        raise NotImplementedError("linalg.solve(..., left=False) is not supported")
    a = _node(A, "solve")
    b = B._n
    sa, sb = a.type.shape, b.type.shape
    vector = len(sb) == 1 or (len(sb) == len(sa) - 1 and sb == sa[:-1])
    if vector:
        b = ops.reshape(b, sb + (1,))
    x = composites_linalg.solve(a, b)
    if vector:
        x = ops.reshape(x, ops.shape(x)[:-1])
    return _one(x, "LinalgSolveExBackward0", (a, B._n))


def inv(A):  # noqa: N803
    a = _node(A, "inv")
    return _one(composites_linalg.inv(a), "LinalgInvExBackward0", (a,))


def det(A):  # noqa: N803
    a = _node(A, "det")
    return _one(composites_linalg.det(a), "LinalgDetBackward0", (a,))


def slogdet(A):  # noqa: N803
    a = _node(A, "slogdet")
    s, l = composites_linalg.slogdet(a)
    tag_outputs((s, l), "LinalgSlogdetBackward0", (a,))
    return _SlogdetResult(Tensor._wrap(s), Tensor._wrap(l))


def cholesky(A, *, upper=False):  # noqa: N803
    a = _node(A, "cholesky")
    return _one(composites_linalg.cholesky(a, upper), "LinalgCholeskyExBackward0", (a,))


def eigh(A, UPLO="L"):  # noqa: N803
    a = _node(A, "eigh")
    w, v = composites_linalg.eigh(a, UPLO)
    tag_outputs((w, v), "LinalgEighBackward0", (a,))
    return _EighResult(Tensor._wrap(w), Tensor._wrap(v))


def eigvalsh(A, UPLO="L"):  # noqa: N803
    return eigh(A, UPLO)[0]
