"""torch.linalg on Tensors: solve, inv, det, slogdet, cholesky, eigh, eigvalsh with PyTorch's
shape rules and grad_fn names (one PyTorch node per call; the primitives underneath are what
backward differentiates)."""
from __future__ import annotations

import collections

import numpy as np

from ..ir import composites_linalg
from ..ir import ops
from ..ir.composites_products import matmul
from ..ir.prims import linalg as prims_linalg
from .grad_fn import tag, tag_outputs
from .grad_mode import no_grad
from . import factory
from .tensor import Tensor

_SlogdetResult = collections.namedtuple("slogdet", ["sign", "logabsdet"])
_EighResult = collections.namedtuple("eigh", ["eigenvalues", "eigenvectors"])


def _node(x, name):
    """A float Tensor of (batches of) square matrices."""
    n = _matrix(x, name)
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


# --- svd and what is built on it (the NumPy front's primitives: svd, svdvals) --------------------
_SvdResult = collections.namedtuple("linalg_svd", ["U", "S", "Vh"])
_LstsqResult = collections.namedtuple("linalg_lstsq",
                                      ["solution", "residuals", "rank", "singular_values"])


def _matrix(x, name):
    """A float Tensor with at least 2 dimensions (any m by n)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"linalg.{name}(): argument 'A' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")
    n = x._n
    if n.type.dtype not in ("f32", "f64"):
        raise RuntimeError(f"linalg.{name}: Expected a floating point or complex tensor as "
                           f"input. Got {x.dtype}")
    if len(n.type.shape) < 2:
        raise RuntimeError(f"linalg.{name}: The input tensor A must have at least 2 dimensions.")
    return n


def svd(A, full_matrices=True, *, driver=None):  # noqa: N803
    if driver is not None:
        raise RuntimeError("torch.linalg.svd: keyword argument `driver=` is only supported on "
                           "CUDA inputs with cuSOLVER backend.")
    a = _matrix(A, "svd")
    m, n = a.type.shape[-2:]
    if full_matrices and m != n:
        u, s, vh = _svd_full_nonsquare(a)
    else:
        u, s, vh = ops.svd(a, full_matrices=bool(full_matrices))
    tag_outputs((u, s, vh), "LinalgSvdBackward0", (a,))
    return _SvdResult(Tensor._wrap(u), Tensor._wrap(s), Tensor._wrap(vh))


def _svd_full_nonsquare(a):
    """svd(full_matrices=True) of an m != n matrix as PyTorch differentiates it: the values of
    the full factorisation, the derivative of the thin one (PyTorch's backward drops the
    cotangent of the extra singular vectors, which are arbitrary). The thin factors enter as
    t - stop_gradient(t), exactly zero in value."""
    m, n = a.type.shape[-2:]
    k = min(m, n)
    with no_grad():
        u, s, vh = ops.svd(ops.stop_gradient(a), full_matrices=True)
    tu, ts, tvh = ops.svd(a, full_matrices=False)
    nd = len(a.type.shape)

    def zero_pad(t, axis, extra):
        d = ops.sub(t, ops.stop_gradient(t))
        high = tuple(extra if i == axis else 0 for i in range(nd))
        return ops.pad(d, low=(0,) * nd, high=high, interior=(0,) * nd)
    u = ops.add(u, zero_pad(tu, nd - 1, m - k))
    vh = ops.add(vh, zero_pad(tvh, nd - 2, n - k))
    s = ops.add(s, ops.sub(ts, ops.stop_gradient(ts)))
    return u, s, vh


def svdvals(A, *, driver=None):  # noqa: N803
    if driver is not None:
        raise RuntimeError("torch.linalg.svdvals: keyword argument `driver=` is only supported "
                           "on CUDA inputs with cuSOLVER backend.")
    a = _matrix(A, "svdvals")
    return _one(ops.svdvals(a), "LinalgSvdBackward0", (a,))


def _float_input(x, name, dtype):
    if not isinstance(x, Tensor):
        raise TypeError(f"linalg.{name}(): argument 'x' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")
    n = x._n
    if n.type.dtype not in ("f32", "f64"):
        raise RuntimeError(f"linalg.{name}: Expected a floating point or complex tensor as "
                           f"input. Got {x.dtype}")
    return n


def _axes(dim, nd):
    from ..ir import composites as ir_composites
    if dim is None:
        return tuple(range(nd))
    if isinstance(dim, int):
        dim = (dim,)
    return tuple(ir_composites.norm_axes(tuple(dim), nd)) if nd else ()


def _keep(out, shp, axes, keepdim):
    if not keepdim:
        return out
    return ops.reshape(out, tuple(1 if i in axes else d for i, d in enumerate(shp)))


def _vector_norm_node(n, ord, axes):  # noqa: A002
    from .torch_composites import _root_or_zero
    inf = float("inf")
    if not axes:
        return ops.abs(n) if ord != 0 else ops.convert(ops.ne(n, 0.0), ops.dtype(n))
    if ord == inf:
        return ops.reduce_max(ops.abs(n), axes=axes)
    if ord == -inf:
        return ops.reduce_min(ops.abs(n), axes=axes)
    if ord == 0:
        return ops.reduce_sum(ops.convert(ops.ne(n, 0.0), ops.dtype(n)), axes)
    if ord == 1:
        return ops.reduce_sum(ops.abs(n), axes)
    if ord == 2:
        return _root_or_zero(ops.reduce_sum(ops.mul(n, n), axes), 0.5)
    p = float(ord)
    return _root_or_zero(ops.reduce_sum(ops.pow(ops.abs(n), p), axes), 1.0 / p)


def _check_dtype(dtype, name):
    if dtype is not None:
        raise NotImplementedError(f"torch.linalg.{name}(..., dtype=) is not supported: cast "
                                  "the input with .to(dtype) first")


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):  # noqa: A002
    _check_dtype(dtype, "vector_norm")
    if isinstance(ord, str):
        raise RuntimeError(f"linalg.vector_norm: Expected a number for ord, got {ord!r}")
    n = _float_input(x, "vector_norm", dtype)
    shp = n.type.shape
    axes = _axes(dim, len(shp))
    out = _keep(_vector_norm_node(n, ord, axes), shp, axes, keepdim)
    return _one(out, "LinalgVectorNormBackward0", (n,))


_MATRIX_ORDS = ("fro", "nuc", 2, -2, 1, -1, float("inf"), -float("inf"))


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):  # noqa: A002,N803
    _check_dtype(dtype, "matrix_norm")
    n = _float_input(A, "matrix_norm", dtype)
    shp = n.type.shape
    if len(shp) < 2:
        raise RuntimeError("linalg.matrix_norm: The input tensor A must have at least 2 "
                           "dimensions.")
    if ord not in _MATRIX_ORDS:
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    from ..ir import composites as ir_composites
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    axes = tuple(ir_composites.norm_axes(d, len(shp))[0] for d in dims)
    if len(axes) != 2 or axes[0] == axes[1]:
        raise RuntimeError("linalg.matrix_norm: dim must be a 2-tuple of distinct dimensions. "
                           f"Got {tuple(dim)}")
    r, c = axes
    both = tuple(sorted(axes))
    if ord == "fro":
        out = _vector_norm_node(n, 2, both)
        name = "LinalgVectorNormBackward0"
    elif ord in ("nuc", 2, -2):
        rest = tuple(i for i in range(len(shp)) if i not in axes)
        s = ops.svdvals(ops.transpose(n, rest + (r, c)))
        last = (len(shp) - 2,)
        out, name = {"nuc": (ops.reduce_sum(s, last), "SumBackward1"),
                     2: (ops.reduce_max(s, axes=last), "AmaxBackward0"),
                     -2: (ops.reduce_min(s, axes=last), "AminBackward0")}[ord]
    else:
        # 1: max over columns of the column sums; inf: max over rows of the row sums
        summed, kept = (r, c) if abs(ord) == 1 else (c, r)
        t = ops.reduce_sum(ops.abs(n), (summed,))
        k = kept - 1 if kept > summed else kept
        out = ops.reduce_max(t, axes=(k,)) if ord > 0 else ops.reduce_min(t, axes=(k,))
        name = "AmaxBackward0" if ord > 0 else "AminBackward0"
    if keepdim and ord in ("nuc", 2, -2):
        name = "PermuteBackward0"  # PyTorch moves the kept singleton dimensions back
    return _one(_keep(out, shp, both, keepdim), name, (n,))


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):  # noqa: A002,N803
    """torch.linalg.norm: a vector norm over one dim (or the flattened input when ord and dim
    are None), a matrix norm over two; ord given without dim needs a 1-D or 2-D input."""
    n = _float_input(A, "norm", dtype)
    nd = len(n.type.shape)
    if dim is not None:
        d = (dim,) if isinstance(dim, int) else tuple(dim)
        if len(d) == 1:
            return vector_norm(A, 2 if ord is None else ord, d, keepdim, dtype=dtype)
        if len(d) == 2:
            return matrix_norm(A, "fro" if ord is None else ord, d, keepdim, dtype=dtype)
        raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. "
                           f"Got {list(d)}")
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if nd == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
    if nd == 1:
        return vector_norm(A, ord, None, keepdim, dtype=dtype)
    raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be "
                       f"1D or 2D. Got {nd}D.")


def _eps(n):
    return float(np.finfo({"f32": np.float32, "f64": np.float64}[n.type.dtype]).eps)


def pinv(A, *, atol=None, rtol=None, hermitian=False, rcond=None):  # noqa: N803
    """torch.linalg.pinv: singular values at most max(atol, rtol * max(s)) dropped; rtol
    defaults to eps * max(m, n) when neither tolerance is given, to 0 when only atol is."""
    a = _matrix(A, "pinv")
    if rcond is not None:
        if rtol is not None:
            raise RuntimeError("linalg.pinv: rcond and rtol cannot both be given")
        rtol = rcond
    for t in (atol, rtol):
        if t is not None and not isinstance(t, (int, float)):
            raise NotImplementedError("torch.linalg.pinv: tensor atol/rtol are not supported; "
                                      "pass Python numbers")
    m, k = a.type.shape[-2:]
    if rtol is None:
        rtol = _eps(a) * max(m, k) if atol is None else 0.0
    atol = 0.0 if atol is None else float(atol)
    if m == 0 or k == 0:
        return _one(ops.zeros(tuple(a.type.shape[:-2]) + (k, m), a.type.dtype),
                    "LinalgPinvBackward0", (a,))
    if hermitian:
        if m != k:
            _node(A, "pinv")
        u, s, vt = composites_linalg._svd_hermitian(a, True)
    else:
        u, s, vt = ops.svd(a, full_matrices=False)
    smax = ops.reduce_max(s, axes=(len(s.type.shape) - 1,))
    cut = ops.mul(smax, float(rtol))
    if atol:
        cut = ops.maximum(cut, ops.full(cut.type.shape, atol, cut.type.dtype))
    cut = ops.reshape(cut, cut.type.shape + (1,))
    si = composites_linalg._inv_large(s, cut)
    x = matmul(prims_linalg.mT(vt), ops.mul(composites_linalg._scale_rows(si, m),
                                            prims_linalg.mT(u)))
    return _one(x, "LinalgPinvBackward0", (a,))


def lstsq(A, B, rcond=None, *, driver=None):  # noqa: N803
    """torch.linalg.lstsq (CPU semantics) through the SVD: solution = pinv(A) B with singular
    values at most rcond * max(s) dropped (rcond defaults to eps * max(m, n)); rank for gelsy,
    gelsd and gelss, singular_values for gelsd and gelss, residuals (squared column norms of
    B - A X) for gelsd and gelss when m > n and every matrix has full rank. 'gels' (QR, no rank
    revealing) is refused."""
    if driver is None:
        driver = "gelsy"
    if driver not in ("gels", "gelsy", "gelsd", "gelss"):
        raise RuntimeError(f"torch.linalg.lstsq: parameter `driver` should be one of (gels, "
                           f"gelsy, gelsd, gelss). Got {driver}")
    if driver == "gels":
        raise NotImplementedError("torch.linalg.lstsq(driver='gels') is not supported: use "
                                  "'gelsy', 'gelsd' or 'gelss' (the same solution for a "
                                  "full-rank A)")
    a = _matrix(A, "lstsq")
    if not isinstance(B, Tensor):
        raise TypeError(f"linalg.lstsq(): argument 'B' (position 2) must be Tensor, not "
                        f"{type(B).__name__}")
    b = B._n
    if b.type.dtype != a.type.dtype:
        raise RuntimeError(f"torch.linalg.lstsq: Expected input and other to have the same "
                           f"dtype, but got input's dtype {A.dtype} and other's dtype {B.dtype}")
    sa, sb = a.type.shape, b.type.shape
    vector = len(sb) == len(sa) - 1
    if vector:
        b = ops.reshape(b, sb + (1,))
    m, k = sa[-2:]
    if b.type.shape[-2] != m:
        raise RuntimeError(f"torch.linalg.lstsq: input.size(-2) should match other.size(-2). "
                           f"Got {m} and {b.type.shape[-2]}")
    batch = tuple(np.broadcast_shapes(sa[:-2], b.type.shape[:-2]))
    a = ops.broadcast_to(a, batch + (m, k))
    nrhs = b.type.shape[-1]
    b = ops.broadcast_to(b, batch + (m, nrhs))
    dt = a.type.dtype
    if rcond is None:
        rcond = _eps(a) * max(m, k)
    if min(m, k) == 0:
        raise NotImplementedError("torch.linalg.lstsq: empty matrices are not supported")
    u, s, vt = ops.svd(a, full_matrices=False)
    last = len(s.type.shape) - 1
    cut = ops.reshape(ops.mul(ops.reduce_max(s, axes=(last,)), float(max(rcond, 0.0))),
                      batch + (1,))
    si = composites_linalg._inv_large(s, cut)
    x = matmul(prims_linalg.mT(vt), ops.mul(composites_linalg._scale_rows(si, nrhs),
                                            matmul(prims_linalg.mT(u), b)))
    large = ops.gt(s, ops.broadcast_to(cut, s.type.shape))
    rank = ops.reduce_sum(ops.convert(large, "i64"), (last,))
    resid = None
    if driver != "gelsy" and m > k and composites_linalg._concrete_bool(
            ops.eq(ops.reduce_min(rank, axes=tuple(range(len(batch)))) if batch else rank,
                   ops.full((), k, "i64"))):
        r = ops.sub(b, matmul(a, x))
        resid = ops.reduce_sum(ops.mul(r, r), (len(batch),))
        if vector:
            resid = ops.reshape(resid, batch)
    if vector:
        x = ops.reshape(x, batch + (k,))
    tag_outputs((x,) if resid is None else (x, resid), "LinalgLstsqBackward0", (a, B._n))
    empty = factory.tensor(np.zeros((0,), {"f32": np.float32, "f64": np.float64}[dt]))
    sv = Tensor._wrap(s).detach() if driver in ("gelsd", "gelss") else empty
    return _LstsqResult(Tensor._wrap(x), empty if resid is None else Tensor._wrap(resid),
                        Tensor._wrap(rank).detach(), sv)


_QrResult = collections.namedtuple("linalg_qr", ["Q", "R"])


def qr(A, mode="reduced"):  # noqa: N803
    """torch.linalg.qr: geqrf + orgqr as NumPy (the qr primitive); mode 'r' gives an empty Q.
    As PyTorch, the derivative (backward or forward mode) raises for mode 'r' and for mode
    'complete' of a tall matrix: the forward computes, the derivative rule raises PyTorch's
    RuntimeError (the primitive's `refuse`)."""
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of "
                           "'reduced' (default), 'r', or 'complete'")
    a = _matrix(A, "qr")
    m, n = a.type.shape[-2:]
    refuse = "r" if mode == "r" else "complete" if mode == "complete" and m > n else ""
    q, r = ops.qr(a, mode="complete" if mode == "complete" else "reduced",
                  **({"refuse": refuse} if refuse else {}))
    if mode == "r":
        empty = factory.tensor(np.zeros((0,), {"f32": np.float32, "f64": np.float64}[
            a.type.dtype]))
        return _QrResult(empty, _one(r, "LinalgQrBackward0", (a,)))
    tag_outputs((q, r), "LinalgQrBackward0", (a,))
    return _QrResult(Tensor._wrap(q), Tensor._wrap(r))
