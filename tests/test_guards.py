"""Python control flow on traced values: guards, adjit.jit's cache and retracing (never a stale
answer), static arguments, constants bound by reference, inlining under other transforms."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
from adjit import GuardFailed, grad, jit, make_ir, value_and_grad
from adjit.transforms.autodiff import run_graph


def collatz_like(x):
    """data-dependent while and if: halve until small, then branch on the sign of the sum."""
    steps = 0
    while np.max(np.abs(x)) > 1.0:
        x = x / 2.0
        steps += 1
    if np.sum(x) > 0:
        return x * 2.0 + steps
    return -x - steps


def test_while_and_if_flip_both_ways():
    f = jit(collatz_like)
    inputs = [np.array([3.0, 1.0]), np.array([-3.0, -1.0]), np.array([0.5, 0.2]),
              np.array([3.0, 2.0]), np.array([-0.5, 0.1]), np.array([3.0, 1.0]),
              np.array([-3.0, -1.0]), np.array([100.0, -1.0]), np.array([0.5, 0.2])]
    for x in inputs:
        np.testing.assert_allclose(f(x), collatz_like(x))
    traces = f.traces
    for x in inputs:  # every path seen before: no new trace
        np.testing.assert_allclose(f(x), collatz_like(x))
    assert f.traces == traces
    rng = np.random.default_rng(0)
    for _ in range(40):
        x = rng.normal(0, 3, 2)
        np.testing.assert_allclose(f(x), collatz_like(x))


def test_replay_checks_guards_and_raises_guard_failed():
    g = make_ir(collatz_like)(np.array([3.0, 1.0]))
    assert "guard" in str(g)
    np.testing.assert_allclose(run_graph(g, [np.array([3.5, 1.0])])[0],
                               collatz_like(np.array([3.5, 1.0])))
    with pytest.raises(GuardFailed):
        run_graph(g, [np.array([-3.0, -1.0])])
    with pytest.raises(GuardFailed):
        run_graph(g, [np.array([8.0, 1.0])])  # needs a third halving


def test_same_shape_reuses_trace_and_shapes_key_the_cache():
    f = jit(lambda x: np.sin(x) * 2.0)
    for i in range(3):
        np.testing.assert_allclose(f(np.full(3, float(i))), np.sin(np.full(3, float(i))) * 2)
    assert f.traces == 1
    f(np.ones(4))
    f(np.ones(3, np.float32))
    assert f.traces == 3


def test_float_int_item_record_eq_guards():
    f = jit(lambda x, n: x * float(n) + int(np.sum(x > 0)) + n.item())
    x = np.array([1.0, -2.0])
    for n in (np.array(2.0), np.array(2.0), np.array(3.0), np.array(2.0)):
        np.testing.assert_allclose(f(x, n), x * float(n) + 1 + float(n))
    assert f.traces == 2
    np.testing.assert_allclose(f(np.array([1.0, 2.0]), np.array(2.0)), [6.0, 8.0])
    assert f.traces == 3
    nan_f = jit(lambda x: x * float(x[0]))
    assert np.isnan(nan_f(np.array([np.nan, 1.0]))).all()
    assert np.isnan(nan_f(np.array([np.nan, 2.0]))).all() and nan_f.traces == 1


def test_python_int_argument_loops():
    @jit
    def power(x, n):
        y = np.ones_like(x)
        for _ in range(n):
            y = y * x
        return y
    x = np.array([2.0, 3.0])
    np.testing.assert_allclose(power(x, 3), x ** 3)
    np.testing.assert_allclose(power(x, 2), x ** 2)
    np.testing.assert_allclose(power(x, 3), x ** 3)
    assert power.traces == 2


def test_static_argnums_and_argnames():
    calls = []

    def f(x, mode, scale=1.0):
        calls.append(mode)
        return np.sum(x ** 2) * scale if mode == "sq" else np.sum(np.abs(x)) * scale
    jf = jit(f, static_argnums=1, static_argnames="scale")
    x = np.array([1.0, -2.0])
    assert jf(x, "sq") == 5.0 and jf(x, "abs") == 3.0 and jf(x, "sq") == 5.0
    assert jf(x, "sq", scale=2.0) == 10.0 and jf(x * 2, "sq", scale=2.0) == 40.0
    assert calls == ["sq", "abs", "sq"]
    with pytest.raises(TypeError, match="hashable"):
        jit(f, static_argnums=1)(x, ["sq"])
    deco = jit(static_argnums=(1,))(f)
    assert deco(x, "abs") == 3.0


def test_closure_and_global_arrays_bound_by_reference():
    w = np.array([1.0, 2.0])
    f = jit(lambda x: np.sum(x * w) + np.sum(w * x[0]))
    assert f(np.ones(2)) == 6.0
    w[:] = [10.0, 20.0]
    assert f(np.ones(2)) == 60.0 and f.traces == 1
    g = make_ir(lambda x: x * w)(np.ones(2))
    assert "const #0" in str(g)


def test_boolean_mask_guards_on_the_count():
    f = jit(lambda x: np.cumsum(x[x > 0]))
    np.testing.assert_allclose(f(np.array([1.0, -1.0, 2.0])), [1.0, 3.0])
    np.testing.assert_allclose(f(np.array([-1.0, 5.0, 2.0])), [5.0, 7.0])  # same count: replay
    assert f.traces == 1
    np.testing.assert_allclose(f(np.array([4.0, 5.0, 2.0])), [4.0, 9.0, 11.0])
    assert f.traces == 2
    text = str(make_ir(lambda x: x[x > 0])(np.array([1.0, -1.0])))
    assert "guard" in text and "scatter_add" in text


def test_jit_outputs_pytrees_and_constants():
    f = jit(lambda x: {"y": x * 2, "n": 3, "t": (x.sum(), None)})
    out = f(np.ones(2))
    assert out["n"] == 3 and out["t"][1] is None
    np.testing.assert_allclose(out["y"], [2.0, 2.0])
    out = f(np.ones(2) * 2)
    assert out["t"][0] == 4.0


def test_jit_composes_with_grad_both_ways():
    f = lambda x: np.sum(np.where(x > 0, x ** 2, -x)) if np.sum(x) > -5 else np.sum(x)  # noqa
    x = np.array([1.0, -2.0, 3.0])
    want = np.where(x > 0, 2 * x, -1.0)
    np.testing.assert_allclose(grad(jit(f))(x), want)  # jit inside grad inlines
    jg = jit(grad(f))
    np.testing.assert_allclose(jg(x), want)
    np.testing.assert_allclose(jg(x * 2), np.where(x > 0, 4 * x, -1.0))
    np.testing.assert_allclose(jg(np.array([-9.0, 1.0])), [1.0, 1.0])  # other branch
    assert jg.traces == 2
    v, g = jit(value_and_grad(lambda x: np.sum(x ** 3)))(x)
    assert v == pytest.approx(np.sum(x ** 3))


def test_make_ir_of_grad_keeps_guards():
    def f(x):
        return np.sum(np.sin(x)) if np.max(x) > 0 else np.sum(np.cos(x))
    text = str(make_ir(grad(f))(np.array([0.5, 1.0])))
    assert "guard" in text and "cos" in text


def test_guards_under_grad_and_float_errors():
    # bool() of a comparison is fine under grad (a guard); float() of the value is not
    assert grad(lambda x: x ** 2 if x > 0 else -x)(3.0) == 6.0
    assert grad(lambda x: x ** 2 if x > 0 else -x)(-3.0) == -1.0
    with pytest.raises(TypeError, match="derivative"):
        grad(lambda x: x * int(x))(2.0)
    with pytest.raises(TypeError, match="derivative"):
        grad(lambda x: np.sum(x) * x.sum().item())(np.ones(2))
    # int() of an integer value carries no derivative: a guard
    assert grad(lambda x: x * int(np.argmax(np.stack([x, 2.0 * x]))))(1.0) == 1.0


def test_jit_with_tensors():
    f = jit(lambda t: (t * t).sum())
    x = adjit.tensor([1.0, 2.0])
    assert float(f(x)) == 5.0
    y = adjit.tensor([1.0, 3.0], requires_grad=True)
    out = f(y)  # replay records on the tape
    out.backward()
    np.testing.assert_allclose(y.grad.numpy(), [2.0, 6.0])
    assert f.traces == 1


def test_branch_limit_keeps_answers_right():
    f = jit(lambda x: x * float(x))
    for v in range(40):
        assert f(np.array(float(v))) == v * v
    assert len(next(iter(f.cache.values()))) <= 32


def test_float_of_values_without_a_derivative_is_a_guard():
    # a constant made inside grad carries no derivative: float() is fine (a guard)
    assert grad(lambda x: x * float(np.ones_like(x).sum()))(2.0) == 1.0
    assert grad(lambda x: x * float(adjit.stop_gradient(x)))(2.0) == 2.0
    # a value of an inner vmap that carries the outer grad's derivative is refused
    X = np.array([1.0, 2.0])
    with pytest.raises(TypeError, match="grad"):
        grad(lambda w: np.sum(adjit.vmap(lambda xi: xi * float(xi * w))(X)))(3.0)
    # float() of a mapped value is a per-example guard: the examples must agree
    with pytest.raises(ValueError, match="np.where"):
        grad(lambda w: np.sum(adjit.vmap(lambda xi: w * float(xi))(X)))(3.0)
