"""Compiled code == the reference interpreter, for every primitive in the registry.

The sweep walks adjit.ir.REGISTRY (never a hand list): every primitive x every dtype of its
record x every sample of its record, as a one-equation graph, compiled and compared with
`eval_graph` (exact for ints and bools, a few ulp for floats). The vjp graph of every float
primitive with a vjp rule is compiled and compared too. Fusion, layout and ABI tests follow.
"""
from __future__ import annotations


import numpy as np
import pytest

import sweep

from adjit.codegen import LOWERINGS
from adjit.runtime import compile_graph
from adjit.codegen.lower import eqn_dtype
from adjit.ir import REGISTRY, AType, GuardFailed, eval_graph, extract, new_trace
from adjit.ir import parse_graph
from adjit.ir.autodiff import vjp_graph
from adjit.ir.core import Node

TOL = {"f32": dict(rtol=2e-6, atol=1e-6), "f64": dict(rtol=1e-13, atol=1e-14)}




CASES = list(sweep.cases())
VJP_CASES = [c for c in CASES if c.values[1] in ("f32", "f64") and REGISTRY[c.values[0]].vjp]



def assert_same(got, want, dtype=None):
    assert len(got) == len(want)
    for g_, w in zip(got, want):
        w = np.asarray(w)
        assert g_.shape == w.shape, (g_.shape, w.shape)
        assert g_.dtype == w.dtype, (g_.dtype, w.dtype)
        if w.dtype.kind in "fc":
            tol = TOL["f32" if w.dtype == np.float32 else "f64"]
            np.testing.assert_allclose(g_, w, equal_nan=True, **tol)
        else:
            np.testing.assert_array_equal(g_, w)


def test_every_primitive_has_a_lowering():
    missing = []
    for name, prim in REGISTRY.items():
        low = LOWERINGS.get(name)
        if low is None:
            missing.append(name)
            continue
        lacking = set(prim.dtypes) - set(low.dtypes)
        assert not lacking, f"lowering of {name} lacks dtypes {sorted(lacking)}"
    assert not missing, f"primitives without a lowering: {missing}"


@pytest.mark.parametrize("name,dt,i", CASES)
def test_compiled_matches_interpreter(name, dt, i):
    args, params = sweep.sample(name, dt, i, 'compiling')
    g = sweep.one_eqn(REGISTRY[name], args, params, 'codegen')
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    want = eval_graph(g, arrays)
    got = compile_graph(g)(arrays)
    assert_same(got, want)
    if g.eqns:
        assert eqn_dtype(g.eqns[-1]) in LOWERINGS[name].dtypes


@pytest.mark.parametrize("name,dt,i", VJP_CASES)
def test_compiled_vjp_matches_interpreter(name, dt, i):
    args, params = sweep.sample(name, dt, i, 'compiling')
    g = sweep.one_eqn(REGISTRY[name], args, params, 'codegen')
    if not g.outvars:
        pytest.skip("no output to differentiate")  # pragma: no cover
    vg = vjp_graph(g)
    rng = sweep.rng("ct", name, dt, i)
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    cts = [np.asarray(rng.uniform(-1, 1, v.type.shape), v.type.np_dtype) for v in g.outvars]
    want = eval_graph(vg, arrays + cts)
    got = compile_graph(vg)(arrays + cts)
    assert_same(got, want)


# --- behaviour beyond single primitives ---------------------------------------------------------

def test_guard_failure_raises():
    g = parse_graph("def f(a: f64[]) -> f64[]:\n  b: bool[] = gt a 0.0\n  guard b == true\n"
                    "  c: f64[] = mul a 2.0\n  return c\n")
    cg = compile_graph(g)
    assert cg([np.array(3.0)])[0] == 6.0
    with pytest.raises(GuardFailed):
        cg([np.array(-1.0)])


def test_gather_index_out_of_range_raises():
    g = parse_graph("def f(a: f64[4], i: i64[2]) -> f64[2]:\n"
                    "  c: f64[2] = gather[axis=0] a i\n  return c\n")
    cg = compile_graph(g)
    np.testing.assert_array_equal(cg([np.arange(4.0), np.array([-1, 2])])[0], [3.0, 2.0])
    with pytest.raises(IndexError):
        cg([np.arange(4.0), np.array([0, 4])])


def test_layouts_are_made_contiguous_and_outputs_fresh():
    g = parse_graph("def f(a: f64[3,4], b: f64[3,4]) -> f64[3,4]:\n"
                    "  c: f64[3,4] = mul a b\n  return c\n")
    cg = compile_graph(g)
    base = np.arange(24.0).reshape(4, 6)
    a = base[:3, ::-1][:, :4]                         # negative strides
    b = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    c = np.broadcast_to(np.arange(4.0), (3, 4))       # zero strides
    for x, y in ((a, b), (b, c), (c, a)):
        out = cg([x, y])[0]
        np.testing.assert_array_equal(out, x * y)
    assert cg([a, b])[0] is not cg([a, b])[0]


def test_bad_arguments_are_named():
    g = parse_graph("def f(a: f64[3], b: f64[3]) -> f64[3]:\n  c: f64[3] = add a b\n"
                    "  return c\n")
    cg = compile_graph(g)
    for bad in (np.array(["x", "y", "z"]), np.zeros(3, complex), np.zeros(3, object)):
        with pytest.raises(TypeError, match="argument 1"):
            cg([np.zeros(3), bad])
    with pytest.raises(ValueError, match="argument 0"):
        cg([np.zeros(4), np.zeros(3)])


def test_void_pointer_entry_is_the_same_function():
    g = parse_graph("def f(a: f32[5]) -> f32[5]:\n  b: f32[5] = exp a\n  return b\n")
    cg = compile_graph(g)
    x = np.linspace(-1, 1, 5).astype(np.float32)
    np.testing.assert_array_equal(cg.run_pointers([x])[0], cg([x])[0])


def test_outputs_that_are_inputs_literals_or_repeated():
    g = parse_graph("def f(a: f64[2]) -> (f64[2], f64[2], f64[2]):\n"
                    "  b: f64[2] = exp a\n  return a, b, b\n")
    x = np.array([0.0, 1.0])
    outs = compile_graph(g)([x])
    assert_same(outs, eval_graph(g, [x]))
    assert outs[0] is not x


def test_custom_call_with_captured_constant_is_inlined():
    from adjit.ir.core import const_node
    from adjit.ir.prims.custom import GraphParam, bind_vjp
    fun = parse_graph("def fun(x: f64[3]) -> f64[3]:\n  c: f64[3] = const #0\n"
                      "  d: f64[3] = mul x c\n  e: f64[3] = sin d\n  return e\n")
    fun.consts = [const_node(np.array([1.0, 2.0, 3.0]))]
    with new_trace("t") as tr:
        x = Node(None, AType((3,), "f64"), None, tr)
        y = bind_vjp([x], fun, fun, fun, (0, 0, 0), "f")
        g = extract([y], tr, inputs=[x])
    assert isinstance(g.eqns[0].params["fun"], GraphParam)
    a = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(compile_graph(g)([a])[0], np.sin(a * [1.0, 2.0, 3.0]),
                               rtol=1e-15)
