"""Print a Graph as text; `parser.parse_graph` reads the same text back (see docs/ir.md).

    def f(a: f64[3]) -> f64[]:
      b: f64[3] = mul a 2.0
      c: f64[] = reduce_sum[axes=(0,)] b
      d: bool[] = gt c 0.0
      guard d == true
      return c
"""
from __future__ import annotations

import itertools
import math
import struct
import threading

from .graph import Graph
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


# the bits of float("nan"), what the parser reads `nan` as; any other NaN (the sign bit of x86's
# default NaN, `inf - inf`; a payload) is written with its bits, `nan(0x7ff8000000000001)`, so that
# a graph's text (its structure key, what the compile worker compiles) keeps the literal's bits
_NAN_BITS = struct.unpack("<Q", struct.pack("<d", float("nan")))[0]


def nan_text(v) -> str:
    """The text of NaN `v` (a float): `nan`, or `nan(0x<its 64 bits>)` for any other NaN."""
    bits = struct.unpack("<Q", struct.pack("<d", v))[0]
    return "nan" if bits == _NAN_BITS else f"nan(0x{bits:016x})"


def format_literal(v) -> str:
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, int):
        return str(v)
    v = float(v)
    if math.isnan(v):
        return nan_text(v)
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


# var_names() in order, extended (under the lock) as graphs need more, up to SHARED_NAMES
SHARED_NAMES = 4096
_NAMES: list = []
_NAMES_GEN = var_names()
_NAMES_LOCK = threading.Lock()


def _names(n):
    """The first `n` names of var_names(): the process's shared list (only ever appended to), or
    for a graph of more variables than it keeps, a list of its own."""
    names = _NAMES
    if len(names) < n:
        if n > SHARED_NAMES:
            return list(itertools.islice(var_names(), n))
        with _NAMES_LOCK:
            if len(names) < n:
                names.extend(itertools.islice(_NAMES_GEN, n - len(names)))
    return names


_TYPE_TEXT: dict = {}  # (shape, dtype) -> the type's text, as str(AType) writes it


def _type_text(t):
    # a type's text once per (shape, dtype) in a process: AType's __str__ is a Python method
    # (~0.6 us), a tuple's hash and one dict read ~0.15 us; a graph has few distinct types
    k = (t.shape, t.dtype)
    s = _TYPE_TEXT.get(k)
    if s is None:
        s = str(t)
        if len(_TYPE_TEXT) < 4096:
            _TYPE_TEXT[k] = s
    return s


# parameter types whose text is their repr (format_params' `_param`; a float's too, but for a
# NaN and for a float subclass, whose nan / inf are written by format_literal)
_PLAIN_PARAM = frozenset({int, bool, str, tuple, list, type(None)})


def print_graph(g: Graph, locations=False) -> str:
    """g's text (docs/ir.md): variables named a, b, ... in order of definition. Without
    locations it is the graph's structure key (`Graph.structure_key`: the memory and disk
    caches' key, the text the compile worker parses), made on a jitted function's second call:
    one pass over the equations with per-process tables of type texts and names (W2's 76
    equations: ~0.17 ms with a name generator and a type's __str__ per variable)."""
    n_vars = len(g.invars) + len(g.constvars) + sum(len(e.outvars) for e in g.eqns)
    pool = _names(n_vars)
    names = {}
    get = names.get
    tt = _type_text
    tget = _TYPE_TEXT.get
    i = 0
    args = []
    for v in g.invars:
        names[v] = s = pool[i]
        i += 1
        args.append(f"{s}: {tt(v.type)}")
    outs = [tt(v.type) for v in g.outvars]
    ret = outs[0] if len(outs) == 1 else "(" + ", ".join(outs) + ")"
    # (re.sub(r"\W", "_", name) without the regular expression: its compile was a process's
    # first print's one-off 0.1-0.15 ms, on a jitted function's second call; `\w` in a str
    # pattern is exactly str.isalnum() or "_")
    name = g.name
    fname = name if name.isidentifier() and name.isascii() else \
        "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "f"
    if not (fname[0].isalpha() or fname[0] == "_"):
        fname = "f_" + fname
    lines = [f"def {fname}({', '.join(args)}) -> {ret}:"]
    for k, v in enumerate(g.constvars):
        names[v] = s = pool[i]
        i += 1
        lines.append(f"  {s}: {tt(v.type)} = const #{k}")
    lit = format_literal
    plain = _PLAIN_PARAM
    for e in g.eqns:
        ins = []
        for x in e.inputs:
            s = get(x)
            if s is None:
                if not isinstance(x, Lit):
                    raise KeyError(x)
                v = x.value
                t = type(v)
                # the text of a bool, int or float is its repr (inf, -inf, -0.0 included), but
                # for a NaN's (its bits: format_literal)
                plain_number = (t is float and v == v) or t is int or t is bool  # noqa: PLR0124
                s = repr(v) if plain_number else lit(v)
            ins.append(s)
        ins = " ".join(ins)
        loc = format_loc(e.loc) if locations else ""
        pname = e.prim.name
        if pname == "guard":
            expect = "true" if e.params.get("expect", True) else "false"
            lines.append(f"  guard {ins} == {expect}{loc}")
            continue
        params = e.params
        if params:
            parts = []
            for k, v in params.items():
                t = type(v)
                own = t in plain or t is float and v == v  # noqa: PLR0124
                text = repr(v) if own else _param(v)
                parts.append(f"{k}={text}")
            rhs = f"{pname}[{', '.join(parts)}] {ins}"
        else:
            rhs = f"{pname} {ins}"
        if not ins:
            rhs = rhs[:-1]
        outvars = e.outvars
        if len(outvars) == 1:
            v = outvars[0]
            names[v] = s = pool[i]
            i += 1
            t = v.type
            ts = tget((t.shape, t.dtype))
            lhs = f"{s}: {ts if ts is not None else tt(t)}"
        else:
            lhs = []
            for v in outvars:
                names[v] = s = pool[i]
                i += 1
                lhs.append(f"{s}: {tt(v.type)}")
            lhs = ", ".join(lhs)
        lines.append(f"  {lhs} = {rhs}{loc}")
    rets = []
    for v in g.outvars:
        s = get(v)
        if s is None:
            if not isinstance(v, Lit):
                raise KeyError(v)
            s = lit(v.value)
        rets.append(s)
    lines.append(("  return " + ", ".join(rets)).rstrip())
    return "\n".join(lines) + "\n"
