"""What compiled code and the runtime agree on, importable without the rest of codegen (a
disk-cache hit must not pay for importing the lowering): the version of the generated code,
the floating-point contract, the interpreter's object layout the `_py` entry reads, and the
types of outputs.

Bump LOWERING_VERSION whenever generated code changes meaning (it is part of every disk-cache
key; lower.py re-exports it).
"""
from __future__ import annotations

LOWERING_VERSION = "10"
# Fast-math flags only where the order of operations is ours to choose (reduction accumulators,
# contractions); elementwise code keeps NumPy's rounding exactly. Never nnan/ninf: NaN and inf
# must propagate as NumPy's do.
REDUCE_FLAGS = ("reassoc", "contract", "nsz")
# what the generated code is allowed to do with floating point (part of the disk-cache key)
MATH_FLAGS = f"reduce={','.join(REDUCE_FLAGS)};elementwise=exact;mathlib=taylor-f64"
# byte offsets of a tuple's first item and of an ndarray's data pointer in this interpreter
PY_ABI = (tuple.__basicsize__, object.__basicsize__)


def out_type(v):
    """The type of an output: a Var's, or a literal's (its dtype, else its Python type's)."""
    from ..ir.core import Lit
    from ..ir.types import AType
    if isinstance(v, Lit):
        dt = v.dtype or ("bool" if isinstance(v.value, bool) else
                         "i64" if isinstance(v.value, int) else "f64")
        return AType((), dt)
    return v.type
