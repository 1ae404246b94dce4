"""jit's hot path for pytree arguments and results: code generated per structure.

`flattener(tag, n, static, tds, kinds)` builds, once per argument structure a jitted function
has been called with, a function `flat(args) -> (key, leaves)` (or None when `args` has another
structure). It checks the structure with one type test (and length test) per container, `is
None` per None entry and, for dicts, one lookup per key, and builds the shape/dtype key of the
leaves in one tuple. Its key starts with `tag`, so structures of equal leaf shapes never share a
key. What jit keys (the trace's argument structure, leaf kinds and types, static values) is
exactly what the generated checks test, so a key found in jit's table maps to the same branches
as the general key (transforms/jit.py) would. Anything else (Tensors, traced values, ndarray
subclasses, static values other than int/bool/str/None (keyed by exact type and value, which
is jit's static key for them), non-array leaves) has no flattener: such calls take the
general path.

`assembler(otd, kinds, pyvals, ndims)` builds `asm(outs) -> the result pytree` of a branch: the
outputs as the caller sees them (0-d arrays as NumPy scalars, weak 0-d values as Python scalars,
Python-scalar outputs of the trace as themselves) in one generated expression.

Dicts are flattened in sorted key order (as JAX does; pytree.py); a result dict is built in that
order too.
"""
from __future__ import annotations

import numpy as np

from .._gencode import define
from ..tracer.pytree import TreeDef

_nd = np.ndarray
# static argument types whose `type(a) is T and a == v` is exactly jit.static_key's equality
_STATIC_TYPES = (int, bool, str, type(None))
MAX_LEAVES = 256  # larger structures are flattened by the general path (generated code size)


def _define(src, env, name):
    """The function `name` that generated source `src` defines (compiled once per source in a
    process: _gencode.define)."""
    return define(src, env, name, f"<adjit.jit {name}>")


def aliases(objs):
    """((position, first position of the same object), ...) of the objects reached more
    than once (None entries skipped): () when every object is reached once. jit traces an
    array object as one value however often it is reached, so its keys include this."""
    seen, out = {}, []
    for i, v in enumerate(objs):
        if v is not None:
            j = seen.setdefault(id(v), i)
            if j != i:
                out.append((i, j))
    return tuple(out)


def leaf_kind(lf, info):
    """How the generated flattener tests and passes one leaf: "nd" (an ndarray, keyed by its
    shape and dtype), ("py", type, dtype) for a Python scalar, ("gen", type) for a NumPy
    scalar; None when it cannot (the structure then takes the general path)."""
    if info is None:
        return None
    t = type(lf)
    if info.kind == "np":
        if t is _nd:
            return "nd"
        if isinstance(lf, np.generic):
            return ("gen", t)
        return None
    if info.kind == "py" and t in (float, int, bool):
        return ("py", t, info.type.np_dtype)
    return None


class _Gen:
    def __init__(self):
        self.env = {"nd": _nd, "asarray": np.asarray}
        self.lines = []
        self.n = 0

    def const(self, v):
        name = f"k{self.n}"
        self.n += 1
        self.env[name] = v
        return name

    def var(self):
        self.n += 1
        return f"v{self.n}"


def flattener(tag, n, static, tds, kinds):
    """The generated flattener of one argument structure (see the module doc), or None.

    n: the number of positional arguments; static: {position: the static value's type}; tds:
    the TreeDefs of the other arguments in order; kinds: leaf_kind of every leaf, in flatten
    order."""
    if len(kinds) > MAX_LEAVES or any(k is None for k in kinds) or \
            any(t not in _STATIC_TYPES for t in static.values()):
        return None
    g = _Gen()
    ind = "        "
    key, leaves = [g.const(tag)], []
    kit = iter(kinds)
    names = [f"a{i}" for i in range(n)]
    body = [f"if len(args) != {n}:", "    return None"]
    if n:
        body.append(f"{', '.join(names)}, = args")
    for i in sorted(static):  # a static value: its exact type tested, the value keyed
        if static[i] is type(None):
            body += [f"if a{i} is not None:", "    return None"]
        else:
            body += [f"if type(a{i}) is not {g.const(static[i])}:", "    return None"]
            key.append(f"a{i}")

    def rec(x, td: TreeDef):
        if td.kind == "leaf":
            k = next(kit)
            if k == "nd":
                body.extend([f"if type({x}) is not nd:", "    return None"])
                key.extend([f"{x}.shape", f"{x}.dtype"])
                leaves.append(x)
            elif k[0] == "py":
                body.extend([f"if type({x}) is not {g.const(k[1])}:", "    return None"])
                leaves.append(f"asarray({x}, {g.const(k[2])})")
            else:
                body.extend([f"if type({x}) is not {g.const(k[1])}:", "    return None"])
                leaves.append(f"asarray({x})")
            return
        if td.kind == "none":
            body.extend([f"if {x} is not None:", "    return None"])
            return
        m = len(td.children)
        t = {"tuple": "tuple", "list": "list", "dict": "dict"}.get(td.kind) or g.const(td.meta)
        body.extend([f"if type({x}) is not {t} or len({x}) != {m}:", "    return None"])
        kids = [g.var() for _ in range(m)]
        if td.kind == "dict":
            for kv, k in zip(kids, td.meta):
                body.append(f"{kv} = {x}[{g.const(k)}]")  # KeyError: another key set
        elif m:
            body.append(f"{', '.join(kids)}, = {x}")
        for kv, c in zip(kids, td.children):
            rec(kv, c)

    dyn = [i for i in range(n) if i not in static]
    if len(dyn) != len(tds):
        return None
    for i, td in zip(dyn, tds):
        rec(f"a{i}", td)
    rec = None  # (a recursive closure is a cycle: cyclic garbage per branch otherwise)
    # positional arrays only: the leaves are `args` itself
    same = not static and leaves == names
    out = "args" if same else "(" + "".join(f"{v}, " for v in leaves) + ")"
    nds = [lf for lf, k in zip(leaves, kinds) if k == "nd"]
    if len(nds) < 2:
        body.append(f"return ({', '.join(key)},), {out}")
    else:  # one array object passed twice: keyed by where (jit traces it as one value)
        dup = " or ".join(f"{p} is {q}" for i, p in enumerate(nds) for q in nds[i + 1:]) \
            if len(nds) <= 6 else f"len({{*map(id, ({', '.join(nds)},))}}) < {len(nds)}"
        g.env["aliases"] = aliases
        body += [f"if {dup}:", f"    lv = {out}",
                 f"    return ({', '.join(key)}, aliases(lv)), lv",
                 f"return ({', '.join(key)},), {out}"]
    src = ["def flat(args):", "    try:"] + [ind + ln for ln in body] + \
        ["    except Exception:",  # a missing dict key, a key that cannot be hashed...
         "        return None"]
    fl = _define("\n".join(src), g.env, "flat")
    fl.source = "\n".join(src)
    return fl


def assembler(otd, kinds, pyvals, ndims):
    """The generated `asm(outs)` of a branch's result pytree (see the module doc), or None
    (Tensor results take the general path)."""
    if "tensor" in kinds or len(kinds) > MAX_LEAVES:
        return None
    g = _Gen()
    it = iter(range(len(kinds)))

    def leaf(i):
        if pyvals[i] is not None:
            return g.const(pyvals[i])
        if ndims[i]:
            return f"o{i}"
        return f"o{i}.item()" if kinds[i] == "weak" else f"o{i}[()]"

    def rec(td: TreeDef):
        if td.kind == "leaf":
            return leaf(next(it))
        if td.kind == "none":
            return "None"
        kids = [rec(c) for c in td.children]
        if td.kind == "tuple":
            return "(" + "".join(k + ", " for k in kids) + ")"
        if td.kind == "list":
            return "[" + ", ".join(kids) + "]"
        if td.kind == "dict":
            return "{" + ", ".join(f"{g.const(k)}: {v}" for k, v in zip(td.meta, kids)) + "}"
        return f"{g.const(td.meta)}({', '.join(kids)})"

    expr = rec(otd)
    rec = None  # (a recursive closure is a cycle: cyclic garbage per branch otherwise)
    m = len(kinds)
    src = ["def asm(outs):"]
    if m:
        src.append(f"    {''.join(f'o{i}, ' for i in range(m))}= outs")
    src.append(f"    return {expr}")
    return _define("\n".join(src), g.env, "asm")
