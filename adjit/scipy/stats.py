"""scipy.stats distributions on traced arrays (the functions `autograd.scipy.stats` has).

`norm`, `multivariate_normal`, `t`, `gamma`, `beta`, `dirichlet`, `poisson`, `bernoulli`: each
a namespace of functions with SciPy's signatures and values (-inf log density outside the
support, as SciPy), written with NumPy and scipy.special ufuncs, so they are recorded on traced
arrays and differentiable in every argument; on plain arrays they compute the same formulas
with NumPy (and are checked against SciPy in tests/test_scipy_stats.py).
`scipy.stats.norm.logpdf(traced)` itself cannot work: SciPy converts its arguments with
np.asarray, which a traced array refuses with an error naming these.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import scipy.special as sc

from ..tracer.ndarray import where_str
from ._util import floats, stop_gradient, traced  # noqa: F401
from .special import logsumexp  # noqa: F401

_LOG_2PI = math.log(2.0 * math.pi)


def _support(ok, y, v):
    """v inside the support, -inf outside it, NaN at a NaN argument (SciPy)."""
    return np.where(ok, v, np.where(y == y, -np.inf, np.nan))


def _safe(ok, x, v):
    """x where ok, else v: the operand of a branch whose result `ok` keeps (so the other
    branch's derivative is finite and selected away)."""
    return np.where(ok, x, v)


# --- norm ----------------------------------------------------------------------------------
def _z(x, loc, scale):
    x, loc, scale = floats(x, loc, scale)
    return (x - loc) / scale, scale


def _norm_logpdf(x, loc=0.0, scale=1.0):
    z, scale = _z(x, loc, scale)
    return -0.5 * z * z - np.log(scale) - 0.5 * _LOG_2PI


def _norm_pdf(x, loc=0.0, scale=1.0):
    return np.exp(_norm_logpdf(x, loc, scale))


def _norm_cdf(x, loc=0.0, scale=1.0):
    z, _ = _z(x, loc, scale)
    return sc.ndtr(z)


def _norm_logcdf(x, loc=0.0, scale=1.0):
    z, _ = _z(x, loc, scale)
    return sc.log_ndtr(z)


def _norm_sf(x, loc=0.0, scale=1.0):
    z, _ = _z(x, loc, scale)
    return sc.ndtr(-z)


def _norm_logsf(x, loc=0.0, scale=1.0):
    z, _ = _z(x, loc, scale)
    return sc.log_ndtr(-z)


norm = SimpleNamespace(logpdf=_norm_logpdf, pdf=_norm_pdf, cdf=_norm_cdf, logcdf=_norm_logcdf,
                       sf=_norm_sf, logsf=_norm_logsf)


# --- multivariate_normal ----------------------------------------------------------------------
def _mvn_logpdf(x, mean=None, cov=1, allow_singular=False):
    """log N(x; mean, cov) over the last axis of x. `cov` may be traced (its Cholesky factor
    is then recorded: np.linalg.cholesky must be supported on traced arrays) or a constant."""
    x = floats(x)[0]
    d = np.shape(x)[-1] if np.ndim(x) else 1
    mean = np.zeros(d) if mean is None else floats(mean)[0]
    cov = floats(cov)[0]
    if allow_singular:
        raise NotImplementedError(f"adjit.scipy.stats.multivariate_normal: allow_singular=True"
                                  f" is not supported{where_str()}")
    if np.ndim(cov) == 0:
        cov = cov * np.eye(d)
    elif np.ndim(cov) == 1:
        cov = np.diag(cov) if not traced(cov) else cov * np.eye(d)
    dev = x - mean
    if traced(cov):
        try:
            L = np.linalg.cholesky(cov)
        except NotImplementedError as e:
            raise NotImplementedError(
                f"adjit.scipy.stats.multivariate_normal with a traced covariance needs "
                f"np.linalg.cholesky on traced arrays ({e}){where_str()}") from None
        Linv = np.linalg.inv(L)
        logdet = 2.0 * np.sum(np.log(np.diagonal(L)))
    else:
        L = np.linalg.cholesky(cov)
        Linv = np.linalg.inv(L)
        logdet = 2.0 * float(np.sum(np.log(np.diagonal(L))))
    w = dev @ Linv.T  # L^-1 (x - mean) for each row
    maha = np.sum(w * w, axis=-1)
    return -0.5 * (d * _LOG_2PI + logdet + maha)


multivariate_normal = SimpleNamespace(
    logpdf=_mvn_logpdf,
    pdf=lambda x, mean=None, cov=1, allow_singular=False: np.exp(
        _mvn_logpdf(x, mean, cov, allow_singular)))


# --- t ----------------------------------------------------------------------------------------
def _t_logpdf(x, df, loc=0.0, scale=1.0):
    z, scale = _z(x, loc, scale)
    df = floats(df)[0]
    return (sc.gammaln((df + 1.0) / 2.0) - sc.gammaln(df / 2.0)
            - 0.5 * np.log(df * math.pi) - (df + 1.0) / 2.0 * np.log1p(z * z / df)
            - np.log(scale))


def _t_cdf(x, df, loc=0.0, scale=1.0):
    """Two forms, as SciPy's stdtr, each accurate where it is used: for z^2 < df,
    1/2 + sign(z)/2 betainc(1/2, df/2, z^2/(df + z^2)), z = 0 moved to 1e-150 (the same value)
    so that the derivative there is the density, not 0 * inf; else the tail
    betainc(df/2, 1/2, df/(df + z^2))/2 (1 minus it for z > 0). The branch not taken gets a
    harmless operand, so its derivative is finite and selected away."""
    z, _ = _z(x, loc, scale)
    df = floats(df)[0]
    big = z * z >= df
    zs = _safe(big, 0.5 * np.sqrt(df) + 0.0 * z, z)
    zs = zs + np.where(zs == 0.0, 1e-150, 0.0)
    z2 = zs * zs
    near = 0.5 + 0.5 * np.sign(zs) * sc.betainc(0.5, df / 2.0, z2 / (df + z2))
    zb = _safe(big, z, 2.0 * np.sqrt(df) + 0.0 * z)
    tail = 0.5 * sc.betainc(df / 2.0, 0.5, df / (df + zb * zb))
    far = np.where(zb > 0.0, 1.0 - tail, tail)
    return np.where(big, far, near)


t = SimpleNamespace(logpdf=_t_logpdf, pdf=lambda x, df, loc=0.0, scale=1.0: np.exp(
    _t_logpdf(x, df, loc, scale)), cdf=_t_cdf,
    logcdf=lambda x, df, loc=0.0, scale=1.0: np.log(_t_cdf(x, df, loc, scale)))


# --- gamma ------------------------------------------------------------------------------------
def _gamma_logpdf(x, a, loc=0.0, scale=1.0):
    y, scale = _z(x, loc, scale)
    a = floats(a)[0]
    ok = y >= 0.0
    ys = _safe(ok, y, 1.0)
    v = sc.xlogy(a - 1.0, ys) - ys - sc.gammaln(a) - np.log(scale)
    return _support(ok, y, v)


def _gamma_cdf(x, a, loc=0.0, scale=1.0):
    """gammainc(a, y), 0 below the support."""
    y, _ = _z(x, loc, scale)
    a = floats(a)[0]
    return sc.gammainc(a, np.maximum(y, 0.0))


gamma = SimpleNamespace(logpdf=_gamma_logpdf, pdf=lambda x, a, loc=0.0, scale=1.0: np.exp(
    _gamma_logpdf(x, a, loc, scale)), cdf=_gamma_cdf,
    logcdf=lambda x, a, loc=0.0, scale=1.0: np.log(_gamma_cdf(x, a, loc, scale)))


# --- beta -------------------------------------------------------------------------------------
def _beta_logpdf(x, a, b, loc=0.0, scale=1.0):
    y, scale = _z(x, loc, scale)
    a, b = floats(a, b)
    ok = (y >= 0.0) & (y <= 1.0)
    ys = _safe(ok, y, 0.5)
    v = sc.xlog1py(b - 1.0, -ys) + sc.xlogy(a - 1.0, ys) - sc.betaln(a, b) - np.log(scale)
    return _support(ok, y, v)


def _beta_cdf(x, a, b, loc=0.0, scale=1.0):
    """betainc(a, b, y), y clipped to [0, 1]."""
    y, _ = _z(x, loc, scale)
    a, b = floats(a, b)
    return sc.betainc(a, b, np.minimum(np.maximum(y, 0.0), 1.0))


beta = SimpleNamespace(logpdf=_beta_logpdf, pdf=lambda x, a, b, loc=0.0, scale=1.0: np.exp(
    _beta_logpdf(x, a, b, loc, scale)), cdf=_beta_cdf,
    logcdf=lambda x, a, b, loc=0.0, scale=1.0: np.log(_beta_cdf(x, a, b, loc, scale)))


# --- dirichlet ----------------------------------------------------------------------------------
def _dirichlet_logpdf(x, alpha):
    """x: (K,) or (K, N) (SciPy's layout: the components along the first axis); alpha: (K,)."""
    x, alpha = floats(x, alpha)
    if np.ndim(alpha) != 1:
        raise ValueError(f"adjit.scipy.stats.dirichlet: alpha must be 1-d, got shape "
                         f"{np.shape(alpha)}{where_str()}")
    if np.shape(x)[0] != np.shape(alpha)[0]:
        raise ValueError(f"adjit.scipy.stats.dirichlet: x has {np.shape(x)[0]} components, "
                         f"alpha {np.shape(alpha)[0]}{where_str()}")
    al = alpha.reshape(alpha.shape + (1,) * (np.ndim(x) - 1))
    lnB = np.sum(sc.gammaln(alpha)) - sc.gammaln(np.sum(alpha))
    return np.sum(sc.xlogy(al - 1.0, x), axis=0) - lnB


dirichlet = SimpleNamespace(logpdf=_dirichlet_logpdf,
                            pdf=lambda x, alpha: np.exp(_dirichlet_logpdf(x, alpha)))


# --- poisson ----------------------------------------------------------------------------------
def _poisson_logpmf(k, mu, loc=0):
    k, mu = floats(k, mu)
    k = k - loc
    ok = (k >= 0.0) & (k == np.floor(k))
    ks = _safe(ok, k, 0.0)
    v = sc.xlogy(ks, mu) - sc.gammaln(ks + 1.0) - mu
    return _support(ok, k, v)


def _poisson_cdf(k, mu, loc=0):
    """gammaincc(floor(k) + 1, mu) for k >= 0, else 0 (differentiable in mu)."""
    k, mu = floats(k, mu)
    k = np.floor(k - loc)
    ok = k >= 0.0
    v = sc.gammaincc(_safe(ok, k, 0.0) + 1.0, mu)
    return np.where(ok, v, 0.0 * v)


poisson = SimpleNamespace(logpmf=_poisson_logpmf,
                          pmf=lambda k, mu, loc=0: np.exp(_poisson_logpmf(k, mu, loc)),
                          cdf=_poisson_cdf,
                          logcdf=lambda k, mu, loc=0: np.log(_poisson_cdf(k, mu, loc)))


# --- bernoulli --------------------------------------------------------------------------------
def _bernoulli_logpmf(k, p, loc=0):
    k, p = floats(k, p)
    k = k - loc
    ok = (k == 0.0) | (k == 1.0)
    ks = _safe(ok, k, 0.0)
    v = sc.xlogy(ks, p) + sc.xlog1py(1.0 - ks, -p)
    return _support(ok, k, v)


def _bernoulli_cdf(k, p, loc=0):
    k, p = floats(k, p)
    k = k - loc
    one = np.ones_like(p * k)
    return np.where(k < 0.0, 0.0 * one, np.where(k < 1.0, (1.0 - p) * one, one))


bernoulli = SimpleNamespace(logpmf=_bernoulli_logpmf,
                            pmf=lambda k, p, loc=0: np.exp(_bernoulli_logpmf(k, p, loc)),
                            cdf=_bernoulli_cdf)

__all__ = ["norm", "multivariate_normal", "t", "gamma", "beta", "dirichlet", "poisson",
           "bernoulli"]
