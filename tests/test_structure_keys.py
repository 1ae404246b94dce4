"""A graph's structure key (`Graph.structure_key`: its text without locations) keys the memory and
disk caches of compiled code: equal structures (up to the renaming of variables) must give equal
keys and different structures different keys, or a graph would run another graph's code.

The reference here is an independent canonical form (`canon`): variables as the position of their
definition, literals and parameters by type and bits (-0.0 is not 0.0; 1 is not 1.0 is not True),
types, constvar count, guards and their expected value, the (cleaned) function name. Over every
registry sample graph, its derived graphs and mutants of each (one literal, parameter, type,
guard, wiring or constvar changed), two graphs have equal keys exactly when their canonical forms
are equal.
"""
from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest
import sweep

from adjit.ir import REGISTRY, parse_graph, print_graph
from adjit.ir.autodiff import jvp_graph, vjp_graph
from adjit.ir.core import Lit
from adjit.ir.graph import Eqn, Graph, Var
from adjit.ir.types import AType


def _val(v):
    """A literal or parameter value by type and bits (a NaN's sign and payload included)."""
    t = type(v)
    if t is float:
        return ("float", struct.pack("<d", v))
    if t in (tuple, list):
        return (t.__name__, tuple(_val(x) for x in v))
    if t in (int, bool, str, type(None)):
        return (t.__name__, v)
    text = getattr(v, "text", None)  # a graph parameter: its text, as the parser reads it
    if isinstance(text, str):
        return ("str", text)
    return (t.__name__, repr(v))


def canon(g):
    """g's structure, independent of the printer."""
    pos = {}
    for v in list(g.invars) + list(g.constvars):
        pos[v] = len(pos)

    def ref(x):
        return ("lit", _val(x.value)) if isinstance(x, Lit) else ("var", pos[x])

    def typ(v):
        return (v.type.dtype, tuple(v.type.shape))
    eqns = []
    for e in g.eqns:
        ins = tuple(ref(x) for x in e.inputs)
        if e.prim.name == "guard":  # its one parameter: whether the operand must be true
            params = bool(e.params.get("expect", True))
        else:
            params = tuple((k, _val(p)) for k, p in e.params.items())
        eqns.append((e.prim.name, params, ins, tuple(typ(v) for v in e.outvars)))
        for v in e.outvars:
            pos[v] = len(pos)
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in g.name) or "f"
    return (name, tuple(typ(v) for v in g.invars), tuple(typ(v) for v in g.constvars),
            tuple(eqns), tuple(ref(v) for v in g.outvars))


def corpus():
    """Every registry sample's one-equation graph and its vjp and jvp graphs."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for case in sweep.cases():
            name, dt, i = case.values
            if i < 0:
                continue
            args, params = sweep.sample(name, dt, i)
            g = sweep.one_eqn(REGISTRY[name], args, params)
            out.append(g)
            for derive in (vjp_graph, jvp_graph):
                try:
                    out.append(derive(g))
                except Exception:  # noqa: BLE001, S110 - no such rule for this primitive
                    pass
    return out


def renamed(g):
    """A copy of g with new Var objects (named otherwise) and new equation records."""
    m = {}

    def new(v):
        if isinstance(v, Lit):
            return Lit(v.value, v.dtype)
        if v not in m:
            m[v] = Var(AType(v.type.shape, v.type.dtype), "renamed_" + str(len(m)))
        return m[v]
    invars = [new(v) for v in g.invars]
    constvars = [new(v) for v in g.constvars]
    eqns = []
    for e in g.eqns:
        ins = [new(x) for x in e.inputs]
        eqns.append(Eqn(e.prim, ins, dict(e.params), [new(v) for v in e.outvars], e.loc))
    return Graph(invars, constvars, eqns, [new(v) for v in g.outvars], g.consts, g.name)


def _edit(g, k, **kw):
    """A copy of g whose k-th equation has the fields in kw replaced."""
    eqns = list(g.eqns)
    e = eqns[k]
    eqns[k] = Eqn(kw.get("prim", e.prim), kw.get("inputs", e.inputs), kw.get("params", e.params),
                  kw.get("outvars", e.outvars), e.loc)
    return Graph(g.invars, g.constvars, eqns, g.outvars, g.consts, g.name)


def _bits(b):
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def _other(v):
    """A value of another type or bits than v (a parameter or literal mutant)."""
    t = type(v)
    if t is float:  # the other sign (of a zero, an infinity or a NaN too)
        return -v
    if t is bool:
        return int(v)
    if t is int:
        return float(v)
    if t is tuple:
        return v + (0,) if not v else (_other(v[0]),) + v[1:]
    if t is str or isinstance(getattr(v, "text", None), str):
        return getattr(v, "text", v) + "x"
    return None


def mutants(g):
    """Graphs that differ from g in one feature of its structure."""
    out = []
    for k, e in enumerate(g.eqns):
        for j, x in enumerate(e.inputs):
            if isinstance(x, Lit):
                o = _other(x.value)
                if o is not None:
                    ins = list(e.inputs)
                    ins[j] = Lit(o, x.dtype)
                    out.append(_edit(g, k, inputs=ins))
                for nan in (float("nan"), -float("nan"), _bits(0x7ff0000000000001)):
                    ins = list(e.inputs)
                    ins[j] = Lit(nan, x.dtype)
                    out.append(_edit(g, k, inputs=ins))
        for p, v in e.params.items():
            o = _other(v) if e.prim.name != "guard" else None
            if o is not None:
                out.append(_edit(g, k, params=dict(e.params, **{p: o})))
        if e.prim.name == "guard":
            out.append(_edit(g, k, params=dict(e.params, expect=not e.params.get("expect",
                                                                                 True))))
        if e.outvars:
            v = e.outvars[0]
            for t in (AType(v.type.shape, "i32" if v.type.dtype != "i32" else "f64"),
                      AType(tuple(v.type.shape) + (1,), v.type.dtype)):
                nv = Var(t)
                outs = [nv] + list(e.outvars[1:])
                m = _edit(g, k, outvars=outs)
                sub = {v: nv}
                m.eqns = [Eqn(q.prim, [sub.get(x, x) if not isinstance(x, Lit) else x
                                       for x in q.inputs], q.params, q.outvars, q.loc)
                          for q in m.eqns]
                m.outvars = [sub.get(o, o) if not isinstance(o, Lit) else o
                             for o in m.outvars]
                out.append(m)
        vs = [x for x in e.inputs if not isinstance(x, Lit)]
        if len(vs) >= 2 and vs[0] is not vs[1]:
            out.append(_edit(g, k, inputs=list(reversed(e.inputs))))
    if g.invars:
        c = Var(g.invars[0].type)
        out.append(Graph(g.invars, list(g.constvars) + [c], g.eqns, g.outvars,
                         list(g.consts) + [None], g.name))
    return out


def test_equal_structures_have_equal_keys():
    for g in corpus():
        key = g.structure_key()
        assert renamed(g).structure_key() == key
        back = parse_graph(key)
        assert back.structure_key() == key and canon(back) == canon(g), key


def test_keys_differ_exactly_when_structures_differ():
    graphs, named = [], set()
    for g in corpus():
        graphs.append(g)
        if g.name not in named:  # each primitive's first sample and its derived graphs
            named.add(g.name)
            graphs.extend(mutants(g))
    by_key, by_canon = {}, {}
    for g in graphs:
        by_key.setdefault(g.structure_key(), set()).add(canon(g))
        by_canon.setdefault(canon(g), set()).add(g.structure_key())
    clash = {k: c for k, c in by_key.items() if len(c) > 1}
    assert not clash, f"one key for several structures: {next(iter(clash))}"
    split = {c: k for c, k in by_canon.items() if len(k) > 1}
    assert not split, f"one structure with several keys: {next(iter(split.values()))}"
    assert len(graphs) > 5000 and len(by_key) > 2000, (len(graphs), len(by_key))


def test_structure_key_is_the_printed_text():
    # the worker parses the key (background.py): the key is the text print_graph writes
    for g in corpus()[:200]:
        assert g.structure_key() == print_graph(g, locations=False)


NEG_NAN = -float("nan")  # x86's default NaN (`inf - inf`): the sign bit set


def test_nan_literals_are_keyed_and_printed_by_their_bits():
    # every NaN printed as `nan` gave a graph adding -nan the key (and the native code) of the
    # one adding nan: the worker compiles the key's text, which read back as float("nan")
    from adjit.ir.parser import ParseError
    text = ("def f(a: f64[3]) -> f64[3]:\n"
            "  b: f64[3] = add a {}\n"
            "  c: f64[3] = full[shape=(3,), value={}, dtype='f64']\n"
            "  d: f64[3] = mul b c\n"
            "  return d\n")
    keys = set()
    for v in (float("nan"), NEG_NAN, _bits(0x7ff0000000000001), _bits(0xfff0000000000abc)):
        for w in (float("nan"), NEG_NAN):
            g = parse_graph(text.format("nan", "nan"))
            g.eqns[0].inputs[1] = Lit(v, "f64")
            g.eqns[1].params["value"] = w
            key = g.structure_key()
            keys.add(key)
            back = parse_graph(key)
            assert struct.pack("<d", back.eqns[0].inputs[1].value) == struct.pack("<d", v)
            assert struct.pack("<d", back.eqns[1].params["value"]) == struct.pack("<d", w)
            assert back.structure_key() == key
    assert len(keys) == 8
    assert "nan(" not in parse_graph(text.format("nan", "nan")).structure_key()
    for bad in ("nan(0x3ff0000000000000)", "nan(0x7ff8)"):  # 1.0's bits; not 16 digits
        with pytest.raises(ParseError):
            parse_graph(text.format(bad, "nan"))
        with pytest.raises(ParseError):
            parse_graph(text.format("nan", bad))


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_a_negative_nan_literal_has_its_sign_in_every_tier(native_tier, monkeypatch, dt):
    import adjit
    x = np.ones(3, dt)
    with np.errstate(invalid="ignore"):
        want = (np.signbit(x + NEG_NAN), np.signbit(np.full(3, NEG_NAN, dt) * x))
    assert want[0].all() and want[1].all()  # NumPy keeps the sign bit here
    for tier in ("interp", "native"):
        monkeypatch.setenv("ADJIT_TIER", tier)
        f = adjit.jit(lambda x: (np.signbit(x + NEG_NAN),
                                 np.signbit(np.full(3, NEG_NAN, dt) * x)))
        for _ in range(3):
            got = f(x)
            np.testing.assert_array_equal(got[0], want[0], err_msg=tier)
            np.testing.assert_array_equal(got[1], want[1], err_msg=tier)


def test_a_big_graphs_key_keeps_no_name_table():
    # the printer's shared name table stops at SHARED_NAMES: a bigger graph's names are its own
    from adjit.ir import printer
    n = printer.SHARED_NAMES + 300
    names = printer.var_names()
    first = next(names)
    lines, prev = [], first
    for _ in range(n):
        v = next(names)
        lines.append(f"  {v}: f64[2] = mul {prev} 2.0")
        prev = v
    text = f"def f({first}: f64[2]) -> f64[2]:\n" + "\n".join(lines) + f"\n  return {prev}\n"
    g = parse_graph(text)
    assert g.structure_key() == text
    assert len(printer._NAMES) <= printer.SHARED_NAMES
