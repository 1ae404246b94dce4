"""In-place Tensor methods built on an out-of-place op: `x.sin_()`, `x.relu_()`,
`x.clamp_min_(v)`, ... (one wrapper, a table of names), and the fills `fill_`, `masked_fill(_)`,
`index_fill(_)` with PyTorch's checks and grad_fn names.

Each computes the out-of-place result and writes it into x's storage with
`methods._write_back` (as add_, mul_, clamp_ do): the version counter is bumped, x takes the
result's grad_fn, a view's base is rebased, and `Tensor._inplace_check` refuses what PyTorch
refuses (a leaf requiring grad, a view of one) unless grad mode is off.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..ir import ops
from ..ir.core import EAGER, STATE
from .grad_fn import save_extra, tag
from .methods import _write_back
from .tape import TapeNode
from .tensor import Tensor
from . import tensor_ops

# the out-of-place methods whose `name_` writes the result into the tensor (PyTorch has each)
UNARY = ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh",
         "atanh", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt",
         "tanh", "sigmoid", "relu", "abs", "neg", "reciprocal", "floor", "ceil", "round",
         "trunc", "frac", "sign", "square", "erf", "clamp_min", "clamp_max")


# PyTorch defines no derivative for these in place (it refuses to record them)
_NO_INPLACE_DERIVATIVE = frozenset(("asinh", "acosh", "atanh"))


def _needs_copy(n, args):
    """A tensor without history whose op also reads an operand requiring grad: the recorded op
    must keep its old value, which the storage is about to lose (as clamp_ does)."""
    return n.rec is None and not n.requires_grad and STATE.grad_enabled and any(
        type(a) is Tensor and a._n.requires_grad for a in args)


def inplace_of(name):
    """`x.<name>_(*args)`: x's out-of-place `name` (looked up at the call: the unary methods are
    attached per primitive record), written into x's storage."""
    refuse = name in _NO_INPLACE_DERIVATIVE

    def f(self, *args, **kwargs):
        self._inplace_check()
        n = self._n
        if refuse and n.requires_grad and STATE.grad_enabled:
            raise NotImplementedError(f"the derivative for 'inplace version of {name}' is not "
                                      "implemented.")
        src = _copy_if_needed(self, *args, *kwargs.values())
        return _write_back(self, n, getattr(Tensor, name)(src, *args, **kwargs))
    f.__name__ = f.__qualname__ = name + "_"
    f.__doc__ = f"In-place `{name}`: the result written into this tensor's storage."
    return f


# --- fills ---------------------------------------------------------------------------------
_MASK_NAMES = {"float32": "float", "float64": "double", "int64": "long int", "int32": "int",
               "uint8": "unsigned char", "int16": "short int", "int8": "signed char",
               "float16": "c10::Half"}


def _bad_args(name, args, sig):
    got = ", ".join(type(a).__name__ for a in args)
    return TypeError(f"{name}() received an invalid combination of arguments - got ({got}), but "
                     "expected one of:\n" + "".join(
                         f" * ({s}Tensor value)\n * ({s}Number value)\n" for s in (sig,)))


def _is_number(v):
    return isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating))


def _value(self, value, name, zero_d_msg, args, sig):
    """The fill value as a node of self's dtype (a 0-d tensor: converted, keeping its graph)
    and the tensor to list in the grad_fn (None for a number)."""
    if type(value) is Tensor or isinstance(value, Tensor):
        nd = value._n.type.ndim
        if nd != 0:
            raise RuntimeError(zero_d_msg.format(nd=nd))
        return ops.convert(value._n, self._n.type.dtype), value._n
    if not _is_number(value) and not tensor_ops.traced_number(value):
        raise _bad_args(name, args, sig)
    if tensor_ops.traced_number(value):  # jit's traced Python number: a 0-d operand
        return ops.convert(value._n, self._n.type.dtype), None
    return np.asarray(value).astype(self._n.val.dtype), None


def _filled(self, mask, value, grad_fn, shape=None):
    """self with `value` where `mask` holds (a node or array broadcast with self):
    select(mask, value, self), tagged `grad_fn` listing self and a tensor value."""
    val, listed = value
    n = self._n
    shp = tuple(n.type.shape) if shape is None else shape
    fill = ops.full(shp, val.item(), n.type.dtype) if isinstance(val, np.ndarray) else \
        ops.broadcast_to(val, shp)
    mask = np.broadcast_to(mask, shp) if isinstance(mask, np.ndarray) else \
        ops.broadcast_to(mask, shp)
    out = ops.select(mask, fill, ops.broadcast_to(n, shp))
    return Tensor._wrap(tag(out, grad_fn, [n] if listed is None else [n, listed]))


def _fill(self, value):
    """`x.fill_(value)`: every element set to a number or a 0-d tensor; FillBackward2/3 pass
    no gradient to x's old value and the sum of the gradient to a tensor value."""
    val = _value(self, value, "fill_", "fill_ only supports 0-dimension value tensor but got "
                 "tensor with {nd} dimensions.", (value,), "")
    n = self._n
    self._inplace_check()
    if type(val[0]) is np.ndarray and not (n.requires_grad and STATE.grad_enabled) and \
            n.trace is EAGER:  # nothing to record: a plain write
        return _write_back(self, n, Tensor._wrap(TapeNode(
            np.broadcast_to(val[0], n.val.shape), n.type, None, EAGER)))
    src = _copy_if_needed(self, value)
    mask = np.ones(tuple(n.type.shape), bool)
    return _write_back(self, n, _filled(src, mask, val, "FillBackward2" if val[1] is None
                                        else "FillBackward3"))


def _copy_if_needed(self, *args):
    """self, or a copy without history when the op's other operands require grad
    (`_needs_copy`)."""
    n = self._n
    if _needs_copy(n, args):
        return Tensor._wrap(TapeNode(n.val.copy(), n.type, None, EAGER))
    return self


def _masked_fill(self, mask, value, inplace=False):
    name = "masked_fill_" if inplace else "masked_fill"
    if not isinstance(mask, Tensor):
        raise _bad_args(name, (mask, value), "Tensor mask, ")
    dt = mask._n.val.dtype
    if dt != np.bool_:
        raise RuntimeError("masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{_MASK_NAMES.get(dt.name, dt.name)}")
    val = _value(self, value, name, "masked_fill_ only supports a 0-dimensional value tensor, "
                 "but got tensor with {nd} dimension(s).", (mask, value), "Tensor mask, ")
    grad_fn = "MaskedFillBackward0" if val[1] is None else "MaskedFillBackward1"
    shp = tensor_ops.broadcast_shapes(self._n.type.shape, mask._n.type.shape)
    # (MaskedFillBackward saves the mask)
    return _fill_result(self, mask._n, val, grad_fn, mask._n, value, inplace, shp)


def _fill_result(self, mask, val, grad_fn, saved, value, inplace, shape=None):
    """masked_fill's and index_fill's result (`_filled`), its grad_fn saving `saved` (the
    mask or the index); in place: written into self's storage."""
    if inplace:
        self._inplace_check()
        n = self._n
        res = _filled(_copy_if_needed(self, value), mask, val, grad_fn, shape)
        save_extra(res._n, [saved])
        return _write_back(self, n, res)
    res = _filled(self, mask, val, grad_fn, shape)
    save_extra(res._n, [saved])
    return res


def _index_mask(self, dim, index, name):
    """The bool mask of x's shape (broadcastable) selecting the slices `index` along `dim`,
    with PyTorch's index_fill checks."""
    if not isinstance(index, Tensor):
        return None
    nd = self._n.type.ndim
    axis = tensor_ops.wrap_dim(dim, nd)
    if index._n.val.dtype != np.int64:
        raise IndexError(f"{name}(): Expected dtype int64 for index.")
    if index._n.type.ndim > 1:
        raise RuntimeError("Index has to be a vector/scalar")
    size = self._n.type.shape[axis] if nd else 1
    shape = [1] * nd
    if nd:
        shape[axis] = size
    idx = index._n
    if idx.trace is EAGER:
        iv = np.asarray(idx.val).reshape(-1)
        bad = (iv < -size) | (iv >= size)
        if bad.any():
            raise IndexError(f"index {int(iv[bad][0])} is out of bounds for dimension {axis} "
                             f"with size {size}")
        m = np.zeros(size, bool)
        m[iv] = True
        return m.reshape(shape)
    # a traced index (jit): compare every position with every index
    k = max(idx.type.size, 1)
    flat = ops.reshape(idx, (k,))
    flat = ops.select(ops.lt(flat, 0), ops.add(flat, size), flat)
    pos = np.broadcast_to(np.arange(size, dtype=np.int64).reshape(size, 1), (size, k))
    each = ops.broadcast_to(ops.reshape(flat, (1, k)), (size, k))
    hit = ops.reduce_sum(ops.convert(ops.eq(pos, each), "i64"), (1,))
    return ops.reshape(ops.ne(hit, 0), tuple(shape))


def _index_fill(self, dim, index, value, inplace=False):
    name = "index_fill_" if inplace else "index_fill"
    mask = _index_mask(self, dim, index, name)
    if mask is None:
        raise _bad_args(name, (dim, index, value), "int dim, Tensor index, ")
    val = _value(self, value, name, "index_fill_ only supports a 0-dimensional value tensor, "
                 "but got tensor with {nd} dimension(s).", (dim, index, value),
                 "int dim, Tensor index, ")
    grad_fn = "IndexFillBackward0" if val[1] is None else "IndexFillBackward1"
    # (IndexFillBackward saves the index)
    return _fill_result(self, mask, val, grad_fn, index._n, value, inplace)


def masked_fill(self, mask, value):
    """self with `value` (a number or 0-d tensor) where the bool `mask` (broadcast) holds."""
    return _masked_fill(self, mask, value)


def masked_fill_(self, mask, value):
    """In-place masked_fill: the mask broadcasts to self's shape."""
    return _masked_fill(self, mask, value, inplace=True)


def index_fill(self, dim, index, value):
    """self with `value` in the slices `index` (int64, 0-d or 1-d) along `dim`."""
    return _index_fill(self, dim, index, value)


def index_fill_(self, dim, index, value):
    """In-place index_fill."""
    return _index_fill(self, dim, index, value, inplace=True)


def fill_(self, value):
    """Every element set to `value` (a number or a 0-d tensor)."""
    return _fill(self, value)


METHODS = {"fill_": fill_, "masked_fill": masked_fill, "masked_fill_": masked_fill_,
           "index_fill": index_fill, "index_fill_": index_fill_}


def install():
    for name in UNARY:
        if hasattr(Tensor, name) and not hasattr(Tensor, name + "_"):
            f = inplace_of(name)
            try:  # the out-of-place method's parameters (shown by the stub and help())
                f.__signature__ = inspect.signature(getattr(Tensor, name))
            except (TypeError, ValueError):
                pass
            setattr(Tensor, name + "_", f)
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)


def _fn(method):
    def f(input, *args, **kwargs):
        if not isinstance(input, Tensor):
            raise TypeError(f"{method}(): argument 'input' (position 1) must be Tensor, not "
                            f"{type(input).__name__}")
        return getattr(input, method)(*args, **kwargs)
    f.__name__ = method
    return f


# torch.sin_(x), torch.fill_(x, v), torch.masked_fill(x, m, v), ... (the ones PyTorch has)
FUNCTIONS = {name: _fn(name) for name in (
    *(u + "_" for u in UNARY if u != "sign"), "fill_", "masked_fill", "index_fill", "zero_")}
