"""Deep graphs compile natively (issue 14.8): lowering, fusion and the passes are iterative, so
a 10,000-equation elementwise chain or jit(grad) of a long chain neither hits RecursionError nor
falls back to the interpreter; a fallback that remains warns once per graph. References:
NumPy for values, JAX (x64) for gradients."""
from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import pytest

import adjit
from adjit.runtime import CompileError

from peers import require


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch, tmp_path):
    # compile for real (no memory or disk cache hit from an earlier run)
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))
    adjit.cache_clear()


def _chain(x, n):
    for _ in range(n):
        x = x * 1.0001 + 0.1
    return x


@pytest.mark.usefixtures("native_tier")  # checks native code itself
def test_jit_10000_equation_chain_is_native():
    assert sys.getrecursionlimit() <= 10_000   # the default limit (1000) in a plain run
    x = np.linspace(0.0, 1.0, 37)
    jf = adjit.jit(lambda a: _chain(a, 5000))   # 10,000 equations (mul, add)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no "running it in the interpreter"
        jf(x)                                   # traced
        t = time.perf_counter()
        got = jf(x)                             # compiled
        secs = time.perf_counter() - t
    br = next(iter(jf.cache.values()))[0]
    assert len(br.graph.eqns) >= 10_000
    assert br.graph.native is not None and hasattr(br.graph.native, "compile_seconds")
    np.testing.assert_allclose(got, _chain(x, 5000), rtol=1e-13)
    assert secs < 60, f"compiling the 10,000-equation chain took {secs:.1f} s"


def test_jit_grad_of_long_chain_matches_jax():
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    def f(x, np=np):
        for _ in range(150):
            x = 0.5 * x * x + np.tanh(x) * 0.25
        return np.sum(x)
    x = np.linspace(-0.5, 0.5, 9)
    jg = adjit.jit(adjit.grad(f))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jg(x)
        got = jg(x)
    ref = jax.grad(lambda a: f(a, np=jnp))(jnp.asarray(x))
    np.testing.assert_allclose(got, np.asarray(ref), rtol=1e-12, atol=1e-300)


@pytest.mark.usefixtures("native_tier")  # checks native code itself
def test_fallback_warns_once_per_graph(monkeypatch):
    # every graph fails to compile: each of the two variants (two shapes) of one function
    # warns, each only once
    import adjit.runtime as runtime
    from adjit.runtime import cache

    def fail(g, skey):
        raise CompileError(f"graph {g.name}", "test failure")
    monkeypatch.setattr(cache, "_build", fail)
    monkeypatch.setattr(cache, "_MEM", type(cache._MEM)())
    monkeypatch.setattr(cache, "_FAILED", {})
    monkeypatch.setattr(runtime, "_CANNOT_COMPILE_WARNED", set())
    jf = adjit.jit(lambda a: np.sin(a) * 3.0 + 1.0)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for n in (3, 4, 3, 4):
            a = np.linspace(0, 1, n)
            np.testing.assert_allclose(jf(a), np.sin(a) * 3.0 + 1.0)
            np.testing.assert_allclose(jf(a), np.sin(a) * 3.0 + 1.0)
    msgs = [str(x.message) for x in w if "interpreter" in str(x.message)]
    assert len(msgs) == 2, msgs
