"""jit's tracing call extracts no graph: it returns the values computed while recording, drops
the values recorded at its trace, and the variant's graph is extracted by its next call
(adjit/transforms/jit.py `_Branch.graph`). Results, aliasing and memory stay as before."""
from __future__ import annotations

import gc
import os
import threading
import tracemalloc
import warnings

import numpy as np
import pytest

import adjit
from adjit.ir.graph import Graph


def _branch(jf):
    (brs,) = jf.cache.values()
    return brs[0]


def test_first_call_leaves_the_graph_for_the_next_call():
    def f(x, y):
        return np.sin(x) * y + 1.0, np.sum(x * y)
    jf = adjit.jit(f)
    x, y = np.linspace(0, 1, 7), np.linspace(1, 2, 7)
    a = jf(x, y)
    br = _branch(jf)
    assert br._g is None and br.pend is not None
    b = jf(x, y)
    assert isinstance(br._g, Graph) and br.pend is None
    for u, v, w in zip(a, b, f(x, y)):
        np.testing.assert_array_equal(u, w)  # the first call: NumPy's own values
        np.testing.assert_allclose(v, w, rtol=1e-14)
    c = jf(x + 1, y)  # the graph serves new values
    for u, w in zip(c, f(x + 1, y)):
        np.testing.assert_allclose(u, w, rtol=1e-15)


def test_values_recorded_by_the_first_call_are_dropped():
    # the intermediates (8 MB each) do not outlive the first call, though the graph waits
    n = 1 << 20

    def f(x):
        t = np.tanh(x)
        return np.sum(t * np.sin(x))
    jf = adjit.jit(adjit.value_and_grad(f))
    x = np.linspace(-1, 1, n)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        v, g = jf(x)
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    nodes, trace, inputs, _ = _branch(jf).pend
    stack, seen, held_vals = list(nodes) + list(inputs), set(), []
    while stack:  # every Node the waiting graph reaches: values only on constants
        m = stack.pop()
        if id(m) in seen or not hasattr(m, "rec"):
            continue
        seen.add(id(m))
        if m.rec is not None and m.trace is trace or m in inputs:
            if m.val is not None:
                held_vals.append(m)
            stack.extend(m.rec.inputs if m.rec is not None else ())
    assert len(seen) > 5 and not held_vals, held_vals
    # the gradient (8 MB) is the only array left; without the drop every recorded value of
    # the forward and adjoint (several 8 MB arrays) would stay until the next call
    assert held < 1.5 * 8 * n, held
    v2, g2 = jf(x)  # (native code under ADJIT_TIER=native: within its ulp bounds)
    np.testing.assert_allclose(g2, g, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(float(v2), float(v), rtol=1e-13)


def test_outputs_of_the_first_call_alias_nothing():
    W = np.arange(6.0).reshape(2, 3)

    def f(x):
        return W, W + 0, x, x * 2.0
    jf = adjit.jit(f)
    x = np.ones(3)
    outs = jf(x)
    assert outs[0] is not W and not np.shares_memory(outs[0], W)
    assert not np.shares_memory(outs[2], x)
    for o in outs:
        o[...] = -7.0  # the caller owns every output
    again = jf(x)
    np.testing.assert_array_equal(again[0], W)
    np.testing.assert_array_equal(again[2], x)
    np.testing.assert_array_equal(again[3], 2 * x)


def test_an_identity_result_is_a_copy():
    # astype to the same dtype returns its operand: the output is copied, not the argument's
    # (or a constant's) array handed back
    C = np.linspace(0, 1, 4)

    def f(x):
        return x.astype(np.float64), C.astype(np.float64), (x + 1).astype(np.float64)
    jf = adjit.jit(f)
    x = np.zeros(4)
    a, c, d = jf(x)
    assert not np.shares_memory(a, x) and not np.shares_memory(c, C)
    a[...] = 5.0
    c[...] = 5.0
    a2, c2, d2 = jf(x)
    np.testing.assert_array_equal(a2, x)
    np.testing.assert_array_equal(c2, C)
    np.testing.assert_array_equal(d2, x + 1)


def test_eight_threads_get_one_graph():
    def f(x):
        return np.cos(x) * 3.0
    jf = adjit.jit(f)
    x = np.linspace(0, 2, 5)
    jf(x)
    br = _branch(jf)
    graphs, errors = [], []
    go = threading.Barrier(8)

    def run():
        try:
            go.wait()
            np.testing.assert_array_equal(jf(x), np.cos(x) * 3.0)
            graphs.append(br.graph)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    ts = [threading.Thread(target=run) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert len({id(g) for g in graphs}) == 1


def test_a_failing_trace_leaves_no_node_list():
    made = []

    def f(x):
        y = np.exp(x)
        made.append(y._n.trace)
        raise ValueError("boom")
    jf = adjit.jit(f)
    with pytest.raises(ValueError, match="boom"):
        jf(np.ones(3))
    assert made[0].nodes is None  # (the list would make a cycle: trace, Nodes, trace)


def test_retrace_warning_names_the_callers_line():
    def f(x, n):
        return x * n
    jf = adjit.jit(f)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        for k in range(40):
            jf(np.ones(k + 1), 2)  # a new shape every call
    msgs = [w for w in got if "has been traced" in str(w.message)]
    assert msgs, [str(w.message) for w in got]
    assert os.path.basename(msgs[0].filename) == os.path.basename(__file__)


def test_a_constant_output_is_a_copy():
    # an array f makes from no input is a constant of the graph: the first call hands out a
    # copy of it (later calls return the graph's constant, so the caller must not own it)
    def f(x):
        c = np.arange(3.0)
        return x * 2.0, c
    jf = adjit.jit(f)
    x = np.ones(3)
    y, c = jf(x)
    c[...] = -1.0
    y2, c2 = jf(x)
    np.testing.assert_array_equal(c2, np.arange(3.0))
    c2[...] = -2.0
    np.testing.assert_array_equal(jf(x)[1], np.arange(3.0))


def test_stats_extract_no_waiting_graph():
    jf = adjit.jit(lambda x: x * 3.0)
    jf(np.ones(2))
    s = jf.stats()
    assert s["misses"] == 1 and s["compile_seconds"] == 0.0
    assert _branch(jf)._g is None  # asking for the figures traced or extracted nothing
