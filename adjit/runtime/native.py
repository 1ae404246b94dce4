"""The runtime's own native helpers, compiled from the LLVM IR files in ll/ (threads.ll; blas.ll
and gemm.ll, filled in once per precision) by the compile worker (or read from the disk cache)
and loaded like a graph, once per process.
Compiled graphs import them by name (`adjit_<name>`, as BLAS routines used to be imported), so
object code in the disk cache holds no address and no policy: thread counts and
the BLAS library are decided here, at run time.

Threads
    `adjit_parallel_for(fn, ctx, n)` runs `fn(ctx, i)` for i in [0, n): the blocks of a large
    loop nest or product (codegen/parallel.py, the GEMM halves below). With more than one
    thread allowed, the call posts the job to the helper thread (one per process, started on
    first use, pinned to the CPUs other than the caller's at that moment) and both take blocks
    from a shared atomic counter until none is left; the caller then waits (sched_yield) for the
    blocks in flight. Taking blocks dynamically keeps a busy machine from hurting: if the
    helper is not scheduled, the caller simply does every block itself. The helper spins
    (sched_yield) for ~3 ms after a job, so that back-to-back nests find it running - waking an
    idle vCPU here took milliseconds, which lost the whole gain - then sleeps on a futex. The
    job record is heap-allocated and reference-counted, so a helper that takes it late touches
    nothing of a finished call. One call at a time owns the helper; a concurrent call runs its
    blocks itself. Back-off: when a parallel nest was not 10% faster than the caller's time
    per block times the number of blocks (another process held the helper's CPU), the next
    1, 2, 4, ... 256 parallel nests run serially, so a busy machine costs about the one-thread
    time instead of a time slice per nest. In a fork child (os.register_at_fork) the next parallel nest starts a new
    helper. Blocks are fixed at compile time (shape only) and each writes its own outputs or
    partial results, so results never depend on the thread count or the scheduling.
    `adjit_set_threads(n)` / `adjit_get_threads()`: the setting (ADJIT_NUM_THREADS, default
    2 when the process may run on two CPUs or more).

BLAS
    `adjit_sgemm` / `adjit_dgemm` (the Fortran ABI, 13 pointer arguments, 32-bit integers) call
    the library blas.py finds: NumPy's own OpenBLAS (ILP64 `scipy_sgemm_64_`: the integers are
    widened), else SciPy's `cython_blas` (`ADJIT_BLAS=scipy` forces it). Products of at most
    2^18 multiply-adds run as they are (OpenBLAS runs those on one thread anyway). Larger ones
    run with the BLAS pool set to one thread, and from 2^22 multiply-adds on as two halves of
    the larger of the BLAS `m` and `n` (each half packs the other operand again, so the smaller
    one is duplicated) through adjit_parallel_for.
    Reason: OpenBLAS's workers spin-wait, so on a busy 2-core machine its 2-thread GEMMs were
    3-5x slower than one thread (the same halves on adjit's threads degrade to the one-thread
    time instead), and SciPy's and NumPy's OpenBLAS are two separate pools that would
    otherwise contend with each other and with adjit's loops. The pool size is changed only
    while such a product runs (a process-wide counter under a spinlock restores it when the
    last one ends); a concurrent NumPy call in another thread may then see one BLAS thread.
    `ADJIT_BLAS_THREADS=keep` leaves the pool alone (products are then never split). The
    split depends on the shapes and on whether the pool can be controlled, never on the thread
    setting.
    `adjit_blas_single_enter` / `adjit_blas_single_leave` put the same one-thread guard around
    each LAPACK call of compiled code (codegen/lapack.py; docs/speed.md F12).
"""
from __future__ import annotations

import ctypes
import os
import string
import threading

import numpy as np

from . import blas, engine

# imported by compiled code as adjit_<name>
HELPERS = ("parallel_for", "sgemm", "dgemm", "blas_single_enter", "blas_single_leave")
HELPER_SPIN = 5000          # sched_yield rounds the helper spins after a job (~3 ms)
BLAS_SMALL = 1 << 18        # m*n*k up to this: OpenBLAS runs single-threaded by itself
BLAS_SPLIT = 1 << 22        # m*n*k from this: two halves on adjit's threads
BLAS_SPLIT_MIN_N = 64       # and at least this many rows to split

_LOCK = threading.Lock()
_LIBS = {}
_ADDR = {}
_TEXT = {}
BLAS_INFO = {}   # which BLAS the products call (for docs, tests and `adjit cache`)
LL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ll")
# what the helpers' IR needs to know about the target: the futex system call's number
# (x86_64: 202; on aarch64 202 is `accept`). Linux only (futex, sched_getaffinity).
FUTEX_SYSCALL = {"x86_64": 202, "aarch64": 98}
SUPPORTED = "x86_64 and aarch64 Linux"


def ll(name: str, **values) -> str:
    """The helper IR file ll/<name>.ll, its ${...} fields filled in (string.Template; a field
    without a value raises KeyError)."""
    text = _TEXT.get(name)
    if text is None:
        with open(os.path.join(LL_DIR, name + ".ll")) as f:
            text = _TEXT[name] = f.read()
    return string.Template(text).substitute(values)


def target_constants(triple: str) -> dict:
    """The target-specific values of the helpers' IR for LLVM target `triple`; CompileError on
    a target the helpers do not support."""
    arch = triple.split("-", 1)[0]
    if arch == "arm64":
        arch = "aarch64"
    if "-linux" not in triple or arch not in FUTEX_SYSCALL:
        raise engine.CompileError(
            "adjit runtime helpers (threads)",
            f"unsupported target {triple!r}: the thread pool and BLAS helpers support "
            f"{SUPPORTED} only (graphs that need them run in the interpreter)")
    return {"futex": FUTEX_SYSCALL[arch]}


def threads_ir(triple: str) -> str:
    """LLVM IR of the thread pool for `triple`."""
    return ll("threads", spin=HELPER_SPIN, **target_constants(triple))


def blas_ir(ilp64: bool, control: bool) -> str:
    """LLVM IR of adjit_sgemm and adjit_dgemm for a BLAS library with 64-bit (ilp64) or 32-bit
    integers, whose pool adjit may size (control) or not."""
    flag = {True: "true", False: "false"}
    return ll("blas") + ll("blas_thread_control" if control else "blas_no_thread_control") + \
        "".join(ll("gemm", p=p, size=size, ilp64=flag[bool(ilp64)], control=flag[bool(control)],
                   small=BLAS_SMALL, split=BLAS_SPLIT, min_n=BLAS_SPLIT_MIN_N)
                for p, size in (("s", 4), ("d", 8)))


def default_threads() -> int:
    """ADJIT_NUM_THREADS, else 2 when this process may run on two CPUs or more, else 1."""
    env = os.environ.get("ADJIT_NUM_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return 2 if n >= 2 else 1


def _build(kind, text, names, imports):
    """Link helper library `kind` from IR `text`: object code from the disk cache when there
    (keyed by the text and the host), else compiled and stored."""
    from . import cache
    what = f"adjit runtime helpers ({kind})"
    key = cache.disk_key(f"runtime helpers {kind}\n{text}")
    hit = cache.read_entry(key)
    obj = hit[0] if hit is not None else None
    if obj is None:
        meta = {"symbol": names[0], "workspace": 0, "imports": []}
        from .background import compile_llvm
        obj = compile_llvm(key, text, meta, what)  # in the worker (it writes the entry)
        if obj is None:  # the worker cannot run: compile here
            obj = engine.emit_object(engine.optimize(text, what), what)
            cache.write_entry(key, obj, meta)
    # the helpers live as long as the process (the helper thread runs their code until exit)
    lib = engine.load_many(obj, names, imports, what, keep=True)
    _ADDR.update(lib.addresses)
    _LIBS[kind] = lib
    return lib


def _threads_lib():
    if "threads" not in _LIBS:
        with _LOCK:
            if "threads" not in _LIBS:
                _build("threads", threads_ir(engine.process_triple()),
                       ["adjit_parallel_for", "adjit_set_threads", "adjit_get_threads",
                        "adjit_pool_reset"], {})
                _call("adjit_set_threads", default_threads())
                reset = ctypes.CFUNCTYPE(None)(_ADDR["adjit_pool_reset"])
                if hasattr(os, "register_at_fork"):
                    os.register_at_fork(after_in_child=reset)
                _LIBS["reset"] = reset
    return _LIBS["threads"]


def _blas_lib():
    if "blas" not in _LIBS:
        _threads_lib()
        with _LOCK:
            if "blas" not in _LIBS:
                ilp64, s, d, get, set_, path = blas.provider()
                control = get is not None and set_ is not None
                text = blas_ir(ilp64, control)
                imports = {"blas_sgemm": s, "blas_dgemm": d,
                           "adjit_parallel_for": _ADDR["adjit_parallel_for"]}
                if control:
                    imports.update(blas_get_threads=get, blas_set_threads=set_)
                _build("blas", text, ["adjit_sgemm", "adjit_dgemm", "adjit_blas_single_enter",
                                      "adjit_blas_single_leave"], imports)
                BLAS_INFO.update(library=path, ilp64=ilp64, thread_control=control)
    return _LIBS["blas"]


# --- products of the interpreter tier through the same helpers (issue 18 item 7) ------------
# NumPy's `@` on a product of more than BLAS_SMALL multiply-adds runs OpenBLAS's own pool, whose
# worker packs into a buffer of its own that stays resident (~0.9 MB at W3's sizes). Native code
# runs such products as adjit_sgemm/dgemm do: the pool at one thread, large ones as two halves
# on the caller and adjit's helper thread, each packing into a buffer OpenBLAS hands to whoever
# asks (its memory table is process-wide: the buffers are reused, whichever thread asks). A
# process whose interpreted or traced products had used OpenBLAS's pool kept its worker's
# buffer *and* needed a second one for adjit's helper: one buffer more than NumPy by hand
# (W3's native phase 6.4 MB against NumPy's 4.9; with OPENBLAS_NUM_THREADS=1 everywhere 5.4
# against 4.0). So the interpreter's 2-D float products call the helpers too, once they are
# linked: `matmul` links them from the disk cache at the first large product (~ms), or has the
# worker compile them in the background (cold cache: NumPy serves the products meanwhile).
_GEMM_STATE = {"state": None}  # None: not tried; "building"; "ready"; "failed"
_GEMM = {}                     # dtype char -> (ctypes entry, ctypes scalar type)
_GEMM_FN = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * 13))


def _helpers_on_disk():
    """True when both helper libraries' object code is in the disk cache (linking them is then
    a read and a load, no compile)."""
    from . import cache
    ilp64, s, d, get, set_, path = blas.provider()
    texts = (("threads", threads_ir(engine.process_triple())),
             ("blas", blas_ir(ilp64, get is not None and set_ is not None)))
    return all(cache.read_entry(cache.disk_key(f"runtime helpers {kind}\n{text}")) is not None
               for kind, text in texts)


def _gemm_link():
    try:
        _blas_lib()
        for ch, name, scalar in (("f", "adjit_sgemm", ctypes.c_float),
                                 ("d", "adjit_dgemm", ctypes.c_double)):
            _GEMM[ch] = (_GEMM_FN(_ADDR[name]), scalar)
        _GEMM_STATE["state"] = "ready"
    except Exception:  # no BLAS library, no compiler: NumPy serves every product
        _GEMM_STATE["state"] = "failed"


def gemm_ready() -> bool:
    """True when `matmul` may run products; the first call links the helpers (from the disk
    cache now, else compiled by the worker in the background, or now under
    ADJIT_TIER=deterministic; neither in the worker itself, and ADJIT_TIER=interp only takes
    them from the disk cache)."""
    st = _GEMM_STATE["state"]
    if st is None:
        with _LOCK:
            if _GEMM_STATE["state"] is None:
                _GEMM_STATE["state"] = "building"
                try:
                    now = "blas" in _LIBS or _helpers_on_disk()
                except Exception:
                    now = False
                from . import tier_mode
                if os.environ.get("ADJIT_IN_WORKER") or (not now and tier_mode() == "interp"):
                    # the compile worker (its passes fold constants) links nothing; the
                    # interpreter-only mode starts no compile for them
                    _GEMM_STATE["state"] = "failed"
                    now = False
                elif not now and tier_mode() == "deterministic":
                    # linked (compiled if need be) before this product: which products take
                    # the helpers must not depend on when a background compile finished
                    # (float32 products through them may differ from NumPy's `@` in the
                    # last bits: another split of the work over threads)
                    now = True
                elif not now:
                    threading.Thread(target=_gemm_link, name="adjit-helpers",
                                     daemon=True).start()
            else:
                now = False
        if now:
            _gemm_link()  # (outside _LOCK: _blas_lib takes it)
        st = _GEMM_STATE["state"]
    return st == "ready"


def _blas_layout(flags, cols, rows):
    """(transpose flag, leading dimension) of a row-major operand of `rows` x `cols` read as
    column-major by BLAS; (None, None) when it is neither C- nor Fortran-contiguous."""
    if flags.c_contiguous:
        return b"N", cols
    if flags.f_contiguous:
        return b"T", rows
    return None, None


def matmul(x, y):
    """x @ y through adjit_sgemm / adjit_dgemm for C- or Fortran-contiguous 2-D float32 /
    float64 operands of the same dtype whose product OpenBLAS would run on its pool (more than
    BLAS_SMALL multiply-adds); None otherwise (the caller uses NumPy). The same BLAS routine as
    NumPy's `@`."""
    if type(x) is not np.ndarray or type(y) is not np.ndarray:
        return None  # subclasses keep their own `@`
    m, k = x.shape
    n = y.shape[1]
    if m * n * k <= BLAS_SMALL or y.shape[0] != k or max(m, n, k) >= 1 << 31:
        return None
    dt = x.dtype
    if dt != y.dtype or dt.char not in "fd" or not dt.isnative:
        return None
    if _GEMM_STATE["state"] != "ready" and not gemm_ready():
        return None
    # row-major out = x @ y is column-major out' = y' x': y (k x n) is the first operand
    fy, fx = y.flags, x.flags
    if not (fx.aligned and fy.aligned):
        return None
    ta, lda = _blas_layout(fy, n, k)
    tb, ldb = _blas_layout(fx, k, m)
    if ta is None or tb is None:
        return None
    fn, scalar = _GEMM[dt.char]
    out = np.empty((m, n), dt)
    i32, ref = ctypes.c_int32, ctypes.byref
    fn(ref(ctypes.c_char(ta)), ref(ctypes.c_char(tb)), ref(i32(n)), ref(i32(m)), ref(i32(k)),
       ref(scalar(1.0)), y.ctypes.data, ref(i32(lda)), x.ctypes.data, ref(i32(ldb)),
       ref(scalar(0.0)), out.ctypes.data, ref(i32(n)))
    return out


def _call(name, n):
    ctypes.CFUNCTYPE(None, ctypes.c_int32)(_ADDR[name])(int(n))


def address(name: str) -> int:
    """Address of helper `name` (without the adjit_ prefix)."""
    (_blas_lib if name in ("sgemm", "dgemm", "blas_single_enter", "blas_single_leave")
     else _threads_lib)()
    return _ADDR["adjit_" + name]


def set_num_threads(n: int) -> int:
    """Threads compiled code may use for large loops and products (1: everything in the calling
    thread); returns the previous setting. Results do not depend on it."""
    old = get_num_threads()
    _call("adjit_set_threads", max(1, int(n)))
    return old


def get_num_threads() -> int:
    _threads_lib()
    return ctypes.CFUNCTYPE(ctypes.c_int32)(_ADDR["adjit_get_threads"])()


def blas_info() -> dict:
    """The BLAS library products call, whether it is ILP64 and whether adjit controls its
    thread pool."""
    _blas_lib()
    return dict(BLAS_INFO)
