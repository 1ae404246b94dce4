"""The verifier checks every parameter of every primitive against its rule (axes in range,
dtypes valid, literals representable in their dtype, shapes and per-axis tuples consistent):
a sweep over the registry's samples with each parameter mutated, each literal pushed out of
range, a parameter added and one dropped. Each mutated equation must be refused; the
unmutated one must verify. Then the two findings from the issue, through `adjit check`."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from adjit.ir import REGISTRY, parse_graph, verify
from adjit.ir.core import Lit
from adjit.ir.verify import VerifyError

from sweep import cases, one_eqn, sample


def _mutations(name, value, ndim, params):
    """Invalid values for parameter `name` (current value `value`, operand 0 of `ndim` dims)."""
    if name == "axis":
        return [ndim, 7, -1, 1.5, True, None]
    if name == "axes":
        return [(ndim,), (-1,), (7,), "x", (0.5,)] + ([(0, 0)] if ndim else [])
    if name == "perm":
        return [tuple(range(ndim + 1)), (0,) * max(ndim, 1), "x"]
    if name in ("shape",):
        return [(-1,) + tuple(value)[1:], (2.5,) + tuple(value)[1:], "x"]
    if name == "dims":
        return [(1.5,) * len(value) or (1.5,), "x"]
    if name in ("start", "limit", "strides", "low", "high", "interior"):
        bad = 0 if name == "strides" else -1
        return [tuple(value) + (0,), (bad,) + tuple(value)[1:], (1.5,) + tuple(value)[1:]]
    if name in ("contract", "batch"):
        return [((7,), (0,)), ((0,), (7,)), ((0, 1), (0,)), "x", ((-1,), (-1,))]
    if name in ("dtype", "new_dtype"):
        return ["f16", "float64", None]
    if name == "value":
        return {"f32": [1e300, 10 ** 400, "x"], "f64": [10 ** 400, "x"]}.get(
            params.get("dtype"), [2 ** 70, 0.5, "x"])
    if name in ("reverse", "expect", "check", "lower", "trans", "unit_diagonal"):
        return [2, "yes", None]
    if name == "uplo":
        return ["X", 1, None]
    return []


def _graph(name, dt, i):
    args, params = sample(name, dt, i, "the verifier's parameter sweep")
    g = one_eqn(REGISTRY[name], args, params)
    if not g.eqns:
        pytest.skip("no equation recorded")
    return g


@pytest.mark.parametrize("name,dt,i", list(cases()))
def test_every_mutated_parameter_is_refused(name, dt, i):
    g = _graph(name, dt, i)
    verify(g)  # the sample itself is valid
    e = g.eqns[0]
    ndim = e.inputs[0].type.ndim if e.inputs else 0
    original = dict(e.params)
    accepted = []
    for pname, value in original.items():
        for bad in _mutations(pname, value, ndim, original):
            e.params = dict(original, **{pname: bad})
            try:
                verify(g)
            except VerifyError:
                continue
            except Exception as exc:  # the verifier itself must not crash on bad input
                accepted.append(f"{pname}={bad!r} crashed: {type(exc).__name__}: {exc}")
                continue
            accepted.append(f"{pname}={bad!r}")
    if name not in ("custom_jvp_call", "custom_vjp_call"):
        e.params = dict(original, bogus=1)
        try:
            verify(g)
            accepted.append("an unknown parameter bogus=1")
        except VerifyError:
            pass
    for pname in original if name not in ("custom_jvp_call", "custom_vjp_call") else ():
        e.params = {k: v for k, v in original.items() if k != pname}
        try:
            verify(g)
        except (VerifyError, TypeError):
            continue
        if pname not in ("reverse", "expect"):  # these have defaults
            accepted.append(f"without {pname}=")
    e.params = original
    assert not accepted, f"{name}: the verifier accepts " + "; ".join(accepted)


_BAD_LITERAL = {"i32": 2 ** 31, "i64": 2 ** 63, "bool": 2, "f32": 1e300, "f64": None}


@pytest.mark.parametrize("name,dt,i", [c for c in cases()
                                       if c.values[1] in ("i32", "i64", "bool", "f32")])
def test_literal_out_of_range_is_refused(name, dt, i):
    g = _graph(name, dt, i)
    e = g.eqns[0]
    lits = [k for k, x in enumerate(e.inputs) if isinstance(x, Lit)]
    if not lits:
        pytest.skip("no literal operand in this sample")
    for k in lits:
        inputs = list(e.inputs)
        old = inputs[k]
        inputs[k] = Lit(_BAD_LITERAL[old.dtype] if old.dtype in _BAD_LITERAL else 2 ** 70,
                        old.dtype)
        e.inputs = inputs
        with pytest.raises(VerifyError, match="literal operand"):
            verify(g)
        inputs[k] = old
        e.inputs = inputs
    verify(g)


def test_issue_examples_through_check():
    from adjit.cli.check import check_text
    cumsum = ("def f(a: f64[2,3]) -> f64[2,3]:\n"
              "  b: f64[2,3] = cumsum[axis=7, reverse=false] a\n"
              "  return b\n")
    ok, report = check_text(cumsum, "x.ir")
    assert not ok and report[0].startswith("x.ir:2:") and "axis=7" in report[0], report
    literal = ("def f(a: i64[3]) -> i64[3]:\n"
               "  b: i64[3] = add a 99999999999999999999\n"
               "  return b\n")
    ok, report = check_text(literal, "y.ir")
    assert not ok and report[0].startswith("y.ir:2:") and "out of range for i64" in report[0], \
        report
    # representable values still pass, at both ends of the range
    good = literal.replace("99999999999999999999", str(-2 ** 63))
    assert check_text(good, "z.ir")[0], check_text(good, "z.ir")[1]
    # NumPy agrees on what the largest i64 is
    assert np.iinfo(np.int64).min == -2 ** 63
