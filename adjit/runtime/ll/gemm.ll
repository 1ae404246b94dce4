; adjit_sgemm / adjit_dgemm: a string.Template filled in once per precision by native.py:
; `p` is s or d, `size` the element size in bytes, `ilp64` true when the BLAS library takes
; 64-bit integers, `control` true when adjit can size the BLAS pool, `small`, `split` and
; `min_n` the thresholds of native.py (BLAS_SMALL, BLAS_SPLIT, BLAS_SPLIT_MIN_N).
; Uses @blas_enter, @blas_leave, @store_args and @widen (blas.ll).

declare void @blas_${p}gemm(ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr) nounwind

; the BLAS routine with adjit's 32-bit integer arguments (widened for an ILP64 library)
define internal void @call_${p}gemm(ptr %ta, ptr %tb, ptr %m, ptr %n, ptr %k, ptr %alpha,
                                    ptr %a, ptr %lda, ptr %b, ptr %ldb, ptr %beta, ptr %c,
                                    ptr %ldc) nounwind {
entry:
  %m64 = alloca i64, align 8
  %n64 = alloca i64, align 8
  %k64 = alloca i64, align 8
  %lda64 = alloca i64, align 8
  %ldb64 = alloca i64, align 8
  %ldc64 = alloca i64, align 8
  br i1 ${ilp64}, label %wide, label %narrow
narrow:
  call void @blas_${p}gemm(ptr %ta, ptr %tb, ptr %m, ptr %n, ptr %k, ptr %alpha, ptr %a, ptr %lda, ptr %b, ptr %ldb, ptr %beta, ptr %c, ptr %ldc)
  ret void
wide:
  call void @widen(ptr %m, ptr %m64)
  call void @widen(ptr %n, ptr %n64)
  call void @widen(ptr %k, ptr %k64)
  call void @widen(ptr %lda, ptr %lda64)
  call void @widen(ptr %ldb, ptr %ldb64)
  call void @widen(ptr %ldc, ptr %ldc64)
  call void @blas_${p}gemm(ptr %ta, ptr %tb, ptr %m64, ptr %n64, ptr %k64, ptr %alpha, ptr %a, ptr %lda64, ptr %b, ptr %ldb64, ptr %beta, ptr %c, ptr %ldc64)
  ret void
}

; one half: the record of 13 pointers at ctx + 104 i (written by store_args)
define internal void @${p}gemm_block(ptr %ctx, i64 %i) nounwind {
entry:
  %off = mul i64 %i, 104
  %rec = getelementptr inbounds i8, ptr %ctx, i64 %off
  %ta = load ptr, ptr %rec, align 8
  %q1 = getelementptr inbounds i8, ptr %rec, i64 8
  %tb = load ptr, ptr %q1, align 8
  %q2 = getelementptr inbounds i8, ptr %rec, i64 16
  %m = load ptr, ptr %q2, align 8
  %q3 = getelementptr inbounds i8, ptr %rec, i64 24
  %n = load ptr, ptr %q3, align 8
  %q4 = getelementptr inbounds i8, ptr %rec, i64 32
  %k = load ptr, ptr %q4, align 8
  %q5 = getelementptr inbounds i8, ptr %rec, i64 40
  %alpha = load ptr, ptr %q5, align 8
  %q6 = getelementptr inbounds i8, ptr %rec, i64 48
  %a = load ptr, ptr %q6, align 8
  %q7 = getelementptr inbounds i8, ptr %rec, i64 56
  %lda = load ptr, ptr %q7, align 8
  %q8 = getelementptr inbounds i8, ptr %rec, i64 64
  %b = load ptr, ptr %q8, align 8
  %q9 = getelementptr inbounds i8, ptr %rec, i64 72
  %ldb = load ptr, ptr %q9, align 8
  %q10 = getelementptr inbounds i8, ptr %rec, i64 80
  %beta = load ptr, ptr %q10, align 8
  %q11 = getelementptr inbounds i8, ptr %rec, i64 88
  %c = load ptr, ptr %q11, align 8
  %q12 = getelementptr inbounds i8, ptr %rec, i64 96
  %ldc = load ptr, ptr %q12, align 8
  call void @call_${p}gemm(ptr %ta, ptr %tb, ptr %m, ptr %n, ptr %k, ptr %alpha, ptr %a, ptr %lda, ptr %b, ptr %ldb, ptr %beta, ptr %c, ptr %ldc)
  ret void
}

; The product as two halves on adjit's threads: halves of m (%bym: rows of op(A) and of C) or
; of n (columns of op(B) and of C). Each half packs all of the other operand again. BLAS
; matrices are column-major: the split operand's second half starts d0 elements further for
; rows of a non-transposed A or columns of a transposed B, else d0 leading dimensions further;
; C's second half d0 rows (1 element each) or d0 columns (ldc elements each) further.
define internal void @${p}gemm_halves(ptr %ta, ptr %tb, ptr %m, ptr %n, ptr %k, ptr %alpha,
                                      ptr %a, ptr %lda, ptr %b, ptr %ldb, ptr %beta, ptr %c,
                                      ptr %ldc, i1 %bym) nounwind {
entry:
  ; two records of 13 pointers (208 bytes), then the halves' sizes d0 and d1
  %ctx = alloca [28 x i64], align 8
  %pd0 = getelementptr inbounds i8, ptr %ctx, i64 208
  %pd1 = getelementptr inbounds i8, ptr %ctx, i64 216
  %dim = select i1 %bym, ptr %m, ptr %n
  %d = load i32, ptr %dim, align 4
  %d0 = sdiv i32 %d, 2
  %d1 = sub i32 %d, %d0
  store i32 %d0, ptr %pd0, align 4
  store i32 %d1, ptr %pd1, align 4
  %d064 = sext i32 %d0 to i64
  ; the split operand: A (by m) or B (by n)
  %x = select i1 %bym, ptr %a, ptr %b
  %tx = select i1 %bym, ptr %ta, ptr %tb
  %ldxp = select i1 %bym, ptr %lda, ptr %ldb
  %tc = load i8, ptr %tx, align 1
  %upper = icmp eq i8 %tc, 78
  %lower = icmp eq i8 %tc, 110
  %notrans = or i1 %upper, %lower
  %byld = xor i1 %notrans, %bym
  %ldx = load i32, ptr %ldxp, align 4
  %ldx64 = sext i32 %ldx to i64
  %xstep = select i1 %byld, i64 %ldx64, i64 1
  %xoff0 = mul i64 %xstep, %d064
  %xoff = mul i64 %xoff0, ${size}
  %x1 = getelementptr inbounds i8, ptr %x, i64 %xoff
  %ldci = load i32, ptr %ldc, align 4
  %ldc64 = sext i32 %ldci to i64
  %cstep = select i1 %bym, i64 1, i64 %ldc64
  %coff0 = mul i64 %cstep, %d064
  %coff = mul i64 %coff0, ${size}
  %c1 = getelementptr inbounds i8, ptr %c, i64 %coff
  ; half 0: the halved size; half 1: the other size, the operand and C moved
  %m0 = select i1 %bym, ptr %pd0, ptr %m
  %n0 = select i1 %bym, ptr %n, ptr %pd0
  %m1 = select i1 %bym, ptr %pd1, ptr %m
  %n1 = select i1 %bym, ptr %n, ptr %pd1
  %a1 = select i1 %bym, ptr %x1, ptr %a
  %b1 = select i1 %bym, ptr %b, ptr %x1
  call void @store_args(ptr %ctx, ptr %ta, ptr %tb, ptr %m0, ptr %n0, ptr %k, ptr %alpha, ptr %a, ptr %lda, ptr %b, ptr %ldb, ptr %beta, ptr %c, ptr %ldc)
  %rec1 = getelementptr inbounds i8, ptr %ctx, i64 104
  call void @store_args(ptr %rec1, ptr %ta, ptr %tb, ptr %m1, ptr %n1, ptr %k, ptr %alpha, ptr %a1, ptr %lda, ptr %b1, ptr %ldb, ptr %beta, ptr %c1, ptr %ldc)
  call void @adjit_parallel_for(ptr @${p}gemm_block, ptr %ctx, i64 2)
  ret void
}

define void @adjit_${p}gemm(ptr %ta, ptr %tb, ptr %m, ptr %n, ptr %k, ptr %alpha, ptr %a,
                            ptr %lda, ptr %b, ptr %ldb, ptr %beta, ptr %c, ptr %ldc) nounwind {
entry:
  %mi = load i32, ptr %m, align 4
  %ni = load i32, ptr %n, align 4
  %ki = load i32, ptr %k, align 4
  %m64 = sext i32 %mi to i64
  %n64 = sext i32 %ni to i64
  %k64 = sext i32 %ki to i64
  %mn = mul i64 %m64, %n64
  %mnk = mul i64 %mn, %k64
  %big = icmp sgt i64 %mnk, ${small}
  %managed = and i1 ${control}, %big
  br i1 %managed, label %enter, label %direct
direct:
  call void @call_${p}gemm(ptr %ta, ptr %tb, ptr %m, ptr %n, ptr %k, ptr %alpha, ptr %a, ptr %lda, ptr %b, ptr %ldb, ptr %beta, ptr %c, ptr %ldc)
  ret void
enter:
  call void @blas_enter()
  %huge = icmp sge i64 %mnk, ${split}
  ; split the larger of m and n (the smaller operand is the one packed twice)
  %bym = icmp sgt i64 %m64, %n64
  %long = select i1 %bym, i64 %m64, i64 %n64
  %rows = icmp sge i64 %long, ${min_n}
  %split = and i1 %huge, %rows
  br i1 %split, label %halves, label %whole
whole:
  call void @call_${p}gemm(ptr %ta, ptr %tb, ptr %m, ptr %n, ptr %k, ptr %alpha, ptr %a, ptr %lda, ptr %b, ptr %ldb, ptr %beta, ptr %c, ptr %ldc)
  br label %leave
halves:
  call void @${p}gemm_halves(ptr %ta, ptr %tb, ptr %m, ptr %n, ptr %k, ptr %alpha, ptr %a, ptr %lda, ptr %b, ptr %ldb, ptr %beta, ptr %c, ptr %ldc, i1 %bym)
  br label %leave
leave:
  call void @blas_leave()
  ret void
}
