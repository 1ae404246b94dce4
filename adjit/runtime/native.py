"""The runtime's own native helpers, compiled once per process from the LLVM IR below and linked
like a graph. Compiled graphs import them by name (`adjit_<name>`, as BLAS routines used to be
imported), so object code in the disk cache holds no address and no policy: thread counts and
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
    NumPy's own OpenBLAS (ILP64 `scipy_sgemm_64_`: the integers are widened), found among the
    libraries the process has mapped: nothing to import, one thread pool shared with NumPy's
    `@`. Fallback: SciPy's `cython_blas` (`ADJIT_BLAS=scipy` forces it). Products of at most
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
"""
from __future__ import annotations

import ctypes
import os
import threading

from . import engine

HELPERS = ("parallel_for", "sgemm", "dgemm")   # imported by compiled code as adjit_<name>
HELPER_SPIN = 5000          # sched_yield rounds the helper spins after a job (~3 ms)
BLAS_SMALL = 1 << 18        # m*n*k up to this: OpenBLAS runs single-threaded by itself
BLAS_SPLIT = 1 << 22        # m*n*k from this: two halves on adjit's threads
BLAS_SPLIT_MIN_N = 64       # and at least this many rows to split

_THREADS = r"""
@threads = internal global i32 1
@pool_alive = internal global i32 0     ; 1 once the helper thread runs (0 again in a fork child)
@pool_lock = internal global i32 0      ; held by the call that owns the helper for a job
@pool_job = internal global ptr null    ; the job posted to the helper
@pool_seq = internal global i32 0       ; bumped for every posted job (the futex word)
@pool_sleeping = internal global i32 0  ; 1 while the helper sleeps in futex_wait
@pool_skip = internal global i32 0      ; parallel nests still to run serially (back-off)
@pool_penalty = internal global i32 1   ; length of the next back-off

declare ptr @malloc(i64) nounwind
declare void @free(ptr) nounwind
declare i32 @pthread_create(ptr, ptr, ptr, ptr) nounwind
declare i32 @pthread_detach(i64) nounwind
declare i32 @sched_yield() nounwind
declare i64 @syscall(i64, ...) nounwind
declare i64 @llvm.readcyclecounter() nounwind
declare i32 @sched_getcpu() nounwind
declare i32 @sched_getaffinity(i32, i64, ptr) nounwind
declare i32 @pthread_attr_init(ptr) nounwind
declare i32 @pthread_attr_destroy(ptr) nounwind
declare i32 @pthread_attr_setaffinity_np(ptr, i64, ptr) nounwind

define void @adjit_set_threads(i32 %n) nounwind {
  store atomic i32 %n, ptr @threads seq_cst, align 4
  ret void
}

define i32 @adjit_get_threads() nounwind {
  %n = load atomic i32, ptr @threads seq_cst, align 4
  ret i32 %n
}

; job = { i64 next, i64 done, i64 refs, ptr fn, ptr ctx, i64 n }
define internal i64 @run_blocks(ptr %job) nounwind {
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
  %ran = phi i64 [ 0, %entry ], [ %ran1, %body ]
  %i = atomicrmw add ptr %job, i64 1 seq_cst
  %more = icmp slt i64 %i, %n
  br i1 %more, label %body, label %exit
body:
  call void %fn(ptr %ctx, i64 %i)
  %d = atomicrmw add ptr %pdone, i64 1 seq_cst
  %ran1 = add i64 %ran, 1
  br label %loop
exit:
  ret i64 %ran
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

; The helper: waits for posted jobs, spinning (sched_yield) for a while after each job so that
; back-to-back parallel nests find it running (waking an idle vCPU can take milliseconds), then
; sleeping on the futex until the next job is posted.
define internal ptr @helper(ptr %unused) nounwind {
entry:
  %seen0 = load atomic i32, ptr @pool_seq seq_cst, align 4
  br label %wait
wait:
  %seen = phi i32 [ %seen0, %entry ], [ %s, %got ], [ %s, %run ], [ %seen, %slept ]
  br label %spin
spin:
  %k = phi i32 [ 0, %wait ], [ %k1, %yield ]
  %s = load atomic i32, ptr @pool_seq seq_cst, align 4
  %new = icmp ne i32 %s, %seen
  br i1 %new, label %got, label %idle
idle:
  %k1 = add i32 %k, 1
  %tired = icmp sge i32 %k1, HELPER_SPIN_ROUNDS
  br i1 %tired, label %sleep, label %yield
yield:
  %y = call i32 @sched_yield()
  br label %spin
sleep:
  store atomic i32 1, ptr @pool_sleeping seq_cst, align 4
  %s2 = load atomic i32, ptr @pool_seq seq_cst, align 4
  %same = icmp eq i32 %s2, %seen
  br i1 %same, label %futex, label %slept
futex:
  ; futex(&pool_seq, FUTEX_WAIT_PRIVATE, seen, NULL)
  %fw = call i64 (i64, ...) @syscall(i64 202, ptr @pool_seq, i32 128, i32 %seen, ptr null)
  br label %slept
slept:
  store atomic i32 0, ptr @pool_sleeping seq_cst, align 4
  br label %wait
got:
  %job = atomicrmw xchg ptr @pool_job, ptr null seq_cst
  %has = icmp ne ptr %job, null
  br i1 %has, label %run, label %wait
run:
  %hran = call i64 @run_blocks(ptr %job)
  call void @release_job(ptr %job)
  br label %wait
}

; in a fork child the helper thread does not exist: the next parallel nest starts one (called
; through os.register_at_fork; without it a child runs every block in the calling thread)
define void @adjit_pool_reset() nounwind {
  store atomic i32 0, ptr @pool_alive seq_cst, align 4
  store atomic i32 0, ptr @pool_lock seq_cst, align 4
  store atomic ptr null, ptr @pool_job seq_cst, align 8
  store atomic i32 0, ptr @pool_sleeping seq_cst, align 4
  ret void
}

; Thread attributes for the helper: CPU affinity = the CPUs this process may use minus the one
; the caller runs on (null: default attributes, when that leaves nothing). Created unpinned,
; the helper was often queued on the caller's busy CPU while the other one ran an OpenBLAS
; worker, and stayed there: the caller then did every block alone.
define internal ptr @helper_attr(ptr %attr, ptr %set) nounwind {
entry:
  %cpu = call i32 @sched_getcpu()
  %badcpu = icmp slt i32 %cpu, 0
  %big = icmp sge i32 %cpu, 1024
  %skip0 = or i1 %badcpu, %big
  br i1 %skip0, label %none, label %mask
mask:
  %r = call i32 @sched_getaffinity(i32 0, i64 128, ptr %set)
  %rfail = icmp ne i32 %r, 0
  br i1 %rfail, label %none, label %clear
clear:
  %byte = sdiv i32 %cpu, 8
  %bit = srem i32 %cpu, 8
  %b64 = sext i32 %byte to i64
  %pb = getelementptr inbounds i8, ptr %set, i64 %b64
  %v = load i8, ptr %pb, align 1
  %bit8 = trunc i32 %bit to i8
  %one = shl i8 1, %bit8
  %inv = xor i8 %one, -1
  %v2 = and i8 %v, %inv
  store i8 %v2, ptr %pb, align 1
  br label %scan
scan:
  %i = phi i64 [ 0, %clear ], [ %i1, %scan ]
  %acc = phi i64 [ 0, %clear ], [ %acc1, %scan ]
  %pw = getelementptr inbounds i64, ptr %set, i64 %i
  %w = load i64, ptr %pw, align 8
  %acc1 = or i64 %acc, %w
  %i1 = add i64 %i, 1
  %more = icmp slt i64 %i1, 16
  br i1 %more, label %scan, label %scanned
scanned:
  %empty = icmp eq i64 %acc1, 0
  br i1 %empty, label %none, label %init
init:
  %ai = call i32 @pthread_attr_init(ptr %attr)
  %aifail = icmp ne i32 %ai, 0
  br i1 %aifail, label %none, label %setaff
setaff:
  %as = call i32 @pthread_attr_setaffinity_np(ptr %attr, i64 128, ptr %set)
  ret ptr %attr
none:
  ret ptr null
}

; 1 when the helper runs (starting it the first time), else 0
define internal i32 @ensure_helper() nounwind {
entry:
  %tid = alloca i64, align 8
  %attrbuf = alloca [128 x i8], align 16
  %cpuset = alloca [128 x i8], align 16
  %alive = load atomic i32, ptr @pool_alive seq_cst, align 4
  %yes = icmp ne i32 %alive, 0
  br i1 %yes, label %ok, label %start
start:
  %attr = call ptr @helper_attr(ptr %attrbuf, ptr %cpuset)
  %rc = call i32 @pthread_create(ptr %tid, ptr %attr, ptr @helper, ptr null)
  %hasattr = icmp ne ptr %attr, null
  br i1 %hasattr, label %destroy, label %created0
destroy:
  %ad = call i32 @pthread_attr_destroy(ptr %attr)
  br label %created0
created0:
  %created = icmp eq i32 %rc, 0
  br i1 %created, label %detach, label %fail
detach:
  %th = load i64, ptr %tid, align 8
  %dr = call i32 @pthread_detach(i64 %th)
  store atomic i32 1, ptr @pool_alive seq_cst, align 4
  br label %ok
ok:
  ret i32 1
fail:
  ret i32 0
}

define void @adjit_parallel_for(ptr %fn, ptr %ctx, i64 %n) nounwind {
entry:
  %t = load atomic i32, ptr @threads seq_cst, align 4
  %many = icmp sgt i32 %t, 1
  %blocks = icmp sgt i64 %n, 1
  %par = and i1 %many, %blocks
  br i1 %par, label %backoff, label %serial
backoff:
  ; after the helper failed to help (busy machine), the next nests run serially for a while
  %skip = load atomic i32, ptr @pool_skip monotonic, align 4
  %skipping = icmp sgt i32 %skip, 0
  br i1 %skipping, label %skipone, label %claim
skipone:
  %skip1 = sub i32 %skip, 1
  store atomic i32 %skip1, ptr @pool_skip monotonic, align 4
  br label %serial
claim:
  ; the helper serves one call at a time: a concurrent call runs its blocks itself
  %lk = cmpxchg ptr @pool_lock, i32 0, i32 1 seq_cst seq_cst
  %owned = extractvalue { i32, i1 } %lk, 1
  br i1 %owned, label %start, label %serial
start:
  %have = call i32 @ensure_helper()
  %nohelper = icmp eq i32 %have, 0
  br i1 %nohelper, label %unlock_serial, label %alloc
unlock_serial:
  store atomic i32 0, ptr @pool_lock seq_cst, align 4
  br label %serial
serial:
  %si = phi i64 [ 0, %entry ], [ %si1, %serial_body ], [ 0, %claim ], [ 0, %unlock_serial ], [ 0, %skipone ]
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
  br i1 %nojob, label %unlock_serial, label %post
post:
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
  %c0 = call i64 @llvm.readcyclecounter()
  store atomic ptr %job, ptr @pool_job seq_cst, align 8
  %seq = atomicrmw add ptr @pool_seq, i32 1 seq_cst
  %sl = load atomic i32, ptr @pool_sleeping seq_cst, align 4
  %asleep = icmp ne i32 %sl, 0
  br i1 %asleep, label %wake, label %work
wake:
  ; futex(&pool_seq, FUTEX_WAKE_PRIVATE, 1)
  %fw = call i64 (i64, ...) @syscall(i64 202, ptr @pool_seq, i32 129, i32 1)
  br label %work
work:
  %mine = call i64 @run_blocks(ptr %job)
  %c1 = call i64 @llvm.readcyclecounter()
  br label %wait
wait:
  %d = load atomic i64, ptr %pdone seq_cst, align 8
  %all = icmp sge i64 %d, %n
  br i1 %all, label %judge, label %yield
yield:
  %y = call i32 @sched_yield()
  br label %wait
judge:
  ; parallel should beat the serial estimate (our time per block x n) by 10%; if not, back
  ; off (1, 2, 4, ... up to 256 nests), else reset. A helper woken from its futex may just
  ; start late: running every block ourselves is not held against it then.
  %c2 = call i64 @llvm.readcyclecounter()
  %busy = sub i64 %c1, %c0
  %wall = sub i64 %c2, %c0
  %lhs0 = mul i64 %wall, %mine
  %lhs = mul i64 %lhs0, 10
  %rhs0 = mul i64 %busy, %n
  %rhs = mul i64 %rhs0, 9
  %slow = icmp ugt i64 %lhs, %rhs
  %idle = icmp eq i64 %mine, %n
  %late = and i1 %idle, %asleep
  %notlate = xor i1 %late, true
  %bad = and i1 %slow, %notlate
  br i1 %bad, label %penalise, label %forgive
penalise:
  %pen = load atomic i32, ptr @pool_penalty monotonic, align 4
  store atomic i32 %pen, ptr @pool_skip monotonic, align 4
  %pen2 = shl i32 %pen, 1
  %cap = icmp sgt i32 %pen2, 256
  %pen3 = select i1 %cap, i32 256, i32 %pen2
  store atomic i32 %pen3, ptr @pool_penalty monotonic, align 4
  br label %finish
forgive:
  store atomic i32 1, ptr @pool_penalty monotonic, align 4
  br label %finish
finish:
  ; the slot's reference: the helper's if it took the job, else ours to drop
  %left = atomicrmw xchg ptr @pool_job, ptr null seq_cst
  %untaken = icmp ne ptr %left, null
  br i1 %untaken, label %drop, label %done
drop:
  call void @release_job(ptr %left)
  br label %done
done:
  call void @release_job(ptr %job)
  store atomic i32 0, ptr @pool_lock seq_cst, align 4
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
define internal void @call_{p}gemm(ptr %ta, ptr %tb, ptr %m, ptr %n, ptr %k, ptr %alpha,
                                    ptr %a, ptr %lda, ptr %b, ptr %ldb, ptr %beta, ptr %c,
                                    ptr %ldc) nounwind {{
{call}
  ret void
}}

; ctx: two records of 13 pointers (the arguments of each half) and the halves' m or n
define internal void @{p}gemm_block(ptr %ctx, i64 %i) nounwind {{
entry:
  %off = mul i64 %i, 104
  %rec = getelementptr inbounds i8, ptr %ctx, i64 %off
{loads}
  call void @call_{p}gemm({args})
  ret void
}}

define void @adjit_{p}gemm(ptr %ta, ptr %tb, ptr %m, ptr %n, ptr %k, ptr %alpha, ptr %a,
                           ptr %lda, ptr %b, ptr %ldb, ptr %beta, ptr %c, ptr %ldc) nounwind {{
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
  ; split the larger of m and n: each half packs all of the other operand again, so the
  ; smaller one is duplicated
  %bym = icmp sgt i64 %m64, %n64
  %long = select i1 %bym, i64 %m64, i64 %n64
  %rows = icmp sge i64 %long, {min_n}
  %split = and i1 %huge, %rows
  br i1 %split, label %which, label %whole
which:
  br i1 %bym, label %halves_m, label %halves
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
halves_m:
  %mctx = alloca [28 x i64], align 8
  %ms = getelementptr inbounds i8, ptr %mctx, i64 208
  %m0 = sdiv i32 %mi, 2
  %m1 = sub i32 %mi, %m0
  store i32 %m0, ptr %ms, align 4
  %ms1 = getelementptr inbounds i8, ptr %mctx, i64 216
  store i32 %m1, ptr %ms1, align 4
  %tac = load i8, ptr %ta, align 1
  %tan = icmp eq i8 %tac, 78
  %tan2 = icmp eq i8 %tac, 110
  %anotrans = or i1 %tan, %tan2
  %ldai = load i32, ptr %lda, align 4
  %lda64 = sext i32 %ldai to i64
  %astep = select i1 %anotrans, i64 1, i64 %lda64
  %m064 = sext i32 %m0 to i64
  %aoff0 = mul i64 %astep, %m064
  %aoff = mul i64 %aoff0, {size}
  %a1 = getelementptr inbounds i8, ptr %a, i64 %aoff
  %mcoff = mul i64 %m064, {size}
  %mc1 = getelementptr inbounds i8, ptr %c, i64 %mcoff
{mstores0}
{mstores1}
  call void @adjit_parallel_for(ptr @{p}gemm_block, ptr %mctx, i64 2)
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

    def stores(h, by_m=False):
        out = []
        for i, name in enumerate(_ARGS):
            if by_m:   # halves of m: rows of op(A) and of C (column-major)
                val = {"m": f"%ms{'1' if h else ''}", "a": "%a1" if h else "%a",
                       "c": "%mc1" if h else "%c"}.get(name, f"%{name}")
                ctx, tag = "%mctx", f"%ms{h}_{i}"
            else:      # halves of n: columns of op(B) and of C
                val = {"n": f"%ns{'1' if h else ''}", "b": "%b1" if h else "%b",
                       "c": "%c1" if h else "%c"}.get(name, f"%{name}")
                ctx, tag = "%ctx", f"%s{h}_{i}"
            out.append(f"  {tag} = getelementptr inbounds i8, ptr {ctx}, i64 {104 * h + 8 * i}"
                       f"\n  store ptr {val}, ptr {tag}, align 8")
        return "\n".join(out)
    return _GEMM.format(p=p, loads=loads, args=args, small=BLAS_SMALL, split=BLAS_SPLIT,
                        min_n=BLAS_SPLIT_MIN_N, size=size, stores0=stores(0),
                        stores1=stores(1), mstores0=stores(0, True), mstores1=stores(1, True),
                        call=call, have="true" if control else "false")


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
                _build("threads", _THREADS.replace("HELPER_SPIN_ROUNDS", str(HELPER_SPIN)),
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
