"""`adjit.special`: torch.special's functions on adjit Tensors, with PyTorch's names, dtypes
(an integer tensor computes in the default float dtype) and grad_fn names. The values and
derivatives are the primitives of adjit/ir/prims/special.py (SciPy's values)."""
from __future__ import annotations

from .ir import composites as _C
from .ir import ops as _ops
from .ir.core import REGISTRY as _R, bind as _bind
from .ir.prims import special as _S
from .tracer import tensor_ops as _T
from .tracer import torch_composites
from .tracer.tensor import Tensor as _Tensor

__all__ = ["expit", "logit", "erf", "erfc", "erfinv", "gammaln", "digamma", "psi", "polygamma",
           "xlogy", "xlog1py", "log_ndtr", "ndtr", "ndtri", "i0e", "i1e", "entr", "log1p",
           "expm1", "softmax", "log_softmax", "logsumexp"]


def _check(x, fn):
    if not isinstance(x, _Tensor):
        raise TypeError(f"special_{fn}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")


def _unary(fn, grad_fn, name):
    def f(input):
        _check(input, name)
        return _T.unary(fn, _T._float(input), grad_fn)
    f.__name__ = name
    return f


def _prim(name):
    p = _R[name]
    return lambda n: _bind(p, n)


expit = _unary(_prim("logistic"), "SigmoidBackward0", "expit")
erf = _unary(_prim("erf"), "ErfBackward0", "erf")
erfc = _unary(_prim("erfc"), "ErfcBackward0", "erfc")
erfinv = _unary(_prim("erfinv"), "ErfinvBackward0", "erfinv")
gammaln = _unary(_prim("gammaln"), "LgammaBackward0", "gammaln")
digamma = _unary(_prim("digamma"), "DigammaBackward0", "digamma")
psi = digamma
log_ndtr = _unary(_prim("log_ndtr"), "SpecialLogNdtrBackward0", "log_ndtr")
ndtr = _unary(_prim("ndtr"), "MulBackward1", "ndtr")  # PyTorch computes it as a product
ndtri = _unary(_prim("ndtri"), "SpecialNdtriBackward0", "ndtri")
i0e = _unary(_prim("i0e"), "SpecialI0EBackward0", "i0e")
i1e = _unary(_prim("i1e"), "SpecialI1EBackward0", "i1e")
entr = _unary(_S.entr, "SpecialEntrBackward0", "entr")
log1p = _unary(_prim("log1p"), "Log1PBackward0", "log1p")
expm1 = _unary(_prim("expm1"), "Expm1Backward0", "expm1")


def logit(input, eps=None):
    """log(x / (1 - x)), x clamped to [eps, 1 - eps] first when eps is given (PyTorch)."""
    _check(input, "logit")

    def fn(n):
        if eps is not None:  # clamped, the gradient passing at both ends (as PyTorch)
            lo = _ops.full(_ops.shape(n), float(eps), _ops.dtype(n))
            hi = _ops.full(_ops.shape(n), 1.0 - eps, _ops.dtype(n))
            n = _ops.select(_ops.lt(n, float(eps)), lo,
                            _ops.select(_ops.gt(n, 1.0 - eps), hi, n))
        return _S.logit(n)
    return _T.unary(fn, _T._float(input), "LogitBackward0")


def polygamma(n, input):
    """The n-th derivative of digamma (an int order, as PyTorch)."""
    _check(input, "polygamma")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise RuntimeError(f"polygamma(n, x) does not support negative n or non-int n: {n!r}")
    p = _R["polygamma"]
    return _T.unary(lambda x: _bind(p, x, n=n), _T._float(input), "PolygammaBackward0")


def xlogy(input, other):
    """input * log(other), 0 where input == 0 (unless other is NaN)."""
    name = "XlogyBackward0" if isinstance(input, _Tensor) else "XlogyBackward1"
    return _T.binary("xlogy", input, other, name, true_div=True)


def xlog1py(input, other):
    """input * log1p(other), 0 where input == 0 (unless other is NaN)."""
    return _T.binary("xlog1py", input, other, "SpecialXlog1PyBackward0", true_div=True)


def softmax(input, dim, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    return torch_composites.softmax(input, dim)


def log_softmax(input, dim, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    return torch_composites.log_softmax(input, dim)


def logsumexp(input, dim, keepdim=False):
    """log(sum(exp(input))) over `dim` (an int or a tuple of ints), without overflow."""
    _check(input, "logsumexp")
    axes = torch_composites.logsumexp_axes(dim, input._n.type.ndim)  # dim=(): every one
    return _T.unary(lambda x: _C.logsumexp(x, axes, keepdim), _T._float(input),
                    "LogsumexpBackward0")
