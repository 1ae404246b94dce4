"""Shape methods of adjit.Tensor: view/reshape, transposes, squeeze/unsqueeze, expand, clone.

Each result is a view in PyTorch (except a reshape that must copy, and clone): it shares the
storage and the version counter and remembers its base (see tensor_ops.view).
"""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir.core import EAGER, STATE
from .grad_fn import tag, warn_once
from .tape import TapeNode
from .tensor import Tensor, shape_error, to_np_dtype
from . import tensor_ops as tracer_tensor_ops


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


_I64 = 2 ** 64


def _wrap64(v):
    """v as a signed 64-bit integer (PyTorch's size arithmetic wraps)."""
    v %= _I64
    return v - _I64 if v >= _I64 // 2 else v


def _long_sizes(fn, arg, sizes):
    """PyTorch's parse of a size list: a size outside int64 is a TypeError."""
    for k, d in enumerate(sizes):
        if not -_I64 // 2 <= d < _I64 // 2:
            raise TypeError(f"{fn}(): argument '{arg}' failed to unpack the object at pos "
                            f"{k + 1} with error \"Overflow when unpacking long long\"")


def _check_numel(shape):
    """PyTorch's check of a new tensor's element count: the product of the sizes in unsigned
    64-bit arithmetic (a negative size wraps) must not overflow nor exceed int64."""
    p, over = 1, False
    for d in shape:
        p *= d % _I64
        if p >= _I64:
            over, p = True, p % _I64
    if over or p >= _I64 // 2:
        raise shape_error("numel: integer multiplication overflow")


def _representable(shape, itemsize):
    """A NumPy array cannot have sizes whose nonzero product times the item size passes
    2**63 - 1, even with a zero size (PyTorch can: an empty or expanded view)."""
    p = itemsize
    for d in shape:
        p *= d or 1
    if p >= _I64 // 2:
        raise shape_error(f"adjit cannot hold a tensor of sizes {list(shape)}: NumPy refuses "
                          "arrays whose nonzero sizes multiply past 2**63 - 1 bytes")


def _shape_arg(self, shape, fn="view", arg="size"):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    shape = [int(d) for d in shape]
    _long_sizes(fn, arg, shape)
    size = self._n.val.size
    # PyTorch's infer_size: the known sizes' product in int64 (wrapping), -1 at most once
    known, infer = 1, None
    for k, d in enumerate(shape):
        if d == -1:
            if infer is not None:
                raise shape_error("only one dimension can be inferred")
            infer = k
        elif d >= 0:
            known = _wrap64(known * d)
        else:
            raise shape_error(f"invalid shape dimension {d} at index {k} of shape {shape}")
    if size == known or (infer is not None and known > 0 and size % known == 0):
        if infer is not None:
            if known == 0:
                raise shape_error(f"cannot reshape tensor of 0 elements into shape {shape} "
                                  "because the unspecified dimension size -1 can be any value "
                                  "and is ambiguous")
            shape[infer] = size // known
        _check_numel(shape)  # (a product that wrapped to the input's size)
        _representable(shape, self._n.val.itemsize)
        return tuple(shape)
    raise shape_error(f"shape '{list(shape)}' is invalid for input of size {size}")


def view(self, *shape):
    shape = _shape_arg(self, shape)
    if not _viewable(self._n.val, shape):
        raise shape_error("view size is not compatible with input tensor's size and stride (at "
                           "least one dimension spans across two contiguous subspaces). Use "
                           ".reshape(...) instead.")
    return tracer_tensor_ops.view(ops.reshape(self._n, shape), self._n, "ViewBackward0", base=self)


def reshape(self, *shape):
    shape = _shape_arg(self, shape, "reshape", "shape")
    if _viewable(self._n.val, shape):
        return tracer_tensor_ops.view(ops.reshape(self._n, shape), self._n, "ViewBackward0", base=self)
    # PyTorch copies (clone) and views the copy (_unsafe_view)
    c = clone(self)
    return Tensor._wrap(tag(ops.reshape(c._n, shape), "UnsafeViewBackward0", [c._n]))


def flatten(self, start_dim=0, end_dim=-1):
    nd = self._n.type.ndim
    s, e = tracer_tensor_ops.wrap_dim(start_dim, nd), tracer_tensor_ops.wrap_dim(end_dim, nd)
    if nd == 0:
        return reshape(self, 1)
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if s == e:
        return self
    shp = self._n.type.shape
    return reshape(self, shp[:s] + (int(np.prod(shp[s:e + 1])),) + shp[e + 1:])


def _dim(self, d):
    return tracer_tensor_ops.wrap_dim(d, self._n.type.ndim)


def transpose(self, d0, d1):
    nd = self._n.type.ndim
    perm = list(range(nd))
    d0, d1 = _dim(self, d0), _dim(self, d1)
    if nd:
        perm[d0], perm[d1] = perm[d1], perm[d0]
    return tracer_tensor_ops.view(ops.transpose(self._n, tuple(perm)), self._n, "TransposeBackward0",
                  base=self)


def reverse_dims(self):
    nd = self._n.type.ndim
    if nd != 2:
        warn_once("T", "The use of `x.T` on tensors of dimension other than 2 to reverse their "
                  "shape is deprecated and it will throw an error in a future release. Consider "
                  "`x.mT` to transpose batches of matrices or "
                  "`x.permute(*torch.arange(x.ndim - 1, -1, -1))` to reverse the dimensions of "
                  "a tensor.")
    return tracer_tensor_ops.view(ops.transpose(self._n, tuple(reversed(range(nd)))), self._n,
                  "PermuteBackward0", base=self)


def matrix_t(self):
    nd = self._n.type.ndim
    if nd > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {nd}D")
    return tracer_tensor_ops.view(ops.transpose(self._n, tuple(reversed(range(nd)))), self._n, "TBackward0",
                  base=self)


def permute(self, *dims):
    dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    nd = self._n.type.ndim
    if len(dims) != nd:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does "
                           f"not match the length of the desired ordering of dimensions i.e. "
                           f"input.dim() = {nd} is not equal to len(dims) = {len(dims)}")
    perm = tuple(_dim(self, d) for d in dims)
    return tracer_tensor_ops.view(ops.transpose(self._n, perm), self._n, "PermuteBackward0", base=self)


def to(self, *args, **kwargs):
    dt = kwargs.get("dtype")
    for a in args:
        if not isinstance(a, str):
            dt = a
    if dt is None or to_np_dtype(dt) == self._n.val.dtype:
        return self
    return Tensor._wrap(tag(ops.convert(self._n, to_np_dtype(dt)), "ToCopyBackward0",
                            [self._n]))


def squeeze(self, dim=None):
    shp = self._n.type.shape
    if dim is None:
        new, name = tuple(d for d in shp if d != 1), "SqueezeBackward0"
    else:
        dims = {_dim(self, d) for d in (dim if isinstance(dim, (tuple, list)) else (dim,))}
        new = tuple(d for i, d in enumerate(shp) if not (i in dims and d == 1))
        name = "SqueezeBackward2" if isinstance(dim, (tuple, list)) else "SqueezeBackward1"
    return tracer_tensor_ops.view(ops.reshape(self._n, new), self._n, name, base=self)


def unsqueeze(self, dim):
    shp = list(self._n.type.shape)
    shp.insert(tracer_tensor_ops.wrap_dim(dim, len(shp) + 1), 1)
    return tracer_tensor_ops.view(ops.reshape(self._n, tuple(shp)), self._n, "UnsqueezeBackward0",
                  base=self)


def expand(self, *sizes):
    sizes = sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
    shp = self._n.type.shape
    nd = len(sizes) - len(shp)
    if nd < 0:
        raise shape_error(f"expand(torch.FloatTensor{{{list(shp)}}}, size={list(sizes)}): the "
                           "number of sizes provided ({len(sizes)}) must be greater or equal to "
                           f"the number of dimensions in the tensor ({len(shp)})")
    _long_sizes("expand", "size", sizes)
    for i in range(nd):
        if sizes[i] == -1:
            raise shape_error(f"The expanded size of the tensor (-1) isn't allowed in a "
                              f"leading, non-existing dimension {i}")
    target = tuple(s if s != -1 else shp[i - nd] for i, s in enumerate(sizes))
    for i, (have, want) in reversed(list(enumerate(zip(shp, target[nd:])))):  # last first
        if have != want and have != 1:
            raise shape_error(f"The expanded size of the tensor ({want}) must match the "
                               f"existing size ({have}) at non-singleton dimension {i + nd}.  "
                               f"Target sizes: {list(sizes)}.  Tensor sizes: {list(shp)}")
    _check_numel(target)  # a negative new size wraps to a huge one, as in PyTorch
    _representable(target, self._n.val.itemsize)
    return tracer_tensor_ops.view(ops.broadcast_to(self._n, target), self._n, "ExpandBackward0", base=self)


def clone(self):
    n = self._n
    out = tracer_tensor_ops.fresh(n, n) if n.requires_grad and STATE.grad_enabled else \
        TapeNode(n.val, n.type, None, EAGER)
    out.val = n.val.copy()  # a clone owns its storage
    if type(out) is TapeNode:
        out.version, out.recorded_version = [0], 0
    return Tensor._wrap(tag(out, "CloneBackward0", [n]))
