"""W6 eager-tape-tiny, float32: the seed's `y = (x*2)**2; z = y.mean(); z.backward()` on three
elements, with `x.grad.zero_()` every step (adjit's eager Tensor API, no jit).

Nothing to compute: the cost of recording a three-operation tape and running it backwards.
"""
from __future__ import annotations

import numpy as np

from adjit.bench import Workload, torch_threads
from ._common import cold_inductor, impls, jax_ready


def inputs(seed):
    return (np.array([1.0, 2.0, 3.0], np.float32) + np.float32(seed),)


def _tape_step(x):
    if x.grad is not None:
        x.grad.zero_()
    y = (x * 2) ** 2
    z = y.mean()
    z.backward()
    return x.grad


def adjit_setup(inp):
    import adjit as torch
    x = torch.tensor(inp[0], requires_grad=True)
    return lambda: _tape_step(x)


def numpy_setup(inp):
    (x,) = inp
    return lambda: (8 / 3) * x  # d/dx mean((2x)^2)


def _f(x):
    return ((x * 2) ** 2).mean()


def torch_setup(inp):
    torch = torch_threads()
    x = torch.tensor(inp[0], requires_grad=True)
    return lambda: _tape_step(x)


def torch_func_setup(inp):
    torch = torch_threads()
    g = torch.func.grad(_f)
    x = torch.tensor(inp[0])
    return lambda: g(x)


def torch_compile_setup(inp):
    cold_inductor()
    torch = torch_threads()
    cf = torch.compile(_f)
    x = torch.tensor(inp[0], requires_grad=True)

    def run():
        if x.grad is not None:
            x.grad.zero_()
        cf(x).backward()
        return x.grad
    return run


def jax_setup(inp):
    import jax
    g = jax.jit(jax.grad(_f))
    x = jax.numpy.asarray(inp[0])
    return lambda: jax_ready(g(x))


def autograd_setup(inp):
    import autograd
    import autograd.numpy as anp
    g = autograd.grad(lambda x: anp.mean((x * 2) ** 2))
    (x,) = inp
    return lambda: g(x)


def workload():
    return Workload(
        name="W6", title="eager tape tiny f32, backward", inputs=inputs,
        impls=impls(adjit=adjit_setup, numpy=numpy_setup, torch=torch_setup,
                    torch_func=torch_func_setup, torch_compile=torch_compile_setup,
                    jax=jax_setup, autograd=autograd_setup))
