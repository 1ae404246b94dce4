; adjit's thread pool: adjit_parallel_for and the thread setting (the design is described in
; adjit/runtime/native.py). A string.Template filled in by native.py: `spin` is the number of
; sched_yield rounds the helper spins after a job, `futex` the futex system call number of the
; target (x86_64: 202, aarch64: 98; other targets are refused before this is compiled).
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
  %tired = icmp sge i32 %k1, ${spin}
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
  %fw = call i64 (i64, ...) @syscall(i64 ${futex}, ptr @pool_seq, i32 128, i32 %seen, ptr null)
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
  %fw = call i64 (i64, ...) @syscall(i64 ${futex}, ptr @pool_seq, i32 129, i32 1)
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
