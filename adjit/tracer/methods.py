"""Tensor methods and operators (installed on the class) and in-place updates."""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir.core import EAGER, STATE, Node
from .autograd import inplace_result, no_grad, tag, warn_once
from .tensor import Tensor, shape_error, to_np_dtype, float32, float64, int64, int32, bool_
from . import tensor_ops as T
from . import composites as C
from . import linalg as L
from . import tensor_index as I


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
    if not isinstance(other, Tensor):
        # the base as an array of the exponent's shape: pow's vjp for the exponent computes
        # log(base) * out, which needs an operand of the output's shape (a literal has none)
        dt = T.result_dtype(self, other)
        other = Tensor._from_array(np.full(self._n.val.shape, other, dt))
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


_TORCH_NAMES = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
                "bool": "Bool"}


def _bitwise(fn, name):
    """&, |, ^ on bool and integer tensors (no gradient: PyTorch defines none)."""
    def f(self, other, reverse=False):
        dt = T.result_dtype(self, other)
        if dt.kind == "f":
            raise RuntimeError(f'"{name}_cpu" not implemented for '
                               f"'{_TORCH_NAMES[dt.name]}'")
        a = self._n.val
        b = other._n.val if isinstance(other, Tensor) else other
        out = fn(b, a) if reverse else fn(a, b)
        return Tensor._from_array(np.asarray(out).astype(dt, copy=False))
    return f


def _invert(self):
    v = self._n.val
    if v.dtype.kind == "f":
        raise RuntimeError(f"\"bitwise_not_cpu\" not implemented for "
                           f"'{_TORCH_NAMES[v.dtype.name]}'")
    return Tensor._from_array(np.invert(v))


def _scaled(other, alpha):
    """`alpha * other` for add/sub(alpha=): folded into the op (no MulBackward0 node)."""
    if alpha == 1:
        return other
    if isinstance(other, Tensor):
        return Tensor._wrap(ops.mul(other._n, alpha))
    return other * alpha


def _alpha_op(prim, name):
    def f(self, other, alpha=1):
        listed = None if alpha == 1 else T._fn_inputs(self, other)
        return T.binary(prim, self, _scaled(other, alpha), name, listed=listed)
    return f


def _inplace(prim, name, true_div=False):
    def f(self, other, alpha=1):
        listed = None if alpha == 1 else [None, other._n if isinstance(other, Tensor) else None]
        other = _scaled(other, alpha)
        n = self._n
        self._inplace_check()
        src = self
        if n.rec is None and not n.rg and STATE.grad_enabled and isinstance(other, Tensor) \
                and other._n.rg:
            # the op records the old value of a tensor without history: give it a copy, since
            # the storage is about to hold the result
            src = Tensor._wrap(Node(n.val.copy(), n.type, None, EAGER))
        if listed is not None:
            listed[0] = src._n
        res = T.binary(prim, src, other, name, true_div=true_div, listed=listed)
        rv = res._n.val
        if rv.dtype != n.val.dtype and not np.can_cast(rv.dtype, n.val.dtype, "same_kind"):
            raise RuntimeError(f"result type {T._tname(res)} can't be cast to the desired "
                               f"output type {T._tname(self)}")
        if rv.shape != n.val.shape:
            raise shape_error(f"output with shape {list(n.val.shape)} doesn't match the "
                               f"broadcast shape {list(rv.shape)}")
        T.write(n, rv)
        if res._n.rec is not None:
            # the tensor now is the op's result (new grad_fn), sharing the mutated storage
            res._n.val, res._n.ver = n.val, n.ver
            inplace_result(res._n, n)
            self._n = res._n
        return self
    return f


def _viewable(arr, shape):
    """Whether NumPy (and so PyTorch, same stride rules) can reshape `arr` without a copy."""
    if arr.flags.c_contiguous:
        return True
    v = arr.view()
    try:
        v.shape = shape
    except AttributeError:
        return False
    return True


def _shape_arg(self, shape):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    shape = [int(d) for d in shape]
    size = self._n.val.size
    if shape.count(-1) > 1:
        raise shape_error("only one dimension can be inferred")
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1]))
        if known == 0 or size % known:
            raise shape_error(f"shape '{list(shape)}' is invalid for input of size {size}")
        shape[shape.index(-1)] = size // known
    if int(np.prod(shape)) != size:
        raise shape_error(f"shape '{list(shape)}' is invalid for input of size {size}")
    return tuple(shape)


def _view(self, *shape):
    shape = _shape_arg(self, shape)
    if not _viewable(self._n.val, shape):
        raise shape_error("view size is not compatible with input tensor's size and stride (at "
                           "least one dimension spans across two contiguous subspaces). Use "
                           ".reshape(...) instead.")
    return T.view(ops.reshape(self._n, shape), self._n, "ViewBackward0")


def _reshape(self, *shape):
    shape = _shape_arg(self, shape)
    if _viewable(self._n.val, shape):
        return T.view(ops.reshape(self._n, shape), self._n, "ViewBackward0")
    # PyTorch copies (clone) and views the copy (_unsafe_view)
    c = _clone(self)
    return Tensor._wrap(tag(ops.reshape(c._n, shape), "UnsafeViewBackward0", [c._n]))


def _flatten(self, start_dim=0, end_dim=-1):
    nd = self._n.type.ndim
    if nd == 0:
        return _reshape(self, 1)
    s, e = start_dim % nd, end_dim % nd
    if s == e:
        return self
    shp = self._n.type.shape
    return _reshape(self, shp[:s] + (int(np.prod(shp[s:e + 1])),) + shp[e + 1:])


def _dim(self, d):
    nd = max(self._n.type.ndim, 1)
    if not -nd <= d < nd:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, "
                         f"{nd - 1}], but got {d})")
    return d % nd


def _transpose(self, d0, d1):
    nd = self._n.type.ndim
    perm = list(range(nd))
    if nd:
        d0, d1 = _dim(self, d0), _dim(self, d1)
        perm[d0], perm[d1] = perm[d1], perm[d0]
    return T.view(ops.transpose(self._n, tuple(perm)), self._n, "TransposeBackward0")


def _T(self):
    nd = self._n.type.ndim
    if nd != 2:
        warn_once("T", "The use of `x.T` on tensors of dimension other than 2 to reverse their "
                  "shape is deprecated and it will throw an error in a future release. Consider "
                  "`x.mT` to transpose batches of matrices or "
                  "`x.permute(*torch.arange(x.ndim - 1, -1, -1))` to reverse the dimensions of "
                  "a tensor.")
    return T.view(ops.transpose(self._n, tuple(reversed(range(nd)))), self._n,
                  "PermuteBackward0")


def _t(self):
    nd = self._n.type.ndim
    if nd > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {nd}D")
    return T.view(ops.transpose(self._n, tuple(reversed(range(nd)))), self._n, "TBackward0")


def _permute(self, *dims):
    dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    nd = self._n.type.ndim
    if len(dims) != nd:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does "
                           f"not match the length of the desired ordering of dimensions i.e. "
                           f"input.dim() = {nd} is not equal to len(dims) = {len(dims)}")
    perm = tuple(_dim(self, d) for d in dims)
    return T.view(ops.transpose(self._n, perm), self._n, "PermuteBackward0")


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
        new, name = tuple(d for d in shp if d != 1), "SqueezeBackward0"
    else:
        dims = {_dim(self, d) for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}
        new = tuple(d for i, d in enumerate(shp) if not (i in dims and d == 1))
        name = "SqueezeBackward2" if isinstance(dim, (tuple, list)) else "SqueezeBackward1"
    return T.view(ops.reshape(self._n, new), self._n, name)


def _unsqueeze(self, dim):
    shp = list(self._n.type.shape)
    nd = len(shp) + 1
    if not -nd <= dim < nd:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, "
                         f"{nd - 1}], but got {dim})")
    shp.insert(dim % nd, 1)
    return T.view(ops.reshape(self._n, tuple(shp)), self._n, "UnsqueezeBackward0")


def _expand(self, *sizes):
    sizes = sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    shp = self._n.type.shape
    nd = len(sizes) - len(shp)
    if nd < 0:
        raise shape_error(f"expand(torch.FloatTensor{{{list(shp)}}}, size={list(sizes)}): the "
                           "number of sizes provided ({len(sizes)}) must be greater or equal to "
                           f"the number of dimensions in the tensor ({len(shp)})")
    target = tuple(s if s != -1 else shp[i - nd] for i, s in enumerate(sizes))
    for i, (have, want) in enumerate(zip(shp, target[nd:])):
        if have != want and have != 1:
            raise shape_error(f"The expanded size of the tensor ({want}) must match the "
                               f"existing size ({have}) at non-singleton dimension {i + nd}.  "
                               f"Target sizes: {list(sizes)}.  Tensor sizes: {list(shp)}")
    return T.view(ops.broadcast_to(self._n, target), self._n, "ExpandBackward0")


def _clone(self):
    n = self._n
    out = T.fresh(n, n) if n.rg and STATE.grad_enabled else Node(n.val, n.type, None, EAGER)
    out.val = n.val.copy()  # a clone owns its storage
    out.ver = [0]
    return Tensor._wrap(tag(out, "CloneBackward0", [n]))


def _mm(self, other):
    if self.dim() != 2:
        raise RuntimeError("self must be a matrix")
    if other.dim() != 2:
        raise RuntimeError("mat2 must be a matrix")
    return L.matmul(self, other)


def _dot(self, other):
    if self.dim() != 1 or other.dim() != 1:
        raise RuntimeError(f"1D tensors expected, but got {self.dim()}D and {other.dim()}D "
                           "tensors")
    return L.matmul(self, other)


_GRAD_FN = {"log1p": "Log1P"}  # PyTorch's spelling where it is not name.capitalize()


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
    t.__matmul__ = lambda s, o: L.matmul(s, o)
    t.__rmatmul__ = lambda s, o: L.matmul(o, s)
    t.__floordiv__ = lambda s, o: T.floordiv(s, o)
    t.__rfloordiv__ = lambda s, o: T.floordiv(s, o, reverse=True)
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
    t.add_ = t.__iadd__
    t.sub_ = t.__isub__
    t.mul_ = t.__imul__
    t.div_ = t.__itruediv__
    for name, fn in (("and", np.bitwise_and), ("or", np.bitwise_or), ("xor", np.bitwise_xor)):
        op = _bitwise(fn, f"bitwise_{name}")
        setattr(t, f"__{name}__", op)
        setattr(t, f"__r{name}__", (lambda o: lambda s, x: o(s, x, reverse=True))(op))
        setattr(t, f"bitwise_{name}", op)
    t.__invert__ = _invert
    t.logical_not = lambda s: Tensor._from_array(np.logical_not(s._n.val))
    t.unbind = I.unbind
    t.__getitem__ = I.getitem
    t.__setitem__ = I.setitem
    for name in ("exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "log1p", "expm1", "rsqrt"):
        prim = name
        setattr(t, name, (lambda p, nm: lambda s: T.unary(getattr(ops, p), T._float(s), nm))(
            prim, _GRAD_FN.get(name, name.capitalize()) + "Backward0"))
    t.abs = t.__abs__
    t.neg = t.__neg__
    t.sigmoid = lambda s: T.unary(ops.logistic, T._float(s), "SigmoidBackward0")
    t.relu = lambda s: Tensor._wrap(tag(C.relu(s._n), "ReluBackward0", [s._n]))
    t.sign = lambda s: T.unary(ops.sign, s, "SignBackward0")
    t.pow = _pow
    t.add, t.sub, t.mul = _alpha_op("add", "AddBackward0"), _alpha_op("sub", "SubBackward0"), \
        t.__mul__
    t.div = t.__truediv__
    t.matmul = t.__matmul__
    t.mm = _mm
    t.dot = _dot
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
    t.reshape = _reshape
    t.view_as = lambda s, o: _view(s, o.shape)
    t.flatten = _flatten
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
