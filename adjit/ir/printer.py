"""Print a Graph as text; `parser.parse_graph` reads the same text back (see docs/ir.md).

    def f(a: f64[3]) -> f64[]:
      b: f64[3] = mul a 2.0
      c: f64[] = reduce_sum[axes=(0,)] b
      d: bool[] = gt c 0.0
      guard d == true
      return c
"""
from __future__ import annotations

import math

from .graph import Graph, Var
from .core import Lit


def var_names():
    """a, b, ..., z, aa, ab, ... (skipping the keywords the grammar uses)."""
    import itertools
    letters = "abcdefghijklmnopqrstuvwxyz"
    for n in itertools.count(1):
        for combo in itertools.product(letters, repeat=n):
            s = "".join(combo)
            if s not in ("def", "return", "guard", "const", "loc", "inf", "nan"):
                yield s


def format_literal(v) -> str:
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, int):
        return str(v)
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(v)


def _param(v) -> str:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return format_literal(v)  # inf / -inf / nan: the parser reads these names back
    return repr(v)


def format_params(params) -> str:
    if not params:
        return ""
    return "[" + ", ".join(f"{k}={_param(v)}" for k, v in params.items()) + "]"


def format_loc(loc) -> str:
    if not loc:
        return ""
    fname = loc[0].replace("\\", "\\\\").replace('"', '\\"')
    return f'  loc("{fname}":{loc[1]})'


def print_graph(g: Graph, locations=False) -> str:
    names = {}
    gen = var_names()

    def name(v):
        if isinstance(v, Lit):
            return format_literal(v.value)
        return names[v]

    def define(v: Var):
        names[v] = next(gen)
        return names[v]

    args = ", ".join(f"{define(v)}: {v.type}" for v in g.invars)
    outs = [str(v.type) for v in g.outvars]
    ret = outs[0] if len(outs) == 1 else "(" + ", ".join(outs) + ")"
    # (re.sub(r"\W", "_", name) without the regular expression: its compile was a process's
    # first print's one-off 0.1-0.15 ms, on a jitted function's second call; `\w` in a str
    # pattern is exactly str.isalnum() or "_")
    fname = "".join(c if c.isalnum() or c == "_" else "_" for c in g.name) or "f"
    if not (fname[0].isalpha() or fname[0] == "_"):
        fname = "f_" + fname
    lines = [f"def {fname}({args}) -> {ret}:"]
    for i, v in enumerate(g.constvars):
        lines.append(f"  {define(v)}: {v.type} = const #{i}")
    for e in g.eqns:
        ins = " ".join(name(x) for x in e.inputs)
        loc = format_loc(e.loc) if locations else ""
        if e.prim.name == "guard":
            expect = "true" if e.params.get("expect", True) else "false"
            lines.append(f"  guard {ins} == {expect}{loc}")
            continue
        rhs = f"{e.prim.name}{format_params(e.params)}"
        if ins:
            rhs += " " + ins
        lhs = ", ".join(f"{define(out)}: {out.type}" for out in e.outvars)
        lines.append(f"  {lhs} = {rhs}{loc}")
    lines.append(("  return " + ", ".join(name(v) for v in g.outvars)).rstrip())
    return "\n".join(lines) + "\n"
