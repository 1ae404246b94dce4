"""The runtime's own native helpers, compiled once per process from the LLVM IR below and linked
like a graph. Compiled graphs import them by name (`adjit_<name>`, as BLAS routines used to be
imported), so object code in the disk cache holds no address and no policy: thread counts and
the BLAS library are decided here, at run time.

Threads
    `adjit_parallel_for(fn, ctx, n)` runs `fn(ctx, i)` for i in [0, n): the blocks of a large
    loop nest (codegen/parallel.py). With more than one thread allowed it starts one helper
    thread (pthread_create, detached); both threads take blocks from a shared atomic counter
    until none is left, and the caller waits (sched_yield) until every block is done. Taking
    blocks dynamically keeps a loaded machine from hurting: if the helper is not scheduled,
    the caller simply does all blocks itself and never waits for the helper to start. The job
    record is heap-allocated and reference-counted, so a helper that wakes up late touches
    nothing of the finished call. Blocks are fixed at compile time (shape only) and each
    writes its own outputs or partial results, so results never depend on the thread count.
    `adjit_set_threads(n)` / `adjit_get_threads()`: the setting (ADJIT_NUM_THREADS, default
    2 when the process may run on two CPUs or more).

BLAS
    `adjit_sgemm` / `adjit_dgemm` (the Fortran ABI, 13 pointer arguments) call SciPy's BLAS
    (`scipy.linalg.cython_blas`). Products of at most 2^18 multiply-adds run as they are (the
    BLAS is single-threaded for those anyway). Larger ones run with the BLAS's own thread pool
    set to one thread, and from 2^22 multiply-adds on as two halves (the BLAS `n` dimension:
    row blocks of the row-major product) through adjit_parallel_for. Reason: OpenBLAS's pool
    spin-waits, so on a busy 2-core machine its 2-thread GEMMs were 3-5x slower than one thread
    (the same halves on adjit's threads degrade to the one-thread time instead), and SciPy's
    and NumPy's OpenBLAS are two separate pools that would otherwise contend with each other
    and with adjit's loops. The pool size is changed only while such a product runs (a process-
    wide counter under a spinlock restores it when the last one ends); a concurrent SciPy call
    in another thread may then see one BLAS thread. Found for scipy-openblas and OpenBLAS
    builds (`*openblas_set_num_threads`); with another BLAS (MKL, ...) the products are called
    unchanged and never split. The split into halves depends on the shapes and on whether the
    pool can be controlled, never on the thread setting.
"""
from __future__ import annotations

import ctypes
import os
import threading

from . import engine

HELPERS = ("parallel_for", "sgemm", "dgemm")   # imported by compiled code as adjit_<name>
BLAS_SMALL = 1 << 18        # m*n*k up to this: OpenBLAS runs single-threaded by itself
BLAS_SPLIT = 1 << 22        # m*n*k from this: two halves on adjit's threads
BLAS_SPLIT_MIN_N = 64       # and at least this many rows to split

_THREADS = r"""
@threads = internal global i32 1

declare ptr @malloc(i64) nounwind
declare void @free(ptr) nounwind
declare i32 @pthread_create(ptr, ptr, ptr, ptr) nounwind
declare i32 @pthread_detach(i64) nounwind
declare i32 @sched_yield() nounwind

define void @adjit_set_threads(i32 %n) nounwind {
  store atomic i32 %n, ptr @threads seq_cst, align 4
  ret void
}

define i32 @adjit_get_threads() nounwind {
  %n = load atomic i32, ptr @threads seq_cst, align 4
  ret i32 %n
}

; job = { i64 next, i64 done, i64 refs, ptr fn, ptr ctx, i64 n }
define internal void @run_blocks(ptr %job) nounwind {
entry:
  %pfn = getelementptr inbounds i8, ptr %job, i64 24
  %fn = load ptr, ptr %pfn, align 8
  %pctx = getelementptr inbounds i8, ptr %job, i64 32
  %ctx = load ptr, ptr %pctx, align 8
  %pn = getelementptr inbounds i8, ptr %job, i64 40
  %n = load i64, ptr %pn, align 8
  %pdone = getelementptr inbounds i8, ptr %job, i64 8
  br label %loop
loop:
  %i = atomicrmw add ptr %job, i64 1 seq_cst
  %more = icmp slt i64 %i, %n
  br i1 %more, label %body, label %exit
body:
  call void %fn(ptr %ctx, i64 %i)
  %d = atomicrmw add ptr %pdone, i64 1 seq_cst
  br label %loop
exit:
  ret void
}

define internal void @release_job(ptr %job) nounwind {
entry:
  %prefs = getelementptr inbounds i8, ptr %job, i64 16
  %old = atomicrmw sub ptr %prefs, i64 1 seq_cst
  %last = icmp eq i64 %old, 1
  br i1 %last, label %free, label %keep
free:
  call void @free(ptr %job)
  ret void
keep:
  ret void
}

define internal ptr @worker(ptr %job) nounwind {
  call void @run_blocks(ptr %job)
  call void @release_job(ptr %job)
  ret ptr null
}

define void @adjit_parallel_for(ptr %fn, ptr %ctx, i64 %n) nounwind {
entry:
  %tid = alloca i64, align 8
  %t = load atomic i32, ptr @threads seq_cst, align 4
  %many = icmp sgt i32 %t, 1
  %blocks = icmp sgt i64 %n, 1
  %par = and i1 %many, %blocks
  br i1 %par, label %alloc, label %serial
serial:
  %si = phi i64 [ 0, %entry ], [ %si1, %serial_body ], [ 0, %alloc ]
  %smore = icmp slt i64 %si, %n
  br i1 %smore, label %serial_body, label %serial_done
serial_body:
  call void %fn(ptr %ctx, i64 %si)
  %si1 = add i64 %si, 1
  br label %serial
serial_done:
  ret void
alloc:
  %job = call ptr @malloc(i64 48)
  %nojob = icmp eq ptr %job, null
  br i1 %nojob, label %serial, label %spawn
spawn:
  store i64 0, ptr %job, align 8
  %pdone = getelementptr inbounds i8, ptr %job, i64 8
  store i64 0, ptr %pdone, align 8
  %prefs = getelementptr inbounds i8, ptr %job, i64 16
  store i64 2, ptr %prefs, align 8
  %pfn = getelementptr inbounds i8, ptr %job, i64 24
  store ptr %fn, ptr %pfn, align 8
  %pctx = getelementptr inbounds i8, ptr %job, i64 32
  store ptr %ctx, ptr %pctx, align 8
  %pn = getelementptr inbounds i8, ptr %job, i64 40
  store i64 %n, ptr %pn, align 8
  fence seq_cst
  %rc = call i32 @pthread_create(ptr %tid, ptr null, ptr @worker, ptr %job)
  %ok = icmp eq i32 %rc, 0
  br i1 %ok, label %detach, label %alone
detach:
  %th = load i64, ptr %tid, align 8
  %dr = call i32 @pthread_detach(i64 %th)
  br label %work
alone:
  store atomic i64 1, ptr %prefs seq_cst, align 8
  br label %work
work:
  call void @run_blocks(ptr %job)
  br label %wait
wait:
  %d = load atomic i64, ptr %pdone seq_cst, align 8
  %all = icmp sge i64 %d, %n
  br i1 %all, label %finish, label %yield
yield:
  %y = call i32 @sched_yield()
  br label %wait
finish:
  call void @release_job(ptr %job)
  ret void
}
"""

_BLAS_STATE = r"""
@blas_users = internal global i64 0
@blas_saved = internal global i32 0
@blas_lock = internal global i32 0

declare i32 @sched_yield() nounwind
declare void @adjit_parallel_for(ptr, ptr, i64) nounwind

define internal void @lock() nounwind {
entry:
  br label %try
try:
  %r = cmpxchg ptr @blas_lock, i32 0, i32 1 seq_cst seq_cst
  %got = extractvalue { i32, i1 } %r, 1
  br i1 %got, label %done, label %spin
spin:
  %y = call i32 @sched_yield()
  br label %try
done:
  ret void
}

define internal void @unlock() nounwind {
  store atomic i32 0, ptr @blas_lock seq_cst, align 4
  ret void
}

; the BLAS pool runs one thread while any adjit product runs (restored by the last one)
define internal void @blas_enter() nounwind {
entry:
  call void @lock()
  %u = load i64, ptr @blas_users, align 8
  %first = icmp eq i64 %u, 0
  br i1 %first, label %save, label %count
save:
  %old = call i32 @blas_get_threads()
  store i32 %old, ptr @blas_saved, align 4
  call void @blas_set_threads(i32 1)
  br label %count
count:
  %u1 = add i64 %u, 1
  store i64 %u1, ptr @blas_users, align 8
  call void @unlock()
  ret void
}

define internal void @blas_leave() nounwind {
entry:
  call void @lock()
  %u = load i64, ptr @blas_users, align 8
  %u1 = sub i64 %u, 1
  store i64 %u1, ptr @blas_users, align 8
  %last = icmp eq i64 %u1, 0
  br i1 %last, label %restore, label %done
restore:
  %old = load i32, ptr @blas_saved, align 4
  call void @blas_set_threads(i32 %old)
  br label %done
done:
  call void @unlock()
  ret void
}
"""

_GEMM = r"""
declare void @blas_{p}gemm(ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr) nounwind

; the BLAS routine with adjit's 32-bit integer arguments (widened for an ILP64 library)
define internal void @call_{p}gemm(ptr %ta, ptr %tb, ptr %m, ptr %n, ptr %k, ptr %alpha, ptr %a, ptr %lda, ptr %b, ptr %ldb, ptr %beta, ptr %c, ptr %ldc) nounwind {{
{call}
  ret void
}}

; ctx: two records of 13 pointers (the arguments of each half) and the halves' n values
define internal void @{p}gemm_block(ptr %ctx, i64 %i) nounwind {{
entry:
  %off = mul i64 %i, 104
  %rec = getelementptr inbounds i8, ptr %ctx, i64 %off
{loads}
  call void @call_{p}gemm({args})
  ret void
}}

define void @adjit_{p}gemm(ptr %ta, ptr %tb, ptr %m, ptr %n, ptr %k, ptr %alpha, ptr %a, ptr %lda, ptr %b, ptr %ldb, ptr %beta, ptr %c, ptr %ldc) nounwind {{
entry:
  %mi = load i32, ptr %m, align 4
  %ni = load i32, ptr %n, align 4
  %ki = load i32, ptr %k, align 4
  %m64 = sext i32 %mi to i64
  %n64 = sext i32 %ni to i64
  %k64 = sext i32 %ki to i64
  %mn = mul i64 %m64, %n64
  %mnk = mul i64 %mn, %k64
  %big = icmp sgt i64 %mnk, {small}
  %managed = and i1 {have}, %big
  br i1 %managed, label %enter, label %direct
direct:
  call void @call_{p}gemm(ptr %ta, ptr %tb, ptr %m, ptr %n, ptr %k, ptr %alpha, ptr %a, ptr %lda, ptr %b, ptr %ldb, ptr %beta, ptr %c, ptr %ldc)
  ret void
enter:
  call void @blas_enter()
  %huge = icmp sge i64 %mnk, {split}
  %rows = icmp sge i64 %n64, {min_n}
  %split = and i1 %huge, %rows
  br i1 %split, label %halves, label %whole
whole:
  call void @call_{p}gemm(ptr %ta, ptr %tb, ptr %m, ptr %n, ptr %k, ptr %alpha, ptr %a, ptr %lda, ptr %b, ptr %ldb, ptr %beta, ptr %c, ptr %ldc)
  br label %leave
halves:
  %ctx = alloca [28 x i64], align 8
  %ns = getelementptr inbounds i8, ptr %ctx, i64 208
  %n0 = sdiv i32 %ni, 2
  %n1 = sub i32 %ni, %n0
  store i32 %n0, ptr %ns, align 4
  %ns1 = getelementptr inbounds i8, ptr %ctx, i64 216
  store i32 %n1, ptr %ns1, align 4
  %tbc = load i8, ptr %tb, align 1
  %tbn = icmp eq i8 %tbc, 78
  %tbn2 = icmp eq i8 %tbc, 110
  %bnotrans = or i1 %tbn, %tbn2
  %ldbi = load i32, ptr %ldb, align 4
  %ldb64 = sext i32 %ldbi to i64
  %bstep = select i1 %bnotrans, i64 %ldb64, i64 1
  %n064 = sext i32 %n0 to i64
  %boff0 = mul i64 %bstep, %n064
  %boff = mul i64 %boff0, {size}
  %b1 = getelementptr inbounds i8, ptr %b, i64 %boff
  %ldci = load i32, ptr %ldc, align 4
  %ldc64 = sext i32 %ldci to i64
  %coff0 = mul i64 %ldc64, %n064
  %coff = mul i64 %coff0, {size}
  %c1 = getelementptr inbounds i8, ptr %c, i64 %coff
{stores0}
{stores1}
  call void @adjit_parallel_for(ptr @{p}gemm_block, ptr %ctx, i64 2)
  br label %leave
leave:
  call void @blas_leave()
  ret void
}}
"""

_ARGS = ("ta", "tb", "m", "n", "k", "alpha", "a", "lda", "b", "ldb", "beta", "c", "ldc")


def _gemm_ir(p, size, ilp64, control):
    loads = "\n".join(
        f"  %q{i} = getelementptr inbounds i8, ptr %rec, i64 {8 * i}\n"
        f"  %v{i} = load ptr, ptr %q{i}, align 8" for i in range(13))
    args = ", ".join(f"ptr %v{i}" for i in range(13))
    if ilp64:  # integers m, n, k, lda, ldb, ldc as int64
        call = []
        for name in ("m", "n", "k", "lda", "ldb", "ldc"):
            call += [f"  %{name}32 = load i32, ptr %{name}, align 4",
                     f"  %{name}64 = sext i32 %{name}32 to i64",
                     f"  %{name}p = alloca i64, align 8",
                     f"  store i64 %{name}64, ptr %{name}p, align 8"]
        wide = {n: f"%{n}p" for n in ("m", "n", "k", "lda", "ldb", "ldc")}
        call.append(f"  call void @blas_{p}gemm(" + ", ".join(
            f"ptr {wide.get(n, '%' + n)}" for n in _ARGS) + ")")
        call = "\n".join(call)
    else:
        call = f"  call void @blas_{p}gemm(" + ", ".join(f"ptr %{n}" for n in _ARGS) + ")"

    def stores(h):
        out = []
        for i, name in enumerate(_ARGS):
            val = {"n": f"%ns{'1' if h else ''}", "b": "%b1" if h else "%b",
                   "c": "%c1" if h else "%c"}.get(name, f"%{name}")
            out.append(f"  %s{h}_{i} = getelementptr inbounds i8, ptr %ctx, i64 {104 * h + 8 * i}"
                       f"\n  store ptr {val}, ptr %s{h}_{i}, align 8")
        return "\n".join(out)
    return _GEMM.format(p=p, loads=loads, args=args, small=BLAS_SMALL, split=BLAS_SPLIT,
                        min_n=BLAS_SPLIT_MIN_N, size=size, stores0=stores(0),
                        stores1=stores(1), call=call, have="true" if control else "false")


_CTL = r"""
declare i32 @blas_get_threads() nounwind
declare void @blas_set_threads(i32) nounwind
"""

_NO_CTL = r"""
define internal i32 @blas_get_threads() nounwind {
  ret i32 1
}
define internal void @blas_set_threads(i32 %n) nounwind {
  ret void
}
"""

_LOCK = threading.Lock()
_LIBS = {}
_ADDR = {}
BLAS_INFO = {}   # which BLAS the products call (for docs, tests and `adjit cache`)
# Fortran-ABI ILP64 products and the pool's thread functions, by library flavour
_ILP64 = (("scipy_sgemm_64_", "scipy_dgemm_64_", "scipy_openblas_get_num_threads64_",
           "scipy_openblas_set_num_threads64_"),
          ("sgemm_64_", "dgemm_64_", "openblas_get_num_threads64_",
           "openblas_set_num_threads64_"))


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


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _addr(fn):
    return ctypes.cast(fn, ctypes.c_void_p).value


def _numpy_blas():
    """NumPy's own OpenBLAS (ILP64, loaded with NumPy, so nothing to import and one thread
    pool shared with NumPy's matmul): (ilp64, sgemm, dgemm, get, set, path) or None."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({ln.split()[-1] for ln in f if "blas" in ln.lower() and "/" in ln})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for names in _ILP64:
            try:
                fns = [getattr(lib, n) for n in names]
            except AttributeError:
                continue
            return (True, *[_addr(f) for f in fns], path)
    return None


def _scipy_blas():
    """SciPy's cython_blas (LP64) and, when its library is OpenBLAS, the pool's thread
    functions: (ilp64, sgemm, dgemm, get or None, set or None, path)."""
    s, d = engine.blas_address("sgemm"), engine.blas_address("dgemm")
    get = set_ = None
    path = "scipy.linalg.cython_blas"
    try:
        libc = ctypes.CDLL(None)
        info = _DlInfo()
        if libc.dladdr(ctypes.c_void_p(d), ctypes.byref(info)):
            path = info.dli_fname.decode()
            lib = ctypes.CDLL(path)
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


def _blas_provider():
    """ADJIT_BLAS=scipy forces SciPy's BLAS; ADJIT_BLAS_THREADS=keep leaves its pool alone
    (the BLAS then threads as it likes, and products are never split)."""
    want = os.environ.get("ADJIT_BLAS", "").strip().lower()
    prov = None if want == "scipy" else _numpy_blas()
    if prov is None:
        prov = _scipy_blas()
    if os.environ.get("ADJIT_BLAS_THREADS", "").strip().lower() in ("keep", "blas"):
        prov = prov[:3] + (None, None) + prov[5:]
    return prov


def _build(kind, text, names, imports):
    """Link helper library `kind` from IR `text`: object code from the disk cache when there
    (keyed by the text and the host), else compiled and stored."""
    from . import cache
    what = f"adjit runtime helpers ({kind})"
    key = cache.disk_key(f"runtime helpers {kind}\n{text}")
    hit = cache.read_entry(key)
    obj = hit[0] if hit is not None else None
    if obj is None:
        obj = engine.emit_object(engine.optimize(text, what), what)
        cache.write_entry(key, obj, {"symbol": names[0], "workspace": 0, "imports": []})
    lib = engine.load_many(obj, names, imports, what)
    _ADDR.update(lib.addresses)
    _LIBS[kind] = lib
    return lib


def _threads_lib():
    if "threads" not in _LIBS:
        with _LOCK:
            if "threads" not in _LIBS:
                _build("threads", _THREADS,
                       ["adjit_parallel_for", "adjit_set_threads", "adjit_get_threads"], {})
                _call("adjit_set_threads", default_threads())
    return _LIBS["threads"]


def _blas_lib():
    if "blas" not in _LIBS:
        _threads_lib()
        with _LOCK:
            if "blas" not in _LIBS:
                ilp64, s, d, get, set_, path = _blas_provider()
                control = get is not None and set_ is not None
                text = _BLAS_STATE + (_CTL if control else _NO_CTL) + \
                    _gemm_ir("s", 4, ilp64, control) + _gemm_ir("d", 8, ilp64, control)
                imports = {"blas_sgemm": s, "blas_dgemm": d,
                           "adjit_parallel_for": _ADDR["adjit_parallel_for"]}
                if control:
                    imports.update(blas_get_threads=get, blas_set_threads=set_)
                _build("blas", text, ["adjit_sgemm", "adjit_dgemm"], imports)
                BLAS_INFO.update(library=path, ilp64=ilp64, thread_control=control)
    return _LIBS["blas"]


def _call(name, n):
    ctypes.CFUNCTYPE(None, ctypes.c_int32)(_ADDR[name])(int(n))


def address(name: str) -> int:
    """Address of helper `name` (without the adjit_ prefix)."""
    (_blas_lib if name in ("sgemm", "dgemm") else _threads_lib)()
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
