"""Special functions (scipy.special's, torch.special's): one record each.

Values are SciPy's: the NumPy impl calls the scipy.special ufunc in double and rounds once to
the operand's dtype, and the native code calls the same scalar C function (codegen/special.py,
the ("extern", capsule) lowering), so the interpreter and compiled code agree bit for bit.
Derivatives are IR written with other primitives (erf' = 2/sqrt(pi) exp(-x^2), gammaln' =
digamma, digamma' = polygamma[n=1], ...), so every order is available.

`SCIPY` maps the name of each scipy.special ufunc that traced arrays support to what applies
it: a primitive's name, or a function of float operands (Nodes of one dtype and shape, or
Python floats) written with ops (the composites: logit, xlogy-like branches, entropies).
"""
from __future__ import annotations

import math

import numpy as np

from .. import ops as o
from ..core import Primitive, register
from ._helpers import DOMAINS, FLOATS, binary, sample_array, unary

DOMAINS.setdefault("unit", lambda rng, shp: rng.uniform(0.05, 0.95, shp))
DOMAINS.setdefault("zero_two", lambda rng, shp: rng.uniform(0.1, 1.9, shp))

SQRT_PI = math.sqrt(math.pi)
SQRT_2PI = math.sqrt(2.0 * math.pi)


def _sp(name):
    """The NumPy impl: scipy.special.<name> in double, rounded once to the operand dtype."""
    def impl(*args, **_):
        import scipy.special as sp
        f = getattr(sp, name)
        dt = args[0].dtype
        out = f(*[np.asarray(a, np.float64) for a in args])
        return np.asarray(out).astype(dt, copy=False)
    return impl


def _rec(capsule, cost, torch=(), grad_fn=None, torch_saves="inputs"):
    return dict(lowering=("extern", capsule), cost=cost, torch=torch, grad_fn=grad_fn,
                torch_saves=torch_saves)


def _gauss(x):
    return o.exp(o.mul(o.mul(x, x), -1.0))


unary("erf", _sp("erf"), lambda ct, x, out: o.mul(ct, o.mul(_gauss(x), 2.0 / SQRT_PI)),
      **_rec("__pyx_fuse_1erf", 40, ("erf",), "ErfBackward0"))
unary("erfc", _sp("erfc"), lambda ct, x, out: o.mul(ct, o.mul(_gauss(x), -2.0 / SQRT_PI)),
      **_rec("__pyx_fuse_1erfc", 40, ("erfc",), "ErfcBackward0"))
unary("erfinv", _sp("erfinv"),
      lambda ct, x, out: o.mul(ct, o.mul(o.exp(o.mul(out, out)), SQRT_PI / 2.0)),
      domain="small", **_rec("__pyx_fuse_0erfinv", 60, ("erfinv",), "ErfinvBackward0"))
unary("erfcinv", _sp("erfcinv"),
      lambda ct, x, out: o.mul(ct, o.mul(o.exp(o.mul(out, out)), -SQRT_PI / 2.0)),
      domain="zero_two", **_rec("erfcinv", 60))
unary("gammaln", _sp("gammaln"), lambda ct, x, out: o.mul(ct, o.digamma(x)),
      domain="positive", **_rec("gammaln", 60, ("lgamma",), "LgammaBackward0"))
unary("gamma", _sp("gamma"), lambda ct, x, out: o.mul(ct, o.mul(out, o.digamma(x))),
      domain="positive", **_rec("__pyx_fuse_1gamma", 60))
unary("digamma", _sp("psi"), lambda ct, x, out: o.mul(ct, o.polygamma(x, n=1)),
      domain="positive", **_rec("__pyx_fuse_1psi", 60, ("digamma",), "DigammaBackward0"))


def _polygamma_impl(x, n):
    import scipy.special as sp
    return np.asarray(sp.polygamma(n, np.asarray(x, np.float64))).astype(x.dtype, copy=False)


def _polygamma_rule(x, *, n):
    if type(n) is not int or n < 0:
        raise ValueError(f"polygamma: order n={n!r} must be a non-negative int")
    return x


def _polygamma_vjp(ct, x, out, n):
    return [o.mul(ct, o.polygamma(x, n=n + 1))]


def _polygamma_jvp(tangents, x, out, n):
    t = tangents[0]
    return None if t is None else o.mul(t, o.polygamma(x, n=n + 1))


def _polygamma_samples(dt, rng):
    return [([sample_array(rng, (3, 4), dt, "positive")], {"n": 1}),
            ([sample_array(rng, (5,), dt, "positive")], {"n": 0}),
            ([sample_array(rng, (), dt, "positive")], {"n": 3})]


register(Primitive("polygamma", _polygamma_rule, _polygamma_impl, _polygamma_vjp,
                   _polygamma_jvp, _polygamma_samples, kind="unary",
                   lowering=("special", "polygamma"), cost=80, grad_fn="PolygammaBackward0"))

unary("ndtr", _sp("ndtr"), lambda ct, x, out: o.mul(ct, o.div(o.exp(o.mul(o.mul(x, x), -0.5)),
                                                                 SQRT_2PI)),
      **_rec("__pyx_fuse_1ndtr", 40))
# d/dx log ndtr(x) = phi(x) / ndtr(x) = exp(-x^2/2 - log_ndtr(x)) / sqrt(2 pi): no 0/0 far left
unary("log_ndtr", _sp("log_ndtr"),
      lambda ct, x, out: o.mul(ct, o.div(o.exp(o.sub(o.mul(o.mul(x, x), -0.5), out)),
                                         SQRT_2PI)),
      **_rec("__pyx_fuse_1log_ndtr", 60, grad_fn="SpecialLogNdtrBackward0"))
unary("ndtri", _sp("ndtri"),
      lambda ct, x, out: o.mul(ct, o.mul(o.exp(o.mul(o.mul(out, out), 0.5)), SQRT_2PI)),
      domain="unit", **_rec("ndtri", 60, grad_fn="SpecialNdtriBackward0"))


def _sign(x):
    return o.sign(x)


unary("i0e", _sp("i0e"), lambda ct, x, out: o.mul(ct, o.sub(o.i1e(x), o.mul(_sign(x), out))),
      **_rec("i0e", 60, grad_fn="SpecialI0EBackward0"))


def _i1e_vjp(ct, x, out):
    # i1e' = i0e - i1e (sign x + 1/x); 1/2 at x = 0 (the limit)
    zero = o.eq(x, 0.0)
    safe = o.select(zero, o.full(o.shape(x), 1.0, o.dtype(x)), x)
    d = o.sub(o.i0e(x), o.mul(out, o.add(_sign(x), o.div(1.0, safe))))
    return o.mul(ct, o.select(zero, o.full(o.shape(x), 0.5, o.dtype(x)), d))


unary("i1e", _sp("i1e"), _i1e_vjp, **_rec("i1e", 60, grad_fn="SpecialI1EBackward0"))


def _lit(v):
    return isinstance(v, (bool, int, float))


def _betaln_vjp(ct, a, b, out):
    # a literal operand (a Python number) gets no cotangent
    dab = o.digamma(o.add(a, b))
    return [None if _lit(a) else o.mul(ct, o.sub(o.digamma(a), dab)),
            None if _lit(b) else o.mul(ct, o.sub(o.digamma(b), dab))]


binary("betaln", _sp("betaln"), _betaln_vjp, domain=("positive", "positive"),
       lowering=("extern", "betaln"), cost=120)


# xlogy(x, y) = x log y, 0 where x == 0 unless y is NaN (SciPy); d/dx = log y and d/dy = x / y
# everywhere (JAX's rule: at x == 0 too)
def _xlog_expr(logf):
    def expr(q, x, y):
        zero = getattr(q, "and")(q.eq(x, 0.0), q.eq(y, y))
        return q.select(zero, 0.0, q.mul(x, getattr(q, logf)(y)))
    return expr


def _xlogy_impl(x, y, **_):
    import scipy.special as sp
    return np.asarray(sp.xlogy(x, y)).astype(x.dtype, copy=False)


def _xlog1py_impl(x, y, **_):
    import scipy.special as sp
    return np.asarray(sp.xlog1py(x, y)).astype(x.dtype, copy=False)


def _xlog_vjp(logf, shift):
    def vjp(ct, x, y, out):
        cx = None if _lit(x) else o.mul(ct, logf(y) if not _lit(y) else float(logf(y)))
        cy = None if _lit(y) else o.mul(ct, o.div(x, o.add(y, shift) if shift else y))
        return [cx, cy]
    return vjp


binary("xlogy", _xlogy_impl, _xlog_vjp(o.log, 0.0), domain=("any", "positive"),
       lowering=("expr", _xlog_expr("log")), cost=30, torch=("xlogy",), grad_fn="XlogyBackward0")
binary("xlog1py", _xlog1py_impl, _xlog_vjp(o.log1p, 1.0), domain=("any", "positive"),
       lowering=("expr", _xlog_expr("log1p")), cost=30, grad_fn="SpecialXlog1PyBackward0")


# --- composites (ops on float operands of one dtype and shape) ---------------------------------
def _fill(x, v):
    return o.full(o.shape(x), v, o.dtype(x))


def logit(x):
    """log(x / (1 - x)); near 1/2 as log1p((2x - 1) / (1 - x)), without cancellation."""
    mid = o.__getattr__("and")(o.gt(x, 0.3), o.lt(x, 0.65))
    safe_mid = o.select(mid, x, _fill(x, 0.5))
    near = o.log1p(o.div(o.sub(o.mul(safe_mid, 2.0), 1.0), o.sub(1.0, safe_mid)))
    safe_far = o.select(mid, _fill(x, 0.1), x)
    far = o.log(o.div(safe_far, o.sub(1.0, safe_far)))
    return o.select(mid, near, far)


def entr(x):
    """-x log x for x > 0, 0 at 0, -inf below, NaN at NaN (SciPy)."""
    pos = o.gt(x, 0.0)
    s = o.select(pos, x, _fill(x, 1.0))
    r = o.select(pos, o.neg(o.mul(s, o.log(s))),
                 o.select(o.eq(x, 0.0), _fill(x, 0.0), _fill(x, -math.inf)))
    return o.select(o.ne(x, x), x, r)


def _entr2(x, y, kl):
    """rel_entr (kl False) and kl_div (kl True), SciPy's branches."""
    both = o.__getattr__("and")(o.gt(x, 0.0), o.gt(y, 0.0))
    sx = o.select(both, x, _fill(x, 1.0))
    sy = o.select(both, y, _fill(y, 1.0))
    v = o.mul(sx, o.log(o.div(sx, sy)))
    if kl:
        v = o.add(o.sub(v, sx), sy)
    at0 = o.__getattr__("and")(o.eq(x, 0.0), o.ge(y, 0.0))
    r = o.select(both, v, o.select(at0, y if kl else _fill(x, 0.0), _fill(x, math.inf)))
    nan = o.__getattr__("or")(o.ne(x, x), o.ne(y, y))
    return o.select(nan, o.add(x, y), r)


def rel_entr(x, y):
    return _entr2(x, y, False)


def kl_div(x, y):
    return _entr2(x, y, True)


def log_expit(x):
    """log(expit(x)) = -softplus(-x), without overflow."""
    e = o.log1p(o.exp(o.neg(o.abs(x))))
    return o.sub(o.select(o.lt(x, 0.0), x, _fill(x, 0.0)), e)


# scipy.special ufunc name -> primitive name or composite (unary or binary on float operands)
SCIPY = {
    "expit": "logistic", "logit": logit, "log_expit": log_expit,
    "erf": "erf", "erfc": "erfc", "erfinv": "erfinv", "erfcinv": "erfcinv",
    "gammaln": "gammaln", "gamma": "gamma", "psi": "digamma",
    "xlogy": "xlogy", "xlog1py": "xlog1py",
    "log_ndtr": "log_ndtr", "ndtr": "ndtr", "ndtri": "ndtri",
    "log1p": "log1p", "expm1": "expm1",
    "entr": entr, "rel_entr": rel_entr, "kl_div": kl_div,
    "i0e": "i0e", "i1e": "i1e", "betaln": "betaln",
}

__all__ = ["SCIPY", "FLOATS", "logit", "entr", "rel_entr", "kl_div", "log_expit"]
