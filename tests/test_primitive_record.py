"""A primitive is one place: one record in the registry, and every table is generated from it.

Two throwaway primitives are added with `registered(...)` (one record each, nothing else) and
then seen differentiated (against central differences), batched under vmap (against a Python
loop), compiled natively (against the NumPy reference), dispatched from NumPy, reachable as a
Tensor method with its grad_fn name, and covered by the registry and codegen sweeps; leaving the
block removes every trace of them. `cube` is elementwise with an expression lowering; `modf` has
two results (NumPy's np.modf: fractional and integral parts). `floor` and `ceil` are real
primitives added the same way, compared with NumPy and PyTorch.
"""
from __future__ import annotations

import numpy as np
import pytest

try:
    from tests import peers, sweep, test_codegen, test_registry
except ImportError:  # tests/ not a package on sys.path
    import peers
    import sweep
    import test_codegen
    import test_registry

import adjit
from adjit.codegen import LOWERINGS
from adjit.runtime import compile_graph
from adjit.ir import REGISTRY, eval_graph, parse_graph, print_graph, verify
from adjit.ir import ops as o
from adjit.ir.autodiff import jvp_graph, vjp_graph
from adjit.ir.core import Primitive, registered
from adjit.ir.passes import cse, dce
from adjit.ir.prims._helpers import FLOATS, NUMERIC, sample_array, unary_prim
from adjit.ir.types import AType
from adjit.runtime import cache
from adjit.tracer import np_dispatch
from peers import central_diff as _fd


# --- the throwaway records: everything about each is here ----------------------------------
def cube():
    return unary_prim(
        "cube", lambda x: x * x * x, lambda ct, x, out: o.mul(ct, o.mul(o.mul(x, x), 3.0)),
        dtypes=NUMERIC, lowering=("expr", lambda e, x: e.mul(e.mul(x, x), x)), cost=2,
        numpy=("cube",), torch=("cube",), grad_fn="CubeBackward0")


def _modf_rule(x):
    return (AType(x.shape, x.dtype), AType(x.shape, x.dtype))


def _modf_vjp(ct, x, out):
    cfrac, _ = ct  # the integral part is piecewise constant: no cotangent flows from it
    return [o.zeros(o.shape(x), o.dtype(x)) if cfrac is None else cfrac]


def _modf_jvp(tangents, x, out):
    t = tangents[0]
    return None if t is None else (t, o.zeros(o.shape(t), o.dtype(t)))


def _modf_lowering(e, x):
    whole = e.select(e.lt(x, 0.0), e.ceil(x), e.floor(x))  # trunc
    return e.sub(x, whole), whole


def modf():
    return Primitive(
        "modf", _modf_rule, lambda x: np.modf(x), _modf_vjp, _modf_jvp,
        lambda dt, rng: [([sample_array(rng, (3, 4), dt)], {}),
                         ([sample_array(rng, (), dt)], {})],
        dtypes=FLOATS, smooth=False, kind="unary", nout=2, lowering=("expr", _modf_lowering),
        numpy=("modf",))


@pytest.fixture
def throwaway():
    with registered(cube(), modf()) as prims:
        yield prims


def npcube(x):
    """What `np.cube(x)` would be, had NumPy a cube ufunc: the generated dispatch entry."""
    return np_dispatch.UFUNCS["cube"](x)


X = np.array([[0.3, -1.7, 2.2], [-0.4, 1.1, -2.6]])


# --- the throwaway primitives, seen everywhere ----------------------------------------------
def test_differentiated_against_finite_differences(throwaway):
    w = np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]])

    def f(x):
        frac, whole = np.modf(x)
        return np.sum(npcube(x) * w) + np.sum(frac * frac) + np.sum(whole * 0.5)

    def ref(x):
        frac, whole = np.modf(x)
        return float(np.sum(x ** 3 * w) + np.sum(frac * frac) + np.sum(whole * 0.5))

    np.testing.assert_allclose(adjit.grad(f)(X), _fd(ref, X), rtol=1e-6, atol=1e-6)
    t = np.linspace(-1, 1, X.size).reshape(X.shape)
    _, tan = adjit.jvp(f, (X,), (t,))
    np.testing.assert_allclose(tan, (ref(X + 1e-6 * t) - ref(X - 1e-6 * t)) / 2e-6, rtol=1e-6)
    # only the integral part used: a cotangent for one result, none for the other
    np.testing.assert_allclose(adjit.grad(lambda x: np.sum(np.modf(x)[1]))(X), np.zeros_like(X))


def test_batched_under_vmap(throwaway):
    cub, mf = throwaway
    got = adjit.vmap(lambda x: npcube(x) + np.modf(x)[0] * np.modf(x)[1])(X)
    want = np.stack([r ** 3 + np.modf(r)[0] * np.modf(r)[1] for r in X])
    np.testing.assert_allclose(got, want, rtol=1e-14)
    assert cub.batch is not None and mf.batch is not None


def test_compiled_natively(throwaway):
    assert LOWERINGS["cube"].kind == "ew" and LOWERINGS["modf"].kind == "split"
    text = "def f(a: f64[2,3]) -> (f64[2,3], f64[2,3], f64[2,3]):\n" \
           "  b: f64[2,3] = cube a\n  c: f64[2,3], d: f64[2,3] = modf b\n  return b, c, d\n"
    g = verify(parse_graph(text))
    got = compile_graph(g)([X])
    want = eval_graph(g, [X])
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-15)
    np.testing.assert_array_equal(want[1], np.modf(X * X * X)[0])
    # and through jit, with the derivative compiled too
    f = adjit.jit(adjit.grad(lambda x: np.sum(npcube(x) * np.modf(x)[0])))
    np.testing.assert_allclose(f(X), _fd(lambda x: float(np.sum(x ** 3 * np.modf(x)[0])), X),
                               rtol=1e-6)


def test_dispatched_from_numpy(throwaway):
    got = adjit.jit(lambda x: np.modf(x))(X)  # np.modf is a two-result ufunc
    for a, b in zip(got, np.modf(X)):
        np.testing.assert_array_equal(a, b)
    g = adjit.grad(lambda x: np.sum(npcube(x)))(X)
    np.testing.assert_allclose(g, 3 * X ** 2, rtol=1e-14)


def test_tensor_method_with_grad_fn(throwaway):
    torch = peers.require("torch")
    x = adjit.tensor(X, requires_grad=True)
    y = x.cube()
    assert type(y.grad_fn).__name__ == "CubeBackward0"
    (y * y).sum().backward()
    tx = torch.tensor(X, requires_grad=True)
    (tx.pow(3) ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(y.detach().numpy(), tx.pow(3).detach().numpy(), rtol=1e-15)


def test_registry_and_codegen_sweeps_include_them(throwaway):
    cases = [c for c in sweep.cases() if c.values[0] in ("cube", "modf")]
    assert {c.values[0] for c in cases} == {"cube", "modf"}
    for c in cases:
        name, dt, i = c.values
        test_registry.test_shape_rule_and_text(name, dt, i)
        test_codegen.test_compiled_matches_interpreter(name, dt, i)
        if dt in FLOATS:
            test_registry.test_vjp_jvp(name, dt, i)
            test_codegen.test_compiled_vjp_matches_interpreter(name, dt, i)
            if REGISTRY[name].smooth:
                test_registry.test_second_order(name, dt, i)


def test_leaving_the_block_leaves_no_trace():
    with registered(cube(), modf()):
        assert hasattr(adjit.Tensor, "cube") and "modf" in np_dispatch.UFUNCS
        assert "modf.0" in LOWERINGS
    assert "cube" not in REGISTRY and "modf" not in REGISTRY
    assert not {"cube", "modf", "modf.0", "modf.1"} & set(LOWERINGS)
    assert not {"cube", "modf"} & set(np_dispatch.UFUNCS)
    assert not hasattr(adjit.Tensor, "cube")
    with registered(cube()):  # and it can be registered again
        pass


def test_a_bad_registration_is_undone():
    with pytest.raises(ValueError, match="registered twice"):
        with registered(cube(), unary_prim("exp", np.exp, None)):
            pass  # pragma: no cover
    assert "cube" not in REGISTRY and "cube" not in LOWERINGS


# --- multi-result equations in the text form and the passes ---------------------------------
MODF_TEXT = ("def f(a: f64[3]) -> (f64[3], f64[3]):\n"
             "  b: f64[3], c: f64[3] = modf a\n"
             "  d: f64[3], e: f64[3] = modf a\n"
             "  f: f64[3] = add b e\n"
             "  return f, c\n")


def test_text_round_trip_verify_and_errors(throwaway):
    g = verify(parse_graph(MODF_TEXT))
    assert print_graph(g) == MODF_TEXT
    assert len(g.eqns[0].outvars) == 2
    with pytest.raises(Exception, match="modf has 2 results, 1 declared"):
        parse_graph("def f(a: f64[3]) -> f64[3]:\n  b: f64[3] = modf a\n  return b\n")
    with pytest.raises(Exception, match="exp has 1 result, 2 declared"):
        parse_graph("def f(a: f64[3]) -> f64[3]:\n  b: f64[3], c: f64[3] = exp a\n  return b\n")
    with pytest.raises(Exception, match="declared f64\\[3\\], i64\\[3\\] but the shape rule"):
        verify(parse_graph("def f(a: f64[3]) -> f64[3]:\n  b: f64[3], c: i64[3] = modf a\n"
                           "  return b\n"))
    with pytest.raises(Exception, match="defined twice"):
        parse_graph("def f(a: f64[3]) -> f64[3]:\n  b: f64[3], b: f64[3] = modf a\n"
                    "  return b\n")


def test_cse_merges_and_dce_keeps_a_partly_used_equation(throwaway):
    g = parse_graph(MODF_TEXT)
    g2 = dce(cse(g))
    assert [e.prim.name for e in g2.eqns] == ["modf", "add"]
    want = eval_graph(g, [X[0]])
    for a, b in zip(eval_graph(g2, [X[0]]), want):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(want[0], np.modf(X[0])[0] + np.modf(X[0])[1])
    # nothing used: the equation goes
    g3 = dce(parse_graph("def f(a: f64[3]) -> f64[3]:\n  b: f64[3], c: f64[3] = modf a\n"
                         "  return a\n"))
    assert g3.eqns == []


def test_vjp_and_jvp_graphs_of_a_multi_result_equation(throwaway):
    g = parse_graph(MODF_TEXT)
    vg, jg = vjp_graph(g), jvp_graph(g)
    for d in (vg, jg):
        verify(d)
        assert print_graph(parse_graph(print_graph(d))) == print_graph(d)
    x = X[0]
    c1, c2 = np.array([1.0, 2.0, 3.0]), np.array([-1.0, 0.5, 4.0])
    (_, _, gx) = eval_graph(vg, [x, c1, c2])
    # out0 = frac + whole = x (derivative 1); out1 = whole (derivative 0)
    np.testing.assert_allclose(gx, c1)
    _, _, t0, t1 = eval_graph(jg, [x, c2])
    np.testing.assert_allclose(t0, c2)
    np.testing.assert_allclose(t1, 0 * c2)


# --- floor and ceil: real primitives added through the record -------------------------------
@pytest.mark.parametrize("name", ["floor", "ceil"])
def test_floor_ceil_against_numpy(name):
    npf = getattr(np, name)
    x = np.array([-2.5, -1.0, -0.3, 0.0, 0.7, 1.0, 3.2, -0.0])
    for arr in (x, x.astype(np.float32), np.array([-3, 0, 4]), np.array([5, -2], np.int32)):
        got = adjit.jit(lambda a: npf(a))(arr)
        want = npf(arr)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # -0.0 kept
    xs = np.array([0.3, -1.7, 2.2])
    np.testing.assert_array_equal(adjit.grad(lambda a: np.sum(npf(a) * a))(xs), npf(xs))
    np.testing.assert_array_equal(adjit.vmap(lambda a: npf(a))(X), npf(X))


@pytest.mark.parametrize("name", ["floor", "ceil"])
def test_floor_ceil_against_torch(name):
    torch = peers.require("torch")
    xv = np.array([-2.5, -0.3, 0.7, 3.2])
    x = adjit.tensor(xv, requires_grad=True)
    tx = torch.tensor(xv, requires_grad=True)
    y, ty = getattr(x, name)(), getattr(tx, name)()
    assert type(y.grad_fn).__name__ == type(ty.grad_fn).__name__ == \
        f"{name.capitalize()}Backward0"
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    (y * x).sum().backward()
    (ty * tx).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    xi = np.array([3, -2])
    a, b = getattr(adjit, name)(adjit.tensor(xi)), getattr(torch, name)(torch.tensor(xi))
    assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.usefixtures("native_tier")  # checks native code itself
def test_a_throwaway_primitive_leaves_no_compiled_code_behind():
    # the same name registered again with another lowering must not run the old code (the
    # memory cache forgets it, the disk cache never had it)
    def run():
        f = adjit.jit(lambda x: npcube(x) + 1.0)
        f(X)  # the first call traces; the second runs compiled code
        before = cache.STATS["compiles"] + cache.STATS["hits"] + cache.STATS["disk_hits"]
        out = f(X)
        assert cache.STATS["compiles"] + cache.STATS["hits"] + cache.STATS["disk_hits"] > before
        return out

    with registered(cube()):
        np.testing.assert_array_equal(run(), X * X * X + 1.0)
    other = unary_prim("cube", lambda x: x * x, None, dtypes=NUMERIC,
                       lowering=("expr", lambda e, x: e.mul(x, x)), numpy=("cube",))
    with registered(other):
        np.testing.assert_array_equal(run(), X * X + 1.0)
