"""jit's first calls (issue 18: the slowest of the first 20 calls of a new jitted step): the
tracing call prepares nothing for the next ones; a small graph's interpreter tier runs the graph
as traced while the worker optimises and compiles it; ADJIT_TIER=interp, large graphs and
graphs that cannot compile interpret the optimised graph (runtime/__init__.py, Interpreted)."""
from __future__ import annotations

import time

import numpy as np
import pytest

import adjit
import adjit.runtime as runtime
from adjit.ir import passes
from adjit.runtime import cache, interpreter
from adjit.runtime.call import CompiledGraph

_SIZES = iter(range(11, 1000))


def _step(w, x):
    # `** 1.0`, `* 1.0` and the seed's broadcast: equations the passes remove
    return np.sum(np.tanh(x @ w) ** 1.0 * 1.0)


def _inputs(n):
    return np.linspace(-1, 1, 12).reshape(4, 3), np.linspace(0, 2, 4 * n).reshape(n, 4)


def _by_hand(w, x):  # NumPy: value and d/dw of sum(tanh(x w))
    t = np.tanh(x @ w)
    return t.sum(), x.T @ (1.0 - t * t)


def _check(got, w, x, rtol=1e-12):
    want = _by_hand(w, x)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-13)


class _Spy:
    """Counts the passes, the plans and the structure keys this process makes."""

    def __init__(self, monkeypatch):
        from adjit.ir.graph import Graph
        self.optimize = self.plans = self.keys = 0
        opt, plan, key = passes.optimize, interpreter.Plan.__init__, Graph.structure_key

        def optimize(*a, **k):
            self.optimize += 1
            return opt(*a, **k)

        def plan_(p, *a, **k):
            self.plans += 1
            return plan(p, *a, **k)

        def key_(g, *a, **k):
            self.keys += 1
            return key(g, *a, **k)
        monkeypatch.setattr(passes, "optimize", optimize)
        monkeypatch.setattr(interpreter.Plan, "__init__", plan_)
        monkeypatch.setattr(Graph, "structure_key", key_)


@pytest.mark.parametrize("mode", ["auto", "deterministic"])
def test_the_tracing_call_prepares_nothing(monkeypatch, tmp_path, mode):
    monkeypatch.setenv("ADJIT_TIER", mode)
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))
    w, x = _inputs(next(_SIZES))
    jf = adjit.jit(adjit.value_and_grad(_step))
    spy = _Spy(monkeypatch)
    _check(jf(w, x), w, x)  # the trace's own values
    assert (spy.optimize, spy.plans, spy.keys) == (0, 0, 0)
    (br,) = next(iter(jf.cache.values()))
    it = br.graph.native
    assert isinstance(it, runtime.Interpreted) and it.calls == 1  # counted, nothing built
    _check(jf(w, x), w, x)  # the second call: the plan (of the graph as traced)
    assert spy.optimize == 0 and spy.plans == 1


def test_a_small_graph_is_optimised_by_the_worker_not_the_caller(monkeypatch, tmp_path):
    monkeypatch.setenv("ADJIT_TIER", "auto")
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))  # no entry: a real compile
    w, x = _inputs(next(_SIZES))
    jf = adjit.jit(adjit.value_and_grad(_step))
    spy = _Spy(monkeypatch)
    first = jf(w, x)
    (br,) = next(iter(jf.cache.values()))
    g = br.graph
    interp = [jf(w, x) for _ in range(runtime.HOT_CALLS)]  # the last one asks for code
    assert any(e.prim.name == "pow" for e in g.native.plan.graph.eqns)  # as traced
    t0 = time.time()
    while not isinstance(g.native, CompiledGraph):
        assert time.time() - t0 < 120, "never native"
        runtime.wait_for_compiles(60)
        _check(jf(w, x), w, x)
    native = jf(w, x)
    assert spy.optimize == 0  # the worker ran the passes
    # the traced graph's interpretation is the trace's evaluation: the same bits
    for outs in interp:
        for a, b in zip(outs, first):
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    _check(native, w, x)
    for a, b in zip(native, first):  # tiers agree (tanh: a few ulp; sums reassociate)
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    monkeypatch.undo()
    # the code is in the memory cache under the traced and the optimised structure
    assert cache._MEM.get(g.structure_key()) is not None
    assert cache._MEM.get(passes.optimize(g).structure_key()) is not None


def test_a_structure_is_compiled_once_for_two_traced_forms(monkeypatch, tmp_path):
    # two traced graphs the passes make one structure: one compile (the second is the
    # worker's disk-cache hit: its entry is keyed by the optimised structure)
    monkeypatch.setenv("ADJIT_TIER", "auto")
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))
    w, x = _inputs(next(_SIZES))
    before = dict(cache.STATS)
    for f in (lambda w, x: np.sum(np.tanh(x @ w)),  # (one name: it is part of the key)
              lambda w, x: np.sum(np.tanh(x @ w) ** 1.0 * 1.0)):
        jf = adjit.jit(adjit.value_and_grad(f))
        for _ in range(runtime.HOT_CALLS):
            jf(w, x)
        (br,) = next(iter(jf.cache.values()))
        t0 = time.time()
        while not isinstance(br.graph.native, CompiledGraph):
            assert time.time() - t0 < 120, "never native"
            runtime.wait_for_compiles(60)
            _check(jf(w, x), w, x)
        _check(jf(w, x), w, x)
    assert cache.STATS["background_compiles"] - before["background_compiles"] == 1


def test_interp_mode_runs_the_optimised_graph(monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", "interp")
    w, x = _inputs(next(_SIZES))
    jf = adjit.jit(adjit.value_and_grad(_step))
    for _ in range(3):
        _check(jf(w, x), w, x)
    (br,) = next(iter(jf.cache.values()))
    names = {e.prim.name for e in br.graph.native.plan.graph.eqns}
    assert "pow" not in names and "broadcast_in_dim" not in names


def test_a_large_graph_is_optimised_before_its_first_interpreted_run(monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", "auto")
    w, x = _inputs(runtime.OPTIMIZE_MIN_WORK // 3 + next(_SIZES))  # x @ w: >= the threshold
    jf = adjit.jit(adjit.value_and_grad(_step))
    for _ in range(3):
        _check(jf(w, x), w, x)
    (br,) = next(iter(jf.cache.values()))
    assert isinstance(br.graph.native, runtime.Interpreted)
    assert "pow" not in {e.prim.name for e in br.graph.native.plan.graph.eqns}


def test_a_graph_that_cannot_compile_interprets_the_optimised_graph(monkeypatch, tmp_path):
    import warnings
    from conftest import broken_worker
    monkeypatch.setenv("ADJIT_TIER", "auto")
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))
    gen = broken_worker(monkeypatch, tmp_path / "log")
    next(gen)
    try:
        w, x = _inputs(next(_SIZES))
        jf = adjit.jit(adjit.value_and_grad(_step))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(runtime.HOT_CALLS):
                _check(jf(w, x), w, x)
            (br,) = next(iter(jf.cache.values()))
            t0 = time.time()
            while not br.graph.native.final:
                assert time.time() - t0 < 60
                runtime.wait_for_compiles(30)
                _check(jf(w, x), w, x)
            _check(jf(w, x), w, x)
        assert [str(m.message) for m in caught if "test failure" in str(m.message)]
        assert "pow" not in {e.prim.name for e in br.graph.native.plan.graph.eqns}
    finally:
        next(gen, None)


def test_a_new_step_reuses_the_generated_flattener_and_assembler_code():
    # a second jitted function with the arguments and results of a first one compiles no
    # new flattener or assembler source; each keeps its own key tag and results
    from adjit import _gencode  # (the generated sources' code objects, jitargs' included)
    w, x = _inputs(next(_SIZES))
    f1 = adjit.jit(adjit.value_and_grad(lambda w, x: np.sum(np.tanh(x @ w))))
    f2 = adjit.jit(adjit.value_and_grad(lambda w, x: np.sum(np.tanh(x @ w) * 2.0)))
    _check(f1(w, x), w, x)
    codes = dict(_gencode._CODE)
    v2, g2 = f2(w, x)
    assert _gencode._CODE == codes  # the same sources: compiled once
    for _ in range(3):  # interleaved: no key of one serves the other
        _check(f1(w, x), w, x)
        v, g = f2(w, x)
        np.testing.assert_allclose(v, 2.0 * _by_hand(w, x)[0], rtol=1e-12)
        np.testing.assert_allclose(g, 2.0 * _by_hand(w, x)[1], rtol=1e-12, atol=1e-13)
    assert f1._flats[0] is not f2._flats[0] and f1.hits == f2.hits == 3


def test_code_linked_for_a_structure_serves_a_new_function_from_its_first_run(monkeypatch,
                                                                            tmp_path):
    # a second jitted function of the same traced structure: its first run (the call after
    # the trace) finds the code the first one linked (memory cache, by the traced key)
    monkeypatch.setenv("ADJIT_TIER", "auto")
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))
    w, x = _inputs(next(_SIZES))
    jfs = [adjit.jit(adjit.value_and_grad(_step)) for _ in range(2)]
    for _ in range(runtime.HOT_CALLS):
        jfs[0](w, x)
    (br,) = next(iter(jfs[0].cache.values()))
    t0 = time.time()
    while not isinstance(br.graph.native, CompiledGraph):
        assert time.time() - t0 < 120, "never native"
        runtime.wait_for_compiles(60)
        jfs[0](w, x)
    before = dict(cache.STATS)
    _check(jfs[1](w, x), w, x)  # the trace
    (br1,) = next(iter(jfs[1].cache.values()))
    assert isinstance(br1.graph.native, runtime.Interpreted)
    _check(jfs[1](w, x), w, x)
    assert isinstance(br1.graph.native, CompiledGraph)
    assert cache.STATS["hits"] == before["hits"] + 1
    assert cache.STATS["background_compiles"] == before["background_compiles"]


def test_interp_mode_calls_the_plan_directly_guards_and_constants_included(monkeypatch):
    # ADJIT_TIER=interp: a branch's hot path calls its plan (Interpreted.direct), not
    # run_graph with its counts and promotion test; a failing guard still finds the other
    # branch, a constant bound by reference is read on every call, results are fresh
    import sys
    from test_guards import collatz_like
    monkeypatch.setenv("ADJIT_TIER", "interp")

    class Held:  # an attribute of another object: a constant bound by reference
        scale = np.array([2.0, -1.0])
    held = Held()

    def f(x):
        return collatz_like(x) * held.scale

    def by_hand(x):
        return collatz_like(x) * held.scale
    jf = adjit.jit(f)
    jit_mod = sys.modules[type(jf).__module__]
    xs = [np.array([3.0, 1.0]), np.array([-3.0, -1.0]), np.array([0.5, 0.2])]
    for x in xs * 3:  # each path traced, then replayed
        np.testing.assert_array_equal(jf(x), by_hand(x))
    jf(xs[0])  # its branch first again (the others' guards fail on the way)
    general = []
    run = jit_mod._run_concrete
    monkeypatch.setattr(jit_mod, "_run_concrete", lambda *a: general.append(1) or run(*a))
    for _ in range(3):
        x = xs[0]
        a, b = jf(x), jf(x)
        np.testing.assert_array_equal(a, by_hand(x))
        assert a is not b and a.base is None and a.flags.writeable
    assert not general  # served by the plan directly
    (br,) = [b for brs in jf.fast.values() for b in brs][:1]
    assert br.direct is not None
    held.scale[...] = [5.0, 0.5]  # written in place: shows through
    for x in xs * 2:  # guards fail between the paths: another branch serves, none retraced
        np.testing.assert_array_equal(jf(x), by_hand(x))
    assert jf.traces == 3
