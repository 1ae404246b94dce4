"""Pictures of IR graphs with the `graphviz` Python package, and rendering without Graphviz.

`graph_to_dot(g)` draws one node per equation (primitive, parameters, result type), the inputs,
captured constants and outputs as distinct shapes, and fused groups as clusters. `render(dot,
path)` writes .dot, .svg or .png for *any* graphviz.Digraph, including the eager tape's
`adjit.make_dot(y)`; it runs Graphviz's `dot` when installed, else the `graphviz-pure`
executable (`pip install graphviz-pure`), which takes dot's arguments.

    >>> from adjit.ir import parse_graph
    >>> g = parse_graph("def f(a: f64[3]) -> f64[]:\\n  b: f64[3] = mul a 2.0\\n"
    ...                 "  c: f64[] = reduce_sum[axes=(0,)] b\\n  return c\\n")
    >>> graph_to_dot(g).source.count("[label=")
    4
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

# The eager tape's palette (adjit/viz/make_dot.py draws leaves light blue and the root green), so
# that a make_ir picture and a make_dot picture of the same code read the same way.
INPUT_COLOR = "lightblue"
OUTPUT_COLOR = "darkolivegreen1"
CONST_COLOR = "lightgrey"
GUARD_COLOR = "orange"
EQN_COLOR = "white"
# Courier, not "monospace": Graphviz (and graphviz-pure) size boxes with built-in metrics for
# the standard PostScript fonts only; with another name the text overflows its box.
FONT = "Courier"
NODE_ATTR = dict(style="filled", shape="box", fontsize="10", fontname=FONT, height="0.2")
_MAX_PARAMS = 44
# operand order does not matter for these, so their edges need no position labels
COMMUTATIVE = frozenset(("add", "mul", "max", "min", "eq", "ne", "and", "or", "xor"))


def _short_params(params) -> str:
    from ..ir.printer import format_params
    text = format_params(params)
    return text if len(text) <= _MAX_PARAMS else text[:_MAX_PARAMS - 4] + "...]"


def _eqn_label(e) -> str:
    from ..ir.core import Lit
    from ..ir.printer import format_literal
    head = e.prim.name
    lits = [format_literal(x.value) for x in e.inputs if isinstance(x, Lit)]
    if lits:
        head += " (" + ", ".join(lits) + ")"
    if e.params and e.prim.name != "guard":
        head += "\n" + _short_params(e.params)
    if e.prim.name == "guard":
        return head + f"\n== {'true' if e.params.get('expect', True) else 'false'}"
    return head + "\n" + ", ".join(str(v.type) for v in e.outvars)


def graph_to_dot(g, groups=None, title=None, names=True):
    """A graphviz.Digraph of `g`: node `in{i}` per input, `const{i}` per captured constant,
    `e{i}` per equation (in order), `out{i}` per output; edges follow the data.
    `groups`: lists of equation indices drawn as clusters (codegen's fused loop nests)."""
    from graphviz import Digraph
    from ..ir.core import Lit
    from ..ir.printer import var_names
    dot = Digraph(name=g.name, node_attr=dict(NODE_ATTR),
                  graph_attr=dict(rankdir="TB", fontname=FONT, fontsize="10"),
                  edge_attr=dict(fontname=FONT, fontsize="9"))
    if title:
        dot.attr(label=title, labelloc="t")
    gen = var_names()
    src = {}  # Var -> node id producing it
    label_of = {}
    for i, v in enumerate(g.invars):
        nm = next(gen)
        src[v], label_of[v] = f"in{i}", nm
        dot.node(f"in{i}", f"{nm}: {v.type}" if names else str(v.type), shape="ellipse",
                 fillcolor=INPUT_COLOR)
    for i, v in enumerate(g.constvars):
        nm = next(gen)
        src[v], label_of[v] = f"const{i}", nm
        dot.node(f"const{i}", f"const #{i}\n{v.type}", shape="note", fillcolor=CONST_COLOR)
    in_group = {}
    for k, grp in enumerate(groups or ()):
        for i in grp:
            in_group.setdefault(int(i), k)
    clusters = {k: Digraph(name=f"cluster_{k}") for k in range(len(groups or ()))}
    for k, c in clusters.items():
        c.attr(label=f"loop nest {k}", style="dashed", color="steelblue", fontname=FONT)
    for i, e in enumerate(g.eqns):
        guard = e.prim.name == "guard"
        where = clusters.get(in_group.get(i), dot)
        where.node(f"e{i}", _eqn_label(e), shape="diamond" if guard else "box",
                   fillcolor=GUARD_COLOR if guard else EQN_COLOR)
        nvars = sum(not isinstance(x, Lit) for x in e.inputs)
        if e.prim.name in COMMUTATIVE:
            nvars = 1
        for j, x in enumerate(e.inputs):
            if isinstance(x, Lit) or x not in src:
                continue
            # operand positions matter (sub, dot_general, select): label them when ambiguous
            dot.edge(src[x], f"e{i}", label=str(j) if nvars > 1 else None)
        for v in e.outvars:
            src[v] = f"e{i}"
    for c in clusters.values():
        dot.subgraph(c)
    for i, v in enumerate(g.outvars):
        label = f"out {i}: {v.type}"
        dot.node(f"out{i}", label, shape="ellipse", fillcolor=OUTPUT_COLOR)
        if not isinstance(v, Lit) and v in src:
            dot.edge(src[v], f"out{i}")
    return dot


# ------------------------------------------------------------------------------ rendering

class RenderError(RuntimeError):
    pass


def renderer():
    """The Graphviz executable to use: $ADJIT_GRAPHVIZ (a path, or `none`), else `dot`, else
    `graphviz-pure` (on PATH or beside the running Python); None when there is none."""
    env = os.environ.get("ADJIT_GRAPHVIZ")
    if env:
        return None if env.lower() == "none" else env
    for name in ("dot", "graphviz-pure"):
        exe = shutil.which(name)
        if exe:
            return exe
    here = os.path.join(os.path.dirname(sys.executable), "graphviz-pure")
    return here if os.path.exists(here) else None


def render(dot, path) -> str:
    """Write `dot` (any graphviz.Digraph or DOT source) to `path` (.dot, .gv, .svg or .png).

    Returns `path`. Raises RenderError when no renderer is installed; the DOT source is then
    written beside `path` (same name, .dot) and the message says how to render it."""
    source = dot if isinstance(dot, str) else dot.source
    ext = os.path.splitext(path)[1].lower()
    if ext in (".dot", ".gv"):
        with open(path, "w") as fh:
            fh.write(source)
        return path
    if ext not in (".svg", ".png"):
        raise RenderError(f"cannot write {path}: use .svg, .png or .dot")
    exe = renderer()
    if exe is None:
        dot_path = os.path.splitext(path)[0] + ".dot"
        with open(dot_path, "w") as fh:
            fh.write(source)
        raise RenderError(f"no Graphviz renderer found (neither `dot` nor `graphviz-pure`); "
                          f"wrote {dot_path} instead: `pip install graphviz-pure` and run "
                          f"`graphviz-pure -T{ext[1:]} -o {path} {dot_path}`")
    try:
        res = subprocess.run([exe, f"-T{ext[1:]}", "-o", path], input=source.encode(),
                             capture_output=True, timeout=120)
    except OSError as exc:
        raise RenderError(f"cannot run {exe}: {exc}") from None
    if res.returncode != 0 or not os.path.exists(path):
        err = res.stderr.decode(errors="replace").strip().splitlines()
        raise RenderError(f"{os.path.basename(exe)} failed to render {path}: "
                          f"{err[0] if err else 'exit status ' + str(res.returncode)}")
    return path
