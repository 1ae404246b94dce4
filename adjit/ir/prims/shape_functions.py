"""Primitives of NumPy's shape and indexing functions that no composition of others gives.

argsort: the stable sorting permutation along one axis. Sorted values are a gather through it
(`take_along_axis`), so their derivative is a gather forward and a scatter_add backward: the
cotangent flows back through the permutation, to any order, with no derivative rule of its own.
Order: NumPy's (NaN sorts last ascending; PyTorch's `descending=True` puts NaN first), ties
keep their original order in both directions (PyTorch's stable=True).
"""
from __future__ import annotations

import numpy as np

from ..types import AType
from ._helpers import NUMERIC, sample_array
from .structural import prim


def _argsort_rule(x, *, axis, descending):
    if not 0 <= axis < x.ndim:
        raise ValueError(f"argsort: bad axis {axis} for shape {x.shape}")
    return AType(x.shape, "i64")


def _argsort_impl(x, *, axis, descending):
    if not descending:
        return np.argsort(x, axis=axis, kind="stable").astype(np.int64)
    # descending, ties in their original order: sort the reversed array ascending (its ties
    # then come last-first), reverse that order and map the positions back
    n = x.shape[axis]
    r = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
    return (n - 1 - np.flip(r, axis)).astype(np.int64)


def _argsort_samples(dt, rng):
    ties = np.array([[2, 1, 2, 0, 1], [3, 3, 1, 1, 0]], dtype=sample_array(rng, (), dt).dtype)
    out = [([sample_array(rng, (3, 4), dt)], {"axis": 1, "descending": False}),
           ([sample_array(rng, (5, 2), dt)], {"axis": 0, "descending": True}),
           ([ties], {"axis": 1, "descending": False}), ([ties], {"axis": 1, "descending": True})]
    if dt in ("f32", "f64"):
        nan = np.array([1.0, np.nan, -1.0, np.nan, 0.5], dtype=ties.dtype)
        out += [([nan], {"axis": 0, "descending": False}),
                ([nan], {"axis": 0, "descending": True})]
    return out


prim("argsort", _argsort_rule, _argsort_impl, None, None, _argsort_samples, dtypes=NUMERIC,
     smooth=False, saves=False, kind="axis",
     doc="stable sorting permutation along `axis` (NaN last; descending: NaN first)")
