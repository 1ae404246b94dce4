"""W1 scalar-poly: the gradient of x**3 + 2*x**2 - 5*x + 1 at a 0-d float64.

Almost no arithmetic: this measures the fixed cost of one differentiated call (dispatch,
tracing or cache lookup, argument marshalling) in each library.
"""
from __future__ import annotations

import numpy as np

from adjit.bench import Workload, installed, torch_threads


def poly(x):
    return x**3 + 2 * x**2 - 5 * x + 1


def inputs(seed):
    return (np.asarray(np.random.default_rng(seed).uniform(-2.0, 2.0), np.float64),)


def numpy_setup(inp):
    (x,) = inp
    return lambda: 3 * x * x + 4 * x - 5  # the derivative, by hand


def adjit_setup(inp):
    import adjit
    (x,) = inp
    if hasattr(adjit, "grad") and hasattr(adjit, "jit"):
        g = adjit.jit(adjit.grad(poly))
        return lambda: g(x)

    def eager():  # until the transforms exist: the Tensor tape
        t = adjit.tensor(x, requires_grad=True)
        poly(t).backward()
        return t.grad
    return eager


def torch_setup(inp):
    torch = torch_threads()
    xt = torch.tensor(inp[0], requires_grad=True)
    return lambda: torch.autograd.grad(poly(xt), xt)[0]


def torch_func_setup(inp):
    torch = torch_threads()
    g = torch.func.grad(poly)
    xt = torch.tensor(inp[0])
    return lambda: g(xt)


def torch_compile_setup(inp):
    torch = torch_threads()
    g = torch.compile(torch.func.grad(poly))
    xt = torch.tensor(inp[0])
    return lambda: g(xt)


def jax_setup(inp):
    import jax
    jax.config.update("jax_enable_x64", True)
    g = jax.jit(jax.grad(poly))
    xj = jax.numpy.asarray(inp[0])
    return lambda: g(xj).block_until_ready()


def autograd_setup(inp):
    import autograd
    g = autograd.grad(poly)
    (x,) = inp
    return lambda: g(x)


def workload():
    have = {m: installed(m) for m in ("torch", "jax", "autograd")}
    return Workload(
        name="W1", title="scalar poly, grad", inputs=inputs,
        impls={
            "adjit": adjit_setup,
            "numpy": numpy_setup,
            "torch": torch_setup if have["torch"] else None,
            "torch.func": torch_func_setup if have["torch"] else None,
            "torch.compile": torch_compile_setup if have["torch"] else None,
            "jax": jax_setup if have["jax"] else None,
            "autograd": autograd_setup if have["autograd"] else None,
        })
