"""The IR's text form: golden printer output, print -> parse -> print, parser and verifier errors.

Goldens live in tests/golden/ir/ and are written only by `python scripts/update_ir_goldens.py`
(run it on purpose, then read the diff): a printer change must show up as a reviewed diff.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adjit.ir import REGISTRY, bind, extract, new_trace, parse_graph, parse_type, print_graph
from adjit.ir import ParseError, VerifyError, verify
from adjit.ir import ops as o
from adjit.ir.autodiff import jvp_graph, vjp_graph
from adjit.ir.core import Node

GOLDEN = Path(__file__).resolve().parent / "golden" / "ir"


def trace(fn, *types):
    """The graph of `fn` on abstract arguments of the given types (`"f64[3]"`, ...)."""
    with new_trace() as tr:
        ins = [Node(None, parse_type(t), None, tr) for t in types]
        outs = fn(*ins)
        outs = outs if isinstance(outs, tuple) else (outs,)
        return extract(list(outs), tr, inputs=ins, name=fn.__name__)


# --------------------------------------------------------------------------- golden programs

def affine_tanh(x, w, b):
    h = o.dot_general(x, w, contract=((1,), (0,)), batch=((), ()))
    t = o.tanh(o.add(h, o.broadcast_to(b, (4, 2))))
    return o.reduce_sum(o.mul(t, 2.0), (0, 1))


def guarded(x):
    s = o.reduce_sum(x, (0,))
    bind(REGISTRY["guard"], o.gt(s, 0.0), expect=True)
    return o.select(o.gt(x, 0.0), x, o.mul(x, 0.1)), s


_OFFSET = np.arange(3, dtype=np.float32)  # captured: becomes `const #0`, never printed by value


def with_const(x):
    z = o.mul(o.full((3,), 2.0, "f32"), o.add(x, _OFFSET))
    return o.convert(o.pow(z, 2.0), "f64")


def structural(x, idx):
    r = o.reshape(o.transpose(x, (1, 0)), (6,))
    s = o.slice(r, start=(1,), limit=(5,), strides=(2,))
    p = o.pad(s, low=(1,), high=(0,), interior=(1,))
    c = o.concatenate(p, s, axis=0)
    return o.cumsum(c, axis=0, reverse=True), o.gather(x, idx, axis=1)


PROGRAMS = {
    "affine_tanh": (affine_tanh, "f64[4,3]", "f64[3,2]", "f64[2]"),
    "guarded": (guarded, "f64[3]"),
    "with_const": (with_const, "f32[3]"),
    "structural": (structural, "f64[2,3]", "i64[2]"),
}


def graphs():
    """name -> Graph: each program, its vjp graph and its jvp graph."""
    out = {}
    for name, (fn, *types) in PROGRAMS.items():
        g = trace(fn, *types)
        out[name] = g
        out[f"{name}.vjp"] = vjp_graph(g)
        out[f"{name}.jvp"] = jvp_graph(g)
    return out


def _located(g):
    # locations relative to the tracing function, so editing other code leaves the golden alone
    first = affine_tanh.__code__.co_firstlineno
    for e in g.eqns:
        e.loc = ("test_ir_text.py", e.loc[1] - first)
    return g


def golden_texts():
    """file stem -> expected text; scripts/update_ir_goldens.py writes exactly these."""
    texts = {name: print_graph(g) for name, g in graphs().items()}
    texts["affine_tanh.loc"] = print_graph(_located(trace(*PROGRAMS["affine_tanh"])),
                                           locations=True)
    return texts


# ------------------------------------------------------------------------------------- tests

TEXTS = golden_texts()


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_golden(name):
    path = GOLDEN / f"{name}.txt"
    assert path.exists(), f"missing {path}: run scripts/update_ir_goldens.py"
    assert TEXTS[name] == path.read_text(), \
        f"{name}: printer output changed; if intended, run scripts/update_ir_goldens.py"


def test_no_stale_goldens():
    assert sorted(p.stem for p in GOLDEN.glob("*.txt")) == sorted(TEXTS)


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_golden_round_trip(name):
    text = (GOLDEN / f"{name}.txt").read_text()
    g = parse_graph(text)
    verify(g)
    assert print_graph(g, locations=True) == text


@pytest.mark.parametrize("name", sorted(graphs()))
def test_round_trip_with_locations(name):
    g = graphs()[name]
    verify(g)
    text = print_graph(g, locations=True)
    assert "loc(" in text
    back = parse_graph(text)
    assert print_graph(back, locations=True) == text
    assert [e.loc for e in back.eqns] == [e.loc for e in g.eqns]


def test_loc_with_odd_file_names():
    # quotes, backslashes and spaces in a path must survive (Windows paths, notebooks)
    text = ('def f(a: f64[3]) -> f64[3]:\n'
            '  b: f64[3] = neg a  loc("C:\\\\dir\\\\my \\"model\\".py":12)\n'
            '  c: f64[3] = mul b 2.0  loc("<ipython-input-3>":1)\n'
            '  return c\n')
    g = parse_graph(text)
    assert g.eqns[0].loc == ('C:\\dir\\my "model".py', 12)
    assert g.eqns[1].loc == ("<ipython-input-3>", 1)
    assert print_graph(g, locations=True) == text


def test_literals_round_trip():
    text = ('def f(a: f64[3], b: i32[3]) -> (f64[3], i32[3]):\n'
            '  c: f64[3] = mul a -0.5\n'
            '  d: f64[3] = add c inf\n'
            '  e: f64[3] = sub d -inf\n'
            '  f: f64[3] = add e nan\n'
            '  g: f64[3] = pow f 1e-300\n'
            '  h: i32[3] = mul b -7\n'
            '  return g, h\n')
    g = parse_graph(text)
    assert print_graph(g) == text
    lits = [x for e in g.eqns for x in e.inputs if not hasattr(x, "name")]
    assert [x.dtype for x in lits] == ["f64"] * 5 + ["i32"]


def test_non_finite_param_round_trips():
    # -inf fills are common (attention masks); a literal operand -inf already round-trips
    def masked(x):
        return o.add(x, o.full((3,), float("-inf"), "f64"))

    g = trace(masked, "f64[3]")
    text = print_graph(g)
    assert print_graph(parse_graph(text)) == text


def test_comments_and_blank_lines_are_ignored():
    text = "# a comment\n\ndef f(a: f64[]) -> f64[]:\n\n  b: f64[] = neg a\n  return b\n"
    assert print_graph(parse_graph(text)) == "def f(a: f64[]) -> f64[]:\n  b: f64[] = neg a\n" \
        "  return b\n"


def test_consts_print_by_index_only():
    g = trace(*PROGRAMS["with_const"])
    assert "const #0" in print_graph(g) and "0.0, 1.0" not in print_graph(g)
    np.testing.assert_array_equal(g.consts[0].val, _OFFSET)


# --------------------------------------------------------------------------- parser errors

HEADER = "def f(a: f64[3]) -> f64[3]:\n"

PARSE_ERRORS = {
    # name: (text, line, column, message fragment)
    "unknown_primitive": (HEADER + "  b: f64[3] = frobnicate a\n  return b\n", 2, 15,
                          "unknown primitive 'frobnicate'"),
    "undefined_var": (HEADER + "  b: f64[3] = mul a zz\n  return b\n", 2, 21,
                      "zz is used before it is defined"),
    "bad_type": (HEADER + "  b: f16[3] = neg a\n  return b\n", 2, 3, "unknown dtype 'f16'"),
    "bad_type_in_header": ("def f(a: f64[3], b: q[2]) -> f64[3]:\n  return a\n", 1, 18,
                           "unknown dtype 'q'"),
    "missing_return": (HEADER + "  b: f64[3] = neg a\n", 3, 1, "missing `return`"),
    "ssa_redefinition": (HEADER + "  b: f64[3] = neg a\n  b: f64[3] = neg b\n  return b\n", 3,
                         3, "b is defined twice (SSA)"),
    "redefined_argument": (HEADER + "  a: f64[3] = neg a\n  return a\n", 2, 3,
                           "a is defined twice (SSA)"),
    "no_header": ("  b: f64[3] = neg a\n", 1, 1, "expected `def NAME(ARGS) -> TYPE:`"),
    "text_after_return": (HEADER + "  return a\n  b: f64[3] = neg a\n", 3, 1,
                          "text after `return`"),
    "bad_guard": (HEADER + "  guard a == maybe\n  return a\n", 2, 3, "expected `guard VAR"),
    "bad_params": (HEADER + "  b: f64[3] = cumsum[axis=0 reverse=True] a\n  return b\n", 2, 21,
                   "bad parameters"),
    "return_type_mismatch": ("def f(a: f64[3]) -> f32[3]:\n  return a\n", 2, 1,
                             "do not match the signature"),
}


@pytest.mark.parametrize("name", sorted(PARSE_ERRORS))
def test_parse_error(name):
    text, line, col, fragment = PARSE_ERRORS[name]
    with pytest.raises(ParseError) as info:
        parse_graph(text)
    err = info.value
    assert fragment in err.msg
    assert (err.line, err.col) == (line, col), str(err)
    assert str(err).startswith(f"line {line}, column {col}: ")


def test_parse_error_column_of_a_name_that_also_appears_earlier():
    with pytest.raises(ParseError) as info:
        parse_graph(HEADER + "  b: f64[3] = mul a b\n  return b\n")
    assert (info.value.line, info.value.col) == (2, 21)  # 1-based: the second `b`


# ------------------------------------------------------------------------- verifier errors

def test_verifier_rejects_a_declared_type_the_shape_rule_disagrees_with():
    g = parse_graph("def f(a: f64[3]) -> f64[3]:\n"
                    "  b: f64[3] = reduce_sum[axes=(0,)] a\n"
                    "  return b\n")
    with pytest.raises(VerifyError) as info:
        verify(g)
    assert info.value.problems == [
        "equation 1 (reduce_sum): declared f64[3] but the shape rule gives f64[]"]


def test_verifier_reports_a_rule_rejecting_its_operands():
    g = parse_graph("def f(a: f64[3], b: f64[4]) -> f64[3]:\n"
                    "  c: f64[3] = add a b\n"
                    "  return c\n")
    with pytest.raises(VerifyError) as info:
        verify(g)
    (problem,) = info.value.problems
    assert problem.startswith("equation 1 (add): ") and "(3,) and (4,) differ" in problem


def test_verifier_rejects_a_wrong_dtype():
    g = parse_graph(HEADER + "  b: f32[3] = neg a\n  return a\n")
    with pytest.raises(VerifyError, match=r"equation 1 \(neg\): declared f32\[3\] but the "
                       r"shape rule gives f64\[3\]"):
        verify(g)


def test_verifier_rejects_a_non_bool_guard():
    g = parse_graph(HEADER + "  guard a == true\n  return a\n")
    with pytest.raises(VerifyError, match="guard"):
        verify(g)


def test_verifier_accepts_every_golden_graph():
    for name, g in graphs().items():
        assert verify(g) is g, name


def test_primitive_table_in_docs_is_current():
    import importlib.util
    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("_gen_prim_table",
                                                  root / "scripts" / "gen_prim_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    doc = (root / "docs" / "ir.md").read_text()
    assert mod.render(doc) == doc, "docs/ir.md is stale: run scripts/gen_prim_table.py"
