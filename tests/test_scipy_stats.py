"""adjit.scipy.stats (issue 17): values against scipy.stats, derivatives against
jax.scipy.stats x64, jit(value_and_grad) of a Bayesian logistic regression and a Gaussian
mixture written with scipy.stats names against JAX, and the error for scipy.stats itself."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as ss

import adjit
from adjit.scipy import special as AS
from adjit.scipy import stats as scipy_stats
from peers import require

np.seterr(all="ignore")

X = np.array([-1.5, -0.0, 0.0, 0.2, 0.5, 0.99, 1.0, 2.5, 7.0, np.inf, -np.inf, np.nan])
K = np.array([-1.0, 0.0, 1.0, 2.0, 2.5, 3.0, 10.0])
CASES = [
    ("norm", "logpdf", (X, 0.3, 1.7)), ("norm", "pdf", (X, 0.3, 1.7)),
    ("norm", "cdf", (X, 0.3, 1.7)), ("norm", "logcdf", (X, -0.4, 0.5)),
    ("norm", "sf", (X,)), ("norm", "logsf", (X, 1.0, 2.0)),
    ("t", "logpdf", (X, 3.5, 0.2, 2.0)), ("t", "pdf", (X, 1.0)),
    ("gamma", "logpdf", (X, 2.5, 0.0, 1.3)), ("gamma", "logpdf", (X, 1.0)),
    ("gamma", "pdf", (X, 0.5, -1.0, 2.0)),
    ("beta", "logpdf", (X, 2.5, 1.5)), ("beta", "pdf", (X, 0.5, 3.0, -1.0, 2.0)),
    ("poisson", "logpmf", (K, 2.3)), ("poisson", "pmf", (K, 0.7, 1)),
    ("bernoulli", "logpmf", (K, 0.3)), ("bernoulli", "pmf", (K, 0.8)),
    ("bernoulli", "cdf", (K, 0.3)),
    # the cdfs through scipy.special's betainc, gammainc, gammaincc (SciPy's C functions)
    ("t", "cdf", (X, 3.5)), ("t", "cdf", (X, 1.0, 0.2, 2.0)), ("t", "logcdf", (X, 7.0)),
    ("gamma", "cdf", (X, 2.5, 0.0, 1.3)), ("gamma", "logcdf", (X, 0.5, -1.0, 2.0)),
    ("beta", "cdf", (X, 2.5, 1.5)), ("beta", "logcdf", (X, 0.5, 3.0, -1.0, 2.0)),
    ("poisson", "cdf", (K, 2.3)), ("poisson", "logcdf", (K, 0.7, 1)),
]


@pytest.mark.parametrize("dist,fn,args", CASES, ids=[f"{d}.{f}" for d, f, _ in CASES])
def test_values_vs_scipy(dist, fn, args):
    want = getattr(getattr(ss, dist), fn)(*args)
    plain = getattr(getattr(scipy_stats, dist), fn)(*args)
    traced = adjit.jit(lambda *a: getattr(getattr(scipy_stats, dist), fn)(*a))(*args)
    for got in (plain, traced):
        assert np.asarray(got).dtype == np.asarray(want).dtype
        # log(cdf) near cdf = 1: SciPy's betainc (Boost) and cephes' differ by an ulp of cdf
        atol = 1e-15 if fn == "logcdf" else 1e-300
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=atol)


def test_multivariate_normal_and_dirichlet_values():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3))
    cov = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.5]])
    mean = np.array([0.1, -0.2, 0.3])
    want = ss.multivariate_normal.logpdf(x, mean, cov)
    np.testing.assert_allclose(adjit.jit(lambda x, m: scipy_stats.multivariate_normal.logpdf(x, m, cov))(
        x, mean), want, rtol=1e-13)
    np.testing.assert_allclose(scipy_stats.multivariate_normal.pdf(x, mean, cov),
                               ss.multivariate_normal.pdf(x, mean, cov), rtol=1e-13)
    alpha = np.array([1.5, 2.0, 3.0])
    xd = np.array([[0.2, 0.1], [0.3, 0.6], [0.5, 0.3]])
    np.testing.assert_allclose(adjit.jit(lambda a, x: scipy_stats.dirichlet.logpdf(x, a))(alpha, xd),
                               ss.dirichlet.logpdf(xd, alpha), rtol=1e-13)


@pytest.fixture(scope="module")
def jx():
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import jax.scipy.stats as js
    return jax, jnp, js


GRADS = [("norm", "logpdf", (0.3, 0.2, 1.7)), ("norm", "logcdf", (-3.0, 0.2, 1.7)),
         ("norm", "cdf", (0.3, 0.2, 1.7)), ("t", "logpdf", (0.3, 3.5, 0.2, 2.0)),
         ("gamma", "logpdf", (1.3, 2.5, 0.1, 1.3)), ("beta", "logpdf", (0.3, 2.5, 1.5)),
         ("poisson", "logpmf", (3.0, 2.3)), ("bernoulli", "logpmf", (1.0, 0.3))]
# cdfs: JAX differentiates betainc in x only (and so do we), gammainc's `a` is held constant
CDF_GRADS = [("gamma", "cdf", (1.3, 2.5, 0.1, 1.3), (0, 2, 3)),
             ("gamma", "logcdf", (0.4, 0.7, 0.0, 2.0), (0, 2, 3)),
             ("beta", "cdf", (0.3, 2.5, 1.5), (0,)), ("beta", "logcdf", (0.8, 0.5, 3.0), (0,)),
             ("poisson", "cdf", (3.0, 2.3), (1,)), ("poisson", "logcdf", (0.0, 0.7), (1,))]


@pytest.mark.parametrize("dist,fn,args", GRADS, ids=[f"{d}.{f}" for d, f, _ in GRADS])
def test_gradients_vs_jax(jx, dist, fn, args):
    jax, jnp, js = jx
    ours = getattr(getattr(scipy_stats, dist), fn)
    theirs = getattr(getattr(js, dist), fn)
    first = 0 if dist not in ("poisson", "bernoulli") else 1  # k is not differentiable
    argnums = tuple(range(first, len(args)))
    got = adjit.grad(lambda *a: ours(*a), argnums=argnums)(*args)
    want = jax.grad(lambda *a: theirs(*a), argnums=argnums)(*args)
    np.testing.assert_allclose(got, want, rtol=1e-11)
    hg = adjit.hessian(lambda v: ours(*args[:first], *v))(np.array(args[first:]))
    hw = jax.hessian(lambda v: theirs(*args[:first], *v))(np.array(args[first:]))
    np.testing.assert_allclose(hg, hw, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dist,fn,args,argnums", CDF_GRADS,
                         ids=[f"{d}.{f}" for d, f, _, _ in CDF_GRADS])
def test_cdf_gradients_vs_jax(jx, dist, fn, args, argnums):
    jax, jnp, js = jx
    ours = getattr(getattr(scipy_stats, dist), fn)
    if (dist, fn) == ("poisson", "logcdf"):  # jax.scipy.stats.poisson has no logcdf
        theirs = lambda *a: jnp.log(js.poisson.cdf(*a))  # noqa: E731
    else:
        theirs = getattr(getattr(js, dist), fn)
    got = adjit.jit(adjit.grad(ours, argnums=argnums))(*args)
    want = jax.grad(theirs, argnums=argnums)(*args)
    np.testing.assert_allclose(got, want, rtol=1e-11)
    i = argnums[0]  # second order in the first of them, against JAX too

    def part(f):
        return lambda v: f(*args[:i], v, *args[i + 1:])
    np.testing.assert_allclose(adjit.grad(adjit.grad(part(ours)))(args[i]),
                               jax.grad(jax.grad(part(theirs)))(args[i]), rtol=1e-9)


def test_t_cdf_gradients_vs_differences():
    """jax.scipy.stats.t has no cdf: d/dx is the density (also at x = loc), d/dloc, d/dscale
    against central differences of SciPy's t.cdf."""
    xs = np.array([-2.5, -0.3, 0.0, 0.2, 4.0])
    g = adjit.jit(adjit.grad(lambda x: scipy_stats.t.cdf(x, 3.5).sum()))(xs)
    np.testing.assert_allclose(g, ss.t.pdf(xs, 3.5), rtol=1e-12)
    g = adjit.grad(lambda x: scipy_stats.t.logcdf(x, 3.5).sum())(xs)
    np.testing.assert_allclose(g, ss.t.pdf(xs, 3.5) / ss.t.cdf(xs, 3.5), rtol=1e-12)
    h = 1e-6
    for k, args in ((2, [0.7, 4.0, 0.2, 1.5]), (3, [0.7, 4.0, 0.2, 1.5])):
        got = adjit.grad(lambda v: scipy_stats.t.cdf(*args[:k], v, *args[k + 1:]))(args[k])
        up, dn = list(args), list(args)
        up[k] += h
        dn[k] -= h
        np.testing.assert_allclose(got, (ss.t.cdf(*up) - ss.t.cdf(*dn)) / (2 * h), rtol=1e-7)


@pytest.mark.parametrize("call", [lambda a: scipy_stats.beta.cdf(0.3, a, 2.0),
                                  lambda a: scipy_stats.gamma.cdf(1.3, a),
                                  lambda a: scipy_stats.t.cdf(0.5, a)], ids=["beta", "gamma", "t"])
def test_cdf_parameter_derivative_is_refused(call):
    """No derivative in the shape parameters (JAX refuses betainc's): a clear error naming the
    user's line, not a wrong number; with the parameter constant the same call differentiates."""
    with pytest.raises(NotImplementedError, match=r"no derivative with respect to .*test_scipy"):
        adjit.grad(call)(1.5)
    assert np.isfinite(adjit.grad(lambda x: scipy_stats.beta.cdf(x, 1.5, 2.0))(0.3))


def test_mvn_and_dirichlet_gradients_vs_jax(jx):
    jax, jnp, js = jx
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3))
    cov = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.5]])
    m = np.array([0.1, -0.2, 0.3])
    g = adjit.grad(lambda m: np.sum(scipy_stats.multivariate_normal.logpdf(x, m, cov)))(m)
    w = jax.grad(lambda m: js.multivariate_normal.logpdf(x, m, cov).sum())(m)
    np.testing.assert_allclose(g, w, rtol=1e-12)
    alpha = np.array([1.5, 2.0, 3.0])
    xd = np.array([0.2, 0.3, 0.5])
    g = adjit.grad(lambda a: scipy_stats.dirichlet.logpdf(xd, a))(alpha)
    w = jax.grad(lambda a: js.dirichlet.logpdf(xd, a))(alpha)
    np.testing.assert_allclose(g, w, rtol=1e-12)


# --- the two models of the issue, written with scipy.stats names --------------------------------
def _logreg_data(n=200, d=5):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(n, d))
    y = (X @ rng.normal(size=d) + 0.3 * rng.normal(size=n) > 0).astype(np.float64)
    return X, y


def logreg_logpost(w, X, y, stats, special):
    """log p(w | X, y) of a Bayesian logistic regression: N(0, 1) prior, Bernoulli likelihood
    with p = expit(X w) (as log_expit for stability)."""
    z = X @ w
    return np.sum(stats.norm.logpdf(w, 0.0, 1.0)) + np.sum(y * special.log_expit(z) +
                                                           (1.0 - y) * special.log_expit(-z))


def gmm_loglik(params, x, stats, special, xp=np):
    """log-likelihood of 1-d data under a 3-component Gaussian mixture."""
    logits, mu, log_sigma = params[:3], params[3:6], params[6:]
    logw = logits - special.logsumexp(logits)
    comp = stats.norm.logpdf(x[:, None], mu[None, :], xp.exp(log_sigma)[None, :])
    return xp.sum(special.logsumexp(comp + logw[None, :], axis=1))


def test_bayesian_logistic_regression_vs_jax(jx):
    jax, jnp, js = jx
    import jax.scipy.special as jsp
    X, y = _logreg_data()
    w = np.linspace(-0.5, 0.5, X.shape[1])
    import scipy.special as sp
    f = adjit.jit(adjit.value_and_grad(lambda w: logreg_logpost(w, X, y, scipy_stats, sp)))
    v, g = f(w)
    jf = jax.jit(jax.value_and_grad(lambda w: (jnp.sum(js.norm.logpdf(w, 0.0, 1.0)) + jnp.sum(
        y * jax.nn.log_sigmoid(X @ w) + (1 - y) * jax.nn.log_sigmoid(-(X @ w))))))
    jv, jg = jf(w)
    np.testing.assert_allclose(v, jv, rtol=1e-13)
    np.testing.assert_allclose(g, jg, rtol=1e-12)
    np.testing.assert_allclose(f(w + 0.1)[1], jf(w + 0.1)[1], rtol=1e-12)  # no retrace issue
    del jsp


def test_gaussian_mixture_vs_jax(jx):
    jax, jnp, js = jx
    import jax.scipy.special as jsp
    x = np.random.default_rng(3).normal(size=300) * 2.0
    p = np.array([0.1, -0.2, 0.3, -1.0, 0.0, 1.5, 0.1, -0.3, 0.2])
    f = adjit.jit(adjit.value_and_grad(lambda p: gmm_loglik(p, x, scipy_stats, AS)))
    v, g = f(p)

    class JS:  # the same model with JAX's modules
        stats, special = js, jsp
    jv, jg = jax.jit(jax.value_and_grad(lambda p: gmm_loglik(p, jnp.asarray(x), JS.stats,
                                                             JS.special, jnp)))(p)
    np.testing.assert_allclose(v, jv, rtol=1e-13)
    np.testing.assert_allclose(g, jg, rtol=1e-11)


def test_plain_scipy_stats_error_names_adjit():
    with pytest.raises(TypeError, match=r"scipy\.stats\.norm\.logpdf .*adjit\.scipy\.stats\.norm"
                                        r"\.logpdf"):
        adjit.grad(lambda x: np.sum(ss.norm.logpdf(x)))(np.ones(3))
    with pytest.raises(TypeError, match=r"scipy\.stats\.cauchy\.logpdf .*no counterpart"):
        adjit.jit(lambda x: ss.cauchy.logpdf(x))(np.ones(3))
