"""`x[idx]` and `x[idx] = v` with PyTorch's semantics and grad_fn chains.

PyTorch applies the basic part of an index one item at a time (an int is a `select`, a slice a
`slice`, None an `unsqueeze`), each a node of its own, and then the tensor indices in one
`index` (IndexBackward0). Unlike NumPy, an int next to an index array is a select, not an
advanced index: `A[0, :, [0, 1]]` has shape (3, 2) for A of shape (2, 3, 4), not (2, 3).
The advanced step itself goes through the shared `adjit.ir.indexing.index`.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from ..ir import ops
from ..ir.core import EAGER, STATE, Node
from .tape import TapeNode, adopt_storage
from ..ir.indexing import index as _index
from .grad_fn import inplace_result, save_extra, tag, tag_outputs
from .tensor import Tensor, shape_error
from . import tensor_ops
from . import views


def _as_index_array(i):
    """A tensor/array/list index as a NumPy array (None when `i` is not one)."""
    if isinstance(i, Tensor):
        return i._n.val
    if isinstance(i, np.ndarray):
        return i
    if isinstance(i, list):
        try:
            arr = np.asarray([j._n.val if isinstance(j, Tensor) else j for j in i])
        except ValueError:
            raise IndexError("too many indices") from None
        return arr if arr.size else arr.astype(np.int64)
    return None


def _treat_as_tuple(idx):
    # PyTorch (like old NumPy) reads a list holding slices, lists, tensors, None or ... as a
    # tuple, and a str as a sequence of strs; both with a deprecation warning
    if isinstance(idx, str) or (isinstance(idx, list) and len(idx) < 32 and any(
            isinstance(i, (slice, list, tuple, Tensor, np.ndarray, str)) or i is None or
            i is Ellipsis for i in idx)):
        warnings.warn("Using a non-tuple sequence for multidimensional indexing is deprecated "
                      "and will be changed in pytorch 2.9; use x[tuple(seq)] instead of x[seq]. "
                      "In pytorch 2.9 this will be interpreted as tensor index, "
                      "x[torch.tensor(seq)], which will result either in an error or a "
                      "different result", UserWarning, stacklevel=4)
        return True
    return False


def _traced_index(i):
    """The Node of a Tensor index recorded by a transform (an argument of a jitted function
    or computed from one), or None. Its value is data of the trace, not a fixed index."""
    if isinstance(i, Tensor):
        n = i._n
        if n.trace is not EAGER and n.trace.active and (n.rec is not None or n.requires_grad):
            return n
    return None


def _mask_positions(m):
    """Positions of True in a traced 1-d mask: a guard on how many (the result's shape), then
    computed in the IR, so a replay with another mask of the same count is right."""
    from .np_indexing import _mask_indices
    from .ndarray import TracedArray, where_str
    if m.type.ndim != 1:
        raise NotImplementedError(
            f"adjit: a {m.type.ndim}-d boolean mask computed inside a jitted function cannot "
            "index yet (1-d masks can); index with mask.nonzero() outside the function or "
            f"pass the mask as a 1-d tensor{where_str()}")
    return _mask_indices(TracedArray(m), m.trace)


def _is_int(i):
    if isinstance(i, (bool, np.bool_)):
        return False
    if isinstance(i, numbers.Integral):
        return True
    return isinstance(i, Tensor) and i._n.val.ndim == 0 and i._n.val.dtype.kind in "iu"


def _select(n, dim, k, name="SelectBackward0", real_dim=None):
    size = n.type.shape[dim]
    k = int(k)
    if not -size <= k < size:
        raise IndexError(f"index {k} is out of bounds for dimension "
                         f"{dim if real_dim is None else real_dim} with size {size}")
    k %= size
    shp = n.type.shape
    start = tuple(k if d == dim else 0 for d in range(len(shp)))
    limit = tuple(k + 1 if d == dim else s for d, s in enumerate(shp))
    out = ops.slice(n, start=start, limit=limit, strides=(1,) * len(shp))
    out = ops.reshape(out, shp[:dim] + shp[dim + 1:])
    if name is None:  # unbind tags all its outputs with one node
        return tensor_ops.fresh(out, n)
    return tensor_ops.view(out, n, name)._n


def _slice(n, dim, sl, force):
    _check_step(sl)
    shp = n.type.shape
    s, e, st = sl.indices(shp[dim])
    e = max(e, s)
    if (s, e, st) == (0, shp[dim], 1) and not force:
        return n  # PyTorch skips full slices inside a tuple index
    start = tuple(s if d == dim else 0 for d in range(len(shp)))
    limit = tuple(e if d == dim else x for d, x in enumerate(shp))
    strides = tuple(st if d == dim else 1 for d in range(len(shp)))
    out = ops.slice(n, start=start, limit=limit, strides=strides) if (s, e, st) != (
        0, shp[dim], 1) else n
    return tensor_ops.view(out, n, "SliceBackward0")._n


def _unsqueeze(n, dim):
    shp = n.type.shape
    return tensor_ops.view(ops.reshape(n, shp[:dim] + (1,) + shp[dim:]), n, "UnsqueezeBackward0")._n


def _specified(idx):
    count = 0
    for i in idx:
        if i is None or i is Ellipsis or isinstance(i, (bool, np.bool_)):
            continue
        a = None if _is_int(i) or isinstance(i, slice) else _as_index_array(i)
        count += a.ndim if a is not None and a.dtype == np.bool_ else 1
    return count


def _basic(n, idx):
    """Apply the basic items one by one; return the result and {dim: index array}."""
    ndim = n.type.ndim
    specified = _specified(idx)
    if specified > ndim:
        raise IndexError(f"too many indices for tensor of dimension {ndim}")
    adv = {}
    dim = selected = 0  # dim in the result so far; selected: ints applied (for messages)
    for i in idx:
        if i is None:
            n = _unsqueeze(n, dim)
            dim += 1
        elif i is Ellipsis:
            dim += ndim - specified
        elif isinstance(i, slice):
            n = _slice(n, dim, i, force=False)
            dim += 1
        elif isinstance(i, (bool, np.bool_)):
            n = _unsqueeze(n, dim)
            adv[dim] = np.array([0] if i else [], np.int64)
            dim += 1
        elif _traced_index(i) is not None:  # recorded: a gather index, not a fixed one
            t = _traced_index(i)
            if t.type.dtype not in ("i32", "i64", "bool"):
                raise IndexError("tensors used as indices must be long, int, byte or bool "
                                 "tensors")
            if t.type.dtype == "bool":
                if t.type.shape != tuple(n.type.shape[dim:dim + t.type.ndim]):
                    raise IndexError(f"The shape of the mask {list(t.type.shape)} at index "
                                     f"{dim} does not match the shape of the indexed tensor "
                                     f"{list(n.type.shape[dim:dim + t.type.ndim])} at index "
                                     f"{dim}")
                adv[dim] = _mask_positions(t)
            else:
                adv[dim] = t
            dim += 1
        elif _is_int(i):
            n = _select(n, dim, i, real_dim=dim + selected)
            selected += 1
        else:
            a = _as_index_array(i)
            if isinstance(i, str):  # PyTorch tries to make an index tensor of it
                raise TypeError("new(): invalid data type 'str'")
            if a is None:
                raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and long "
                                 "or byte Variables are valid indices (got "
                                 f"{type(i).__name__})")
            if a.dtype.kind not in "iub":
                raise IndexError("tensors used as indices must be long, int, byte or bool "
                                 "tensors")
            adv[dim] = a
            dim += a.ndim if a.dtype == np.bool_ else 1
    return n, adv


def _advanced(n, adv):
    shp = n.type.shape
    items, d = [], 0
    while d < len(shp):
        a = adv.get(d)
        if a is None:
            items.append(slice(None))
            d += 1
            continue
        if isinstance(a, Node):  # a recorded index (bounds checked by the gather)
            items.append(a)
            d += 1
            continue
        if a.dtype == np.bool_ and a.shape != tuple(shp[d:d + a.ndim]):
            raise IndexError(f"The shape of the mask {list(a.shape)} at index {d} does not match "
                             f"the shape of the indexed tensor {list(shp[d:d + a.ndim])} at "
                             f"index {d}")
        if a.dtype != np.bool_:
            bad = (a >= shp[d]) | (a < -shp[d])
            if bad.any():
                raise IndexError(f"index {int(a[bad].flat[0])} is out of bounds for dimension "
                                 f"{d} with size {shp[d]}")
        items.append(a)
        d += max(a.ndim, 1) if a.dtype == np.bool_ else 1
    out, _ = _index(n, tuple(items))
    return Tensor._wrap(tag(tensor_ops.fresh(out, n), "IndexBackward0", [n]))


def getitem(x, idx):
    n = x._n
    if isinstance(idx, slice):  # a lone slice is always recorded (x[:] is a new view)
        if n.type.ndim == 0:
            raise IndexError("slice() cannot be applied to a 0-dim tensor.")
        return views.set_base(Tensor._wrap(_slice(n, 0, idx, force=True)), x)
    if not isinstance(idx, tuple):
        if n.type.ndim == 0 and _is_int(idx):
            raise IndexError("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or "
                             "`tensor.item<T>()` in C++ to convert a 0-dim tensor to a number")
        idx = tuple(idx) if _treat_as_tuple(idx) else (idx,)
    out, adv = _basic(n, idx)
    if adv:
        res = _advanced(out, adv)
        # IndexBackward0 saves the index tensors (0-d ones were read as numbers)
        save_extra(res._n, [i._n for i in idx if isinstance(i, Tensor) and i._n.type.ndim])
        return res
    if out is n:  # x[...]: a new tensor aliasing x
        return tensor_ops.view(n, n, "AliasBackward0", base=x)
    return views.set_base(Tensor._wrap(out), x)


def unbind(x, dim=0):
    """`x.unbind(dim)` (and iteration): the slices along `dim`, all outputs of one
    UnbindBackward0 node as in PyTorch."""
    n = x._n
    if n.type.ndim == 0 and dim in (0, -1):  # PyTorch's message for a 0-d tensor
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    dim = tensor_ops.wrap_dim(dim, n.type.ndim)
    outs = [_select(n, dim, k, name=None) for k in range(n.type.shape[dim])]
    for o in outs:
        if type(o) is TapeNode and o.rec is None and type(n) is TapeNode:
            # untracked slices are views of x
            o.version, o.recorded_version = n.version, n.version[0]
    tag_outputs(outs, "UnbindBackward0", [n])
    return tuple(views.set_base(Tensor._wrap(o), x) for o in outs)


# ----------------------------------------------------------------------------------- setitem
def _positions(shape, idx):
    """Flat positions that x[idx] selects, with PyTorch's index semantics."""
    size = int(np.prod(shape))
    pos = Tensor._from_array(np.arange(size, dtype=np.int64).reshape(shape))
    return getitem(pos, idx)._n.val


def _simple(idx):
    # indices whose meaning is the same in NumPy: no array next to another item
    items = idx if isinstance(idx, tuple) else (idx,)
    arrays = sum(1 for i in items if _as_index_array(i) is not None and not _is_int(i))
    return arrays == 0 or len(items) == 1


def setitem(self, idx, value):
    n = self._n
    base = getattr(self, "_view_base", None)
    if STATE.grad_enabled and ((n.rec is None and n.requires_grad) or (
            base is not None and base._n.rec is None and base._n.requires_grad)):
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an "
                           "in-place operation.")
    value_rg = isinstance(value, Tensor) and value._n.requires_grad
    if not STATE.grad_enabled or not (n.requires_grad or value_rg):
        v = value._n.val if isinstance(value, Tensor) else value
        if not n.val.flags.writeable:
            tensor_ops.refuse_overlap(self, n.val)
            n.val = n.val.copy()
        if isinstance(idx, Tensor) and idx._n.val.ndim == 0 and idx._n.val.dtype.kind in "iu":
            idx = int(idx)
        target = _target_shape(n, idx)  # PyTorch's index errors before NumPy's
        if isinstance(value, Tensor):
            _check_value_shape(v.shape, target)
        if _simple(idx):
            key = idx._n.val if isinstance(idx, Tensor) else tuple(
                i._n.val if isinstance(i, Tensor) else i for i in idx) if isinstance(
                idx, tuple) else idx
            _check_steps(key)
            n.val[key] = v
        else:
            n.val[np.unravel_index(_positions(n.val.shape, idx), n.val.shape)] = v
        if type(n) is TapeNode:  # (a value traced by a transform has no counter)
            n.version[0] += 1
        return
    _setitem_grad(self, idx, value)
    views.rebase(self)


def _target_shape(n, idx):
    # index an untracked alias of the storage: nothing is recorded
    return getitem(Tensor._wrap(TapeNode(n.val, n.type, None, EAGER)), idx)._n.val.shape


def _check_value_shape(vshape, target):
    """PyTorch copies the value with expand(): the same rules and message."""
    vshape, target = tuple(vshape), tuple(target)
    if vshape == target:
        return
    while len(vshape) > len(target) and vshape[0] == 1:
        vshape = vshape[1:]  # leading ones of the value are dropped first
    if len(vshape) > len(target):
        raise shape_error(f"expand(torch.FloatTensor{{{list(vshape)}}}, size={list(target)}): the "
                          f"number of sizes provided ({len(target)}) must be greater or equal to "
                          f"the number of dimensions in the tensor ({len(vshape)})")
    nd = len(target) - len(vshape)
    for i, (have, want) in enumerate(zip(vshape, target[nd:])):
        if have != want and have != 1:
            raise shape_error(f"The expanded size of the tensor ({want}) must match the existing "
                              f"size ({have}) at non-singleton dimension {i + nd}.  Target sizes: "
                              f"{list(target)}.  Tensor sizes: {list(vshape)}")


def _check_steps(key):
    for i in key if isinstance(key, tuple) else (key,):
        if isinstance(i, slice):
            _check_step(i)


def _check_step(sl):
    if sl.step is not None and sl.step <= 0:
        raise ValueError("slice step cannot be zero" if sl.step == 0 else
                         "step must be greater than zero")


def _setitem_grad(self, idx, value):
    """Differentiable assignment (CopySlices): keep the other elements, scatter the value."""
    n = self._n
    pos = _positions(n.val.shape, idx)
    v = value if isinstance(value, Tensor) else Tensor._from_array(
        np.asarray(value, n.val.dtype))
    _check_value_shape(v._n.val.shape, pos.shape)
    vshape = v._n.type.shape
    while len(vshape) > pos.ndim and vshape[0] == 1:
        vshape = vshape[1:]
    vb = ops.broadcast_to(ops.reshape(ops.convert(v._n, n.type.dtype), vshape), pos.shape)
    out = tag(tensor_ops.fresh(views.copy_slices(n, pos, vb), n), "CopySlices", [n, v._n])
    tensor_ops.write(n, out.val)
    adopt_storage(out, n)
    inplace_result(out, n)
    self._n = out
