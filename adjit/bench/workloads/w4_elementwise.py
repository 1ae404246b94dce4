"""W4 elementwise-1M, float64: the gradient of sum(sin(x) * x + tanh(x)**2), x[1_000_000].

Pure elementwise math and one reduction over 8 MB: it measures whether the math is fused into
one pass and vectorised (memory traffic, transcendental throughput), not call overhead.
"""
from __future__ import annotations

import numpy as np

from adjit.bench import Workload, torch_threads
from ._common import cold_inductor, impls, jax_ready, jax_x64

N = 1_000_000


def f(x, sin=np.sin, tanh=np.tanh):
    return (sin(x) * x + tanh(x) ** 2).sum()


def inputs(seed):
    return (np.random.default_rng(seed).uniform(-3.0, 3.0, N),)


def numpy_setup(inp):
    (x,) = inp

    def grad():  # d/dx [sin(x) x + tanh(x)^2] = cos(x) x + sin(x) + 2 tanh(x) (1 - tanh(x)^2)
        t = np.tanh(x)
        return np.cos(x) * x + np.sin(x) + 2 * t * (1 - t * t)
    return grad


def adjit_setup(inp):
    import adjit
    g = adjit.jit(adjit.grad(f))
    (x,) = inp
    return lambda: g(x)


def _tf(x):
    import torch
    return f(x, torch.sin, torch.tanh)


def torch_setup(inp):
    torch = torch_threads()
    x = torch.tensor(inp[0], requires_grad=True)

    def run():
        x.grad = None
        _tf(x).backward()
        return x.grad
    return run


def torch_func_setup(inp):
    torch = torch_threads()
    g = torch.func.grad(_tf)
    x = torch.tensor(inp[0])
    return lambda: g(x)


def torch_compile_setup(inp):
    cold_inductor()
    torch = torch_threads()
    cf = torch.compile(_tf)
    x = torch.tensor(inp[0], requires_grad=True)

    def run():
        x.grad = None
        cf(x).backward()
        return x.grad
    return run


def jax_setup(inp):
    jax = jax_x64()
    jnp = jax.numpy
    g = jax.jit(jax.grad(lambda x: f(x, jnp.sin, jnp.tanh)))
    x = jnp.asarray(inp[0])
    return lambda: jax_ready(g(x))


def autograd_setup(inp):
    import autograd
    import autograd.numpy as anp
    g = autograd.grad(lambda x: f(x, anp.sin, anp.tanh))
    (x,) = inp
    return lambda: g(x)


def workload():
    return Workload(
        name="W4", title="elementwise-1M f64, grad", inputs=inputs,
        impls=impls(adjit=adjit_setup, numpy=numpy_setup, torch=torch_setup,
                    torch_func=torch_func_setup, torch_compile=torch_compile_setup,
                    jax=jax_setup, autograd=autograd_setup))
