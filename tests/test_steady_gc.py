"""Steady calls feed no generation of the cyclic GC: a jitted training step called in a loop
(W2's step written the JAX way: value_and_grad of a loss over a dict of parameters) leaves no
object tracked by the collector and makes no cyclic garbage, whichever tier serves it, so a
long loop never pays a full collection that its own calls caused. Values are checked against
NumPy's gradient by hand (the workload's reference).

The one collection a long W2 loop showed came at the switch to native code (loading the
compiled structure made ctypes classes and CDLLs, class cycles) and after each new trace
(recursive closures); those are checked here too."""
from __future__ import annotations

import contextlib
import gc

import numpy as np
import pytest

import adjit
from adjit.bench.workloads import _mlp, w2_mlp_small


@contextlib.contextmanager
def _saved_garbage():
    """The objects the collector finds inside the block (gc.DEBUG_SAVEALL keeps them), in the
    list it yields, filled when the block ends; no automatic collection meanwhile."""
    found = []
    was = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was:
            gc.enable()


@pytest.mark.parametrize("tier", ["auto", "interp"])
def test_steady_jitted_step_leaves_no_tracked_object_and_no_cyclic_garbage(monkeypatch, tier):
    monkeypatch.setenv("ADJIT_TIER", tier)
    w = w2_mlp_small.workload()
    inp = w.inputs(0)
    run = _mlp.adjit_pytree_setup(inp)
    want = w.impls["numpy"](inp)()
    for _ in range(200):  # hot, compiled (auto) or generated (interp)
        run()
    adjit.runtime.wait_for_compiles()
    for _ in range(200):
        got = run()
    for g, r in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=2e-4, atol=1e-5)
    gc.collect()
    was = gc.isenabled()
    gc.disable()  # (this test only: so that no collection hides what the calls leave)
    try:
        before = len(gc.get_objects())
        for _ in range(2000):
            run()
        after = len(gc.get_objects())
        garbage = gc.collect()
    finally:
        if was:
            gc.enable()
    assert after <= before + 2, after - before  # (a frame's locals, at most)
    assert garbage == 0


def test_switching_to_native_code_makes_no_cyclic_garbage(monkeypatch, tmp_path):
    # The switch to native code (loading the compiled structure, on the caller's thread) left
    # cyclic garbage per load: a ctypes array class per code size and a CDLL per symbol
    # lookup, each a class cycle that only a collection frees (one feeding a full collection
    # in a long loop, around the switch).
    monkeypatch.setenv("ADJIT_TIER", "auto")
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))  # (compiled now, not found on disk)
    x = np.linspace(0.1, 1.0, 12).reshape(3, 4)
    y = np.linspace(-1.0, 1.0, 16).reshape(4, 4)
    jf = adjit.jit(lambda a, b: np.sin(a) @ np.exp(b) + np.log1p(a * a).sum())
    want = np.sin(x) @ np.exp(y) + np.log1p(x * x).sum()
    for _ in range(30):  # traced, interpreted, hot: a compile is under way
        jf(x, y)
    gc.collect()
    with _saved_garbage() as found:
        adjit.runtime.wait_for_compiles()  # (the code is loaded once the worker answers)
        for _ in range(40):
            got = jf(x, y)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    natives = [br.graph.native for brs in jf.cache.values() for br in brs]
    assert natives and not any(isinstance(n, adjit.runtime.Interpreted) for n in natives)
    # the loader's own garbage: ctypes classes (an array type per code size) and CDLLs with
    # their function-pointer classes. (Other threads of the process, the compile worker's
    # reader among them, may leave an unrelated cycle now and then: not counted here.)
    import ctypes
    mine = [o for o in found if isinstance(o, (ctypes.CDLL, type(ctypes.c_int * 2))) or
            (isinstance(o, type) and issubclass(o, (ctypes.Array, ctypes._CFuncPtr)))]
    assert not mine, [type(o) for o in found]


def test_tracing_a_new_function_makes_no_cyclic_garbage():
    # A new jit function's first calls (trace, pytree flattener and assembler, the value
    # model's random-state snapshots) made cyclic garbage through recursive closures (a
    # closure calling itself is a function-cell cycle), each trace feeding the collector.
    x = np.linspace(0.1, 1.0, 12).reshape(3, 4)
    y = np.linspace(-1.0, 1.0, 16).reshape(4, 4)
    adjit.jit(lambda a: {"u": a + 1, "v": (a * 2, None)})(x)  # (one-time module set-up)
    adjit.runtime.wait_for_compiles()  # (earlier tests' compiles land before, not during)
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        jf = adjit.jit(lambda a, b: {"u": np.sin(a) @ np.exp(b),
                                     "v": (np.log1p(a * a).sum(), None)})
        for _ in range(3):
            out = jf(x, y)
        vg = adjit.jit(adjit.value_and_grad(lambda p, b: (np.tanh(p["w"]) @ b).sum()))
        for _ in range(3):
            val, g = vg({"w": x}, y)
        garbage = gc.collect()
    finally:
        if was:
            gc.enable()
    np.testing.assert_allclose(out["u"], np.sin(x) @ np.exp(y), rtol=1e-12)
    np.testing.assert_allclose(out["v"][0], np.log1p(x * x).sum(), rtol=1e-12)
    assert out["v"][1] is None
    np.testing.assert_allclose(val, (np.tanh(x) @ y).sum(), rtol=1e-12)
    # d/dw sum(tanh(w) @ y) = (1 - tanh(w)^2) * (ones @ y^T): NumPy by hand
    np.testing.assert_allclose(g["w"], (1 - np.tanh(x) ** 2) * y.sum(axis=1), rtol=1e-12)
    assert garbage == 0


@pytest.mark.parametrize("entry", ["run_pointers", "no_py_abi"])
def test_void_pointer_entries_make_no_cyclic_garbage(monkeypatch, entry):
    # The `void **args` entries (run_pointers; the call path where the compiled `_py` wrapper
    # cannot read Python objects) built `ctypes.c_void_p * n` per call: an array class, a class
    # cycle, that ctypes' cache holds only weakly, so each call after a collection made a new
    # one (cyclic garbage)
    import ctypes

    from adjit.ir import parse_graph
    from adjit.runtime import call, compile_graph
    if entry == "no_py_abi":
        monkeypatch.setattr(call, "_PY_ABI_OK", False)
    g = parse_graph("def f(a: f64[7], b: f64[7]) -> (f64[7], f64[]):\n"
                    "  c: f64[7] = mul a b\n  d: f64[7] = sin c\n"
                    "  e: f64[] = reduce_sum[axes=(0,)] d\n  return d, e\n")
    cg = compile_graph(g)
    if entry == "no_py_abi":
        assert cg._fc is None and isinstance(cg._fn, call._FN_PTRS)  # (compiled anew)
    run = cg.run_pointers if entry == "run_pointers" else cg
    x, y = np.linspace(-1.0, 2.0, 7), np.linspace(0.5, 3.0, 7)
    run([x, y])
    gc.collect()
    with _saved_garbage() as found:
        for _ in range(5):
            got = run([x, y])
            gc.collect()
    np.testing.assert_allclose(got[0], np.sin(x * y), rtol=1e-15)
    np.testing.assert_allclose(got[1], np.sin(x * y).sum(), rtol=1e-13)
    # (other threads of the process may leave an unrelated cycle now and then: the call's
    # own garbage is the ctypes array classes)
    arrays = [o for o in found if isinstance(o, type) and issubclass(o, ctypes.Array)]
    assert not arrays, [type(o) for o in found]
