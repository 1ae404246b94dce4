"""The NumPy front's per-operation shortcuts (issue 18, one-shot grad) change nothing but cost.

Each shortcut stands for work the general path does: skipping `promote` when it would record
nothing, a ufunc call resolved once per (ufunc, operand dtypes), array functions bound by a plan
instead of `inspect.Signature.bind`, np.einsum_path asked once per (spec, shapes), and the
user's location found once per NumPy call instead of by a frame walk per recorded equation.
The tests check both halves: the work is not repeated (these fail on the code before the
shortcuts), and results, dtypes, refusals and source locations are what NumPy and the source
text say.
"""
from __future__ import annotations

import inspect
import itertools

import numpy as np
import pytest

import adjit
from adjit.ir import core


def _lines_of(f, *needles):
    """Line numbers (in f's file) of the lines of f's source containing each needle."""
    src, first = inspect.getsourcelines(f)
    out = []
    for nd in needles:
        hits = [first + i for i, line in enumerate(src) if nd in line]
        assert len(hits) == 1, (nd, hits)
        out.append(hits[0])
    return out


def _count_calls(monkeypatch, obj, name):
    calls = []
    orig = getattr(obj, name)

    def spy(*a, **k):
        calls.append(1)
        return orig(*a, **k)
    monkeypatch.setattr(obj, name, spy)
    return calls


# --- the work is not repeated ------------------------------------------------------------------
def test_plain_array_function_calls_do_not_bind_signatures(monkeypatch):
    calls = _count_calls(monkeypatch, inspect.Signature, "bind")

    def f(x):
        return np.sum(x) + np.mean(x, 0) + np.sum(x, axis=0, keepdims=False) + x.sum()
    x = np.linspace(0.1, 1.0, 6)
    g = adjit.grad(f)(x)
    np.testing.assert_allclose(g, np.full(6, 3.0 + 1 / 6), rtol=1e-14)
    assert calls == []


def test_einsum_path_is_asked_once_per_spec_and_shapes(monkeypatch):
    calls = _count_calls(monkeypatch, np, "einsum_path")
    W = np.arange(12.0).reshape(4, 3) / 7  # shapes no other test uses first

    def f(x):
        return np.sum(np.dot(x, W)) + np.sum(x @ W) + np.sum(np.dot(2.0 * x, W))
    x = np.linspace(-1.0, 1.0, 4)
    for _ in range(3):
        g = adjit.grad(f)(x)
        np.testing.assert_allclose(g, 4 * W.sum(axis=1), rtol=1e-13)
    assert len(calls) <= 1


def test_the_users_location_is_found_once_per_numpy_call(monkeypatch):
    calls = _count_calls(monkeypatch, core, "user_location")
    import adjit.tracer.ndarray as nd
    monkeypatch.setattr(nd, "user_location", core.user_location)

    def f(x):
        return np.var(x) + np.prod(x)  # a composite each: several equations per call
    x = np.linspace(0.5, 1.5, 6)
    n_eqns = len(adjit.make_ir(f)(x).eqns)
    assert n_eqns > 8
    # one per NumPy call (np.var, np.prod), one for `+`
    assert len(calls) <= 3, (len(calls), n_eqns)


# --- semantics unchanged ---------------------------------------------------------------------
def test_locations_name_the_users_lines():
    def helper(v):
        return v.astype(np.float64) * 2.0  # callback line

    def f(x):
        a = np.sin(x)  # ufunc line
        b = np.var(a)  # composite line
        c = np.piecewise(x, [x > 0], [helper, 0.0])  # piecewise line
        d = x.reshape(2, 3).sum(0)  # method line
        return b + np.sum(c) + np.sum(d * 3.0)  # return line
    x = np.linspace(-1.0, 1.0, 6)
    g = adjit.make_ir(f)(x)
    fname = inspect.getsourcefile(f)
    lu, lc, lp, lm, lr = _lines_of(f, "# ufunc line", "# composite line", "# piecewise line",
                                   "# method line", "# return line")
    (lcb,) = _lines_of(helper, "# callback line")
    by_prim = {}
    for e in g.eqns:
        assert e.loc is not None and e.loc[0] == fname, (e.prim.name, e.loc)
        by_prim.setdefault(e.prim.name, set()).add(e.loc[1])
    assert lu in by_prim["sin"]
    # np.var's equations (a subtraction of the mean, a product, sums) sit on its line
    assert lc in by_prim["reduce_sum"] and lc in by_prim["sub"]
    # the user's function inside np.piecewise is located at its own line, not the call's
    assert lcb in by_prim["mul"]
    assert lp in by_prim["select"]
    assert lm in by_prim["reshape"]
    assert lr in by_prim["add"]
    assert set().union(*by_prim.values()) <= {lu, lc, lp, lm, lr, lcb}


DTYPES = [np.float32, np.float64, np.int32, np.int64, np.bool_]
SCALARS = [2, 2.5, True]


@pytest.mark.parametrize("op", ["add", "subtract", "multiply", "true_divide", "power", "less",
                                "maximum"])
def test_binary_dtypes_and_values_match_numpy(op):
    uf = getattr(np, op)
    rng = np.random.default_rng(0)
    for da, db in itertools.product(DTYPES, DTYPES + SCALARS):
        a = (rng.uniform(0.5, 2.0, 4) * 3).astype(da)
        b = db if not isinstance(db, type) else (rng.uniform(0.5, 2.0, 4) * 3).astype(db)
        if op == "power" and (np.dtype(da).kind in "ib" and not isinstance(b, float) and
                              np.result_type(a, b).kind in "ib"):
            continue  # integer powers: NumPy's own rules (negative exponents) tested elsewhere
        for args in ((a, b), (b, a)):
            try:
                want = uf(*args)
            except TypeError:
                continue

            other, first = (args[1], True) if args[0] is a else (args[0], False)

            def f(x):
                return uf(x, other) if first else uf(other, x)
            got = adjit.vjp(f, a)[0]  # the value traced (recorded through the front)
            assert got.dtype == want.dtype, (op, args)
            np.testing.assert_allclose(got, want, rtol=1e-6)


def test_cached_ufunc_calls_still_refuse_keywords_and_name_the_line():
    def f(x):
        y = np.sin(x)
        return np.sin(y, where=y > 0)  # refused line
    x = np.linspace(0.1, 1.0, 4)
    (line,) = _lines_of(f, "# refused line")
    with pytest.raises(TypeError, match=rf"where=.*not supported.*:{line}\)"):
        adjit.grad(lambda x: np.sum(f(x)))(x)


def test_cached_array_function_calls_still_refuse_keywords():
    def f(x):
        return np.var(x) + np.var(x, correction=1)  # refused line
    x = np.linspace(0.1, 1.0, 4)
    (line,) = _lines_of(f, "# refused line")
    with pytest.raises(TypeError, match=rf"np.var\(\.\.\., correction=.*:{line}\)"):
        adjit.grad(f)(x)
    with pytest.raises(TypeError, match=r"out=.*cannot write a traced value"):
        adjit.grad(lambda x: np.sum(x) + np.sum(x, None, None, np.zeros(())))(x)


def test_float32_with_python_scalars_stays_float32_like_numpy():
    x = np.linspace(0.1, 1.0, 4).astype(np.float32)

    def f(x):
        return np.sum(2.5 * x + 1 - x / 3 + np.sin(x) ** 2)
    g = adjit.grad(f)(x)
    assert g.dtype == np.float32
    want = 2.5 - 1 / 3 + 2 * np.sin(x.astype(np.float64)) * np.cos(x.astype(np.float64))
    np.testing.assert_allclose(g, want, rtol=2e-6)


def test_broadcasting_binary_ops_of_traced_arrays_skip_promote(monkeypatch):
    """A bias add or a row-max subtraction between two traced float arrays of one trace (W2's
    step) records what `promote` records (a broadcast_in_dim of each operand not of the
    result's shape) without calling it; values, gradients (central differences) and the
    refusal of shapes that do not broadcast are NumPy's."""
    from adjit.tracer import promote
    from peers import central_diff
    calls = _count_calls(monkeypatch, promote, "promote")
    rng = np.random.default_rng(3)
    W = rng.normal(size=(5, 4))
    b = rng.normal(size=(4,))
    c = rng.normal(size=(5, 1))

    def f(W, b, c):
        z = W * 0.5 + b                      # (5, 4) + (4,)
        z = z - np.max(z, axis=1, keepdims=True)
        z = c * z                            # (5, 1) * (5, 4)
        return np.sum(b[None, :] / (2.0 + z ** 2)) + np.sum(np.maximum(c, z))

    val, grads = adjit.jit(adjit.value_and_grad(f, argnums=(0, 1, 2)))(W, b, c)
    assert calls == []
    np.testing.assert_allclose(val, f(W, b, c), rtol=1e-13)
    for i, (x, gx) in enumerate(zip((W, b, c), grads)):
        args = [W, b, c]

        def fi(v, i=i):
            a = list(args)
            a[i] = v
            return f(*a)
        np.testing.assert_allclose(gx, central_diff(fi, x), rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match=r"could not be broadcast together with shapes "
                                         r"\(5, 4\) \(3,\)") as ei:
        adjit.grad(lambda W, d: np.sum(W + d))(W, np.ones(3))
    assert "test_front_fast_paths.py" in str(ei.value)
