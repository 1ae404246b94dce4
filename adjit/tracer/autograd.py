"""The eager tape's backward: grad_fn objects, saved-tensor checks and `run_backward`.

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
import weakref
import warnings

import numpy as np

from .._fp import FP_QUIET, FP_STATE
from ..ir import literals, ops
from ..ir.autodiff import _own
from ..ir.core import EAGER, REGISTRY, STATE, Lit, Node, Primitive, bind, new_trace, output_index, MultiRec
from ..ir.graph import Graph, Var, extract
from ..ir.types import AType, DTYPES, FLOATS
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401


# ------------------------------------------------------------------------------- grad_fn
class Function:
    """A node of the backward graph as PyTorch shows it (`<MulBackward0 object at 0x…>`).

    `_saved` lists what PyTorch's node would save, for the version check and for "backward a
    second time": (input position, version at record time), position -1 being the result.
    """
    __slots__ = ("_inputs", "_saved", "_freed", "__weakref__")

    def __init__(self, inputs, saved=()):
        self._inputs = inputs  # Nodes (or None for an operand that is not a tensor)
        self._saved = saved
        self._freed = False

    def name(self):
        return type(self).__name__

    @property
    def next_functions(self):
        return tuple((function_of(n), 0) for n in self._inputs)

    def __repr__(self):
        return f"<{self.name()} object at {hex(id(self))}>"


class AccumulateGrad(Function):
    # a weak reference: the leaf node holds this object as its tag, and must not be kept alive
    # (in a reference cycle) by it
    __slots__ = ("_node_ref",)

    def __init__(self, node):
        super().__init__(())
        self._node_ref = weakref.ref(node)

    @property
    def variable_node(self):
        return self._node_ref()

    @property
    def variable(self):
        from .tensor import Tensor
        ref = LEAF_TENSORS.get(self.variable_node)
        t = ref() if ref is not None else None
        return t if t is not None else Tensor._wrap(self.variable_node)

    @property
    def next_functions(self):
        return ()


# leaf node -> weakref to the Tensor the user holds, so `acc.variable is x` as in PyTorch
LEAF_TENSORS = weakref.WeakKeyDictionary()


_FUNCTION_CLASSES: dict = {}


def function_class(name):
    cls = _FUNCTION_CLASSES.get(name)
    if cls is None:
        cls = _FUNCTION_CLASSES[name] = type(name, (Function,), {"__slots__": ()})
    return cls


def function_of(n):
    """The grad_fn (or AccumulateGrad for a leaf that requires grad) feeding from node `n`."""
    if n is None or type(n) is not Node:
        return None
    if n.rec is None:
        acc = n.tag  # made when an op first used the leaf: it outlives requires_grad_(False)
        if acc is None and n.rg:
            acc = n.tag = AccumulateGrad(n)
        return acc
    return n.tag if n.rg else None


# What PyTorch's backward nodes save (tools/autograd/derivatives.yaml), which decides when an
# in-place change breaks a backward and which graphs can be run twice (PyTorch's errors; the
# backward graph itself reads whatever recorded values adjit's rules need, see _build).
_SAVES_NOTHING = frozenset((
    "AddBackward0", "SubBackward0", "RsubBackward1", "NegBackward0", "SumBackward0",
    "SumBackward1", "MeanBackward0", "MeanBackward1", "ViewBackward0", "UnsafeViewBackward0",
    "SelectBackward0", "SliceBackward0", "UnsqueezeBackward0", "SqueezeBackward0",
    "SqueezeBackward1", "SqueezeBackward2", "SqueezeBackward4", "PermuteBackward0",
    "TransposeBackward0", "TBackward0", "ExpandBackward0", "AliasBackward0", "CloneBackward0",
    "CatBackward0", "StackBackward0", "ToCopyBackward0", "CumsumBackward0", "CopySlices",
    "UnbindBackward0", "IndexBackward0", "WhereBackward0", "MaxBackward0", "MinBackward0",
    "AsStridedBackward0", "ZeroBackward0"))
_RESULT_ONLY = frozenset((
    "ReluBackward0", "SoftmaxBackward0", "LogSoftmaxBackward0", "ReciprocalBackward0",
    "PowBackward2"))
_INPUTS_AND_RESULT = frozenset((
    "LinalgVectorNormBackward0", "MaxBackward1", "MinBackward1", "StdBackward0",
    "ProdBackward0", "ProdBackward1", "PowBackward1"))
# products save each operand only for the other operand's gradient
_CROSS = frozenset(("MulBackward0", "MmBackward0", "MvBackward0", "DotBackward0",
                    "BmmBackward0"))


def _ver(n):
    return n.ver[0] if type(n) is Node else 0


def _rg(n):
    return type(n) is Node and n.rg


_RECORD_SAVES = {"nothing": 0, "result": 1, "inputs": 4}


def _kind(name):
    # the grad_fns of primitive records (ExpBackward0, SignBackward0, ...) say it themselves
    for p in REGISTRY.values():
        if p.grad_fn == name:
            _KINDS[name] = k = _RECORD_SAVES[p.torch_saves]
            return k
    k = (0 if name in _SAVES_NOTHING else 1 if name in _RESULT_ONLY else 2 if name in _CROSS
         else 3 if name == "DivBackward0" else 5 if name in _INPUTS_AND_RESULT else 4)
    _KINDS[name] = k
    return k


_KINDS: dict = {}  # grad_fn name -> what it saves (a _kind number)


def _saved(name, inputs, node):
    k = _KINDS.get(name)
    if k is None:
        k = _kind(name)
    if k == 0:
        return ()
    if k == 1:
        return ((-1, node.ver[0]),)
    if k == 2 and len(inputs) == 2:
        a, b = inputs
        if type(b) is Node and b.rg:
            if type(a) is Node and a.rg:
                return ((0, _ver(a)), (1, b.ver[0]))
            return ((0, _ver(a)),)
        return ((1, _ver(b)),) if type(a) is Node and a.rg else ()
    if k == 3 and len(inputs) == 2:
        a, b = inputs
        return tuple((i, _ver(x)) for i, x, need in ((0, a, _rg(b)), (1, b, _rg(a) or _rg(b)))
                     if need)
    if len(inputs) == 1:
        saved = ((0, _ver(inputs[0])),)
    else:
        saved = tuple((i, _ver(x)) for i, x in enumerate(inputs))
    if k == 5:
        saved += ((-1, node.ver[0]),)
    return saved


def tag(node, name, inputs):
    """Name the recorded node like PyTorch names the op that produced it."""
    if type(node) is not Node or node.trace is not EAGER:
        return node
    if node.rec is None or node.tag is not None:
        # the op was an identity (ops.reshape to the same shape returns its input, a sum over
        # no axes too): PyTorch still records a node of its own
        # and a result with storage of its own (a write to it must not reach the input)
        if not (node.rg and STATE.grad_enabled):
            return Node(node.val.copy(), node.type, None, EAGER) if _is_input(node, inputs) \
                else node
        old = node
        node = bind(_RESHAPE, node, shape=node.type.shape)
        if np.may_share_memory(node.val, old.val):
            node.val = node.val.copy()
    inputs = tuple(inputs)
    for i in inputs:
        if type(i) is Node and i.rec is None and i.rg and i.tag is None:
            i.tag = AccumulateGrad(i)  # PyTorch's graph holds it from now on
    cls = _FUNCTION_CLASSES.get(name) or function_class(name)
    node.tag = cls(inputs, _saved(name, inputs, node))
    return node


_RESHAPE = REGISTRY["reshape"]


def _is_input(node, inputs):
    for i in inputs:
        if i is node:
            return True
    return False


def tag_outputs(nodes, name, inputs):
    """Name several results of one PyTorch op (unbind): they share one grad_fn object."""
    fn = None
    for n in nodes:
        if type(n) is Node and n.rec is not None and n.trace is EAGER and n.tag is None:
            fn = fn or function_class(name)(tuple(inputs))
            n.tag = fn
    return nodes


# node replaced by an in-place op -> weakref to its successor: errors name the op that last
# wrote the storage, as PyTorch does (the tensor's grad_fn at the time of the check)
_SUCCESSOR = weakref.WeakKeyDictionary()


def inplace_result(node, old):
    """After an in-place op wrote its result into `old`'s storage: the op's own read of the old
    value is no saved tensor (PyTorch keeps a copy when it needs one), and the result is saved
    at the version it now has."""
    if old.rec is not None:
        _SUCCESSOR[old] = weakref.ref(node)
    fn = node.tag
    if fn is not None and fn._saved:
        fn._saved = tuple((i, node.ver[0]) if i < 0 else (i, v) for i, v in fn._saved
                          if i < 0 or fn._inputs[i] is not old)


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
            (leaves if n.rg and n.rec is None else consts).append(n)
            continue
        nodes.append(n)
        if n.retain and n is not root:
            retained.append(n)
        for i in n.rec.inputs:
            if type(i) is Node and id(i) not in seen:
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
        fn = n.tag
        if fn is None or not fn._saved:
            continue
        if fn._freed:
            raise RuntimeError(_SECOND_BACKWARD)
        for i, v in fn._saved:
            m = n if i < 0 else fn._inputs[i]
            if type(m) is Node and m.ver[0] != v:
                raise RuntimeError(_modified_message(m, v, result=i < 0))


def _modified_message(m, v, result):
    what = f"[torch.{_TENSOR_TYPE[m.val.dtype.name]}Tensor {list(m.type.shape)}]"
    # a saved input is named by the op that last wrote it; a saved result by its own op
    while not result and m in _SUCCESSOR and _SUCCESSOR[m]() is not None:
        m = _SUCCESSOR[m]()
    if m.rec is not None and m.tag is not None:
        name = type(m.tag).__name__
        op = name[:name.index("Backward")] if "Backward" in name else name
        what += f", which is output 0 of {op},"
    return ("one of the variables needed for gradient computation has been modified by an "
            f"inplace operation: {what} is at version {m.ver[0]}; expected version {v} instead. "
            "Hint: enable anomaly detection to find the operation that failed to compute its "
            "gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False).")


def _lit_key(x):
    if type(x) is Node:
        return None
    v = x.value  # -0.0 and nan by their bits, 1 and 1.0 and True apart
    return v.hex() if type(v) is float else (v, type(v))


_RETAINED = object()  # marks a retained node in a structure key
_STALE = object()     # marks a recorded node whose storage was written since it was recorded


def _scan(root, want_popped=False):
    """The one pass `backward()` makes over the recorded graph under `root`.

    Returns (key, leaves, consts, retained, saved, ok, order, popped). `key` identifies the
    backward graph up to the values it reads: the type of each leaf and const, and for each
    equation its signature (Rec.sig: primitive, parameters, operand types, literals) followed
    by the slots of its recorded operands (and a mark when its storage was written since it was
    recorded). It lists them in the order of a depth-first walk from the root, which that
    structure itself determines (a node gets its slot when first reached, and the signature
    says how many slots follow), so equal keys mean the same graph. `order`: every node by
    slot; `popped` (with want_popped, else None): the recorded nodes in the order their
    signatures appear in the key.
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
    while stack:
        n = stack.pop()
        r = n.rec
        if r is None or n.trace is not EAGER:
            t = n.type
            if n.rg and r is None:
                leaves.append(n)
                add((True, t.shape, t.dtype))
            else:
                consts.append(n)
                add((False, t.shape, t.dtype))
            continue
        if want_popped:
            popped.append(n)
        fn = n.tag
        if fn is not None and fn._saved:
            saved.append(fn)
            if ok:
                if fn._freed:
                    ok = False
                else:
                    ins = fn._inputs
                    for i, v in fn._saved:
                        m = n if i < 0 else ins[i]
                        if type(m) is Node and m.ver[0] != v:
                            ok = False
        sig = r.sig  # literals are part of it
        if sig is None:  # (and for every result of a multi-result equation: its position)
            p = r.params
            sig = (r.prim, n.type.shape, n.type.dtype, tuple(p.items()) if p else None,
                   tuple(_lit_key(i) for i in r.inputs), output_index(n))
        add(sig)
        for i in r.inputs:
            if type(i) is Node:
                k = get(i)
                if k is None:
                    k = slot[i] = len(slot)
                    push(i)
                add(k)
        if n.ver[0] != n.v0:
            add(_STALE)
        if n.retain and n is not root:
            retained.append(n)
            add(_RETAINED)
    return tuple(parts), leaves, consts, retained, saved, ok, list(slot), popped


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
    elementwise = all(i.type.shape == shape for i in r.inputs if type(i) is Node)
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
            if n.rec is None or n.trace is not EAGER or n.ver[0] == n.v0:
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
                if type(i) is Node:
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
                    v = bind(n.rec.prim, *operands(n), **n.rec.params)
                    val[n] = v[output_index(n)] if type(n.rec) is MultiRec else v
            active = set(leaves)
            for n in recs:
                if n.rec.prim.vjp is not None and n.type.dtype in FLOATS and any(
                        type(i) is Node and i in active for i in n.rec.inputs):
                    active.add(n)
            ct = Node(None, root.type, None, tr)
            cts = {root: ct} if root in active else {}
            keep = set(retained)
            multi_done = set()
            for n in reversed(recs):
                r = n.rec
                if type(r) is MultiRec:  # one vjp for all results of the equation
                    if id(r) in multi_done:
                        continue
                    sibs = [w() for w in r.outs]
                    cs = tuple(None if s is None else cts.get(s) if s in keep else
                               cts.pop(s, None) for s in sibs)
                    if all(x is None for x in cs):
                        continue
                    multi_done.add(id(r))
                    STATE.loc = r.loc
                    if any(s is None or s not in val for s in sibs):
                        outs = bind(r.prim, *operands(n), **r.params)
                    else:
                        outs = tuple(val[s] for s in sibs)
                    in_cts = r.prim.vjp(cs, *operands(n), out=outs, **r.params)
                    for i, ci in zip(r.inputs, in_cts):
                        if ci is None or type(i) is not Node or i not in active:
                            continue
                        cts[i] = ci if i not in cts else ops.add(cts[i], ci)
                    continue
                c = cts.get(n) if n in keep else cts.pop(n, None)
                if c is None:
                    continue
                STATE.loc = r.loc
                in_cts = r.prim.vjp(c, *operands(n), out=val[n], **r.params)
                for i, ci in zip(r.inputs, in_cts):
                    if ci is None or type(i) is not Node or i not in active:
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
    consts = [c.val if type(c) is Node else c for c in g.consts]
    vg = Graph(invars, g.constvars, g.eqns, g.outvars, consts, "backward")
    return _Plan(vg, feed, keep_lits)


_RUN_GRAPH = [None]  # adjit.runtime.run_graph (imported when first needed: it imports codegen)


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
        gn.ver[0] += 1


def run_backward(root: Node, ct: np.ndarray, retain_graph=False, inputs=None):
    key, leaves, consts, retained, saved, ok, order, _ = _scan(root)
    if not ok:
        _check(_walk(root)[0])
    plan = _plan_for(root, key, leaves, retained, order)
    run_graph = _RUN_GRAPH[0]
    if run_graph is None:
        from ..runtime import run_graph
        _RUN_GRAPH[0] = run_graph
    args = [order[k].val for k in plan.feed]
    if plan.lits:  # promoted literal slots: this step's values
        popped = _scan(root, True)[-1]
        for m, j, dt in plan.lits:
            args.append(np.asarray(popped[m].rec.inputs[j].value, dt))
    args.append(ct)
    token = FP_STATE.set(FP_QUIET)  # nan/inf silently, as PyTorch (see adjit/_fp.py)
    try:
        outs = run_graph(plan.graph, args)
    finally:
        FP_STATE.reset(token)
    if root.retain and root not in retained:  # y.retain_grad(); y.backward(): the seed
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
        g = n.grad
        v = n.val
        if g is not None and type(gval) is np.ndarray and gval.dtype is v.dtype and \
                gval.shape == v.shape:
            # the common case: add into the existing .grad in place
            gn = g._n
            np.add(gn.val, gval, out=gn.val, casting="unsafe")
            gn.ver[0] += 1
        else:
            accumulate(n, gval)
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
            if type(i) is Node and id(i) not in seen:
                if id(i) in inputs:
                    return True
                seen.add(id(i))
                stack.append(i)
    return False


def warn_nonleaf_grad():
    warnings.warn(
        "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
        "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
        "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. "
        "If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor "
        "instead. See github.com/pytorch/pytorch/pull/30531 for more information.",
        UserWarning, stacklevel=3)


_WARNED = set()


def warn_once(key, message, stacklevel=3):
    """PyTorch's TORCH_WARN_ONCE: the first occurrence in the process only."""
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, UserWarning, stacklevel=stacklevel + 1)


def warn_scalar_conversion():
    warn_once("scalar", "Converting a tensor with requires_grad=True to a scalar may lead to "
              "unexpected behavior.\nConsider using tensor.detach() first.", stacklevel=4)
