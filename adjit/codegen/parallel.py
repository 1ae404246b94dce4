"""Splitting a large loop nest into blocks that run on two threads.

A loop nest (one or several fused roots, builder.loop_unit) whose estimated work is large is
outlined into a *chunk* function that runs block i of the outermost loop: a range [lo, hi) of
the linear index when the nest is flat, else of axis 0. The function body calls the runtime
helper `adjit_parallel_for(chunk, ctx, nblocks)` (runtime/native.py): the calling thread and
one helper thread take blocks from a shared counter (or the caller runs them all when threads
are off). The context holds the buffer pointers the nest uses, the block bounds and room for
partial results.

Deterministic by construction: the bounds are fixed at compile time (they depend on the shape
only), each block writes disjoint output elements, and a full reduction leaves one partial
accumulator per block, which the caller combines in block order. So results are the same
whatever the thread setting or the scheduling, bit for bit.

Only nests whose outputs split cleanly qualify: every reduction either reduces all axes (the
partials above) or keeps axis 0 (each block owns its output rows).
"""
from __future__ import annotations

from llvmlite import ir

from ..ir.core import Lit
from .emit import I8, I64, PTR, REG, Buf, Ix, i64

# estimated work (element-operations, below) from which a nest is split; a helper thread costs
# ~20-50 us, a simple vectorised element-operation ~0.05-0.3 ns, a transcendental ~30 of them
MIN_WORK = 4_000_000
BLOCK_WORK = 2_000_000  # work per block (more blocks: better balance when a core is busy)
MAX_BLOCKS = 8
# (what one element of each primitive costs is its record's `cost`: Primitive.cost)
ALIGN = 64  # elements: a flat split point is a multiple of this (whole vectors, cache lines)


def _cone(c, unit):
    """(equations computed per iteration, buffer Vars read) of the nest of `unit`."""
    eqns, bufs, seen = [], [], set()
    stack = [x for e in unit for x in e.inputs]
    while stack:
        x = stack.pop()
        if isinstance(x, Lit) or x in seen:
            continue
        seen.add(x)
        if x in c.bufs:
            bufs.append(x)
            continue
        e = c.plan.producer[x]
        eqns.append(e)
        stack.extend(e.inputs)
    return eqns, bufs


def _work_per_element(c, unit):
    eqns, bufs = _cone(c, unit)
    w = len(bufs) + len(unit)  # loads and stores
    for e in list(eqns) + list(unit):
        w += e.prim.cost
    return w


def split_axis(c, unit, domain):
    """(extent of the loop that is split, True if it is the linear index) as loop_unit runs
    it (see builder.loop_unit)."""
    shape, _ = domain
    n = len(shape)
    reds, k, _ = c.reduce_info(unit, domain)
    flat = c.flat_unit(unit)
    size = 1
    for d in shape:
        size *= d
    if not k:                   # one nest over the shape (flat only without reductions)
        linear = (flat and not reds) or n <= 1
    elif k < n:                 # outer nest over the kept leading axes: axis 0
        linear = False
    else:                       # full reductions: the inner nest, flat when it can be
        linear = flat or n <= 1
    return (size if linear else shape[0]), linear


def plan_split(c, unit, domain):
    """None (run the nest as one loop), or (block bounds, partial slots per block)."""
    if domain is None:
        return None
    shape, _ = domain
    n = len(shape)
    if n == 0:
        return None
    reds, k, _ = c.reduce_info(unit, domain)
    for e in reds:
        if not (k == n or 0 not in e.params["axes"]):
            return None  # it accumulates across axis 0 in memory: the blocks would race
    size = 1
    for d in shape:
        size *= d
    work = size * _work_per_element(c, unit)
    if work < MIN_WORK:
        return None
    extent, linear = split_axis(c, unit, domain)
    nb = min(MAX_BLOCKS, extent, max(2, work // BLOCK_WORK))
    if nb < 2:
        return None
    bounds = [extent * i // nb for i in range(nb + 1)]
    if linear and extent >= nb * 4 * ALIGN:  # whole vectors and cache lines per block
        bounds = [b // ALIGN * ALIGN for b in bounds[:-1]] + [extent]
    return tuple(bounds), (len(reds) if k == n else 0)


def emit_split(c, unit, domain, split):
    """The nest as a chunk function run block by block through adjit_parallel_for."""
    bounds, nparts = split
    nb = len(bounds) - 1
    b = c.b
    eqns, bufvars = _cone(c, unit)
    vars_ = bufvars + [e.outvars[0] for e in unit]
    ptrs, index = [], {}
    for v in vars_:
        p = c.bufs[v].ptr
        if id(p) not in index:
            index[id(p)] = len(ptrs)
            ptrs.append(p)
    m = len(ptrs)
    chunk = _chunk_function(c, unit, domain, vars_, ptrs, index, nb, nparts)
    # the context: [m pointers][nb + 1 bounds][nb * nparts partial results], in the caller's
    # frame (the call returns only when every block is done)
    c.init_reductions(unit, domain)
    ctx = _opaque(c, c.alloca(ir.ArrayType(I64, m + nb + 1 + nb * nparts)))

    def slot(i):
        return b.gep(ctx, [i64(8 * i)], inbounds=True, source_etype=I8)
    for i, p in enumerate(ptrs):
        b.store(p, slot(i))
    for i, bound in enumerate(bounds):
        b.store(i64(bound), slot(m + i))
    helper = c.module.globals.get("adjit_parallel_for")
    if helper is None:
        helper = ir.Function(c.module, ir.FunctionType(ir.VoidType(), [PTR, PTR, I64]),
                             "adjit_parallel_for")
    c.imports.add("parallel_for")
    b.call(helper, [chunk, ctx, i64(nb)])
    if nparts:  # full reductions: combine the blocks' accumulators in a fixed order
        reds, _, info = c.reduce_info(unit, domain)
        for j, e in enumerate(reds):
            combine, _, _, out = info[e]
            t = REG[e.inputs[0].type.dtype]
            acc = None
            for i in range(nb):
                v = b.load(slot(m + nb + 1 + i * nparts + j), typ=t)
                acc = v if acc is None else combine(acc, v)
            out.store(b, Ix([], i64(0)), acc)


def _opaque(c, p):
    """An alloca's address as an opaque pointer (llvmlite types allocas)."""
    if getattr(p.type, "is_opaque", False):
        return p
    return c.b.inttoptr(c.b.ptrtoint(p, I64), PTR)


def _chunk_function(c, unit, domain, vars_, ptrs, index, nb, nparts):
    """void chunk(ptr ctx, i64 i): block i of the nest (an always-inlined body with noalias
    pointer parameters, as the entry has)."""
    m = len(ptrs)
    k = c.n_chunks
    c.n_chunks += 1
    body = ir.Function(c.module, ir.FunctionType(ir.VoidType(), [PTR] * m + [I64, I64, PTR]),
                       f"{c.symbol}_chunk{k}_body")
    body.linkage = "internal"
    body.attributes.add("alwaysinline")
    body.attributes.add("nounwind")
    for a in body.args[:m]:
        a.add_attribute("noalias")
    saved = c.enter_function(body)
    try:
        args = list(body.args)
        c.bufs = {v: Buf(args[index[id(c.bufs[v].ptr)]], c.bufs[v].type) for v in vars_}
        c.loop_unit(unit, domain, span=(args[m], args[m + 1]),
                    partial=args[m + 2] if nparts else None, init=False)
        c.b.ret_void()
    finally:
        c.leave_function(saved)
    fn = ir.Function(c.module, ir.FunctionType(ir.VoidType(), [PTR, I64]),
                     f"{c.symbol}_chunk{k}")
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    b = ir.IRBuilder(fn.append_basic_block())
    ctx, i = fn.args

    def slot(j):
        return b.gep(ctx, [b.mul(j, i64(8))] if not isinstance(j, int) else [i64(8 * j)],
                     inbounds=True, source_etype=I8)
    vals = [b.load(slot(j), typ=PTR) for j in range(m)]
    lo = b.load(slot(b.add(i, i64(m))), typ=I64)
    hi = b.load(slot(b.add(i, i64(m + 1))), typ=I64)
    part = slot(b.add(b.mul(i, i64(nparts)), i64(m + nb + 1)))
    b.call(body, vals + [lo, hi, part])
    b.ret_void()
    return fn
