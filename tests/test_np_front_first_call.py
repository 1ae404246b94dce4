"""The NumPy front's first-call shortcuts (issue 18: a new jitted step's first call is tracing)
change nothing but cost.

Advanced indexing with constant index arrays (np.arange next to labels, as a cross-entropy
loss reads `logp[np.arange(n), y]`) checks and combines those arrays in plain Python/NumPy
without NumPy's Python-level helpers (np.prod, np.broadcast_shapes, np.where when no index is
negative): the tests check that the helpers are not called, and that values, gradients,
replays with other labels and every error are what NumPy and finite differences say.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import adjit
from adjit.ir.indexing import first_out_of_bounds, index_bounds
from peers import central_diff

RNG = np.random.default_rng(18)


def _ce(x, y):
    """A cross-entropy-like loss that reads one entry per row (advanced indexing)."""
    z = x - np.max(x, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(x.shape[0]), y])


@pytest.mark.parametrize("y", [np.array([0, 4, 2, 1, 3, 4]), np.array([-1, 0, -5, 4, 2, -3])])
def test_arange_and_labels_value_grad_and_replay(y):
    x = RNG.standard_normal((6, 5))
    step = adjit.jit(adjit.value_and_grad(_ce))
    v, g = step(x, y)
    np.testing.assert_allclose(v, _ce(x, y), rtol=1e-13)
    np.testing.assert_allclose(g, central_diff(lambda t: _ce(t, y), x), rtol=1e-6, atol=1e-9)
    # replays with other labels (negative ones too) read other entries, as NumPy
    for y2 in (np.array([4, 3, 2, 1, 0, -1]), np.array([-5, -4, 0, 1, 2, 3])):
        v2, g2 = step(x, y2)
        np.testing.assert_allclose(v2, _ce(x, y2), rtol=1e-13)
        np.testing.assert_allclose(g2, central_diff(lambda t: _ce(t, y2), x), rtol=1e-6,
                                   atol=1e-9)
    # a label outside [-5, 5) on a replay is refused, as NumPy refuses it
    for bad in (5, -6, 100):
        yb = y.copy()
        yb[2] = bad
        with pytest.raises(IndexError):
            _ce(x, yb)
        with pytest.raises(IndexError, match="out of range"):
            step(x, yb)
    assert step.traces == 1


def test_label_out_of_bounds_at_trace_time_names_the_line():
    x = RNG.standard_normal((3, 4))
    y = np.array([0, 4, 1])
    with pytest.raises(IndexError, match="index 4 is out of bounds"):
        x[np.arange(3), y]  # NumPy's refusal

    def f(t, y):
        return np.sum(t[np.arange(3), y])  # the line named
    with pytest.raises(IndexError, match=r"index 4 is out of bounds for axis with size 4 "
                                         r"\(at .*test_np_front_first_call.py:\d+\)") as e:
        adjit.jit(f)(x, y)
    line = int(re.search(r":(\d+)\)", str(e.value)).group(1))
    assert "t[np.arange(3), y]" in open(__file__).read().splitlines()[line - 1]


# constant index arrays: negative entries, broadcasting, more than 64 entries (NumPy's checks)
X = RNG.standard_normal((7, 9))
BIG = np.arange(-63, 70) % 9 - 4      # 133 entries in [-4, 4]
CONSTANT = [
    ("arange rows + cols", lambda x: x[np.arange(7), np.arange(7) % 9]),
    ("negative cols", lambda x: x[np.arange(7), np.array([-1, -9, 0, 8, -2, 3, -5])]),
    ("negative rows", lambda x: x[np.array([-7, -1, 0]), np.array([2, 2, -9])]),
    ("broadcast", lambda x: x[np.arange(7)[:, None], np.array([[0, -1, 4]])]),
    ("int + array", lambda x: x[-2, np.array([-3, 1])]),
    ("array + slice", lambda x: x[np.array([[-1], [2]]), 1:7:2]),
    ("separated", lambda x: x.reshape(7, 3, 3)[np.array([1, -1]), :, np.array([-3, 2])]),
    ("slice between", lambda x: x.reshape(7, 3, 3)[:, np.array([-1, 0]), np.array([2, -2])]),
    ("none + arrays", lambda x: x[None, np.arange(7), np.arange(7) % 3]),
    ("big negative", lambda x: x[BIG % 7, BIG]),
    ("big nonneg", lambda x: x[np.abs(BIG) % 7, np.abs(BIG)]),
    ("0-d array", lambda x: x[np.array(-1), np.arange(9)]),
    ("int32 index", lambda x: x[np.arange(7, dtype=np.int32), np.arange(7, dtype=np.int32)]),
    ("uint8 index", lambda x: x[np.arange(7, dtype=np.uint8), np.array(3, np.uint8)]),
]


@pytest.mark.parametrize("name,f", CONSTANT, ids=[c[0] for c in CONSTANT])
def test_constant_index_arrays_match_numpy(name, f):
    want = f(X)
    jf = adjit.jit(f)
    for _ in range(2):
        got = jf(X)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    g = adjit.grad(lambda x: np.sum(f(x) * np.arange(1.0, want.size + 1).reshape(want.shape)))(X)
    ref = np.zeros_like(X)
    # NumPy's scatter of the weights through the same index (np.add.at: repeated entries add)
    np.add.at(ref.reshape(-1), f(np.arange(X.size).reshape(X.shape)).ravel(),
              np.arange(1.0, want.size + 1))
    np.testing.assert_array_equal(g, ref)


BAD = [
    ("col too big", lambda x: x[np.arange(7), np.array([0, 9, 1, 2, 3, 4, 5])]),
    ("col too small", lambda x: x[np.arange(7), np.array([0, 1, -10, 2, 3, 4, 5])]),
    ("row too big", lambda x: x[np.array([7]), np.array([0])]),
    ("big", lambda x: x[np.arange(133) % 7, np.concatenate([BIG[:100], [9], BIG[101:]])]),
    ("big negative", lambda x: x[np.arange(133) % 7, np.concatenate([BIG[:90], [-10], BIG[91:]])]),
]


@pytest.mark.parametrize("name,f", BAD, ids=[c[0] for c in BAD])
def test_constant_index_out_of_bounds_as_numpy(name, f):
    with pytest.raises(IndexError) as want:
        f(X)
    bad = re.search(r"index (-?\d+) is out of bounds", str(want.value)).group(1)
    with pytest.raises(IndexError, match=f"index {bad} is out of bounds for axis with size"):
        adjit.jit(f)(X)


def test_index_arrays_that_do_not_broadcast():
    f = lambda x: x[np.arange(7), np.array([0, 1])]  # noqa: E731
    with pytest.raises(IndexError, match="could not be broadcast"):
        f(X)
    with pytest.raises(IndexError, match=r"shape mismatch: indexing arrays could not be "
                                         r"broadcast together with shapes \(7,\) \(2,\)"):
        adjit.jit(f)(X)


@pytest.mark.parametrize("size", [0, 1, 5, 64, 65, 300])
def test_index_bounds_agrees_with_numpy(size):
    for n in (1, 3, 50):
        for _ in range(20):
            a = RNG.integers(-n - 2, n + 2, size) if RNG.random() < 0.5 else \
                RNG.integers(-n, n, size)
            bad, neg = index_bounds(a, n)
            out = (a < -n) | (a >= n)
            assert bad == (int(a[out][0]) if out.any() else None)
            assert bad == first_out_of_bounds(a, n)
            if bad is None:
                assert neg == bool((a < 0).any())


def _spy(monkeypatch, names):
    calls = []
    for name in names:
        orig = getattr(np, name)

        def spy(*a, _orig=orig, _name=name, **k):
            calls.append(_name)
            return _orig(*a, **k)
        monkeypatch.setattr(np, name, spy)
    return calls


def test_advanced_indexing_needs_no_numpy_python_helpers(monkeypatch):
    """np.prod and np.broadcast_shapes are Python functions whose first use in a process costs
    10-30 us each: not on the indexing path any more (nor np.where for constant indices none of
    which is negative: the `select` a traced index records computes with np.where)."""
    calls = _spy(monkeypatch, ("prod", "broadcast_shapes"))
    x = RNG.standard_normal((6, 5))
    y = np.array([0, 4, 2, 1, 3, 4])

    def f(t, y):
        return np.sum(t[np.arange(6), y][:, None] * t[np.arange(6)[:, None], np.array([[1, 2]])])
    v, g = adjit.jit(adjit.value_and_grad(f))(x, y)
    assert calls == []
    np.testing.assert_allclose(g, central_diff(lambda t: f(t, y), x), rtol=1e-6, atol=1e-9)
    where = _spy(monkeypatch, ("where",))
    h = adjit.jit(lambda t: t[np.arange(6), np.array([0, 4, 2, 1, 3, 4])] * 2.0)
    np.testing.assert_array_equal(h(x), x[np.arange(6), y] * 2.0)
    assert where == []


def test_indexing_finds_the_users_location_once(monkeypatch):
    """x[...] is an entry point like np.sum(x): its equations (a traced index's wrap, the
    linear index, the gather) take the user's line found once, not by a frame walk each."""
    from adjit.ir import core
    import adjit.tracer.ndarray as nd
    calls = []
    orig = core.user_location

    def spy(*a, **k):
        calls.append(1)
        return orig(*a, **k)
    monkeypatch.setattr(core, "user_location", spy)
    monkeypatch.setattr(nd, "user_location", spy)
    x = RNG.standard_normal((6, 5))
    y = np.array([0, 4, 2, 1, 3, 4])

    def f(t, y):
        return t[np.arange(6), y]  # the indexing line
    g = adjit.make_ir(f)(x, y)
    assert len(g.eqns) >= 4 and len(calls) <= 1, (len(g.eqns), len(calls))
    (line,) = [i + 1 for i, s in enumerate(open(__file__).read().splitlines())
               if s.endswith("# the indexing line")]
    assert {e.loc for e in g.eqns} == {(__file__, line)}


def test_indexing_inside_numpy_callbacks_keeps_each_line():
    x = np.linspace(-1.0, 1.0, 6)

    def helper(v):
        return v[np.array([0, -1, 1])].sum() * v  # callback line

    def f(x):
        a = np.piecewise(x, [x > 0], [helper, 0.0])  # piecewise line
        return a[np.array([1, 2])]  # outer line
    g = adjit.make_ir(f)(x)
    lines = open(__file__).read().splitlines()
    want = {tag: i + 1 for i, s in enumerate(lines) for tag in ("callback line", "piecewise line",
                                                                 "outer line") if s.endswith(tag)}
    by_prim = {}
    for e in g.eqns:
        assert e.loc[0] == __file__
        by_prim.setdefault(e.prim.name, set()).add(e.loc[1])
    assert want["callback line"] in by_prim["gather"] and want["outer line"] in by_prim["gather"]
    assert want["piecewise line"] in by_prim["select"]
    np.testing.assert_allclose(adjit.jit(f)(x), f(x), rtol=1e-14)


# --- binary operators and @ on traced arrays of two transforms (jit's inputs next to grad's) ----
def _mixed(fn, *args):
    """fn's value and gradient in its first argument under jit(value_and_grad(fn)): the others
    are jit's inputs, traced one level below grad's."""
    return adjit.jit(adjit.value_and_grad(fn))(*args)


MIXED = [
    ("bias row", lambda W, X, b: np.sum(np.tanh(X @ W + b)), (4, 3), (5, 4), (3,)),
    ("bias first", lambda W, X, b: np.sum(np.tanh(b + X @ W)), (4, 3), (5, 4), (3,)),
    ("column", lambda W, X, c: np.sum(np.sin((X @ W) * c)), (4, 3), (5, 4), (5, 1)),
    ("both broadcast", lambda w, X, c: np.sum(np.cos(w - c) * X), (1, 4), (5, 4), (5, 1)),
    ("same shape", lambda W, X, Y: np.sum((W / (X ** 2 + 1.0)) - Y * W), (5, 4), (5, 4),
     (5, 4)),
    ("matvec", lambda v, X, u: np.sum(np.exp(0.1 * (X @ v))) + np.sum((u @ X) * v), (4,), (5, 4),
     (5,)),
    ("vecmat", lambda v, X, u: np.sum(np.exp(0.1 * (v @ X.T)) * (u @ X @ v)), (4,), (5, 4),
     (5,)),
    ("inner", lambda v, X, u: (v @ X[0]) * (X[1] @ v), (4,), (5, 4), (5,)),
    ("comparisons", lambda W, X, b: np.sum(np.where(X @ W > b, W.sum() * b, 0.0)), (4, 3),
     (5, 4), (3,)),
    ("scalars", lambda W, X, b: np.sum(2.0 - W.sum() * 3 + (X @ W) / 2 + True * b), (4, 3), (5, 4),
     (3,)),
]


@pytest.mark.parametrize("name,fn,s0,s1,s2", MIXED, ids=[m[0] for m in MIXED])
def test_operators_across_two_transforms(name, fn, s0, s1, s2):
    args = [RNG.standard_normal(s) for s in (s0, s1, s2)]
    v, g = _mixed(fn, *args)
    np.testing.assert_allclose(v, fn(*args), rtol=1e-13)
    np.testing.assert_allclose(g, central_diff(lambda t: fn(t, *args[1:]), args[0]), rtol=1e-6,
                               atol=1e-8)
    # float32 stays float32, as NumPy
    a32 = [a.astype(np.float32) for a in args]
    v32, g32 = _mixed(fn, *a32)
    assert np.asarray(v32).dtype == np.asarray(fn(*a32)).dtype and g32.dtype == np.float32


def test_operators_across_two_transforms_refuse_bad_shapes_at_the_users_line():
    W, X, b = RNG.standard_normal((4, 3)), RNG.standard_normal((5, 4)), RNG.standard_normal(4)

    def f(W, X, b):
        return np.sum(X @ W + b)  # bad bias
    with pytest.raises(ValueError, match="could not be broadcast"):
        f(W, X, b)
    with pytest.raises(ValueError, match=r"operands could not be broadcast together with shapes "
                                         r"\(5, 3\) \(4,\) in `\+` \(np.add\) \(at .*:\d+\)"):
        _mixed(f, W, X, b)

    def g(W, X, b):
        return np.sum(X.T @ W)  # bad product
    with pytest.raises(ValueError, match="matmul"):
        g(W, X, b)
    with pytest.raises(ValueError, match=r"matmul.*\(at .*test_np_front_first_call.py:\d+\)"):
        _mixed(g, W, X, b)


def test_operators_across_two_transforms_take_the_short_path(monkeypatch):
    """`+` of grad's array and jit's bias records without `promote`; `@` of 1-2 axis arrays
    without `composites.matmul` (the same equations: the tests above check the results)."""
    from adjit.ir import composites
    from adjit.tracer import promote as pr
    calls = []
    for mod, name in ((pr, "promote"), (pr, "promote_nobroadcast"), (composites, "matmul")):
        orig = getattr(mod, name)

        def spy(*a, _orig=orig, _name=name, **k):
            calls.append(_name)
            return _orig(*a, **k)
        monkeypatch.setattr(mod, name, spy)
    W, X, b = RNG.standard_normal((4, 3)), RNG.standard_normal((5, 4)), RNG.standard_normal(3)
    v, g = _mixed(lambda W, X, b: np.sum(np.exp(0.1 * (X @ W + b) - b)), W, X, b)
    assert calls == [], calls
    np.testing.assert_allclose(v, np.sum(np.exp(0.1 * (X @ W + b) - b)), rtol=1e-13)


# --- array functions: the call plan read from code objects -------------------------------------
def test_call_plans_from_code_objects_equal_the_signature_ones():
    """`_plan` reads NumPy's and our parameters from their code objects (once per function and
    call shape, in a process's first trace); for every supported function and call shape it
    gives what binding to the signature gives (`_plan_from_signature`)."""
    import itertools
    from adjit.tracer import np_dispatch as d
    n = 0
    for name, fn in sorted(d.FUNCS.items()):
        try:
            names = list(d.signature(d.numpy_function(name)).parameters)
        except (ValueError, TypeError, AttributeError):
            names = ["axis", "keepdims"]
        cands = list(dict.fromkeys(names + ["out", "bogus", "axis", "dtype"]))
        for nargs in range(5):
            for r in range(3):
                for keys in itertools.permutations(cands, r):
                    want = d._plan_from_signature(name, fn, nargs, keys)
                    assert d._plan(name, fn, nargs, keys) == want, (name, nargs, keys)
                    n += 1
    assert n > 10000


def test_call_plans_build_no_signature(monkeypatch):
    from adjit.tracer import np_dispatch as d
    calls = []
    orig = d._Signature.of.__func__

    def spy(cls, f):
        calls.append(f)
        return orig(cls, f)
    monkeypatch.setattr(d._Signature, "of", classmethod(spy))
    monkeypatch.setattr(d, "_PLANS", {})
    d._signatures.cache_clear()
    x = RNG.standard_normal((4, 3))

    def f(x):
        return np.sum(np.max(x, axis=1, keepdims=True) * np.mean(x, 0) + np.sum(x, axis=0))
    v, g = adjit.value_and_grad(f)(x)
    assert calls == []
    np.testing.assert_allclose(g, central_diff(f, x), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(v, f(x), rtol=1e-14)


# --- x[i], x[i, j]: integer index arrays on the leading dims ------------------------------------
LEADING = [
    ("one array", (6, 5), lambda x, y: x[y % 6]),
    ("one negative array", (6, 5), lambda x, y: x[np.array([-1, 0, -6, 5])]),
    ("rows and labels", (6, 5), lambda x, y: x[np.arange(6), y]),
    ("labels and rows", (5, 6), lambda x, y: x[y, np.arange(6)]),
    ("two constants", (6, 5), lambda x, y: x[np.array([[0], [-1]]), np.array([1, -2, 4])]),
    ("traced pair", (6, 5), lambda x, y: x[y, y]),
    ("3-d, two", (6, 5, 2), lambda x, y: x[np.arange(6), y]),
    ("3-d, one", (6, 5, 2), lambda x, y: x[y]),
    ("3-d, three", (6, 5, 2), lambda x, y: x[np.arange(6), y, np.array(-1)]),
    ("0-d traced", (6, 5), lambda x, y: x[y[2], y]),
    ("int32 and uint8", (6, 5), lambda x, y: x[np.arange(6, dtype=np.int32),
                                              np.array([4, 0, 1, 1, 2, 3], np.uint8)]),
]


@pytest.mark.parametrize("name,shape,f", LEADING, ids=[c[0] for c in LEADING])
def test_leading_index_arrays_record_what_the_general_path_records(name, shape, f, monkeypatch):
    from adjit.tracer import np_indexing
    x = RNG.standard_normal(shape)
    y = np.array([0, 4, 2, 1, 3, 4])
    short = adjit.make_ir(f)(x, y)
    monkeypatch.setattr(np_indexing, "_leading_arrays", lambda key, nd: None)
    general = adjit.make_ir(f)(x, y)
    assert str(short) == str(general)
    assert len(short.consts) == len(general.consts)
    for a, b in zip(short.consts, general.consts):
        a, b = np.asarray(getattr(a, "val", a)), np.asarray(getattr(b, "val", b))
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype and a.shape == b.shape
    monkeypatch.undo()
    want = f(x, y)
    got = adjit.jit(f)(x, y)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_leading_index_arrays_skip_the_general_classification(monkeypatch):
    from adjit.tracer import np_indexing
    calls = []
    orig = np_indexing._classify
    monkeypatch.setattr(np_indexing, "_classify", lambda *a: calls.append(1) or orig(*a))
    x, y = RNG.standard_normal((6, 5)), np.array([0, 4, 2, 1, 3, 4])
    v, g = adjit.value_and_grad(lambda x: np.sum(x[np.arange(6), y] ** 2) + np.sum(x[y] ** 3))(x)
    assert calls == []
    np.testing.assert_allclose(g, central_diff(lambda t: np.sum(t[np.arange(6), y] ** 2) +
                                               np.sum(t[y] ** 3), x), rtol=1e-6)
    x[np.arange(6), 1:]  # a slice too: the general path
    jax_like = adjit.jit(lambda x: x[np.arange(6), 1:])(x)
    np.testing.assert_array_equal(jax_like, x[np.arange(6), 1:])
    assert calls == [1]


# --- reductions: one operand, one int axis ---------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32, np.int64, np.bool_])
def test_reductions_by_int_axis_match_numpy(dtype):
    x = (RNG.standard_normal((3, 4, 2)) * 3).astype(dtype)
    for name in ("sum", "mean", "max", "min", "prod", "var", "argmax", "cumsum", "all", "any"):
        fn = getattr(np, name)
        for axis in range(-4, 4):
            for kw in ({}, {"keepdims": True}) if name != "cumsum" else ({},):
                try:
                    want = fn(x, axis=axis, **kw)
                except Exception as e:  # noqa: BLE001 (NumPy's refusal, e.g. AxisError)
                    with pytest.raises(type(e) if not isinstance(e, ValueError) else ValueError):
                        adjit.jit(lambda t: fn(t, axis=axis, **kw))(x)
                    continue
                got = adjit.jit(lambda t: fn(t, axis=axis, **kw))(x)
                assert got.dtype == want.dtype and got.shape == want.shape, (name, axis, kw)
                np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_graph_constants_never_share_the_callers_index_arrays():
    """An index array the caller made (no negative entry: nothing to wrap) is checked in place;
    what the graph keeps as a constant is an array of its own, whatever the key's form."""
    x, y = RNG.standard_normal((6, 5)), np.array([0, 4, 2, 1, 3, 4])
    i6, i5 = np.arange(6), np.array([4, 3, 2, 1, 0, 0])
    keys = [lambda: (i6,), lambda: (i6, y), lambda: (y, i5), lambda: (i6, i5),
            lambda: (i6[:, None], i5[None, :5]), lambda: (i6, slice(1, 3)),
            lambda: (slice(None), i5[:2]), lambda: (i6[[0, 2]], None, i5[:2])]
    for key in keys:
        def f(x, y):
            k = tuple(y if a is y else a for a in key())
            return x[k]
        g = adjit.make_ir(f)(x, y)
        for c in g.consts:
            c = np.asarray(getattr(c, "val", c))
            for a in (i6, i5, y):
                assert not np.shares_memory(c, a), key()
        np.testing.assert_array_equal(adjit.jit(f)(x, y), f(x, y))


@pytest.mark.parametrize("where", ["same level", "index below grad", "index in vmap",
                                   "index below vmap"])
def test_traced_index_wrap_records_what_bind_records(where, monkeypatch):
    """wrap_traced_index records its equation at the trace `bind` would pick (the index's:
    the axis size and the poison are literals): the graph equals the one recorded through
    `bind` (the general form, forced here)."""
    from adjit.ir import indexing
    x, y = RNG.standard_normal((6, 5)), np.array([0, 4, -2, 1, 3, 4])

    def loss(x, y):
        return np.sum(np.exp(x[np.arange(6), y]) * x[y % 6, 1])
    if where == "same level":
        def f(x, y):
            return adjit.grad(lambda t: loss(t, y + 0))(x)  # y's index computed at grad level
    elif where == "index below grad":
        f = adjit.value_and_grad(loss)
    elif where == "index in vmap":
        def f(x, y):
            return adjit.vmap(lambda r, i: r[i], in_axes=(0, 0))(x, y % 5)
    else:
        def f(x, y):
            return adjit.vmap(lambda r: r[y % 5] * r[0])(x)

    def graphs():
        g = adjit.make_ir(f)(x, y)
        return str(g), [np.asarray(getattr(c, "val", c)).tolist() for c in g.consts]
    short = graphs()

    class Other:  # no Node is of this type: the general form
        pass
    monkeypatch.setattr(indexing, "Node", Other)
    assert graphs() == short
    monkeypatch.undo()
    got = adjit.jit(f)(x, y)
    if where == "index in vmap":
        np.testing.assert_array_equal(got, [x[r, (y % 5)[r]] for r in range(6)])
    if where == "index below vmap":
        np.testing.assert_array_equal(got, x[:, y % 5] * x[:, :1])
