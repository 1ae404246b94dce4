"""Graph -> native code, without caching: lower (codegen), optimise and emit (engine), link
(call). `adjit.runtime.get_compiled` adds the memory and disk caches."""
from __future__ import annotations

from . import engine


def compile_object(g):
    """(object code, meta) for graph `g`: lower, optimise (-O3, vectorised), emit."""
    from ..codegen.lower import lower
    text, meta = lower(g)
    what = f"graph {g.name}"
    mod = engine.optimize(text, what)
    return engine.emit_object(mod, what), meta


def compile_graph(g):
    """Compile graph `g` to native code (no caching: see adjit.runtime.get_compiled).

    >>> import numpy as np
    >>> from adjit.ir import parse_graph
    >>> g = parse_graph("def f(a: f64[3]) -> f64[3]:\\n  b: f64[3] = mul a 2.0\\n  return b\\n")
    >>> compile_graph(g)([np.arange(3.0)])[0]
    array([0., 2., 4.])
    """
    from .call import CompiledGraph
    obj, meta = compile_object(g)
    return CompiledGraph(g, obj, meta)
