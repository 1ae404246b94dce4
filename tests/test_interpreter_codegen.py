"""The interpreter tier's generated function (adjit/runtime/interpreter.py, `generate`): from a
plan's second call on (here: see the fixture), its graph runs as straight-line Python made from the equations. It must
give the bits of the reference evaluation (`eval_graph`: each equation's NumPy implementation
through `bind`) on every registered primitive, never write into an argument, a constant or a
result, return fresh arrays, free dead values, and compile graphs of any length."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import sweep
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_passes import _program  # random programs (and their vjps)

import adjit
from adjit.ir import DTYPES, REGISTRY, AType, eval_graph
from adjit.ir.core import Lit
from adjit.ir.graph import Eqn, Graph, Var
from adjit.runtime import interpreter
from adjit.runtime.interpreter import Plan


@pytest.fixture(autouse=True)
def generate_at_once(monkeypatch):
    # a plan generates its function from its second call (by default only once its loop has run
    # about as long as generating takes)
    monkeypatch.setattr(interpreter, "GEN_SECONDS_PER_EQN", 0.0)


def _same_bits(got, want, what):
    assert len(got) == len(want), what
    for a, b in zip(got, want):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, (what, a.dtype, b.dtype, a.shape)
        assert a.tobytes() == b.tobytes(), (what, a, b)


def _copied_operands(g):
    """g with each array argument first copied into an intermediate (`select true a a`), so
    the primitive's operands are values the plan allocated: candidates for `out=` reuse."""
    invars = [Var(v.type, f"in{k}") for k, v in enumerate(g.invars)]
    eqns, sub = [], {}
    for v, w in zip(g.invars, invars):
        if v.type.dtype == "bool":
            sub[v] = w
            continue
        p = Var(AType(v.type.shape, "bool"))
        c = Var(v.type)
        eqns.append(Eqn(REGISTRY["full"], [], {"shape": tuple(v.type.shape), "value": True,
                                             "dtype": "bool"}, [p]))
        eqns.append(Eqn(REGISTRY["select"], [p, w, w], {}, [c]))
        sub[v] = c
    for e in g.eqns:
        eqns.append(Eqn(e.prim, [x if type(x) is Lit else sub.get(x, x) for x in e.inputs],
                        e.params, e.outvars, e.loc))
    return Graph(invars, g.constvars, eqns, [sub.get(v, v) if type(v) is not Lit else v
                                             for v in g.outvars], g.consts, g.name)


@pytest.mark.parametrize("name,dt,i", list(sweep.cases()))
def test_generated_code_matches_the_reference_on_every_primitive(name, dt, i):
    args, params = sweep.sample(name, dt, i, "the interpreter sweep")
    g = sweep.one_eqn(REGISTRY[name], args, params)
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    keep = [a.copy() for a in arrays]
    want = eval_graph(g, arrays)
    for graph in (g, _copied_operands(g)):
        plan = Plan(graph)
        first = plan(arrays, graph.consts)  # the loop
        second = plan(arrays, graph.consts)  # the generated function
        assert plan.fn is not None
        _same_bits(first, want, (name, "loop"))
        _same_bits(second, want, (name, "generated"))
        for a, b in zip(arrays, keep):  # arguments are never written
            assert a.tobytes() == b.tobytes()
        for r in second:
            assert all(r is not a for a in arrays)


def _interp_calls(f, *args, n=4):
    """f's results over n calls under ADJIT_TIER=interp (the first traces, the second runs the
    plan's loop, the later ones its generated function)."""
    return [f(*args) for _ in range(n)]


@pytest.fixture
def interp(monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", "interp")


def test_results_are_fresh_when_outputs_repeat_or_are_arguments(interp):
    x = np.linspace(-1.0, 2.0, 7)
    y = np.linspace(0.5, 1.5, 7)
    f = adjit.jit(lambda x, y: (np.exp(x) * y, np.exp(x) * y, x, y.reshape(7, 1), y.T))
    for r in _interp_calls(f, x, y):
        want = np.exp(x) * y
        np.testing.assert_array_equal(r[0], want)
        np.testing.assert_array_equal(r[1], want)
        np.testing.assert_array_equal(r[2], x)
        np.testing.assert_array_equal(r[3], y.reshape(7, 1))
        ids = {id(a) for a in r} | {id(x), id(y)}
        assert len(ids) == 7  # no result is another result or an argument
        for a in r:
            assert a.base is None and a.flags.writeable
        r[0][:] = 0.0  # writing a result changes nothing else
        np.testing.assert_array_equal(r[1], want)


@pytest.mark.parametrize("shape", [(1,), (1, 1), (), (3,)])
@pytest.mark.parametrize("op", ["add", "fmax", "fmin"])
def test_nan_signs_of_one_element_results_are_numpys(op, shape):
    # NumPy's `add` / `fmax` / `fmin` with out= their first operand run a reduction loop on
    # one element, which takes a NaN's sign from the other operand: the loop and the
    # generated function never write a one-element result into an operand, so the bits are
    # those of the NumPy call without out= (eval_graph, bind)
    from adjit.ir import parse_graph
    t = "f64[" + ",".join(map(str, shape)) + "]"
    g = parse_graph(f"def f(a: {t}, b: {t}) -> {t}:\n"
                    f"  c: {t} = neg a\n"      # an intermediate that dies at d: out= candidate
                    f"  d: {t} = {op} c b\n"
                    f"  return d\n")
    for sa, sb in ((1.0, -1.0), (-1.0, 1.0)):
        a, b = np.full(shape, -sa * np.nan), np.full(shape, sb * np.nan)
        want = getattr(np, op)(-a, b)
        np.testing.assert_array_equal(np.signbit(want), np.signbit(eval_graph(g, [a, b])[0]))
        plan = Plan(g)
        for _ in range(3):  # the loop, then the generated function (see the fixture)
            got = plan([a, b], g.consts)[0]
            assert np.asarray(got).tobytes() == np.asarray(want).tobytes(), (op, shape, sa)


def test_the_same_array_passed_twice_is_never_written(interp):
    x = np.linspace(-1.0, 1.0, 11)
    keep = x.copy()
    f = adjit.jit(lambda a, b: np.tanh(a * b + 1.0) * (a - b) + np.sin(a))
    for r in _interp_calls(f, x, x):
        np.testing.assert_array_equal(r, np.tanh(x * x + 1.0) * (x - x) + np.sin(x))
    np.testing.assert_array_equal(x, keep)


def test_a_buffer_a_view_still_reads_is_not_reused():
    # b = exp(a) dies at `add`, but the reshape r of it is a result: b must not be overwritten
    from adjit.ir import parse_graph
    g = parse_graph(
        "def f(a: f64[6]) -> (f64[6], f64[2,3]):\n"
        "  b: f64[6] = exp a\n"
        "  r: f64[2,3] = reshape[shape=(2, 3)] b\n"
        "  c: f64[6] = add b 1.0\n"
        "  d: f64[6] = mul c c\n"
        "  return d, r\n")
    x = np.linspace(0, 1, 6)
    plan = Plan(g)
    for _ in range(3):
        d, r = plan([x], [])
        np.testing.assert_array_equal(d, (np.exp(x) + 1.0) ** 2)
        np.testing.assert_array_equal(r, np.exp(x).reshape(2, 3))
    assert "out=" in plan.fn.source  # the `mul c c` reuses c, the `add` does not reuse b


@pytest.mark.parametrize("shape", [(), (0,), (3, 0)])
def test_zero_dimensional_and_empty_values(interp, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    y = rng.standard_normal(shape)

    def f(x, y):
        return np.sum(np.tanh(x) * y + x * x), np.maximum(x, y) - 1.0, x * 2.0
    for v, m, d in _interp_calls(adjit.jit(f), x, y):
        np.testing.assert_array_equal(v, np.sum(np.tanh(x) * y + x * x))
        np.testing.assert_array_equal(m, np.maximum(x, y) - 1.0)
        np.testing.assert_array_equal(d, x * 2.0)
        want = np.maximum(x, y) - 1.0
        assert type(m) is type(want) and np.shape(m) == shape  # as NumPy (0-d: a scalar)


def test_second_order_workload_matches_numpy_by_hand(interp):
    # W5's hessian: dot_general as tensordot spells it out, broadcasts left to NumPy
    rng = np.random.default_rng(1)
    x, A = rng.standard_normal(16), rng.standard_normal((16, 16)) / 4
    h = adjit.jit(adjit.hessian(lambda x, A: (np.tanh(A @ x) ** 2).sum()))
    t = np.tanh(A @ x)
    t2 = t * t
    want = A.T @ ((2 * (1 - t2) * (1 - 3 * t2))[:, None] * A)
    results = _interp_calls(h, x, A)
    for r in results:
        np.testing.assert_allclose(r, want, rtol=1e-12, atol=1e-14)
    _same_bits(results[2:], results[1:2] * (len(results) - 2), "loop vs generated")


def test_a_5000_equation_graph_compiles_and_runs():
    n = 5000
    t = AType((4,), "f64")
    a = Var(t, "a")
    vs = [Var(t) for _ in range(n)]
    eqns = [Eqn(REGISTRY["mul"], [a, Lit(1.5, "f64")], {}, [vs[0]])]
    for k in range(1, n):
        op = ("sin", "add", "mul")[k % 3]
        ins = [vs[k - 1]] + ([] if op == "sin" else [Lit(0.25, "f64")])
        eqns.append(Eqn(REGISTRY[op], ins, {}, [vs[k]]))
    g = Graph([a], [], eqns, [vs[-1]])
    x = np.linspace(-1.0, 1.0, 4)
    want = x * 1.5  # NumPy by hand, the same operations in order
    for k in range(1, n):
        want = (np.sin(want), want + 0.25, want * 0.25)[k % 3]
    plan = Plan(g)
    limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(200)  # the generated code must not depend on a deep stack
        for _ in range(3):
            (got,) = plan([x], [])
            assert got.tobytes() == want.tobytes()
    finally:
        sys.setrecursionlimit(limit)
    assert plan.fn.source.count("\ndef _c") >= 2  # split into several functions


def test_an_interpreted_call_runs_no_python_per_equation(interp):
    # W5's hessian: every equation is a direct NumPy call from the generated function (no
    # per-equation dispatch, no Python wrappers such as np.tensordot or broadcast helpers)
    rng = np.random.default_rng(2)
    x, A = rng.standard_normal(16), rng.standard_normal((16, 16)) / 4
    h = adjit.jit(adjit.hessian(lambda x, A: (np.tanh(A @ x) ** 2).sum()))
    for _ in range(5):  # (jit's hot-path flattener and result assembler: made by calls 3 and 5)
        h(x, A)
    calls = []

    def prof(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_name)
    sys.setprofile(prof)
    try:
        h(x, A)
    finally:
        sys.setprofile(None)
    # jit's own call path (~8 frames) plus the plan's two functions; the graph has ~30
    # equations (before: ~150 Python frames, a few per equation)
    assert len(calls) <= 15, calls


def test_a_runtime_error_in_generated_code_is_the_implementations():
    # gather's out-of-range index: the same IndexError as the implementation raises
    from adjit.ir import parse_graph
    g = parse_graph(
        "def f(a: f64[4], i: i64[2]) -> f64[2]:\n"
        "  b: f64[4] = exp a\n"
        "  c: f64[2] = gather[axis=0] b i\n"
        "  return c\n")
    plan = Plan(g)
    x = np.zeros(4)
    for _ in range(2):
        np.testing.assert_array_equal(plan([x, np.array([0, 3])], [])[0], np.ones(2))
    with pytest.raises(IndexError, match="out of range"):
        plan([x, np.array([0, 9])], [])


def test_code_is_generated_once_the_loop_has_run_as_long_as_generating(monkeypatch):
    from adjit.ir import parse_graph
    g = parse_graph("def f(a: f64[3]) -> f64[3]:\n  b: f64[3] = exp a\n  return b\n")
    x = np.linspace(0, 1, 3)
    monkeypatch.setattr(interpreter, "GEN_SECONDS_PER_EQN", 3600.0)
    plan = Plan(g)
    for _ in range(5):
        np.testing.assert_array_equal(plan([x], [])[0], np.exp(x))
    assert plan.fn is None  # a graph that runs briefly pays no code generation
    monkeypatch.setattr(interpreter, "GEN_SECONDS_PER_EQN", 0.0)
    plan = Plan(g)
    plan([x], [])
    assert plan.fn is None  # the first call runs the loop
    np.testing.assert_array_equal(plan([x], [])[0], np.exp(x))
    assert plan.fn is not None


def test_a_scalar_broadcast_read_by_a_ufunc_keeps_its_shape():
    # broadcast_in_dim of a 0-d value to [1], then `mul e 0.5`: NumPy's own broadcasting of the
    # 0-d value would give a 0-d result; the generated code must keep the [1]
    from adjit.ir import parse_graph
    g = parse_graph(
        "def f(a: f64[1], b: f64[]) -> (f64[], f64[1]):\n"
        "  c: f64[1] = sqrt a\n"
        "  d: f64[] = reduce_sum[axes=(0,)] c\n"
        "  e: f64[1] = broadcast_in_dim[shape=(1,), dims=()] b\n"
        "  f: f64[1] = mul e 0.5\n"
        "  g: f64[1] = div f c\n"
        "  return d, g\n")
    args = [np.array([4.0]), np.array(1.0)]
    want = eval_graph(g, args)
    plan = Plan(g)
    for k in range(3):
        _same_bits(plan(args, []), want, k)


def _check_program(g, args):
    from adjit.ir.passes import optimize
    opt = optimize(g)
    with np.errstate(all="ignore"):
        want = eval_graph(opt, args)
    plan = Plan(opt)
    for k in range(3):  # the loop, then the generated function
        _same_bits(plan(args, opt.consts), want, k)


programs = st.tuples(  # test_passes' programs, with size-1 axes (broadcasts NumPy could elide)
    st.lists(st.tuples(st.integers(0, 99), st.integers(0, 50), st.integers(0, 50)),
             min_size=1, max_size=12),
    st.sampled_from([(), (1,), (3,), (2, 3), (3, 1)]), st.sampled_from(["f64", "f32"]),
    st.integers(1, 2))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs)
def test_generated_code_matches_on_random_programs_and_their_vjps(prog):
    from adjit.ir.autodiff import vjp_graph
    instrs, shape, dt, n_in = prog
    g = _program(instrs, shape, dt, n_in)
    rng = np.random.default_rng(len(instrs))
    args = [rng.uniform(-2, 2, shape).astype(DTYPES[dt]) for _ in range(n_in)]
    _check_program(g, args)
    vg = vjp_graph(g)
    _check_program(vg, [rng.uniform(-2, 2, v.type.shape).astype(DTYPES[dt])
                        for v in vg.invars])


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_scatter_add_on_any_axis_and_its_range_error(axis):
    # scatter_add's np.moveaxis permutations are computed once: same bits, same error
    from adjit.ir import parse_graph
    xs = [4, 5, 6]
    us = xs[:axis] + [2, 3] + xs[axis + 1:]
    t = lambda s: "f64[" + ",".join(map(str, s)) + "]"
    g = parse_graph(
        f"def f(a: {t(xs)}, i: i64[2,3], u: {t(us)}) -> {t(xs)}:\n"
        f"  b: {t(xs)} = exp a\n"
        f"  c: {t(xs)} = scatter_add[axis={axis}] b i u\n"
        f"  return c\n")
    rng = np.random.default_rng(axis)
    x, u = rng.standard_normal(xs), rng.standard_normal(us)
    i = rng.integers(-xs[axis], xs[axis], (2, 3))
    i[0, 0] = i[1, 2]  # a repeated index adds twice
    want = eval_graph(g, [x, i, u])
    plan = Plan(g)
    for k in range(3):
        _same_bits(plan([x, i, u], []), want, k)
    assert "_scatter_at" in plan.fn.source
    i[1, 1] = xs[axis]
    with pytest.raises(IndexError, match="out of range"):
        plan([x, i, u], [])


def test_a_full_is_made_once_never_shared_with_a_result():
    # np.full costs ~1 us: a `full` that only elementwise calls read is a 0-d constant NumPy
    # broadcasts, another small one a copy of a template; a result is always its own array
    from adjit.ir import parse_graph
    g = parse_graph(
        "def f(a: f64[2,3], i: i64[2]) -> (f64[2,3], f64[2,3], f64[6], bool[2,3], f64[1,2]):\n"
        "  z: f64[2,3] = full[shape=(2, 3), value=-0.0, dtype='f64']\n"
        "  p: bool[2,3] = gt a 0.0\n"
        "  b: f64[2,3] = select p a z\n"
        "  t: bool[2,3] = full[shape=(2, 3), value=True, dtype='bool']\n"
        "  q: bool[2,3] = and p t\n"
        "  o: f64[6] = full[shape=(6,), value=0.0, dtype='f64']\n"
        "  u: f64[2] = full[shape=(2,), value=1.5, dtype='f64']\n"
        "  s: f64[6] = scatter_add[axis=0] o i u\n"
        "  w: f64[1,2] = reshape[shape=(1, 2)] u\n"
        "  return b, z, s, q, w\n")
    a = np.array([[1.0, -2.0, np.nan], [0.0, 3.0, -0.0]])
    i = np.array([5, -6])
    p = a > 0.0
    want = [np.where(p, a, -0.0), np.full((2, 3), -0.0), np.zeros(6), p, np.full((1, 2), 1.5)]
    np.add.at(want[2], i, 1.5)
    plan = Plan(g)
    for k in range(4):  # the loop, then the generated function
        got = plan([a, i], [])
        _same_bits(got, want, k)
        for r in got[1:3] + got[4:]:  # a result made from a `full` is the caller's
            assert r.flags.writeable and r.base is None
            r[...] = 7.0  # and the next call is unchanged
    src = plan.fn.source
    assert "_full(" not in src, src


@pytest.mark.parametrize("axis", [0, 1])
def test_gather_is_numpys_indexing_with_take_s_range_rule(axis):
    # np.take costs ~0.8 us of Python and dispatch on W2's labels, x[..., idx] ~0.1: the same
    # values, shapes and range rule (an index in [-n, n)), the implementation's error
    from adjit.ir import parse_graph
    xs = [3, 4]
    ish = [2, 2]
    out = xs[:axis] + ish + xs[axis + 1:]
    t = lambda s: "f64[" + ",".join(map(str, s)) + "]"  # noqa: E731
    g = parse_graph(f"def f(a: {t(xs)}, i: i64[2,2]) -> {t(out)}:\n"
                    f"  b: {t(xs)} = exp a\n"
                    f"  c: {t(out)} = gather[axis={axis}] b i\n"
                    f"  return c\n")
    x = np.linspace(-1.0, 1.0, 12).reshape(xs)
    n = xs[axis]
    i = np.array([[0, -1], [n - 1, -n]])
    plan = Plan(g)
    for k in range(3):
        got = plan([x, i], [])[0]
        _same_bits([got], [np.take(np.exp(x), i, axis=axis)], k)
        assert got.base is None and got.flags.writeable
    calls = []
    sys.setprofile(lambda frame, event, arg: calls.append(frame.f_code.co_name)
                   if event == "call" else None)
    try:
        plan([x, i], [])
    finally:
        sys.setprofile(None)
    assert "take" not in calls, calls
    for bad in (n, -n - 1):
        with pytest.raises(IndexError, match="out of range in gather"):
            plan([x, np.array([[0, 0], [bad, 0]])], [])
