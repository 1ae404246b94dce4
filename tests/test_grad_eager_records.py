"""grad's eager tier runs the derivative rules over the trace's records themselves
(`ir.autodiff.eager_backward`): no Graph is extracted. Pinned against the extracted-graph path
(`extract` + `eager_vjp`, the same rules on the same values: bitwise), against JAX (x64) and
finite differences; and the per-call work it no longer repeats (extract, environment reads)."""
from __future__ import annotations

import os

import numpy as np
import pytest

import adjit
import adjit.runtime as runtime
from adjit.ir.autodiff import eager_backward, eager_vjp
from adjit.ir.graph import extract
from adjit.transforms import autodiff
from adjit.tracer.trace_args import out_nodes, trace_call
from peers import require

X = np.linspace(-0.9, 1.1, 6)
A = np.array([[2.0, 0.3, -0.1], [0.3, 1.5, 0.2], [-0.1, 0.2, 1.1]])
W = np.arange(6.0) / 6

# (body in terms of the module `m`, argument): each runs on NumPy (adjit) and jax.numpy
CASES = [
    ("m.sum(m.sin(x) * x)", X),
    ("m.sum(x * x) + m.sum(m.dot(x, W))", X),  # an operand read twice; a captured constant
    ("m.prod(1.0 + 0.1 * m.cos(x))", X),
    ("m.max(m.abs(x) ** 3)", X),
    ("m.sum(m.where(x > 0, x, 0.5 * x) ** 2)", X),
    ("m.linalg.norm(m.arctan(x))", X),
    ("m.var(m.sqrt(2.0 + x)) + m.mean(x[1:] - x[:-1])", X),
    ("m.sum(x.reshape(2, 3).T @ m.ones(2))", X),
    ("m.sum(m.outer(x, m.sinh(0.5 * x)))", X),
    ("m.sum(m.cumsum(m.log1p(m.exp(x))))", X),
    ("m.sum(m.ones(6) * 2.0)", X),  # the output does not depend on x: zeros
    # equations of several results (every result kept: its rule reads them all)
    ("(lambda r: m.sum(r[0] ** 2) + m.sum(r[1] ** 4))(m.linalg.eigh(x))", A),
    ("(lambda r: r[0] * r[1])(m.linalg.slogdet(x))", A),
]


def _fn(src, m):
    ns = {"m": m, "W": W}
    exec(compile(f"def f(x):\n    return {src}\n", f"<records {src}>", "exec"), ns)
    return ns["f"]


def _traced(src, x):
    t = trace_call(_fn(src, np), (x,), {}, autodiff._diff_select((0,), "grad"), "grad")
    return t, out_nodes(t.out, "f")[0][0]


@pytest.mark.parametrize("src,x", CASES)
def test_records_backward_matches_graph_path_and_jax(src, x):
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    t, n = _traced(src, x)
    ct = np.ones((), x.dtype)
    fast = eager_backward([n], t.trace, t.inputs, [ct], autodiff.INTERPRET_MIN_SIZE)
    vals = {}
    g = extract([n], t.trace, inputs=t.inputs, values=vals)
    slow = eager_vjp(g, vals, [ct], range(len(g.invars)))
    assert slow is not None and fast is not None
    (gx,), consts = fast
    np.testing.assert_array_equal(gx, slow[0])  # the same rules on the same values: bitwise
    assert {id(c.val) for c in consts} == {id(getattr(c, "val", c)) for c in g.consts}
    want = np.asarray(jax.grad(_fn(src, jax.numpy))(jax.numpy.asarray(x)))
    np.testing.assert_allclose(gx, want, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(adjit.grad(_fn(src, np))(x), want, rtol=1e-11, atol=1e-13)


def test_closure_guard_and_unused_input_against_finite_differences():
    w = np.array([1.0, 2.0, -1.0, 0.5, 0.0, 3.0])

    def f(x, y):
        if x[0] > 0:  # a guard on the trace
            return np.sum(np.sin(w * x))
        return np.sum(np.cos(x))
    df = adjit.grad(f, argnums=(0, 1))
    for s in (1.0, -1.0):
        x = X * s + 0.05 * s
        gx, gy = df(x, np.ones(3))
        eps = 1e-6
        fd = np.array([(f(x + eps * e, 0) - f(x - eps * e, 0)) / (2 * eps) for e in np.eye(6)])
        np.testing.assert_allclose(gx, fd, rtol=1e-7, atol=1e-9)
        np.testing.assert_array_equal(gy, np.zeros(3))


def test_errors_name_the_users_line_in_the_eager_tier(auto_tier):
    """A rule that refuses (no derivative in betainc's a) names the equation's line."""
    sp = require("scipy.special")

    def f(x):
        return np.sum(sp.betainc(1.0 + x ** 2, 2.0, 0.5))
    line = f.__code__.co_firstlineno + 1
    with pytest.raises(NotImplementedError) as ei:
        adjit.grad(f)(X)
    assert f"test_grad_eager_records.py:{line}" in str(ei.value)


def test_eager_tier_extracts_no_graph(monkeypatch):
    """The cold calls build no Graph: `extract` is not called (the old tier extracted one per
    call, then ran the rules over it)."""
    calls = []

    def counting(*a, **k):
        calls.append(1)
        return extract(*a, **k)
    monkeypatch.setattr(autodiff, "extract", counting)
    monkeypatch.setenv("ADJIT_TIER", "auto")
    eager = autodiff.EAGER_STATS["calls"]
    for k in range(3):
        f = _fn(f"m.sum(m.tanh(x) * x) * {1.0 + k}", np)
        np.testing.assert_allclose(adjit.grad(f)(X), (np.tanh(X) + X / np.cosh(X) ** 2) *
                                   (1.0 + k), rtol=1e-13)
    assert autodiff.EAGER_STATS["calls"] == eager + 3
    assert calls == []


def test_tier_mode_does_not_read_the_environment_per_call(monkeypatch):
    """tier_mode is asked on every grad call: an unchanged environment is not decoded again
    (os.environ.get ~0.5 us a variable), and any change is seen at once."""
    reads = []
    getitem = type(os.environ).__getitem__

    def counting(self, key):
        if key in ("ADJIT_TIER", "ADJIT_DISABLE_JIT"):
            reads.append(key)
        return getitem(self, key)
    monkeypatch.setenv("ADJIT_TIER", "auto")
    monkeypatch.delenv("ADJIT_DISABLE_JIT", raising=False)
    runtime.tier_mode()
    monkeypatch.setattr(type(os.environ), "__getitem__", counting)
    for k in range(5):
        adjit.grad(_fn(f"m.sum(m.sin(x)) * {2.0 + k}", np))(X)
    assert reads == []
    monkeypatch.setenv("ADJIT_TIER", "native")
    assert runtime.tier_mode() == "native"
    monkeypatch.setenv("ADJIT_DISABLE_JIT", "1")
    assert runtime.tier_mode() == "interp"
    monkeypatch.setenv("ADJIT_DISABLE_JIT", "0")
    monkeypatch.setenv("ADJIT_TIER", "bogus")
    with pytest.raises(ValueError, match="ADJIT_TIER='bogus'"):
        runtime.tier_mode()
    with pytest.raises(ValueError, match="ADJIT_TIER='bogus'"):  # refused every time
        runtime.tier_mode()
    monkeypatch.delenv("ADJIT_TIER")
    assert runtime.tier_mode() == "auto"


def test_a_dropped_result_of_a_multi_result_equation_refuses_in_both_paths():
    """slogdet's sign, computed and dropped, has no value left for the rule: both the record
    walk and the graph path refuse (the caller derives the graph), and grad stays right."""
    src = "m.linalg.slogdet(x)[1]"
    t, n = _traced(src, A)
    ct = np.ones((), A.dtype)
    vals = {}
    g = extract([n], t.trace, inputs=t.inputs, values=vals)
    assert eager_backward([n], t.trace, t.inputs, [ct], autodiff.INTERPRET_MIN_SIZE) is None
    assert eager_vjp(g, vals, [ct], [0]) is None
    np.testing.assert_allclose(adjit.grad(_fn(src, np))(A), np.linalg.inv(A).T, rtol=1e-12)


LITERAL_RULES = [("mul", (2.0, X)), ("mul", (X, 0.5)), ("div", (1.0, X + 2.0)),
                 ("div", (X, 6.0)), ("sub", (X, 1.0)), ("maximum", (X, 0.1)),
                 ("minimum", (0.1, X)), ("maximum", (X, 0))]


@pytest.mark.parametrize("name,args", LITERAL_RULES)
def test_rules_compute_no_cotangent_for_a_literal(name, args):
    """A literal operand (an equation's Python number) has no derivative: its rule returns
    None for it instead of computing a cotangent every caller drops; the other cotangent is
    the one the rule gives with the number as an array (bitwise)."""
    from adjit.ir.core import REGISTRY
    p = REGISTRY[name]
    out = p.impl(*[np.asarray(a, X.dtype) for a in args])
    ct = np.linspace(0.5, 1.5, 6)
    got = p.vjp(ct, *args, out=out)
    full = p.vjp(ct, *[np.asarray(a, X.dtype) for a in args], out=out)
    for g, f, a in zip(got, full, args):
        if isinstance(a, (int, float)):
            assert g is None
        else:
            np.testing.assert_array_equal(g, f)


def test_literal_operands_against_jax_and_torch():
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    torch = require("torch")
    src = "m.sum(m.maximum(2.0 * x / 3.0 - 1.0, 0.1) + 1.0 / (1.0 + m.exp(-x)) + m.minimum(0.2, x))"
    want = np.asarray(jax.grad(_fn(src, jax.numpy))(jax.numpy.asarray(X)))
    np.testing.assert_allclose(adjit.grad(_fn(src, np))(X), want, rtol=1e-13, atol=1e-15)
    ta = adjit.tensor(X, requires_grad=True)
    tt = torch.tensor(X, requires_grad=True)
    for T, t in ((adjit, ta), (torch, tt)):
        y = T.maximum(2.0 * t / 3.0 - 1.0, T.tensor(0.1, dtype=T.float64)) + 1.0 / (1.0 + T.exp(-t))
        y.sum().backward()
    np.testing.assert_allclose(ta.grad.numpy(), tt.grad.numpy(), rtol=1e-13, atol=1e-15)


GEMM_SHAPES = [((6,), (6,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
               ((1, 3), (3, 1)), ((0, 3), (3, 2)), ((2, 0), (0, 3))]


def _contract_gemm(a, b):
    """The general path: the contraction planned by ir/einsum.py."""
    from adjit.ir import einsum
    from adjit.ir.composites_products import ndim
    la = [("a", i) for i in range(ndim(a))]
    lb = [la[-1]] + ([("b", 1)] if ndim(b) == 2 else [])
    return einsum.contract([a, b], [la, lb], la[:-1] + lb[1:])


@pytest.mark.parametrize("sa,sb", GEMM_SHAPES)
@pytest.mark.parametrize("op", ["dot", "matmul"])
def test_dot_and_matmul_of_matrices_record_what_the_contraction_records(sa, sb, op, monkeypatch):
    """np.dot / @ of 1-D and 2-D operands record one dot_general directly: the same graph as
    the planned contraction (text), NumPy's values, JAX's gradients."""
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    from adjit.ir import composites_products
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=sa), rng.normal(size=sb)
    fn = (lambda x, y: np.dot(x, y)) if op == "dot" else (lambda x, y: x @ y)
    from adjit.ir import einsum
    planned = []
    contract = einsum.contract
    monkeypatch.setattr(einsum, "contract", lambda *a, **k: planned.append(1) or
                        contract(*a, **k))
    fast = str(adjit.make_ir(fn)(a, b))
    assert planned == []  # no contraction planned
    np.testing.assert_allclose(adjit.jit(fn)(a, b), fn(a, b), rtol=1e-13, atol=1e-14)
    monkeypatch.setattr(composites_products, "_gemm", _contract_gemm)
    assert str(adjit.make_ir(fn)(a, b)) == fast
    monkeypatch.undo()
    loss = (lambda x, y, m: m.sum(m.sin(m.dot(x, y)))) if op == "dot" else \
        (lambda x, y, m: m.sum(m.sin(x @ y)))
    got = adjit.grad(lambda x, y: loss(x, y, np), argnums=(0, 1))(a, b)
    want = jax.grad(lambda x, y: loss(x, y, jax.numpy), argnums=(0, 1))(a, b)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-12, atol=1e-14)


VJP_CASES = [
    ("(m.sin(x) * m.cumsum(x), m.sum(x ** 2))", X),  # two outputs
    ("m.dot(A6, m.tanh(x)) + m.prod(1.0 + 0.1 * x)", X),  # a captured constant, prod's tree
    ("(x, m.where(x > 0, x, 0.5 * x))", X),  # an output that is the argument itself
    ("(lambda r: (r[0] ** 2, r[1]))(m.linalg.eigh(x))", A),  # an equation of two results
]
A6 = np.arange(36.0).reshape(6, 6) / 36


@pytest.mark.parametrize("src,x", VJP_CASES)
def test_vjp_eager_tier_runs_the_records(src, x, monkeypatch):
    """vjp's eager tier runs the rules over the trace's records, as grad's does: no Graph is
    extracted (it extracted one per call), the pullback may run twice, reads the arguments as
    they were at the vjp call, and gives the bits of the extracted-graph route (`eager_vjp`,
    the same rules on the same values) and JAX's cotangents."""
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    ns = {"A6": A6}
    f = _fn(src, np)
    f.__globals__.update(ns)
    jf = _fn(src, jax.numpy)
    jf.__globals__.update(ns)
    monkeypatch.setenv("ADJIT_TIER", "auto")
    t = trace_call(f, (x,), {}, autodiff._float_select, "vjp")
    nodes = out_nodes(t.out, "f")[0]
    vals = {}
    g = extract(nodes, t.trace, inputs=t.inputs, values=vals)
    rng = np.random.default_rng(0)
    cts = [rng.uniform(0.5, 1.5, n.type.shape) for n in nodes]
    old = eager_vjp(g, vals, cts, range(len(g.invars)))  # the extracted-graph route
    calls = []

    def counting(*a, **k):
        calls.append(1)
        return extract(*a, **k)
    monkeypatch.setattr(autodiff, "extract", counting)
    eager = autodiff.EAGER_STATS["calls"]
    arg = x.copy()
    value, pull = adjit.vjp(f, arg)
    arg[:] = 7.0  # the pullback reads the argument as it was at the vjp call
    ct_tree = tuple(cts) if isinstance(value, tuple) else cts[0]
    (g1,), (g2,) = pull(ct_tree), pull(ct_tree)
    assert calls == [] and autodiff.EAGER_STATS["calls"] == eager + 2
    np.testing.assert_array_equal(g1, old[0])
    np.testing.assert_array_equal(g2, old[0])
    assert not np.shares_memory(g1, g2)
    jv, jpull = jax.vjp(jf, jax.numpy.asarray(x))
    want = np.asarray(jpull(tuple(map(jax.numpy.asarray, cts)) if isinstance(value, tuple)
                            else jax.numpy.asarray(cts[0]))[0])
    if "eigh" not in src:  # (eigenvector signs are a convention: values only)
        np.testing.assert_allclose(g1, want, rtol=1e-11, atol=1e-13)
    for a, b in zip(value if isinstance(value, tuple) else (value,),
                    jv if isinstance(jv, tuple) else (jv,)):
        if "eigh" not in src:
            np.testing.assert_allclose(a, np.asarray(b), rtol=1e-12, atol=1e-14)
