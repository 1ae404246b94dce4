"""What grad's eager tier pays per equation (issue 18's one-shot target): implementations that
skip NumPy's Python wrappers compute what those wrappers compute, bit for bit (NumPy or JAX as
the reference), and the wrappers are no longer called."""
from __future__ import annotations

import numpy as np
import pytest

from adjit.ir.core import REGISTRY
from adjit.ir.prims import structural
from peers import require

DOTS = [((6,), (6,), (0,), (0,)), ((3, 4), (4,), (1,), (0,)), ((4,), (4, 5), (0,), (0,)),
        ((4, 3), (5, 4), (0,), (1,)), ((2, 3, 4), (4, 3, 5), (1, 2), (1, 0)),
        ((6,), (2,), (), ()), ((7, 9), (9, 33), (1,), (0,)), ((3, 0), (0, 2), (1,), (0,))]


@pytest.mark.parametrize("dt", ["float64", "float32", "int64", "int32"])
@pytest.mark.parametrize("xs,ys,lc,rc", DOTS)
def test_dot_general_is_tensordots_product_without_its_wrapper(xs, ys, lc, rc, dt, monkeypatch):
    rng = np.random.default_rng(len(xs) * 10 + len(ys))
    x = (rng.standard_normal(xs) * 10).astype(dt)
    y = (rng.standard_normal(ys) * 10).astype(dt)
    want = np.tensordot(x, y, axes=(lc, rc))
    calls = []
    real = np.tensordot
    monkeypatch.setattr(np, "tensordot", lambda *a, **k: calls.append(1) or real(*a, **k))
    for _ in range(2):  # the first call works the shapes out, the second reads them
        got = REGISTRY["dot_general"].impl(x, y, contract=(lc, rc), batch=((), ()))
        assert got.shape == want.shape and got.dtype == want.dtype
        assert got.tobytes() == want.tobytes()
    assert calls == []


@pytest.mark.parametrize("shape,axis", [((6,), 0), ((3, 4), 0), ((3, 4), 1), ((2, 3, 4), 2),
                                        ((0, 3), 1)])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("dt", ["float64", "float32", "int64"])
def test_cumsum_matches_numpy_without_its_wrappers(shape, axis, reverse, dt, monkeypatch):
    x = (np.random.default_rng(3).standard_normal(shape) * 10).astype(dt)
    if reverse:
        want = np.flip(np.cumsum(np.flip(x, axis), axis=axis, dtype=x.dtype), axis)
    else:
        want = np.cumsum(x, axis=axis, dtype=x.dtype)
    calls = []
    for name in ("cumsum", "flip"):
        real = getattr(np, name)
        monkeypatch.setattr(np, name, (lambda r: lambda *a, **k: calls.append(1) or r(*a, **k))(
            real))
    got = REGISTRY["cumsum"].impl(x, axis=axis, reverse=reverse)
    assert calls == []
    assert got.shape == want.shape and got.dtype == want.dtype
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("shape,low,high,interior", [
    ((4,), (1,), (0,), (0,)), ((5,), (0,), (1,), (0,)), ((3, 2), (1, 0), (0, 2), (1, 0)),
    ((3,), (0,), (0,), (3,)), ((0,), (2,), (1,), (0,)), ((2, 3), (0, 0), (0, 0), (0, 0))])
def test_pad_matches_jax_without_a_shape_rule(shape, low, high, interior, monkeypatch):
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    x = np.random.default_rng(5).standard_normal(shape)
    want = np.asarray(jax.lax.pad(jax.numpy.asarray(x), 0.0, list(zip(low, high, interior))))
    asked = []
    real = structural._pad_rule
    monkeypatch.setattr(structural, "_pad_rule", lambda *a, **k: asked.append(1) or real(*a, **k))
    got = REGISTRY["pad"].impl(x, low=low, high=high, interior=interior)
    assert asked == []  # (the rule built two ATypes per call of the impl)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == x.dtype
    with pytest.raises(ValueError, match="negative padding"):
        REGISTRY["pad"].impl(x, low=(-1,) * len(shape), high=high, interior=interior)


# --- frames per traced operation and per grad call -------------------------------------------
def _frames(fn):
    """(file's directory/basename, function name) of every Python frame `fn()` runs."""
    import os
    import sys
    seen = []

    def prof(frame, event, arg):
        if event == "call":
            c = frame.f_code
            d, base = os.path.split(c.co_filename)
            seen.append((os.path.basename(d) + "/" + base, c.co_name))
    sys.setprofile(prof)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return seen


X6 = np.linspace(-0.9, 1.1, 6)


def test_a_traced_operation_runs_no_bind_dispatch_or_init_frames():
    """np.sin(t), t * t and 0.3 * t on a grad trace record through `_record` directly: no
    `bind` (it would only find the trace they already know), no `_call` or `_np` helper, and a
    TracedArray is made by one frame (`__new__` sets its fields; `__init__` was a second)."""
    from adjit.tracer.trace_args import leaf_info, make_input, tracing
    with tracing("grad") as tr:
        node, t = make_input(leaf_info(X6), tr)
        for op, ref in ((lambda m, a: m.sin(a), None), (lambda m, a: a * a, None),
                        (lambda m, a: 0.3 * a, None), (lambda m, a: m.exp(a) / a, None)):
            op(np, t)  # (first-time work: caches filled)
            out = []
            names = _frames(lambda: out.append(op(np, t)))
            assert ("ir/core.py", "bind") not in names
            assert ("tracer/np_dispatch.py", "_call") not in names
            assert ("tracer/ndarray.py", "_np") not in names
            assert ("tracer/ndarray.py", "__init__") not in names
            assert ("tracer/ndarray.py", "__new__") in names
            assert out[0].weak is False and out[0].shape == (6,)
            np.testing.assert_array_equal(out[0]._n.val, op(np, X6))  # NumPy's bits


def test_grad_call_frames_without_helpers(auto_tier):
    """A grad call of f(x) = sum(sin(x) * x): the backward accumulates cotangents and reads
    operands inline (no `_accumulate` or list-comprehension frame per rule), the arithmetic of
    the rules is `bind` itself (no ops.mul frame), an array argument is flattened and rebuilt
    without the nested pytree walker, the trace is entered without new_trace's frames,
    grad(f) copies f's attributes without functools.update_wrapper, and argnums, the float
    check, the results' regrouping and freshness take no helper frames for an array argument. The gradient is NumPy's
    formula, bit for bit (cos(x) * x + sin(x) is what the rules compute, in that order)."""
    import adjit

    def f(x):
        return np.sum(np.sin(x) * x)
    adjit.grad(f)(X6)
    got = []
    names = _frames(lambda: got.append(adjit.grad(f)(X6)))
    for name in [("ir/autodiff.py", "_accumulate"), ("ir/autodiff.py", "<listcomp>"),
                 ("ir/ops.py", "mul"), ("ir/ops.py", "add"), ("tracer/pytree.py", "rec"),
                 ("ir/core.py", "__enter__"), ("transforms/autodiff.py", "<genexpr>"),
                 ("runtime/__init__.py", "<setcomp>"), ("tracer/trace_args.py", "<listcomp>")]:
        assert name not in names, name
    # the argument's leaf is looked at once (trace_call), not also by the float check
    assert names.count(("tracer/trace_args.py", "leaf_info")) == 1
    assert not [n for p, n in names if p.endswith("/functools.py") and n == "update_wrapper"]
    want = np.cos(X6) * X6 + np.sin(X6)
    np.testing.assert_array_equal(got[0], want)
    assert adjit.grad(f).__wrapped__.__name__ == "f" and adjit.grad(f).__name__ == "f"

