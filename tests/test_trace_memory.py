"""What a trace leaves resident after the call (issue 18 item 7, docs/speed.md F9 "Memory").
Expected values come from NumPy; memory is measured with tracemalloc (NumPy's buffers are
traced), so the figures do not depend on the allocator or the other tests."""
from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np

import adjit

N = 1 << 16  # above autodiff.INTERPRET_MIN_SIZE: grad's adjoint inside jit is interpreted


def _relu_loss(x, w):
    return np.sum(np.maximum(x * w, 0.0) ** 2)


def _retained(f, *args, calls=2):
    """Bytes still traced after `calls` calls of f, their results dropped."""
    gc.collect()
    tracemalloc.start()
    try:
        t0 = tracemalloc.get_traced_memory()[0]
        for _ in range(calls):
            f(*args)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - t0
    finally:
        tracemalloc.stop()


def test_constants_made_by_the_adjoint_are_not_kept_by_jit():
    # jit(value_and_grad) records grad's adjoint into jit's trace; on big arrays its values come
    # from the interpreter (autodiff._record_interpreted), which re-records the adjoint graph
    # through eval_graph. That used to run an equation without inputs (`full`: the zeros of
    # maximum's derivative, the cotangent seed) on NumPy instead of recording it, so its array
    # became a constant of the jit graph, kept (and passed to native code) for the function's
    # lifetime: 532 KB in W3, 8 MB per constant at W4's size.
    x = np.linspace(-1.0, 1.0, N)
    w = np.linspace(0.5, 2.0, N)
    step = adjit.jit(adjit.value_and_grad(_relu_loss, argnums=(0, 1)))
    val, (gx, gw) = step(x, w)
    r = np.maximum(x * w, 0.0)
    np.testing.assert_allclose(val, np.sum(r ** 2), rtol=1e-12)
    np.testing.assert_allclose(gx, 2 * r * w, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(gw, 2 * r * x, rtol=1e-12, atol=1e-300)
    step2 = adjit.jit(adjit.value_and_grad(_relu_loss, argnums=(0, 1)))
    grew = _retained(step2, x, w)
    # one f64[N] array is 512 KB; the graph, its plan and the literal tables are well under it
    assert grew < 0.5 * x.nbytes, f"the first two calls left {grew / 2**10:.0f} KB resident"


def _peak(f, *args):
    """Peak traced bytes of one call of f above what was traced before it (results dropped)."""
    gc.collect()
    tracemalloc.start()
    try:
        t0 = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        f(*args)
        return tracemalloc.get_traced_memory()[1] - t0
    finally:
        tracemalloc.stop()


def _sq_loss(X, W):
    return np.sum((X @ W) ** 2)


def _sq_loss_by_hand(X, W):
    Z = X @ W
    return np.sum(Z ** 2), X.T @ (2.0 * Z)


def test_interpreted_weight_gradient_peak_is_numpys_by_hand(monkeypatch):
    # The weight's gradient of X @ W is X.T @ dZ. dot_general's rule computed it as
    # (dZ.T @ X) and transposed that, and the interpreter copies a transposed result (its
    # results are fresh C arrays): two W-sized buffers at once where NumPy by hand has one
    # (W3's step: a second 1.6 MB buffer per call)
    monkeypatch.setenv("ADJIT_TIER", "interp")
    rng = np.random.default_rng(0)
    X, W = rng.standard_normal((16, 1000)), rng.standard_normal((1000, 400))
    step = adjit.jit(adjit.value_and_grad(_sq_loss, argnums=1))
    for _ in range(3):  # the trace, then the interpreter's plan
        val, gw = step(X, W)
    want_val, want_gw = _sq_loss_by_hand(X, W)
    np.testing.assert_allclose(val, want_val, rtol=1e-12)
    np.testing.assert_allclose(gw, want_gw, rtol=1e-12)
    mine, by_hand = _peak(step, X, W), _peak(_sq_loss_by_hand, X, W)
    assert mine <= 1.25 * by_hand, (mine / 2**20, by_hand / 2**20)


def _user_function(i, body):
    # a distinct code object per call, as a notebook cell or a test defines its functions
    ns = {"np": np}
    exec(compile(f"def f(x):\n    return {body}\n", f"<user cell {i}>", "exec"), ns)
    return ns["f"]


def test_a_traced_function_that_is_dropped_is_collected():
    # core._INTERNAL (user_location's per-code cache, on every equation), its line table and grad's
    # cold-function counters (autodiff._COLD) held every user code object they saw, so a
    # long-running process that defines many functions kept all of them: now they hold weak
    # references whose callbacks drop the entries. Expected values: the derivative by hand.
    from adjit.ir import core
    from adjit.transforms import autodiff
    x = np.linspace(0.1, 1.0, 5)
    dfdx = np.cos(x) * x + np.sin(x)
    refs = []
    for i in range(3):
        f = _user_function(i, "np.sum(np.sin(x) * x)")
        np.testing.assert_allclose(adjit.grad(f)(x), dfdx, rtol=1e-13)
        v, d = adjit.value_and_grad(f)(x)
        np.testing.assert_allclose(v, np.sum(np.sin(x) * x), rtol=1e-13)
        jf = adjit.jit(f)
        for _ in range(3):
            np.testing.assert_allclose(jf(x), np.sum(np.sin(x) * x), rtol=1e-13)
        np.testing.assert_allclose(adjit.vmap(adjit.grad(f))(np.stack([x, x])),
                                   np.stack([dfdx, dfdx]), rtol=1e-13)
        g = _user_function(100 + i, "(x.sin() * x).sum()")  # the Tensor front's eager backward
        t = adjit.tensor(x, requires_grad=True)
        g(t).backward()
        np.testing.assert_allclose(np.asarray(t.grad), dfdx, rtol=1e-13)
        refs += [(weakref.ref(f), weakref.ref(f.__code__)), (weakref.ref(g), weakref.ref(g.__code__))]
        codes = {id(f.__code__), id(g.__code__)}
        assert codes <= set(core._INTERNAL)  # the cache saw them
        del f, g, jf, t, v, d
    gc.collect()
    alive = [(fn() is not None, code() is not None) for fn, code in refs]
    assert alive == [(False, False)] * len(refs), alive
    # grad's counters of dropped functions are gone with them
    assert all(r() is not None for e in autodiff._COLD.values() for r in e[2])
