"""Constants computed during a jit trace from arrays jit does not make inputs.

jit makes the arrays of the function's closure cells, the module globals it names and `self`'s
attributes inputs of every call (transforms/live.py). Arrays it cannot reach (attributes of
other objects, containers, globals of helper functions) are constants of the trace, bound by
reference: a later in-place write shows through, but a value NumPy computed from them while
tracing (`np.sum(H)`, `H.mean(0)`, `H * 2` in a helper) is frozen. `note(arr)` is called for
each NumPy array or scalar the user's code hands a traced operation inside a transform: when
the user's line names (as a name its code loads, or an attribute chain `obj.data` of one) a
plain ndarray other than that value itself (a direct read `x + H` is by reference, not
frozen), the first such line is kept for jit to warn about once per trace.
"""
from __future__ import annotations

import linecache
import re
import sys

import numpy as np

from .._frames import is_adjit_file
from ..ir.core import STATE

FOUND: dict = {}   # id(jit trace) -> (file, line, name), the first per trace
_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


def _jit_trace():
    for tr in reversed(STATE.stack):
        if getattr(tr, "kind", None) == "jit":
            return tr
    return None


def _user_frame():
    f = sys._getframe(2)
    while f is not None and is_adjit_file(f.f_code.co_filename):
        f = f.f_back
    return f


def _resolve(frame, chain):
    """The first plain ndarray along `a.b.c` (arguments, closure variables and globals of the
    frame; plain attributes only, so no property runs), and its name."""
    c = frame.f_code
    outside = c.co_varnames[:c.co_argcount + c.co_kwonlyargcount] + c.co_freevars
    v = frame.f_locals.get(chain[0], _MISSING) if chain[0] in outside else _MISSING
    if v is _MISSING and chain[0] not in c.co_varnames and chain[0] not in c.co_cellvars:
        v = frame.f_globals.get(chain[0], _MISSING)
    for k, a in enumerate(chain[1:], 1):
        if type(v) is np.ndarray:
            return v, ".".join(chain[:k])
        d = getattr(v, "__dict__", None)
        if not isinstance(d, dict) or a not in d:
            return _MISSING, None
        v = d[a]
    return v, ".".join(chain)


_MISSING = object()


def _owns(src, arr):
    while arr is not None:
        if arr is src:
            return True
        arr = getattr(arr, "base", None)
    return False


def note(arr):
    jt = _jit_trace()
    if jt is None or id(jt) in FOUND:
        return
    frame = _user_frame()
    if frame is None:
        return
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    line = line.split("#", 1)[0]
    src = None
    c = frame.f_code
    loaded = set(c.co_names) | set(c.co_freevars) | set(c.co_varnames)
    for m in _NAME.finditer(line):
        chain = m.group().split(".")
        if chain[0] not in loaded:
            continue
        v, name = _resolve(frame, chain)
        if type(v) is not np.ndarray or v.size < 2:
            continue
        if _owns(v, arr):
            return  # a direct read of the array: bound by reference
        src = src or name
    if src is not None:
        FOUND[id(jt)] = (frame.f_code.co_filename, frame.f_lineno, src)
