"""Native execution: the LLVM engine, the call path and the compiled-code caches.

    >>> import numpy as np
    >>> from adjit.ir import parse_graph
    >>> g = parse_graph("def f(a: f64[2]) -> f64[2]:\\n  b: f64[2] = add a 1.0\\n  return b\\n")
    >>> compile_and_run(g, [np.array([1.0, 2.0])])
    [array([2., 3.])]
"""
from __future__ import annotations

import os
import warnings

from .engine import CompileError  # noqa: F401
from .cache import cache_clear, cache_info  # noqa: F401

_WARNED = set()


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


def compile_and_run(g, args, consts=None):
    """Run graph `g` on NumPy arrays (`consts` binds its constvars, default g.consts): native
    code when it can be compiled, else (with one warning per graph structure) the reference
    interpreter. Outputs are fresh arrays."""
    try:
        cg = get_compiled(g)
    except CompileError as exc:
        key = g.structure_key()
        if key not in _WARNED:
            _WARNED.add(key)
            warnings.warn(f"{exc}; running it in the interpreter", RuntimeWarning,
                          stacklevel=2)
        cg = None
    if cg is None:
        from ..execute import fresh
        from ..ir.graph import eval_graph
        cs = g.consts if consts is None else consts
        return fresh(eval_graph(g, args, cs), args, cs)
    return cg(args, consts)
