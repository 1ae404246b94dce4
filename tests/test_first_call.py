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
