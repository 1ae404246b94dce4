"""The verifier: SSA form, every equation's parameters and literals valid for its primitive
(param_rules.check_params), and its types agree with its primitive's shape rule."""
from __future__ import annotations

from .core import Lit
from .graph import Graph
from .param_rules import check_params


class VerifyError(ValueError):
    def __init__(self, problems):
        super().__init__("; ".join(problems))
        self.problems = problems


def _types(t):
    return ", ".join(str(x) for x in t) if isinstance(t, tuple) else str(t)


def verify(g: Graph) -> Graph:
    """Check `g`; return it unchanged, or raise VerifyError listing every problem."""
    problems = []
    defined = set()
    for v in list(g.invars) + list(g.constvars):
        if v in defined:
            problems.append(f"{v} defined twice")
        defined.add(v)
    for i, e in enumerate(g.eqns):
        where = f"equation {i + 1} ({e.prim.name})"
        for x in e.inputs:
            if not isinstance(x, Lit) and x not in defined:
                problems.append(f"{where}: operand used before it is defined")
        for v in e.outvars:
            if v in defined:
                problems.append(f"{where}: output defined twice (SSA)")
            defined.add(v)
        if problems:
            continue
        bad = check_params(e.prim, e.inputs, e.params)
        if bad:
            problems.extend(f"{where}: {p}" for p in bad)
            continue
        try:
            want = e.prim.shape_rule(*[x.type for x in e.inputs], **e.params)
        except Exception as exc:  # the rule rejects the operands: that is the finding
            problems.append(f"{where}: {exc}")
            continue
        if e.prim.name == "guard":
            continue
        if e.prim.nout != 1:
            got = tuple(v.type for v in e.outvars)
            want = tuple(want) if isinstance(want, (tuple, list)) else want
        else:
            if len(e.outvars) != 1:
                problems.append(f"{where}: {len(e.outvars)} results for a one-result primitive")
                continue
            got = e.outvars[0].type
        if want != got:
            problems.append(f"{where}: declared {_types(got)} but the shape rule gives "
                            f"{_types(want)}")
    for v in g.outvars:
        if not isinstance(v, Lit) and v not in defined:
            problems.append("return of an undefined value")
    if problems:
        raise VerifyError(problems)
    return g
