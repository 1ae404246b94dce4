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
from ..core import NoDerivative, Primitive, register
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
        # (the interpreter may pass NumPy scalars: 0-d results of earlier steps)
        dt = next((a.dtype for a in args if isinstance(a, (np.ndarray, np.generic))),
                  np.dtype(np.float64))
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


# --- regularised incomplete gamma and beta functions (SciPy's argument order: parameters first)
# Derivatives in x only: d/dx gammainc(a, x) = x^(a-1) e^-x / Gamma(a), d/dx betainc(a, b, x) =
# x^(a-1) (1-x)^(b-1) / B(a, b). In a and b they raise (core.NoDerivative) when a derivative
# flows there: JAX refuses betainc's too; gammainc's derivative in a is not implemented here.
def _check_operands(name, xs):
    from ..types import AType
    shp = next((x.shape for x in xs if not x.weak), xs[-1].shape)
    if any(not x.weak and x.shape != shp for x in xs):
        raise ValueError(f"{name}: operand shapes {[x.shape for x in xs]} differ "
                         "(broadcasting is explicit in the IR)")
    dts = {x.dtype for x in xs if not x.weak} or {xs[-1].dtype}
    if len(dts) != 1:
        raise TypeError(f"{name}: operand dtypes {sorted(dts)} differ")
    return AType(shp, dts.pop())


def _gammainc_rule(name):
    def rule(a, x, **_):
        return _check_operands(name, (a, x))
    return rule


def _betainc_rule(a, b, x, **_):
    return _check_operands("betainc", (a, b, x))


def _node(v, like):
    return _fill(like, float(v)) if _lit(v) else v


def _no_derivative(name, arg):
    return NoDerivative(f"{name}: no derivative with respect to {arg} (only x; as JAX for "
                        f"betainc) - hold it constant or wrap it in adjit.stop_gradient")


def _gammainc_vjp(sign, name):
    def vjp(ct, a, x, out, **_):
        dens = o.exp(o.sub(o.sub(o.xlogy(o.sub(_node(a, x), 1.0), x), x),
                           o.gammaln(_node(a, x))))
        return [None if _lit(a) else _no_derivative(name, "a"),
                None if _lit(x) else o.mul(ct, o.mul(dens, sign))]
    return vjp


def _betainc_vjp(ct, a, b, x, out, **_):
    an, bn = _node(a, x), _node(b, x)
    logd = o.sub(o.add(o.xlogy(o.sub(an, 1.0), x), o.xlog1py(o.sub(bn, 1.0), o.neg(x))),
                 o.betaln(an, bn))
    return [None if _lit(a) else _no_derivative("betainc", "a"),
            None if _lit(b) else _no_derivative("betainc", "b"),
            None if _lit(x) else o.mul(ct, o.exp(logd))]


def _inc_samples(nparams):
    def samples(dt, rng):
        x = sample_array(rng, (3, 4), dt, "unit")
        lits = [float(rng.uniform(0.5, 3.0)) for _ in range(nparams)]
        # parameters as literals: the sweeps differentiate every array operand
        return [(lits + [x], {}),
                (lits + [sample_array(rng, (), dt, "unit")], {})]
    return samples


def _inc_jvp(vjp):
    from ._helpers import elementwise_jvp
    return elementwise_jvp(vjp)


for _name, _dir in (("gammainc", 1.0), ("gammaincc", -1.0)):
    _v = _gammainc_vjp(_dir, _name)
    register(Primitive(_name, _gammainc_rule(_name), _sp(_name), _v, _inc_jvp(_v), _inc_samples(1),
                       kind="elementwise", lowering=("extern", _name), cost=200,
                       dtypes=FLOATS))
register(Primitive("betainc", _betainc_rule, _sp("betainc"), _betainc_vjp,
                   _inc_jvp(_betainc_vjp), _inc_samples(2), kind="elementwise",
                   lowering=("extern", "__pyx_fuse_0betainc"), cost=300, dtypes=FLOATS))


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
    "gammainc": "gammainc", "gammaincc": "gammaincc", "betainc": "betainc",
}

__all__ = ["SCIPY", "FLOATS", "logit", "entr", "rel_entr", "kl_div", "log_expit"]
