"""W8 bayes-logreg, float64: value and gradient of a Bayesian logistic regression log-posterior.

X[2000,20], labels y in {0, 1}; params = {"w": [20], "b": scalar} (a pytree, as JAX users
write it). log p = sum norm.logpdf(w, 0, 1) + norm.logpdf(b, 0, 10)
               + sum_i [y_i log expit(z_i) + (1 - y_i) log expit(-z_i)],  z = X @ w + b,
written with scipy.stats (adjit.scipy.stats, jax.scipy.stats, autograd.scipy.stats) and
scipy.special.log_expit. A matrix-vector product, an elementwise softplus pass and reductions.
"""
from __future__ import annotations

import numpy as np

from adjit.bench import Workload, torch_threads
from ._common import impls, jax_ready, jax_x64

N, D = 2000, 20


def inputs(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D))
    w = 0.5 * rng.standard_normal(D)
    b = np.float64(0.3)
    y = (rng.uniform(size=N) < 1.0 / (1.0 + np.exp(-(X @ w + b)))).astype(np.float64)
    return 0.3 * rng.standard_normal(D), np.float64(-0.2), X, y


def _params(inp):
    w, b, X, y = inp
    return {"w": w, "b": b}, X, y


def log_posterior(params, X, y, norm, log_expit):
    w, b = params["w"], params["b"]
    z = X @ w + b
    prior = norm.logpdf(w, 0.0, 1.0).sum() + norm.logpdf(b, 0.0, 10.0)
    return prior + (y * log_expit(z) + (1.0 - y) * log_expit(-z)).sum()


def _out(val, g):
    return val, g["w"], g["b"]


def adjit_setup(inp):
    import scipy.special

    import adjit
    from adjit.scipy import stats
    params, X, y = _params(inp)
    step = adjit.jit(adjit.value_and_grad(
        lambda p, X, y: log_posterior(p, X, y, stats.norm, scipy.special.log_expit)))
    return lambda: _out(*step(params, X, y))


def numpy_setup(inp):  # the reference: gradients by hand
    params, X, y = _params(inp)
    import scipy.special as sc
    import scipy.stats as st

    def run():
        w, b = params["w"], params["b"]
        z = X @ w + b
        val = (st.norm.logpdf(w, 0.0, 1.0).sum() + st.norm.logpdf(b, 0.0, 10.0)
               + (y * sc.log_expit(z) + (1.0 - y) * sc.log_expit(-z)).sum())
        r = y - sc.expit(z)  # d loglik / dz
        return val, X.T @ r - w, r.sum() - b / 100.0
    return run


def torch_setup(inp):
    torch = torch_threads()
    params, X, y = _params(inp)
    w = torch.tensor(params["w"], requires_grad=True)
    b = torch.tensor(params["b"], requires_grad=True)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    prior_w = torch.distributions.Normal(0.0, 1.0)
    prior_b = torch.distributions.Normal(0.0, 10.0)
    F = torch.nn.functional

    def run():
        w.grad = b.grad = None
        z = Xt @ w + b
        val = (prior_w.log_prob(w).sum() + prior_b.log_prob(b)
               + (yt * F.logsigmoid(z) + (1.0 - yt) * F.logsigmoid(-z)).sum())
        val.backward()
        return val.detach(), w.grad, b.grad
    return run


def jax_setup(inp):
    jax = jax_x64()
    from jax.scipy import stats
    params, X, y = _params(inp)
    step = jax.jit(jax.value_and_grad(
        lambda p, X, y: log_posterior(p, X, y, stats.norm, jax.nn.log_sigmoid)))
    args = jax.tree_util.tree_map(jax.numpy.asarray, (params, X, y))
    return lambda: jax_ready(_out(*step(*args)))


def autograd_setup(inp):
    import autograd
    import autograd.numpy as anp
    from autograd.scipy import stats
    params, X, y = _params(inp)
    step = autograd.value_and_grad(
        lambda p: log_posterior(p, X, y, stats.norm, lambda z: -anp.logaddexp(0.0, -z)))
    return lambda: _out(*step(params))


def workload():
    return Workload(
        name="W8", title="bayes-logreg f64 (scipy.stats), value_and_grad", inputs=inputs,
        impls=impls(adjit=adjit_setup, numpy=numpy_setup, torch=torch_setup,
                    jax=jax_setup,
                    autograd=autograd_setup),
        rtol=1e-9, atol=1e-9)
