"""The MLP classifier step of W2 (small) and W3 (medium), float32.

loss(W1, b1, W2, b2, X, y) = mean softmax cross-entropy of relu(X @ W1 + b1) @ W2 + b2 against
the integer labels y; every implementation returns (loss, dW1, db1, dW2, db2).

`adjit` passes the six arrays positionally; `adjit.pytree` and `jax` write the step as JAX users
do, `value_and_grad(loss)(params, X, y)` with `params` a dict of the four parameters (the row
the targets use, bench.adjit_row).
"""
from __future__ import annotations

import numpy as np

from ._common import cold_inductor, impls, jax_ready
from adjit.bench import Workload, torch_threads


def make_inputs(n, d_in, d_hidden, d_out):
    def inputs(seed):
        rng = np.random.default_rng(seed)
        f32 = np.float32
        X = rng.standard_normal((n, d_in)).astype(f32)
        W1 = (rng.standard_normal((d_in, d_hidden)) / np.sqrt(d_in)).astype(f32)
        b1 = (0.1 * rng.standard_normal(d_hidden)).astype(f32)
        W2 = (rng.standard_normal((d_hidden, d_out)) / np.sqrt(d_hidden)).astype(f32)
        b2 = (0.1 * rng.standard_normal(d_out)).astype(f32)
        y = rng.integers(0, d_out, n)  # int64 labels
        return W1, b1, W2, b2, X, y
    return inputs


# ---------------------------------------------------------------- adjit: plain NumPy, jit(vg)
def loss(W1, b1, W2, b2, X, y):
    h = np.maximum(X @ W1 + b1, 0)
    z = h @ W2 + b2
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(X.shape[0]), y])


def adjit_setup(inp):
    import adjit
    step = adjit.jit(adjit.value_and_grad(loss, argnums=(0, 1, 2, 3)))
    return lambda: step(*inp)


PARAMS = ("W1", "b1", "W2", "b2")


def loss_params(params, X, y):
    return loss(params["W1"], params["b1"], params["W2"], params["b2"], X, y)


def adjit_pytree_setup(inp):
    import adjit
    step = adjit.jit(adjit.value_and_grad(loss_params))
    params, X, y = dict(zip(PARAMS, inp[:4])), inp[4], inp[5]

    def run():
        val, g = step(params, X, y)
        return (val, g["W1"], g["b1"], g["W2"], g["b2"])
    return run


# ---------------------------------------------------------------- NumPy, gradients by hand
def numpy_step(W1, b1, W2, b2, X, y):
    n = X.shape[0]
    a = X @ W1 + b1
    h = np.maximum(a, 0)
    z = h @ W2 + b2
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    val = np.mean(np.log(s[:, 0]) - z[rows, y])
    dz = e / s
    dz[rows, y] -= 1
    dz /= n
    dW2 = h.T @ dz
    db2 = dz.sum(axis=0)
    da = dz @ W2.T
    da *= a > 0
    dW1 = X.T @ da
    db1 = da.sum(axis=0)
    return val, dW1, db1, dW2, db2


def numpy_setup(inp):
    return lambda: numpy_step(*inp)


# ---------------------------------------------------------------- PyTorch
def torch_loss(W1, b1, W2, b2, X, y):
    import torch.nn.functional as F
    return F.cross_entropy(F.relu(X @ W1 + b1) @ W2 + b2, y)


def _torch_inputs(inp, requires_grad):
    torch = torch_threads()
    params = [torch.tensor(p, requires_grad=requires_grad) for p in inp[:4]]
    return torch, params, torch.from_numpy(inp[4]), torch.from_numpy(inp[5])


def torch_setup(inp):
    torch, params, X, y = _torch_inputs(inp, True)

    def run():
        for p in params:
            p.grad = None  # optimizer.zero_grad(set_to_none=True)
        val = torch_loss(*params, X, y)
        val.backward()
        return (val.detach(), *(p.grad for p in params))
    return run


def torch_func_setup(inp):
    torch, params, X, y = _torch_inputs(inp, False)
    step = torch.func.grad_and_value(torch_loss, argnums=(0, 1, 2, 3))

    def run():
        grads, val = step(*params, X, y)
        return (val, *grads)
    return run


def torch_compile_setup(inp):
    cold_inductor()
    torch, params, X, y = _torch_inputs(inp, True)
    compiled = torch.compile(torch_loss)

    def run():
        for p in params:
            p.grad = None
        val = compiled(*params, X, y)
        val.backward()
        return (val.detach(), *(p.grad for p in params))
    return run


# ---------------------------------------------------------------- JAX
def jax_setup(inp):
    import jax
    import jax.numpy as jnp

    def jloss(params, X, y):  # the params pytree, as adjit.pytree
        W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
        logp = jax.nn.log_softmax(jax.nn.relu(X @ W1 + b1) @ W2 + b2)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
    step = jax.jit(jax.value_and_grad(jloss))
    params = {k: jnp.asarray(a) for k, a in zip(PARAMS, inp[:4])}
    X, y = jnp.asarray(inp[4]), jnp.asarray(inp[5])

    def run():
        val, g = jax_ready(step(params, X, y))
        return (val, g["W1"], g["b1"], g["W2"], g["b2"])
    return run


# ---------------------------------------------------------------- HIPS autograd
def autograd_setup(inp):
    import autograd
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp
    W1, b1, W2, b2, X, y = inp
    rows = np.arange(X.shape[0])

    def aloss(params):
        W1, b1, W2, b2 = params
        z = anp.maximum(anp.dot(X, W1) + b1, 0) @ W2 + b2
        return anp.mean(logsumexp(z, axis=1) - z[rows, y])
    step = autograd.value_and_grad(aloss)
    params = (W1, b1, W2, b2)

    def run():
        val, grads = step(params)
        return (val, *grads)
    return run


def workload(name, title, n, d_in, d_hidden, d_out):
    return Workload(
        name=name, title=title, inputs=make_inputs(n, d_in, d_hidden, d_out),
        impls=impls(adjit=adjit_setup, adjit_pytree=adjit_pytree_setup, numpy=numpy_setup, torch=torch_setup,
                    torch_func=torch_func_setup, torch_compile=torch_compile_setup,
                    jax=jax_setup, autograd=autograd_setup),
        rtol_f32=2e-4, atol_f32=1e-5)
