"""The parameter check of every primitive, run by the verifier.

A shape rule answers "what type comes out"; it need not reject every parameter it can compute
a type from (`cumsum[axis=7]` on a 2-d value keeps its type, a Python list accepts index -1),
and a literal operand's value is not part of any type. The evaluator and native code then do
something with the bad value: NumPy raises, the lowering indexes past the shape, an i64
literal of 2**70 wraps. So the verifier asks, besides the shape rule, `check_params(eqn)`:

- every parameter is one the primitive's shape rule declares, and every value has its kind:
  the rules below are keyed by parameter name (`axis`, `axes`, `perm`, `shape`, `dims`,
  `start`/`limit`/`strides`, `low`/`high`/`interior`, `contract`/`batch`, `dtype`/`new_dtype`,
  `value`, `reverse`, `expect`), so a new primitive that names its parameters the same way is
  checked without a line here; `PER_PRIM` adds or replaces rules for one primitive;
- axes are in range of the operand they index (operand 0; both operands for dot_general),
  without negative (Python-style) indices, which the IR does not use;
- every dtype named is one of the IR's (`DTYPES`);
- every literal operand and `full`'s value is representable in its dtype (integers in range,
  bool 0/1, a finite float that does not overflow f32).

`check_params` returns a list of problems (empty when all is well).
"""
from __future__ import annotations

import inspect
import math
import numbers

import numpy as np

from .core import Lit
from .types import DTYPES

_INT_RANGE = {"i32": (-2 ** 31, 2 ** 31 - 1), "i64": (-2 ** 63, 2 ** 63 - 1)}
_F32_MAX = float(np.finfo(np.float32).max)


def _is_int(v):
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_))


def _ints(v, what):
    if not isinstance(v, (tuple, list)) or not all(_is_int(a) for a in v):
        return f"{what} must be a tuple of integers, got {v!r}"
    return None


def representable(value, dtype):
    """None if the Python/NumPy scalar `value` is exactly a `dtype` value, else the reason."""
    if dtype not in DTYPES:
        return f"unknown dtype {dtype!r}"
    if isinstance(value, (bool, np.bool_)):
        return None  # True/False are 1/0 in every dtype
    if not isinstance(value, (numbers.Real, np.number)):
        return f"{value!r} is not a number"
    if dtype == "bool":
        return None if value in (0, 1) else f"{value!r} is not a bool (0 or 1)"
    if dtype in _INT_RANGE:
        if isinstance(value, (float, np.floating)):
            if not math.isfinite(value) or value != int(value):
                return f"{value!r} is not an integer"
            value = int(value)
        lo, hi = _INT_RANGE[dtype]
        return None if lo <= int(value) <= hi else \
            f"{value!r} is out of range for {dtype} [{lo}, {hi}]"
    try:
        f = float(value)
    except OverflowError:
        return f"{value!r} overflows {dtype}"
    if dtype == "f32" and math.isfinite(f) and abs(f) > _F32_MAX:
        return f"{value!r} overflows f32 (largest {_F32_MAX:.6g})"
    return None


# --------------------------------------------------------------------- rules by parameter name
def _axis(v, types, params):
    nd = types[0].ndim if types else 0
    if not _is_int(v) or not 0 <= v < nd:
        return f"axis={v!r} is not an axis of a {nd}-d operand (0 to {nd - 1})"


def _axes(v, types, params):
    nd = types[0].ndim if types else 0
    bad = _ints(v, "axes")
    if bad:
        return bad
    if any(not 0 <= a < nd for a in v) or len(set(v)) != len(v):
        return f"axes={tuple(v)} are not distinct axes of a {nd}-d operand (0 to {nd - 1})"


def _perm(v, types, params):
    nd = types[0].ndim if types else 0
    if _ints(v, "perm") or sorted(v) != list(range(nd)):
        return f"perm={v!r} is not a permutation of {nd} axes"


def _shape(v, types, params):
    if _ints(v, "shape") or any(d < 0 for d in v):
        return f"shape={v!r} must be a tuple of non-negative integers"


def _dims(v, types, params):
    return _ints(v, "dims")


def _per_axis(name, minimum=None):
    def rule(v, types, params):
        nd = types[0].ndim if types else 0
        bad = _ints(v, name)
        if bad:
            return bad
        if len(v) != nd:
            return f"{name}={tuple(v)} needs one entry per axis of a {nd}-d operand"
        if minimum is not None and any(a < minimum for a in v):
            return f"{name}={tuple(v)} must be >= {minimum}"
    return rule


def _dot_dims(name):
    def rule(v, types, params):
        ok = isinstance(v, (tuple, list)) and len(v) == 2 and not _ints(v[0], name) and \
            not _ints(v[1], name) and len(v[0]) == len(v[1])
        if not ok:
            return f"{name}={v!r} must be a pair of equally long tuples of axes"
        for side, (axes, t) in enumerate(zip(v, types[:2])):
            if any(not 0 <= a < t.ndim for a in axes) or len(set(axes)) != len(axes):
                return (f"{name}={tuple(map(tuple, v))}: {tuple(axes)} are not distinct axes "
                        f"of operand {side} ({t.ndim}-d)")
        contract = params.get("contract")
        if name == "batch" and _dot_dims("contract")(contract, types, {}) is None:
            for side in (0, 1):  # batch and contracting axes are disjoint
                if set(v[side]) & set(contract[side]):
                    return f"batch={v!r} overlaps contract={contract!r}"
    return rule


def _dtype(v, types, params):
    if v not in DTYPES:
        return f"{v!r} is not a dtype (one of {', '.join(DTYPES)})"


def _bool(name):
    def rule(v, types, params):
        if not isinstance(v, (bool, np.bool_)):
            return f"{name}={v!r} must be true or false"
    return rule


def _uplo(v, types, params):
    if v not in ("L", "U"):
        return f"uplo={v!r} must be 'L' or 'U'"


def _qr_mode(v, types, params):
    if v not in ("reduced", "complete"):
        return f"mode={v!r} must be 'reduced' or 'complete'"


def _full_value(v, types, params):
    why = representable(v, params.get("dtype"))
    if why:
        return f"value {why}"


BY_NAME = {
    "axis": _axis, "axes": _axes, "perm": _perm, "shape": _shape, "dims": _dims,
    "start": _per_axis("start", 0), "limit": _per_axis("limit", 0),
    "strides": _per_axis("strides", 1), "low": _per_axis("low", 0),
    "high": _per_axis("high", 0), "interior": _per_axis("interior", 0),
    "contract": _dot_dims("contract"), "batch": _dot_dims("batch"),
    "dtype": _dtype, "new_dtype": _dtype, "value": _full_value,
    "reverse": _bool("reverse"), "expect": _bool("expect"), "descending": _bool("descending"),
    "check": _bool("check"), "lower": _bool("lower"), "trans": _bool("trans"),
    "unit_diagonal": _bool("unit_diagonal"), "uplo": _uplo, "mode": _qr_mode,
}

# primitive name -> {parameter name: rule or None (not checked here)}: where a parameter's
# meaning differs from the shared rule above
PER_PRIM = {
    "custom_jvp_call": {"fun": None, "jvp": None, "name": None, "nconsts": None},
    "custom_vjp_call": {"fun": None, "fwd": None, "bwd": None, "name": None, "nconsts": None},
}

_DECLARED: dict = {}


def _declared(prim):
    """(parameters prim takes, those it requires): the keyword-only parameters of its shape
    rule, or PER_PRIM's names for a rule that takes **params (custom calls)."""
    got = _DECLARED.get(prim.name)
    if got is None:
        try:
            ps = list(inspect.signature(prim.shape_rule).parameters.values())
        except (TypeError, ValueError):  # pragma: no cover - a builtin
            ps = []
        known = {p.name for p in ps if p.kind is p.KEYWORD_ONLY}
        required = {p.name for p in ps if p.kind is p.KEYWORD_ONLY and p.default is p.empty}
        if any(p.kind is p.VAR_KEYWORD for p in ps):
            known |= set(PER_PRIM.get(prim.name, ()))
        got = _DECLARED[prim.name] = (frozenset(known), frozenset(required))
    return got


def check_params(prim, inputs, params):
    """Problems with `params` and the literal operands of one equation of `prim` whose
    operands are `inputs` (Vars or Lits, each with `.type`)."""
    problems = []
    for k, x in enumerate(inputs):
        if isinstance(x, Lit):
            why = representable(x.value, x.dtype)
            if why:
                problems.append(f"literal operand {k}: {why}")
    known, required = _declared(prim)
    for name in sorted(set(params) - known):
        problems.append(f"unknown parameter {name}= (takes {', '.join(sorted(known))})"
                        if known else f"unknown parameter {name}= (takes none)")
    for name in sorted(required - set(params)):
        problems.append(f"missing parameter {name}=")
    types = [x.type for x in inputs]
    own = PER_PRIM.get(prim.name, {})
    for name, value in params.items():
        rule = own[name] if name in own else BY_NAME.get(name)
        if rule is None:
            continue
        why = rule(value, types, params)
        if why:
            problems.append(why)
    return problems
