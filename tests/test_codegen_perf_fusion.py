"""Sibling (multi-output) fusion and loop nests split across two threads: compiled ==
interpreter, and the plans fuse what they should. Correctness only (no timings)."""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import adjit
from adjit.runtime import compile_graph
from adjit.codegen import parallel
from adjit.codegen.builder import FnBuilder
from adjit.codegen.lower import LOWERINGS
from adjit.ir import AType, eval_graph, extract, new_trace, ops, parse_graph
from adjit.ir.core import Node
from adjit.runtime import native

UNARY = ("tanh", "sin", "exp", "neg", "abs", "logistic", "cos")
BINARY = ("add", "sub", "mul", "maximum")


def _builder(g):
    fb = FnBuilder(g, LOWERINGS, "t")
    fb.build()
    return fb


def _multi_root_loops(fb):
    return [roots for roots in fb.plan.loops.values() if len(roots) > 1]


@pytest.fixture
def split_everything(monkeypatch):
    """Split every eligible loop nest, however small (exercises the chunk functions)."""
    monkeypatch.setattr(parallel, "MIN_WORK", 0)


@pytest.fixture
def threads():
    old = native.get_num_threads()
    yield native.set_num_threads
    native.set_num_threads(old)


W4 = ("def f(a: f64[{n}], b: f64[]) -> (f64[], f64[{n}]):\n"
      "  c: f64[{n}] = sin a\n  d: f64[{n}] = mul c a\n  e: f64[{n}] = tanh a\n"
      "  f: f64[{n}] = mul e e\n  g: f64[{n}] = add d f\n  h: f64[] = reduce_sum[axes=(0,)] g\n"
      "  i: f64[{n}] = broadcast_in_dim[shape=({n},), dims=()] b\n"
      "  j: f64[{n}] = mul 2.0 e\n  k: f64[{n}] = mul i j\n  l: f64[{n}] = sub 1.0 f\n"
      "  m: f64[{n}] = mul k l\n  n: f64[{n}] = mul i a\n  o: f64[{n}] = mul i c\n"
      "  p: f64[{n}] = add m o\n  q: f64[{n}] = cos a\n  r: f64[{n}] = mul n q\n"
      "  s: f64[{n}] = add p r\n  return h, s\n")


def _w4_reference(a):
    t = np.tanh(a)
    return (np.sin(a) * a + t * t).sum(), np.cos(a) * a + np.sin(a) + 2 * t * (1 - t * t)


def test_value_and_gradient_share_one_loop_without_temporaries():
    g = parse_graph(W4.format(n=1000))
    fb = _builder(g)
    (roots,) = _multi_root_loops(fb)
    assert [e.outvars[0] for e in roots] == list(g.outvars)
    assert fb.ws_bytes == 0  # sin, tanh, tanh**2 are computed in the loop, not stored
    a = np.linspace(-3, 3, 1000)
    val, grad = compile_graph(g)([a, np.array(1.0)])
    want_val, want_grad = _w4_reference(a)
    np.testing.assert_allclose(val, want_val, rtol=1e-12)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n", [1, 3, 255, 256, 1000, 4099])
def test_split_loop_matches_and_is_deterministic(split_everything, threads, n):
    g = parse_graph(W4.format(n=n))
    fb = _builder(g)
    assert fb.n_chunks == (1 if n >= 2 else 0)  # one chunk function, run block by block
    a = np.random.default_rng(n).uniform(-3, 3, n)
    cg = compile_graph(g)
    got = {}
    for t in (1, 2):
        threads(t)
        got[t] = cg([a, np.array(1.0)])
    np.testing.assert_array_equal(got[1][0], got[2][0])  # bit for bit, whatever the threads
    np.testing.assert_array_equal(got[1][1], got[2][1])
    want = eval_graph(g, [a, np.array(1.0)])
    np.testing.assert_allclose(got[2][0], want[0], rtol=1e-12)
    np.testing.assert_allclose(got[2][1], want[1], rtol=1e-12, atol=1e-15)


def test_large_value_and_grad_is_split_and_correct():
    def f(x):
        return (np.sin(x) * x + np.tanh(x) ** 2).sum()
    x = np.random.default_rng(0).uniform(-3, 3, 300_000)
    step = adjit.jit(adjit.value_and_grad(f))
    for _ in range(3):  # trace, then compiled calls
        val, grad = step(x)
    want_val, want_grad = _w4_reference(x)
    np.testing.assert_allclose(val, want_val, rtol=1e-11)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-12, atol=1e-15)


def test_reduction_read_by_a_sibling_is_not_fused_with_it():
    # softmax: the row max and the row sum are needed whole before the next step
    src = ("def f(a: f64[4,5]) -> f64[4,5]:\n"
           "  b: f64[4] = reduce_max[axes=(1,)] a\n"
           "  c: f64[4,5] = broadcast_in_dim[shape=(4, 5), dims=(0,)] b\n"
           "  d: f64[4,5] = sub a c\n  e: f64[4,5] = exp d\n"
           "  f: f64[4] = reduce_sum[axes=(1,)] e\n"
           "  g: f64[4,5] = broadcast_in_dim[shape=(4, 5), dims=(0,)] f\n"
           "  h: f64[4,5] = div e g\n  return h\n")
    g = parse_graph(src)
    a = np.random.default_rng(1).standard_normal((4, 5))
    got = compile_graph(g)([a])[0]
    want = np.exp(a - a.max(1, keepdims=True))
    np.testing.assert_allclose(got, want / want.sum(1, keepdims=True), rtol=1e-13)


@pytest.mark.parametrize("rows,cols", [(6, 7), (200, 128)])
def test_column_and_row_sums_with_the_elementwise_value(rows, cols):
    # large enough, a reduction shares the loop nest of the value it reduces (column sums
    # accumulate in memory, row maxima in a register); small, each keeps its own nest
    src = (f"def f(a: f64[{rows},{cols}], b: f64[{cols}]) -> "
           f"(f64[{rows},{cols}], f64[{cols}], f64[{rows}]):\n"
           f"  c: f64[{rows},{cols}] = broadcast_in_dim[shape=({rows}, {cols}), dims=(1,)] b\n"
           f"  d: f64[{rows},{cols}] = mul a c\n  e: f64[{rows},{cols}] = tanh d\n"
           f"  f: f64[{cols}] = reduce_sum[axes=(0,)] e\n  g: f64[{rows},{cols}] = mul e e\n"
           f"  h: f64[{rows}] = reduce_max[axes=(1,)] g\n  return e, f, h\n")
    g = parse_graph(src)
    fb = _builder(g)
    assert bool(_multi_root_loops(fb)) == (rows * cols >= 2 ** 14)
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((rows, cols)), rng.standard_normal(cols)
    e, f, h = compile_graph(g)([a, b])
    want = np.tanh(a * b)
    np.testing.assert_allclose(e, want, rtol=1e-13)
    np.testing.assert_allclose(f, want.sum(0), rtol=1e-12)
    np.testing.assert_allclose(h, (want * want).max(1), rtol=1e-13)


@st.composite
def programs(draw):
    rank = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 5)) for _ in range(rank))
    steps = [draw(st.tuples(st.sampled_from(("unary", "binary", "literal")),
                            st.integers(0, 10 ** 6), st.integers(0, 10 ** 6)))
             for _ in range(draw(st.integers(1, 6)))]
    outs = [draw(st.tuples(st.sampled_from(("value", "sum", "max", "min")),
                           st.integers(0, 10 ** 6), st.integers(1, 2 ** rank - 1)))
            for _ in range(draw(st.integers(1, 4)))]
    dt = draw(st.sampled_from(("f64", "f32")))
    return shape, steps, outs, dt


def _build(shape, steps, outs, dt):
    with new_trace("siblings") as tr:
        ins = [Node(None, AType(shape, dt), None, tr) for _ in range(2)]
        pool = list(ins)
        for kind, a, b in steps:
            x, y = pool[a % len(pool)], pool[b % len(pool)]
            if kind == "unary":
                pool.append(getattr(ops, UNARY[b % len(UNARY)])(x))
            elif kind == "binary":
                pool.append(getattr(ops, BINARY[a % len(BINARY)])(x, y))
            else:
                pool.append(ops.mul(x, (0.5, -2.0, 3.0)[b % 3]))
        res = []
        for kind, a, mask in outs:
            x = pool[a % len(pool)]
            axes = tuple(i for i in range(len(shape)) if (mask >> i) & 1)
            if kind == "value":
                res.append(ops.add(x, 1.0))
            elif kind == "sum":
                res.append(ops.reduce_sum(x, axes))
            else:
                res.append(getattr(ops, f"reduce_{kind}")(x, axes=axes))
        return extract(res, tr, inputs=ins)


@settings(max_examples=int(os.environ.get("ADJIT_FUSION_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(programs(), st.booleans())
def test_random_multi_output_programs(prog, split):
    shape, steps, outs, dt = prog
    g = _build(shape, steps, outs, dt)
    old = parallel.MIN_WORK
    parallel.MIN_WORK = 0 if split else old
    try:
        cg = compile_graph(g)
    finally:
        parallel.MIN_WORK = old
    rng = np.random.default_rng(len(steps))
    npdt = np.float64 if dt == "f64" else np.float32
    args = [np.asarray(rng.uniform(-2, 2, shape), npdt) for _ in range(2)]
    want = eval_graph(g, [np.array(a) for a in args])
    prev = native.get_num_threads()
    try:
        results = []
        for t in (1, 2):
            native.set_num_threads(t)
            results.append(cg(args))
    finally:
        native.set_num_threads(prev)
    tol = dict(rtol=1e-12, atol=1e-12) if dt == "f64" else dict(rtol=3e-5, atol=3e-5)
    for one, two, w in zip(*results, want):
        np.testing.assert_array_equal(one, two)
        assert one.shape == np.shape(w) and one.dtype == np.asarray(w).dtype
        np.testing.assert_allclose(one, w, **tol)


def test_empty_sum_is_positive_zero_and_a_sum_of_negative_zeros_negative():
    # NumPy: np.sum([]) == +0.0, np.sum([-0.0]) == -0.0 (the sign shows through a division)
    for n, want in ((0, -np.inf), (1, np.inf)):
        g = parse_graph(f"def f(a: f64[{n}]) -> f64[]:\n  c: f64[] = reduce_sum[axes=(0,)] a\n"
                        "  d: f64[] = div -2.0 c\n  return d\n")
        with np.errstate(divide="ignore"):
            assert compile_graph(g)([np.full(n, -0.0)])[0] == want
