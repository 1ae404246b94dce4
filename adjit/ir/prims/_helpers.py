"""Helpers that make the common primitive one line: unary and binary elementwise, samples."""
from __future__ import annotations

import numpy as np

from ..core import NoDerivative, Primitive, register
from ..types import ALL, FLOATS, NUMERIC, AType  # noqa: F401  (the prims import them here)

# Sample domains for the registry sweep: where a primitive is defined and smooth.
DOMAINS = {
    "any": lambda rng, shp: rng.uniform(-2.0, 2.0, shp),
    "positive": lambda rng, shp: rng.uniform(0.5, 2.5, shp),
    "nonzero": lambda rng, shp: rng.choice([-1.0, 1.0], shp) * rng.uniform(0.5, 2.0, shp),
    "gt_minus_one": lambda rng, shp: rng.uniform(-0.5, 2.0, shp),
    "small": lambda rng, shp: rng.uniform(-1.0, 1.0, shp),
    "int": lambda rng, shp: rng.integers(-5, 6, shp),
}


def sample_array(rng, shp, dtype, domain="any"):
    arr = DOMAINS[domain](rng, shp)
    return np.asarray(arr, dtype={"f32": np.float32, "f64": np.float64, "i32": np.int32,
                                  "i64": np.int64, "bool": np.bool_}[dtype])


def unary_rule(x, **_):
    return x


def binary_rule(name, out_dtype=None):
    def rule(x, y, **_):
        xw, yw = x.weak, y.weak
        xs = y.shape if xw else x.shape  # a weak (literal) operand takes the other's shape
        ys = x.shape if yw else y.shape
        if xs != ys:
            raise ValueError(f"{name}: operand shapes {xs} and {ys} differ "
                             "(broadcasting is explicit in the IR)")
        if x.dtype != y.dtype:
            raise TypeError(f"{name}: operand dtypes {x.dtype} and {y.dtype} differ")
        dt = out_dtype or x.dtype
        if dt == x.dtype:  # the type of a non-weak operand (types are immutable, unary_rule's way)
            if not xw:
                return x
            if not yw:
                return y
        return AType(xs, dt)
    return rule


def elementwise_jvp(vjp):
    """An elementwise primitive's Jacobian is diagonal, so its jvp is its vjp applied to the
    tangents and summed: one rule serves both directions."""
    def jvp(tangents, *primals, out, **params):
        total = None
        for i, t in enumerate(tangents):
            if t is None:
                continue
            cts = vjp(t, *primals, out=out, **params)
            c = cts[i]
            if c is None:
                continue
            if isinstance(c, NoDerivative):
                c.fail()
            total = c if total is None else _add(total, c)
        return total
    return jvp


def _add(a, b):
    from .. import ops
    return ops.add(a, b)


def unary(name, impl, vjp, domain="any", dtypes=FLOATS, smooth=True, saves=True, doc="",
          **record):
    """Register a unary elementwise primitive (see unary_prim)."""
    return register(unary_prim(name, impl, vjp, domain, dtypes, smooth, saves, doc, **record))


def unary_prim(name, impl, vjp, domain="any", dtypes=FLOATS, smooth=True, saves=True, doc="",
               **record):
    """The record of a unary elementwise primitive; vjp(ct, x, out) -> ct_x. `record`: the
    rest of its plain data (lowering, cost, numpy, torch, grad_fn, torch_saves; core.Primitive)."""
    def samples(dt, rng):
        return [([sample_array(rng, (3, 4), dt, domain)], {}),
                ([sample_array(rng, (), dt, domain)], {})]
    rule = None if vjp is None else (lambda ct, x, out, **p: [vjp(ct, x, out)])
    return Primitive(name, unary_rule, impl, rule,
                     None if rule is None else elementwise_jvp(rule), samples,
                     saves=saves, smooth=smooth, dtypes=dtypes, doc=doc, kind="unary", **record)


def _literal(rng, dt, domain):
    """A Python scalar operand: a float for float ops, else a value of the dtype (a literal
    must be representable in the dtype it takes, see ir/param_rules.py)."""
    if dt in ("f32", "f64"):
        return float(sample_array(rng, (), "f64", domain))
    return sample_array(rng, (), dt, domain).item()


def binary(name, impl, vjp, domain=("any", "any"), dtypes=FLOATS, out_dtype=None, smooth=True,
           saves=True, doc="", **record):
    """Register a binary elementwise primitive; vjp(ct, x, y, out) -> [ct_x, ct_y]."""
    def samples(dt, rng):
        d0, d1 = domain
        return [([sample_array(rng, (3, 4), dt, d0), sample_array(rng, (3, 4), dt, d1)], {}),
                ([sample_array(rng, (5,), dt, d0), _literal(rng, dt, d1)], {})]
    rule = None
    if vjp is not None:
        def rule(ct, x, y, out, **p):
            return vjp(ct, x, y, out)
    return register(Primitive(name, binary_rule(name, out_dtype), impl, rule,
                              None if rule is None else elementwise_jvp(rule), samples,
                              saves=saves, smooth=smooth, dtypes=dtypes, doc=doc, kind="binary",
                              **record))
