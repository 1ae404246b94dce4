"""jit with pytree arguments and results (issue 18 item 6): tuples, lists, dicts, namedtuples,
None entries, nested structures, Python scalars as leaves, the same array twice, static
arguments; results and their structure against jax.jit (x64) of the same Python function
(written with operators and methods only, so it runs on both NumPy and JAX arrays). A
changed structure retraces; a structure seen before takes the generated hot path (no
pytree.flatten / unflatten per call)."""
from __future__ import annotations

import collections

import numpy as np
import pytest

import adjit
from adjit import jit
from adjit.tracer import pytree

from peers import require

jax = require("jax")
jax.config.update("jax_enable_x64", True)
tree_util = jax.tree_util

P = collections.namedtuple("P", "w b")
Q = collections.namedtuple("Q", "w b")  # the same fields, another type


def _rng(seed):
    return np.random.default_rng(seed)


def _tree(kind, seed):
    r = _rng(seed)
    A, B, C, D = (r.standard_normal(s) for s in ((3, 2), (2,), (2, 4), (4,)))
    return {
        "tuple": (A, B, C, D),
        "list": [A, B, C, D],
        # inserted out of order: JAX (and adjit) flatten dicts in sorted key order
        "dict": {"w2": C, "b1": B, "w1": A, "b2": D},
        "namedtuple": P(A, B),
        "nested": ({"w": A, "b": [B, None]}, P(C, (D,)), None),
        "none": (None, A, None),
        "scalars": {"w": A, "lr": float(r.uniform(0.1, 1.0)), "n": 3, "flag": True},
        "int_dict": {1: A, 0: B},
        "empty": ((), {}, [], A),
    }[kind]


def _double(p):
    """Every array leaf doubled, the structure kept; plus one scalar summary."""
    leaves, td = tree_util.tree_flatten(p)
    new = [x * 2.0 if hasattr(x, "shape") and x.shape != () else x for x in leaves]
    total = 0.0
    for x in leaves:
        if hasattr(x, "shape") and x.shape != ():
            total = total + (x * x).sum()
    return tree_util.tree_unflatten(td, new), total


KINDS = ["tuple", "list", "dict", "namedtuple", "nested", "none", "scalars", "int_dict",
         "empty"]


def _same(got, want):
    """Structures equal (JAX's treedefs, dict key order included) and leaves close."""
    assert tree_util.tree_structure(got) == tree_util.tree_structure(want), (got, want)
    gl, wl = tree_util.tree_leaves(got), tree_util.tree_leaves(want)
    assert len(gl) == len(wl)
    for g, w in zip(gl, wl):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12, atol=1e-12)
    for g, w in zip(_dicts(got), _dicts(want)):
        assert list(g) == list(w)


def _dicts(t):
    if isinstance(t, dict):
        yield t
        for v in t.values():
            yield from _dicts(v)
    elif isinstance(t, (tuple, list)):
        for v in t:
            yield from _dicts(v)


@pytest.mark.parametrize("kind", KINDS)
def test_pytree_arguments_and_results_match_jax(kind):
    jf, jj = jit(_double), jax.jit(_double)
    for seed in range(25):  # trace, replays, and (once compiled) the generated hot path
        p = _tree(kind, seed)
        got = jf(p)
        _same(got, jj(p))
        # fresh outputs: no result array is an argument array
        for g in tree_util.tree_leaves(got):
            for a in tree_util.tree_leaves(p):
                if isinstance(g, np.ndarray) and isinstance(a, np.ndarray):
                    assert not np.shares_memory(g, a)
    assert jf.traces == 1  # values changed (Python floats included), the structure did not


def test_scalar_leaves_are_runtime_inputs():
    """A Python float in the parameters (a learning rate) changes every call: no retrace, and
    each call uses its own value (issue 14 item 3: not a literal of the graph)."""
    def step(p, g):
        return {k: p[k] - p["lr"] * g[k] for k in ("w", "b")}
    jf, jj = jit(step), jax.jit(step)
    r = _rng(0)
    w, b = r.standard_normal((3, 3)), r.standard_normal(3)
    for i in range(25):
        p = {"w": w, "b": b, "lr": 0.01 * (i + 1)}
        g = {"w": w * i, "b": b + i}
        _same(jf(p, g), jj(p, g))
    assert jf.traces == 1


@pytest.mark.filterwarnings("ignore:adjit.jit")
def test_changed_structure_retraces_and_each_structure_stays_cached():
    def f(p):
        leaves = tree_util.tree_leaves(p)
        out = leaves[0] * 1.0
        for k, x in enumerate(leaves[1:], 2):
            out = out + k * x
        return out
    jf, jj = jit(f), jax.jit(f)
    a, b = np.arange(3.0), np.arange(3.0) + 10
    structures = [(a, b), [a, b], {"x": a, "y": b}, {"x": a, "z": b}, {"y": a, "z": b},
                  P(a, b), Q(a, b), (a, b, None), (None, a, b), ((a,), b), {"x": (a, b)},
                  {"x": a, "y": b, "z": None}, {"x": a, "y": None}]
    for rnd in range(3):
        for k, s in enumerate(structures):
            _same(jf(s), jj(s))
            assert jf.traces == (k + 1 if rnd == 0 else len(structures)), (rnd, k, s)
    # a dict with the same number of keys but other names is never read with the old keys
    assert jf({"x": a, "q": b}).tolist() == jj({"x": a, "q": b}).tolist()


def test_leaf_kind_change_retraces():
    """A leaf that was an array and is now a Python float (or another dtype) retraces."""
    def f(p):
        return p[0] * 2 + p[1]
    jf, jj = jit(f), jax.jit(f)
    a = np.arange(4.0)
    for p in [(a, a), (a, 1.5), (a, a), (a, 2), (a, np.float32(1.5)), (a, a.astype(np.float32)),
              (a, True), (a, 1.5)]:
        _same(jf(p), jj(p))
    assert jf.traces == 6


def test_same_array_twice_and_aliasing_results():
    def f(p):
        return {"s": p["x"] + p["y"], "x": p["x"] * 1.0, "t": (p["y"] - p["x"],)}
    jf, jj = jit(f), jax.jit(f)
    for i in range(25):
        a = np.arange(4.0) + i
        for p in ({"x": a, "y": a}, {"x": a, "y": a + 1}):
            got = jf(p)
            _same(got, jj(p))
            assert not np.shares_memory(got["x"], a)


def test_static_arguments_with_pytrees():
    def f(p, n, mode):
        out = p["w"] * n
        return (out, {"b": p["b"] + n}) if mode == "pair" else out
    jf = jit(f, static_argnums=(1, 2))
    jj = jax.jit(f, static_argnums=(1, 2))
    r = _rng(1)
    for n, mode in [(2, "pair"), (3, "pair"), (2, "one"), (2, "pair"), (None, "x")] * 3:
        p = {"w": r.standard_normal(3), "b": r.standard_normal(2)}
        if n is None:
            with pytest.raises(TypeError):
                f(p, n, mode)
            continue
        _same(jf(p, n, mode), jj(p, n, mode))
    assert jf.traces == 3
    # keyed by type as well as value (jit's documented static semantics): True is not 1
    jf(p, 1, "one"), jf(p, True, "one")
    assert jf.traces == 5


def _loss(p, X, y):
    """Operators only: runs on NumPy (adjit) and on JAX arrays."""
    if isinstance(p, dict):
        W1, b1, W2, b2 = p["W1"], p["b1"], p["W2"], p["b2"]
    elif isinstance(p, P):
        (W1, b1), (W2, b2) = p.w, p.b
    else:
        (W1, b1), (W2, b2) = p
    h = X @ W1 + b1
    h = h * h
    z = h @ W2 + b2 - y
    return (z * z).mean()


def _params(kind, r):
    W1, b1 = r.standard_normal((5, 4)), r.standard_normal(4)
    W2, b2 = r.standard_normal((4, 2)), r.standard_normal(2)
    return {"dict": {"W2": W2, "b1": b1, "W1": W1, "b2": b2},
            "tuple": ((W1, b1), (W2, b2)),
            "list": [[W1, b1], [W2, b2]],
            "namedtuple": P((W1, b1), (W2, b2))}[kind]


@pytest.mark.parametrize("kind", ["dict", "tuple", "list", "namedtuple"])
def test_jit_value_and_grad_of_params_pytree_matches_jax(kind):
    step = jit(adjit.value_and_grad(_loss))
    jstep = jax.jit(jax.value_and_grad(_loss))
    for seed in range(25):
        r = _rng(seed)
        p, X, y = _params(kind, r), r.standard_normal((6, 5)), r.standard_normal((6, 2))
        (v, g), (jv, jg) = step(p, X, y), jstep(p, X, y)
        np.testing.assert_allclose(v, jv, rtol=1e-12)
        _same(g, jg)
    assert step.traces == 1


def _counting(monkeypatch):
    calls = []
    real_flatten, real_unflatten = pytree.flatten, pytree.unflatten
    monkeypatch.setattr(pytree, "flatten", lambda *a, **k: calls.append("f") or
                        real_flatten(*a, **k))
    monkeypatch.setattr(pytree, "unflatten", lambda *a, **k: calls.append("u") or
                        real_unflatten(*a, **k))
    return calls


HOT = [(k, lambda p: jit(_double), lambda k: (_tree(k, 0),)) for k in KINDS] + [
    ("vg-dict", lambda p: jit(adjit.value_and_grad(_loss)),
     lambda k: (_params("dict", _rng(0)), _rng(1).standard_normal((6, 5)),
                _rng(2).standard_normal((6, 2)))),
    ("static", lambda p: jit(lambda p, n, s, z: (p[0] * n, {"z": z}), static_argnums=(1, 2, 3)),
     lambda k: ((np.arange(3.0), None), 3, "x", None))]


@pytest.mark.parametrize("case", HOT, ids=[c[0] for c in HOT])
def test_hot_path_does_not_flatten_or_unflatten(monkeypatch, case):
    """Once a structure is known, a call checks it with generated code: the general
    pytree.flatten / unflatten are not called per call."""
    name, make, args = case
    args = args(name)
    jf = make(None)
    for _ in range(40):
        want = jf(*args)
    calls = _counting(monkeypatch)
    got = jf(*args)
    assert calls == []
    _same(got, want)


@pytest.mark.filterwarnings("ignore:adjit.jit")
def test_many_static_values_and_structures_stay_correct():
    """More static values and structures than the hot path keeps: each call still answers
    for its own values (cycling through them, in both orders)."""
    def f(p, n):
        return p[0] * n + (p[1] if len(p) > 1 else 0.0)
    jf = jit(f, static_argnums=1)
    a = np.arange(3.0)
    cases = [((a,) * k, n) for k in (1, 2, 3) for n in range(6)]
    for rnd in range(3):
        for p, n in cases if rnd % 2 == 0 else cases[::-1]:
            np.testing.assert_array_equal(jf(p, n), f(p, n))
    assert jf.traces == len(cases)


def test_tensor_and_traced_leaves_still_take_the_general_path():
    """Leaves the flattener does not handle (a grad's traced values, jit inside grad) work."""
    def f(p):
        return (p["a"] * p["b"]).sum()
    jf = jit(f)
    a, b = np.arange(3.0), np.arange(3.0) + 1
    for _ in range(3):
        jf({"a": a, "b": b})
    g = adjit.grad(lambda a: jf({"a": a, "b": b}))(a)
    np.testing.assert_allclose(g, jax.grad(lambda a: f({"a": a, "b": b}))(a))
