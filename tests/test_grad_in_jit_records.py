"""grad inside jit (or inside another grad) on small values moves the forward's records to
the enclosing trace and records the adjoint there (issue 18: a new jitted step's first call
recorded the forward twice, once at grad's level and again by a replay). Each case compares
values and gradients with JAX (x64) over several calls (the trace, then the recorded graph),
including the cases where identity matters: one array passed as two arguments, an argument
the function also reads from its closure, a constant made inside the function, guards."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
from adjit.transforms import autodiff as tad
from peers import require

jax = require("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)


def _tree_close(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        _close(x, y)


rng = np.random.default_rng(7)
P = rng.normal(size=(3, 4))
Q = rng.normal(size=(4,))


def _check(f_np, f_jax, args, **kw):
    jf = adjit.jit(adjit.value_and_grad(f_np, **kw))
    want = jax.value_and_grad(f_jax, **kw)(*args)
    for k in range(3):
        _tree_close(jf(*args), want)


def test_the_forward_is_not_replayed(monkeypatch):
    calls = []
    orig = tad.replay_with_values
    monkeypatch.setattr(tad, "replay_with_values",
                        lambda *a, **k: calls.append(1) or orig(*a, **k))

    def loss(params, X):
        h = np.maximum(X @ params["W"] + params["b"], 0.0)
        return np.sum(np.tanh(h) ** 2) / X.shape[0]

    def loss_j(params, X):
        h = jnp.maximum(X @ params["W"] + params["b"], 0.0)
        return jnp.sum(jnp.tanh(h) ** 2) / X.shape[0]
    X = rng.normal(size=(5, 3))
    _check(loss, loss_j, ({"W": P, "b": Q}, X))
    assert calls == []


def test_one_array_as_two_arguments():
    _check(lambda a, b: np.sum(a * np.sin(b)), lambda a, b: jnp.sum(a * jnp.sin(b)), (P, P),
           argnums=(0, 1))


def test_an_argument_also_read_from_the_closure():
    def outer(p):
        return adjit.grad(lambda q: np.sum(q * p * q))(p)

    def outer_j(p):
        return jax.grad(lambda q: jnp.sum(q * p * q))(p)
    jf = adjit.jit(outer)
    for _ in range(3):
        _close(jf(P), outer_j(P))


@pytest.mark.parametrize("which", [0, 1])
def test_a_constant_made_inside_and_an_unused_argument(which):
    # which=1: the product reads the constant itself (moved with the records); which=0: its
    # broadcast, an equation of constants only (the replay's route, computed at once)
    _check(lambda a, b: np.sum((a, b)[which] * np.arange(4.0)) + 2.0,
           lambda a, b: jnp.sum((a, b)[which] * jnp.arange(4.0)) + 2.0, (P, Q),
           argnums=(0, 1))


def test_grad_of_grad_inside_jit():
    def f(x):
        return np.sum(np.sin(x) * x ** 3)

    def f_j(x):
        return jnp.sum(jnp.sin(x) * x ** 3)
    jf = adjit.jit(adjit.grad(lambda x: np.sum(adjit.grad(f)(x) ** 2)))
    want = jax.grad(lambda x: jnp.sum(jax.grad(f_j)(x) ** 2))(Q)
    for _ in range(3):
        _close(jf(Q), want)


def test_a_guard_recorded_in_the_forward_holds_at_jit():
    jf = adjit.jit(adjit.value_and_grad(lambda x: np.sum(x[x > 0] ** 3)))
    want = jax.value_and_grad(lambda x: jnp.sum(jnp.where(x > 0, x, 0.0) ** 3))
    for x in (Q, Q, -Q, np.abs(Q), Q):   # other masks, other counts: the guard fails, traces
        _tree_close(jf(x), want(x))


@pytest.mark.parametrize("has_aux", [False, True])
def test_aux_and_integer_operands(has_aux):
    idx = np.array([2, 0, 1])

    # aux: a value the output shares, one of its own records, a copy of an argument
    def f(x, i):
        v = np.sum(x[np.arange(3), i] ** 2)
        return (v, (x.shape[0] * v, np.mean(np.cos(x), axis=0), x, v)) if has_aux else v

    def f_j(x, i):
        v = jnp.sum(x[jnp.arange(3), i] ** 2)
        return (v, (x.shape[0] * v, jnp.mean(jnp.cos(x), axis=0), x, v)) if has_aux else v
    _check(f, f_j, (P, idx), has_aux=has_aux)
