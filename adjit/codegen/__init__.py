"""Lowering of adjit graphs to LLVM IR: fusion, loop nests, vectorisable math, BLAS calls.

`lower(g)` returns LLVM IR text and what the runtime needs to call it; compiling, loading and
caching are adjit.runtime's. The lowering is imported on first use (a disk-cache hit needs only
`abi`).
"""


def __getattr__(name):
    if name in ("LOWERINGS", "lower"):
        import importlib
        return getattr(importlib.import_module(__name__ + ".lower"), name)
    raise AttributeError(name)
