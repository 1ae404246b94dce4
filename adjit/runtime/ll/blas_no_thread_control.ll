; a BLAS library whose pool adjit cannot size (or ADJIT_BLAS_THREADS=keep): products are
; never managed, so these are never called
define internal i32 @blas_get_threads() nounwind {
  ret i32 1
}
define internal void @blas_set_threads(i32 %n) nounwind {
  ret void
}
