"""adjit's calls of `ast.parse` and `inspect.signature`, one thread at a time.

CPython 3.11 counts the depth of the parse tree it turns into `ast` objects in per-interpreter
state, not per thread: when two threads do it at once (a thread switch during a parse, e.g. a
garbage collection that runs a finalizer), one of them can fail with "SystemError: AST
constructor recursion depth mismatch" (CPython issue gh-106905; seen here when four threads
parsed IR text at once). `inspect.signature` of a builtin parses its text signature the same
way. adjit parses IR parameters, and reads NumPy's and the user's signatures, from any thread
that traces or compiles, so it does so under one lock.
"""
from __future__ import annotations

import ast
import inspect
import threading

LOCK = threading.RLock()


def parse(source, mode="exec"):
    """`ast.parse(source, mode=mode)` under LOCK."""
    with LOCK:
        return ast.parse(source, mode=mode)


def signature(f):
    """`inspect.signature(f)` under LOCK."""
    with LOCK:
        return inspect.signature(f)
