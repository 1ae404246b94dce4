"""Native execution: the LLVM engine, the call path, the compiled-code caches, and `run_graph`,
the one way a Graph runs on arrays.

Every user of graphs (Tensor.backward, grad, jit, vmap) ends in `run_graph` for concrete values,
so the backend switch lives in one place: native code when the graph compiles, else the
reference interpreter. The compiled code is kept on the Graph object itself (`g.native`):
callers that reuse a graph (jit branches, cached derivative graphs, the eager backward cache)
pay one attribute read, not a cache lookup by structure.

`ADJIT_DISABLE_JIT=1` (read when a graph first runs) keeps everything in the interpreter.

    >>> import numpy as np
    >>> from adjit.ir import parse_graph
    >>> g = parse_graph("def f(a: f64[2]) -> f64[2]:\\n  b: f64[2] = add a 1.0\\n  return b\\n")
    >>> run_graph(g, [np.array([1.0, 2.0])])
    [array([2., 3.])]
"""
from __future__ import annotations

import os
import time
import warnings

import numpy as np

from ..codegen.errors import CompileError  # noqa: F401
from .cache import cache_clear, cache_info  # noqa: F401
from .compile import compile_graph  # noqa: F401

_WARNED = set()
_OFF = object()


def jit_enabled() -> bool:
    """False when ADJIT_DISABLE_JIT=1: nothing is compiled, graphs run in the interpreter."""
    return os.environ.get("ADJIT_DISABLE_JIT", "") in ("", "0")


def get_compiled(g):
    """The native code for graph `g` (cached in memory and on disk), or None when JIT is
    disabled. Raises CompileError when `g` cannot be compiled."""
    if not jit_enabled():
        return None
    from .cache import get_compiled as _get
    return _get(g)


def _native(g):
    if not jit_enabled():
        return _OFF
    from ..ir.passes import optimize
    t0 = time.perf_counter()
    try:
        # adjit's own passes first (DCE, CSE, folding, x*1, pow x 1.0, ...): smaller code and
        # a cache key that ignores what they remove. Constvars and their bindings are kept.
        cg = get_compiled(optimize(g))
    except CompileError as exc:
        key = g.structure_key()  # once per graph (not per function name: each variant warns)
        if key not in _WARNED:
            _WARNED.add(key)
            warnings.warn(f"{exc}; running it in the interpreter", RuntimeWarning, stacklevel=3)
        return _OFF
    if cg is None:
        return _OFF
    cg = cg.for_graph(g)
    cg.compile_seconds = time.perf_counter() - t0  # incl. a disk or memory cache hit
    return cg


def run_graph(g, args, consts=None):
    """Evaluate `g` on NumPy arrays: `args` by position, `consts` binds the constvars (None:
    the graph's own bindings). Returns a list of fresh arrays."""
    cg = g.native
    if cg is None:
        cg = g.native = _native(g)
    if cg is _OFF:
        from ..ir.graph import eval_graph
        cs = g.consts if consts is None else consts
        return fresh(eval_graph(g, args, cs), args, cs)
    return cg(args, None if consts is g.consts else consts)


def fresh(outs, args=(), consts=()):
    """`outs` as fresh arrays, as compiled code returns them: the interpreter's results may be
    an argument or constant itself, a view of one (reshape, slice, transpose, a read-only
    broadcast), or one array named by several outputs. Each such output is copied, so every
    output is a writable array of its own that no argument, constant or other output shares."""
    taken = {id(a) for a in args}
    taken.update(id(getattr(c, "val", c)) for c in consts)
    res = []
    for o in outs:
        if isinstance(o, np.ndarray) and (id(o) in taken or o.base is not None or
                                          not o.flags.writeable):
            o = o.copy()
        taken.add(id(o))
        res.append(o)
    return res
