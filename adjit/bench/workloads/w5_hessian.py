"""W5 hessian-small, float64: the full Hessian of sum(tanh(A @ x)**2) in x, A[16,16], x[16].

Second-order differentiation of a tiny function: forward-over-reverse in the libraries that
have it (jacfwd(jacrev)), dispatch and transform overhead dominate.
"""
from __future__ import annotations

import numpy as np

from adjit.bench import Workload, torch_threads
from ._common import cold_inductor, impls, jax_ready, jax_x64


def f(x, A, tanh=np.tanh):
    return (tanh(A @ x) ** 2).sum()


def inputs(seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(16), rng.standard_normal((16, 16)) / 4


def numpy_setup(inp):
    x, A = inp

    def hess():  # H = A^T diag(h'') A, h(u) = tanh(u)^2, h'' = 2 (1 - t^2)(1 - 3 t^2)
        t = np.tanh(A @ x)
        t2 = t * t
        return A.T @ ((2 * (1 - t2) * (1 - 3 * t2))[:, None] * A)
    return hess


def adjit_setup(inp):
    import adjit
    h = adjit.jit(adjit.hessian(f))
    x, A = inp
    return lambda: h(x, A)


def _tf(x, A):
    import torch
    return f(x, A, torch.tanh)


def _targs(inp):
    torch = torch_threads()
    return torch, torch.tensor(inp[0]), torch.tensor(inp[1])


def torch_setup(inp):
    torch, x, A = _targs(inp)
    return lambda: torch.autograd.functional.hessian(lambda x: _tf(x, A), x)


def torch_func_setup(inp):
    torch, x, A = _targs(inp)
    h = torch.func.jacfwd(torch.func.jacrev(_tf))
    return lambda: h(x, A)


def torch_compile_setup(inp):
    # double backward through a compiled graph is not supported (aot_autograd): the torch docs
    # compose torch.compile with the torch.func transforms instead
    cold_inductor()
    torch, x, A = _targs(inp)
    h = torch.compile(torch.func.jacfwd(torch.func.jacrev(_tf)))
    return lambda: h(x, A)


def jax_setup(inp):
    jax = jax_x64()
    jnp = jax.numpy
    h = jax.jit(jax.hessian(lambda x, A: f(x, A, jnp.tanh)))
    x, A = (jnp.asarray(a) for a in inp)
    return lambda: jax_ready(h(x, A))


def autograd_setup(inp):
    import autograd
    import autograd.numpy as anp
    h = autograd.hessian(lambda x, A: f(x, A, anp.tanh))
    x, A = inp
    return lambda: h(x, A)


def workload():
    return Workload(
        name="W5", title="hessian-small f64", inputs=inputs,
        impls=impls(adjit=adjit_setup, numpy=numpy_setup, torch=torch_setup,
                    torch_func=torch_func_setup, torch_compile=torch_compile_setup,
                    jax=jax_setup, autograd=autograd_setup))
