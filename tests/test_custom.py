"""adjit.custom_jvp / custom_vjp: user rules recorded as IR (custom_*_call equations holding the
traced graphs), composed with grad (to second order), jvp, jacobians, vmap and jit."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import adjit
from adjit import (custom_jvp, custom_vjp, grad, hessian, jacfwd, jacrev, jit, jvp, make_ir,
                   value_and_grad, vjp, vmap)
from adjit.ir import REGISTRY
from adjit.ir.autodiff import vjp_graph
from adjit.ir import eval_graph, parse_graph
from adjit.ir.printer import print_graph


@custom_jvp
def log1pexp(x):
    return np.log1p(np.exp(x))


@log1pexp.defjvp
def log1pexp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return log1pexp(x), t * (1 - 1 / (1 + np.exp(x)))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_log1pexp_is_numerically_stable():
    naive = grad(lambda x: np.log1p(np.exp(x)))
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.isnan(naive(np.float32(100.0)))
        assert grad(log1pexp)(np.float32(100.0)) == 1.0
    xs = np.array([-3.0, 0.0, 2.0, 50.0])
    np.testing.assert_allclose(vmap(grad(log1pexp))(xs), sigmoid(xs))
    assert log1pexp(2.0) == pytest.approx(np.log1p(np.exp(2.0)))


def test_custom_jvp_all_modes():
    x = np.array([-1.0, 0.5, 3.0])
    s = sigmoid(x)
    np.testing.assert_allclose(jvp(log1pexp, (x,), (np.ones(3),))[1], s)
    np.testing.assert_allclose(jacfwd(log1pexp)(x), np.diag(s))
    np.testing.assert_allclose(jacrev(log1pexp)(x), np.diag(s))
    np.testing.assert_allclose(grad(grad(log1pexp))(0.7), sigmoid(0.7) * (1 - sigmoid(0.7)))
    np.testing.assert_allclose(hessian(lambda v: np.sum(log1pexp(v)))(x), np.diag(s * (1 - s)))
    jg = jit(grad(lambda v: np.sum(log1pexp(v))))
    np.testing.assert_allclose(jg(x), s)
    np.testing.assert_allclose(jg(x + 1), sigmoid(x + 1))
    assert jg.traces == 1


def test_custom_rule_is_recorded_as_ir():
    g = make_ir(lambda v: np.sum(log1pexp(v)))(np.ones(2))
    assert "custom_jvp_call" in str(g)
    ag = str(make_ir(grad(lambda v: np.sum(log1pexp(v))))(np.ones(2)))
    assert "exp" in ag and "div" in ag  # the rule's primitives, not log1p's derivative


@custom_vjp
def clip_gradient(lo, hi, x):
    return x


def clip_fwd(lo, hi, x):
    return x, None


def clip_bwd(lo, hi, res, g):
    return (np.clip(g, lo, hi),)


clip_gradient = custom_vjp(clip_gradient.fun, nondiff_argnums=(0, 1))
clip_gradient.defvjp(clip_fwd, clip_bwd)


def test_clipped_gradient():
    f = lambda x: np.sum(clip_gradient(-0.5, 0.5, x) * np.array([3.0, 0.2, -4.0]))  # noqa
    np.testing.assert_allclose(grad(f)(np.ones(3)), [0.5, 0.2, -0.5])
    np.testing.assert_allclose(f(np.ones(3)), -0.8)
    np.testing.assert_allclose(vmap(grad(f))(np.ones((2, 3))), [[0.5, 0.2, -0.5]] * 2)
    jf = jit(grad(f))
    np.testing.assert_allclose(jf(np.ones(3) * 2), [0.5, 0.2, -0.5])
    assert "custom_vjp_call" in str(make_ir(f)(np.ones(3)))


@custom_vjp
def cube(x):
    return x ** 3


def cube_fwd(x):
    return cube(x), (x, x * x)


def cube_bwd(res, g):
    x, x2 = res
    return (3.0 * x2 * g,)


cube.defvjp(cube_fwd, cube_bwd)


def test_custom_vjp_residuals_and_higher_order():
    x = np.array([1.0, -2.0])
    np.testing.assert_allclose(grad(lambda v: np.sum(cube(v)))(x), 3 * x ** 2)
    # the second derivative differentiates the bwd graph (3 x^2 g): 6 x
    np.testing.assert_allclose(grad(lambda v: np.sum(grad(lambda u: np.sum(cube(u)))(v)))(x),
                               6 * x)
    y, pb = vjp(cube, x)
    np.testing.assert_allclose(pb(np.ones(2))[0], 3 * x ** 2)
    # forward mode is refused (as in JAX): see tests/test_outputs_aliasing.py
    with pytest.raises(TypeError, match="forward-mode"):
        jvp(cube, (x,), (np.ones(2),))
    np.testing.assert_allclose(jacrev(cube)(x), np.diag(3 * x ** 2))
    v, g = value_and_grad(lambda v: np.sum(cube(v) * 2.0))(np.float32(1.5))
    assert g == pytest.approx(6 * 1.5 ** 2) and type(g) is np.float32


def test_custom_vjp_pytree_args_and_closures():
    @custom_vjp
    def scaled(p, x):
        return p["a"] * x + p["b"]

    def fwd(p, x):
        return scaled(p, x), (p, x)

    def bwd(res, g):
        p, x = res
        return {"a": np.sum(g * x), "b": np.sum(g) * 10.0}, g * p["a"]

    scaled.defvjp(fwd, bwd)
    p = {"a": 2.0, "b": 1.0}
    gp, gx = grad(lambda p, x: np.sum(scaled(p, x)), argnums=(0, 1))(p, np.array([1.0, 2.0]))
    assert gp["a"] == 3.0 and gp["b"] == 20.0 and type(gp["b"]) is float
    np.testing.assert_allclose(gx, [2.0, 2.0])
    # a value captured from an enclosing transform: computed right, no cotangent through it
    outer = grad(lambda s: np.sum(scaled({"a": s, "b": 0.0}, np.array([1.0, 2.0]))))(3.0)
    assert outer == 3.0


def test_plain_call_and_errors():
    assert cube(2.0) == 8.0
    bad = custom_vjp(lambda x: x * 2)
    with pytest.raises(TypeError, match="defvjp"):
        grad(lambda x: bad(x))(1.0)
    bad.defvjp(lambda x: (x * 2, None), lambda r, g: g)
    with pytest.raises(TypeError, match="one cotangent per"):
        grad(lambda x: bad(x))(1.0)
    bad.defvjp(lambda x: (x * 2, None), lambda r, g: (np.ones(3),))
    with pytest.raises(ValueError, match="shape"):
        grad(lambda x: bad(x))(1.0)
    nojvp = custom_jvp(lambda x: x)
    with pytest.raises(TypeError, match="defjvp"):
        grad(nojvp)(1.0)


def test_tensor_arguments():
    @custom_jvp
    def softplus(x):  # PyTorch-style code: Tensors are traced as Tensors
        return (x.exp() + 1).log()

    @softplus.defjvp
    def softplus_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return softplus(x), t * x.sigmoid()

    t = adjit.tensor([0.0, 100.0])
    with np.errstate(over="ignore"):
        g = grad(lambda t: softplus(t).sum())(t)
    assert isinstance(g, adjit.Tensor)
    np.testing.assert_allclose(g.detach().numpy(), [0.5, 1.0])


def test_custom_primitives_registered_with_samples():
    for name in ("custom_vjp_call", "custom_jvp_call"):
        p = REGISTRY[name]
        assert p.batch is not None
        (args, params), = p.samples("f64", np.random.default_rng(0))
        out = p.impl(*args, **params)
        assert out.shape == args[0].shape
        assert name in repr(p) and repr(params["fun"]).startswith("'def ")
    g = make_ir(lambda v: np.sum(log1pexp(v)))(np.ones(2))
    vg = vjp_graph(g)
    text = print_graph(vg)
    assert text == print_graph(vjp_graph(g))  # printing is stable (structure keys)
    back = parse_graph(print_graph(g))  # the held graphs print as text and parse back
    assert print_graph(back) == print_graph(g)
    np.testing.assert_allclose(eval_graph(back, [np.ones(2)])[0], eval_graph(g, [np.ones(2)])[0])


@custom_vjp
def softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)


def softplus_fwd(x):
    return softplus(x), x


def softplus_bwd(x, g):
    return (g / (1.0 + np.exp(-x)),)


softplus.defvjp(softplus_fwd, softplus_bwd)


def _softplus_loss(x, w):
    return np.sum(softplus(x * w) * w)


def _log1pexp_loss(x, w):
    return np.sum(log1pexp(x * w) * w)


def _fd_grad(f, x, w, eps=1e-6):
    g = np.empty_like(x)
    for i in range(x.size):
        d = np.zeros_like(x)
        d.flat[i] = eps
        g.flat[i] = (f(x + d, w) - f(x - d, w)) / (2 * eps)
    return g


def _numpy_loss(x, w):
    return np.sum(np.logaddexp(0.0, x * w) * w)


@pytest.mark.parametrize("mode", ["native", "deterministic"])
def test_jit_of_a_custom_vjp_function_compiles(monkeypatch, mode):
    # The compile worker reads the graph as IR text: a custom_vjp_call's `fun` came back as its
    # text, codegen's inliner read `.graph` of it, and jit fell back to the interpreter with
    # "could not compile ... running it in the interpreter".
    from adjit.runtime.call import CompiledGraph
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(7) * 3, rng.uniform(0.5, 1.5, 7)
    monkeypatch.setenv("ADJIT_TIER", "interp")
    want_v = jit(_softplus_loss)(x, w)
    want_g = jit(grad(_softplus_loss))(x, w)
    np.testing.assert_allclose(want_v, _numpy_loss(x, w), rtol=1e-13)
    np.testing.assert_allclose(want_g, _fd_grad(_numpy_loss, x, w), rtol=1e-7, atol=1e-9)
    want_jv = jit(_log1pexp_loss)(x, w)  # a custom_jvp_call in the graph: inlined the same way
    np.testing.assert_allclose(want_jv, want_v, rtol=1e-13)
    monkeypatch.setenv("ADJIT_TIER", mode)
    # native: the first call traces, the second compiles; deterministic: the HOT_CALLS-th
    calls = 2 if mode == "native" else adjit.runtime.HOT_CALLS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn, want in ((jit(_softplus_loss), want_v), (jit(grad(_softplus_loss)), want_g),
                         (jit(_log1pexp_loss), want_jv)):
            for _ in range(calls):
                got = fn(x, w)
            (br,) = next(iter(fn.cache.values()))
            assert isinstance(br.graph.native, CompiledGraph), br.graph.native
            np.testing.assert_allclose(fn(x, w), want, rtol=1e-13)
            np.testing.assert_allclose(got, want, rtol=1e-13)


def test_graph_parameter_with_constants_compiles_in_process(native_tier):
    # a graph parameter holding constants prints their digest, not their values: the worker
    # cannot rebuild it from the text, so such a graph is compiled here (not an error)
    import warnings as w_
    from adjit.ir import ops as o
    from adjit.ir.core import Node, new_trace
    from adjit.ir.graph import extract
    from adjit.ir.prims.custom import bind_vjp, graph_of
    from adjit.runtime import run_graph
    from adjit.runtime.call import CompiledGraph
    t = adjit.ir.types.AType((3,), "float64")
    scale = np.array([1.0, -2.0, 0.5])
    fun = parse_graph("def f(a: f64[3]) -> f64[3]:\n  c: f64[3] = const #0\n"
                      "  b: f64[3] = mul a c\n  return b\n")
    fun.consts = [scale]
    fwd = graph_of(lambda a: (o.mul(a, scale), a), [t])
    bwd = graph_of(lambda a, ct: o.mul(ct, scale), [t, t])
    with new_trace("t") as tr:
        a = Node(None, t, None, tr)
        g = extract([bind_vjp([a], fun, fwd, bwd, (0, 0, 0))], tr, inputs=[a])
    x = np.array([0.5, 1.5, -3.0])
    with w_.catch_warnings():
        w_.simplefilter("error")
        (out,) = run_graph(g, [x])
    assert isinstance(g.native, CompiledGraph)
    np.testing.assert_allclose(out, x * scale, rtol=0, atol=0)
