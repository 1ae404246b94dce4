; the BLAS library's own pool-size functions (imported at link time)
declare i32 @blas_get_threads() nounwind
declare void @blas_set_threads(i32) nounwind
