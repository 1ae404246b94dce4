"""np.partition / np.argpartition on traced arrays (issue 15 item 2): NumPy's contract (the kth
elements in their sorted places, smaller before, larger after) against NumPy, kth as an int or
a sequence, NumPy's errors, and derivatives of order-independent functions of the parts
against JAX x64 in both modes, native code too."""
from __future__ import annotations

import numpy as np
import pytest

from adjit import grad, jacfwd, jacrev, jit, vmap

from peers import require

RNG = np.random.default_rng(152)


def _check_partition(p, a, kth, axis):
    """p is a valid np.partition(a, kth, axis): same multiset and the kth places agree."""
    want = np.partition(a, kth, axis=axis)
    if axis is None:
        a, axis = a.reshape(-1), 0
    np.testing.assert_array_equal(np.sort(p, axis=axis), np.sort(a, axis=axis))
    ks = np.atleast_1d(kth) % a.shape[axis]
    np.testing.assert_array_equal(np.take(p, ks, axis=axis), np.take(want, ks, axis=axis))
    for k in ks:
        kv = np.take(p, [k], axis=axis)
        lo, hi = np.take(p, np.arange(k), axis=axis), np.take(p, np.arange(k + 1,
                                                                               p.shape[axis]),
                                                               axis=axis)
        assert np.all(lo <= kv) and np.all(hi >= kv)


@pytest.mark.parametrize("kth,axis", [(2, -1), (-1, 0), ([0, 3], 1), ((1, 2, 2), 0),
                                      (7, None)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.bool_])
def test_partition_and_argpartition_keep_numpys_contract(kth, axis, dtype):
    a = RNG.normal(size=(4, 5)).astype(dtype) if dtype != np.bool_ else RNG.random((4, 5)) > .5
    if dtype == np.int64:
        a = RNG.integers(-3, 3, (4, 5))
    f = jit(lambda x: (np.partition(x, kth, axis=axis), np.argpartition(x, kth, axis=axis)))
    p, i = f(a)
    assert p.dtype == np.partition(a, kth, axis=axis).dtype
    assert i.dtype == np.argpartition(a, kth, axis=axis).dtype
    _check_partition(p, a, kth, axis)
    taken = a.reshape(-1)[i] if axis is None else np.take_along_axis(a, i, axis=axis)
    _check_partition(taken, a, kth, axis)


def test_partition_errors_are_numpys():
    a = np.arange(4.0)
    for kth, msg in ((4, r"kth\(=4\) out of bounds \(4\)"), (-5, r"kth\(=-1\) out of bounds"),
                     ([1, 4], r"kth\(=4\) out of bounds")):
        with pytest.raises(ValueError, match=msg):
            grad(lambda x: np.sum(np.partition(x, kth)))(a)
    with pytest.raises(ValueError, match="select kind must be 'introselect'"):
        grad(lambda x: np.sum(np.partition(x, 1, kind="quick")))(a)
    with pytest.raises(TypeError, match="Partition index must be integer"):
        grad(lambda x: np.sum(np.partition(x, 1.5)))(a)
    with pytest.raises(TypeError, match="order"):
        grad(lambda x: np.sum(np.partition(x, 1, order="f")))(a)


def _loss(np_, x):
    """Order-independent within each part: the kth values and sums of powers of the parts.
    (JAX's partition takes one kth only; any valid partition gives this loss, its sort too.)"""
    p = np_.partition(x, (1, 3), axis=1) if np_ is np else np_.sort(x, axis=1)
    low = np_.sum(p[:, :1] ** 2)
    mid = np_.sum(np_.sin(p[:, 1]) * p[:, 3])
    high = np_.sum(np_.exp(p[:, 4:] * 0.3))
    return low + mid + high


def test_partition_derivatives_match_jax():
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    x = RNG.normal(size=(3, 6))
    jl = lambda v: _loss(jnp, v)  # noqa: E731
    want_g, want_h = jax.grad(jl)(x), jax.hessian(jl)(x)
    np.testing.assert_allclose(grad(lambda v: _loss(np, v))(x), want_g, rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(jit(grad(lambda v: _loss(np, v)))(x), want_g, rtol=1e-12,
                               atol=1e-12)
    for how in (jacfwd, jacrev):
        np.testing.assert_allclose(how(grad(lambda v: _loss(np, v)))(x), want_h, rtol=1e-10,
                                   atol=1e-10)


def test_partition_batches_under_vmap():
    xs = RNG.normal(size=(4, 7))
    got = vmap(lambda v: np.partition(v, 3)[3])(xs)
    np.testing.assert_array_equal(got, [np.partition(v, 3)[3] for v in xs])
