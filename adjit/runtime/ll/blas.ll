; State shared by the GEMM wrappers of both precisions (gemm.ll): the BLAS pool's thread count
; while adjit's products run, and the argument records of the two halves of a split product.
; Linked with one of blas_thread_control.ll / blas_no_thread_control.ll.
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

; around each LAPACK call of compiled code (codegen/lapack.py): the BLAS pool runs one thread
; while it runs, as for the products (OpenBLAS's spin-waiting workers made potrf and trsm 3-100x
; slower on a busy 2-core machine; one thread is within ~20% of two on an idle one)
define void @adjit_blas_single_enter() nounwind {
  call void @blas_enter()
  ret void
}

define void @adjit_blas_single_leave() nounwind {
  call void @blas_leave()
  ret void
}

; store the 13 BLAS arguments of one half at `rec` (13 pointers, 104 bytes)
define internal void @store_args(ptr %rec, ptr %ta, ptr %tb, ptr %m, ptr %n, ptr %k, ptr %alpha,
                                 ptr %a, ptr %lda, ptr %b, ptr %ldb, ptr %beta, ptr %c,
                                 ptr %ldc) nounwind {
  store ptr %ta, ptr %rec, align 8
  %p1 = getelementptr inbounds i8, ptr %rec, i64 8
  store ptr %tb, ptr %p1, align 8
  %p2 = getelementptr inbounds i8, ptr %rec, i64 16
  store ptr %m, ptr %p2, align 8
  %p3 = getelementptr inbounds i8, ptr %rec, i64 24
  store ptr %n, ptr %p3, align 8
  %p4 = getelementptr inbounds i8, ptr %rec, i64 32
  store ptr %k, ptr %p4, align 8
  %p5 = getelementptr inbounds i8, ptr %rec, i64 40
  store ptr %alpha, ptr %p5, align 8
  %p6 = getelementptr inbounds i8, ptr %rec, i64 48
  store ptr %a, ptr %p6, align 8
  %p7 = getelementptr inbounds i8, ptr %rec, i64 56
  store ptr %lda, ptr %p7, align 8
  %p8 = getelementptr inbounds i8, ptr %rec, i64 64
  store ptr %b, ptr %p8, align 8
  %p9 = getelementptr inbounds i8, ptr %rec, i64 72
  store ptr %ldb, ptr %p9, align 8
  %p10 = getelementptr inbounds i8, ptr %rec, i64 80
  store ptr %beta, ptr %p10, align 8
  %p11 = getelementptr inbounds i8, ptr %rec, i64 88
  store ptr %c, ptr %p11, align 8
  %p12 = getelementptr inbounds i8, ptr %rec, i64 96
  store ptr %ldc, ptr %p12, align 8
  ret void
}

; *dst = (i64) *src: adjit's 32-bit integer arguments for an ILP64 library
define internal void @widen(ptr %src, ptr %dst) nounwind {
  %v = load i32, ptr %src, align 4
  %w = sext i32 %v to i64
  store i64 %w, ptr %dst, align 8
  ret void
}
