"""grad / value_and_grad / vjp without jit, first calls (issue 18: one-shot differentiation as
cheap as HIPS autograd): while a function is cold its adjoint is computed directly on the values
recorded while tracing (`ir.autodiff.eager_vjp`); no derived graph is built, optimised or planned.
Once hot, the structured path (cached vjp graph, interpreter plan, native code) takes over."""
from __future__ import annotations

import collections

import numpy as np
import pytest

import adjit
import adjit.runtime as runtime
from adjit.ir import passes
from adjit.runtime import HOT_CALLS, interpreter
from adjit.runtime.call import CompiledGraph
from adjit.transforms import autodiff
from peers import require

# grad's eager tier, which ADJIT_TIER=native skips by design: these tests run under auto
pytestmark = pytest.mark.usefixtures("auto_tier")
from peers import central_diff as fd_grad


def _jax():
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


# (source of the body in terms of the module `m`, argument) - written once, run on NumPy
# (adjit) and jax.numpy (the peer)
CASES = [
    "m.sum(m.sin(x) * x)",
    "m.sum(m.tanh(x) ** 2) + m.mean(m.exp(0.3 * x))",
    "m.prod(1.0 + 0.1 * m.cos(x))",
    "m.max(m.abs(x) ** 3)",
    "m.sum(m.where(x > 0, x, 0.5 * x) ** 2)",
    "m.linalg.norm(m.arctan(x))",
    "m.sum(m.cumsum(m.log1p(m.exp(x))))",
    "m.var(m.sqrt(2.0 + x))",
    "m.sum(x.reshape(2, 3).T @ m.ones(2))",
    "m.sum(m.outer(x, m.sinh(0.5 * x)))",
    "m.sum(x[1:] * x[:-1])",
    "m.sum(m.maximum(x, 0.1) / (1.0 + x ** 2))",
]
X = np.linspace(-0.9, 1.1, 6)


def _fn(src, m, tag=""):
    """f(x) = src, compiled from its own file name `tag` (code objects compiled from equal text
    and file name are equal, and the eager tier counts calls per code)."""
    ns = {"m": m}
    exec(compile(f"def f(x):\n    return {src}\n", f"<{tag or src}>", "exec"), ns)
    return ns["f"]


@pytest.fixture
def counted(monkeypatch):
    """Counts of what a structured grad call does: optimisation runs, plans built."""
    counts = {"optimize": 0, "plan": 0}
    opt, plan_init = passes.optimize, interpreter.Plan.__init__

    def optimize(g, *a, **k):
        counts["optimize"] += 1
        return opt(g, *a, **k)

    def init(self, g):
        counts["plan"] += 1
        plan_init(self, g)
    monkeypatch.setattr(passes, "optimize", optimize)
    monkeypatch.setattr(interpreter.Plan, "__init__", init)
    return counts


@pytest.mark.parametrize("src", CASES)
def test_first_call_matches_jax_and_builds_nothing(src, counted):
    jax = _jax()
    f = _fn(src, np, "first")
    builds = autodiff.CACHE_STATS["builds"]
    value, gr = adjit.value_and_grad(f)(X)
    assert autodiff.CACHE_STATS["builds"] == builds  # no vjp graph derived
    assert counted == {"optimize": 0, "plan": 0}  # no passes, no interpreter plan
    jf = _fn(src, jax.numpy)
    want = np.asarray(jax.grad(jf)(jax.numpy.asarray(X)))
    np.testing.assert_allclose(gr, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(value, float(jf(jax.numpy.asarray(X))), rtol=1e-13)
    assert isinstance(gr, np.ndarray) and gr.dtype == X.dtype and gr.shape == X.shape


@pytest.mark.parametrize("src", CASES)
def test_eager_and_structured_tiers_agree(src, monkeypatch):
    """The eager tier against the interpreter plan of the optimised vjp graph: bitwise (the
    passes drop only exact identities: x*1, pow x 1, pow x 2 -> x*x, ...); against native code
    within the math library's ulp bounds (docs/codegen.md)."""
    monkeypatch.setenv("ADJIT_TIER", "interp")
    # derived graphs of this test's own (another test's, of an equal structure up to its
    # literals, may hold native code from another tier: the interpreted calls must be this one's)
    monkeypatch.setattr(autodiff, "_CACHE", collections.OrderedDict())
    df = adjit.grad(_fn(src, np, "agree-interp"))
    eager = autodiff.EAGER_STATS["calls"]
    got = [df(X) for _ in range(HOT_CALLS + 2)]
    assert autodiff.EAGER_STATS["calls"] - eager == HOT_CALLS - 1  # then 3 interpreted calls
    for g in got[1:]:
        np.testing.assert_array_equal(g, got[0])
    monkeypatch.setenv("ADJIT_TIER", "deterministic")
    df = adjit.grad(_fn(f"({src}) * 1.5", np, "agree-native"))  # a structure of its own
    first = df(X)
    for k in range(HOT_CALLS + 1):
        np.testing.assert_allclose(df(X), first, rtol=4e-15, atol=1e-300)
    d = next(reversed(autodiff._CACHE.values()))
    assert isinstance(d.native, CompiledGraph)


def test_tier_switch_counts_the_eager_calls(monkeypatch):
    """Deterministic mode: calls 1 .. HOT_CALLS - 1 eager, the HOT_CALLS-th is native code."""
    monkeypatch.setenv("ADJIT_TIER", "deterministic")
    # derived graphs of this test's own: another test's `sum(sin(x) * x) * c` is the same
    # structure up to its literal (a promoted literal slot), whatever c
    monkeypatch.setattr(autodiff, "_CACHE", collections.OrderedDict())
    scale = 1.0 + np.random.default_rng().uniform()

    def f(x):
        return np.sum(np.sin(x) * x) * scale
    df = adjit.grad(f)
    eager = autodiff.EAGER_STATS["calls"]
    for k in range(HOT_CALLS - 1):
        df(X)
    assert autodiff.EAGER_STATS["calls"] == eager + HOT_CALLS - 1
    builds = autodiff.CACHE_STATS["builds"]
    gr = df(X)
    assert autodiff.CACHE_STATS["builds"] == builds + 1
    d = next(reversed(autodiff._CACHE.values()))
    assert isinstance(d.native, CompiledGraph)
    np.testing.assert_allclose(gr, np.sin(X) * scale + X * np.cos(X) * scale, rtol=1e-13)


def test_new_wrapper_each_call_still_gets_hot(monkeypatch):
    """grad(f)(x) written in a loop (a new wrapper per step) is the same function: hot."""
    monkeypatch.setenv("ADJIT_TIER", "interp")

    def loss(w):
        return np.sum(np.tanh(w) * w)
    eager = autodiff.EAGER_STATS["calls"]
    for _ in range(HOT_CALLS + 3):
        adjit.grad(loss)(X)
    assert autodiff.EAGER_STATS["calls"] - eager == HOT_CALLS - 1


def test_higher_order_first_call():
    jax = _jax()
    f = _fn("m.sum(m.sin(x) ** 2 * m.exp(0.2 * x))", np)
    jf = _fn("m.sum(m.sin(x) ** 2 * m.exp(0.2 * x))", jax.numpy)
    d2 = adjit.grad(lambda x: np.sum(adjit.grad(f)(x) * x))(X)
    want = np.asarray(jax.grad(lambda x: jax.numpy.sum(jax.grad(jf)(x) * x))(X))
    np.testing.assert_allclose(d2, want, rtol=1e-12, atol=1e-14)
    h = adjit.hessian(f)(X)
    np.testing.assert_allclose(h, np.asarray(jax.hessian(jf)(X)), rtol=1e-12, atol=1e-14)
    s = 0.7  # grad(grad(scalar function))
    g2 = adjit.grad(adjit.grad(lambda a: np.sin(a) * a ** 3))(s)
    np.testing.assert_allclose(g2, float(jax.grad(jax.grad(lambda a: jax.numpy.sin(a) * a ** 3))(s)),
                               rtol=1e-13)


def test_branches_follow_the_values():
    def f(x):
        return np.sum(x ** 2) if x[0] > 0 else np.sum(np.sin(x))
    df = adjit.grad(f)
    for s in (1.0, -1.0, 1.0, -1.0):
        x = X * s + 0.05 * s
        np.testing.assert_allclose(df(x), fd_grad(f, x), rtol=1e-7, atol=1e-9)


def test_closure_mutated_between_calls():
    w = np.array([1.0, 2.0, -1.0, 0.5, 0.0, 3.0])

    def f(x):
        return np.sum(np.sin(w * x))
    df = adjit.grad(f)
    for k in range(HOT_CALLS + 3):  # eager calls, then the structured ones
        w[k % 6] += 0.25
        np.testing.assert_allclose(df(X), w * np.cos(w * X), rtol=1e-13, atol=1e-15)


def test_results_are_fresh_and_aux_is_not_an_alias():
    x = np.array([1.0, 2.0, 3.0])
    W = np.array([0.5, -1.0, 2.0])
    (val, aux), gr = adjit.value_and_grad(lambda a: (np.sum(a * W), a), has_aux=True)(x)
    np.testing.assert_allclose(gr, W)
    assert not np.shares_memory(gr, W) and not np.shares_memory(aux, x)
    np.testing.assert_array_equal(aux, x)
    gr[:] = 7.0
    aux[:] = 9.0
    np.testing.assert_array_equal(W, [0.5, -1.0, 2.0])
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])
    g2 = adjit.grad(lambda a: np.sum(a))(x)  # the cotangent is a broadcast of the seed
    assert g2.flags.writeable and not np.shares_memory(g2, x)
    g2[:] = 5.0
    np.testing.assert_array_equal(adjit.grad(lambda a: np.sum(a))(x), [1.0, 1.0, 1.0])
    v, _ = adjit.value_and_grad(lambda a: a)(np.array(2.0))
    assert float(v) == 2.0


def test_vjp_first_call_matches_jax():
    jax = _jax()
    f = _fn("m.sin(x) * m.cumsum(x)", np)
    jf = _fn("m.sin(x) * m.cumsum(x)", jax.numpy)
    ct = np.linspace(1.0, 2.0, 6)
    builds = autodiff.CACHE_STATS["builds"]
    x = X.copy()
    value, pull = adjit.vjp(f, x)
    x[:] = 0.0  # the pullback reads the arguments as they were at the vjp call
    (gx,) = pull(ct)
    assert autodiff.CACHE_STATS["builds"] == builds
    jv, jpull = jax.vjp(jf, jax.numpy.asarray(X))
    np.testing.assert_allclose(value, np.asarray(jv), rtol=1e-13)
    np.testing.assert_allclose(gx, np.asarray(jpull(jax.numpy.asarray(ct))[0]), rtol=1e-12)


def test_big_arrays_take_the_optimised_plan(counted):
    x = np.linspace(-1, 1, autodiff.INTERPRET_MIN_SIZE)
    eager = autodiff.EAGER_STATS["calls"]
    gr = adjit.grad(lambda a: np.sum(np.tanh(a) ** 2))(x)
    assert autodiff.EAGER_STATS["calls"] == eager
    assert counted["optimize"] >= 1
    np.testing.assert_allclose(gr, 2 * np.tanh(x) / np.cosh(x) ** 2, rtol=1e-12, atol=1e-15)


def test_native_tier_compiles_before_returning(monkeypatch):
    monkeypatch.setenv("ADJIT_TIER", "native")
    eager = autodiff.EAGER_STATS["calls"]
    scale = 2.0 + np.random.default_rng().uniform()
    gr = adjit.grad(lambda a: np.sum(np.cos(a)) * scale)(X)
    assert autodiff.EAGER_STATS["calls"] == eager
    d = next(reversed(autodiff._CACHE.values()))
    assert isinstance(d.native, CompiledGraph)
    np.testing.assert_allclose(gr, -np.sin(X) * scale, rtol=1e-13)
    assert runtime.tier_mode() == "native"


def test_tensor_argument_result_is_not_its_storage():
    """Results are fresh (the value model) when the argument is an adjit.Tensor: the eager tier
    returns no buffer of the Tensor's storage."""
    t = adjit.tensor(np.array([2.0, -1.0]))
    v, pull = adjit.vjp(lambda a: a, t)
    (val, aux), g = adjit.value_and_grad(lambda a: (a.sum(), a), has_aux=True)(t)
    for r in (v, aux):
        assert not np.shares_memory(r.numpy(), t.numpy())
        r[0] = 5.0
    np.testing.assert_array_equal(t.numpy(), [2.0, -1.0])
    np.testing.assert_array_equal(g.numpy(), [1.0, 1.0])


@pytest.mark.parametrize("dt", ["float32", "float64", "int32", "int64", "bool"])
@pytest.mark.parametrize("other", [2.5, 3, True, "same", "f64", "i32"])
def test_promotion_shortcut_matches_numpy(dt, other):
    """promote's shortcut (one dtype among traced arrays, Python scalars next to floats) gives
    NumPy 2's result dtype and shape, as the general path does."""
    a = np.arange(1, 7).astype(dt).reshape(2, 3)
    b = {"same": a, "f64": np.ones(3), "i32": np.ones((2, 1), np.int32)}.get(other, other)
    want = (a * b) if not (dt == "bool" and isinstance(b, bool)) else (a & b)
    got = adjit.make_ir(lambda x: (x * b) if not (dt == "bool" and isinstance(b, bool))
                        else (x & b))(a)
    assert got.outvars[0].type.np_dtype == want.dtype and got.outvars[0].type.shape == want.shape


@pytest.mark.parametrize("dt", ["float32", "float64", "int32", "int64", "bool"])
def test_ufunc_loop_cache_matches_numpy(dt):
    """The resolved-loop cache of traced ufunc calls: every call (the first, the cached ones)
    gives NumPy's result dtype, and a refused loop is refused every time."""
    a = np.arange(1, 7).astype(dt)
    for _ in range(2):
        for uf, args in ((np.sin, ()), (np.add, (2.5,)), (np.multiply, (3,)),
                         (np.maximum, (a,)), (np.less, (1.5,))):
            want = uf(a, *args)
            if want.dtype == np.float16:  # a dtype traced arrays refuse (np.sin of bool)
                with pytest.raises(TypeError, match="float16"):
                    adjit.make_ir(lambda x: uf(x, *args))(a)
                continue
            g = adjit.make_ir(lambda x: uf(x, *args))(a)
            assert g.outvars[0].type.np_dtype == want.dtype, (uf, args)
        with pytest.raises(TypeError):
            adjit.make_ir(lambda x: np.sin(x, dtype=np.int8))(a)
