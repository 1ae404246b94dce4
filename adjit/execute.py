"""One way to run a Graph on arrays: native code when it compiles, else the interpreter.

Every user of graphs (Tensor.backward, grad, jit, vmap) ends here for concrete values, so the
backend switch lives in one place. The compiled code is kept on the Graph object itself
(`g.native`): callers that reuse a graph (jit branches, cached derivative graphs, the eager
backward cache) pay one attribute read, not a cache lookup by structure.

`ADJIT_DISABLE_JIT=1` (read when a graph first runs) keeps everything in the interpreter.
"""
from __future__ import annotations

import os
import time
import warnings

from .ir.graph import eval_graph

_WARNED = set()
_OFF = object()


def jit_enabled() -> bool:
    return os.environ.get("ADJIT_DISABLE_JIT", "") in ("", "0")


def _native(g):
    from .runtime import CompileError, get_compiled
    if not jit_enabled():
        return _OFF
    from .ir.passes import optimize
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
        return eval_graph(g, args, g.consts if consts is None else consts)
    return cg(args, None if consts is g.consts else consts)
