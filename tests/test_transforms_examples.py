"""JAX-cookbook examples run with adjit on NumPy code and compared with JAX: logistic regression
value_and_grad, Hessian-vector products, Jacobians of vector functions, Hessians, and a
softmax-cross-entropy MLP (gradients against finite differences and JAX; it trains)."""
from __future__ import annotations

import numpy as np
import pytest

from adjit import grad, hessian, jacfwd, jacrev, jit, jvp, value_and_grad, vjp

from peers import require

RNG = np.random.default_rng(42)
INPUTS = RNG.normal(size=(6, 3))
TARGETS = np.array([True, True, False, True, False, False])
W0, B0 = RNG.normal(size=3), 0.1


@pytest.fixture(scope="module")
def jx():
    jax = require("jax")
    import jax.numpy as jnp
    return jax, jnp


def logistic_loss(np, W, b):
    preds = 1 / (1 + np.exp(-(np.dot(INPUTS, W) + b)))
    label_probs = preds * TARGETS + (1 - preds) * (1 - TARGETS)
    return -np.sum(np.log(label_probs))


def test_logistic_regression_value_and_grad(jx):
    jax, jnp = jx
    (v, (gW, gb)) = value_and_grad(lambda W, b: logistic_loss(np, W, b), argnums=(0, 1))(W0, B0)
    assert type(gb) is float
    with jax.enable_x64(True):
        jv, (jW, jb) = jax.value_and_grad(lambda W, b: logistic_loss(jnp, W, b),
                                          argnums=(0, 1))(W0, B0)
    assert v == pytest.approx(float(jv), rel=1e-12)
    np.testing.assert_allclose(gW, np.asarray(jW), rtol=1e-10)
    assert gb == pytest.approx(float(jb), rel=1e-10)
    # gradient descent lowers the loss
    W, b = W0.copy(), B0
    step = jit(value_and_grad(lambda W, b: logistic_loss(np, W, b), argnums=(0, 1)))
    first = step(W, b)[0]
    for _ in range(20):
        v, (gW, gb) = step(W, b)
        W, b = W - 0.1 * gW, b - 0.1 * gb
    assert v < first and step.traces == 1


def vector_fn(np, x):
    return np.stack([np.sin(x[0]) * x[1], np.sum(x ** 2), np.exp(x[2]) / (1 + x[0] ** 2),
                     np.prod(x)])


def test_jacobians_of_vector_functions(jx):
    jax, jnp = jx
    x = RNG.normal(size=3)
    with jax.enable_x64(True):
        want = np.asarray(jax.jacrev(lambda x: vector_fn(jnp, x))(x))
    np.testing.assert_allclose(jacrev(lambda x: vector_fn(np, x))(x), want, rtol=1e-12)
    np.testing.assert_allclose(jacfwd(lambda x: vector_fn(np, x))(x), want, rtol=1e-12)
    f32 = jacrev(lambda x: vector_fn(np, x))(x.astype(np.float32))
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, want, rtol=1e-4, atol=1e-5)


def test_hessian_and_hvp(jx):
    jax, jnp = jx
    x = RNG.normal(size=4)
    v = RNG.normal(size=4)
    f = lambda np, x: np.sum(np.tanh(x) * x[::-1]) + np.prod(x) ** 2  # noqa: E731
    with jax.enable_x64(True):
        H = np.asarray(jax.hessian(lambda x: f(jnp, x))(x))
    np.testing.assert_allclose(hessian(lambda x: f(np, x))(x), H, rtol=1e-10, atol=1e-12)
    # the cookbook's hvp: forward-over-reverse, reverse-over-reverse, reverse-over-forward
    fo = lambda x: f(np, x)  # noqa: E731
    np.testing.assert_allclose(jvp(grad(fo), (x,), (v,))[1], H @ v, rtol=1e-10)
    np.testing.assert_allclose(grad(lambda x: np.sum(grad(fo)(x) * v))(x), H @ v, rtol=1e-10)
    np.testing.assert_allclose(grad(lambda x: jvp(fo, (x,), (v,))[1])(x), H @ v, rtol=1e-10)
    np.testing.assert_allclose(vjp(grad(fo), x)[1](v)[0], H @ v, rtol=1e-10)


def init_mlp(rng, sizes, dtype):
    return [((rng.normal(size=(m, n)) / np.sqrt(m)).astype(dtype), np.zeros(n, dtype))
            for m, n in zip(sizes[:-1], sizes[1:])]


def mlp_loss(np, params, x, labels):
    h = x
    for W, b in params[:-1]:
        h = np.maximum(h @ W + b, 0.0)
    W, b = params[-1]
    logits = h @ W + b
    m = np.max(logits, axis=1, keepdims=True)
    logp = logits - (np.log(np.sum(np.exp(logits - m), axis=1, keepdims=True)) + m)
    return -np.mean(np.sum(logp * labels, axis=1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_mlp(jx, dtype):
    jax, jnp = jx
    rng = np.random.default_rng(0)
    params = init_mlp(rng, [5, 8, 3], dtype)
    x = rng.normal(size=(16, 5)).astype(dtype)
    labels = np.eye(3, dtype=dtype)[rng.integers(0, 3, 16)]
    v, g = value_and_grad(lambda p: mlp_loss(np, p, x, labels))(params)
    assert g[0][0].dtype == dtype and isinstance(g, list) and isinstance(g[0], tuple)
    with jax.enable_x64(dtype == np.float64):
        jv, jg = jax.value_and_grad(lambda p: mlp_loss(jnp, p, x, labels))(params)
    tol = 1e-9 if dtype == np.float64 else 1e-4
    assert float(v) == pytest.approx(float(jv), rel=tol)
    for (gw, gb), (jw, jb) in zip(g, jg):
        np.testing.assert_allclose(gw, np.asarray(jw), rtol=tol, atol=tol)
        np.testing.assert_allclose(gb, np.asarray(jb), rtol=tol, atol=tol)
    if dtype == np.float64:  # finite differences on a few weights
        eps = 1e-6
        for (i, j, k) in [(0, 1, 2), (1, 4, 0), (0, 3, 7)]:
            def at(d):
                p = [(W.copy(), b.copy()) for W, b in params]
                p[i][0][j, k] += d
                return mlp_loss(np, p, x, labels)
            assert g[i][0][j, k] == pytest.approx((at(eps) - at(-eps)) / (2 * eps), rel=1e-5,
                                                  abs=1e-8)
    step = jit(value_and_grad(lambda p: mlp_loss(np, p, x, labels)))
    first = step(params)[0]
    for _ in range(30):
        v, g = step(params)
        params = [(W - 0.5 * gW, b - 0.5 * gb) for (W, b), (gW, gb) in zip(params, g)]
    assert v < first
