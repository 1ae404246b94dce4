"""`adjit check`: parse IR text and verify it, reporting each problem with its line and column.

A file may hold several graphs (each starting at a `def` line), as `adjit dump --stage
traced,grad` prints them; `#` lines are comments.
"""
from __future__ import annotations

import re


def _chunks(text):
    """[(first line number, text of one graph)]; lines before the first `def` must be blank
    or comments."""
    lines = text.splitlines()
    starts = [i for i, ln in enumerate(lines) if ln.startswith("def ")]
    if not starts:
        return [(1, text)]
    head = [ln for ln in lines[:starts[0]] if ln.strip() and not ln.strip().startswith("#")]
    out = [(1, "\n".join(lines[:starts[0]]))] if head else []
    for k, s in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        out.append((s + 1, "\n".join(lines[s:end]) + "\n"))
    return out


def _eqn_positions(text):
    """(line, column) of each equation in the order the parser builds them (consts, return,
    comments and blank lines are not equations)."""
    pos = []
    lines = text.splitlines()
    for i, ln in enumerate(lines[1:], start=2):
        s = ln.strip()
        if not s or s.startswith("#") or s.startswith("return") or re.search(r"=\s*const\s+#",
                                                                            s):
            continue
        m = re.search(r"=\s*([a-z_0-9]+)", ln)
        indent = len(ln) - len(ln.lstrip()) + 1
        col = m.start(1) + 1 if m and not s.startswith("guard") else indent
        pos.append((i, col))
    return pos


def _signature(g):
    args = ", ".join(str(v.type) for v in g.invars)
    outs = [str(v.type) for v in g.outvars]
    ret = outs[0] if len(outs) == 1 else "(" + ", ".join(outs) + ")"
    return f"{g.name}({args}) -> {ret}"


def check_text(text: str, label: str = "<stdin>"):
    """(ok, report lines). Each problem reads `LABEL:LINE:COL: error: MESSAGE`."""
    from ..ir.parser import ParseError, parse_graph
    from ..ir.verify import VerifyError, verify
    report, ok = [], True
    for first, chunk in _chunks(text):
        try:
            g = parse_graph(chunk)
        except ParseError as exc:
            report.append(f"{label}:{exc.line + first - 1}:{exc.col}: error: {exc.msg}")
            ok = False
            continue
        try:
            verify(g)
        except VerifyError as exc:
            ok = False
            pos = _eqn_positions(chunk)
            for prob in exc.problems:
                m = re.match(r"equation (\d+) \(([^)]*)\): (.*)", prob)
                if m and int(m.group(1)) - 1 < len(pos):
                    line, col = pos[int(m.group(1)) - 1]
                    line, msg = line + first - 1, f"{m.group(2)}: {m.group(3)}"
                else:  # not about one equation (e.g. the return): point at the header
                    line, col, msg = first, 1, prob
                report.append(f"{label}:{line}:{col}: error: {msg}")
            continue
        n = len(g.eqns)
        report.append(f"ok: {_signature(g)}  ({n} equation{'s' if n != 1 else ''})")
    return ok, report
