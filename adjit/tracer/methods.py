"""Tensor methods and operators (installed on the class) and in-place updates."""
from __future__ import annotations

import numpy as np

from .._fp import FP_QUIET, fp_reset as _fp_reset, fp_set as _fp_set
from ..ir import ops
from ..ir.core import EAGER, REGISTRY, STATE, Node, bind, on_register, record_eager
from .grad_fn import inplace_result, tag
from .grad_mode import no_grad
from .tape import TapeNode, adopt_storage
from .tensor import Tensor, shape_error, float32, float64, int64, int32, bool_
from . import tensor_ops
from . import torch_composites
from . import linalg
from . import shape_ops
from . import tensor_index
from . import views


def _rsub(self, other):
    # `10 - x`: PyTorch records RsubBackward1 listing only the tensor
    return tensor_ops.binary("sub", other, self, "RsubBackward1", listed=[self._n])


def _rdiv(self, other):
    # `2 / x` is reciprocal then mul in PyTorch
    x = tensor_ops._float(self)
    r = Tensor._wrap(tag(ops.div(1.0, x._n), "ReciprocalBackward0", [self._n]))
    return tensor_ops.binary("mul", r, other, "MulBackward0")


_POW = REGISTRY["pow"]


def _pow(self, other):
    to = type(other)
    if to is float or to is int:
        n = self._n
        if n.type.dtype in tensor_ops._FLOAT_NAMES:  # nothing to promote
            out = record_eager(_POW, (n, other), {}) if n.trace is EAGER and \
                n.requires_grad and STATE.grad_enabled else bind(_POW, n, other)
            return Tensor._wrap(tag(out, "PowBackward0", (n,)))
    if isinstance(other, Tensor):
        return tensor_ops.binary("pow", self, other, "PowBackward1")
    if tensor_ops.traced_number(other):  # jit's traced Python number: a 0-d operand
        return tensor_ops.binary("pow", self, other, "PowBackward0", listed=[self._n])
    dt = tensor_ops.result_dtype(self, other)
    x = ops.convert(self._n, dt)
    if isinstance(other, (int, np.integer)) and dt.kind in "iu" and other < 0:
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    return Tensor._wrap(tag(ops.pow(x, other), "PowBackward0", [self._n]))


def _rpow(self, other):
    if not isinstance(other, Tensor) and not tensor_ops.traced_number(other):
        # the base as an array of the exponent's shape: pow's vjp for the exponent computes
        # log(base) * out, which needs an operand of the output's shape (a literal has none)
        dt = tensor_ops.result_dtype(self, other)
        other = Tensor._from_array(np.full(self._n.val.shape, other, dt))
    return tensor_ops.binary("pow", other, self, "PowBackward2", listed=[self._n])


def _cmp(prim):
    def f(self, other):
        other = other if not isinstance(other, (list, tuple)) else Tensor._from_array(
            np.asarray(other))
        dt = tensor_ops.result_dtype(self, other)
        x, y = tensor_ops._prep(self, other, dt)
        with no_grad():
            return Tensor._wrap(getattr(ops, prim)(x, y))
    return f


_TORCH_NAMES = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
                "bool": "Bool"}


def _bitwise(prim, name):
    """&, |, ^ on bool and integer tensors (no gradient: PyTorch defines none): the and / or /
    xor primitives (bitwise on integers), so a jitted function records them."""
    def f(self, other, reverse=False):
        dt = tensor_ops.result_dtype(self, other)
        if dt.kind == "f":
            raise RuntimeError(f'"{name}_cpu" not implemented for '
                               f"'{_TORCH_NAMES[dt.name]}'")
        if isinstance(other, (list, tuple)):
            other = Tensor._from_array(np.asarray(other))
        x, y = tensor_ops._prep(self, other, dt)
        if reverse:
            x, y = y, x
        with no_grad():
            out = bind(REGISTRY[prim], x, y)
        if isinstance(out, Node):
            return Tensor._wrap(out)
        return Tensor._from_array(np.asarray(out).astype(dt, copy=False))
    return f


def _invert(self):
    v = self._n.val
    if v.dtype.kind == "f":
        raise RuntimeError(f"\"bitwise_not_cpu\" not implemented for "
                           f"'{_TORCH_NAMES[v.dtype.name]}'")
    with no_grad():
        return Tensor._wrap(ops.__getattr__("not")(self._n))


def _logical_not(self):
    n = self._n
    with no_grad():
        b = n if n.type.dtype == "bool" else ops.ne(n, 0)
        return Tensor._wrap(ops.__getattr__("not")(b))


def _scaled(other, alpha):
    """`alpha * other` for add/sub(alpha=): folded into the op (no MulBackward0 node)."""
    if tensor_ops.traced_number(alpha):  # jit's traced Python number
        return Tensor._wrap(tensor_ops.binary("mul", other, alpha, "MulBackward0")._n) \
            if isinstance(other, Tensor) else other * alpha
    if alpha == 1:
        return other
    if isinstance(other, Tensor):
        return Tensor._wrap(ops.mul(other._n, alpha))
    return other * alpha


def _alpha_op(prim, name):
    def f(self, other, alpha=1):
        listed = None if alpha == 1 else tensor_ops._fn_inputs(self, other)
        return tensor_ops.binary(prim, self, _scaled(other, alpha), name, listed=listed)
    return f


_UFUNC = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}


def _inplace(prim, name, true_div=False):
    ufunc = _UFUNC[prim]

    def f(self, other, alpha=1):
        if alpha == 1 and not STATE.grad_enabled and type(self) is Tensor and \
                self._n.trace is EAGER:
            # under no_grad nothing is recorded: compute into the storage (an SGD update).
            # (Not on a value a transform traces: jit records it under no_grad too)
            n = self._n
            v = n.val
            to = type(other)
            if to is Tensor:
                w = other._n.val
                ok = w.dtype == v.dtype and w.shape == v.shape and other._n.trace is EAGER
            else:
                ok = (to is float or to is int) and v.dtype.kind == "f"
                w = np.asarray(other, v.dtype) if ok else None
            if ok and v.dtype.kind == "f":
                if not v.flags.writeable:
                    tensor_ops.refuse_overlap(self, v)
                    n.val = v = v.copy()
                token = _fp_set(FP_QUIET)  # nan/inf silently (see adjit/_fp.py)
                try:
                    ufunc(v, w, out=v)
                finally:
                    _fp_reset(token)
                if type(n) is TapeNode:  # (a value traced by a transform has no counter)
                    n.version[0] += 1
                return self
        listed = None if alpha == 1 else [None, other._n if isinstance(other, Tensor) else None]
        other = _scaled(other, alpha)
        n = self._n
        self._inplace_check()
        src = self
        if n.rec is None and not n.requires_grad \
                and (isinstance(other, Tensor) or tensor_ops.traced_number(other)) \
                and other._n.requires_grad and (STATE.grad_enabled or
                                                 other._n.trace is not EAGER):
            # the op records the old value of a tensor without history: give it a copy, since
            # the storage is about to hold the result (jit's traced number too; a transform
            # records under no_grad as well)
            src = Tensor._wrap(TapeNode(n.val.copy(), n.type, None, EAGER))
        if listed is not None:
            listed[0] = src._n
        res = tensor_ops.binary(prim, src, other, name, true_div=true_div, listed=listed)
        return _write_back(self, n, res)
    return f


def _write_back(self, n, res):
    """The tail of an in-place op: the out-of-place result `res` written into the storage of
    `self` (whose node was `n`), with PyTorch's cast and shape checks; `self` then is that
    result (its grad_fn), sharing the mutated storage."""
    rv = res._n.val
    if not n.val.flags.writeable:
        tensor_ops.refuse_overlap(self, n.val)
    if rv.dtype != n.val.dtype and not np.can_cast(rv.dtype, n.val.dtype, "same_kind"):
        raise RuntimeError(f"result type {tensor_ops._tname(res)} can't be cast to the desired "
                           f"output type {tensor_ops._tname(self)}")
    if rv.shape != n.val.shape:
        raise shape_error(f"output with shape {list(n.val.shape)} doesn't match the "
                          f"broadcast shape {list(rv.shape)}")
    tensor_ops.write(n, rv)
    if res._n.rec is not None:
        adopt_storage(res._n, n)
        inplace_result(res._n, n)
        self._n = res._n
        views.rebase(self)
    return self


def _copy_(self, src, non_blocking=False):
    """`x.copy_(src)`: src broadcast to x's shape and cast to x's dtype (any cast, as
    PyTorch's), written into x's storage; CopyBackwards passes no gradient to x's old value."""
    if not isinstance(src, Tensor):
        raise TypeError(f"copy_(): argument 'other' (position 1) must be Tensor, not "
                        f"{type(src).__name__}")
    self._inplace_check()
    n, s = self._n, src._n
    shp, dt = n.type.shape, n.type.dtype
    full = tensor_ops.broadcast_shapes(shp, s.type.shape)  # (PyTorch's message if not)
    if full != tuple(shp):
        raise shape_error(f"output with shape {list(shp)} doesn't match the broadcast shape "
                          f"{list(full)}")
    out = ops.broadcast_to(s if s.type.dtype == dt else ops.convert(s, dt), shp)
    if n.requires_grad and STATE.grad_enabled:
        out = ops.select(np.zeros(shp, bool), n, out)  # zero gradient to the old value
    return _write_back(self, n, Tensor._wrap(tag(out, "CopyBackwards", [n, s])))


def _clamp_inplace(fn):
    """`x.clamp_(min, max)` / `x.clip_(...)` (and `adjit.clamp_`): clamp computed as the
    out-of-place op (PyTorch's argument checks and ClampBackward0/1), written into x's storage;
    x then is that result, as the other in-place ops (`_inplace`)."""
    def f(self, min=None, max=None):  # noqa: A002
        min, max = torch_composites._clamp_bounds(min, max, fn + "_")  # (PyTorch's parser first)
        self._inplace_check()
        n = self._n
        src = self
        if n.rec is None and not n.requires_grad and STATE.grad_enabled and any(
                isinstance(b, Tensor) and b._n.requires_grad for b in (min, max)):
            # the bound's derivative reads x's old value, which the storage is about to lose
            src = Tensor._wrap(TapeNode(n.val.copy(), n.type, None, EAGER))
        res = torch_composites._clamp(src, min, max, fn + "_")
        return _write_back(self, n, res)
    f.__name__ = fn + "_"
    return f


def _maxmin(prim):
    """`x.maximum(y)` / `adjit.maximum(x, y)`: elementwise, with PyTorch's promotion; at a tie
    each operand gets half the gradient (as PyTorch's MaximumBackward0 / MinimumBackward0)."""
    grad_fn = prim.capitalize() + "Backward0"

    def f(self, other):
        if not isinstance(other, Tensor):
            raise TypeError(f"{prim}(): argument 'other' (position 1) must be Tensor, not "
                            f"{type(other).__name__}")
        return tensor_ops.binary(prim, self, other, grad_fn)
    f.__name__ = prim
    return f


def _mm(self, other):
    if self.dim() != 2:
        raise RuntimeError("self must be a matrix")
    if other.dim() != 2:
        raise RuntimeError("mat2 must be a matrix")
    return linalg.matmul(self, other)


def _dot(self, other):
    if self.dim() != 1 or other.dim() != 1:
        raise RuntimeError(f"1D tensors expected, but got {self.dim()}D and {other.dim()}D "
                           "tensors")
    return linalg.matmul(self, other)


def _unary_method(p):
    """The Tensor method of a unary primitive record (`Primitive.torch`, `.grad_fn`): a float
    function computes an integer tensor in the default float dtype."""
    floats_only = not any(d in ("i32", "i64") for d in p.dtypes)
    name = p.grad_fn

    def op(n):
        return bind(p, n)

    def method(self):
        return tensor_ops.unary(op, tensor_ops._float(self) if floats_only else self, name)
    method.__name__ = method.__qualname__ = p.torch[0]
    method.generated_from = p
    return method


def _add_methods(p):
    if p.kind == "unary" and p.nout == 1 and p.torch:
        m = _unary_method(p)
        for name in p.torch:
            setattr(Tensor, name, m)


def _remove_methods(p):
    for name in p.torch:
        if getattr(getattr(Tensor, name, None), "generated_from", None) is p:
            delattr(Tensor, name)


def _new(make):
    """x.new_zeros(...) & co: a new tensor with x's dtype unless one is given."""
    def f(self, *args, dtype=None, requires_grad=False, **kwargs):
        from . import factory
        return getattr(factory, make)(*args, dtype=dtype or self.dtype,
                                      requires_grad=requires_grad, **kwargs)
    return f


def install():
    t = Tensor
    t.__add__ = tensor_ops.make_binop("add", "AddBackward0")
    t.__radd__ = tensor_ops.make_rbinop("add", "AddBackward0")
    t.__sub__ = tensor_ops.make_binop("sub", "SubBackward0")
    t.__rsub__ = _rsub
    t.__mul__ = tensor_ops.make_binop("mul", "MulBackward0")
    t.__rmul__ = tensor_ops.make_rbinop("mul", "MulBackward0")
    t.__truediv__ = tensor_ops.make_binop("div", "DivBackward0", true_div=True)
    t.__rtruediv__ = _rdiv
    t.__pow__ = _pow
    t.__rpow__ = _rpow
    t.__matmul__ = linalg.matmul
    t.__rmatmul__ = lambda s, o: linalg.matmul(o, s)
    t.__floordiv__ = lambda s, o: tensor_ops.floordiv(s, o)
    t.__rfloordiv__ = lambda s, o: tensor_ops.floordiv(s, o, reverse=True)
    t.__neg__ = lambda s: tensor_ops.unary(ops.neg, s, "NegBackward0")
    t.__pos__ = lambda s: s
    t.__abs__ = lambda s: tensor_ops.unary(ops.abs, s, "AbsBackward0")
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
    for name in ("and", "or", "xor"):
        op = _bitwise(name, f"bitwise_{name}")
        setattr(t, f"__{name}__", op)
        setattr(t, f"__r{name}__", (lambda o: lambda s, x: o(s, x, reverse=True))(op))
        setattr(t, f"bitwise_{name}", op)
    t.__invert__ = _invert
    t.logical_not = _logical_not
    t.unbind = tensor_index.unbind
    t.new_tensor, t.new_zeros, t.new_ones = _new("tensor"), _new("zeros"), _new("ones")
    t.new_full, t.new_empty = _new("full"), _new("empty")
    t.__getitem__ = tensor_index.getitem
    t.__setitem__ = tensor_index.setitem
    on_register(_add_methods, _remove_methods)  # exp, sin, sigmoid, sign, floor, ...
    t.abs = t.__abs__
    t.neg = t.__neg__
    t.relu = torch_composites.relu
    t.pow = _pow
    t.add, t.sub, t.mul = _alpha_op("add", "AddBackward0"), _alpha_op("sub", "SubBackward0"), \
        t.__mul__
    t.div = t.__truediv__
    t.matmul = t.__matmul__
    t.mm = _mm
    t.dot = _dot
    t.sum = tensor_ops.tsum
    t.mean = tensor_ops.mean
    t.max = lambda s, dim=None, keepdim=False: tensor_ops.extremum(s, dim, keepdim, True)
    t.min = lambda s, dim=None, keepdim=False: tensor_ops.extremum(s, dim, keepdim, False)
    t.amax = tensor_ops.amax_call(True, False)
    t.amin = tensor_ops.amax_call(False, False)
    t.argmax = lambda s, dim=None, keepdim=False: torch_composites.targ(s, dim, keepdim, True)
    t.argmin = lambda s, dim=None, keepdim=False: torch_composites.targ(s, dim, keepdim, False)
    t.all = lambda s, dim=None, keepdim=False: torch_composites.tall(s, dim, keepdim)
    t.any = lambda s, dim=None, keepdim=False: torch_composites.tall(s, dim, keepdim,
                                                                     is_all=False)
    t.norm = torch_composites.norm
    t.var = torch_composites.var
    t.std = torch_composites.std
    t.prod = torch_composites.prod
    t.softmax = torch_composites.softmax
    t.log_softmax = torch_composites.log_softmax
    t.logsumexp = torch_composites.logsumexp
    t.view = shape_ops.view
    t.reshape = shape_ops.reshape
    t.view_as = lambda s, o: shape_ops.view(s, o.shape)
    t.flatten = shape_ops.flatten
    t.T = property(shape_ops.reverse_dims)
    t.mT = property(lambda s: shape_ops.transpose(s, -2, -1))
    t.t = shape_ops.matrix_t
    t.transpose = shape_ops.transpose
    t.permute = shape_ops.permute
    t.squeeze = shape_ops.squeeze
    t.unsqueeze = shape_ops.unsqueeze
    t.expand = shape_ops.expand
    t.clone = shape_ops.clone
    t.to = shape_ops.to
    t.type = lambda s, dt=None: shape_ops.to(s, dt) if dt is not None else \
        f"torch.{tensor_ops._tname(s)}Tensor"
    t.float = lambda s: shape_ops.to(s, float32)
    t.double = lambda s: shape_ops.to(s, float64)
    t.long = lambda s: shape_ops.to(s, int64)
    t.int = lambda s: shape_ops.to(s, int32)
    t.bool = lambda s: shape_ops.to(s, bool_)
    t.is_floating_point = lambda s: s._n.val.dtype.kind == "f"
    t.contiguous = lambda s: s
    t.cpu = lambda s: s
    t.maximum = _maxmin("maximum")
    t.minimum = _maxmin("minimum")
    t.clamp = torch_composites.clamp
    t.clip = torch_composites.clip
    t.clamp_, t.clip_ = _clamp_inplace("clamp"), _clamp_inplace("clip")
    t.copy_ = _copy_
    t.cumsum = torch_composites.cumsum
