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


def _w4_loss(x):
    return (np.sin(x) * x + np.tanh(x) ** 2).sum()


def _w4_grad_by_hand(x):
    t = np.tanh(x)
    return np.cos(x) * x + np.sin(x) + 2 * t * (1 - t * t)


def test_a_first_call_holds_no_more_arrays_than_numpy_by_hand():
    # the first call of jit(grad) (W4's function): the trace computes the forward, the
    # interpreter the adjoint in the forward's dead buffers. Building the adjoint graph
    # evaluated its constant makers (reduce_sum's cotangent, a `full` of x's shape) instead of
    # recording them: one array more than NumPy by hand at the peak (6 against 5)
    x = np.random.default_rng(0).uniform(-3.0, 3.0, 1 << 20)
    want = _w4_grad_by_hand(x)
    f = adjit.jit(adjit.grad(_user_function(99, "(np.sin(x) * x + np.tanh(x) ** 2).sum()")))
    mine = _peak(f, x)  # the first call: a new function
    np.testing.assert_allclose(f(x), want, rtol=1e-12, atol=1e-12)
    by_hand = _peak(_w4_grad_by_hand, x)
    assert mine <= by_hand + x.nbytes // 4, (mine / x.nbytes, by_hand / x.nbytes)


def test_graph_builders_record_constant_makers_without_computing_them():
    # vjp_graph / adjoint_graph / jvp_graph / batch_graph trace abstract values: a `full` or
    # `zeros` their rules make (reduce_sum's cotangent, a seed, zero tangents) is recorded, not
    # computed (a 32 MB array here each time a graph is derived)
    from adjit.ir.autodiff import adjoint_graph, jvp_graph, vjp_graph
    from adjit.ir.batching import batch_graph
    from adjit.ir import parse_graph
    g = parse_graph("def f(a: f64[4000000]) -> f64[]:\n"
                    "  b: f64[4000000] = sin a\n"
                    "  c: f64[] = reduce_sum[axes=(0,)] b\n"
                    "  return c\n")
    for build in (lambda: vjp_graph(g), lambda: adjoint_graph(g, [0], seed=1.0),
                  lambda: jvp_graph(g), lambda: batch_graph(g, [0], 2)):
        tracemalloc.start()
        try:
            d = build()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 4 << 20, peak
        d = d[0] if isinstance(d, tuple) else d  # (batch_graph: and its out dims)
        x = np.linspace(-1.0, 1.0, 4000000)
        if d.name.endswith("_vjp"):  # the derived graph still computes: d/dx sum(sin x)
            from adjit.ir.graph import eval_graph
            np.testing.assert_allclose(eval_graph(d, [x, np.float64(1.0)])[1], np.cos(x))
