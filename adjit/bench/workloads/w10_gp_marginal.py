"""W10 gp-marginal, float64: a Gaussian process's negative log marginal likelihood and its
gradient in four hyperparameters, n = 500 points in 2-D.

K = amp * exp(-sum_d (x_id - x_jd)^2 / (2 ls_d^2)) + (noise + 1e-6) I with amp, ls, noise the
exp of the parameters; L = cholesky(K), z = L^{-1} y (a triangular solve), and
nll = z.z / 2 + sum(log diag L) + n log(2 pi) / 2. One 500x500 Cholesky and triangular solves:
this measures the LAPACK calls and the adjoint's solves more than dispatch. Parameters are a
dict (a pytree, as JAX users write it); the result is (nll, [d ls0, d ls1, d amp, d noise]).
"""
from __future__ import annotations

import numpy as np

from adjit.bench import Workload, torch_threads
from ._common import impls, jax_ready, jax_x64

N = 500
KEYS = ("log_ls", "log_amp", "log_noise")


def inputs(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, (N, 2))
    y = np.sin(x[:, 0]) * np.cos(x[:, 1]) + 0.1 * rng.standard_normal(N)
    return x, y, np.array([0.2, -0.1]), np.array(0.3), np.array(-2.0)


def params(inp):
    return {"log_ls": inp[2], "log_amp": inp[3], "log_noise": inp[4]}


def nll(p, x, y, np_, cholesky, solve_lower):
    ls = np_.exp(p["log_ls"])
    xs = x / ls
    sq = (xs ** 2).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2 * xs @ xs.T
    k = np_.exp(p["log_amp"]) * np_.exp(-0.5 * d2) + (np_.exp(p["log_noise"]) + 1e-6) * \
        np_.eye(x.shape[0])
    L = cholesky(k)
    z = solve_lower(L, y)
    return 0.5 * (z * z).sum() + np_.log(np_.diag(L)).sum() + 0.5 * N * np.log(2 * np.pi)


def _flat(v, g):
    return v, np.concatenate([np.ravel(np.asarray(g[k])) for k in KEYS])


def numpy_setup(inp):
    """The closed form: d nll = tr((K^{-1} - a a^T) dK) / 2 with a = K^{-1} y."""
    from scipy.linalg import cho_solve, solve_triangular
    x, y = inp[:2]
    p = params(inp)

    def run():
        ls = np.exp(p["log_ls"])
        xs = x / ls
        sq = (xs ** 2).sum(1)
        d2 = sq[:, None] + sq[None, :] - 2 * xs @ xs.T
        kf = np.exp(p["log_amp"]) * np.exp(-0.5 * d2)
        nz = np.exp(p["log_noise"])
        k = kf + (nz + 1e-6) * np.eye(N)
        L = np.linalg.cholesky(k)
        z = solve_triangular(L, y, lower=True)
        v = 0.5 * z @ z + np.log(np.diag(L)).sum() + 0.5 * N * np.log(2 * np.pi)
        a = cho_solve((L, True), y)
        w = cho_solve((L, True), np.eye(N)) - np.outer(a, a)
        g_ls = np.array([0.5 * (w * kf * (x[:, d:d + 1] - x[:, d]) ** 2).sum() / ls[d] ** 2
                         for d in range(2)])
        return v, np.concatenate([g_ls, [0.5 * (w * kf).sum(), 0.5 * nz * np.trace(w)]])
    return run


def adjit_setup(inp):
    import adjit
    from adjit.scipy.linalg import solve_triangular
    x, y = inp[:2]
    f = adjit.jit(adjit.value_and_grad(lambda p: nll(
        p, x, y, np, np.linalg.cholesky, lambda L, b: solve_triangular(L, b, lower=True))))
    p = params(inp)
    return lambda: _flat(*f(p))


def jax_setup(inp):
    jax = jax_x64()
    jnp = jax.numpy
    from jax.scipy.linalg import solve_triangular
    x, y = (jnp.asarray(a) for a in inp[:2])
    f = jax.jit(jax.value_and_grad(lambda p: nll(
        p, x, y, jnp, jnp.linalg.cholesky, lambda L, b: solve_triangular(L, b, lower=True))))
    p = {k: jnp.asarray(v) for k, v in params(inp).items()}

    def run():
        v, g = jax_ready(f(p))
        return _flat(v, g)
    return run


def torch_setup(inp):
    torch = torch_threads()
    x, y = (torch.tensor(a) for a in inp[:2])
    p0 = params(inp)

    class _T:  # the NumPy names nll uses, on torch
        exp, log, eye, diag = torch.exp, torch.log, torch.eye, torch.diag

    def solve_lower(L, b):
        return torch.linalg.solve_triangular(L, b[:, None], upper=False)[:, 0]

    def run():
        p = {k: torch.tensor(v, requires_grad=True) for k, v in p0.items()}
        v = nll(p, x, y, _T, torch.linalg.cholesky, solve_lower)
        g = torch.autograd.grad(v, [p[k] for k in KEYS])
        return v.detach().numpy(), np.concatenate([t.numpy().ravel() for t in g])
    return run


def autograd_setup(inp):
    import autograd
    import autograd.numpy as anp
    from autograd.scipy.linalg import solve_triangular
    x, y = inp[:2]
    f = autograd.value_and_grad(lambda p: nll(
        p, x, y, anp, anp.linalg.cholesky, lambda L, b: solve_triangular(L, b, lower=True)))
    p = params(inp)
    return lambda: _flat(*f(p))


def workload():
    return Workload(
        name="W10", title="gp-marginal f64 n=500, value_and_grad", inputs=inputs,
        impls=impls(adjit=adjit_setup, numpy=numpy_setup, torch=torch_setup,
                    jax=jax_setup, autograd=autograd_setup))
