"""The Tensor front of issue 15's shape, sorting and indexing functions: PyTorch's meaning (not
NumPy's name: `repeat_interleave` is np.repeat, `Tensor.repeat` is np.tile, `median` is the
lower median, `sort` returns values and indices) and PyTorch 2.13's grad_fn names. The work is
done by the node-level composites that the NumPy front uses (adjit/ir/composites_shape.py)."""
from __future__ import annotations

import warnings

import numpy as np

from ..ir import composites as IC
from ..ir import composites_shape as CS
from ..ir import ops
from ..ir.core import EAGER
from .grad_fn import save_extra, tag, tag_outputs
from .tensor import Tensor
from . import tensor_ops


def _w(node, name, *inputs):
    return Tensor._wrap(tag(node, name, [t._n for t in inputs if isinstance(t, Tensor)]))


def _nd(x):
    return x._n.type.ndim


def _shape(x):
    return tuple(x._n.type.shape)


def _need_tensor(fn, v, arg="input", pos=1):
    if not isinstance(v, Tensor):
        raise TypeError(f"{fn}(): argument '{arg}' (position {pos}) must be Tensor, not "
                        f"{type(v).__name__}")
    return v


def _ints(v, what):
    if isinstance(v, Tensor):
        v = v._n.val
    arr = np.asarray(v)
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "b" and arr.ndim == 0):
        raise TypeError(f"{what} must be integers, got {arr.dtype}")
    return arr.astype(np.int64)


# --- repeats -------------------------------------------------------------------------------
def _flat_or_dim(self, dim):
    """(node, axis): the flattened tensor and axis 0 when dim is None (PyTorch's "over all
    elements"), else the tensor (a 0-d one as 1-d) and dim wrapped."""
    n = self._n
    if dim is None:
        return ops.reshape(n, (int(np.prod(_shape(self), dtype=np.int64)),)), 0
    axis = tensor_ops.wrap_dim(dim, _nd(self))
    return (ops.reshape(n, (1,)) if _nd(self) == 0 else n), axis


def repeat_interleave(self, repeats=None, dim=None, *, output_size=None):
    """np.repeat. `torch.repeat_interleave(repeats)` (one tensor) gives the indices
    repeated by their counts."""
    if repeats is None:  # torch.repeat_interleave(counts)
        counts = _ints(self, "repeats")
        return Tensor._from_array(np.repeat(np.arange(counts.size), counts))
    tensor_reps = isinstance(repeats, Tensor)
    reps = _ints(repeats, "repeats")
    if (reps < 0).any():
        raise RuntimeError("repeats can not be negative")
    n, axis = _flat_or_dim(self, dim)
    size = ops.shape(n)[axis]
    if reps.ndim == 1 and reps.size not in (1, size):
        raise RuntimeError(f"repeats must have the same size as input along dim, but got "
                           f"repeats.size(0) = {reps.size} and input.size({axis}) = {size}")
    reps = reps.reshape(-1) if reps.ndim else reps
    if reps.size == 1:
        reps = np.full(size, int(reps.reshape(-1)[0]))
    out = CS.repeat(n, reps, axis)
    if output_size is not None and ops.shape(out)[axis] != output_size:
        raise RuntimeError(f"repeat_interleave: output_size {output_size} does not match the "
                           f"sum of repeats {ops.shape(out)[axis]}")
    return _w(out, "IndexSelectBackward0" if tensor_reps else "ViewBackward0", self)


def repeat(self, *sizes):
    """PyTorch's Tensor.repeat (np.tile with at least ndim repeats)."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < _nd(self):
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number "
                           "of dimensions of tensor")
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"Trying to create tensor with negative dimension: {sizes}")
    return _w(CS.tile(self._n, sizes), "RepeatBackward0", self)


def tile(self, dims):
    dims = (int(dims),) if np.ndim(dims) == 0 else tuple(int(d) for d in dims)
    dims = (1,) * (_nd(self) - len(dims)) + dims
    return repeat(self, *dims)


# --- sorting -------------------------------------------------------------------------------
SortResult = type("sort", (tensor_ops._ReturnType,), {"__slots__": ()})
MedianResult = type("median", (tensor_ops._ReturnType,), {"__slots__": ()})

_NO = object()


def _sort_nodes(x, dim, descending):
    n = x._n
    if _nd(x) == 0:
        return n, ops.zeros((), "i64")
    axis = tensor_ops.wrap_dim(dim, _nd(x))
    return CS.sort(n, axis, bool(descending))


def sort(self, dim=-1, descending=False, *, stable=_NO):
    """Values and indices. adjit's sort is always stable (ties keep their order, NaN sorts
    as the largest value); `stable=` selects PyTorch's overload and so its grad_fn name."""
    if stable is not _NO and stable is not None and not isinstance(stable, bool):
        raise TypeError("sort(): argument 'stable' must be bool")
    v, i = _sort_nodes(self, dim, descending)
    return SortResult(_w(v, "SortBackward0" if stable is _NO else "SortBackward1", self),
                      Tensor._wrap(i))


def argsort(self, dim=-1, descending=False, *, stable=False):
    return sort(self, dim, descending)[1]


def msort(self):
    return sort(self, 0).values


# --- reorderings ---------------------------------------------------------------------------
def roll(self, shifts, dims=None):
    shifts = (shifts,) if np.ndim(shifts) == 0 else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"roll: shifts {shifts} need dims")
        out = CS.roll(self._n, int(shifts[0]), None)
    else:
        dims = (dims,) if np.ndim(dims) == 0 else tuple(dims)
        if len(dims) != len(shifts):
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, "
                               f"dims:{len(dims)}")
        dims = tuple(tensor_ops.wrap_dim(d, _nd(self)) for d in dims)
        out = CS.roll(self._n, [int(s) for s in shifts], list(dims))
    return _w(out, "RollBackward0", self)


def flip(self, *dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    axes = [tensor_ops.wrap_dim(d, _nd(self)) for d in dims]
    if len(set(axes)) != len(axes):
        raise RuntimeError("dims has duplicates")
    out = self._n
    for a in axes:
        out = IC.flip(out, a)
    return _w(out, "FlipBackward0", self)


def fliplr(self):
    if _nd(self) < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return flip(self, 1)


def flipud(self):
    if _nd(self) < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return flip(self, 0)


def rot90(self, k=1, dims=(0, 1)):
    dims = tuple(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if _nd(self) < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {_nd(self)}")
    a0, a1 = (tensor_ops.wrap_dim(d, _nd(self)) for d in dims)
    if a0 == a1:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {a0} and "
                           f"dim1 = {a1}")
    return _w(CS.rot90(self._n, int(k), (a0, a1)), "Rot90Backward0", self)


# --- diagonals and triangles ---------------------------------------------------------------
def diagonal(self, offset=0, dim1=0, dim2=1):
    nd = _nd(self)
    a1, a2 = tensor_ops.wrap_dim(dim1, nd), tensor_ops.wrap_dim(dim2, nd)
    if a1 == a2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return _w(CS.diagonal(self._n, int(offset), a1, a2), "DiagonalBackward0", self)


def diag(self, diagonal=0):
    if _nd(self) == 1:
        return _w(CS.diag_matrix(self._n, int(diagonal)), "DiagEmbedBackward0", self)
    if _nd(self) != 2:
        raise RuntimeError("diag(): Supports 1D or 2D tensors. Got " f"{_nd(self)}D")
    return _w(CS.diagonal(self._n, int(diagonal), 0, 1), "DiagonalBackward0_copy", self)


def trace(self):
    if _nd(self) != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {_nd(self)}")
    d = CS.diagonal(self._n, 0, 0, 1)
    out = ops.reduce_sum(d, (0,))
    if self._n.type.dtype in ("bool", "i32"):
        out = ops.reduce_sum(ops.convert(d, "i64"), (0,))
    return _w(out, "TraceBackward0", self)


def _triangle(upper):
    name = "triu" if upper else "tril"

    def f(self, diagonal=0):
        if _nd(self) < 2:
            raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")
        return _w(CS.triangle(self._n, int(diagonal), upper),
                  "TriuBackward0" if upper else "TrilBackward0", self)
    f.__name__ = name
    return f


triu, tril = _triangle(True), _triangle(False)


# --- products ------------------------------------------------------------------------------
def _promoted(*xs):
    dt = tensor_ops.result_dtype(*xs)
    return [ops.convert(x._n, dt) for x in xs]


def kron(self, other):
    _need_tensor("kron", other, "other", 2)
    a, b = _promoted(self, other)
    return _w(CS.kron(a, b), "UnsafeViewBackward0", self, other)


def _cross(self, other, dim, fn):
    _need_tensor(fn, other, "other", 2)
    if _nd(self) != _nd(other):
        raise RuntimeError(f"{fn}: inputs must have the same number of dimensions.")
    shp = tensor_ops.broadcast_shapes(_shape(self), _shape(other))
    if dim is None:  # torch.cross: the first dimension of size 3 (deprecated)
        warnings.warn("Using torch.cross without specifying the dim arg is deprecated.\n"
                      "Please either pass the dim explicitly or simply use torch.linalg.cross."
                      "\nThe default value of dim will change to agree with that of "
                      "linalg.cross in a future release.", UserWarning, stacklevel=3)
        dim = next((i for i, d in enumerate(shp) if d == 3), None)
        if dim is None:
            raise RuntimeError("no dimension of size 3 in input")
    axis = tensor_ops.wrap_dim(dim, len(shp))
    if _shape(self)[axis] != 3 or _shape(other)[axis] != 3:
        raise RuntimeError(f"{fn}: inputs dimension {dim} must have length 3. Got "
                           f"{_shape(self)[axis]} and {_shape(other)[axis]}")
    a, b = (ops.broadcast_to(n, shp) for n in _promoted(self, other))
    return _w(CS.cross3(a, b, axis), "LinalgCrossBackward0", self, other)


def cross(self, other, dim=None):
    return _cross(self, other, dim, "cross")


def linalg_cross(input, other, *, dim=-1):
    _need_tensor("linalg_cross", input)
    return _cross(input, other, dim, "linalg.cross")


# --- scans and differences -----------------------------------------------------------------
def cumprod(self, dim, *, dtype=None):
    if dtype is not None:
        raise TypeError("cumprod: dtype= is not supported by adjit (cast the input first)")
    n = self._n
    if n.type.dtype in ("bool", "i32"):
        n = ops.convert(n, "i64")  # PyTorch's integer scans are int64
    if _nd(self) == 0:
        return _w(ops.reshape(n, ()), "CumprodBackward0", self)
    return _w(CS.cumprod(n, tensor_ops.wrap_dim(dim, _nd(self))), "CumprodBackward0", self)


def diff(self, n=1, dim=-1, prepend=None, append=None):
    from .factory import cat
    if _nd(self) == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    axis = tensor_ops.wrap_dim(dim, _nd(self))
    x = self
    if prepend is not None or append is not None:
        x = cat([p for p in (prepend, self, append) if p is not None], axis)
    if int(n) == 0:
        return x
    node = x._n
    for _ in range(int(n)):
        m = ops.shape(node)[axis]
        hi, lo = CS.slice_axis(node, 1, m, axis), CS.slice_axis(node, 0, max(m - 1, 0), axis)
        node = ops.ne(hi, lo) if node.type.dtype == "bool" else ops.sub(hi, lo)
    return _w(node, "SubBackward0", x)


# --- order statistics ----------------------------------------------------------------------
def median(self, dim=None, keepdim=False):
    """PyTorch's median: the LOWER median (element (n-1)//2 of the sorted values); NaN if the
    reduced values hold a NaN. With `dim`: (values, indices)."""
    if self._n.type.dtype == "bool":
        raise RuntimeError('"median_out" not implemented for \'Bool\'')
    if dim is None:
        flat = ops.reshape(self._n, (int(np.prod(_shape(self), dtype=np.int64)),))
        if ops.shape(flat)[0] == 0:
            return _w(ops.full((), float("nan"), flat.type.dtype), "MedianBackward0", self)
        v, _ = _median_nodes(flat, 0)
        return _w(ops.reshape(v, ()), "MedianBackward0", self)
    n = self._n
    if _nd(self) == 0:
        n = ops.reshape(n, (1,))
    axis = tensor_ops.wrap_dim(dim, _nd(self))
    if ops.shape(n)[axis] == 0:
        raise IndexError(f"median(): Expected reduction dim {axis} to have non-zero size.")
    vals, idx = _median_nodes(n, axis)
    if not keepdim or _nd(self) == 0:
        shp = tuple(d for j, d in enumerate(_shape(self)) if j != axis) if _nd(self) else ()
        vals, idx = ops.reshape(vals, shp), ops.reshape(idx, shp)
    return MedianResult(_w(vals, "MedianBackward1", self), Tensor._wrap(idx))


def _median_nodes(n, axis):
    """(values, indices) of the lower median along `axis`, kept as an axis of size 1."""
    size = ops.shape(n)[axis]
    v, i = CS.sort(n, axis)
    k = (size - 1) // 2
    if not IC.is_float(n):
        return CS.slice_axis(v, k, k + 1, axis), CS.slice_axis(i, k, k + 1, axis)
    # NaN sorts last: a row with NaN has its median at the first NaN (PyTorch's value and
    # index); the position of the first NaN is the count of numbers
    cnt = ops.reduce_sum(ops.convert(ops.eq(n, n), "i64"), (axis,))
    pos = ops.select(ops.lt(cnt, size), cnt, ops.full(ops.shape(cnt), k, "i64"))
    pos = ops.reshape(pos, tuple(1 if j == axis else d for j, d in enumerate(ops.shape(n))))
    return CS.take_along_axis(v, pos, axis), CS.take_along_axis(i, pos, axis)


_INTERP = ("linear", "lower", "higher", "midpoint", "nearest")


def quantile(self, q, dim=None, keepdim=False, *, interpolation="linear"):
    if interpolation not in _INTERP:
        raise RuntimeError(f"quantile() interpolation must be one of {', '.join(_INTERP)}. "
                           f"Got {interpolation}")
    if self._n.type.dtype not in ("f32", "f64"):
        raise RuntimeError("quantile() input tensor must be either float or double dtype")
    if isinstance(q, Tensor) and q._n.type.dtype != self._n.type.dtype:
        raise RuntimeError("quantile() q tensor must be same dtype as the input tensor")
    qv = q._n.val if isinstance(q, Tensor) else np.asarray(q, np.float64)
    if qv.ndim > 1:
        raise RuntimeError("quantile() q must be a scalar or 1D tensor")
    if ((qv < 0) | (qv > 1)).any():
        raise RuntimeError("quantile() q values must be in the range [0, 1]")
    n, axis = _flat_or_dim(self, dim)
    if ops.shape(n)[axis] == 0:
        raise RuntimeError("quantile() input tensor must be non-empty")
    out = CS.quantile(n, qv, axis, interpolation)
    if keepdim:
        if dim is None:
            out = ops.reshape(out, tuple(qv.shape) + (1,) * _nd(self))
        elif _nd(self):
            shp = list(ops.shape(out))
            shp.insert(qv.ndim + axis, 1)
            out = ops.reshape(out, tuple(shp))
    return _w(ops.convert(out, self._n.type.dtype), "SqueezeBackward4", self)


# --- indexing ------------------------------------------------------------------------------
def _index_values(index):
    """The integer values of an index Tensor now (None if unknown)."""
    v = getattr(index._n, "val", None)
    return None if v is None else np.asarray(v)


def _gather_bounds(index, axis, n):
    """torch.gather's check of the values traced now: each index in [0, n), negatives too
    refused (a later call's out of range: IndexError from the gather)."""
    v = _index_values(index)
    if v is None or v.size == 0:
        return
    bad = (v < 0) | (v >= n)
    if bad.any():
        raise RuntimeError(f"index {int(v[bad].flat[0])} is out of bounds for dimension {axis} "
                           f"with size {n}")


def take_along_dim(self, indices, dim=None):
    _need_tensor("take_along_dim", indices, "indices", 2)
    if dim is None:  # PyTorch: gather of the flat values (negatives refused)
        if indices._n.type.dtype not in ("i64", "i32"):
            raise RuntimeError("gather(): Expected dtype int32/int64 for index")
        size = int(np.prod(_shape(self), dtype=np.int64))
        x = ops.reshape(self._n, (size,))
        idx = ops.reshape(indices._n, (int(np.prod(_shape(indices), dtype=np.int64)),))
        _gather_bounds(indices, 0, size)
        out = _w(CS.take_along_axis(x, idx, 0, negative=False), "GatherBackward0", self)
        save_extra(out._n, [indices._n])  # (PyTorch saves a view of the index)
        return out
    if _nd(self) != _nd(indices):
        raise RuntimeError("torch.take_along_dim(): input and indices should have the same "
                           f"number of dimensions, but got {_nd(self)} dimensions for input,"
                           f" and {_nd(indices)} dimensions for indices")
    if indices._n.type.dtype != "i64":
        raise RuntimeError("torch.take_along_dim(): dtype of indices should be Long but got "
                           f"{tensor_ops._tname(indices)}")
    axis = tensor_ops.wrap_dim(dim, _nd(self), scalar=False)
    xs, ids = _shape(self), _shape(indices)
    for d in range(_nd(self)):  # the other dims broadcast, worded as PyTorch's broadcast
        if d != axis and xs[d] != ids[d] and xs[d] != 1 and ids[d] != 1:
            raise RuntimeError(f"The size of tensor a ({xs[d]}) must match the size of tensor b "
                               f"({ids[d]}) at non-singleton dimension {d}")
    n, idx = xs[axis], indices._n
    if n == 0:
        if int(np.prod(ids, dtype=np.int64)):
            raise RuntimeError("ZeroDivisionError")
    else:  # PyTorch 2.13 takes an index along `dim` modulo the size (-1 is the last, n the first)
        idx = ops.remainder(idx, n)
    return _w(CS.take_along_axis(self._n, idx, axis), "GatherBackward0", self)


def gather(self, dim, index, *, sparse_grad=False):
    _need_tensor("gather", index, "index", 3)
    if sparse_grad:
        raise TypeError("gather: sparse_grad=True is not supported by adjit")
    nd = _nd(self)
    axis = tensor_ops.wrap_dim(dim, nd)
    if index._n.type.dtype not in ("i64", "i32"):
        raise RuntimeError("gather(): Expected dtype int32/int64 for index")
    # a 0-d input or index counts as one element along one dimension (ensure_nonempty_dim)
    if max(nd, 1) != max(_nd(index), 1):
        raise RuntimeError("Index tensor must have the same number of dimensions as input "
                           "tensor")
    xs, ids = _shape(self) or (1,), _shape(index) or (1,)
    numel = int(np.prod(ids, dtype=np.int64))
    if numel:  # (PyTorch checks nothing for an empty index)
        for d in range(len(xs)):
            if d != axis and ids[d] > xs[d]:
                raise RuntimeError(f"Size does not match at dimension {d} expected index "
                                   f"{list(_shape(index))} to be no larger than self "
                                   f"{list(_shape(self))} apart from dimension {axis}")
    _gather_bounds(index, axis, xs[axis])
    x, idx = self._n, index._n
    if not numel:  # no element read: an empty slice of x in the index's shape
        flat = ops.reshape(x, (int(np.prod(xs, dtype=np.int64)),))
        empty = ops.slice(flat, start=(0,), limit=(0,), strides=(1,))
        return _w(ops.reshape(empty, _shape(index)), "GatherBackward0", self)
    if nd == 0 or _nd(index) == 0:
        x, idx = ops.reshape(x, xs), ops.reshape(idx, ids)
    if any(d != axis and ids[d] < xs[d] for d in range(len(xs))):
        x = ops.slice(x, start=(0,) * len(xs), limit=tuple(
            xs[d] if d == axis else ids[d] for d in range(len(xs))), strides=(1,) * len(xs))
    out = CS.take_along_axis(x, idx, axis, negative=False)
    if _nd(index) == 0:
        out = ops.reshape(out, ())
    out = _w(out, "GatherBackward0", self)
    save_extra(out._n, [index._n])  # GatherBackward0 saves the index
    return out


def _flat_positions(xs, axis, index):
    """The flat positions in the values of an x of shape `xs` that `index` (a Tensor) names
    along `axis`, its other dims at their own coordinates (PyTorch's scatter/gather rule),
    as a 1-D int64 node. A negative or too large index recorded for replay becomes one the
    gather/scatter_add refuses (IndexError)."""
    xs, ids = xs or (1,), _shape(index) or (1,)
    strides = np.cumprod((tuple(xs) + (1,))[::-1])[::-1][1:]
    base = np.zeros(ids, np.int64)
    for i, d in enumerate(ids):
        if i != axis:
            base = base + np.arange(d).reshape([d if j == i else 1 for j in range(len(ids))]) \
                * int(strides[i])
    idx, n = ops.convert(ops.reshape(index._n, ids), "i64"), xs[axis]
    if idx.trace is not EAGER:
        from ..ir.indexing import wrap_traced_index
        idx = wrap_traced_index(idx, n, int(np.prod(xs, dtype=np.int64)), negative=False)
    pos = ops.add(ops.mul(idx, int(strides[axis])), base)
    return ops.reshape(pos, (int(np.prod(ids, dtype=np.int64)),))


def index_select(self, dim, index):
    _need_tensor("index_select", index, "index", 2)
    axis = tensor_ops.wrap_dim(dim, _nd(self))
    if _nd(index) > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    if index._n.type.dtype not in ("i64", "i32"):
        raise RuntimeError("index_select(): Expected dtype int32 or int64 for index")
    k = int(np.prod(_shape(index), dtype=np.int64))
    v = _index_values(index)
    if _nd(self) == 0:
        if k != 1:
            raise RuntimeError(f"index_select(): Index to scalar can have only 1 value, got {k} "
                               "value(s)")
        if v is not None and int(v.reshape(-1)[0]) != 0:
            raise IndexError("index out of range in self")
        res = _w(self._n, "IndexSelectBackward0", self)  # (tag gives it a node of its own)
        save_extra(res._n, [index._n])
        return res
    n = _shape(self)[axis]
    if v is not None and v.size:
        bad = (v < 0) | (v >= n)
        if bad.any():
            raise RuntimeError(f"INDICES element is out of DATA bounds, id={int(v[bad].flat[0])} "
                               f"axis_dim={n}")
    idx = ops.convert(ops.reshape(index._n, (k,)), "i64")
    if idx.trace is not EAGER:  # on replay a negative index is refused too
        from ..ir.indexing import wrap_traced_index
        idx = wrap_traced_index(idx, n, n, negative=False)
    res = _w(ops.gather(self._n, idx, axis=axis), "IndexSelectBackward0", self)
    save_extra(res._n, [index._n])  # IndexSelectBackward0 saves the index
    return res


def _scatter_checks(fn, self, dim, index, src):
    """PyTorch's checks of scatter_add(self, dim, index, src), in its order; returns the dim."""
    _need_tensor(fn, index, "index", 2)
    _need_tensor(fn, src, "src", 3)
    axis = tensor_ops.wrap_dim(dim, _nd(self))
    if index._n.type.dtype not in ("i64", "i32"):
        raise RuntimeError("scatter(): Expected dtype int32/int64 for index")
    if src._n.type.dtype != self._n.type.dtype:
        raise RuntimeError("scatter(): Expected self.dtype to be equal to src.dtype")
    if not int(np.prod(_shape(index), dtype=np.int64)):
        return axis
    nd = max(_nd(self), 1)
    if nd != max(_nd(index), 1):
        raise RuntimeError("Index tensor must have the same number of dimensions as self tensor")
    xs, ids, ss = _shape(self) or (1,), _shape(index) or (1,), _shape(src)
    wrong = any(d != axis and ids[d] > xs[d] for d in range(nd))
    if not wrong:
        for d in range(nd):
            if ss and d >= len(ss):  # (PyTorch reads src.size(d))
                raise IndexError(f"Dimension out of range (expected to be in range of "
                                 f"[{-len(ss)}, {len(ss) - 1}], but got {d})")
            if ids[d] > (ss[d] if ss else 1):
                wrong = True
                break
    if wrong:
        raise RuntimeError(f"Expected index {list(_shape(index))} to be no larger than self "
                           f"{list(_shape(self))} apart from dimension {axis} and to be no "
                           f"larger size than src {list(ss)}")
    if max(len(ss), 1) != nd:
        raise RuntimeError("Index tensor must have the same number of dimensions as src tensor")
    _gather_bounds(index, axis, xs[axis])
    return axis


def scatter_add(self, dim, index, src):
    """`self.scatter_add(dim, index, src)`: src's elements (over index's shape) added into a
    copy of self at the positions index names along dim (ScatterAddBackward0)."""
    axis = _scatter_checks("scatter_add", self, dim, index, src)
    xs, ids = _shape(self), _shape(index)
    k = int(np.prod(ids, dtype=np.int64))
    x = self._n
    if k == 0:
        return _w(x, "ScatterAddBackward0", self, src)  # (a copy: tag gives it its own node)
    total = int(np.prod(xs, dtype=np.int64))
    flat = ops.reshape(x, (total,))
    part = src._n
    ss, idn = _shape(src) or (1,), ids or (1,)
    part = ops.reshape(part, ss)
    if tuple(ss) != tuple(idn):
        part = ops.slice(part, start=(0,) * len(ss), limit=tuple(idn), strides=(1,) * len(ss))
    part = ops.reshape(part, (k,))
    pos = _flat_positions(xs, axis, index)
    if x.type.dtype == "bool":  # (an OR: the sum of the hits, nonzero)
        out = ops.ne(ops.scatter_add(ops.convert(flat, "i64"), pos, ops.convert(part, "i64"),
                                     axis=0), 0)
    else:
        out = ops.scatter_add(flat, pos, part, axis=0)
    res = _w(ops.reshape(out, xs), "ScatterAddBackward0", self, src)
    save_extra(res._n, [index._n])  # ScatterAddBackward0 saves the index
    return res


def scatter_add_(self, dim, index, src):
    from .methods import _write_back
    self._inplace_check()
    n = self._n
    return _write_back(self, n, scatter_add(self, dim, index, src))


# --- splitting and stacking ----------------------------------------------------------------
def _pieces(self, bounds, axis, name, grad_fn):
    outs = [CS.slice_axis(self._n, lo, hi, axis) for lo, hi in bounds]
    tag_outputs(outs, grad_fn, [self._n])
    return tuple(Tensor._wrap(o) for o in outs)


def split(self, split_size_or_sections, dim=0):
    axis = tensor_ops.wrap_dim(dim, _nd(self))
    n = _shape(self)[axis]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} "
                               f"(input tensor's size at dimension {axis}), but got "
                               f"split_sizes={sizes}")
        name = "SplitWithSizesBackward0"
    else:
        s = int(split_size_or_sections)
        if s <= 0 and n:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got "
                               f"dimension size of {n}")
        sizes = [min(s, n - lo) for lo in range(0, n, s)] if s else [0]
        name = "SplitBackward0"
    bounds = np.cumsum([0] + sizes)
    return _pieces(self, list(zip(bounds[:-1], bounds[1:])), axis, "split", name)


def chunk(self, chunks, dim=0):
    chunks = int(chunks)
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " f"{chunks}")
    n = _shape(self)[tensor_ops.wrap_dim(dim, _nd(self))]
    size = -(-n // chunks) if n else 0
    if size == 0:
        return split(self, [0] * chunks if n == 0 else [n], dim)
    return split(self, size, dim)


def tensor_split(self, indices_or_sections, dim=0):
    axis = tensor_ops.wrap_dim(dim, _nd(self))
    n = _shape(self)[axis]
    if isinstance(indices_or_sections, (list, tuple)):
        cuts = [min(max(int(i) + (n if int(i) < 0 else 0), 0), n) for i in indices_or_sections]
        bounds = list(zip([0] + cuts, cuts + [n]))
        bounds = [(lo, max(lo, hi)) for lo, hi in bounds]
    else:
        k = int(indices_or_sections)
        if k <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {k}")
        q, r = divmod(n, k)
        sizes = [q + 1] * r + [q] * (k - r)
        b = np.cumsum([0] + sizes)
        bounds = list(zip(b[:-1], b[1:]))
    outs = []
    for lo, hi in bounds:
        outs.append(Tensor._wrap(tag(CS.slice_axis(self._n, int(lo), int(hi), axis),
                                     "SliceBackward0", [self._n])))
    return tuple(outs)


def meshgrid(*tensors, indexing=None):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the "
                      "indexing argument.", UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError("torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but "
                           f"received: {indexing}")
    for t in tensors:
        _need_tensor("meshgrid", t, "tensors")
        if _nd(t) > 1:
            raise RuntimeError("torch.meshgrid: Expected 0D or 1D tensor in the tensor list but"
                               f" got: {t}")
    sizes = [max(int(np.prod(_shape(t))), 1) if _nd(t) else 1 for t in tensors]
    k = len(tensors)
    swap = indexing == "xy" and k >= 2
    shp = list(sizes)
    if swap:
        shp[0], shp[1] = shp[1], shp[0]
    outs = []
    for i, t in enumerate(tensors):
        d = i if not swap or i > 1 else 1 - i
        n = ops.reshape(t._n, (sizes[i],))
        outs.append(_w(ops.broadcast_in_dim(n, shape=tuple(shp), dims=(d,)),
                       "ExpandBackward0", t))
    return tuple(outs)


def _atleast(t, nd):
    s = _shape(t)
    if len(s) >= nd:
        return t
    new = {1: (1,) * (1 - len(s)) + s, 2: (1,) * (2 - len(s)) + s,
           3: (1, 1, 1) if not s else (1, s[0], 1) if len(s) == 1 else s + (1,)}[nd]
    return tensor_ops.view(ops.reshape(t._n, new), t._n, "ViewBackward0")


def _tensors(fn, tensors):
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{fn}(): argument 'tensors' (position 1) must be tuple of Tensors, not "
                        f"{type(tensors).__name__}")
    return [_need_tensor(fn, t, "tensors") for t in tensors]


def hstack(tensors):
    from .factory import cat
    ts = [_atleast(t, 1) for t in _tensors("hstack", tensors)]
    return cat(ts, 0 if _nd(ts[0]) == 1 else 1)


def vstack(tensors):
    from .factory import cat
    return cat([_atleast(t, 2) for t in _tensors("vstack", tensors)], 0)


def dstack(tensors):
    from .factory import cat
    return cat([_atleast(t, 3) for t in _tensors("dstack", tensors)], 2)


def column_stack(tensors):
    from .factory import cat
    ts = [tensor_ops.view(ops.reshape(t._n, (max(int(np.prod(_shape(t))), 1) if _nd(t) == 0 else
                                    _shape(t)[0], 1)), t._n, "ViewBackward0")
          if _nd(t) <= 1 else t for t in _tensors("column_stack", tensors)]
    return cat(ts, 1)


# --- clamp variants ------------------------------------------------------------------------
def _clamp_one(is_min):
    name = "clamp_min" if is_min else "clamp_max"

    def f(self, bound):
        from .torch_composites import clamp
        out = clamp(self, min=bound) if is_min else clamp(self, max=bound)
        which = "Min" if is_min else "Max"
        if hasattr(out._n, "grad_fn"):  # (a value traced by a transform has none)
            out._n.grad_fn = None  # renamed below
        return _w(out._n, f"Clamp{which}Backward{1 if isinstance(bound, Tensor) else 0}",
                  self, *([bound] if isinstance(bound, Tensor) else []))
    f.__name__ = name
    return f


clamp_min, clamp_max = _clamp_one(True), _clamp_one(False)


METHODS = {f.__name__: f for f in (
    repeat_interleave, repeat, tile, sort, argsort, msort, roll, flip, fliplr, flipud, rot90,
    diagonal, diag, trace, triu, tril, kron, cross, cumprod, diff, median, quantile,
    take_along_dim, gather, index_select, scatter_add, scatter_add_, split, chunk, tensor_split,
    clamp_min, clamp_max)}


def install():
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)


def _fn(method):
    def f(input, *args, **kwargs):
        _need_tensor(method.__name__, input)
        return method(input, *args, **kwargs)
    f.__name__ = method.__name__
    f.__doc__ = method.__doc__
    return f


FUNCTIONS = {name: _fn(m) for name, m in METHODS.items() if name != "repeat"}
FUNCTIONS["repeat_interleave"] = lambda input, repeats=None, dim=None, *, output_size=None: \
    repeat_interleave(input, repeats, dim, output_size=output_size) if isinstance(
        input, Tensor) else repeat_interleave(Tensor._from_array(np.asarray(input)), repeats, dim)
FUNCTIONS.update(meshgrid=meshgrid, hstack=hstack, vstack=vstack, dstack=dstack,
                 column_stack=column_stack)
