"""Kernels: primitives that write their whole output (reductions, argmax/argmin, cumsum,
concatenate, gather, scatter_add, dot_general) and guards. Operands marked 'once' in the
lowering table are read through `c.value`, so elementwise producers fuse into these loops.
"""
from __future__ import annotations

import math

from llvmlite import ir

from .emit import FLOATS, I8, I32, I64, MEM, PTR, REDUCE_FLAGS, REG, SCALAR, Ix, const, i64

STATUS_GUARD, STATUS_INDEX = 1, 2


def _prod(xs):
    n = 1
    for d in xs:
        n *= d
    return n


# --- reductions -------------------------------------------------------------------------------
def _combiner(c, name, dt):
    b = c.b
    if name == "reduce_sum":
        if dt in FLOATS:
            return lambda a, v: b.fadd(a, v, flags=REDUCE_FLAGS)
        return b.add
    op = ">" if name == "reduce_max" else "<"
    if dt in FLOATS:
        # llvm.maximum/minimum propagate NaN (as NumPy's max/min) and, unlike a compare and
        # select, are recognised by the vectoriser as a reduction
        fn = f"llvm.{'maximum' if op == '>' else 'minimum'}.{dt}"
        return lambda a, v: c.math.intr(fn, a, v, ret=REG[dt])
    return lambda a, v: b.select(b.icmp_signed(op, v, a), v, a)


def _inexact(name, dt):
    """Whether the result of the reduction depends on the order of its elements."""
    return name == "reduce_sum" and dt in FLOATS


def _identity(name, dt, empty=False):
    if name == "reduce_sum":
        # -0.0 + x == x for every x (a sum of -0.0s stays -0.0, as NumPy's); an empty sum is
        # NumPy's +0.0
        return const(dt, 0.0 if empty or dt not in FLOATS else -0.0)
    big = name == "reduce_min"
    if dt in FLOATS:
        return const(dt, math.inf if big else -math.inf)
    bits = 31 if dt == "i32" else 63
    return const(dt, (1 << bits) - 1 if big else -(1 << bits))


# Floating-point sums accumulate in registers in blocks of BLOCK elements (the vectoriser gives
# each block VF x interleave lane accumulators, combined as a tree at the block's end); the
# blocks' sums are combined pairwise (a binary counter of partial sums, as a merge sort's
# runs). NumPy's pairwise summation has 8 accumulators over blocks of 128; one accumulator over
# a whole row, or 64 lanes over 10M elements, lost 4 digits of f32 (issue 14.4).
BLOCK = 1024
ROWS_SEQ = 64   # short rows: at most this many row sums are added in sequence per block


def accumulate(c, shape, body, idents, combines, flat=False, span=None, exact=False):
    """Loops over `shape` in C order with accumulators: carry = body(ix, carry), starting from
    `idents`; returns the final accumulators. Like `c.loops.nest` (same `flat` and `span`),
    but unless `exact` (every combine is exact or order-independent: integers, max, min) the
    elements are summed in blocks combined pairwise (see BLOCK)."""
    shape = tuple(shape)
    n = _prod(shape)
    if exact or (span is None and n <= BLOCK):
        return c.loops.nest(shape, body, carry=idents, flat=flat, span=span)
    b = c.b
    pw = _Pairwise(c, [v.type for v in idents], combines, max(n, 1).bit_length() + 1)

    def blocked(lo, hi, at):
        """Blocks of [lo, hi) (i64 values) pushed one by one; body at index at(i)."""
        nfull = b.udiv(b.sub(hi, lo), i64(BLOCK))

        def full(j, _):
            s = b.add(lo, b.mul(j, i64(BLOCK)))
            pw.push(c.loops.for_range(BLOCK, lambda i, cr: body(at(b.add(s, i)), cr), idents))
        c.loops.for_range(0, full, span=(i64(0), nfull))
        s = b.add(lo, b.mul(nfull, i64(BLOCK)))
        pw.push(c.loops.for_range(0, lambda i, cr: body(at(i), cr), idents, span=(s, hi)))

    if flat or len(shape) <= 1:
        lo, hi = span if span is not None else (i64(0), i64(n))
        blocked(lo, hi, (lambda i: Ix([i], i)) if len(shape) == 1 else (lambda i: Ix(None, i)))
        return pw.total()
    rows, m = shape[:-1], shape[-1]
    if m >= BLOCK:
        def row(rix, _):
            d = rix.get_dims(b, rows)
            blocked(i64(0), i64(m), lambda i: Ix(d + [i]))
        c.loops.nest(rows, row, span=span)
        return pw.total()
    per = max(1, min(ROWS_SEQ, BLOCK // max(m, 1)))

    def short_row(rix, carry):
        d = rix.get_dims(b, rows)
        accs = c.loops.for_range(m, lambda i, cr: body(Ix(d + [i]), cr), idents)
        accs = [f(a, v) for f, a, v in zip(combines, carry[:-1], accs)]
        cnt = b.add(carry[-1], i64(1))
        full = b.icmp_signed("==", cnt, i64(per))
        c.loops.cond(full, lambda: pw.push(accs))
        return [b.select(full, z, a) for z, a in zip(idents, accs)] + [
            b.select(full, i64(0), cnt)]
    rest = c.loops.nest(rows, short_row, carry=list(idents) + [i64(0)], span=span)
    pw.push(rest[:-1])
    return pw.total()


class _Pairwise:
    """Partial sums combined pairwise: after k pushes, level l of the stack holds the sum of a
    run of 2^l consecutive blocks when bit l of k is set (a binary counter). In memory (allocas):
    pushes happen once per block."""

    def __init__(self, c, types, combines, levels):
        self.c, self.combines, self.levels = c, combines, levels
        self.count = c.alloca(I64)
        self.types = types
        self.stacks = [c.alloca(t, i64(levels)) for t in types]
        c.b.store(i64(0), self.count)

    def push(self, vals):
        b = self.c.b
        cnt = b.load(self.count, typ=I64)
        pre = b.block
        head = b.append_basic_block("pw.head")
        body = b.append_basic_block("pw.merge")
        done = b.append_basic_block("pw.done")
        b.branch(head)
        b.position_at_end(head)
        lev = b.phi(I64)
        lev.add_incoming(i64(0), pre)
        phis = []
        for v in vals:
            p = b.phi(v.type)
            p.add_incoming(v, pre)
            phis.append(p)
        bit = b.and_(b.lshr(cnt, lev), i64(1))
        b.cbranch(b.icmp_unsigned("!=", bit, i64(0)), body, done)
        b.position_at_end(body)
        new = [f(b.load(b.gep(st, [lev], inbounds=True, source_etype=p.type), typ=p.type), p)
               for f, st, p in zip(self.combines, self.stacks, phis)]
        lev.add_incoming(b.add(lev, i64(1)), body)
        for p, v in zip(phis, new):
            p.add_incoming(v, body)
        b.branch(head)
        b.position_at_end(done)
        for st, p in zip(self.stacks, phis):
            b.store(p, b.gep(st, [lev], inbounds=True, source_etype=p.type))
        b.store(b.add(cnt, i64(1)), self.count)

    def total(self):
        """The sum of every push, the latest runs first (each run is combined in order)."""
        b = self.c.b
        cnt = b.load(self.count, typ=I64)
        acc = None
        for lev in range(self.levels):
            bit = b.icmp_unsigned("!=", b.and_(b.lshr(cnt, i64(lev)), i64(1)), i64(0))
            vals = [b.load(b.gep(st, [i64(lev)], inbounds=True, source_etype=t), typ=t)
                    for st, t in zip(self.stacks, self.types)]
            if acc is None:
                acc = vals
                first = bit
                continue
            acc = [b.select(bit, b.select(first, f(v, a), v), a)
                   for f, v, a in zip(self.combines, vals, acc)]
            first = b.or_(first, bit)
        return acc


def reduce(c, e, out):
    """Loops over the operand in memory order. Trailing reduced axes accumulate in a register
    (a vectorisable reduction); other reduced axes accumulate into the output buffer, so the
    innermost loop still walks contiguous memory."""
    b = c.b
    x = e.inputs[0]
    axes = set(e.params["axes"])
    shp, dt, name = x.type.shape, x.type.dtype, e.prim.name
    n = len(shp)
    k = 0
    while k < n and (n - 1 - k) in axes:
        k += 1
    outer, inner = shp[:n - k], shp[n - k:]
    kept = [i for i in range(n) if i not in axes]
    combine = _combiner(c, name, dt)
    in_memory = any(a < n - k for a in axes)
    empty = _prod(shp[a] for a in axes) == 0
    if in_memory:
        c.loops.nest(out.type.shape, lambda ix, cr: out.store(b, ix, _identity(name, dt, empty)),
                     flat=True)

    def outer_body(oix, _):
        od = oix.get_dims(b, outer)
        if k:
            def inner_body(iix, carry):
                v = c.value(x, Ix(od + iix.get_dims(b, inner)))
                return [combine(carry[0], v)]
            acc = accumulate(c, inner, inner_body, [_identity(name, dt, empty)], [combine],
                             exact=not _inexact(name, dt))[0]
        else:
            acc = c.value(x, oix)
        oi = Ix([od[i] for i in kept])
        out.store(b, oi, combine(out.load(b, oi), acc) if in_memory else acc)
    c.loops.nest(outer, outer_body)


def argext(c, e, out):
    """argmax/argmin: the first index of the extremum; the first NaN wins (as NumPy)."""
    b = c.b
    x = e.inputs[0]
    axis = e.params["axis"]
    shp, dt = x.type.shape, x.type.dtype
    op = ">" if e.prim.name == "argmax" else "<"
    start = _identity("reduce_max" if op == ">" else "reduce_min", dt)

    def body(oix, _):
        od = oix.get_dims(b, out.type.shape)

        def step(i, carry):
            best, bi = carry
            v = c.value(x, Ix(od[:axis] + [i] + od[axis:]))
            if dt in FLOATS:
                better = b.or_(b.fcmp_ordered(op, v, best),
                               b.and_(b.fcmp_unordered("uno", v, v),
                                      b.fcmp_ordered("ord", best, best)))
            else:
                better = b.icmp_signed(op, v, best)
            return [b.select(better, v, best), b.select(better, i, bi)]
        _, bi = c.loops.for_range(shp[axis], step, carry=[start, i64(0)])
        out.store(b, oix, bi)
    c.loops.nest(out.type.shape, body)


def cumsum(c, e, out):
    # sequential along the axis (no reassociation), so results match NumPy bit for bit
    b = c.b
    x = e.inputs[0]
    axis, rev = e.params["axis"], e.params.get("reverse", False)
    shp, dt = x.type.shape, x.type.dtype
    other = shp[:axis] + shp[axis + 1:]
    add = b.fadd if dt in FLOATS else b.add

    def body(oix, _):
        od = oix.get_dims(b, other)

        def step(i, carry):
            ix = Ix(od[:axis] + [i] + od[axis:])
            acc = add(carry[0], c.value(x, ix))
            out.store(b, ix, acc)
            return [acc]
        c.loops.for_range(shp[axis], step, carry=[const(dt, 0)], reverse=rev)
    c.loops.nest(other, body)


def argsort(c, e, out):
    """The stable sorting permutation along an axis, by a bottom-up merge sort per row:
    O(n log n) compares. Two index buffers of n i64 in the workspace take turns as source and
    destination of a pass; a pass merges neighbouring runs of width w (the left run wins ties,
    so the sort is stable). The passes (ceil(log2 n)) and each pass's run bounds are known at
    compile time: each pass is one loop over its full pairs of runs plus one static merge for
    a ragged tail. NaN sorts last ascending and first descending, as the primitive's NumPy
    implementation."""
    b = c.b
    x = e.inputs[0]
    axis, desc = e.params["axis"], e.params.get("descending", False)
    shp, dt = x.type.shape, x.type.dtype
    other = shp[:axis] + shp[axis + 1:]
    n = shp[axis]
    if n == 0 or _prod(other) == 0:
        return
    op = ">" if desc else "<"
    xb = c.buffer(x)
    stride = _prod(shp[axis + 1:])
    (pa, oa, sa), (pb, ob, sb) = c.temp(8 * n), c.temp(8 * n)

    def before(xj, xi):
        """xj sorts strictly before xi (ties aside)."""
        if dt not in FLOATS:
            return b.icmp_signed(op, xj, xi)
        nan_j, nan_i = b.fcmp_unordered("uno", xj, xj), b.fcmp_unordered("uno", xi, xi)
        # ascending: a number before NaN; descending: NaN before a number
        nan_order = b.and_(nan_i, b.not_(nan_j)) if not desc else b.and_(nan_j, b.not_(nan_i))
        return b.or_(b.fcmp_ordered(op, xj, xi), nan_order)

    def at(ptr, k):
        return b.gep(ptr, [k], inbounds=True, source_etype=I64)

    def body(oix, _):
        od = oix.get_dims(b, other)
        base = Ix(od[:axis] + [i64(0)] + od[axis:]).get_lin(b, shp)

        def key(k):  # the row's k-th value
            lin = b.add(base, b.mul(k, i64(stride))) if stride != 1 else b.add(base, k)
            return b.load(xb.addr(b, lin), typ=MEM[dt])

        def init(k, _):
            b.store(k, at(pa, k))
            return []
        c.loops.for_range(n, init)

        def merge(src, dst, lo, wl, wr):
            """Merge src[lo:lo+wl] and src[lo+wl:lo+wl+wr] (sorted runs) into dst[lo:...]."""
            mid, hi = b.add(lo, i64(wl)), b.add(lo, i64(wl + wr))

            def step(k, carry):
                i, j = carry
                li = b.load(at(src, b.select(b.icmp_signed("<", i, mid), i, b.sub(mid, i64(1)))),
                            typ=I64)
                lj = b.load(at(src, b.select(b.icmp_signed("<", j, hi), j, b.sub(hi, i64(1)))),
                            typ=I64)
                v = key(li), key(lj)
                xi, xj = v if dt != "bool" else (b.icmp_unsigned("!=", v[0], ir.Constant(I8, 0)),
                                                 b.icmp_unsigned("!=", v[1], ir.Constant(I8, 0)))
                left = b.and_(b.icmp_signed("<", i, mid),
                              b.or_(b.icmp_signed(">=", j, hi), b.not_(before(xj, xi))))
                b.store(b.select(left, li, lj), at(dst, b.add(lo, k)))
                step_i = b.zext(left, I64)
                return [b.add(i, step_i), b.add(j, b.sub(i64(1), step_i))]
            c.loops.for_range(wl + wr, step, carry=[lo, mid])

        src, dst = pa, pb
        w = 1
        while w < n:
            full = n // (2 * w)
            if full:
                c.loops.for_range(full, lambda p, _: merge(src, dst, b.mul(p, i64(2 * w)), w, w)
                                  or [])
            lo = full * 2 * w
            rest = n - lo
            if rest:  # a ragged tail: a left run (maybe short) and what remains of a right one
                merge(src, dst, i64(lo), min(w, rest), max(rest - w, 0))
            src, dst = dst, src
            w *= 2

        def emit(k, _):
            out.store(b, Ix(od[:axis] + [k] + od[axis:]), b.load(at(src, k), typ=I64))
            return []
        c.loops.for_range(n, emit)
    c.loops.nest(other, body)
    c.release(oa, sa)
    c.release(ob, sb)


def concatenate(c, e, out):
    b = c.b
    axis = e.params["axis"]
    off = 0
    for x in e.inputs:
        def body(ix, _, x=x, off=off):
            d = list(ix.get_dims(b, x.type.shape))
            if off:
                d[axis] = b.add(d[axis], i64(off))
            out.store(b, Ix(d), c.value(x, ix))
        c.loops.nest(x.type.shape, body)
        off += x.type.shape[axis]


# --- indexing ---------------------------------------------------------------------------------
def _index(c, idx, ix_dims, n):
    """Read an index, wrap a negative one (as np.take does), fail with status 2 outside."""
    b = c.b
    j = c.value(idx, Ix(ix_dims))
    if idx.type.dtype == "i32":
        j = b.sext(j, I64)
    j = b.select(b.icmp_signed("<", j, i64(0)), b.add(j, i64(n)), j)
    ok = b.and_(b.icmp_signed(">=", j, i64(0)), b.icmp_signed("<", j, i64(n)))
    c.fail_unless(ok, STATUS_INDEX)
    return j


def gather(c, e, out):
    b = c.b
    x, idx = e.inputs
    axis, m = e.params["axis"], idx.type.ndim
    xb = c.buffer(x)

    def body(ix, _):
        d = ix.get_dims(b, out.type.shape)
        j = _index(c, idx, d[axis:axis + m], x.type.shape[axis])
        out.store(b, ix, xb.load(b, Ix(d[:axis] + [j] + d[axis + m:])))
    c.loops.nest(out.type.shape, body)


def scatter_add(c, e, out):
    # sequential in update order, as np.add.at: repeated indices accumulate
    b = c.b
    x, idx, upd = e.inputs
    axis, m, dt = e.params["axis"], idx.type.ndim, x.type.dtype
    c.loops.nest(out.type.shape, lambda ix, _: out.store(b, ix, c.value(x, ix)), flat=True)
    add = b.fadd if dt in FLOATS else b.add

    def body(ix, _):
        d = ix.get_dims(b, upd.type.shape)
        j = _index(c, idx, d[axis:axis + m], x.type.shape[axis])
        oi = Ix(d[:axis] + [j] + d[axis + m:])
        out.store(b, oi, add(out.load(b, oi), c.value(upd, ix)))
    c.loops.nest(upd.type.shape, body)


def guard(c, e, _):
    v = c.value(e.inputs[0], SCALAR, "bool")
    ok = v if e.params.get("expect", True) else c.b.not_(v)
    c.fail_unless(ok, STATUS_GUARD)


# --- dot_general ------------------------------------------------------------------------------
def _free(ndim, contract, batch):
    return [d for d in range(ndim) if d not in contract and d not in batch]


def _gemm_layout(xnd, ynd, lc, rc, lb, rb):
    """('N'|'T', 'N'|'T') when operands of ndim xnd and ynd are (batches of) row-major
    matrices that GEMM can use as they are (a transpose flag, no copy); None otherwise."""
    nb = len(lb)
    if tuple(lb) != tuple(range(nb)) or tuple(rb) != tuple(range(nb)):
        return None
    pairs = sorted(zip(lc, rc))
    lcs, rcs = [p[0] for p in pairs], [p[1] for p in pairs]
    if rcs != sorted(rcs):
        return None
    xr, yr = list(range(nb, xnd)), list(range(nb, ynd))
    nxf, nyf = len(xr) - len(lcs), len(yr) - len(rcs)
    xl = "N" if lcs == xr[nxf:] else "T" if lcs == xr[:len(lcs)] else None
    yl = "N" if rcs == yr[:len(rcs)] else "T" if rcs == yr[nyf:] else None
    return None if xl is None or yl is None else (xl, yl)


def _squeeze(xs, ys, lc, rc, lb, rb):
    """The product with its axes of extent 1 dropped (they change no memory layout, but hide
    matrix layouts from _gemm_layout): (xs, ys, lc, rc, lb, rb) of the squeezed operands."""
    dx = {a for a in range(len(xs)) if xs[a] == 1}
    dy = {a for a in range(len(ys)) if ys[a] == 1}
    for a, b_ in list(zip(lc, rc)) + list(zip(lb, rb)):
        if (a in dx) != (b_ in dy):   # paired axes have one extent: both or neither
            dx.discard(a)
            dy.discard(b_)
    kx = [a for a in range(len(xs)) if a not in dx]
    ky = [a for a in range(len(ys)) if a not in dy]
    mx, my = {a: i for i, a in enumerate(kx)}, {a: i for i, a in enumerate(ky)}
    pc = [(mx[a], my[b_]) for a, b_ in zip(lc, rc) if a in mx]
    pb = [(mx[a], my[b_]) for a, b_ in zip(lb, rb) if a in mx]
    return ([xs[a] for a in kx], [ys[a] for a in ky], [p[0] for p in pc], [p[1] for p in pc],
            [p[0] for p in pb], [p[1] for p in pb])


# floating-point products of at most this many multiply-adds run as inline loops (a BLAS call
# costs ~0.1-0.3 us; OpenBLAS's kernels win from ~16x16x16 on, even for tiny shapes)
SMALL_GEMM = 2048


def dot_general(c, e, out):
    x, y = e.inputs
    (lc, rc), (lb, rb) = e.params["contract"], e.params["batch"]
    dt = x.type.dtype
    sq = _squeeze(x.type.shape, y.type.shape, lc, rc, lb, rb)
    xs, ys, slc, src, slb, srb = sq
    lay = _gemm_layout(len(xs), len(ys), slc, src, slb, srb)
    if lay is not None and max(x.type.size, y.type.size, out.type.size) >= 2 ** 31:
        lay = None  # BLAS takes 32-bit sizes
    if lay is None:
        _dot_loops(c, x, y, lc, rc, lb, rb, out)
        return
    nb = len(slb)
    dims = (_prod(xs[:nb]), _prod(xs[a] for a in _free(len(xs), slc, slb)),
            _prod(ys[a] for a in _free(len(ys), src, srb)), _prod(xs[a] for a in slc))
    if dt not in FLOATS or dims[0] * dims[1] * dims[2] * dims[3] <= SMALL_GEMM:
        _dot_small(c, x, y, dims, lay, out)
    else:
        _dot_gemm(c, x, y, dims, lay, out)


def _dot_small(c, x, y, dims, lay, out):
    """C[b,i,j] = sum_k op(X)[b,i,k] op(Y)[b,k,j] as loops ordered for contiguous, vectorised
    inner loops: with Y not transposed, rows of C accumulate rows of Y (inner loop over j);
    otherwise dot products over k."""
    b = c.b
    nbatch, M, N, K = dims
    xl, yl = lay
    dt = x.type.dtype
    xb, yb = c.buffer(x), c.buffer(y)
    fl = REDUCE_FLAGS if dt in FLOATS else ()
    mul = (lambda p, q: b.fmul(p, q, flags=fl)) if dt in FLOATS else b.mul
    add = (lambda p, q: b.fadd(p, q, flags=fl)) if dt in FLOATS else b.add

    def lin(*terms):
        acc = i64(0)
        for v, s in terms:
            if isinstance(v, int):
                v = i64(v)
            acc = b.add(acc, b.mul(v, i64(s)) if s != 1 else v)
        return acc

    def xv(bi, i, k):
        return b.load(xb.addr(b, lin((bi, M * K), (i, K), (k, 1)) if xl == "N" else
                              lin((bi, M * K), (k, M), (i, 1))), typ=MEM[dt])

    def yv(bi, k, j):
        return b.load(yb.addr(b, lin((bi, K * N), (k, N), (j, 1)) if yl == "N" else
                              lin((bi, K * N), (j, K), (k, 1))), typ=MEM[dt])

    def caddr(bi, i, j):
        return out.addr(b, lin((bi, M * N), (i, N), (j, 1)))

    def batch(bi, _):
        def row(i, _):
            if yl == "N":
                c.loops.for_range(N, lambda j, _: [b.store(const(dt, 0), caddr(bi, i, j))][:0])

                def kstep(k, _):
                    xk = xv(bi, i, k)

                    def col(j, _):
                        p = caddr(bi, i, j)
                        b.store(add(b.load(p, typ=MEM[dt]), mul(xk, yv(bi, k, j))), p)
                    c.loops.for_range(N, col)
                c.loops.for_range(K, kstep)
            else:
                def col(j, _):
                    acc = c.loops.for_range(K, lambda k, cr: [add(cr[0], mul(
                        xv(bi, i, k), yv(bi, k, j)))], carry=[const(dt, 0)])[0]
                    b.store(acc, caddr(bi, i, j))
                c.loops.for_range(N, col)
        c.loops.for_range(M, row)
    c.loops.for_range(nbatch, batch)


def _dot_loops(c, x, y, lc, rc, lb, rb, out):
    b = c.b
    xb, yb = c.buffer(x), c.buffer(y)
    dt = x.type.dtype
    xf, yf = _free(x.type.ndim, lc, lb), _free(y.type.ndim, rc, rb)
    kshape = [x.type.shape[a] for a in lc]
    nb, nxf = len(lb), len(xf)

    def body(oix, _):
        od = oix.get_dims(b, out.type.shape)

        def inner(kix, carry):
            kd = kix.get_dims(b, kshape)
            xd, yd = [None] * x.type.ndim, [None] * y.type.ndim
            for i in range(nb):
                xd[lb[i]], yd[rb[i]] = od[i], od[i]
            for i, a in enumerate(xf):
                xd[a] = od[nb + i]
            for i, a in enumerate(yf):
                yd[a] = od[nb + nxf + i]
            for i in range(len(lc)):
                xd[lc[i]], yd[rc[i]] = kd[i], kd[i]
            xv, yv = xb.load(b, Ix(xd)), yb.load(b, Ix(yd))
            if dt in FLOATS:
                return [b.fadd(carry[0], b.fmul(xv, yv, flags=REDUCE_FLAGS), flags=REDUCE_FLAGS)]
            return [b.add(carry[0], b.mul(xv, yv))]
        acc = c.loops.nest(kshape, inner, carry=[const(dt, 0)])[0]
        out.store(b, oix, acc)
    c.loops.nest(out.type.shape, body)


def _dot_gemm(c, x, y, dims, lay, out):
    """Row-major C = op(X) @ op(Y) is column-major C^T = op(Y)^T op(X)^T: one ?gemm call per
    batch with Y as BLAS's A and X as its B."""
    b = c.b
    dt = x.type.dtype
    nbatch, M, N, K = dims
    if M * N * nbatch == 0:
        return
    if K == 0:
        c.loops.nest(out.type.shape, lambda ix, _: out.store(b, ix, const(dt, 0.0)), flat=True)
        return
    xl, yl = lay
    c.work += nbatch * M * N * K
    ptrs = [c.buffer(y).ptr, c.buffer(x).ptr, out.ptr]  # (no zero-offset GEPs: an MLP stack's
    # thousands of products made a third of its lowered instructions of them)
    if c.n_products <= GEMM_INLINE_MAX and c.n_products == c.live:  # only a few products:
        # the BLAS calls at their sites
        _gemm_calls(c, b, dt, xl, yl, dims, *ptrs)
    else:
        b.call(_gemm_helper(c, dt, xl, yl, dims), ptrs)


# A graph whose live equations are all products (dot_general), at most this many, calls BLAS
# at each site; other graphs go through one helper function per signature (_gemm_helper).
# Each function of a module costs LLVM ~0.1 ms of -O3 and ~0.4 ms of code generation however
# small it is: W3g's five distinct products were five helpers, half of its compile time.
# Not in graphs with loops: W7's step (3.3 us) took 0.45 us more with its two products at
# their sites (a body with a frame and more live registers around its loops).
GEMM_INLINE_MAX = 8


def _gemm_helper(c, dt, xl, yl, dims):
    """The module's internal function computing one GEMM signature (dtype, layouts, batch and
    sizes) from its operands' pointers (y, x, out): its BLAS arguments are constants stored
    once there instead of at every use, which keeps a graph of many matrix products (an MLP
    stack's forward and backward) small for LLVM. Bit for bit the same ?gemm calls."""
    nbatch, M, N, K = dims  # noqa: F841 (the helper's name)
    helper = f"adjit_gemm_{dt}_{yl}{xl}_{nbatch}x{M}x{N}x{K}"
    fn = c.module.globals.get(helper)
    if fn is not None:
        return fn
    fn = ir.Function(c.module, ir.FunctionType(ir.VoidType(), [PTR] * 3), helper)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    fn.attributes.add("nounwind")
    for a in fn.args:
        a.add_attribute("noalias")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    _gemm_calls(c, b, dt, xl, yl, dims, *fn.args, alloca=b.alloca)
    b.ret_void()
    return fn


def _gemm_calls(c, b, dt, xl, yl, dims, yp, xp, op, alloca=None):
    """Emit with builder `b` the ?gemm call(s) of one product signature on the pointers yp,
    xp, op: its constant Fortran arguments in stack slots (`alloca`: where they are made,
    else the function's entry block), one call per batch."""
    nbatch, M, N, K = dims
    name = "sgemm" if dt == "f32" else "dgemm"
    blas = c.module.globals.get(f"adjit_{name}")
    if blas is None:
        blas = ir.Function(c.module, ir.FunctionType(ir.VoidType(), [PTR] * 13), f"adjit_{name}")
    c.imports.add(name)
    alloca = alloca or (lambda typ: c.alloca(typ))
    t = REG[dt]
    slots = {}
    for key, typ, val in (("ta", I8, ord(yl)), ("tb", I8, ord(xl)), ("m", I32, N),
                          ("n", I32, M), ("k", I32, K), ("lda", I32, N if yl == "N" else K),
                          ("ldb", I32, K if xl == "N" else M), ("ldc", I32, N),
                          ("alpha", t, 1.0), ("beta", t, 0.0)):
        slots[key] = alloca(typ)
        b.store(ir.Constant(typ, val), slots[key])
    mem = MEM[dt]

    def call(i):
        def at(p, per):
            if nbatch == 1:
                return p
            return b.gep(p, [b.mul(i, i64(per))], inbounds=True, source_etype=mem)
        b.call(blas, [slots["ta"], slots["tb"], slots["m"], slots["n"], slots["k"],
                      slots["alpha"], at(yp, K * N), slots["lda"], at(xp, M * K), slots["ldb"],
                      slots["beta"], at(op, M * N), slots["ldc"]])
    if nbatch == 1:
        call(i64(0))
        return
    fn = b.function
    entry = b.block
    loop, body, done = (fn.append_basic_block(n) for n in ("loop", "body", "done"))
    b.branch(loop)
    b.position_at_end(loop)
    k = b.phi(I64, "k")
    k.add_incoming(i64(0), entry)
    b.cbranch(b.icmp_signed("<", k, i64(nbatch)), body, done)
    b.position_at_end(body)
    call(k)
    nxt = b.add(k, i64(1), flags=["nuw", "nsw"])
    k.add_incoming(nxt, b.block)
    b.branch(loop)
    b.position_at_end(done)
