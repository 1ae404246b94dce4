"""Lowering of adjit graphs to LLVM IR: fusion, loop nests, vectorisable math, BLAS calls.

`compile_graph(g)` compiles one graph (no caching); `adjit.runtime.get_compiled` caches.
"""
from .lower import LOWERINGS, LOWERING_VERSION, compile_graph  # noqa: F401
