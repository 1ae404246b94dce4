"""The first call of a new jitted step is a trace (issue 18): the pieces made cheaper for it
keep their results. pytree.leaves (no treedef built) gives flatten's leaves and dict keys keep
their order; the one-pass graph extraction keeps every equation and guard with the user's
source location (values and gradients against JAX, x64, guards re-checked on later calls);
the walk eager_plan and rehome_backward share keeps grad's eager tier and grad inside jit
right; objects built without __init__ have every slot; a trace reuses jit's scan of the
function's code and still finds a random draw."""
from __future__ import annotations

import collections
import os

import numpy as np

import adjit
from adjit.tracer import pytree
from peers import require

jax = require("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

NT = collections.namedtuple("NT", "a b")


class Pair(tuple):
    """A tuple subclass that is no namedtuple: a leaf of a pytree."""


def test_leaves_are_flattens_leaves():
    a, b = np.ones(2), np.zeros(3)
    trees = [a, None, 1.5, "s", [], (), {}, NT(None, None), [[[]]], Pair((a, b)),
             (a, None, [1, {"b": 2, "a": (3, None)}]),
             {"x": NT(a, [None, 4]), 1: 5, 2.5: 6, "a": Pair((1, 2)), (0, 1): b},
             ({"k": [a, (b,)]}, {}), NT(a, NT(b, None))]
    for t in trees:
        got, want = pytree.leaves(t), pytree.flatten(t)[0]
        assert len(got) == len(want) and all(x is y for x, y in zip(got, want)), t


C = np.linspace(-1.0, 1.0, 6).reshape(2, 3)


def _loss_np(x, k):
    q, r = np.divmod(x, 1.5)  # a primitive with two results
    if adjit.stop_gradient(x).sum() > 0:  # a guard (on the comparison)
        y = np.tanh(x @ C.T)
    else:
        y = np.sin(x) * 2.0
    return (q * C).sum() + (r * x).sum() + y.sum() * k


def _loss_jax(x, k, positive):
    q, r = jnp.divmod(x, 1.5)
    y = jnp.tanh(x @ C.T) if positive else jnp.sin(x) * 2.0
    return (jax.lax.stop_gradient(q) * C).sum() + (r * x).sum() + y.sum() * k


def test_jit_value_and_grad_keeps_equations_guards_and_locations():
    jf = adjit.jit(adjit.value_and_grad(_loss_np))
    xs = [np.array([[0.3, 2.0, -0.7], [1.1, 0.2, 0.9]]),
          np.array([[-0.3, -2.0, 0.7], [-1.1, -0.2, -0.9]]),  # the guard fails: retrace
          np.array([[0.4, 1.0, -0.2], [1.3, 0.5, 0.1]])]
    for x in xs * 2:
        v, g = jf(x, 3.0)
        pos = float(x.sum()) > 0
        wv, wg = jax.value_and_grad(_loss_jax)(x, 3.0, pos)
        np.testing.assert_allclose(v, wv, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g, wg, rtol=1e-12, atol=1e-12)
    assert jf.traces == 2
    graphs = [br.graph for brs in jf.cache.values() for br in brs]
    assert len(graphs) == 2
    here = os.path.abspath(__file__)
    for g in graphs:
        names = [e.prim.name for e in g.eqns]
        assert "guard" in names
        # every equation, the adjoint's included, names a line of this file
        assert all(e.loc is not None and os.path.abspath(e.loc[0]) == here for e in g.eqns)


def test_grad_eager_tier_and_vjp_pullback_agree_with_jax():
    x = np.array([[0.3, 2.0, -0.7], [1.1, 0.2, 0.9]])
    for k in range(3):  # the eager tier serves the first calls
        g = adjit.grad(_loss_np)(x * (k + 1), 2.0)
        want = jax.grad(_loss_jax)(x * (k + 1), 2.0, True)
        np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-12)
    out, pull = adjit.vjp(lambda a: np.tanh(a @ C.T) * a.sum(), x)
    jout, jpull = jax.vjp(lambda a: jnp.tanh(a @ C.T) * a.sum(), x)
    ct = np.arange(4.0).reshape(2, 2)
    np.testing.assert_allclose(out, jout, rtol=1e-12)
    np.testing.assert_allclose(pull(ct)[0], jpull(ct)[0], rtol=1e-12, atol=1e-12)


def test_leaves_builds_no_treedef(monkeypatch):
    # jit's check for traced arguments and its output leaves walk the pytree on every trace;
    # the treedef (hashed nodes) is not needed there
    made = []
    init = pytree.TreeDef.__init__

    def counting(self, *a):
        made.append(a[0])
        init(self, *a)
    monkeypatch.setattr(pytree.TreeDef, "__init__", counting)
    tree = ({"W1": np.ones(2), "b1": None}, [np.zeros(1), (1.0,)], {})
    assert len(pytree.leaves(tree)) == 3
    assert made == []


def test_a_trace_does_not_scan_code_jit_scanned_when_made(monkeypatch):
    from adjit.transforms import live
    ns = {"np": np}
    exec("R = np.random.RandomState(0)\n"
         "def helper(x):\n    return np.sin(x) * 2.0\n"
         "def f(x):\n    return helper(x).sum() + R.normal()\n", ns)
    jf = adjit.jit(ns["f"])  # plans its slots: scans f's and helper's code
    scans = []
    orig = live._global_names
    monkeypatch.setattr(live, "_global_names",
                        lambda code, *a: (scans.append(code.co_name), orig(code, *a))[1])
    x = np.linspace(0.0, 1.0, 5)
    with __import__("warnings").catch_warnings(record=True) as w:
        __import__("warnings").simplefilter("always")
        out = jf(x)
    # the draw made while tracing is still found (random_sources follows helper and R)
    assert any("draws random numbers" in str(m.message) for m in w)
    assert scans == []
    np.testing.assert_allclose(out - np.sin(x).sum() * 2.0,
                               np.random.RandomState(0).normal(), rtol=1e-12)


def test_scanned_code_entry_goes_with_its_code():
    from adjit.transforms import live
    ns = {}
    exec("def g(a):\n    return a + K\n", ns)
    code = ns["g"].__code__
    names, stores, _ = live.global_names(code)
    assert names == ("K",) and not stores
    assert live.global_names(code)[0] is names  # scanned once
    key = id(code)
    del ns, code
    import gc
    gc.collect()
    assert key not in live._SCANNED


def test_jit_output_error_still_names_the_function():
    def f(x):
        return "not an array"
    try:
        adjit.jit(f)(np.ones(2))
    except TypeError as exc:
        msg = str(exc)
    else:  # pragma: no cover
        raise AssertionError("no error")
    assert msg.startswith("jit: f (") and os.path.basename(__file__) in msg
    assert "must return arrays" in msg and "got str" in msg


def test_dict_keys_order_and_treedef_identity(monkeypatch):
    a, b, c, d = (np.full(1, float(i)) for i in range(4))
    # by type name, then value: float < int < str
    leaves, td = pytree.flatten({2.5: a, 1: b, "z": c, "a": d})
    assert [x is y for x, y in zip(leaves, [a, b, d, c])] == [True] * 4
    assert td.meta == (2.5, 1, "a", "z")
    leaves, _ = pytree.flatten({3: a, 1: b, 2: c})
    assert [x is y for x, y in zip(leaves, [b, c, a])] == [True] * 3
    assert pytree.leaves({3: a, 1: b, 2: c}) == leaves
    # equal structures built apart: equal and equally hashed; a different one is not equal
    t1 = pytree.flatten({"W": a, "b": (b, None), "l": [c]})[1]
    t2 = pytree.flatten({"l": [d], "b": (a, None), "W": b})[1]
    t3 = pytree.flatten({"W": a, "b": (b, c), "l": [c]})[1]
    assert t1 == t2 and hash(t1) == hash(t2) and t1.num_leaves == 3
    assert t1 != t3 and t3.num_leaves == 4
    assert pytree.unflatten(t1, [a, b, c])["b"][0] is b
    # keys of one type sort without a Python call per key (a params dict on every trace)
    calls = []
    monkeypatch.setattr(pytree, "_sort_key", lambda k: calls.append(k) or (type(k).__name__, k))
    pytree.flatten({"W1": a, "b1": b, "W2": c, "b2": d})
    assert calls == []


def test_records_built_inline_have_every_slot():
    # _record builds Rec and Node, extract builds Var and Eqn, without calling __init__:
    # every slot __init__ sets must be set there too
    from adjit.ir.core import REGISTRY, Node, Rec, bind, new_trace
    from adjit.ir.graph import Eqn, Var, extract
    from adjit.ir.types import AType

    def slots(o):
        return [s for s in type(o).__slots__ if s != "__weakref__"]

    ref_rec = Rec(REGISTRY["add"], [], {}, None, None)
    ref_node = Node(None, AType((), "f64"), None, None)
    ref_var, ref_eqn = Var(AType((), "f64")), Eqn(REGISTRY["add"], [], {}, [], None)
    with new_trace("t") as tr:
        x = Node(np.ones(3), AType((3,), "f64"), None, tr, True)
        y = bind(REGISTRY["mul"], bind(REGISTRY["exp"], x), x)
        g = extract([y], tr, inputs=[x])
    for built, ref in [(y.rec, ref_rec), (y, ref_node), (g.eqns[0], ref_eqn),
                       (g.eqns[0].outvars[0], ref_var)]:
        assert type(built) is type(ref)
        assert slots(built) == slots(ref)
        for s in slots(ref):
            getattr(built, s)  # set (an unset slot raises AttributeError)
    np.testing.assert_allclose(y.val, np.exp(np.ones(3)))
    assert y.requires_grad and y.trace is tr and y.rec.seq > y.rec.inputs[0].rec.seq
    assert [e.prim.name for e in g.eqns] == ["exp", "mul"]
    assert g.eqns[1].inputs[0] is g.eqns[0].outvars[0] and g.eqns[1].inputs[1] is g.invars[0]
