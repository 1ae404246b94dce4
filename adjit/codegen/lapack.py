"""Kernels of the linear-algebra primitives: calls to Fortran LAPACK (and BLAS trsm).

Each kernel does per matrix of the batch what NumPy's `_umath_linalg` does: copy the operand
into a column-major f64 scratch matrix (f32 operands are widened: NumPy computes in f64),
call the same LAPACK routine NumPy calls (gesv, getrf, potrf, syevd, trsm, gesdd, geqrf and
orgqr, gelsd), check `info`, and
copy the results back (narrowed). Same routine, same input layout, same workspace size: the
results, eigenvector signs included, are NumPy's bit for bit.

The routines are imported as `adjit_lapack_d<name>` (engine.import_address resolves them to
NumPy's own ILP64 OpenBLAS, `scipy_d<name>_64_`, as the GEMMs): every integer argument is 64-bit
(`ipiv` and `info` too), and each CHARACTER argument is a pointer to one byte with its hidden
length (a 64-bit integer, 1) appended after the other arguments (gfortran's convention).
A nonzero `info` returns a status (STATUS below), which the runtime turns into NumPy's
LinAlgError with NumPy's message.
"""
from __future__ import annotations

import ctypes

from llvmlite import ir

from .emit import F64, I32, I64, I8, MEM, PTR, const, i64
from .errors import CompileError
from .parallel import _opaque

# status codes returned by compiled code -> NumPy's LinAlgError message (runtime/call.py)
STATUS_SINGULAR, STATUS_NOT_PD, STATUS_EIG, STATUS_SVD, STATUS_LSTSQ = 3, 4, 5, 6, 7
STATUS_MESSAGES = {
    STATUS_SINGULAR: "Singular matrix",
    STATUS_NOT_PD: "Matrix is not positive definite",
    STATUS_EIG: "Eigenvalues did not converge",
    STATUS_SVD: "SVD did not converge",
    STATUS_LSTSQ: "SVD did not converge in Linear Least Squares",
}

# the routines compiled code may import (engine.import_address: "lapack_<routine>")
ROUTINES = ("dgesv", "dgetrf", "dpotrf", "dsyevd", "dtrsm", "dtrmm", "dgesdd", "dgeqrf",
            "dorgqr", "dgelsd")

# routine name -> its address, for the workspace queries made while lowering (lwork = -1, as
# NumPy queries before its loop). The runtime installs runtime/blas.lapack_address here
# (runtime/engine.py): codegen does not import the runtime layer.
ADDRESS = None
_QUERIED = {}
# trsm/trmm with n * n * k >= TRI_SPLIT (n the triangle's order, k right-hand sides) and at
# least TRI_SPLIT_MIN right-hand sides: two halves on adjit's threads (`_tri_halves`), the
# GEMMs' thresholds (runtime/native.py BLAS_SPLIT, BLAS_SPLIT_MIN_N)
TRI_SPLIT, TRI_SPLIT_MIN = 1 << 22, 64


def _prod(xs):
    n = 1
    for d in xs:
        n *= d
    return n


class _Call:
    """Argument slots of one Fortran call: 64-bit integers, characters, f64 scalars."""

    def __init__(self, c):
        self.c = c

    def int(self, v):
        p = self.c.alloca(I64)
        self.c.b.store(v if isinstance(v, ir.Value) else i64(v), p)
        return p

    def char(self, ch):
        p = self.c.alloca(I8)
        self.c.b.store(ir.Constant(I8, ord(ch)), p)
        return p

    def f64(self, v):
        p = self.c.alloca(F64)
        self.c.b.store(ir.Constant(F64, float(v)), p)
        return p

    def call(self, routine, args, nchar=0):
        c = self.c
        name = f"adjit_lapack_{routine}"
        fn = c.module.globals.get(name)
        if fn is None:
            fn = ir.Function(c.module, ir.FunctionType(ir.VoidType(),
                                                       [PTR] * len(args) + [I64] * nchar), name)
        c.imports.add(f"lapack_{routine}")
        # the BLAS pool runs one thread during the call, as during adjit's products
        # (runtime/native.py: OpenBLAS's spin-waiting workers on a busy machine)
        enter, leave = (_helper(c, f"adjit_blas_single_{w}") for w in ("enter", "leave"))
        c.b.call(enter, [])
        c.b.call(fn, list(args) + [i64(1)] * nchar)
        c.b.call(leave, [])


def _helper(c, name):
    fn = c.module.globals.get(name)
    if fn is None:
        fn = ir.Function(c.module, ir.FunctionType(ir.VoidType(), []), name)
    c.imports.add(name[len("adjit_"):])
    return fn


def _f64_temp(c, n):
    return c.temp(8 * max(n, 1))[0]


def _at(b, ptr, lin, dt="f64"):
    return b.gep(ptr, [lin if isinstance(lin, ir.Value) else i64(lin)], inbounds=True,
                 source_etype=MEM[dt])


def _lin(b, *terms):
    acc = i64(0)
    for v, s in terms:
        v = v if isinstance(v, ir.Value) else i64(v)
        acc = b.add(acc, b.mul(v, i64(s)) if s != 1 else v)
    return acc


def _widen(b, v, dt):
    return b.fpext(v, F64) if dt == "f32" else v


def _narrow(b, v, dt):
    return b.fptrunc(v, MEM[dt]) if dt == "f32" else v


def to_fortran(c, buf, base, rows, cols, dst, symmetric=False, ld=None):
    """dst (f64, column-major rows x cols, leading dimension `ld`, default rows) = the C-order
    matrix at element `base` of buf; `symmetric`: (a + a^T) * 0.5 in the operand's dtype first
    (eigh, cholesky)."""
    b = c.b
    dt = buf.type.dtype
    ld = rows if ld is None else ld

    def row(i, _):
        def col(j, _):
            v = b.load(buf.addr(b, _lin(b, (base, 1), (i, cols), (j, 1))), typ=MEM[dt])
            if symmetric:
                w = b.load(buf.addr(b, _lin(b, (base, 1), (j, cols), (i, 1))), typ=MEM[dt])
                v = b.fmul(b.fadd(v, w), const(dt, 0.5))
            b.store(_widen(b, v, dt), _at(b, dst, _lin(b, (j, ld), (i, 1))))
        c.loops.for_range(cols, col)
    c.loops.for_range(rows, row)


def from_fortran(c, src, ld, out, base, rows, cols, mask=None):
    """The C-order matrix at element `base` of buffer out = the column-major f64 matrix src
    (leading dimension ld). `mask(i, j)` -> i1: where to store src (elsewhere 0)."""
    b = c.b
    dt = out.type.dtype

    def row(i, _):
        def col(j, _):
            v = _narrow(b, b.load(_at(b, src, _lin(b, (j, ld), (i, 1))), typ=F64), dt)
            if mask is not None:
                v = b.select(mask(i, j), v, const(dt, 0.0))
            b.store(v, out.addr(b, _lin(b, (base, 1), (i, cols), (j, 1))))
        c.loops.for_range(cols, col)
    c.loops.for_range(rows, row)


def _batches(shape, k):
    return _prod(shape[:-k]) if len(shape) > k else 1


def _libm_log(c, x):
    """The C library's log (NumPy's npy_log), so log|det| is NumPy's to the last bit."""
    name = "adjit_libm_log"
    fn = c.module.globals.get(name)
    if fn is None:
        fn = ir.Function(c.module, ir.FunctionType(F64, [F64]), name)
    c.imports.add("libm_log")
    return c.b.call(fn, [x])


def _check(c, info, status):
    b = c.b
    c.fail_unless(b.icmp_signed("==", b.load(info, typ=I64), i64(0)), status)


# --- kernels ------------------------------------------------------------------------------------
def solve(c, e, out):
    """gesv on column-major copies of a and b (np.linalg.solve and inv); status 3 when a is
    singular (check=True), NaN results for that matrix otherwise."""
    b = c.b
    a, rhs = e.inputs
    n, k = rhs.type.shape[-2], rhs.type.shape[-1]
    nb = _batches(a.type.shape, 2)
    if nb * n * k == 0:
        return
    ab, bb = c.buffer(a), c.buffer(rhs)
    fa, fb = _f64_temp(c, n * n), _f64_temp(c, n * k)
    ipiv = c.temp(8 * n)[0]
    L = _Call(c)
    sn, sk, info = L.int(n), L.int(k), L.int(0)
    check = e.params.get("check", True)
    c.work += nb * n * n * (n + k)

    def one(i, _):
        to_fortran(c, ab, b.mul(i, i64(n * n)), n, n, fa)
        to_fortran(c, bb, b.mul(i, i64(n * k)), n, k, fb)
        L.call("dgesv", [sn, sk, fa, sn, ipiv, fb, sn, info])
        if check:
            _check(c, info, STATUS_SINGULAR)
            from_fortran(c, fb, n, out, b.mul(i, i64(n * k)), n, k)
            return
        bad = b.icmp_signed("!=", b.load(info, typ=I64), i64(0))

        def nan():
            c.loops.for_range(n * k, lambda j, _: [b.store(ir.Constant(F64, float("nan")),
                                                          _at(b, fb, j))][:0])
        c.loops.cond(bad, nan)
        from_fortran(c, fb, n, out, b.mul(i, i64(n * k)), n, k)
    c.loops.for_range(nb, one)


def slogdet(c, e, outs):
    """getrf on a column-major copy, then NumPy's sign and sum of log|u_ii| (sign 0 and -inf
    for a singular matrix)."""
    b = c.b
    (a,) = e.inputs
    sign_out, log_out = outs
    n = a.type.shape[-1]
    nb = _batches(a.type.shape, 2)
    dt = a.type.dtype
    if nb == 0:
        return
    ab = c.buffer(a)
    fa = _f64_temp(c, n * n)
    ipiv = c.temp(8 * max(n, 1))[0]
    L = _Call(c)
    sn, info = L.int(n), L.int(0)
    c.work += nb * n * n * n

    def one(i, _):
        to_fortran(c, ab, b.mul(i, i64(n * n)), n, n, fa)
        L.call("dgetrf", [sn, sn, fa, sn, ipiv, info])
        ok = b.icmp_signed("==", b.load(info, typ=I64), i64(0))

        def swaps(j, carry):
            p = b.load(_at(b, ipiv, j, "i64"), typ=I64)
            return [b.xor(carry[0], b.zext(b.icmp_signed("!=", p, b.add(j, i64(1))), I64))]
        odd = c.loops.for_range(n, swaps, carry=[i64(0)])[0]
        s0 = b.select(b.icmp_signed("!=", odd, i64(0)), ir.Constant(F64, -1.0),
                      ir.Constant(F64, 1.0))

        def diag(j, carry):
            s, acc = carry
            u = b.load(_at(b, fa, b.mul(j, i64(n + 1))), typ=F64)
            neg = b.fcmp_ordered("<", u, ir.Constant(F64, 0.0))
            s = b.select(neg, b.fneg(s), s)
            au = b.select(neg, b.fneg(u), u)
            return [s, b.fadd(acc, _libm_log(c, au))]
        s, acc = c.loops.for_range(n, diag, carry=[s0, ir.Constant(F64, 0.0)])
        s = b.select(ok, s, ir.Constant(F64, 0.0))
        acc = b.select(ok, acc, ir.Constant(F64, float("-inf")))
        b.store(_narrow(b, s, dt), sign_out.addr(b, i))
        b.store(_narrow(b, acc, dt), log_out.addr(b, i))
    c.loops.for_range(nb, one)


def cholesky(c, e, out):
    """potrf('L') on a column-major copy of (a + a^T)/2, upper triangle zeroed; status 4 when
    the matrix is not positive definite."""
    b = c.b
    (a,) = e.inputs
    n = a.type.shape[-1]
    nb = _batches(a.type.shape, 2)
    if nb * n == 0:
        return
    ab = c.buffer(a)
    fa = _f64_temp(c, n * n)
    L = _Call(c)
    uplo, sn, info = L.char("L"), L.int(n), L.int(0)
    c.work += nb * n * n * n

    def one(i, _):
        to_fortran(c, ab, b.mul(i, i64(n * n)), n, n, fa, symmetric=True)
        L.call("dpotrf", [uplo, sn, fa, sn, info], nchar=1)
        _check(c, info, STATUS_NOT_PD)
        from_fortran(c, fa, n, out, b.mul(i, i64(n * n)), n, n,
                     mask=lambda r, col: b.icmp_signed(">=", r, col))
    c.loops.for_range(nb, one)


def eigvalsh(c, e, out):
    eigh(c, e, [out, None])


def eigh(c, e, outs):
    """syevd('V', uplo) on a column-major copy of (a + a^T)/2 with the workspace NumPy uses
    (queried with lwork = -1); status 5 when it does not converge. Without an eigenvector
    output (eigvalsh), syevd('N') as NumPy's eigvalsh."""
    b = c.b
    (a,) = e.inputs
    w_out, v_out = outs
    n = a.type.shape[-1]
    nb = _batches(a.type.shape, 2)
    if nb * n == 0:
        return
    ab = c.buffer(a)
    fa = _f64_temp(c, n * n)
    w = _f64_temp(c, n)
    # room for the queried sizes: LAPACK's optimum is max(1 + 6n + 2n^2, 2n + n*nb(sytrd))
    lwork_max = max(1 + 6 * n + 2 * n * n, 2 * n + 256 * n, 1)
    liwork_max = 3 + 5 * n
    work = _f64_temp(c, lwork_max)
    iwork = c.temp(8 * liwork_max)[0]
    L = _Call(c)
    jobz, uplo = L.char("V" if v_out is not None else "N"), L.char(e.params.get("uplo", "L"))
    sn, info = L.int(n), L.int(0)
    lwork, liwork = L.int(-1), L.int(-1)
    c.work += nb * 4 * n * n * n
    # the workspace query (once per call: it depends on n only)
    L.call("dsyevd", [jobz, uplo, sn, fa, sn, w, work, lwork, iwork, liwork, info], nchar=2)
    q = b.fptosi(b.load(work, typ=F64), I64)
    q = b.select(b.icmp_signed(">", q, i64(lwork_max)), i64(lwork_max), q)
    b.store(q, lwork)
    qi = b.load(iwork, typ=I64)
    b.store(b.select(b.icmp_signed(">", qi, i64(liwork_max)), i64(liwork_max), qi), liwork)
    dt = a.type.dtype

    def one(i, _):
        to_fortran(c, ab, b.mul(i, i64(n * n)), n, n, fa, symmetric=True)
        L.call("dsyevd", [jobz, uplo, sn, fa, sn, w, work, lwork, iwork, liwork, info],
               nchar=2)
        _check(c, info, STATUS_EIG)
        c.loops.for_range(n, lambda j, _: [b.store(
            _narrow(b, b.load(_at(b, w, j), typ=F64), dt),
            w_out.addr(b, b.add(b.mul(i, i64(n)), j)))][:0])
        if v_out is not None:
            from_fortran(c, fa, n, v_out, b.mul(i, i64(n * n)), n, n)
    c.loops.for_range(nb, one)


def _tri_blas(c, e, out, routine):
    """trsm or trmm per matrix, on the row-major operands in place: a C-order matrix read as
    column-major is its transpose, so op(A) X = B (or op(A) B) is X^T op(A^T) = B^T (B^T
    op(A^T)): side and uplo flipped, trans kept, A^T the operand's own buffer (lda = n) and
    B^T (k x m, ldb = k) the output, into which the right-hand side is first copied (trsm and
    trmm work in place). f32 operands are widened into f64 scratch and the result narrowed.
    The interpreter (ir/prims/linalg.py `_blas_tri`) makes the same call."""
    b = c.b
    a, rhs = e.inputs
    p = e.params
    left = p.get("left_side", True)
    m, k = rhs.type.shape[-2], rhs.type.shape[-1]
    n = a.type.shape[-1]
    nb = _batches(a.type.shape, 2)
    if nb * m * k == 0:
        return
    dt = a.type.dtype
    ab, bb = c.buffer(a), c.buffer(rhs)
    wide = dt != "f64"
    fa, fb = (_f64_temp(c, n * n), _f64_temp(c, m * k)) if wide else (None, None)
    L = _Call(c)
    side, uplo = L.char("R" if left else "L"), L.char("U" if p["lower"] else "L")
    trans, dg = L.char("T" if p.get("trans") else "N"), L.char(
        "U" if p.get("unit_diagonal") else "N")
    sm, sn, sa, one_ = L.int(k), L.int(m), L.int(n), L.f64(1.0)
    c.work += nb * n * m * k // 2
    # the right-hand sides are independent: big ones as two halves on adjit's threads
    halves = n * m * k >= TRI_SPLIT and (k if left else m) >= TRI_SPLIT_MIN

    def copy(n_el, load, store):
        c.loops.for_range(n_el, lambda j, _: [store(j, load(j))][:0])

    def one(i, _):
        oa, ob = b.mul(i, i64(n * n)), b.mul(i, i64(m * k))
        if wide:
            copy(n * n, lambda j: _widen(b, b.load(ab.addr(b, b.add(oa, j)), typ=MEM[dt]), dt),
                 lambda j, v: b.store(v, _at(b, fa, j)))
            copy(m * k, lambda j: _widen(b, b.load(bb.addr(b, b.add(ob, j)), typ=MEM[dt]), dt),
                 lambda j, v: b.store(v, _at(b, fb, j)))
            pa, pb = fa, fb
        else:
            copy(m * k, lambda j: b.load(bb.addr(b, b.add(ob, j)), typ=F64),
                 lambda j, v: b.store(v, out.addr(b, b.add(ob, j))))
            pa, pb = ab.addr(b, oa), out.addr(b, ob)
        args = [side, uplo, trans, dg, sm, sn, one_, pa, sa, pb, sm]
        if halves:
            _tri_halves(c, routine, args, left, k, m)
        else:
            L.call(routine, args, nchar=4)
        if wide:
            copy(m * k, lambda j: _narrow(b, b.load(_at(b, fb, j), typ=F64), dt),
                 lambda j, v: b.store(v, out.addr(b, b.add(ob, j))))
    c.loops.for_range(nb, one)


def _tri_halves(c, routine, args, left, k, m):
    """One trsm/trmm call as two calls on halves of the independent right-hand sides, run
    through adjit_parallel_for (as the big GEMMs: runtime/ll/gemm.ll), with the BLAS pool at
    one thread around both. BLAS's side 'R' (a left solve in row-major terms) splits its m
    (rows of B^T: d0 elements further), side 'L' its n (columns: d0 * ldb further). Each
    right-hand side's result is computed by the same operations either way."""
    b = c.b
    d = k if left else m
    d0 = d // 2
    h0, h1 = _Call(c).int(d0), _Call(c).int(d - d0)
    pb = args[9]
    pb1 = b.gep(pb, [i64(d0 if left else d0 * k)], inbounds=True, source_etype=F64)
    rec0 = list(args)
    rec1 = list(args)
    if left:
        rec0[4], rec1[4] = h0, h1
    else:
        rec0[5], rec1[5] = h0, h1
    rec1[9] = pb1
    ctx = _opaque(c, c.alloca(ir.ArrayType(I64, 22)))
    for i, v in enumerate(rec0 + rec1):
        b.store(v, b.gep(ctx, [i64(8 * i)], inbounds=True, source_etype=I8))
    helper = c.module.globals.get("adjit_parallel_for")
    if helper is None:
        helper = ir.Function(c.module, ir.FunctionType(ir.VoidType(), [PTR, PTR, I64]),
                             "adjit_parallel_for")
    c.imports.add("parallel_for")
    enter, leave = (_helper(c, f"adjit_blas_single_{w}") for w in ("enter", "leave"))
    b.call(enter, [])
    b.call(helper, [_half_function(c, routine), ctx, i64(2)])
    b.call(leave, [])


def _half_function(c, routine):
    """void adjit_<routine>_half(ptr ctx, i64 i): the call whose 11 argument pointers are
    record i of ctx (the 4 CHARACTER lengths appended)."""
    name = f"adjit_{routine}_half"
    fn = c.module.globals.get(name)
    if fn is not None:
        return fn
    blas = c.module.globals.get(f"adjit_lapack_{routine}")
    if blas is None:
        blas = ir.Function(c.module, ir.FunctionType(ir.VoidType(), [PTR] * 11 + [I64] * 4),
                           f"adjit_lapack_{routine}")
    c.imports.add(f"lapack_{routine}")
    fn = ir.Function(c.module, ir.FunctionType(ir.VoidType(), [PTR, I64]), name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    ctx, i = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    base = b.mul(i, i64(8 * 11))
    vals = [b.load(b.gep(ctx, [b.add(base, i64(8 * j))], inbounds=True, source_etype=I8),
                   typ=PTR) for j in range(11)]
    b.call(blas, vals + [i64(1)] * 4)
    b.ret_void()
    return fn


def triangular_solve(c, e, out):
    """trsm (scipy's solve_triangular without its singularity check: a zero pivot gives
    inf/NaN), on the row-major data in place (`_tri_blas`)."""
    _tri_blas(c, e, out, "dtrsm")


def triangular_matmul(c, e, out):
    """trmm: op(T) @ B with T one triangle of A (half a GEMM's multiply-adds)."""
    _tri_blas(c, e, out, "dtrmm")


def _gesdd_lwork_max(m, n, vectors):
    """Room for gesdd's queried optimum (LAPACK's formulas are below this for every m, n)."""
    k, mx = min(m, n), max(m, n)
    if vectors:
        return 4 * k * k + 8 * k + mx * (k + 64) + 64
    return 8 * k + mx + 64 * (mx + k)


def _identity(c, out, rows, cols, base):
    b = c.b
    dt = out.type.dtype

    def row(i, _):
        def col(j, _):
            v = b.select(b.icmp_signed("==", i, j), const(dt, 1.0), const(dt, 0.0))
            b.store(v, out.addr(b, _lin(b, (base, 1), (i, cols), (j, 1))))
        c.loops.for_range(cols, col)
    c.loops.for_range(rows, row)


def _gesdd(c, a, m, n, jobz, outs):
    """gesdd(jobz) per matrix on a column-major copy, as NumPy's `_umath_linalg` calls it
    (ldu = m, ldvt = n for 'A', min(m, n) for 'S', 1 for 'N'; the queried workspace,
    iwork of 8 min(m, n)); status 6 when it does not converge."""
    b = c.b
    k = min(m, n)
    nb = _batches(a.type.shape, 2)
    ucols, vrows = {"A": (m, n), "S": (k, k), "N": (1, 1)}[jobz]
    if nb == 0:
        return
    if k == 0:  # NumPy: empty singular values, identity singular vectors
        if jobz != "N":
            u_out, _, v_out = outs
            c.loops.for_range(nb, lambda i, _: [
                _identity(c, u_out, m, ucols, b.mul(i, i64(m * ucols))),
                _identity(c, v_out, vrows, n, b.mul(i, i64(vrows * n)))][:0])
        return
    ab = c.buffer(a)
    fa = _f64_temp(c, m * n)
    s = _f64_temp(c, k)
    fu = _f64_temp(c, m * ucols)
    fv = _f64_temp(c, vrows * n)
    lwork_max = _gesdd_lwork_max(m, n, jobz != "N")
    work = _f64_temp(c, lwork_max)
    iwork = c.temp(8 * 8 * k)[0]
    L = _Call(c)
    jz, sm, sn, info = L.char(jobz), L.int(m), L.int(n), L.int(0)
    ldu, ldvt, lwork = L.int(m), L.int(vrows), L.int(-1)
    c.work += nb * 12 * m * n * k
    args = [jz, sm, sn, fa, sm, s, fu, ldu, fv, ldvt, work, lwork, iwork, info]
    L.call("dgesdd", args, nchar=1)
    q = b.fptosi(b.load(work, typ=F64), I64)
    q = b.select(b.icmp_signed(">", q, i64(lwork_max)), i64(lwork_max), q)
    q = b.select(b.icmp_signed("<", q, i64(1)), i64(1), q)
    b.store(q, lwork)
    s_out = outs[1] if jobz != "N" else outs[0]
    dt = a.type.dtype

    def one(i, _):
        to_fortran(c, ab, b.mul(i, i64(m * n)), m, n, fa)
        L.call("dgesdd", args, nchar=1)
        _check(c, info, STATUS_SVD)
        c.loops.for_range(k, lambda j, _: [b.store(
            _narrow(b, b.load(_at(b, s, j), typ=F64), dt),
            s_out.addr(b, b.add(b.mul(i, i64(k)), j)))][:0])
        if jobz != "N":
            from_fortran(c, fu, m, outs[0], b.mul(i, i64(m * ucols)), m, ucols)
            from_fortran(c, fv, vrows, outs[2], b.mul(i, i64(vrows * n)), vrows, n)
    c.loops.for_range(nb, one)


def svd(c, e, outs):
    (a,) = e.inputs
    m, n = a.type.shape[-2:]
    _gesdd(c, a, m, n, "A" if e.params.get("full_matrices") else "S", outs)


def svdvals(c, e, out):
    (a,) = e.inputs
    m, n = a.type.shape[-2:]
    _gesdd(c, a, m, n, "N", [out])


def qr(c, e, outs):
    """geqrf then orgqr per matrix on a column-major copy, as NumPy's `_umath_linalg` calls
    them (lda = m; R = the upper triangle of geqrf's first mc rows; orgqr(m, mc, min(m, n))
    in place, its extra columns initialised by LAPACK), each with its queried workspace."""
    b = c.b
    (a,) = e.inputs
    q_out, r_out = outs
    m, n = a.type.shape[-2:]
    k = min(m, n)
    mc = m if e.params.get("mode") == "complete" else k
    nb = _batches(a.type.shape, 2)
    if nb == 0:
        return
    if k == 0:  # NumPy: a complete q of an empty matrix is the identity
        if mc:
            c.loops.for_range(nb, lambda i, _: [
                _identity(c, q_out, m, mc, b.mul(i, i64(m * mc)))][:0])
        return
    ab = c.buffer(a)
    fa = _f64_temp(c, m * max(n, mc))
    tau = _f64_temp(c, k)
    lwork_max = 128 * max(n, mc) + 64
    work = _f64_temp(c, lwork_max)
    L = _Call(c)
    sm, sn, smc, sk, info = L.int(m), L.int(n), L.int(mc), L.int(k), L.int(0)
    lw_qrf, lw_orgqr = L.int(-1), L.int(-1)
    c.work += nb * 4 * m * n * k
    geqrf = [sm, sn, fa, sm, tau, work, lw_qrf, info]
    orgqr = [sm, smc, sk, fa, sm, tau, work, lw_orgqr, info]
    for args, lw in ((geqrf, lw_qrf), (orgqr, lw_orgqr)):
        L.call(args is geqrf and "dgeqrf" or "dorgqr", args)
        q = b.fptosi(b.load(work, typ=F64), I64)
        q = b.select(b.icmp_signed(">", q, i64(lwork_max)), i64(lwork_max), q)
        b.store(b.select(b.icmp_signed("<", q, i64(1)), i64(1), q), lw)

    def one(i, _):
        to_fortran(c, ab, b.mul(i, i64(m * n)), m, n, fa)
        L.call("dgeqrf", geqrf)
        from_fortran(c, fa, m, r_out, b.mul(i, i64(mc * n)), mc, n,
                     mask=lambda r, col: b.icmp_signed("<=", r, col))
        L.call("dorgqr", orgqr)
        from_fortran(c, fa, m, q_out, b.mul(i, i64(m * mc)), m, mc)
    c.loops.for_range(nb, one)


def _gelsd_workspace(m, n, nrhs):
    """(lwork, liwork): gelsd's workspace query (lwork = -1) for these sizes, made once while
    lowering; lwork is the queried optimum truncated to an integer, as NumPy's."""
    key = (m, n, nrhs)
    if key not in _QUERIED:
        if ADDRESS is None:
            raise CompileError("LAPACK routine dgelsd", "no LAPACK library is known to "
                               "codegen (adjit.runtime installs it)")
        fn = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * 14)(ADDRESS("dgelsd"))
        ints = [ctypes.c_int64(v) for v in (m, n, nrhs, max(1, m), max(1, m, n), 0, -1, 0, 0)]
        sm, sn, sk, lda, ldb, rank, lwork, iwork, info = ints
        work, rcond, dummy = ctypes.c_double(0.0), ctypes.c_double(-1.0), (ctypes.c_double * 1)()
        r = ctypes.byref
        fn(r(sm), r(sn), r(sk), dummy, r(lda), dummy, r(ldb), dummy, r(rcond), r(rank),
           r(work), r(lwork), r(iwork), r(info))
        if info.value != 0:
            raise CompileError("LAPACK routine dgelsd", f"its workspace query failed (info = "
                               f"{info.value})")
        _QUERIED[key] = (max(int(work.value), 1), max(iwork.value, 1))
    return _QUERIED[key]


def lstsq(c, e, outs):
    """gelsd per matrix on column-major copies, as NumPy's `_umath_linalg` calls it: a with
    lda = m, b in the first m rows of an ldb = max(m, n) matrix (zero elsewhere; no
    right-hand side: one zero column, as NumPy), rcond passed through, the workspace queried
    while lowering. x = the first n rows of the result; the residuals the sums of squares of
    its rows n..m-1 (NumPy's loop) when m >= n and the rank is n, else NaN; status 7 when
    the SVD does not converge."""
    b = c.b
    a, rhs = e.inputs
    x_out, r_out, rank_out, s_out = outs
    m, n = a.type.shape[-2:]
    k = rhs.type.shape[-1]
    kk, mn, ldb = max(k, 1), min(m, n), max(1, m, n)
    nb = _batches(a.type.shape, 2)
    if nb == 0:
        return
    lw, liw = _gelsd_workspace(m, n, kk)
    ab, bb = c.buffer(a), c.buffer(rhs)
    fa, fb, s = _f64_temp(c, m * n), _f64_temp(c, ldb * kk), _f64_temp(c, mn)
    work, iwork = _f64_temp(c, lw), c.temp(8 * liw)[0]
    L = _Call(c)
    sm, sn, sk, lda, sldb = L.int(m), L.int(n), L.int(kk), L.int(max(1, m)), L.int(ldb)
    rcond, rank, lwork, info = L.f64(e.params["rcond"]), L.int(0), L.int(lw), L.int(0)
    c.work += nb * 12 * m * n * max(mn, 1)
    dt = a.type.dtype
    zero, nan = ir.Constant(F64, 0.0), ir.Constant(F64, float("nan"))

    def one(i, _):
        to_fortran(c, ab, b.mul(i, i64(m * n)), m, n, fa)
        c.loops.for_range(ldb * kk, lambda j, _: [b.store(zero, _at(b, fb, j))][:0])
        to_fortran(c, bb, b.mul(i, i64(m * k)), m, k, fb, ld=ldb)
        L.call("dgelsd", [sm, sn, sk, fa, lda, fb, sldb, s, rcond, rank, work, lwork, iwork,
                          info])
        _check(c, info, STATUS_LSTSQ)
        from_fortran(c, fb, ldb, x_out, b.mul(i, i64(n * k)), n, k)
        rk = b.load(rank, typ=I64)
        b.store(b.trunc(rk, I32), rank_out.addr(b, i))
        c.loops.for_range(mn, lambda j, _: [b.store(
            _narrow(b, b.load(_at(b, s, j), typ=F64), dt),
            s_out.addr(b, b.add(b.mul(i, i64(mn)), j)))][:0])
        full = b.icmp_signed("==", rk, i64(n))

        def resid(j, _):
            if m >= n:
                def sq(t, carry):
                    v = b.load(_at(b, fb, _lin(b, (j, ldb), (t, 1), (n, 1))), typ=F64)
                    return [b.fadd(carry[0], b.fmul(v, v))]
                acc = c.loops.for_range(m - n, sq, carry=[zero])[0]
                v = b.select(full, acc, nan)
            else:
                v = nan
            b.store(_narrow(b, v, dt), r_out.addr(b, b.add(b.mul(i, i64(k)), j)))
        c.loops.for_range(k, resid)
    c.loops.for_range(nb, one)


KERNELS = {
    "qr": (qr, ("buffer",)),
    "lstsq": (lstsq, ("buffer", "buffer")),
    "svd": (svd, ("buffer",)),
    "svdvals": (svdvals, ("buffer",)),
    "linalg_solve": (solve, ("buffer", "buffer")),
    "linalg_slogdet": (slogdet, ("buffer",)),
    "cholesky": (cholesky, ("buffer",)),
    "eigh": (eigh, ("buffer",)),
    "eigvalsh": (eigvalsh, ("buffer",)),
    "triangular_solve": (triangular_solve, ("buffer", "buffer")),
    "triangular_matmul": (triangular_matmul, ("buffer", "buffer")),
}
