"""Graph transforms for derivatives: vjp_graph (reverse mode) and jvp_graph (forward mode).

Both re-run the graph's equations through `bind` on abstract values inside a fresh trace and
then apply each primitive's derivative rule, which is written with primitives too. The result is
ordinary IR: it prints, parses, verifies, optimises, compiles, and can be differentiated again.
"""
from __future__ import annotations

from math import prod

from .core import EAGER, Lit, MultiRec, NoDerivative, Node, STATE, new_trace, recording_only
from .graph import Graph, bind_outputs, extract
from . import ops
from .types import FLOATS


def _abstract(v, trace):
    return Node(None, v.type, None, trace)


def _replay(g: Graph, ins, cs, active=()):
    """Run g's equations through bind. An `active` equation (one a derivative flows through)
    whose primitive has a `residual_vjp` takes its value from that rule's forward, which also
    returns the residuals its backward reads: returns (env, {eqn: residuals})."""
    env = {}
    saved = {}
    for v, n in zip(g.invars, ins):
        env[v] = n
    for v, n in zip(g.constvars, cs):
        env[v] = n
    from .core import bind, STATE
    prev = STATE.loc
    try:
        for e in g.eqns:
            STATE.loc = e.loc
            args = [x.value if type(x) is Lit else env[x] for x in e.inputs]
            rv = e.prim.residual_vjp
            if rv is not None and e.outvars and e.outvars[0] in active:
                out, saved[e] = rv[0](*args, **e.params)
            else:
                out = bind(e.prim, *args, **e.params)
            bind_outputs(env, e, out)
    finally:
        STATE.loc = prev
    return env, saved


def _differentiable(v):
    return not isinstance(v, Lit) and v.type.dtype in FLOATS


def _active_vars(g: Graph, seeds):
    """Vars through which a derivative of `seeds` can flow."""
    active = set(seeds)
    for e in g.eqns:
        outs = e.outvars
        if not outs or e.prim.vjp is None:
            continue
        for x in e.inputs:
            if not isinstance(x, Lit) and x in active:
                for v in outs:
                    if _differentiable(v):
                        active.add(v)
                break
    return active


def _accumulate(cts, v, c):
    cts[v] = c if v not in cts else ops.add(cts[v], c)


def backward_pass(g: Graph, env, out_cts, wrt_vars, extra=(), saved=None):
    """Cotangents of `wrt_vars` (and of the intermediate vars `extra`) given cotangents of
    outputs, running each equation's vjp rule in reverse order.

    `out_cts` is a sequence of (var, cotangent) pairs, one per output: an output list may name
    one var several times (`return t, t`) or an input directly, and every pair counts (their
    cotangents are summed), so it must not be a dict keyed by var. `saved`: the residuals
    `_replay` kept for equations whose primitive has a `residual_vjp`."""
    active = _active_vars(g, wrt_vars)
    cts = {}
    for v, c in out_cts:
        if not isinstance(v, Lit) and v in active:
            _accumulate(cts, v, c)
    for e in reversed(g.eqns):
        if not e.outvars:
            continue
        if len(e.outvars) == 1:
            out = e.outvars[0]
            if out not in cts:
                continue
            ct = cts.pop(out) if out not in extra else cts[out]
            outval = env[out]
        else:  # several results: one cotangent each, None for a result nothing used
            if not any(v in cts for v in e.outvars):
                continue
            ct = tuple((cts.pop(v, None) if v not in extra else cts.get(v)) for v in e.outvars)
            outval = tuple(env[v] for v in e.outvars)
        prims = [x.value if type(x) is Lit else env[x] for x in e.inputs]
        prev, STATE.loc = STATE.loc, e.loc
        try:
            if saved and e in saved:
                in_cts = e.prim.residual_vjp[1](saved[e], ct, *prims, out=outval, **e.params)
            else:
                in_cts = e.prim.vjp(ct, *prims, out=outval, **e.params)
        finally:
            STATE.loc = prev
        for x, c in zip(e.inputs, in_cts):
            if c is None or isinstance(x, Lit) or x not in active:
                continue
            if isinstance(c, NoDerivative):
                c.fail()
            _accumulate(cts, x, c)
    return cts


def recorded(g: Graph, values, leaves) -> bool:
    """Whether `values` (Var -> array) holds each of `leaves` and every equation's results,
    and no equation's vjp needs residuals (a custom_vjp's forward): what computing the adjoint
    from recorded values (eager_vjp, grad inside jit) requires."""
    if any(values.get(v) is None for v in leaves):
        return False
    for e in g.eqns:
        if e.prim.residual_vjp is not None:
            return False
        for v in e.outvars:
            if values.get(v) is None:
                return False
    return True


def eager_vjp(g: Graph, values, out_cts, wrt):
    """Cotangents of `g.invars[wrt]` computed at once from the values `g` recorded (`values`:
    Var -> array, from `extract(values=...)`): each equation's vjp rule runs on arrays as it
    is emitted, as `eval_graph` would run `vjp_graph(g)`'s adjoint equations, without building,
    optimising or planning that graph (the first tier of grad without jit). `out_cts`: one
    array per output. None when a rule would need a value that was not recorded (abstract) or
    a residual (a custom_vjp's forward): the caller then derives the graph."""
    if not recorded(g, values, g.invars + g.constvars):
        return None
    wrt_vars = [g.invars[i] for i in wrt]
    cts = backward_pass(g, values, list(zip(g.outvars, out_cts)), wrt_vars)
    res = []
    for v in wrt_vars:
        c = cts.get(v)
        res.append(ops.zeros(v.type.shape, v.type.dtype) if c is None else c)
    return res


def eager_backward(roots, trace, inputs, out_cts, max_size):
    """`eager_vjp` on the records themselves: the cotangents of `inputs` (Nodes of `trace`)
    given one array per root, each vjp rule run on the values the records hold, in reverse
    recording order (a record's `seq`), with no Graph extracted (grad's eager tier). The
    equations are those `extract(roots, trace, inputs=inputs)` would take (the trace's guards
    and what they read included), so the same conditions refuse: None when a value is abstract
    or has `max_size` elements or more, a value read is live in an enclosing recorder (a Tensor
    requiring grad), or a rule needs residuals (a custom_vjp's forward); the caller then
    derives the graph. Returns (cotangents, the values read that are not recorded at `trace`:
    the graph's constants). `eager_plan` + `eager_run`."""
    plan = eager_plan(roots, trace, inputs, max_size)
    if plan is None:
        return None
    return eager_run(plan, roots, inputs, out_cts), plan[2]


def _spread_active(rec, out, active):
    """Add the float results `out` of record `rec` to `active` when an operand is active (a
    derivative of the inputs flows through them: `_active_vars` on records)."""
    for x in rec.inputs:
        if type(x) is not Lit and x in active:
            if type(out) is tuple:
                active.update(m for m in out if m.type.dtype in FLOATS)
            elif out.type.dtype in FLOATS:
                active.add(out)
            return


def eager_plan(roots, trace, inputs, max_size):
    """What `eager_backward` runs, found once (vjp's pullback may run it several times):
    (the (record, result Node or tuple of them) pairs in reverse recording order, the Nodes
    a derivative of `inputs` flows through, the values read that are not recorded at
    `trace`), or None where `eager_backward` refuses. The pairs read their operands' values
    (`Node.val`) when run."""
    for n in inputs:
        if n.val is None or prod(n.type.shape) >= max_size:
            return None
    leaves = []

    def leaf(n):  # a value not recorded at `trace`: a leaf, unless an active recorder's
        t = n.trace
        if t.active and (t is not EAGER or n.requires_grad):
            return False
        leaves.append(n)
        return True

    nodes = []  # (a loop: no comprehension frame on grad's eager tier)
    for r in roots:
        if isinstance(r, Node):
            nodes.append(r)
    items = _reach(nodes, trace, set(inputs), max_size, leaf)
    if items is None:
        return None
    # the values a derivative of the inputs flows through (`_active_vars`)
    active = set(inputs)
    for rec, out in items:
        if out is not None and rec.prim.vjp is not None:
            _spread_active(rec, out, active)
    items.reverse()
    return items, active, leaves


def _reach(roots, trace, seen, max_size, leaf):
    """The records of `trace` that `roots` and the trace's guards depend on, in recording
    order (a record's `seq`): [(record, its result Node, or the tuple of them for a primitive
    with several results; None for a guard)] -- what `eager_plan` and `rehome_backward` run
    over. A value read that is not recorded at `trace` (a leaf, a constant, a value of another
    trace) goes to `leaf(n)`, which returns False to refuse. `seen`: values not to descend
    into (the inputs; filled as the walk goes). None where a value is abstract or has
    `max_size` elements or more, a rule needs residuals (a custom_vjp's forward), or `leaf`
    refused."""
    recs = {}  # seq -> (record, its result Node, or the tuple of them; None for a guard)
    stack = list(roots)
    for gd in trace.guards:
        recs[gd.seq] = (gd, None)
        stack.extend(gd.inputs)
    while stack:
        n = stack.pop()
        if type(n) is Lit or n in seen:
            continue
        seen.add(n)
        if n.val is None or prod(n.type.shape) >= max_size:
            return None
        rec = n.rec
        if rec is None or n.trace is not trace:
            if not leaf(n):
                return None
            continue
        if rec.prim.residual_vjp is not None:
            return None
        if type(rec) is MultiRec:
            if rec.seq in recs:
                continue
            outs = tuple(w() for w in rec.outs)  # every result: `out` of its rule
            for m, t in zip(outs, rec.types):
                if m is None or m.val is None or prod(t.shape) >= max_size:
                    return None
            recs[rec.seq] = (rec, outs)
        else:
            recs[rec.seq] = (rec, n)
        stack.extend(rec.inputs)
    return list(map(recs.__getitem__, sorted(recs)))  # (no comprehension frame)


def eager_run(plan, roots, inputs, out_cts):
    """The cotangents of `inputs` given one array per root: `plan`'s (`eager_plan`) vjp rules
    run on the values its records hold now (zeros for an input no derivative reaches)."""
    items, active, _ = plan
    cts = {}
    for n, c in zip(roots, out_cts):
        if n in active:
            prev_c = cts.get(n)  # (_accumulate inlined, as below)
            cts[n] = c if prev_c is None else ops.add(prev_c, c)
    st = STATE
    prev = st.loc
    try:
        for rec, out in items:
            if out is None:
                continue
            if type(out) is tuple:  # one cotangent per result, None for one nothing used
                if not any(m in cts for m in out):
                    continue
                ct = tuple(cts.pop(m, None) for m in out)
                outval = tuple(m.val for m in out)
            else:
                ct = cts.pop(out, None)
                if ct is None:
                    continue
                outval = out.val
            ins = rec.inputs
            st.loc = rec.loc
            p = rec.params
            vjp = rec.prim.vjp
            if len(ins) == 1:  # (the common arities without a list comprehension's frame)
                x = ins[0]
                in_cts = vjp(ct, x.value if type(x) is Lit else x.val, out=outval, **p) if p \
                    else vjp(ct, x.value if type(x) is Lit else x.val, out=outval)
            elif len(ins) == 2:
                x, y = ins
                in_cts = vjp(ct, x.value if type(x) is Lit else x.val,
                             y.value if type(y) is Lit else y.val, out=outval, **p) if p \
                    else vjp(ct, x.value if type(x) is Lit else x.val,
                             y.value if type(y) is Lit else y.val, out=outval)
            else:
                vals = [x.value if type(x) is Lit else x.val for x in ins]
                in_cts = vjp(ct, *vals, out=outval, **p) if p else vjp(ct, *vals, out=outval)
            for x, c in zip(ins, in_cts):
                if c is None or type(x) is Lit or x not in active:
                    continue
                if isinstance(c, NoDerivative):
                    c.fail()
                prev_c = cts.get(x)  # (_accumulate inlined)
                cts[x] = c if prev_c is None else ops.add(prev_c, c)
    finally:
        st.loc = prev
    res = []
    for n in inputs:
        c = cts.get(n)
        res.append(ops.zeros(n.type.shape, n.type.dtype) if c is None else c)
    return res


def rehome_backward(root, trace, inputs, outer, dest, max_size, seed):
    """grad inside an enclosing trace (`dest`: jit's, another grad's) without a Graph: the
    records of `trace` that `root` and the trace's guards depend on move to `dest` as they
    are (no replay: the same equations, sequence numbers and values), each read of an input
    (a Node of `inputs`) becomes a read of its value at `dest` (`outer`, a Node of `dest`) and
    a constant leaf of `trace` its array; then the adjoint is recorded at `dest` by each
    equation's vjp rule in reverse order (as `backward_pass` over `replay_with_values` would:
    the same equations in the same order). Cotangents are keyed by `trace`'s own values, so
    two inputs bound to one value (`f(p, p)`) or an input whose value the function also reads
    directly keep apart. `seed()` makes root's cotangent. Returns [root's value at dest,
    cotangent of each input], or None (nothing changed) where a value is abstract or has
    `max_size` elements or more, an outer value is not a Node of `dest`, a rule needs
    residuals (a custom_vjp's forward), a value read is live on the eager tape, or an
    equation reads only constants (a replay computes that one at once, unrecorded)."""
    from .core import atype_of
    from . import core as _core
    sub = {}
    for m, o in zip(inputs, outer):
        if type(o) is not Node or o.trace is not dest or o.val is None or m.val is None or \
                prod(m.type.shape) >= max_size:
            return None
        sub[m] = o
    leaves = set(inputs)

    def leaf(n):  # a value of another trace (read as it is) or a constant leaf of this one
        if n.trace is not trace:
            return not (n.trace is EAGER and n.requires_grad)
        if n.requires_grad:
            return False
        # a constant leaf of the trace: its array, as a replay binds it
        sub[n] = _core.TAPE_NODE(n.val, atype_of(n.val), None, EAGER)
        return True

    items = _reach([root], trace, leaves.copy(), max_size, leaf)
    if items is None:
        return None
    for rec, _ in items:  # each equation reads a value recorded at dest after the move
        ins = rec.inputs
        if not ins:
            continue
        for x in ins:
            if type(x) is not Lit:
                t = x.trace
                if x in leaves or (x.rec is not None if t is trace else t is not EAGER):
                    break
        else:
            return None
    # the move (results to dest, guards kept by dest), and the values a derivative of the
    # inputs flows through
    active = leaves
    dn = dest.nodes
    for rec, out in items:
        if out is None:
            dest.guards.append(rec)
            continue
        if type(out) is tuple:
            for m in out:
                m.trace = dest
            if dn is not None:
                dn.extend(out)
        else:
            out.trace = dest
            if dn is not None:
                dn.append(out)
        if rec.prim.vjp is not None:
            _spread_active(rec, out, active)
    cts = {}
    st = STATE
    prev = st.loc
    if root.rec is not None:  # the seed is located at the root's line (no walk of the stack)
        st.loc = root.rec.loc
    try:
        ct0 = seed()
    finally:
        st.loc = prev
    if root in active:
        cts[root] = ct0
    try:
        for rec, out in reversed(items):
            if out is None:
                continue
            if type(out) is tuple:
                if not any(m in cts for m in out):
                    continue
                ct = tuple(cts.pop(m, None) for m in out)
            else:
                ct = cts.pop(out, None)
                if ct is None:
                    continue
            ins = rec.inputs
            vals = []
            for x in ins:
                vals.append(x.value if type(x) is Lit else sub.get(x, x))
            st.loc = rec.loc
            p = rec.params
            in_cts = rec.prim.vjp(ct, *vals, out=out, **p) if p else \
                rec.prim.vjp(ct, *vals, out=out)
            for x, c in zip(ins, in_cts):
                if c is None or type(x) is Lit or x not in active:
                    continue
                if isinstance(c, NoDerivative):
                    c.fail()
                prev_c = cts.get(x)
                cts[x] = c if prev_c is None else ops.add(prev_c, c)
    finally:
        st.loc = prev
        for rec, _ in items:  # reads of the inputs and constant leaves: their values at dest
            ins = rec.inputs
            for x in ins:
                if type(x) is not Lit and x in sub:
                    rec.inputs = [y if type(y) is Lit else sub.get(y, y) for y in ins]
                    break
    res = [sub.get(root, root)]
    for m in inputs:
        c = cts.get(m)
        res.append(ops.zeros(m.type.shape, m.type.dtype) if c is None else c)
    return res


def replay_with_values(g: Graph, ins, cs, values):
    """g's equations recorded again at the level of `ins` / `cs` (Nodes of an enclosing trace,
    or arrays) without computing them: each result takes the value `values` (Var -> array,
    from `extract(values=...)`) holds from when g was traced, the same bits `bind` would
    compute. Returns the Var -> value environment (for `backward_pass`)."""
    with recording_only():
        env, _ = _replay(g, ins, cs)
    for e in g.eqns:
        for v in e.outvars:
            n = env[v]
            if isinstance(n, Node) and n.val is None:
                n.val = values[v]
    return env


def adjoint_graph(g: Graph, wrt, seed=None) -> Graph:
    """The adjoint half of `vjp_graph(g, wrt)`: (g's invars..., the results of g's equations in
    order..., one ct per output) -> (d/d invars[wrt]...). It reads the forward's values as
    inputs instead of computing them, for a caller that has them (grad inside jit: the values
    computed while tracing). g's constvars stay its leading constvars (same binding). `seed`: a
    number every ct is filled with (grad's 1.0), recorded as a `full` the passes can read
    (`x * 1.0` is x: no product by a broadcast seed), the ct inputs then unread."""
    with new_trace("vjp") as tr, recording_only():  # (no values: `full` included)
        env = {v: _abstract(v, tr) for v in g.invars}
        cs = [_abstract(v, tr) for v in g.constvars]
        env.update(zip(g.constvars, cs))
        fwd = [v for e in g.eqns for v in e.outvars]
        env.update((v, _abstract(v, tr)) for v in fwd)
        ct_nodes = [_abstract(v, tr) for v in g.outvars]
        wrt_vars = [g.invars[i] for i in wrt]
        seeds = ct_nodes if seed is None else \
            [ops.full(v.type.shape, seed, v.type.dtype) for v in g.outvars]
        cts = backward_pass(g, env, list(zip(g.outvars, seeds)), wrt_vars)
        grads = []
        for v in wrt_vars:
            c = cts.get(v)
            grads.append(_own(ops.zeros(v.type.shape, v.type.dtype) if c is None else c, tr, v))
        res = extract(grads, tr, inputs=[env[v] for v in g.invars] + [env[v] for v in fwd] +
                      ct_nodes, const_inputs=cs, name=f"{g.name}_adjoint")
    res.consts = list(g.consts) + res.consts[len(g.consts):]
    return res


def vjp_graph(g: Graph, wrt=None, extra=(), name=None) -> Graph:
    """(invars..., cts for each output) -> (outputs..., d/d invars[wrt]..., d/d extra...).

    The forward equations come first, so one graph computes the value and every gradient.
    `g`'s constvars stay constvars of the result, in the same order (same binding)."""
    wrt = list(range(len(g.invars))) if wrt is None else list(wrt)
    with new_trace("vjp") as tr, recording_only():  # (no values: `full` included)
        ins = [_abstract(v, tr) for v in g.invars]
        cs = [_abstract(v, tr) for v in g.constvars]
        wrt_vars = [g.invars[i] for i in wrt]
        env, saved = _replay(g, ins, cs, _active_vars(g, wrt_vars))
        ct_nodes = [_abstract(v, tr) for v in g.outvars]
        outs = [env[v] if not isinstance(v, Lit) else v.value for v in g.outvars]
        cts = backward_pass(g, env, list(zip(g.outvars, ct_nodes)), wrt_vars, extra, saved)
        grads = []
        for v in wrt_vars + list(extra):
            c = cts.get(v)
            if c is None:
                c = ops.zeros(v.type.shape, v.type.dtype)
            grads.append(_own(c, tr, v))
        outs = [_own(x, tr, v) for x, v in zip(outs, g.outvars)]
        res = extract(outs + grads, tr, inputs=ins + ct_nodes, const_inputs=cs,
                      name=name or f"{g.name}_vjp")
    res.consts = list(g.consts) + res.consts[len(g.consts):]
    return res


def jvp_graph(g: Graph, name=None) -> Graph:
    """(invars..., tangents of invars...) -> (outputs..., tangents of outputs...)."""
    with new_trace("jvp") as tr, recording_only():
        ins = [_abstract(v, tr) for v in g.invars]
        tans = [_abstract(v, tr) for v in g.invars]
        cs = [_abstract(v, tr) for v in g.constvars]
        env = dict(zip(g.invars, ins))
        env.update(zip(g.constvars, cs))
        tenv = {v: t for v, t in zip(g.invars, tans) if _differentiable(v)}
        from .core import bind
        for e in g.eqns:
            args = [x.value if type(x) is Lit else env[x] for x in e.inputs]
            prev, STATE.loc = STATE.loc, e.loc
            try:
                out = bind(e.prim, *args, **e.params)
            finally:
                STATE.loc = prev
            if not e.outvars:
                continue
            bind_outputs(env, e, out)
            ts = [None if type(x) is Lit else tenv.get(x) for x in e.inputs]
            if any(t is not None for t in ts) and e.prim.jvp is not None and \
                    any(_differentiable(v) for v in e.outvars):
                prev, STATE.loc = STATE.loc, e.loc
                try:
                    t = e.prim.jvp(ts, *args, out=out, **e.params)
                finally:
                    STATE.loc = prev
                if len(e.outvars) == 1:
                    t = (t,)
                for v, tv in zip(e.outvars, t if t is not None else ()):
                    if tv is not None and _differentiable(v):
                        tenv[v] = tv
        outs, touts = [], []
        for v in g.outvars:
            outs.append(_own(env[v], tr, v))
            t = tenv.get(v)
            touts.append(_own(ops.zeros(v.type.shape, v.type.dtype) if t is None else t, tr, v))
        res = extract(outs + touts, tr, inputs=ins + tans, const_inputs=cs,
                      name=name or f"{g.name}_jvp")
    res.consts = list(g.consts) + res.consts[len(g.consts):]
    return res


def _own(x, tr, v):
    """A graph output must be a Node: inputs and recorded values are; a NumPy constant becomes a
    captured constant, a Python scalar an equation `full`."""
    if isinstance(x, Node):
        return x
    if hasattr(x, "shape"):
        from .core import const_node
        return const_node(x)
    return ops.full(v.type.shape, x, v.type.dtype)
