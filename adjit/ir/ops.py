"""Thin wrappers over `bind`, used by derivative rules, composites and the two front ends.

Everything here works on recorded Nodes, NumPy arrays and Python scalars alike, so a vjp rule
written with these functions is ordinary IR when recorded and plain NumPy when not.
"""
from __future__ import annotations

import functools

import numpy as np

from .core import Node, REGISTRY, STATE, bind, on_register
from .types import AType, DTYPES, dtype_name


_ND = np.ndarray


def shape(x):
    tx = type(x)
    if tx is _ND:  # (the derivative rules' operands on grad's eager tier)
        return x.shape
    if tx is Node or isinstance(x, Node):  # (a traced value: no isinstance call)
        return x.type.shape
    return np.shape(x)


def dtype(x):
    if type(x) is Node or isinstance(x, Node):
        return x.type.dtype
    if isinstance(x, (np.ndarray, np.generic)):
        return dtype_name(x.dtype)
    return None  # a Python scalar: weakly typed


def _b(name):
    p = REGISTRY[name]
    return lambda *args, **params: bind(p, *args, **params)


_BOUND: dict = {}  # name -> its function, made once (dropped when the primitive is unregistered)


def __getattr__(name):
    # ops.exp(x), ops.mul(x, y), ... for every registered primitive: made on first use, then a
    # module attribute (found without this call), `bind` with the primitive bound (no frame)
    # (called explicitly too, `ops.__getattr__("reshape")`: a name this module defines keeps
    # its function)
    if name in REGISTRY:
        f = _BOUND.get(name)
        if f is None:
            f = _BOUND[name] = functools.partial(bind, REGISTRY[name])
        globals().setdefault(name, f)
        return f
    raise AttributeError(name)


def _unbind(p):
    f = _BOUND.pop(p.name, None)
    if f is not None and globals().get(p.name) is f:
        del globals()[p.name]


on_register(lambda p: None, _unbind)


# (add, sub, mul, div, neg: made by `__getattr__` like every primitive's function, `bind`
# with the primitive bound: no frame of their own on the derivative rules' hot path)


def select(p, x, y):
    return bind(REGISTRY["select"], p, x, y)


def convert(x, dt):
    dt = dtype_name(dt)
    if dtype(x) == dt:
        return x
    return bind(REGISTRY["convert_element_type"], x, new_dtype=dt)


def full(shp, value, dt):
    return bind(REGISTRY["full"], shape=tuple(shp), value=value, dtype=dtype_name(dt))


def zeros(shp, dt):
    dt = dtype_name(dt)
    return bind(REGISTRY["full"], shape=tuple(shp), value=0.0 if dt in ("f32", "f64") else 0,
                dtype=dt)


def zero_of(x):
    """A +0 of x's dtype and shape for a `select` branch: the literal 0.0 for a float x (a
    branch literal takes the other branch's type: no `full` equation per select), else zeros."""
    dt = dtype(x)
    if dt == "f32" or dt == "f64":
        return 0.0
    return zeros(shape(x), dt or "f64")


def eye(n, dt):
    """The n x n identity matrix, made from primitives (`full` of ones spread by `pad`'s
    interior padding of n zeros, reshaped): inside a trace it is recorded, and the passes
    recognise it (adjit.ir.passes.is_identity)."""
    dt = dtype_name(dt)
    one = full((n,), 1.0 if dt in ("f32", "f64") else 1, dt)
    if n == 1:
        return reshape(one, (1, 1))
    spread = bind(REGISTRY["pad"], one, low=(0,), high=(0,), interior=(n,))
    return reshape(spread, (n, n))


def reshape(x, shp):
    shp = tuple(shp)
    if shape(x) == shp:
        return x
    if type(x) is Node and STATE.grad_enabled:
        # a traced reshape of a reshape's result reshapes the original (the same elements in
        # the same order): no (32, 1) -> (32,) after (32,) -> (32, 1) in an adjoint (not under
        # no_grad, where the result must not carry the original's derivative)
        r = x.rec
        if r is not None and r.prim.name == "reshape":
            y = r.inputs[0]
            if type(y) is Node and y.trace is x.trace:
                if y.type.shape == shp:
                    return y
                x = y
    return bind(REGISTRY["reshape"], x, shape=shp)


def full_of(x):
    """The params of the `full` that made x, a float constant recorded on the innermost
    trace (where a `full` made now would be recorded), else None."""
    if type(x) is Node:
        r = x.rec
        if r is not None and r.prim.name == "full" and x.trace is STATE.stack[-1]:
            p = r.params
            if p["dtype"] == "f32" or p["dtype"] == "f64":
                return p
    return None


def neg(x):
    """-x; on a traced value that is itself a `neg` (or a `full`), the operand (a `full` of
    the negated value): the same bits (negation flips the sign bit only, NaN payloads too)."""
    if type(x) is Node:
        r = x.rec
        if r is not None:
            if r.prim.name == "neg":
                y = r.inputs[0] if STATE.grad_enabled else None
                if type(y) is Node and y.trace is x.trace:
                    return y
            else:
                p = full_of(x)
                if p is not None:
                    return bind(REGISTRY["full"], shape=p["shape"], value=-p["value"],
                                dtype=p["dtype"])
    return bind(REGISTRY["neg"], x)


def div(x, y):
    """x / y; a traced float `full` divided by a Python number is the `full` of the quotient,
    computed in its dtype as every tier divides (IEEE: the same bits), e.g. mean's seed."""
    if type(x) is Node and (type(y) is float or type(y) is int):
        p = full_of(x)
        if p is not None:
            dt = DTYPES[p["dtype"]]
            with np.errstate(all="ignore"):
                q = np.divide(np.asarray(p["value"], dt), np.asarray(y, dt))
            return bind(REGISTRY["full"], shape=p["shape"], value=float(q), dtype=p["dtype"])
    return bind(REGISTRY["div"], x, y)


def transpose(x, perm):
    perm = tuple(perm)
    if perm == tuple(range(len(perm))):
        return x
    return bind(REGISTRY["transpose"], x, perm=perm)


def reduce_sum(x, axes):
    n = max(len(shape(x)), 1)
    axes = tuple(sorted([a % n for a in axes]))
    if not axes:
        return x
    return bind(REGISTRY["reduce_sum"], x, axes=axes)


def broadcast_to(x, shp):
    """NumPy-style broadcast (align trailing dims) as an explicit broadcast_in_dim."""
    shp = tuple(shp)
    xs = shape(x)
    if xs == shp:
        return x
    if not isinstance(x, (Node, np.ndarray)):
        return full(shp, x, dtype(x) or "f64")
    nd = len(shp) - len(xs)
    if nd < 0:
        raise ValueError(f"cannot broadcast shape {xs} to {shp}")
    for d, s in zip(xs, shp[nd:]):
        if d != 1 and d != s:
            raise ValueError(f"cannot broadcast shape {xs} to {shp}")
    return bind(REGISTRY["broadcast_in_dim"], x, shape=shp, dims=tuple(range(nd, len(shp))))


def unbroadcast(ct, shp):
    """Sum a cotangent of a broadcast result back to the operand's shape (`shp`)."""
    shp = tuple(shp)
    cs = shape(ct)
    if cs == shp:
        return ct
    nd = len(cs) - len(shp)
    axes = tuple(range(nd)) + tuple(nd + i for i, d in enumerate(shp) if d == 1 and cs[nd + i] != 1)
    return reshape(reduce_sum(ct, axes), shp)


def is_zero_literal(x):
    return isinstance(x, (int, float)) and x == 0


def atype(x) -> AType:
    return AType(shape(x), dtype(x))
