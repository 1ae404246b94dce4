"""Parse the text `printer.print_graph` writes back into a Graph (grammar: docs/ir.md)."""
from __future__ import annotations

import ast
import re
import struct

from .. import _ast
from .core import Lit, REGISTRY
from .graph import Eqn, Graph, Var
from .types import parse_type


class ParseError(ValueError):
    def __init__(self, msg, line, col=1):
        super().__init__(f"line {line}, column {col}: {msg}")
        self.msg, self.line, self.col = msg, line, col


_HEADER = re.compile(r"^def\s+([A-Za-z_]\w*)\((.*)\)\s*->\s*(.+):\s*$")
_DEF = re.compile(r"^(\s+)([a-z]+)\s*:\s*([a-z0-9]+\[[0-9, ]*\])\s*=\s*(.*)$")
# `a: f64[3], b: i64[3] = prim x`: the results of a primitive with several (before the `=`)
_MORE = re.compile(r"^(\s+)((?:[a-z]+\s*:\s*[a-z0-9]+\[[0-9, ]*\]\s*,\s*)+)"
                   r"([a-z]+)\s*:\s*([a-z0-9]+\[[0-9, ]*\])\s*=\s*(.*)$")
_ONE = re.compile(r"([a-z]+)\s*:\s*([a-z0-9]+\[[0-9, ]*\])")
_LOC = re.compile(r'\s+loc\("((?:[^"\\]|\\.)*)":(\d+)\)\s*$')
_NAME = re.compile(r"^[a-z]+$")


def _split_types(text):
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    return [t.strip(" ,") + "]" for t in text.split("]") if t.strip(" ,")]


def _parse_params(text, lineno, col):
    try:
        call = _ast.parse(f"f({text})", mode="eval").body
        return {kw.arg: _param_value(kw.value) for kw in call.keywords}
    except (SyntaxError, ValueError) as exc:
        raise ParseError(f"bad parameters [{text}]: {exc}", lineno, col) from None


def _param_value(node):
    """literal_eval plus the float names the printer writes for non-finite values."""
    if isinstance(node, ast.Name) and node.id in ("inf", "nan"):
        return float(node.id)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
            node.func.id == "nan" and len(node.args) == 1 and not node.keywords and \
            isinstance(node.args[0], ast.Constant):
        v = _nan_bits(node.args[0].value)
        if v is None:
            raise ValueError("nan(BITS): BITS must be the 64 bits of a NaN")
        return v
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and \
            isinstance(node.operand, ast.Name) and node.operand.id == "inf":
        return float("-inf")
    return ast.literal_eval(node)


def _nan_bits(bits):
    """The NaN whose 64 bits are `bits` (an int), or None when they are not a NaN's."""
    if type(bits) is not int or not 0 <= bits < 1 << 64:
        return None
    v = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return v if v != v else None  # noqa: PLR0124 - a NaN


_NAN_TOKEN = re.compile(r"nan\((0x[0-9a-f]{16})\)")


def _literal(tok):
    if tok in ("True", "False"):
        return tok == "True"
    if tok in ("inf", "-inf", "nan"):
        return float(tok)
    m = _NAN_TOKEN.fullmatch(tok)
    if m:  # a NaN other than float("nan"), by its bits (printer.format_literal)
        return _nan_bits(int(m.group(1), 16))
    try:
        return int(tok) if re.fullmatch(r"-?\d+", tok) else float(tok)
    except ValueError:
        return None


def parse_graph(text: str) -> Graph:
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()
             and not ln.strip().startswith("#")]
    if not lines:
        raise ParseError("empty input: expected `def NAME(ARGS) -> TYPE:`", 1)
    lineno, header = lines[0]
    m = _HEADER.match(header)
    if not m:
        raise ParseError("expected `def NAME(ARGS) -> TYPE:`", lineno)
    env = {}
    invars = []
    for arg in filter(None, (a.strip() for a in _split_args(m.group(2)))):
        nm, _, ty = arg.partition(":")
        v = Var(_type(ty, lineno, header.find(arg) + 1), nm.strip())
        if nm.strip() in env:
            raise ParseError(f"argument {nm.strip()} defined twice", lineno)
        env[nm.strip()] = v
        invars.append(v)
    ret_types = [_type(t, lineno, 1) for t in _split_types(m.group(3))]
    constvars, eqns, outvars = [], [], None
    for lineno, ln in lines[1:]:
        if outvars is not None:
            raise ParseError("text after `return`", lineno)
        loc = None
        lm = _LOC.search(ln)
        if lm:
            loc = (lm.group(1).replace('\\"', '"').replace("\\\\", "\\"), int(lm.group(2)))
            ln = ln[:lm.start()]
        s = ln.strip()
        col = len(ln) - len(ln.lstrip()) + 1
        if s.startswith("return"):
            outvars = [_operand(t.strip(), env, lineno, col, None)
                       for t in s[len("return"):].split(",") if t.strip()]
            continue
        if s.startswith("guard "):
            gm = re.fullmatch(r"guard\s+([a-z]+)\s*==\s*(true|false)", s)
            if not gm:
                raise ParseError("expected `guard VAR == true|false`", lineno, col)
            v = _operand(gm.group(1), env, lineno, col, None)
            eqns.append(Eqn(REGISTRY["guard"], [v], {"expect": gm.group(2) == "true"}, [], loc))
            continue
        results = None
        mm = _MORE.match(ln)
        if mm:  # several results: `a: T, b: U = prim ...`
            results = [(n, _type(t, lineno, col)) for n, t in _ONE.findall(mm.group(2))]
            results.append((mm.group(3), _type(mm.group(4), lineno, col)))
            name, typ, rhs = results[0][0], results[0][1], mm.group(5).strip()
            for n, _ in results:
                if n in env or [m for m, _ in results].count(n) > 1:
                    raise ParseError(f"{n} is defined twice (SSA)", lineno, col)
        else:
            dm = _DEF.match(ln)
            if not dm:
                raise ParseError("expected `VAR: TYPE = PRIMITIVE ARGS`", lineno, col)
            name, typ, rhs = dm.group(2), _type(dm.group(3), lineno, col), dm.group(4).strip()
            if name in env:
                raise ParseError(f"{name} is defined twice (SSA)", lineno, col)
        cm = re.fullmatch(r"const\s+#(\d+)", rhs)
        if cm and results:
            raise ParseError("a const has one result", lineno, col)
        if cm:
            v = Var(typ, name)
            constvars.append(v)
            env[name] = v
            continue
        pm = re.match(r"([a-z_0-9]+)", rhs)
        if not pm:
            raise ParseError("expected a primitive name", lineno, col)
        pname = pm.group(1)
        if pname not in REGISTRY:
            raise ParseError(f"unknown primitive {pname!r}", lineno, ln.find(rhs) + 1)
        rest = rhs[pm.end():]
        params = {}
        if rest.startswith("["):
            end = _match_bracket(rest, lineno)
            params = _parse_params(rest[1:end], lineno, ln.find(rest) + 1)
            rest = rest[end + 1:]
        base = len(ln.rstrip()) - len(rest)
        toks = [(m.group(), base + m.start() + 1) for m in re.finditer(r"\S+", rest)]
        lit_dt = next((env[t].type.dtype for t, _ in reversed(toks) if t in env), typ.dtype)
        ins = [_operand(t, env, lineno, c, lit_dt) for t, c in toks]
        prim = REGISTRY[pname]
        outs = [Var(t, n) for n, t in (results or [(name, typ)])]
        if len(outs) != prim.nout:
            raise ParseError(f"{pname} has {prim.nout} result{'s' if prim.nout != 1 else ''}, "
                             f"{len(outs)} declared", lineno, col)
        for v in outs:
            env[v.name] = v
        eqns.append(Eqn(prim, ins, params, outs, loc))
    if outvars is None:
        raise ParseError("missing `return`", lines[-1][0] + 1)
    if [getattr(v, "type", None) for v in outvars] != ret_types:
        raise ParseError(f"return types {[str(getattr(v, 'type', v)) for v in outvars]} do not "
                         f"match the signature {[str(t) for t in ret_types]}", lines[-1][0])
    return Graph(invars, constvars, eqns, outvars, None, m.group(1))


def _split_args(text):
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def _match_bracket(s, lineno):
    depth = 0
    for i, ch in enumerate(s):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
            if depth == 0:
                return i
    raise ParseError("unclosed `[`", lineno)


def _type(text, lineno, col):
    try:
        return parse_type(text)
    except ValueError as exc:
        raise ParseError(str(exc), lineno, col) from None


def _operand(tok, env, lineno, col, lit_dt):
    if _NAME.match(tok) and tok not in ("inf", "nan"):
        if tok not in env:
            raise ParseError(f"{tok} is used before it is defined", lineno, col)
        return env[tok]
    val = _literal(tok)
    if val is None or lit_dt is None:
        raise ParseError(f"bad operand {tok!r}", lineno, col)
    return Lit(val, lit_dt)
