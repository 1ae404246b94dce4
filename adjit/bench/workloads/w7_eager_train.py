"""W7 eager-train, float32: the seed-style PyTorch loop (leaf tensors with requires_grad, the
update under no_grad, grad.zero_()) training a 2-layer MLP, 64 samples, 10 -> 32 (relu) -> 1,
mean squared error, 50 SGD steps. One call is the whole loop, from fresh copies of the initial
weights; every implementation returns the last step's loss and the final weights.

adjit runs the very code PyTorch runs (`train(adjit, ...)` vs `train(torch, ...)`): the eager
Tensor API, no jit.
"""
from __future__ import annotations

import numpy as np

from adjit.bench import Workload, torch_threads
from ._common import cold_inductor, impls, jax_ready

STEPS, LR = 50, 0.05


def inputs(seed):
    rng = np.random.default_rng(seed)
    f32 = np.float32
    X = rng.standard_normal((64, 10)).astype(f32)
    Y = (np.sin(X[:, :1]) + 0.1 * rng.standard_normal((64, 1))).astype(f32)
    W1 = (rng.standard_normal((10, 32)) / np.sqrt(10)).astype(f32)
    b1 = np.zeros(32, f32)
    W2 = (rng.standard_normal((32, 1)) / np.sqrt(32)).astype(f32)
    b2 = np.zeros(1, f32)
    return X, Y, W1, b1, W2, b2


def train(torch, X, Y, W1, b1, W2, b2):
    """The seed-style loop, for `torch` = adjit or PyTorch."""
    X, Y = torch.from_numpy(X), torch.from_numpy(Y)
    w1, c1, w2, c2 = params = [torch.tensor(p, requires_grad=True) for p in (W1, b1, W2, b2)]
    for _ in range(STEPS):
        h = torch.relu(X @ w1 + c1)
        pred = h @ w2 + c2
        loss = ((pred - Y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= LR * p.grad
                p.grad.zero_()
    return (loss.detach(), *(p.detach() for p in params))


def adjit_setup(inp):
    import adjit
    return lambda: train(adjit, *inp)


def torch_setup(inp):
    torch = torch_threads()
    return lambda: train(torch, *inp)


def numpy_setup(inp):
    X, Y, *init = inp
    n = X.shape[0]

    def run():
        w1, c1, w2, c2 = (p.copy() for p in init)
        for _ in range(STEPS):
            a = X @ w1 + c1
            h = np.maximum(a, 0)
            r = h @ w2 + c2 - Y
            loss = np.mean(r * r)
            dp = (2 / n) * r
            dw2, dc2 = h.T @ dp, dp.sum(axis=0)
            da = (dp @ w2.T) * (a > 0)
            dw1, dc1 = X.T @ da, da.sum(axis=0)
            w1 -= LR * dw1
            c1 -= LR * dc1
            w2 -= LR * dw2
            c2 -= LR * dc2
        return loss, w1, c1, w2, c2
    return run


def _loss(w1, c1, w2, c2, X, Y):
    import torch
    return ((torch.relu(X @ w1 + c1) @ w2 + c2 - Y) ** 2).mean()


def torch_func_setup(inp):
    torch = torch_threads()
    X, Y, *init = (torch.from_numpy(a) for a in inp)
    step = torch.func.grad_and_value(_loss, argnums=(0, 1, 2, 3))

    def run():
        params = list(init)
        for _ in range(STEPS):
            grads, loss = step(*params, X, Y)
            params = [p - LR * g for p, g in zip(params, grads)]
        return (loss, *params)
    return run


def torch_compile_setup(inp):
    cold_inductor()
    torch = torch_threads()
    X, Y, *init = (torch.from_numpy(a) for a in inp)
    closs = torch.compile(_loss)

    def run():
        params = [p.clone().requires_grad_(True) for p in init]
        for _ in range(STEPS):
            loss = closs(*params, X, Y)
            loss.backward()
            with torch.no_grad():
                for p in params:
                    p -= LR * p.grad
                    p.grad.zero_()
        return (loss.detach(), *(p.detach() for p in params))
    return run


def jax_setup(inp):
    import jax
    jnp = jax.numpy

    def loss(params, X, Y):
        w1, c1, w2, c2 = params
        return jnp.mean((jax.nn.relu(X @ w1 + c1) @ w2 + c2 - Y) ** 2)

    @jax.jit
    def update(params, X, Y):
        val, grads = jax.value_and_grad(loss)(params, X, Y)
        return val, jax.tree_util.tree_map(lambda p, g: p - LR * g, params, grads)
    X, Y, *init = (jnp.asarray(a) for a in inp)

    def run():
        params = tuple(init)
        for _ in range(STEPS):
            val, params = update(params, X, Y)
        return jax_ready((val, *params))
    return run


def autograd_setup(inp):
    import autograd
    import autograd.numpy as anp
    X, Y, *init = inp

    def loss(params):
        w1, c1, w2, c2 = params
        return anp.mean((anp.maximum(anp.dot(X, w1) + c1, 0) @ w2 + c2 - Y) ** 2)
    step = autograd.value_and_grad(loss)

    def run():
        params = tuple(init)
        for _ in range(STEPS):
            val, grads = step(params)
            params = tuple(p - LR * g for p, g in zip(params, grads))
        return (val, *params)
    return run


def workload():
    return Workload(
        name="W7", title="eager train loop, 50 SGD steps", inputs=inputs,
        impls=impls(adjit=adjit_setup, numpy=numpy_setup, torch=torch_setup,
                    torch_func=torch_func_setup, torch_compile=torch_compile_setup,
                    jax=jax_setup, autograd=autograd_setup))
