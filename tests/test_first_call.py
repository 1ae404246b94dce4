"""The first call of jit(grad(f)) on big arrays (issue 18 item 2): the trace records the adjoint
into jit's trace but computes it once, on the interpreter tier's optimised graph (no `pow x 1.0`,
each equation once), with guards, fresh outputs and values unchanged."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
import adjit.runtime as runtime
from adjit.ir.core import REGISTRY
from adjit.transforms import autodiff
from peers import require

N = 2 * autodiff.INTERPRET_MIN_SIZE


def f(x):
    return (np.sin(x) * x + np.tanh(x) ** 2).sum()


@pytest.fixture
def pow_calls(monkeypatch):
    calls = []
    prim = REGISTRY["pow"]
    impl = prim.impl

    def spy(*args, **params):
        calls.append(args[1])
        return impl(*args, **params)
    monkeypatch.setattr(prim, "impl", spy)
    return calls


def _jax_grad(fn, x):
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    return np.asarray(jax.grad(lambda a: fn(a, jnp))(jnp.asarray(x)))


def test_first_call_evaluates_the_optimised_adjoint(pow_calls):
    x = np.random.default_rng(0).uniform(-3, 3, N)
    g = adjit.jit(adjit.value_and_grad(f))
    val, gr = g(x)
    # the unoptimised adjoint of tanh(x)**2 computes tanh(x)**1.0: the optimised one does not
    assert not any(np.ndim(e) == 0 and float(e) == 1.0 for e in pow_calls), pow_calls
    want = _jax_grad(lambda a, m: (m.sin(a) * a + m.tanh(a) ** 2).sum(), x)
    np.testing.assert_allclose(gr, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(val, f(x), rtol=1e-12)
    assert gr.flags.writeable and gr.base is None and not np.shares_memory(gr, x)
    val2, gr2 = g(x)
    if runtime.tier_mode() == "native":  # native code: sin/tanh within the ulp bounds of
        np.testing.assert_allclose(gr2, gr, rtol=1e-13, atol=1e-15)  # docs/codegen.md
    else:  # the interpreted second call agrees with the first, bitwise
        np.testing.assert_array_equal(gr2, gr)


def test_first_call_guards_and_branches_on_the_gradient():
    def h(x):  # a guard inside grad, and one on the gradient's value in jit's trace
        gr = adjit.grad(lambda a: (a * a).sum() if a[0] > 0 else (a * a * a).sum())(x)
        return gr * 2.0 if gr[1] > 0 else gr - 1.0
    j = adjit.jit(h)
    for s in (1.0, -1.0, 1.0):
        x = np.linspace(0.5, 1.5, N) * s
        want = _jax_grad(lambda a, m: (a * a).sum() if s > 0 else (a * a * a).sum(), x)
        want = want * 2.0 if want[1] > 0 else want - 1.0
        np.testing.assert_allclose(j(x), want, rtol=1e-12)


@pytest.fixture
def sin_calls(monkeypatch):
    calls = []
    prim = REGISTRY["sin"]
    impl = prim.impl

    def spy(*args, **params):
        calls.append(np.shape(args[0]))
        return impl(*args, **params)
    monkeypatch.setattr(prim, "impl", spy)
    return calls


@pytest.mark.parametrize("n", [7, N + 3])  # sizes no other test traced
def test_first_call_computes_the_forward_once(sin_calls, n):
    """jit(value_and_grad)'s first call: the forward computed while tracing f is the one the
    adjoint reads (recorded into jit's trace with its values), not evaluated a second time."""
    x = np.random.default_rng(1).uniform(-3, 3, n)
    val, gr = adjit.jit(adjit.value_and_grad(f))(x)
    assert sin_calls == [(n,)]  # the adjoint of sin is cos: sin runs once, in the forward
    want = _jax_grad(lambda a, m: (m.sin(a) * a + m.tanh(a) ** 2).sum(), x)
    np.testing.assert_allclose(gr, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(val, f(x), rtol=1e-12)
    val2, gr2 = adjit.jit(adjit.value_and_grad(f))(x)  # a second function: same bits
    np.testing.assert_array_equal(gr2, gr)


def test_first_call_peak_memory_near_numpy_by_hand():
    """Peak traced memory (tracemalloc sees NumPy's buffers) of jit(grad)'s first call at 1M
    elements against NumPy by hand: within 1.5x (the forward values the adjoint does not
    read are dropped before it runs, and the forward is not recomputed)."""
    import tracemalloc
    x = np.random.default_rng(2).uniform(-3, 3, 1 << 20)

    def by_hand(x):
        t = np.tanh(x)
        return np.cos(x) * x + np.sin(x) + 2 * t * (1 - t * t)

    def peak(fn):
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            r = fn(x)
            return tracemalloc.get_traced_memory()[1] - base, r
        finally:
            tracemalloc.stop()
    j = adjit.jit(adjit.grad(f))
    ours, gr = peak(j)
    numpy_peak, want = peak(by_hand)
    np.testing.assert_allclose(gr, want, rtol=1e-12, atol=1e-13)
    assert ours <= 1.5 * numpy_peak, (ours / 2**20, numpy_peak / 2**20)


def test_first_call_inside_jit_with_aux_and_second_order():
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    x = np.linspace(-1.0, 1.5, 9)

    def loss(a):
        h = np.tanh(a) * a
        return np.sum(h ** 2), h

    (val, aux), gr = adjit.jit(adjit.value_and_grad(loss, has_aux=True))(x)
    (jval, jaux), jgr = jax.value_and_grad(
        lambda a: (jax.numpy.sum((jax.numpy.tanh(a) * a) ** 2), jax.numpy.tanh(a) * a),
        has_aux=True)(x)
    np.testing.assert_allclose(gr, np.asarray(jgr), rtol=1e-12)
    np.testing.assert_allclose(aux, np.asarray(jaux), rtol=1e-13)
    np.testing.assert_allclose(val, float(jval), rtol=1e-13)
    h = adjit.jit(adjit.grad(lambda a: np.sum(adjit.grad(lambda b: np.sum(np.sin(b) * b))(a) ** 2)))
    jh = jax.grad(lambda a: jax.numpy.sum(jax.grad(lambda b: jax.numpy.sum(jax.numpy.sin(b) * b))(a) ** 2))
    for _ in range(3):  # the traced call, then the replays
        np.testing.assert_allclose(h(x), np.asarray(jh(x)), rtol=1e-12, atol=1e-14)
