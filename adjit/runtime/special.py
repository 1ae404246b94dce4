"""Addresses of SciPy's scalar special functions for compiled code (see codegen/special.py).

An import `sf<nin>_<capsule>` is the C function `capsule` of scipy.special.cython_special's
`__pyx_capi__`; its signature is checked against `double (double, ..., int)` (nin doubles)
before the address is handed to the linker. SciPy is imported on the first such import only.
"""
from __future__ import annotations

import ctypes
import re
import threading

_LOCK = threading.Lock()
_ADDR: dict = {}
_NAME = re.compile(r"sf([1-9])_(\w+)\Z")


def is_special(name: str) -> bool:
    return _NAME.match(name) is not None


def address(name: str) -> int:
    """Address of the import `name` (sf<nin>_<capsule>)."""
    addr = _ADDR.get(name)
    if addr is not None:
        return addr
    m = _NAME.match(name)
    nin, capsule = int(m.group(1)), m.group(2)
    with _LOCK:
        from scipy.special import cython_special
        cap = cython_special.__pyx_capi__.get(capsule)
        if cap is None:
            raise LookupError(f"scipy.special.cython_special has no C function {capsule!r} "
                              "(SciPy version?)")
        api = ctypes.pythonapi
        api.PyCapsule_GetName.restype = ctypes.c_char_p
        api.PyCapsule_GetName.argtypes = [ctypes.py_object]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        sig = api.PyCapsule_GetName(cap)
        want = "double (" + "double, " * nin + "int __pyx_skip_dispatch)"
        if sig.decode() != want:
            raise LookupError(f"scipy.special.cython_special.{capsule} has signature "
                              f"{sig.decode()!r}, expected {want!r}")
        addr = _ADDR[name] = api.PyCapsule_GetPointer(cap, sig)
    return addr
