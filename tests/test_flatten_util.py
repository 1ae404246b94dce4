"""adjit.flatten_util.ravel_pytree against jax.flatten_util.ravel_pytree (x64): the flat
vector (order, values, dtype), unravel's structure, shapes and dtypes, its refusals, and
gradients through ravel and unravel (under grad and jit)."""
from __future__ import annotations

import collections

import numpy as np
import pytest

import adjit
from adjit.flatten_util import ravel_pytree

from peers import require

jax = require("jax")
jax.config.update("jax_enable_x64", True)
from jax.flatten_util import ravel_pytree as jax_ravel  # noqa: E402

Pair = collections.namedtuple("Pair", "first second")

TREES = {
    "dict": lambda: {"w": np.arange(6.0).reshape(2, 3), "b": np.array([0.5, -1.0]),
                     "a": 2.5},
    "nested": lambda: ({"z": [np.ones(2), None, np.float64(3.0)]}, [np.eye(2)], 1.0),
    "namedtuple": lambda: Pair(np.linspace(0, 1, 3), {"k": np.array(7.0)}),
    "mixed_float": lambda: {"a": np.ones(2, np.float32), "b": np.arange(3.0)},
    "int_and_float": lambda: [np.arange(3), np.ones(2)],
    "f32_only": lambda: (np.ones(3, np.float32), np.zeros((1, 2), np.float32)),
    "empty": lambda: ((), {}, None),
}


def _leaves(tree):
    return jax.tree_util.tree_leaves(tree)


@pytest.mark.parametrize("name", sorted(TREES))
def test_ravel_and_unravel_match_jax(name):
    tree = TREES[name]()
    flat, unravel = ravel_pytree(tree)
    jflat, junravel = jax_ravel(tree)
    assert isinstance(flat, np.ndarray) and flat.dtype == np.asarray(jflat).dtype
    np.testing.assert_array_equal(flat, np.asarray(jflat))
    back, jback = unravel(flat), junravel(jflat)
    assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(jback)
    for got, want in zip(_leaves(back), _leaves(jback)):
        want = np.asarray(want)
        assert np.shape(got) == want.shape and np.asarray(got).dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    if flat.size:  # a new vector gives new leaves; no leaf aliases it
        back2 = unravel(flat * 2)
        np.testing.assert_array_equal(ravel_pytree(back2)[0], flat * 2)
        leaf = _leaves(back)[0]
        if isinstance(leaf, np.ndarray) and leaf.size:
            assert not np.shares_memory(leaf, flat)


def test_unravel_refusals_match_jax():
    tree = {"a": np.ones(2), "b": 1.0}
    flat, unravel = ravel_pytree(tree)
    _, junravel = jax_ravel(tree)
    for bad in (np.ones(4), np.ones(2)):
        with pytest.raises(ValueError):
            junravel(bad)
        with pytest.raises(ValueError, match=r"expected a vector of shape \(3,\)"):
            unravel(bad)
    # one dtype: unravel keeps the vector's dtype (as JAX's)
    assert unravel(np.ones(3, np.float32))["a"].dtype == \
        np.asarray(junravel(np.ones(3, np.float32))["a"]).dtype == np.float32
    # several dtypes: unravel requires the raveled dtype (JAX's TypeError)
    mixed = {"a": np.ones(2, np.float32), "b": np.ones(1)}
    _, unravel = ravel_pytree(mixed)
    _, junravel = jax_ravel(mixed)
    with pytest.raises(TypeError):
        junravel(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="expected dtype float64"):
        unravel(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="NumPy arrays or scalars"):
        ravel_pytree([adjit.ones(2)])


def _loss(np_, ravel):
    def loss(params):
        flat, unravel = ravel(params)
        scaled = unravel(flat * np_.tanh(flat))
        return np_.sum(flat ** 2) + np_.sum(scaled["w"] @ scaled["b"]) + scaled["c"] * 3.0
    return loss


def test_gradients_through_ravel_and_unravel_match_jax():
    params = {"w": np.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": np.array([0.3, -0.7, 1.1]),
              "c": np.array(0.4)}
    want = jax.grad(_loss(jax.numpy, jax_ravel))(params)
    for fn in (adjit.grad(_loss(np, ravel_pytree)),
               adjit.jit(adjit.grad(_loss(np, ravel_pytree)))):
        for _ in range(2):
            got = fn(params)
            assert sorted(got) == sorted(want)
            for k in want:
                np.testing.assert_allclose(got[k], np.asarray(want[k]), rtol=1e-12)


def test_unravel_of_a_traced_vector_is_differentiable():
    # the inverse direction: a function of a flat vector that works on the tree
    tree = {"a": np.ones((2, 2)), "b": np.ones(3)}
    flat0, unravel = ravel_pytree(tree)
    _, junravel = jax_ravel(tree)

    def f(np_, un):
        def g(v):
            t = un(v)
            return np_.sum(np_.sin(t["a"]) @ t["a"]) + np_.prod(t["b"])
        return g
    v = np.linspace(0.1, 0.9, flat0.size)
    np.testing.assert_allclose(adjit.grad(f(np, unravel))(v),
                               np.asarray(jax.grad(f(jax.numpy, junravel))(v)), rtol=1e-12)
    np.testing.assert_allclose(adjit.vmap(lambda u: ravel_pytree(unravel(u * 2.0))[0])(
        np.stack([v, -v])), np.stack([2 * v, -2 * v]))
