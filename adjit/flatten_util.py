"""`adjit.flatten_util.ravel_pytree`: a pytree of NumPy arrays and scalars as one flat vector,
and the function that rebuilds the tree from such a vector (as `jax.flatten_util`). Both are
NumPy code, so they trace: `grad`, `jit`, `vmap` see through them (differentiable both ways).

Leaves are ordered as adjit's pytrees order them (dict keys sorted, as JAX); the vector's
dtype is NumPy's `result_type` of the leaves' dtypes (JAX promotes int32 with float32 to
float32 where NumPy gives float64; the two agree on every float-only tree). An empty tree gives
an empty float32 vector. When every leaf has the vector's dtype, `unravel` keeps the dtype of
the vector it is given; otherwise it requires that dtype and casts each leaf back to its own.
"""
from __future__ import annotations

import math

import numpy as np

from .tracer import pytree as _pytree
from .tracer.tensor import Tensor as _Tensor

__all__ = ["ravel_pytree"]


def _dtype(leaf):
    d = getattr(leaf, "dtype", None)
    return np.dtype(d) if isinstance(d, np.dtype) else np.asarray(leaf).dtype


class _Unravel:
    """unravel(flat) -> the pytree (a vector of the raveled length; see the module doc)."""
    __slots__ = ("treedef", "sizes", "shapes", "from_dtypes", "to_dtype")

    def __init__(self, treedef, sizes, shapes, from_dtypes, to_dtype):
        self.treedef, self.sizes, self.shapes = treedef, sizes, shapes
        self.from_dtypes, self.to_dtype = from_dtypes, to_dtype

    def __call__(self, flat):
        if not self.sizes:
            return _pytree.unflatten(self.treedef, [])
        shape = tuple(np.shape(flat))
        total = sum(self.sizes)
        if shape != (total,):
            raise ValueError(f"unravel: expected a vector of shape ({total},) (the raveled "
                             f"pytree), got an array of shape {shape}")
        if self.from_dtypes is not None and _dtype(flat) != self.to_dtype:
            raise TypeError(f"unravel: given an array of dtype {_dtype(flat)}, but expected "
                            f"dtype {self.to_dtype} (the pytree's leaves have several dtypes)")
        leaves, at = [], 0
        for k, (n, shp) in enumerate(zip(self.sizes, self.shapes)):
            part = flat[at:at + n].reshape(shp)
            at += n
            if self.from_dtypes is not None and self.from_dtypes[k] != self.to_dtype:
                part = part.astype(self.from_dtypes[k])
            elif type(part) is np.ndarray:
                part = part.copy()  # no leaf aliases the vector
            leaves.append(part)
        return _pytree.unflatten(self.treedef, leaves)


def ravel_pytree(pytree):
    """(flat, unravel): the leaves of `pytree` raveled and concatenated into one 1-D array, and
    the function that maps such a vector back to a pytree of the same structure, shapes and
    dtypes (jax.flatten_util.ravel_pytree)."""
    leaves, treedef = _pytree.flatten(pytree)
    for leaf in leaves:
        if isinstance(leaf, _Tensor):
            raise TypeError("ravel_pytree: the leaves are NumPy arrays or scalars (the NumPy "
                            "front); got an adjit Tensor (use torch.cat([t.reshape(-1) ...]))")
    if not leaves:
        return np.zeros((0,), np.float32), _Unravel(treedef, (), (), None, None)
    from_dtypes = tuple(_dtype(v) for v in leaves)
    to_dtype = np.result_type(*from_dtypes)
    shapes = tuple(tuple(np.shape(v)) for v in leaves)
    sizes = tuple(math.prod(s) for s in shapes)
    same = all(d == to_dtype for d in from_dtypes)
    parts = []
    for v, d in zip(leaves, from_dtypes):
        if not hasattr(v, "reshape"):  # a Python or NumPy scalar
            v = np.asarray(v)
        parts.append(np.ravel(v if d == to_dtype else v.astype(to_dtype)))
    flat = np.concatenate(parts)
    return flat, _Unravel(treedef, sizes, shapes, None if same else from_dtypes, to_dtype)
