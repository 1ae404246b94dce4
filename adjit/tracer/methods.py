"""Tensor methods and operators (installed on the class) and in-place updates."""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir.core import STATE
from .autograd import no_grad, tag
from .tensor import Tensor, to_np_dtype, float32, float64, int64, int32, bool_
from . import tensor_ops as T
from . import composites as C


def _r(prim, name):
    return lambda self, other: T.binary(prim, other, self, name,
                                         listed=[self._n, None] if not isinstance(other, Tensor)
                                         else None)


def _rsub(self, other):
    # `10 - x`: PyTorch records RsubBackward1 listing only the tensor
    return T.binary("sub", other, self, "RsubBackward1", listed=[self._n])


def _rdiv(self, other):
    # `2 / x` is reciprocal then mul in PyTorch
    x = T._float(self)
    r = Tensor._wrap(tag(ops.div(1.0, x._n), "ReciprocalBackward0", [self._n]))
    return T.binary("mul", r, other, "MulBackward0")


def _pow(self, other):
    if isinstance(other, Tensor):
        return T.binary("pow", self, other, "PowBackward1")
    dt = T.result_dtype(self, other)
    x = ops.convert(self._n, dt)
    if isinstance(other, (int, np.integer)) and dt.kind in "iu" and other < 0:
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    return Tensor._wrap(tag(ops.pow(x, other), "PowBackward0", [self._n]))


def _rpow(self, other):
    return T.binary("pow", other, self, "PowBackward2", listed=[self._n])


def _cmp(prim):
    def f(self, other):
        other = other if not isinstance(other, (list, tuple)) else Tensor._from_array(
            np.asarray(other))
        dt = T.result_dtype(self, other)
        x, y = T._prep(self, other, dt)
        with no_grad():
            return Tensor._wrap(getattr(ops, prim)(x, y))
    return f


def _inplace(prim, name, true_div=False):
    def f(self, other):
        n = self._n
        self._inplace_check()
        res = T.binary(prim, self, other, name, true_div=true_div)
        rv = res._n.val
        if rv.dtype != n.val.dtype and not np.can_cast(rv.dtype, n.val.dtype, "same_kind"):
            raise RuntimeError(f"result type {T._tname(res).replace('Long', 'Long')} can't be "
                               f"cast to the desired output type {T._tname(self)}")
        if rv.shape != n.val.shape:
            raise RuntimeError(f"output with shape {list(n.val.shape)} doesn't match the "
                               f"broadcast shape {list(rv.shape)}")
        _write(n, rv)
        if res._n.rec is not None:
            # the tensor now is the op's result (new grad_fn), sharing the mutated storage
            res._n.val, res._n.ver = n.val, n.ver
            self._n = res._n
        return self
    return f


def _write(n, value):
    if not n.val.flags.writeable:
        n.val = n.val.copy()
    np.copyto(n.val, value, casting="unsafe")
    n.ver[0] += 1


def _setitem(self, idx, value):
    n = self._n
    if n.rec is None and n.rg and STATE.grad_enabled:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an "
                           "in-place operation.")
    if isinstance(idx, Tensor):
        idx = idx._n.val
    elif isinstance(idx, tuple):
        idx = tuple(i._n.val if isinstance(i, Tensor) else i for i in idx)
    value_rg = isinstance(value, Tensor) and value._n.rg
    if not STATE.grad_enabled or not (n.rg or value_rg):
        v = value._n.val if isinstance(value, Tensor) else value
        if not n.val.flags.writeable:
            n.val = n.val.copy()
        n.val[idx] = v
        n.ver[0] += 1
        return
    # differentiable assignment: positions are concrete, so it is a select + scatter
    size = n.val.size
    pos = np.arange(size).reshape(n.val.shape)[idx]
    keep = np.ones(size, bool)
    keep[pos.ravel()] = False
    v = value if isinstance(value, Tensor) else Tensor._from_array(
        np.asarray(value, n.val.dtype))
    vb = ops.broadcast_to(ops.convert(v._n, n.type.dtype), pos.shape)
    flat = ops.reshape(n, (size,))
    base = ops.select(keep, flat, ops.zeros((size,), n.type.dtype))
    new = ops.scatter_add(base, pos.ravel().astype(np.int64), ops.reshape(vb, (pos.size,)),
                          axis=0)
    out = tag(ops.reshape(new, n.type.shape), "CopySlices", [n, v._n])
    _write(n, out.val)
    out.val, out.ver = n.val, n.ver
    self._n = out


def _view(self, *shape):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    shape = list(shape)
    size = self._n.val.size
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1]))
        if known == 0 or size % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {size}")
        shape[shape.index(-1)] = size // known
    if int(np.prod(shape)) != size:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {size}")
    return Tensor._wrap(tag(ops.reshape(self._n, tuple(shape)), "ViewBackward0", [self._n]))


def _transpose(self, d0, d1):
    nd = self._n.type.ndim
    perm = list(range(nd))
    d0, d1 = d0 % max(nd, 1), d1 % max(nd, 1)
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return Tensor._wrap(tag(ops.transpose(self._n, tuple(perm)), "TransposeBackward0",
                            [self._n]))


def _T(self):
    nd = self._n.type.ndim
    return Tensor._wrap(tag(ops.transpose(self._n, tuple(reversed(range(nd)))),
                            "PermuteBackward0", [self._n]))


def _t(self):
    if self._n.type.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                           f"{self._n.type.ndim}D")
    nd = self._n.type.ndim
    return Tensor._wrap(tag(ops.transpose(self._n, tuple(reversed(range(nd)))), "TBackward0",
                            [self._n]))


def _permute(self, *dims):
    dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    return Tensor._wrap(tag(ops.transpose(self._n, tuple(d % self._n.type.ndim for d in dims)),
                            "PermuteBackward0", [self._n]))


def _to(self, *args, **kwargs):
    dt = kwargs.get("dtype")
    for a in args:
        if not isinstance(a, str):
            dt = a
    if dt is None or to_np_dtype(dt) == self._n.val.dtype:
        return self
    return Tensor._wrap(tag(ops.convert(self._n, to_np_dtype(dt)), "ToCopyBackward0",
                            [self._n]))


def _squeeze(self, dim=None):
    shp = self._n.type.shape
    if dim is None:
        new = tuple(d for d in shp if d != 1)
    else:
        dim %= max(len(shp), 1)
        new = tuple(d for i, d in enumerate(shp) if not (i == dim and d == 1))
    return Tensor._wrap(tag(ops.reshape(self._n, new), "SqueezeBackward0", [self._n]))


def _unsqueeze(self, dim):
    shp = list(self._n.type.shape)
    dim = dim if dim >= 0 else dim + len(shp) + 1
    shp.insert(dim, 1)
    return Tensor._wrap(tag(ops.reshape(self._n, tuple(shp)), "UnsqueezeBackward0", [self._n]))


def _expand(self, *sizes):
    sizes = sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    shp = self._n.type.shape
    nd = len(sizes) - len(shp)
    target = tuple(s if s != -1 else shp[i - nd] for i, s in enumerate(sizes))
    return Tensor._wrap(tag(ops.broadcast_to(self._n, target), "ExpandBackward0", [self._n]))


def _clone(self):
    return Tensor._wrap(tag(ops.reshape(ops.add(self._n, 0) if False else self._n,
                                        self._n.type.shape), "CloneBackward0", [self._n])
                        ) if self._n.rg else Tensor._from_array(self._n.val.copy())


def install():
    t = Tensor
    t.__add__ = lambda s, o: T.binary("add", s, o, "AddBackward0")
    t.__radd__ = _r("add", "AddBackward0")
    t.__sub__ = lambda s, o: T.binary("sub", s, o, "SubBackward0")
    t.__rsub__ = _rsub
    t.__mul__ = lambda s, o: T.binary("mul", s, o, "MulBackward0")
    t.__rmul__ = _r("mul", "MulBackward0")
    t.__truediv__ = lambda s, o: T.binary("div", s, o, "DivBackward0", true_div=True)
    t.__rtruediv__ = _rdiv
    t.__pow__ = _pow
    t.__rpow__ = _rpow
    t.__matmul__ = lambda s, o: T.matmul(s, o)
    t.__rmatmul__ = lambda s, o: T.matmul(o, s)
    t.__neg__ = lambda s: T.unary(ops.neg, s, "NegBackward0")
    t.__pos__ = lambda s: s
    t.__abs__ = lambda s: T.unary(ops.abs, s, "AbsBackward0")
    for name, prim in (("lt", "lt"), ("le", "le"), ("gt", "gt"), ("ge", "ge"), ("eq", "eq"),
                       ("ne", "ne")):
        setattr(t, f"__{name}__", _cmp(prim))
        setattr(t, name, _cmp(prim))
    t.__iadd__ = _inplace("add", "AddBackward0")
    t.__isub__ = _inplace("sub", "SubBackward0")
    t.__imul__ = _inplace("mul", "MulBackward0")
    t.__itruediv__ = _inplace("div", "DivBackward0", true_div=True)
    t.add_ = lambda s, o, alpha=1: t.__iadd__(s, o if alpha == 1 else o * alpha)
    t.sub_ = lambda s, o, alpha=1: t.__isub__(s, o if alpha == 1 else o * alpha)
    t.mul_ = t.__imul__
    t.div_ = t.__itruediv__
    t.__getitem__ = T.getitem
    t.__setitem__ = _setitem
    for name in ("exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "log1p", "expm1", "rsqrt"):
        prim = name
        setattr(t, name, (lambda p, nm: lambda s: T.unary(getattr(ops, p), T._float(s), nm))(
            prim, name.capitalize() + "Backward0"))
    t.abs = t.__abs__
    t.neg = t.__neg__
    t.sigmoid = lambda s: T.unary(ops.logistic, T._float(s), "SigmoidBackward0")
    t.relu = lambda s: Tensor._wrap(tag(C.relu(s._n), "ReluBackward0", [s._n]))
    t.sign = lambda s: T.unary(ops.sign, s, "SignBackward0")
    t.pow = _pow
    t.add, t.sub, t.mul = t.__add__, t.__sub__, t.__mul__
    t.div = t.__truediv__
    t.matmul = t.__matmul__
    t.mm = lambda s, o: T.matmul(s, o)
    t.dot = lambda s, o: T.matmul(s, o)
    t.sum = T.tsum
    t.mean = T.mean
    t.max = lambda s, dim=None, keepdim=False: T.extremum(s, dim, keepdim, True)
    t.min = lambda s, dim=None, keepdim=False: T.extremum(s, dim, keepdim, False)
    t.argmax = lambda s, dim=None, keepdim=False: C.targ(s, dim, keepdim, True)
    t.argmin = lambda s, dim=None, keepdim=False: C.targ(s, dim, keepdim, False)
    t.norm = C.norm
    t.var = C.var
    t.std = C.std
    t.prod = C.prod
    t.softmax = C.softmax
    t.log_softmax = C.log_softmax
    t.view = _view
    t.reshape = _view
    t.view_as = lambda s, o: _view(s, o.shape)
    t.flatten = lambda s: _view(s, -1)
    t.T = property(_T)
    t.mT = property(lambda s: _transpose(s, -2, -1))
    t.t = _t
    t.transpose = _transpose
    t.permute = _permute
    t.squeeze = _squeeze
    t.unsqueeze = _unsqueeze
    t.expand = _expand
    t.clone = _clone
    t.to = _to
    t.type = lambda s, dt=None: _to(s, dt) if dt is not None else \
        f"torch.{T._tname(s)}Tensor"
    t.float = lambda s: _to(s, float32)
    t.double = lambda s: _to(s, float64)
    t.long = lambda s: _to(s, int64)
    t.int = lambda s: _to(s, int32)
    t.bool = lambda s: _to(s, bool_)
    t.is_floating_point = lambda s: s._n.val.dtype.kind == "f"
    t.contiguous = lambda s: s
    t.cpu = lambda s: s
    t.clamp = C.clamp
    t.clip = C.clamp
    t.cumsum = C.cumsum
