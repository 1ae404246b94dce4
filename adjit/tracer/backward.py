"""The eager tape's backward engine: `run_backward`, the saved-tensor checks and the cache of
backward graphs (grad_fn objects and what they save: adjit/tracer/grad_fn.py).

`backward()` does not walk closures: it builds, from the recorded equations reachable from the
root, one graph of their derivative rules (`_build`, cached by the recorded structure so a
training loop builds it once) whose runtime inputs are the recorded values those rules read
(the saved tensors: the buffers as they are at backward time, never a replay of the forward
from the leaves), the literal slots promoted to scalars, and the seed (see "The value model" in
docs/architecture.md).

Per step, a training loop pays one walk over the recorded nodes (`_scan`: the structure key, the
leaves and consts, the saved-value checks), one comparison of that key with the previous step's,
one call of the cached graph's native code, and an in-place add into each `.grad`.
"""
from __future__ import annotations

import collections

import numpy as np

from .._fp import FP_QUIET, FP_STATE
from .._frames import user_stacklevel
from ..ir import literals, ops
from ..ir.autodiff import _own
from ..ir import core as _core
from ..ir.core import (EAGER, REGISTRY, STATE, Lit, MultiRec, Node, Primitive, bind, new_trace,
                       output_index)
from ..ir.graph import Graph, Var, extract
from ..ir.types import AType, DTYPES, FLOATS, float_bits
from .grad_fn import _SUCCESSOR, HOOKS, POST_HOOKS
from .tape import TapeNode


# ------------------------------------------------------------------------------- backward
_SECOND_BACKWARD = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed when "
    "you call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward "
    "through the graph a second time or if you need to access saved tensors after calling "
    "backward.")
_TENSOR_TYPE = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
                "bool": "Bool"}


def _walk(root):
    """One pass over the recorded graph under `root`: its recorded nodes in recording order,
    the leaves requiring grad, the other unrecorded inputs (consts), retained nodes."""
    nodes, leaves, consts, retained = [], [], [], []
    seen = set()
    stack = [root]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.rec is None or n.trace is not EAGER:
            (leaves if n.requires_grad and n.rec is None else consts).append(n)
            continue
        nodes.append(n)
        if n.retains_grad and n is not root:
            retained.append(n)
        for i in n.rec.inputs:
            if type(i) is TapeNode and id(i) not in seen:
                stack.append(i)
    nodes.sort(key=_seq)
    return nodes, leaves, consts, retained


def _seq(n):
    return n.rec.seq


def _check(nodes):
    """Raise PyTorch's error for the first saved tensor modified in place, in the order
    PyTorch's engine reaches the nodes: the latest recorded first (its ready queue takes the
    highest sequence number; every consumer of a node was recorded after it), so a tensor saved
    by several ops is reported as the op that runs first in backward sees it."""
    for n in reversed(nodes):
        fn = n.grad_fn
        if fn is None or not fn._saved:
            continue
        if fn._freed:
            raise RuntimeError(_SECOND_BACKWARD)
        for i, v in fn._saved:
            m = n if i == -1 else fn._inputs[i] if i >= 0 else fn._extra[-2 - i]
            if type(m) is TapeNode and m.version[0] != v:
                raise RuntimeError(_modified_message(m, v, result=i == -1))


def _modified_message(m, v, result):
    kind = m.val.dtype.name  # (PyTorch names a bool tensor by its legacy type)
    what = "[CPUBoolType" if kind == "bool" else f"[torch.{_TENSOR_TYPE[kind]}Tensor"
    what += f" {list(m.type.shape)}]"
    # a saved input is named by the op that last wrote it; a saved result by its own op
    while not result and m in _SUCCESSOR and _SUCCESSOR[m]() is not None:
        m = _SUCCESSOR[m]()
    if m.rec is not None and m.grad_fn is not None:
        name = type(m.grad_fn).__name__
        op = name[:name.index("Backward")] if "Backward" in name else name
        what += f", which is output 0 of {op},"
    return ("one of the variables needed for gradient computation has been modified by an "
            f"inplace operation: {what} is at version {m.version[0]}; expected version {v} instead. "
            "Hint: enable anomaly detection to find the operation that failed to compute its "
            "gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False).")


def _lit_key(x):
    if type(x) is TapeNode:
        return None
    v = x.value  # -0.0 and nan by their bits, 1 and 1.0 and True apart
    return float_bits(v) if type(v) is float else (v, type(v))


_RETAINED = object()  # marks a retained node in a structure key
_STALE = object()     # marks a recorded node whose storage was written since it was recorded


def _scan(root, want_popped=False):
    """The one pass `backward()` makes over the recorded graph under `root`.

    Returns (key, leaves, consts, retained, saved, ok, order, direct, popped). `key` identifies the
    backward graph up to the values it reads: the type of each leaf and const, and for each
    equation its signature (Rec.sig: primitive, parameters, operand types, literals) followed
    by the slots of its recorded operands (and a mark when its storage was written since it was
    recorded). It lists them in the order of a depth-first walk from the root, which that
    structure itself determines (a node gets its slot when first reached, and the signature
    says how many slots follow), so equal keys mean the same graph. `order`: every node by
    slot; `popped` (with want_popped, else None): the recorded nodes in the order their
    signatures appear in the key.
    `direct`: the graph holds a custom Function (its backward runs on `run_direct`).
    `saved`: the grad_fns that save values; `ok`: none of them was freed or has a saved value
    modified since (else `_check` raises PyTorch's error, for the first such node in recording
    order).
    """
    slot = {root: 0}  # Nodes hash by identity; the dict's order is the slot order
    stack = [root]
    parts = []
    leaves, consts, retained, saved = [], [], [], []
    popped = [] if want_popped else None
    push, add, get = stack.append, parts.append, slot.get
    ok = True
    direct = False
    while stack:
        n = stack.pop()
        r = n.rec
        if r is None or n.trace is not EAGER:
            t = n.type
            if n.requires_grad and r is None:
                leaves.append(n)
                add((True, t.shape, t.dtype))
            else:
                consts.append(n)
                add((False, t.shape, t.dtype))
            continue
        if want_popped:
            popped.append(n)
        fn = n.grad_fn
        if fn is not None and fn._saved:
            saved.append(fn)
            if ok:
                if fn._freed:
                    ok = False
                else:
                    ins = fn._inputs
                    for i, v in fn._saved:
                        m = n if i == -1 else ins[i] if i >= 0 else fn._extra[-2 - i]
                        if type(m) is TapeNode and m.version[0] != v:
                            ok = False
        sig = r.sig  # literals are part of it
        if sig is None:  # (and for every result of a multi-result equation: its position)
            if r.prim in CALLBACK_PRIMS:
                direct = True
            p = r.params
            sig = (r.prim, n.type.shape, n.type.dtype, tuple(p.items()) if p else None,
                   tuple(_lit_key(i) for i in r.inputs), output_index(n))
        add(sig)
        for i in r.inputs:
            if type(i) is TapeNode:
                k = get(i)
                if k is None:
                    k = slot[i] = len(slot)
                    push(i)
                add(k)
        if n.version[0] != n.recorded_version:
            add(_STALE)
        if n.retains_grad and n is not root:
            retained.append(n)
            add(_RETAINED)
    return tuple(parts), leaves, consts, retained, saved, ok, list(slot), direct, popped


class _Plan:
    """A backward graph and what to feed it: the recorded values of the nodes at slots `feed`
    (as they are in memory now), the literals at `lits` ((popped index, operand position,
    dtype): slots promoted to runtime scalars), then the output's cotangent."""
    __slots__ = ("graph", "feed", "lits")

    def __init__(self, graph, feed, lits):
        self.graph, self.feed, self.lits = graph, feed, lits


_VJP_CACHE = collections.OrderedDict()
_VJP_CACHE_SIZE = 256  # graphs whose structure changes every step must not grow it forever
# structure with promotable literals abstracted -> [first literal values (by bits), promoted
# literal indices, {promoted indices: plan}]: a literal is specialised on its first value and
# becomes a runtime scalar once its slot sees a second one
_GENERIC = collections.OrderedDict()
# the last (key, plan), one tuple (threads may run backward concurrently): a training loop
# asks for the same graph every step, and an equal key costs one comparison, no hashing
_LAST = (None, None)
_ANY = object()  # a promotable literal's value in a generic key
_PROMOTABLE = {}  # Rec.sig -> (generic sig, operand positions of promotable literals)


def _generic_sig(sig, n):
    hit = _PROMOTABLE.get(sig)
    if hit is not None:
        return hit
    r = n.rec
    shape = n.type.shape
    elementwise = all(i.type.shape == shape for i in r.inputs if type(i) is TapeNode)
    out, pos, k = list(sig[:2]), [], 2
    for j, i in enumerate(r.inputs):
        a, b = sig[k], sig[k + 1]
        k += 2
        if a is None and type(i) is Lit and literals.promotable(r.prim, j, i, elementwise):
            out += [None, (b[0], b[1], _ANY)]
            pos.append(j)
        else:
            out += [a, b]
    out += sig[k:]
    hit = _PROMOTABLE[sig] = (tuple(out), pos)
    if len(_PROMOTABLE) > 8192:
        _PROMOTABLE.clear()
    return hit


def _generic(key, popped):
    """(key with promotable literal values abstracted, their values' bits, their places)."""
    parts, bits, where = [], [], []
    m = 0
    for p in key:
        if type(p) is tuple and p and type(p[0]) is Primitive:
            n = popped[m]
            g, pos = _generic_sig(p, n)
            for j in pos:
                lit = n.rec.inputs[j]
                bits.append(literals.bits(lit.value))
                where.append((m, j, DTYPES[lit.dtype]))
            m += 1
            p = g
        parts.append(p)
    return tuple(parts), bits, where


def _plan_for(root, key, leaves, retained, order):
    global _LAST
    last = _LAST
    if key == last[0]:
        return last[1]
    try:
        hit = _VJP_CACHE.get(key)
    except TypeError:  # an unhashable parameter value: its text stands for it
        key = repr(key)
        hit = _VJP_CACHE.get(key)
    if hit is not None:
        _VJP_CACHE.move_to_end(key)
    else:
        lits = []
        popped = _scan(root, True)[-1]
        if type(key) is tuple:
            gkey, bits, where = _generic(key, popped)
            entry = _GENERIC.get(gkey)
            if entry is None:
                entry = _GENERIC[gkey] = [bits, frozenset(), {}]
                if len(_GENERIC) > _VJP_CACHE_SIZE:
                    _GENERIC.popitem(last=False)
            else:
                _GENERIC.move_to_end(gkey)
                first, promoted = entry[0], entry[1]
                changed = {i for i, b in enumerate(bits) if b != first[i]}
                if not changed <= promoted:
                    entry[1] = promoted = promoted | changed
                lits = [where[i] for i in sorted(promoted)]
            hit = entry[2].get(entry[1])
            if hit is None:
                hit = entry[2][entry[1]] = _build(root, leaves, retained, order, popped, lits)
        else:
            hit = _build(root, leaves, retained, order, popped, lits)
        _VJP_CACHE[key] = hit
        if len(_VJP_CACHE) > _VJP_CACHE_SIZE:
            _VJP_CACHE.popitem(last=False)
    if type(key) is tuple:
        _LAST = (key, hit)
    return hit


def _build(root, leaves, retained, order, popped, lits):
    """The backward graph of the recorded graph under `root`, reading recorded values.

    Every node whose storage is unchanged since it was recorded is an input (what the
    derivative rules read of it is its recorded buffer, at backward time); a node whose storage
    was written since (a write the version counter saw) is recomputed from its operands. The
    literal slots `lits` are scalar inputs. Inputs no rule reads are dropped."""
    recs = sorted(popped, key=_seq)
    prev = STATE.loc
    with new_trace("vjp") as tr:
        val, inputs = {}, []
        for k, n in enumerate(order):
            if n.rec is None or n.trace is not EAGER or n.version[0] == n.recorded_version:
                a = val[n] = Node(None, n.type, None, tr)
                inputs.append((k, a))
        scalars, lit_nodes = {}, []
        for m, j, dt in lits:
            a = Node(None, AType((), dt), None, tr)
            scalars[(popped[m], j)] = a
            lit_nodes.append(a)
        bcast = {}

        def operands(n):
            res = []
            for j, i in enumerate(n.rec.inputs):
                if type(i) is TapeNode:
                    res.append(val[i])
                    continue
                a = scalars.get((n, j))
                if a is None:
                    res.append(i.value)
                else:
                    b = bcast.get((n, j))
                    if b is None:
                        b = bcast[(n, j)] = ops.broadcast_to(a, n.type.shape)
                    res.append(b)
            return res
        try:
            for n in recs:
                if n not in val:  # stale: recompute from its operands
                    STATE.loc = n.rec.loc
                    out = bind(n.rec.prim, *operands(n), **n.rec.params)
                    if type(n.rec) is MultiRec:  # every result of the equation at once
                        for o, ov in zip(_outputs(n), out):
                            if o is not None and o not in val:
                                val[o] = ov
                    else:
                        val[n] = out
            active = set(leaves)
            for n in recs:
                if n.rec.prim.vjp is not None and n.type.dtype in FLOATS and any(
                        type(i) is TapeNode and i in active for i in n.rec.inputs):
                    active.add(n)
            ct = Node(None, root.type, None, tr)
            cts = {root: ct} if root in active else {}
            keep = set(retained)
            done = set()
            for n in reversed(recs):
                r = n.rec
                if type(r) is MultiRec:  # one rule call per equation, a cotangent per result
                    if id(r) in done:
                        continue
                    done.add(id(r))
                    outs = _outputs(n)
                    c = tuple(None if o is None else cts.get(o) if o in keep else
                              cts.pop(o, None) for o in outs)
                    if all(ci is None for ci in c):
                        continue
                    STATE.loc = r.loc
                    if any(o is None or o not in val for o in outs):
                        outval = tuple(bind(r.prim, *operands(n), **r.params))
                    else:
                        outval = tuple(val[o] for o in outs)
                    in_cts = r.prim.vjp(c, *operands(n), out=outval, **r.params)
                else:
                    c = cts.get(n) if n in keep else cts.pop(n, None)
                    if c is None:
                        continue
                    STATE.loc = r.loc
                    in_cts = r.prim.vjp(c, *operands(n), out=val[n], **r.params)
                for i, ci in zip(r.inputs, in_cts):
                    if ci is None or type(i) is not TapeNode or i not in active:
                        continue
                    cts[i] = ci if i not in cts else ops.add(cts[i], ci)
            grads = []
            for n in leaves + retained:
                c = cts.get(n)
                grads.append(_own(ops.zeros(n.type.shape, n.type.dtype) if c is None else c,
                                  tr, n))
        finally:
            STATE.loc = prev
        g = extract(grads, tr, inputs=[a for _, a in inputs] + lit_nodes + [ct],
                    name="backward")
    used = {x for e in g.eqns for x in e.inputs if type(x) is Var}
    used.update(g.outvars)
    feed = [k for (k, _), v in zip(inputs, g.invars) if v in used]
    ni = len(inputs)
    keep_lits = [lit for lit, v in zip(lits, g.invars[ni:]) if v in used]
    invars = ([v for v in g.invars[:ni] if v in used] +
              [v for v in g.invars[ni:-1] if v in used] + [g.invars[-1]])
    consts = [c.val if isinstance(c, Node) else c for c in g.consts]
    vg = Graph(invars, g.constvars, g.eqns, g.outvars, consts, "backward")
    return _Plan(vg, feed, keep_lits)


# adjit.runtime.run_graph and its Interpreted tier class (imported when first needed: the
# runtime imports codegen)
_RUN_GRAPH = [None, None]


def accumulate(n, gval):
    v = n.val
    if type(gval) is not np.ndarray or gval.dtype != v.dtype:
        gval = np.asarray(gval, dtype=v.dtype)
    if gval.shape != v.shape:
        gval = np.broadcast_to(gval, v.shape)
    g = n.grad
    if g is None:
        from .tensor import Tensor
        n.grad = Tensor._from_array(np.array(gval, copy=True))
    else:
        gn = g._n
        np.add(gn.val, gval, out=gn.val, casting="unsafe")
        gn.version[0] += 1


def run_backward(root: Node, ct: np.ndarray, retain_graph=False, inputs=None):
    """`root.backward(ct)`: the compiled backward graph of the recorded graph (cached by its
    structure); a graph with custom Functions or hooks on non-leaf tensors runs on
    `run_direct`. Hooks on leaves (and post-accumulate hooks) run here, on the compiled graph's
    leaf gradients, before (after) they are accumulated: a leaf's gradient is complete when the
    compiled graph returns, and nothing downstream reads it."""
    key, leaves, consts, retained, saved, ok, order, direct, _ = _scan(root)
    if not ok:
        _check(_walk(root)[0])
    # (the weak dictionaries' own dicts: their truth costs no Python-level __len__)
    if direct or STATE.anomaly or (HOOKS.data and any(n.rec is not None and n in HOOKS
                                                      for n in order)):
        run_direct([root], [ct], retain_graph=retain_graph, inputs=inputs)
        return
    hooks = bool(HOOKS.data or POST_HOOKS.data)
    plan = _plan_for(root, key, leaves, retained, order)
    run_graph = _RUN_GRAPH[0]
    if run_graph is None:
        from ..runtime import Interpreted, run_graph
        _RUN_GRAPH[0], _RUN_GRAPH[1] = run_graph, Interpreted
    args = []
    for k in plan.feed:  # (a loop: a comprehension is a call of its own)
        args.append(order[k].val)
    if plan.lits:  # promoted literal slots: this step's values
        popped = _scan(root, True)[-1]
        for m, j, dt in plan.lits:
            args.append(np.asarray(popped[m].rec.inputs[j].value, dt))
    args.append(ct)
    native = plan.graph.native
    if native is not None and type(native) is not _RUN_GRAPH[1]:
        outs = run_graph(plan.graph, args)  # linked native code: no NumPy arithmetic to quiet
    else:  # the interpreter tier, or a first run (optimize() may fold constants in NumPy)
        token = FP_STATE.set(FP_QUIET)  # nan/inf silently, as PyTorch (see adjit/_fp.py)
        try:
            outs = run_graph(plan.graph, args)
        finally:
            FP_STATE.reset(token)
    if root.retains_grad and root not in retained:  # y.retain_grad(); y.backward(): the seed
        accumulate(root, ct)
    k = 0
    for n in (leaves + retained if retained else leaves):
        gval = outs[k]
        k += 1
        if inputs is not None and id(n) not in inputs and (
                n.rec is None or not _reaches(n, inputs)):
            # with inputs=, PyTorch runs only the part of the graph that leads to them: a
            # retained node on that part still gets its gradient, the others do not
            continue
        if hooks and n in HOOKS:
            gval = _run_hooks(n, gval, False)
        g = n.grad
        v = n.val
        if g is not None and type(gval) is np.ndarray and gval.dtype is v.dtype and \
                gval.shape == v.shape:
            # the common case: add into the existing .grad in place
            gn = g._n
            np.add(gn.val, gval, out=gn.val, casting="unsafe")
            gn.version[0] += 1
        else:
            accumulate(n, gval)
        if hooks and n.rec is None and n in POST_HOOKS:
            _run_post_hooks(n)
    if not retain_graph:
        for fn in saved:
            fn._freed = True


def _reaches(n, inputs):
    """Whether one of the nodes `inputs` (a set of ids) is reachable backwards from `n`."""
    stack, seen = [n], {id(n)}
    while stack:
        m = stack.pop()
        if m.rec is None or m.trace is not EAGER:
            continue
        for i in m.rec.inputs:
            if type(i) is TapeNode and id(i) not in seen:
                if id(i) in inputs:
                    return True
                seen.add(id(i))
                stack.append(i)
    return False




# ------------------------------------------------------------------------------- direct engine
# Primitives whose derivative rule calls back into Python with concrete values (adjit.autograd's
# custom Functions): a graph holding one runs on the direct engine.
CALLBACK_PRIMS = set()

# what the eager tape names the derivative rules' own equations under create_graph=True (the
# grad_fn of a gradient that is itself differentiable), where a primitive does not say it
_CG_NAMES = {
    "add": "AddBackward0", "sub": "SubBackward0", "mul": "MulBackward0", "div": "DivBackward0",
    "pow": "PowBackward0", "neg": "NegBackward0", "select": "WhereBackward0",
    "broadcast_in_dim": "ExpandBackward0", "reshape": "ViewBackward0",
    "transpose": "PermuteBackward0", "reduce_sum": "SumBackward1", "reduce_max": "MaxBackward1",
    "reduce_min": "MinBackward1", "dot_general": "MmBackward0", "cumsum": "CumsumBackward0",
    "slice": "SliceBackward0", "pad": "ConstantPadNdBackward0", "concatenate": "CatBackward0",
    "gather": "IndexSelectBackward0", "scatter_add": "IndexAddBackward0",
    "convert_element_type": "ToCopyBackward0", "maximum": "MaximumBackward0",
    "minimum": "MinimumBackward0", "abs": "AbsBackward0", "full": None,
}


def _outputs(n):
    """The result Nodes of n's equation (None for a result no one holds any more)."""
    r = n.rec
    if type(r) is MultiRec:
        return tuple(w() for w in r.outs)
    return (n,)


def run_direct(roots, seeds, *, create_graph=False, retain_graph=False, targets=None,
               accumulate_leaves=True, inputs=None):
    """Backward by evaluating the derivative rules one recorded equation at a time, on concrete
    values: NumPy arrays, or with `create_graph` the tape's own Nodes, so every rule's equations
    are recorded on the tape (with grad_fns) and the gradients can be differentiated again.
    Runs the hooks on the tensors they were registered on, and custom Functions' backward.

    `roots`/`seeds`: the outputs and their cotangents (arrays, or Nodes under create_graph).
    `targets`: Nodes whose gradients are returned (autograd.grad), in order (None: not
    reached); `accumulate_leaves`: add into the leaves' (and retained nodes') .grad as
    backward() does; `inputs`: backward(inputs=...) (a set of node ids) limits accumulation."""
    from .grad_fn import HOOKS, POST_HOOKS
    # roots recorded by a transform (autograd.grad inside adjit.jit): the rules' equations are
    # recorded on that trace (their graph is compiled with the rest); the gradient flows from
    # the targets, and without create_graph it is cut from further differentiation
    level = roots[0].trace if roots else EAGER
    traced = level is not EAGER
    real_cg = create_graph
    if traced:
        create_graph = True
        if targets is None:
            raise RuntimeError("backward() of a traced tensor inside a transform is not "
                               "supported: use adjit.autograd.grad(outputs, inputs)")
    nodes, leaves, seen = [], [], set()
    stack = list(roots)
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.rec is None or n.trace is not level:
            if n.requires_grad and n.rec is None and not traced:
                leaves.append(n)
            continue
        nodes.append(n)
        for i in n.rec.inputs:
            if isinstance(i, Node) and id(i) not in seen:
                stack.append(i)
        if type(n.rec) is MultiRec:
            for o in _outputs(n):
                if o is not None and id(o) not in seen:
                    stack.append(o)
    nodes.sort(key=_seq)
    if not traced:  # a traced backward's nodes are plain IR Nodes: no versions, grad_fns
        _check(nodes)
    active = set(leaves)
    if traced:
        leaves = [t for t in targets if t.rec is None or t.trace is not level]
        active = set(targets)
    for n in nodes:
        r = n.rec
        if (r.prim.vjp is not None and n.type.dtype in FLOATS and any(
                isinstance(i, Node) and i in active for i in r.inputs)):
            active.add(n)
    start = _NEXT_SEQ()
    val = {}

    def value(n):
        v = val.get(n)
        if v is not None:
            return v
        if n.rec is None or n.trace is not level or traced or n.version[0] == n.recorded_version or \
                n.rec.prim in CALLBACK_PRIMS:
            v = n if create_graph else n.val
        else:  # written since it was recorded: recompute it from its operands
            prev, STATE.loc = STATE.loc, n.rec.loc
            try:
                out = bind(n.rec.prim, *operands(n), **n.rec.params)
            finally:
                STATE.loc = prev
            if type(n.rec) is MultiRec:
                for o, ov in zip(_outputs(n), out):
                    if o is not None:
                        val[o] = ov
                return val[n]
            v = out
        val[n] = v
        return v

    def operands(n):
        return [value(i) if isinstance(i, Node) else i.value for i in n.rec.inputs]

    def out_value(n):
        if type(n.rec) is not MultiRec:
            return value(n)
        outs = _outputs(n)
        if n.rec.prim in CALLBACK_PRIMS:
            return None
        if any(o is None for o in outs):  # a dropped result: recompute them all
            prev, STATE.loc = STATE.loc, n.rec.loc
            try:
                return tuple(bind(n.rec.prim, *operands(n), **n.rec.params))
            finally:
                STATE.loc = prev
        return tuple(value(o) for o in outs)

    want = {id(t): k for k, t in enumerate(targets)} if targets is not None else {}
    results = [None] * len(targets) if targets is not None else None
    cts = {}
    for r, s in zip(roots, seeds):
        if r in active or (r.requires_grad and not traced):
            cts[r] = s if r not in cts else ops.add(cts[r], s)

    def hooked(n, c):
        return _run_hooks(n, c, create_graph) if n in HOOKS else c

    check_nan = STATE.anomaly and STATE.anomaly_nan and not traced
    op = None  # anomaly mode: the PyTorch op (grad_fn) whose equations are being run
    prev_mode = STATE.grad_enabled
    STATE.grad_enabled = bool(create_graph)  # (always on for a traced backward)
    token = FP_STATE.set(FP_QUIET)
    try:
        done = set()
        for n in reversed(nodes):
            r = n.rec
            if id(r) in done:
                continue
            done.add(id(r))
            outs = _outputs(n)
            cs = []
            for o in outs:
                c = None if o is None else (cts.get(o) if id(o) in want else cts.pop(o, None))
                if c is not None:
                    c = hooked(o, c)
                    if not traced and o.retains_grad and accumulate_leaves and (inputs is None or id(o) in inputs):
                        _accumulate_any(o, c, create_graph)
                    if id(o) in want:
                        results[want[id(o)]] = c
                cs.append(c)
            if all(c is None for c in cs) or not any(o in active for o in outs):
                continue
            prev, STATE.loc = STATE.loc, r.loc
            try:
                if type(r) is MultiRec:
                    in_cts = r.prim.vjp(tuple(cs), *operands(n), out=out_value(n), **r.params)
                else:
                    in_cts = r.prim.vjp(cs[0], *operands(n), out=value(n), **r.params)
            finally:
                STATE.loc = prev
            if check_nan:
                op = getattr(n, "grad_fn", None) or op
                _check_nan(op, r, in_cts)
            for i, ci in zip(r.inputs, in_cts):
                if ci is None or not isinstance(i, Node) or i not in active:
                    continue
                cts[i] = ci if i not in cts else ops.add(cts[i], ci)
        for n in leaves:
            c = cts.get(n)
            if c is None:
                continue
            c = hooked(n, c)
            if id(n) in want:
                results[want[id(n)]] = c
            if accumulate_leaves and (inputs is None or id(n) in inputs):
                _accumulate_any(n, c, create_graph)
                if n in POST_HOOKS:
                    _run_post_hooks(n)
    finally:
        FP_STATE.reset(token)
        STATE.grad_enabled = prev_mode
    if traced and not real_cg and results:
        results = [None if r is None else ops.stop_gradient(r) for r in results]
    if create_graph and not traced:
        name_new(results or [], start)
    if not retain_graph and not traced:
        for n in nodes:
            fn = n.grad_fn
            if fn is not None and fn._saved:
                fn._freed = True
    return results


def _run_hooks(n, c, create_graph):
    """The tensor hooks registered on `n`, in order, on its fully summed gradient `c` (an
    array, or a Node under create_graph); a Tensor a hook returns replaces the gradient."""
    from .tensor import Tensor
    for fn in list(HOOKS.get(n, {}).values()):
        t = _as_tensor(c, create_graph)
        res = fn(t)
        if res is not None:
            if not isinstance(res, Tensor):
                raise TypeError(f"hook {getattr(fn, '__name__', fn)!r} returned "
                                f"{type(res).__name__}; expected a Tensor or None")
            if tuple(res.shape) != tuple(n.type.shape):
                raise RuntimeError(
                    f"hook {getattr(fn, '__name__', 'hook')!r} has changed the size of value")
            c = res._n if create_graph else res._n.val
    return c


def _run_post_hooks(n):
    """The post-accumulate-grad hooks of leaf `n`, called with its Tensor."""
    from .grad_fn import LEAF_TENSORS
    from .tensor import Tensor
    ref = LEAF_TENSORS.get(n)
    t = ref() if ref is not None else None
    t = t if t is not None else Tensor._wrap(n)
    for fn in list(POST_HOOKS.get(n, {}).values()):
        fn(t)


def _check_nan(fn, r, in_cts):
    """Anomaly detection: PyTorch's error (and the forward call's stack as a warning) when the
    derivative rule of the op `fn` (the grad_fn the equation `r` belongs to: the op's own
    equations run in a row, from its tagged result) produced NaN."""
    for k, (i, ci) in enumerate(zip(r.inputs, in_cts)):
        if ci is None or not isinstance(i, Node):
            continue
        v = ci.val if isinstance(ci, Node) else ci
        if np.asarray(v).dtype.kind in "fc" and np.isnan(v).any():
            import warnings
            from .grad_fn import FORWARD_STACK
            name = type(fn).__name__ if fn is not None else r.prim.name
            ins = getattr(fn, "_inputs", ())
            pos = k if k < len(ins) and ins[k] is i else next(
                (j for j, x in enumerate(ins) if x is i), k)
            stack = FORWARD_STACK.get(fn) if fn is not None else None
            if stack is None:
                stack = "No forward pass information available. Enable detect anomaly during " \
                    "forward pass for more information."
            else:
                stack = "Traceback of forward call that caused the error:\n" + stack
            warnings.warn(f"Error detected in {name}. {stack}", UserWarning,
                          stacklevel=user_stacklevel())
            raise RuntimeError(f"Function '{name}' returned nan values in its {pos}th output.")


def _as_tensor(c, create_graph):
    from .tensor import Tensor
    if isinstance(c, Node):
        return Tensor._wrap(c)
    return Tensor._from_array(c)


def _accumulate_any(n, c, create_graph):
    if not create_graph:
        accumulate(n, c if not isinstance(c, Node) else c.val)
        return
    from .grad_fn import tag
    from .tensor import Tensor
    if not isinstance(c, Node):
        c = TapeNode(np.asarray(c, n.val.dtype), n.type, None, EAGER)
    g = n.grad
    if g is None:
        # PyTorch keeps a copy of a differentiable gradient (CopyBackwards)
        if c.requires_grad:
            out = bind(_RESHAPE, c, shape=n.type.shape)
            if np.may_share_memory(out.val, c.val):
                out.val = out.val.copy()
            tag(out, "CopyBackwards", [c])
        else:
            out = TapeNode(np.array(c.val, copy=True), c.type, None, EAGER)
        n.grad = Tensor._wrap(out)
    else:
        n.grad = Tensor._wrap(tag(ops.add(g._n, c), "AddBackward0", [g._n, c]))


_RESHAPE = REGISTRY["reshape"]


def _NEXT_SEQ():
    return next(_core._seq)


def name_new(nodes, start):
    """Give the equations recorded since sequence number `start` (a create_graph backward's)
    their grad_fns, so the gradients show `grad_fn=<MulBackward0>` as PyTorch's do."""
    from .grad_fn import function_class
    stack = [n for n in nodes if type(n) is TapeNode]
    seen = set()
    while stack:
        n = stack.pop()
        if id(n) in seen or n.rec is None or n.trace is not EAGER or n.rec.seq < start:
            continue
        seen.add(id(n))
        if n.grad_fn is None:
            p = n.rec.prim
            name = p.grad_fn or _CG_NAMES.get(p.name) or \
                "".join(w.capitalize() for w in p.name.split("_")) + "Backward0"
            n.grad_fn = function_class(name)(tuple(i if type(i) is TapeNode else None
                                               for i in n.rec.inputs))
        for i in n.rec.inputs:
            if type(i) is TapeNode:
                stack.append(i)
