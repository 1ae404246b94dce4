"""A traced integer index (labels passed to a jitted loss, an index array argument) is made
non-negative and bounds-checked by ONE `index_wrap` equation (issue 18: a new step's first call
pays per equation; the same work was seven equations and a `full`). Its semantics, on every
tier and every front that indexes with it, are NumPy's own: an index in [-n, n) reads the
element NumPy reads (a negative one counted from the end), anything else raises IndexError, on
a replay with new index values too (never a neighbouring row of a merged linear index)."""
from __future__ import annotations

import numpy as np
import pytest
from peers import require

import adjit
from adjit.runtime.call import CompiledGraph

I64 = np.iinfo(np.int64)
N = 5  # the indexed axis
X1 = np.arange(N) * 1.5 - 2.0
X2 = np.arange(4 * N, dtype=np.float64).reshape(4, N) * 0.25 + 1.0

# function of (x, i) -> NumPy's answer; x1 or x2 as first operand; i has 4 entries into N
INDEXERS = {
    "getitem": (X1, lambda x, i: x[i]),
    "rows": (X2, lambda x, i: x[np.arange(4), i]),  # W2's pick: one merged linear index
    "columns": (X2, lambda x, i: x[:, i]),
    "row_col": (X2, lambda x, i: x[i % 4, i]),
    "take": (X1, lambda x, i: np.take(x, i)),
    "take_axis": (X2, lambda x, i: np.take(x, i, axis=1)),
    "take_along_axis": (X2, lambda x, i: np.take_along_axis(x, i.reshape(4, 1), axis=1)),
}
GOOD = [0, 3, -1, -N]
# in range, negative, the edges -n and n - 1, just outside (n, -n - 1), far outside, huge
VALUES = [0, 2, N - 1, -1, -3, -N, N, -N - 1, N + 1, -2 * N, -2 * N - 1, 7 * N, 2 ** 31 - 1,
          -2 ** 31, 2 ** 40, -2 ** 40, I64.max, I64.min, I64.min + N - 1]


def _grad_numpy(x, i):  # d/dx sum(x[i]**2): a scatter-add of 2 x[i]
    g = np.zeros_like(x)
    np.add.at(g, i, 2 * x[i])
    return g


def _adjit_fns():
    fns = {name: (x, f) for name, (x, f) in INDEXERS.items()}
    fns["grad"] = (X1, lambda x, i: adjit.grad(lambda y: np.sum(y[i] * y[i]))(x))
    fns["vmap"] = (X2, lambda x, i: adjit.vmap(lambda r, k: r[k])(x, i))
    fns["vmap_grad"] = (X2, lambda x, i: adjit.vmap(  # batched scatter_add
        adjit.grad(lambda r, k: np.sum(r[k] * r[k])))(x, i))
    return fns


def _numpy(name, x, i):
    if name == "grad":
        return _grad_numpy(x, i)
    if name == "vmap":
        return x[np.arange(4), i]
    if name == "vmap_grad":
        return np.stack([_grad_numpy(r, k) for r, k in zip(x, i)])
    return INDEXERS[name][1](x, i)


def _outcome(f):
    try:
        return np.asarray(f())
    except IndexError:
        return IndexError


def _indices(dt):
    info = np.iinfo(dt)
    return [np.array([1, v, 2, 4], dt) for v in VALUES if info.min <= v <= info.max]


@pytest.mark.parametrize("dt", [np.int64, np.int32])
@pytest.mark.parametrize("tier", ["interp", "native"])
@pytest.mark.parametrize("name", sorted(_adjit_fns()))
def test_traced_indices_replay_as_numpy_indexes(name, tier, dt, monkeypatch):
    """Traced once on in-range indices (a negative one among them), then replayed on every
    value class: the element NumPy reads, or IndexError where NumPy raises it."""
    monkeypatch.setenv("ADJIT_TIER", tier)
    x, fn = _adjit_fns()[name]
    jf = adjit.jit(fn)
    good = np.array(GOOD, dt)
    np.testing.assert_array_equal(jf(x, good), _numpy(name, x, good))
    for i in _indices(dt):
        want = _outcome(lambda i=i: _numpy(name, x, i))
        got = _outcome(lambda i=i: jf(x, i))
        if want is IndexError:
            assert got is IndexError, (name, i, got)
        else:
            assert got is not IndexError, (name, i)
            np.testing.assert_array_equal(got, want, err_msg=f"{name} {i}")
    assert jf.traces == 1
    (br,) = next(iter(jf.cache.values()))
    if tier == "native":  # every replay above ran native code
        assert isinstance(br.graph.native, CompiledGraph), br.graph.native
    else:
        assert not isinstance(br.graph.native, CompiledGraph)


@pytest.mark.parametrize("name", sorted(_adjit_fns()))
def test_traced_indices_out_of_range_at_record_time(name):
    x, fn = _adjit_fns()[name]
    for v in (N, -N - 1, I64.max, I64.min):
        i = np.array([1, v, 2, 4])
        with pytest.raises(IndexError):
            _numpy(name, x, i)
        # (under vmap the front sees no per-example values: the batched gather refuses them)
        with pytest.raises(IndexError, match="out of bounds" if "vmap" not in name else
                           "out of range in gather"):
            adjit.jit(fn)(x, i)


def _prims(g):
    return [e.prim.name for e in g.eqns]


@pytest.mark.parametrize("name", sorted(_adjit_fns()))
def test_a_traced_index_is_one_equation(name):
    x, fn = _adjit_fns()[name]
    g = adjit.make_ir(fn)(x, np.array(GOOD))
    prims = _prims(g)
    # one per traced index (grad's y[i] * y[i] and x[i % 4, i] index twice; vmap_grad: two
    # gathers and two scatter_adds, before common subexpressions are merged)
    want = {"grad": 2, "row_col": 2, "vmap_grad": 4}.get(name, 1)
    assert prims.count("index_wrap") == want, prims
    assert "select" not in prims and "or" not in prims, g


def test_w2_step_records_one_equation_per_traced_index():
    from adjit.bench.workloads import _mlp
    inp = _mlp.make_inputs(32, 20, 16, 5)(0)
    g = adjit.make_ir(adjit.value_and_grad(_mlp.loss, argnums=(0, 1, 2, 3)))(*inp)
    prims = _prims(g)
    assert prims.count("index_wrap") == 1
    # the seven operations it stands for are gone (the step's own: relu and max's ties)
    assert prims.count("lt") == 0 and prims.count("ge") == 0, g
    assert len(g.eqns) <= 58, len(g.eqns)


@pytest.mark.parametrize("tier", ["interp", "native"])
def test_tensor_front_traced_index_as_pytorch(tier, monkeypatch):
    torch = require("torch")
    monkeypatch.setenv("ADJIT_TIER", tier)
    x = np.arange(12.0).reshape(4, 3)
    fns = {"rows": lambda T, t, i: t[i], "cols": lambda T, t, i: t[:, i],
           "pick": lambda T, t, i: t[T.arange(4), i]}
    for name, fn in fns.items():
        jf = adjit.jit(lambda t, i, fn=fn: fn(adjit, t, i))
        jf(adjit.tensor(x), adjit.tensor([0, 1, -1, 2]))
        for v in (0, 2, 3, -1, -4, 4, -5, 40, I64.max, I64.min):
            idx = [1, v, 2, 0]
            try:
                want = fn(torch, torch.tensor(x), torch.tensor(idx)).numpy()
            except IndexError:
                want = IndexError
            try:
                got = jf(adjit.tensor(x), adjit.tensor(idx)).numpy()
            except IndexError:
                got = IndexError
            if want is IndexError:
                assert got is IndexError, (name, v)
            else:
                assert got is not IndexError, (name, v)
                np.testing.assert_array_equal(got, want)
        assert jf.traces == 1


@pytest.mark.parametrize("prim", ["gather", "scatter_add"])
def test_batched_gather_and_scatter_take_gathers_own_index_range(prim):
    """vmap's rule for a gather / scatter_add with batched indices merges the batch axis into
    the indexed one: an index in [-n, n) still counts from the end of its own row (np.take's
    rule), one outside raises IndexError, never a neighbouring row's element."""
    from adjit.ir import eval_graph, parse_graph
    from adjit.ir.batching import batch_graph
    if prim == "gather":
        text = ("def f(x: f64[5], i: i64[3]) -> f64[3]:\n"
                "  y: f64[3] = gather[axis=0] x i\n  return y\n")
    else:
        text = ("def f(x: f64[5], i: i64[3], u: f64[3]) -> f64[5]:\n"
                "  y: f64[5] = scatter_add[axis=0] x i u\n  return y\n")
    g = parse_graph(text)
    bg, _ = batch_graph(g, [0] * len(g.invars), 4)
    x = np.arange(20.0).reshape(4, 5) * 0.5 - 3.0
    u = np.arange(12.0).reshape(4, 3) + 1.0

    def numpy(i):
        if prim == "gather":
            return np.stack([np.take(r, k, mode="raise") for r, k in zip(x, i)])
        out = x.copy()
        for r, k, v in zip(out, i, u):
            np.add.at(r, k, v)
        return out
    rows = [[0, 4, -1], [-5, 2, -2], [1, 1, -3], [3, -4, 0]]
    for bad in (None, 5, -6, 9, 2 ** 40, I64.min):
        i = np.array(rows)
        if bad is not None:
            i[1, 1] = bad
        args = [x, i] if prim == "gather" else [x, i, u]
        want = _outcome(lambda i=i: numpy(i))
        got = _outcome(lambda args=args: eval_graph(bg, args)[0])
        if want is IndexError:
            assert got is IndexError, (bad, got)
        else:
            np.testing.assert_array_equal(got, want)


def test_index_checks_agree_with_a_plain_scan():
    # first_out_of_bounds / index_bounds (small indices take a min/max short cut) against
    # the definition, over random integer arrays, both sizes, every dtype kind they meet
    from adjit.ir.indexing import first_out_of_bounds, index_bounds
    rng = np.random.default_rng(5)

    def scan(a, n):
        first, neg = None, False
        for v in a.ravel().tolist():
            if (v >= n or v < -n) and first is None:
                first = v
            neg = neg or v < 0
        return first, neg
    for size in (0, 1, 5, 64, 65, 200):
        for n in (1, 3, 10):
            for dt in (np.int64, np.int32, np.uint8, np.float64):
                a = rng.integers(-2 * n, 2 * n, size).astype(dt)
                if dt is np.float64 and size:
                    a[0] = np.nan
                first, neg = scan(a, n)
                assert first_out_of_bounds(a, n) == first, (a, n)
                if dt is np.float64:
                    continue  # (index_bounds sees integer indices only)
                got = index_bounds(a, n)
                assert got[0] == first, (a, n)
                if first is None:
                    assert got[1] == neg, (a, n)
