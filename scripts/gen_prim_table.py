"""Regenerate the primitive table in docs/ir.md from the registry (never written by hand).

    python scripts/gen_prim_table.py          # rewrite the table between the markers
    python scripts/gen_prim_table.py --check  # exit 1 if the table is stale (tests use this)

Operands and params come from each shape rule's signature (positional parameters are operands,
keyword-only ones are params), so the table says what the verifier will accept.
"""
from __future__ import annotations

import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ir.md"
BEGIN, END = "<!-- prims:begin -->", "<!-- prims:end -->"


def _signature(prim):
    operands, params = [], []
    for p in inspect.signature(prim.shape_rule).parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            operands.append(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            operands.append(p.name + "...")
        elif p.kind == p.KEYWORD_ONLY:
            params.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    return operands, params


def table() -> str:
    from adjit.ir import REGISTRY
    rows = ["| primitive | operands | params | dtypes | derivatives |",
            "|---|---|---|---|---|"]
    for name in sorted(REGISTRY):
        prim = REGISTRY[name]
        operands, params = _signature(prim)
        if prim.vjp is None:
            deriv = "none"
        else:
            jvp = "jvp refused" if getattr(prim.jvp, "refuses", False) else "jvp"
            deriv = f"vjp, {jvp}" + (", smooth (order 2 tested)" if prim.smooth else "")
        rows.append(f"| `{name}` | {' '.join(operands) or '-'} | "
                    f"{', '.join(params) or '-'} | {' '.join(prim.dtypes)} | {deriv} |")
    return "\n".join(rows) + "\n"


def render(doc: str) -> str:
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table()}{END}{tail}"


def main(argv) -> int:
    doc = DOC.read_text()
    new = render(doc)
    if "--check" in argv:
        if new != doc:
            print("docs/ir.md: the primitive table is stale; run scripts/gen_prim_table.py")
            return 1
        return 0
    if new != doc:
        DOC.write_text(new)
        print("updated docs/ir.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
