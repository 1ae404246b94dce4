"""Which BLAS library native products call, and its entry points' addresses.

`provider()` finds NumPy's own OpenBLAS (ILP64, `scipy_sgemm_64_` or `sgemm_64_`) among the
libraries the process has mapped: nothing to import, one thread pool shared with NumPy's `@`.
Fallback: SciPy's `cython_blas` (LP64; `ADJIT_BLAS=scipy` forces it), with its OpenBLAS pool's
thread functions when that library exports them. `ADJIT_BLAS_THREADS=keep` reports no pool
control (native.py then never sizes the pool nor splits products). `identity()` names the
chosen library (path, size, modification time, flavour): part of the disk-cache key.
"""
from __future__ import annotations

import ctypes
import os
import threading

_LOCK = threading.Lock()
_PROVIDER = None
_IDENTITY = None
_CYTHON = {}
# Fortran-ABI ILP64 products and the pool's thread functions, by library flavour
_ILP64 = (("scipy_sgemm_64_", "scipy_dgemm_64_", "scipy_openblas_get_num_threads64_",
           "scipy_openblas_set_num_threads64_"),
          ("sgemm_64_", "dgemm_64_", "openblas_get_num_threads64_",
           "openblas_set_num_threads64_"))


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _addr(fn):
    return ctypes.cast(fn, ctypes.c_void_p).value


_DLLS = {}


def _dll(path):
    """ctypes.CDLL(path), one per path and process: a CDLL dropped is cyclic garbage (its own
    function-pointer class), which would feed the collector at every link."""
    lib = _DLLS.get(path)
    if lib is None:
        lib = _DLLS[path] = ctypes.CDLL(path)
    return lib


def numpy_blas():
    """NumPy's own OpenBLAS (ILP64, loaded with NumPy, so nothing to import and one thread
    pool shared with NumPy's matmul): (ilp64, sgemm, dgemm, get, set, path) or None."""
    import numpy  # noqa: F401  (maps NumPy's BLAS into the process)
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({ln.split()[-1] for ln in f if "blas" in ln.lower() and "/" in ln})
    except OSError:
        return None
    for path in paths:
        try:
            lib = _dll(path)
        except OSError:
            continue
        for names in _ILP64:
            try:
                fns = [getattr(lib, n) for n in names]
            except AttributeError:
                continue
            return (True, *[_addr(f) for f in fns], path)
    return None


def scipy_blas():
    """SciPy's cython_blas (LP64) and, when its library is OpenBLAS, the pool's thread
    functions: (ilp64, sgemm, dgemm, get or None, set or None, path)."""
    s, d = blas_address("sgemm"), blas_address("dgemm")
    get = set_ = None
    path = "scipy.linalg.cython_blas"
    try:
        libc = _dll(None)
        info = _DlInfo()
        if libc.dladdr(ctypes.c_void_p(d), ctypes.byref(info)):
            path = info.dli_fname.decode()
            lib = _dll(path)
            for prefix in ("scipy_openblas", "openblas"):
                try:
                    get = _addr(getattr(lib, f"{prefix}_get_num_threads"))
                    set_ = _addr(getattr(lib, f"{prefix}_set_num_threads"))
                    break
                except AttributeError:
                    continue
    except (OSError, AttributeError):
        pass
    return False, s, d, get, set_, path


def provider():
    """(ilp64, sgemm, dgemm, get_threads or None, set_threads or None, path), decided once per
    process: ADJIT_BLAS=scipy forces SciPy's BLAS; ADJIT_BLAS_THREADS=keep leaves its pool
    alone (the BLAS then threads as it likes, and products are never split)."""
    global _PROVIDER
    if _PROVIDER is None:
        with _LOCK:
            if _PROVIDER is None:
                want = os.environ.get("ADJIT_BLAS", "").strip().lower()
                prov = None if want == "scipy" else numpy_blas()
                if prov is None:
                    prov = scipy_blas()
                if os.environ.get("ADJIT_BLAS_THREADS", "").strip().lower() in ("keep",
                                                                                   "blas"):
                    prov = prov[:3] + (None, None) + prov[5:]
                _PROVIDER = prov
    return _PROVIDER


def identity() -> str:
    """The library products call: path, size and modification time of its file, ILP64 or not,
    pool control or not (cached per process; part of every disk-cache key)."""
    global _IDENTITY
    if _IDENTITY is None:
        ilp64, _, _, get, set_, path = provider()
        try:
            st = os.stat(path)
            file = f"{os.path.realpath(path)}:{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            file = path
        _IDENTITY = f"{file}|ilp64={ilp64}|control={get is not None and set_ is not None}"
    return _IDENTITY


def blas_address(name: str) -> int:
    """Address of SciPy's Fortran-ABI BLAS routine `name` (sgemm, dgemm, ...), via the capsule
    in scipy.linalg.cython_blas (the route Numba takes; no C compiler needed)."""
    addr = _CYTHON.get(name)
    if addr is None:
        from scipy.linalg import cython_blas
        cap = cython_blas.__pyx_capi__[name]
        api = ctypes.pythonapi
        api.PyCapsule_GetName.restype = ctypes.c_char_p
        api.PyCapsule_GetName.argtypes = [ctypes.py_object]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        addr = api.PyCapsule_GetPointer(cap, api.PyCapsule_GetName(cap))
        _CYTHON[name] = addr
    return addr


_LAPACK = {}


def lapack_address(routine: str) -> int:
    """Address of Fortran LAPACK routine `routine` (dgesv, dsyevd, ...) in NumPy's own ILP64
    OpenBLAS (`scipy_dgesv_64_`, the symbol NumPy's `_umath_linalg` calls), resolved like the
    GEMMs. Compiled code passes 64-bit integers, so another library (SciPy's LP64
    `cython_lapack`) cannot serve it: CompileError, and the graph runs in the interpreter
    (which calls np.linalg)."""
    addr = _LAPACK.get(routine)
    if addr is None:
        from ..codegen.errors import CompileError
        prov = provider()
        path = prov[5]
        if not prov[0]:
            raise CompileError(f"LAPACK routine {routine}",
                               "native LAPACK calls need NumPy's 64-bit-integer (ILP64) "
                               f"OpenBLAS; the BLAS in use is {path} (ADJIT_BLAS=scipy or a "
                               "NumPy without scipy-openblas64)")
        lib = _dll(path)
        for name in (f"scipy_{routine}_64_", f"{routine}_64_"):
            try:
                addr = _addr(getattr(lib, name))
                break
            except AttributeError:
                continue
        else:
            raise CompileError(f"LAPACK routine {routine}", f"{path} does not export it")
        _LAPACK[routine] = addr
    return addr
