"""Which code is adjit's own: the one test used by IR source locations, traceback filtering and
the CLI's "your code failed" reports.

A frame belongs to adjit when its file lies inside this package's folder, compared by real path
with a trailing separator, so a checkout under `.../adjit/tests/...` or a user file named
`adjit_helpers.py` beside the package is still the user's code. The benchmark workloads
(`adjit/bench/workloads/`) are written as users write their code and count as theirs: their
equations are located at the workload's own lines, and locating them stops there (walking on
to the benchmark's caller cost each recorded equation a dozen frames a user's code does not).
"""
from __future__ import annotations

import os
import sys

PACKAGE_DIR = os.path.realpath(os.path.dirname(os.path.abspath(__file__))) + os.sep
_LITERAL_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_USER_DIRS = tuple(os.path.join(d, "bench", "workloads") + os.sep
                   for d in (PACKAGE_DIR, _LITERAL_DIR))
_CACHE: dict[str, bool] = {}


def is_adjit_file(filename: str) -> bool:
    """True when `filename` (a code object's co_filename) is a module of the adjit package."""
    hit = _CACHE.get(filename)
    if hit is None:
        if filename.startswith(_USER_DIRS):
            hit = False
        elif filename.startswith(_LITERAL_DIR):
            hit = True
        elif filename.startswith("<"):
            # code adjit generates (`<adjit plan f>`, `<adjit.jit flat>`, `<adjit native
            # entry>`) is adjit's; any other (`<stdin>`, `<ipython-input-...>`) the user's
            hit = filename.startswith("<adjit")
        else:
            real = os.path.realpath(filename)
            hit = real.startswith(PACKAGE_DIR) and not real.startswith(_USER_DIRS)
        if len(_CACHE) > 4096:
            _CACHE.clear()
        _CACHE[filename] = hit
    return hit


def user_stacklevel() -> int:
    """`warnings.warn`'s stacklevel naming the innermost frame outside adjit: the user's line
    that called into adjit, however many of adjit's frames lie between (the caller of the
    function calling this is stacklevel 1)."""
    f, level = sys._getframe(2), 2
    while f is not None and is_adjit_file(f.f_code.co_filename):
        f, level = f.f_back, level + 1
    return level
