"""Lowering of adjit graphs to LLVM IR: fusion, loop nests, vectorisable math, BLAS calls.

`compile_graph(g)` compiles one graph (no caching); `adjit.runtime.get_compiled` caches.
The lowering is imported on first use (a disk-cache hit needs only `abi`).
"""


def __getattr__(name):
    if name in ("LOWERINGS", "compile_graph"):
        from . import lower
        return getattr(lower, name)
    raise AttributeError(name)
