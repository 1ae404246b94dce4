"""Fusion: which values get a buffer and which are recomputed inside their consumer's loops.

Every value produced by an elementwise or index-map primitive (broadcast_in_dim, transpose,
reshape, slice, pad) is a candidate for *inlining*: instead of a loop writing a temporary, its
consumer's loop computes it at the index it needs. Kernels (reductions, cumsum, concatenate,
gather, scatter_add, dot_general) always write a buffer, but read their operands inline where
each operand element is read once. So an elementwise chain feeding a broadcast feeding a
reduction is one loop nest with no temporaries.

A candidate is *materialised* (given a buffer) instead when
- it is a graph output (the output buffer is its buffer; later consumers read it);
- a consumer needs a real buffer (BLAS operands, gather's table);
- it is not cheap and would be recomputed many times: read through an expanding broadcast, or
  by a kernel that reads each element several times ('repeat' operands);
- it is not cheap and is read at two different indices (in different loop nests, or through
  different index maps in one): it would be computed twice per element, and a chain of such
  values would double the work at every step. Uses at the same index share one computation
  (see builder.value).
"Cheap" = only index maps, conversions and constants over values that already have buffers.

Sibling (multi-output) fusion: materialised values ("roots") with the same iteration space
share one loop nest - elementwise and index-map roots iterate over their output, reductions
over their operand (a reduction joins only nests whose trailing reduced axes match its own).
Operands are then read at the nest's index by every root, so a value several roots of one
nest read there is computed once in that nest and needs no buffer (W4's value and gradient:
one pass over x). `plan.loop` maps each root to its nest, `plan.loops` lists a nest's roots in
program order, `plan.domain` gives its (shape, trailing reduced axes). Nests are formed in
reverse program order: a root joins a later nest when nothing that nest reads is computed in
between (the nest then runs at the root's place) and the nest reads the root, if at all, only
at the nest's index and not as a reduction (`can_join`). Reductions on short inner loops or
accumulating in memory on small arrays keep their own nest (`VEC_MIN`,
`MEMORY_SIBLINGS_MIN`: such shared nests vectorise worse than separate ones).
A loop body is capped (`BODY_COST_MAX`, summed `Primitive.cost` of the code inlined into it):
past it, a value is materialised in a loop of its own, so a long elementwise chain becomes
several bounded loops (each writing a buffer the next reads), LLVM's optimisation time stays
linear, and the builder's section split (SECTION_INSNS) can divide the graph.
"""
from __future__ import annotations

from ..ir.core import Lit

CHEAP = frozenset(("broadcast_in_dim", "transpose", "reshape", "slice", "pad", "stop_gradient",
                   "convert_element_type", "full", "neg", "not"))


class Plan:
    __slots__ = ("producer", "materialised", "dead", "out_slot", "cheap", "loop", "loops",
                 "domain")

    def __init__(self):
        self.producer = {}      # Var -> Eqn
        self.materialised = set()
        self.dead = set()       # equations whose value nobody needs
        self.out_slot = {}      # Var -> index of the output buffer it lives in
        self.cheap = {}
        self.loop = {}          # root Eqn (materialised value or guard) -> loop id
        self.loops = {}         # loop id -> its root Eqns in program order
        self.domain = {}        # loop id -> (iteration shape, trailing reduced axes or None)


REDUCE = ("reduce_sum", "reduce_max", "reduce_min")
MAX_CANDIDATES = 6              # loops of the same shape a root tries to join
VEC_MIN = 16                    # shortest innermost loop a reduction shares with siblings
BODY_COST_MAX = 600             # summed Primitive.cost of the code in one loop body (a math-
                                # library call costs 20-60, like the instructions it inlines)
MEMORY_SIBLINGS_MIN = 1 << 14   # elements from which a reduction accumulating in memory does


def _policy(consumer, pos, lowerings):
    low = lowerings[consumer.prim.name]
    if low.kind == "kernel" or low.kind == "guard":
        ops = low.operands
        return ops[min(pos, len(ops) - 1)]
    if consumer.prim.name == "broadcast_in_dim":
        x, out = consumer.inputs[0], consumer.outvars[0]
        return "repeat" if out.type.size > x.type.size else "once"
    return "once"


def trailing_reduced(shape, axes):
    """How many trailing axes of `shape` are reduced (they accumulate in a register)."""
    axes, n, k = set(axes), len(shape), 0
    while k < n and (n - 1 - k) in axes:
        k += 1
    return k


def _domain(e, lowerings):
    """(iteration shape, trailing reduced axes or None) of a root that may share a loop nest
    with others, else None. Elementwise and index-map roots iterate over their output, the
    reductions over their operand."""
    if not e.outvars:
        return None
    name = e.prim.name
    if name in REDUCE:
        x = e.inputs[0]
        if isinstance(x, Lit) or x.type.size == 0:
            return None
        shape = x.type.shape
        t = trailing_reduced(shape, e.params["axes"])
        # the shared nest's innermost loop runs over the trailing reduced axes (or, without
        # any, the last axis): elementwise siblings would lose their vectorised flat loop if
        # it were short (a [32,5] row sum), so such a reduction keeps its own nest
        inner = 1
        for d in shape[len(shape) - t:] if t else shape[-1:]:
            inner *= d
        if t < len(shape) and inner < VEC_MIN:
            return None
        if (t == 0 or any(a < len(shape) - t for a in e.params["axes"])) and \
                x.type.size < MEMORY_SIBLINGS_MIN:
            # it accumulates in memory: on small arrays LLVM unrolls such a shared nest badly
            # (scalar accumulators), and there is little memory traffic to save
            return None
        return shape, t
    kind = lowerings[name].kind
    if kind == "ew" or (kind == "index" and name != "reshape"):  # a reshape may be an alias
        v = e.outvars[0]
        return None if v.type.size == 0 else (v.type.shape, None)
    return None


def plan(g, lowerings) -> Plan:
    p = Plan()
    for i, v in enumerate(g.outvars):
        if not isinstance(v, Lit) and v not in p.out_slot:
            p.out_slot[v] = i
    pos = {}
    for i, e in enumerate(g.eqns):
        pos[e] = i
        for v in e.outvars:
            p.producer[v] = e
            # an expanding broadcast is cheap whatever its operand: that operand is read
            # 'repeat' (_policy), so it gets a buffer unless it is cheap itself
            p.cheap[v] = e.prim.name in CHEAP and (all(
                isinstance(x, Lit) or p.cheap.get(x, True) for x in e.inputs) or (
                e.prim.name == "broadcast_in_dim" and v.type.size > e.inputs[0].type.size))
    consumers = {}
    for e in g.eqns:
        for k, x in enumerate(e.inputs):
            if not isinstance(x, Lit):
                consumers.setdefault(x, []).append((e, k))
    # sig[v]: the index v is evaluated at inside its loop nest. A value used at two different
    # indices would be computed twice per element, and chains of such values would double the
    # work at every step, so only cheap values may be inlined with differing uses. Roots that
    # share a loop nest (sibling fusion) evaluate their operands at one common index, the
    # loop's: a value read by several of them at that index is computed once, in that loop.
    sig = {}
    in_loops = {}                   # Eqn -> ids of the loop nests its code is emitted in
    by_shape = {}                   # iteration shape -> loop ids, newest first
    live = set(p.out_slot)
    body = {}                       # loop id -> summed cost of the code emitted in its body

    def use_sig(c, k):
        kind = lowerings[c.prim.name].kind
        root = not c.outvars or c.outvars[0] in p.materialised
        if kind == "ew":
            return ("loop", p.loop[c]) if root else sig[c.outvars[0]]
        if kind == "index":
            return ("map", id(c))
        if c.prim.name in REDUCE and c in p.loop and p.domain[p.loop[c]] is not None:
            return ("loop", p.loop[c])
        return ("operand", id(c), k)

    def new_loop(e, dom):
        lid = len(p.loops)
        p.loops[lid] = [e]
        p.loop[e] = lid
        p.domain[lid] = dom
        body[lid] = e.prim.cost
        if dom is not None:
            by_shape.setdefault(dom[0], []).insert(0, lid)
        return lid

    def can_join(e, lid, uses):
        """Whether root `e` may share loop `lid`, whose roots all come later in the program:
        the loop then runs at e's place, so nothing its roots read may be computed between e
        and them, except by roots of the loop itself (read at the loop's index)."""
        here = pos[e]
        mine = set(p.loops[lid])
        reads_e = False
        stack = [x for r in mine for x in r.inputs]
        seen = set()
        while stack:
            x = stack.pop()
            if isinstance(x, Lit) or x in seen:
                continue
            seen.add(x)
            pe = p.producer.get(x)
            if pe is None or pos[pe] < here:
                continue
            if pe is e:
                reads_e = True
                continue
            if x in p.materialised:
                if pe not in mine:
                    return False
                continue
            stack.extend(pe.inputs)
        if reads_e:  # e's value is read in the loop: only at the loop index, and not a sum
            if e.prim.name in REDUCE:
                return False
            for c, k in uses:
                if lid in in_loops[c] and use_sig(c, k) != ("loop", lid):
                    return False
        return True

    def assign_loop(e, uses):
        dom = _domain(e, lowerings)
        if dom is None:
            return new_loop(e, None)
        shape, t = dom
        cands = []
        for lid in by_shape.get(shape, ())[:MAX_CANDIDATES]:
            lt = p.domain[lid][1]
            if t is not None and lt is not None and t != lt:
                continue
            if body[lid] + e.prim.cost > BODY_COST_MAX:
                continue
            reads = any(lid in in_loops[c] for c, _ in uses)
            cands.append((not reads, len(cands), lid))
        for _, _, lid in sorted(cands):
            if can_join(e, lid, uses):
                p.loops[lid].insert(0, e)
                p.loop[e] = lid
                body[lid] += e.prim.cost
                if t is not None:
                    p.domain[lid] = (shape, t)
                lst = by_shape[shape]
                lst.insert(0, lst.pop(lst.index(lid)))
                return lid
        return new_loop(e, dom)

    for e in reversed(g.eqns):
        if not e.outvars:                   # a guard: always kept, its own root
            live.update(x for x in e.inputs if not isinstance(x, Lit))
            in_loops[e] = {new_loop(e, None)}
            continue
        v = e.outvars[0]
        if not any(w in live for w in e.outvars):
            p.dead.add(e)
            continue
        live.update(x for x in e.inputs if not isinstance(x, Lit))
        kind = lowerings[e.prim.name].kind
        uses = [(c, k) for c, k in consumers.get(v, ()) if c not in p.dead]
        sigs = {use_sig(c, k) for c, k in uses}
        if kind == "kernel" and len(e.outvars) > 1:  # a kernel with several results
            p.materialised.update(e.outvars)             # writes them all: its own root
            in_loops[e] = {new_loop(e, None)}
            continue
        if kind == "kernel" or v in p.out_slot:
            mat = True
        elif kind == "split":  # several results, not yet split (builder splits them): a root
            p.materialised.update(e.outvars)
            in_loops[e] = {new_loop(e, None)}
            continue
        else:
            pols = {_policy(c, k, lowerings) for c, k in uses}
            mat = "buffer" in pols or (not p.cheap[v] and ("repeat" in pols or len(sigs) > 1))
            if not mat and not p.cheap[v]:  # a body over the cap: v starts a new loop instead
                lids = set().union(*[in_loops[c] for c, _ in uses]) if uses else set()
                mat = any(body[lid] + e.prim.cost > BODY_COST_MAX for lid in lids)
        if mat:
            p.materialised.add(v)
            in_loops[e] = {assign_loop(e, uses)}
        else:
            sig[v] = sigs.pop() if len(sigs) == 1 else ("several",)
            in_loops[e] = set().union(*[in_loops[c] for c, _ in uses]) if uses else set()
            for lid in in_loops[e]:
                body[lid] += e.prim.cost
    return p
