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


def view(self, *shape):
    shape = _shape_arg(self, shape)
    if not _viewable(self._n.val, shape):
        raise shape_error("view size is not compatible with input tensor's size and stride (at "
                           "least one dimension spans across two contiguous subspaces). Use "
                           ".reshape(...) instead.")
    return tracer_tensor_ops.view(ops.reshape(self._n, shape), self._n, "ViewBackward0", base=self)


def reshape(self, *shape):
    shape = _shape_arg(self, shape)
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
    target = tuple(s if s != -1 else shp[i - nd] for i, s in enumerate(sizes))
    for i, (have, want) in enumerate(zip(shp, target[nd:])):
        if have != want and have != 1:
            raise shape_error(f"The expanded size of the tensor ({want}) must match the "
                               f"existing size ({have}) at non-singleton dimension {i + nd}.  "
                               f"Target sizes: {list(sizes)}.  Tensor sizes: {list(shp)}")
    return tracer_tensor_ops.view(ops.broadcast_to(self._n, target), self._n, "ExpandBackward0", base=self)


def clone(self):
    n = self._n
    out = tracer_tensor_ops.fresh(n, n) if n.requires_grad and STATE.grad_enabled else \
        TapeNode(n.val, n.type, None, EAGER)
    out.val = n.val.copy()  # a clone owns its storage
    if type(out) is TapeNode:
        out.version, out.recorded_version = [0], 0
    return Tensor._wrap(tag(out, "CloneBackward0", [n]))
