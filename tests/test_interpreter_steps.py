"""The interpreter's loop (`Plan.loop`) and its donated form (`Plan.donated`: arguments handed
over, dead buffers pooled) run one step code (`interpreter._run_steps`): on every registered
primitive (its one-equation graph, the same graph with its operands first copied into values the
plan allocated, and its vjp graph) both give the reference's bits (`eval_graph`), write no
argument the caller keeps, and donated arguments may be written."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import sweep
from test_interpreter_codegen import _copied_operands, _same_bits

from adjit.ir import REGISTRY, eval_graph
from adjit.ir.autodiff import vjp_graph
from adjit.runtime import interpreter
from adjit.runtime.interpreter import Plan


def _graphs(name, dt, i):
    args, params = sweep.sample(name, dt, i, "the interpreter sweep")
    g = sweep.one_eqn(REGISTRY[name], args, params)
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    out = [(g, arrays), (_copied_operands(g), arrays)]
    if dt in ("f32", "f64") and REGISTRY[name].vjp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = vjp_graph(g)
        # the primal arguments, then cotangents (random: any value is one)
        rng = sweep.rng(name, dt, i, "steps")
        extra = [rng.uniform(0.5, 1.5, w.type.shape).astype(w.type.np_dtype)
                 for w in v.invars[len(arrays):]]
        if len(v.invars) >= len(arrays) and all(
                w.type.shape == a.shape and w.type.np_dtype == a.dtype
                for w, a in zip(v.invars, arrays)):
            out.append((v, arrays + extra))
    return out


@pytest.mark.parametrize("name,dt,i", list(sweep.cases()))
def test_loop_and_donated_give_the_reference_bits(name, dt, i):
    for g, args in _graphs(name, dt, i):
        with np.errstate(all="ignore"):
            want = eval_graph(g, [a.copy() for a in args])
        keep = [a.copy() for a in args]
        plan = Plan(g)
        with np.errstate(all="ignore"):
            looped = plan.loop(list(args), g.consts)
        _same_bits(looped, want, (name, "loop"))
        for a, b in zip(args, keep):  # arguments are never written
            assert a.tobytes() == b.tobytes()
        for donate in (range(len(args)), range(0, len(args), 2)):
            donate = sorted(donate)
            handed = [np.array(a) if k in donate else a for k, a in enumerate(args)]
            got = plan.donated(handed, g.consts, donate)
            assert all(handed[k] is None for k in donate)
            _same_bits(got, want, (name, "donated", donate))
            for k, (a, b) in enumerate(zip(args, keep)):
                assert a.tobytes() == b.tobytes(), k


def test_donated_writes_into_a_handed_over_argument_and_pools_dead_buffers():
    # b dies at reduce_sum (no `out=`): its buffer is pooled and `exp` of the broadcast (a
    # view: not written) takes it; `mul` writes into a, a donated argument that dies there.
    # The loop writes into neither: the caller keeps its arguments.
    from adjit.ir import parse_graph
    g = parse_graph("def f(a: f64[5], b: f64[5]) -> f64[5]:\n"
                    "  s: f64[] = reduce_sum[axes=(0,)] b\n"
                    "  d: f64[5] = broadcast_in_dim[shape=(5,), dims=()] s\n"
                    "  e: f64[5] = exp d\n"
                    "  h: f64[5] = mul a e\n"
                    "  return h\n")
    x, y = np.linspace(0, 1, 5), np.linspace(0.1, 0.2, 5)
    want = x * np.exp(np.full(5, y.sum()))
    plan = Plan(g)
    # `out=` candidates (operand position, references): the loop's never the argument a
    assert [k for k, _ in plan.steps[3][5][1]] == [1]
    assert [k for k, _ in plan._pool_info()[0][3][5][1]] == [0, 1]  # donated, a first
    keep = x.copy(), y.copy()
    np.testing.assert_array_equal(plan.loop([x, y], [])[0], want)
    assert x.tobytes() == keep[0].tobytes() and y.tobytes() == keep[1].tobytes()
    pooled = []
    real = interpreter._pool_put

    def put(pool, env, s, need, j):
        real(pool, env, s, need, j)
        pooled.append(sum(len(v) for v in pool.values()))
    handed = [x.copy(), y.copy()]
    addr = [h.__array_interface__["data"][0] for h in handed]
    interpreter._pool_put = put
    try:
        got = plan.donated(handed, [], [0, 1])[0]
    finally:
        interpreter._pool_put = real
    np.testing.assert_array_equal(got, want)
    assert pooled[0] == 1  # b's buffer, kept for exp
    assert got.__array_interface__["data"][0] == addr[0]  # mul wrote into a


@pytest.mark.parametrize("c,d", [(0, 0), (0, 1), (1, 1), (1, 0)])
@pytest.mark.parametrize("sizes", [(3, 4, 5), (1, 4, 1), (2, 2, 2)])
def test_a_matrix_products_recipe_is_the_general_one(c, d, sizes):
    # _dot_recipe's shortcut for 2-D operands contracted on one axis each gives the recipe of
    # the general steps (np.tensordot's transposes and reshapes), and tensordot's bits
    from adjit.ir import parse_graph
    m, k, n = sizes
    xs = (m, k) if c == 1 else (k, m)
    ys = (k, n) if d == 0 else (n, k)
    g = parse_graph(f"def f(a: f64[{xs[0]},{xs[1]}], b: f64[{ys[0]},{ys[1]}]) -> f64[{m},{n}]:\n"
                    f"  c: f64[{m},{n}] = dot_general[contract=(({c},), ({d},)), "
                    "batch=((), ())] a b\n"
                    "  return c\n")
    e = g.eqns[0]
    got = interpreter._dot_recipe(e)
    if (c, d) == (1, 0):
        assert got == "matmul"
    else:
        assert got == interpreter._dot_recipe_general(xs, ys, (c,), (d,), (m, n))
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    x, y = rng.standard_normal(xs), rng.standard_normal(ys)
    want = np.tensordot(x, y, axes=((c,), (d,)))
    _same_bits(Plan(g).loop([x, y], []), [want], (c, d, sizes))


def test_the_shared_operand_table_stays_bounded():
    # the per-slot objects plans share are kept for at most SHARED_SLOTS slots: a plan of a
    # bigger graph makes its own beyond that (no table the size of the largest graph ever
    # planned, resident for the rest of the process)
    from adjit.ir import parse_graph
    from adjit.ir.printer import var_names
    n = interpreter.SHARED_SLOTS + 500
    names = var_names()
    first = next(names)
    lines, prev = [], first
    for _ in range(n):
        v = next(names)
        lines.append(f"  {v}: f64[2] = add {prev} 1.0")
        prev = v
    g = parse_graph(f"def f({first}: f64[2]) -> f64[2]:\n" + "\n".join(lines) +
                    f"\n  return {prev}\n")
    x = np.array([0.5, -1.0])
    _same_bits(Plan(g).loop([x], []), eval_graph(g, [x]), "chain")
    assert all(len(t) <= interpreter.SHARED_SLOTS for t in interpreter._SLOTS)
