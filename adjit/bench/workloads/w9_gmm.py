"""W9 gmm-loglik, float64: value and gradient of a diagonal Gaussian-mixture log-likelihood.

X[2000,4], K = 8 components; params = {"logits": [8], "means": [8,4], "log_scales": [8,4]}
(a pytree, as JAX users write it). log p = sum_i logsumexp_k(log_softmax(logits)_k
+ sum_d norm.logpdf(X[i,d], means[k,d], exp(log_scales[k,d]))), written with scipy.stats and
scipy.special (adjit.scipy, jax.scipy, autograd.scipy). Broadcast elementwise math over
[2000,8,4], a reduction and a logsumexp over the components.
"""
from __future__ import annotations

import numpy as np

from adjit.bench import Workload, torch_threads
from ._common import impls, jax_ready, jax_x64

N, K, D = 2000, 8, 4


def inputs(seed):
    rng = np.random.default_rng(seed)
    centers = 3.0 * rng.standard_normal((K, D))
    X = centers[rng.integers(0, K, N)] + rng.standard_normal((N, D))
    return (0.1 * rng.standard_normal(K), centers + 0.5 * rng.standard_normal((K, D)),
            0.2 * rng.standard_normal((K, D)), X)


def _params(inp):
    logits, means, log_scales, X = inp
    return {"logits": logits, "means": means, "log_scales": log_scales}, X


def loglik(params, X, norm, logsumexp, np=np):
    logw = params["logits"] - logsumexp(params["logits"])
    comp = norm.logpdf(X[:, None, :], params["means"], np.exp(params["log_scales"])).sum(-1)
    return logsumexp(logw + comp, axis=1).sum()


def _out(val, g):
    return val, g["logits"], g["means"], g["log_scales"]


def adjit_setup(inp):
    import adjit
    from adjit.scipy import special, stats
    params, X = _params(inp)
    step = adjit.jit(adjit.value_and_grad(
        lambda p, X: loglik(p, X, stats.norm, special.logsumexp)))
    return lambda: _out(*step(params, X))


def numpy_setup(inp):  # the reference: gradients by hand
    import scipy.special as sc
    params, X = _params(inp)

    def run():
        logits, mu, ls = params["logits"], params["means"], params["log_scales"]
        s = np.exp(ls)
        logw = logits - sc.logsumexp(logits)
        z = (X[:, None, :] - mu) / s
        comp = (-0.5 * z * z - ls - 0.5 * np.log(2 * np.pi)).sum(-1)
        a = logw + comp
        lse = sc.logsumexp(a, axis=1)
        r = np.exp(a - lse[:, None])  # responsibilities [N, K]
        g_logits = r.sum(0) - N * np.exp(logw)
        g_mu = (r[:, :, None] * z / s).sum(0)
        g_ls = (r[:, :, None] * (z * z - 1.0)).sum(0)
        return lse.sum(), g_logits, g_mu, g_ls
    return run


def torch_setup(inp):
    torch = torch_threads()
    logits, means, log_scales, X = (torch.tensor(a) for a in inp)
    ps = [p.requires_grad_() for p in (logits, means, log_scales)]

    def run():
        for p in ps:
            p.grad = None
        logw = torch.log_softmax(logits, 0)
        comp = torch.distributions.Normal(means, log_scales.exp()).log_prob(X[:, None, :])
        val = torch.logsumexp(logw + comp.sum(-1), 1).sum()
        val.backward()
        return (val.detach(), *(p.grad for p in ps))
    return run


def jax_setup(inp):
    jax = jax_x64()
    from jax.scipy import special, stats
    params, X = _params(inp)
    step = jax.jit(jax.value_and_grad(
        lambda p, X: loglik(p, X, stats.norm, special.logsumexp, jax.numpy)))
    args = jax.tree_util.tree_map(jax.numpy.asarray, (params, X))
    return lambda: jax_ready(_out(*step(*args)))


def autograd_setup(inp):
    import autograd
    import autograd.numpy as anp
    from autograd.scipy import special, stats
    params, X = _params(inp)
    step = autograd.value_and_grad(lambda p: loglik(p, X, stats.norm, special.logsumexp, anp))
    return lambda: _out(*step(params))


def workload():
    return Workload(
        name="W9", title="gmm-loglik f64 (scipy.stats), value_and_grad", inputs=inputs,
        impls=impls(adjit=adjit_setup, numpy=numpy_setup, torch=torch_setup, jax=jax_setup,
                    autograd=autograd_setup),
        rtol=1e-9, atol=1e-9)
