"""Helpers of adjit.scipy: which arguments are traced, the primitives' values of NumPy code."""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..tracer.ndarray import TracedArray
from ..tracer.promote import promote, wrap


def traced(*xs):
    return any(isinstance(x, TracedArray) for x in xs)


def stop_gradient(x):
    """x without derivative (a plain array is returned as it is)."""
    if isinstance(x, TracedArray) and x._n.trace.active:
        return TracedArray(ops.stop_gradient(x._n), x.weak)
    return x


def floats(*xs):
    """Plain values as float64 arrays (integers as float, as SciPy computes); traced ones kept."""
    return tuple(x if isinstance(x, TracedArray) else
                 np.asarray(x, np.float64 if np.asarray(x).dtype.kind in "biu" else None)
                 for x in xs)


__all__ = ["traced", "stop_gradient", "floats", "promote", "wrap", "TracedArray"]
