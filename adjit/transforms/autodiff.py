"""JAX-style transforms over NumPy (or Tensor) code: grad, value_and_grad, vjp, jvp, jacrev,
jacfwd, hessian, vmap, stop_gradient, make_ir. (jit: transforms/jit.py; custom rules:
transforms/custom.py.)

Eager execution is tracing: a transform wraps the arguments it acts on as Nodes of a fresh
trace level inside TracedArrays (or Tensors, when Tensors are passed), runs the user's function
once (recording a graph), extracts the Graph, derives the graph it needs (vjp_graph, jvp_graph,
batch_graph; cached by structure, so a repeated call re-runs the Python but not the
derivation) and evaluates it with `run_graph` on the caller's values. When those values are
Nodes of an enclosing trace, evaluation records into that trace: that is how transforms
compose and how nested levels stay apart.
"""
from __future__ import annotations

import collections
import functools
import itertools
import time
import weakref

import numpy as np

from .._traceback import wraps
from ..ir import literals, ops
from ..ir.autodiff import (adjoint_graph, backward_pass, eager_backward, eager_plan,
                           eager_run, jvp_graph,
                           recorded, rehome_backward, replay_with_values, vjp_graph)
from ..ir.core import EAGER, STATE, GuardFailed, Lit, Node, recording_only
from ..ir.graph import eval_graph, extract
from ..ir.types import DTYPES, FLOATS
from ..runtime import (HOT_CALLS, HOT_SECONDS, count_traced_call, fresh,
                       interpret as _interpret, run_graph as _run_concrete, tier_mode)
from ..tracer import pytree
from ..tracer.ndarray import TracedArray
from ..tracer.trace_args import (_at, _live, _regroup, arg_name, fname, leaf_info, out_nodes,
                                positional_params, tensor_cls, to_user, to_user_like, trace_call)

# --- running graphs --------------------------------------------------------------------------


def run_graph(g, args, consts=None):
    """Evaluate graph `g`: the one place transforms run graphs. Values of enclosing traces (or
    of the Tensor tape) among the arguments are recorded there (inlined through `bind`);
    otherwise the graph runs on concrete arrays (the hook for compiled code)."""
    consts = g.consts if consts is None else consts
    args = [a if isinstance(a, Node) else np.asarray(a, v.type.np_dtype)
            for v, a in zip(g.invars, args)]
    if any(_live(a) for a in args) or any(_live(c) for c in consts):
        if _interpretable(g, args, consts):
            return _record_interpreted(g, args, consts)
        return eval_graph(g, args, consts)
    args = [a.val if isinstance(a, Node) else a for a in args]
    if consts is not g.consts:
        consts = [c.val if isinstance(c, Node) else c for c in consts]
    return _run_concrete(g, args, consts)


# a graph recorded into an enclosing trace whose arrays have at least this many elements is
# computed on the interpreter tier (optimised, dead values freed) rather than equation by
# equation through `bind`
INTERPRET_MIN_SIZE = 1 << 15


def _interpretable(g, args, consts):
    """Whether `_record_interpreted` may evaluate g: every value known (none abstract), nothing
    recorded on the eager tape (its values must stay concrete), and arrays big enough that the
    optimisation passes pay for themselves."""
    for a in itertools.chain(args, consts):
        if isinstance(a, Node) and (a.val is None or (a.trace is EAGER and a.requires_grad)):
            return False
    return any(v.type.size >= INTERPRET_MIN_SIZE
               for v in itertools.chain(g.invars, g.outvars) if type(v) is not Lit)


def _record_interpreted(g, args, consts, donate=()):
    """g's results inside an enclosing trace: its equations recorded there without computing,
    their values computed once by the interpreter tier on the optimised graph (no `pow x 1.0`,
    no materialised broadcasts, each intermediate freed after its last use). A guard of g is
    checked by that run. `donate`: positions of `args`, Nodes whose values nothing else will
    read: their values are handed to the plan (the Nodes' `val` cleared), which writes into
    and reuses those buffers (runtime.interpret)."""
    vals = [a.val if isinstance(a, Node) else a for a in args]
    for i in donate:
        if isinstance(args[i], Node):
            args[i].val = None
    cvals = [c.val if isinstance(c, Node) else c for c in consts]
    outs = _interpret(g, vals, cvals, donate)
    with recording_only():
        res = eval_graph(g, args, consts)
    for r, o in zip(res, outs):
        if isinstance(r, Node) and r.val is None:
            r.val = o
    return res


# the traces grad's adjoint is recorded into directly (their values are arrays of the outer
# computation; vmap's batched values and jvp's tangents take the derived graph)
_INLINE_KINDS = ("jit", "grad", "vjp")


def _inline_vjp(g, vals, nodes, t, ct):
    """(output, gradients of every input) of grad inside an enclosing trace (jit of grad, grad
    of grad), recorded there without deriving the vjp graph and without computing the forward
    again: g's equations are recorded at the enclosing level with the values they had when g
    was traced (`replay_with_values`: the same bits), then the adjoint. Small graphs record
    each derivative rule as it runs (computed by `bind`); on arrays of at least
    INTERPRET_MIN_SIZE elements the adjoint's values come from the interpreter tier's
    optimised plan of `adjoint_graph(g)` (no `pow x 1.0`, no materialised broadcasts, buffers
    freed and reused), fed the forward's values. `ct`: grad's seed (`_seed`: ones), which
    that graph has as a `full` of 1.0. None when it does not apply (a value unknown, a value
    on the eager tape, a custom rule's residuals): the caller derives."""
    if STATE.stack[-1].kind not in _INLINE_KINDS:
        return None
    outer = [lf.outer for lf in t.leaves]
    # a constant leaf of the inner trace (no producer, no gradient) is its array, as in eval_graph
    cs = [c.val if isinstance(c, Node) and c.rec is None and not c.requires_grad else c
          for c in g.consts]
    for a in itertools.chain(outer, cs, (ct,)):
        if isinstance(a, Node) and (a.val is None or (a.trace is EAGER and a.requires_grad)):
            return None
    if not recorded(g, vals, g.invars):
        return None
    big = any(v.type.size >= INTERPRET_MIN_SIZE for e in g.eqns for v in e.outvars)
    env = replay_with_values(g, outer, cs, vals)
    out = [env[v] for v in g.outvars]
    wrt = range(len(g.invars))
    if not big:
        cts = backward_pass(g, env, list(zip(g.outvars, [ct])), g.invars)
        return out + [cts[v] if v in cts else ops.zeros(v.type.shape, v.type.dtype)
                      for v in g.invars]
    text, bs, _ = literals.slots(g)
    # grad's seed is 1.0 (`_seed`): the adjoint multiplies by no broadcast 1.0
    a = derived("adjoint", g, lambda: adjoint_graph(g, wrt, seed=1.0), tuple(bs), text=text)
    # forward values that are no output are released at both levels. Inside jit (every
    # enclosing level a jit trace: nothing reads a value of g's forward again but the adjoint)
    # they are handed to the adjoint's plan, which writes its results into the buffers of
    # those it has read for the last time and of those it does not read, instead of touching
    # fresh memory (runtime.interpret's `donate`); elsewhere those the adjoint does not read
    # are dropped before it runs. Peak memory is the forward's, not the forward's plus the
    # adjoint's.
    used = {x for e in a.eqns for x in e.inputs if type(x) is not Lit}
    used.update(a.outvars)
    fvars = [v for e in g.eqns for v in e.outvars]
    keep = set(g.outvars)
    give = all(tr.kind == "jit" for tr in STATE.stack[1:])
    donate = []
    for k, (v, av) in enumerate(zip(fvars, a.invars[len(g.invars):])):
        if v in keep:
            continue
        if give:
            donate.append(len(g.invars) + k)
        elif av in used:
            continue
        else:
            m = env[v]
            if isinstance(m, Node):
                m.val = None
        m = nodes.get(v)
        if isinstance(m, Node):
            m.val = None
        vals.pop(v, None)
    fwd = [env[v] for v in fvars]
    m = None
    return out + _record_interpreted(a, [env[v] for v in g.invars] + fwd + [ct],
                                     cs + list(a.consts[len(cs):]), donate)


_CACHE: "collections.OrderedDict" = collections.OrderedDict()
CACHE_STATS = {"builds": 0, "hits": 0}
_SLOTS = literals.SlotTable()  # grad's literal slots: first values, promoted slots


def derived(kind, g, build, *extra, text=None):
    """A graph derived from `g` (vjp, jvp, batched...), cached by g's structure (text, or
    `text` when the caller has it)."""
    key = (kind, extra, g.structure_key() if text is None else text)
    d = _CACHE.get(key)
    if d is None:
        CACHE_STATS["builds"] += 1
        d = _CACHE[key] = build()
        # the leading consts are g's (this call's values): callers bind their own (consts_for),
        # so the cache must not keep them alive
        dg = d[0] if isinstance(d, tuple) else d
        dg.consts[:len(g.consts)] = [None] * len(g.consts)
        if len(_CACHE) > 512:
            _CACHE.popitem(last=False)
    else:
        CACHE_STATS["hits"] += 1
        _CACHE.move_to_end(key)
    return d


def consts_for(d, g):
    """Bindings for a derived graph: g's (this call's) constants, then its own."""
    return list(g.consts) + list(d.consts[len(g.consts):])


# --- the eager tier: a cold function's adjoint evaluated as it is emitted --------------------
# grad, value_and_grad and vjp without jit run the user's Python on every call, so the forward
# values are computed anyway while tracing. While a function is cold (fewer than HOT_CALLS - 1
# calls and HOT_SECONDS of its time so far, counted per code and argument types), its adjoint
# is computed directly on those values (`eager_backward`: each derivative rule run on the
# trace's records, as HIPS autograd does; vjp finds the records once, `eager_plan`, and runs
# them per pullback call, `eager_run`) and no graph is extracted, derived, optimised or
# planned. Once it is hot, calls take the structured path (the vjp graph cached by
# structure, `run_graph`'s tiers: the interpreter plan of the optimised graph, then native
# code), its tier counting the eager calls, so native code is requested as soon as the
# function is hot. Only small graphs (every value under
# INTERPRET_MIN_SIZE elements) at the outermost level (no enclosing trace) take the eager tier;
# large ones gain from the passes (no materialised broadcasts, buffers freed and reused): while
# cold they run the interpreter plan of the adjoint on the trace's values (`_outer_adjoint`).
# ADJIT_TIER=native skips it (compiled before the first return).
_COLD: "collections.OrderedDict" = collections.OrderedDict()  # key -> [calls, seconds, codes]
EAGER_STATS = {"calls": 0}


def _code_key(f):
    """f's code and that of the functions it wraps (`__wrapped__`, partials, bound methods):
    what identifies "the same function" across grad(f) wrappers made anew for each call."""
    key = []
    for _ in range(16):
        c = getattr(f, "__code__", None)
        if c is not None:
            key.append(c)
        elif isinstance(f, functools.partial):
            f = f.func
            continue
        elif getattr(f, "__func__", None) is not None:  # a bound method
            f = f.__func__
            continue
        else:
            key.append(type(f))
        f = getattr(f, "__wrapped__", None)
        if f is None:
            break
    return tuple(key)


def _tier_entry(kind, f, t):
    """This call's counter ([eager calls, their seconds]) when grad's eager tier may serve it
    (outermost level, concrete arguments, not ADJIT_TIER=native), else None."""
    if len(STATE.stack) != 1:
        return None
    for lf in t.leaves:
        if _live(lf.outer):
            return None
    if tier_mode() == "native":
        return None
    codes = _code_key(f)
    # by identity (equal code compiled twice, e.g. from two files, compares equal); the entry
    # holds weak references to the code objects whose callbacks drop it, so a function that is
    # gone (a notebook's, a test's) is not kept alive and an id is not reused while its entry
    # exists
    # the arguments' types as (shape, dtype) pairs: hashed in C, where AType's __hash__ is a
    # Python call per leaf (twice: lookup and insertion of a new entry)
    key = (kind, tuple(map(id, codes)), tuple([(lf.type.shape, lf.type.dtype)
                                               for lf in t.leaves]))
    e = _COLD.get(key)
    if e is None:
        def drop(r, key=key):
            _COLD.pop(key, None)

        e = _COLD[key] = [0, 0.0, [weakref.ref(c, drop) for c in codes]]
        if len(_COLD) > 4096:
            _COLD.popitem(last=False)
    return e


def _cold(entry):
    return entry is not None and entry[0] < HOT_CALLS - 1 and entry[1] < HOT_SECONDS


def _count_hot(entry, d):
    """The first structured call of a function that ran on the eager tier: its derived graph's
    tier counts those calls (so native code is asked for now that it is hot)."""
    if entry is not None and entry[0] and d.native is None:
        count_traced_call(d, min(entry[0], HOT_CALLS - 1), entry[1])


def _eager_backward(t, n):
    """(output, gradients of every input) of grad's eager tier as fresh arrays: the adjoint run
    on the trace's records (`eager_backward`, no graph extracted), or None when it cannot serve
    (see there: the caller derives the graph)."""
    shp, dt = n.type.shape, n.type.np_dtype
    ct = np.array(1.0, dt) if shp == () else np.ones(shp, dt)  # (np.ones: ~0.5 us more)
    r = eager_backward([n], t.trace, t.inputs, [ct], INTERPRET_MIN_SIZE)
    if r is None:
        return None
    grads, leaves = r
    EAGER_STATS["calls"] += 1
    args = [getattr(lf.outer, "val", lf.outer) for lf in t.leaves]  # a Tensor's array too
    return fresh([n.val] + grads, args + [ct], leaves)


def _outer_adjoint(g, vals, nodes, t, n, aux):
    """(output, gradients of every input) of a cold call of grad at the outermost level whose
    values are too big for the eager tier, as fresh arrays: the interpreter tier's plan of
    `adjoint_graph(g)` fed the forward's values the trace computed (as jit of grad's first
    call, `_inline_vjp`), instead of the derived vjp graph, which computes the forward a second
    time. The forward values that are no output (nor part of `aux`) are handed to the plan,
    which writes its results into their buffers (runtime.interpret's `donate`; the trace's
    Nodes let go of them). None when it does not apply (a value unknown, a value on the eager
    tape, a custom rule's residuals, no big value): the caller derives the graph."""
    cs = [c.val if isinstance(c, Node) and c.rec is None and not c.requires_grad else c
          for c in g.consts]
    if any(isinstance(c, Node) for c in cs) or not recorded(g, vals, g.invars):
        return None
    fvars = [v for e in g.eqns for v in e.outvars]
    if not any(v.type.size >= INTERPRET_MIN_SIZE for v in fvars):
        return None
    text, bs, _ = literals.slots(g)
    a = derived("adjoint", g, lambda: adjoint_graph(g, range(len(g.invars)), seed=1.0),
                tuple(bs), text=text)
    keep = set(g.outvars)
    if aux is not None:  # aux's values are read after the adjoint has run
        auxn = set(map(id, out_nodes(aux, "aux")[0]))
        keep.update(v for v in fvars if id(nodes.get(v)) in auxn)
    shp, dt = n.type.shape, n.type.np_dtype
    ct = np.array(1.0, dt) if shp == () else np.ones(shp, dt)
    ins = [vals[v] for v in g.invars]
    args = ins + [vals[v] for v in fvars] + [ct]
    ni, donate = len(ins), []
    for k, v in enumerate(fvars):
        if v not in keep:
            donate.append(ni + k)
            m = nodes.get(v)
            if isinstance(m, Node):
                m.val = None
            vals.pop(v, None)
    grads = _interpret(a, args, cs + list(a.consts[len(cs):]), donate)
    return fresh([n.val], ins + [ct] + cs) + grads


# --- grad / value_and_grad ------------------------------------------------------------------
def _argnums(argnums, nargs, f):
    if type(argnums) is int and 0 <= argnums < nargs:  # (grad(f)(x): no generator frames)
        return (argnums,), True
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    for a in nums:
        if not isinstance(a, int) or not -nargs <= a < nargs:
            raise ValueError(f"argnums={argnums!r} is out of range: {fname(f)} was called with "
                             f"{nargs} positional argument(s){_at()}")
    return tuple(a % nargs for a in nums), single


def _diff_select(nums, what):
    def select(i, info):
        if i not in nums:
            return False
        if info.type.dtype not in FLOATS:
            raise TypeError(f"{what} w.r.t. argument {i}, which has dtype "
                            f"{info.type.np_dtype} (an int/bool value has no derivative): "
                            f"pass a float (2.0, not 2) or x.astype(float){_at()}")
        return True
    return select


def _check_floats(f, nums, args, what):
    for i in nums:
        a = args[i]
        if type(a) is np.ndarray:  # (leaf_info accepts every ndarray: nothing to check)
            continue
        leaves = pytree.leaves(a)
        for lf in leaves:
            try:
                info = leaf_info(lf)
            except TypeError as exc:
                raise TypeError(f"{what}: {arg_name(positional_params(f), i)} of {fname(f)}: "
                                f"{exc}{_at()}") from None
            if info is None:
                raise TypeError(f"{what} w.r.t. argument {i}: {type(lf).__name__} is not an "
                                f"array or a number{_at()}")


def _scalar_out(out, f, what):
    if isinstance(out, TracedArray):  # the common output (out_nodes' answer; fname on errors)
        nodes, kinds = [out._n], ["weak" if out.weak else "np"]
    else:
        nodes, kinds, _ = out_nodes(out, f"{what}: {fname(f)}") if out is not None else \
            (0, 0, 0)
    if out is None or len(nodes) != 1 or isinstance(out, (tuple, list, dict)):
        raise TypeError(f"{what} needs {fname(f)} to return a scalar array, got "
                        f"{'None' if out is None else type(out).__name__}{_at()}")
    n = nodes[0]
    if n.type.size != 1:  # shape (1,) or (1, 1) is a scalar too, as in HIPS autograd
        raise ValueError(f"{what} needs a scalar output but {fname(f)} returned shape "
                         f"{n.type.shape}{_at()}; use jacrev or vjp for non-scalar outputs")
    if n.type.dtype not in FLOATS:
        raise TypeError(f"{what} needs a float output but {fname(f)} returned dtype "
                        f"{n.type.np_dtype}{_at()}")
    return n, kinds[0]


def _split_aux(out, has_aux, f):
    if not has_aux:
        return out, None
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(f"has_aux=True needs {fname(f)} to return a pair (output, aux), got "
                        f"{type(out).__name__}{_at()}")
    return out[0], out[1]


def realize(t, tree_out, what="aux", eager=False):
    """Values of the trace (an output pytree) expressed for the caller: NumPy values at the
    outermost level, recorded values of the enclosing trace inside one. `eager` (grad's eager
    tier: outermost level, concrete arguments): the values recorded while tracing."""
    nodes, kinds, td = out_nodes(tree_out, what)
    if eager and all(n.val is not None for n in nodes):
        vals = fresh([n.val for n in nodes], [getattr(lf.outer, "val", lf.outer)
                                              for lf in t.leaves])
    else:
        g = extract(nodes, t.trace, inputs=t.inputs)
        vals = run_graph(g, [lf.outer for lf in t.leaves], g.consts)
    return pytree.unflatten(td, [to_user(v, k) for v, k in zip(vals, kinds)])


def _seed(dtype, shape=()):
    """The cotangent 1.0 that starts reverse mode. Inside an enclosing trace (jit, another
    grad) it is an equation `full`, so what depends only on it stays code instead of being
    folded at trace time into dense constant arrays (8 MB each for W4's million elements)."""
    if len(STATE.stack) > 1:
        return ops.full(shape, 1.0, dtype)
    return np.ones(shape, DTYPES[dtype])


def value_and_grad(f, argnums=0, has_aux=False):
    """f's value and its gradient w.r.t. argnums (an int or a tuple of ints)."""
    return functools.wraps(f)(_value_and_grad(f, argnums, has_aux))


def _cold_result(res, t, kind, nums, single, has_aux, aux, entry, t0):
    """value_and_grad's result from a cold call's (output, gradients) (`_eager_backward`,
    `_outer_adjoint`), counted in its tier entry."""
    grads = [to_user_like(x, lf) for x, lf in zip(res[1:], t.leaves)]
    value = to_user(res[0], kind)
    gr = _regroup(t, nums, grads, single)
    if has_aux:
        value = (value, realize(t, aux, eager=True))
    entry[0] += 1
    entry[1] += time.perf_counter() - t0
    return value, gr


def _value_and_grad(f, argnums, has_aux):
    """value_and_grad's function, without f's name and docstring copied onto it (grad's own
    wrapper carries them: this one is never seen)."""
    def vg(*args, **kwargs):
        t0 = time.perf_counter()
        nums, single = _argnums(argnums, len(args), f)
        _check_floats(f, nums, args, "grad")
        t = trace_call(f, args, kwargs, _diff_select(nums, "grad"), "grad")
        out, aux = _split_aux(t.out, has_aux, f)
        n, kind = _scalar_out(out, f, "grad")
        entry = _tier_entry("grad", f, t)
        if _cold(entry):
            res = _eager_backward(t, n)
            if res is not None:
                return _cold_result(res, t, kind, nums, single, has_aux, aux, entry, t0)
        if len(STATE.stack) > 1 and STATE.stack[-1].kind in _INLINE_KINDS:
            # inside jit / another grad, small values: the forward's records move to the
            # enclosing trace and the adjoint is recorded there (no graph, no replay)
            res = rehome_backward(n, t.trace, t.inputs, [lf.outer for lf in t.leaves],
                                  STATE.stack[-1], INTERPRET_MIN_SIZE,
                                  lambda: _seed(n.type.dtype, n.type.shape))
            if res is not None:
                grads = [to_user_like(x, lf) for x, lf in zip(res[1:], t.leaves)]
                value = to_user(res[0], kind)
                # aux: its own records are replayed at the enclosing level; those it shares
                # with the output have moved there and are read as they are
                return ((value, realize(t, aux)) if has_aux else value), \
                    _regroup(t, nums, grads, single)
        vals, nodes = {}, {}
        g = extract([n], t.trace, inputs=t.inputs, name=getattr(f, "__name__", "f"),
                    values=vals, nodes=nodes)
        if _cold(entry):  # big values (the eager tier refused): the adjoint on the trace's
            res = _outer_adjoint(g, vals, nodes, t, n, aux if has_aux else None)
            if res is not None:
                return _cold_result(res, t, kind, nums, single, has_aux, aux, entry, t0)
        if len(STATE.stack) > 1:  # inside jit / another grad: record the adjoint there
            res = _inline_vjp(g, vals, nodes, t, _seed(n.type.dtype, n.type.shape))
            if res is not None:
                grads = [to_user_like(x, lf) for x, lf in zip(res[1:], t.leaves)]
                value = to_user(res[0], kind)
                gr = _regroup(t, nums, grads, single)
                return ((value, realize(t, aux)) if has_aux else value), gr
        # literal slots that have seen a second value are runtime scalars (ir/literals.py)
        text, bs, where = literals.slots(g)
        prom = _SLOTS.promoted(text, bs)
        fixed = tuple(b for i, b in enumerate(bs) if i not in prom)
        slots = [where[i] for i in prom]
        ni = len(g.invars)
        d = derived("vjp", g, lambda: vjp_graph(literals.promote(g, slots) if slots else g,
                                                wrt=range(ni)), prom, fixed, text=text)
        ct = _seed(n.type.dtype, n.type.shape)
        scalars = [np.asarray(g.eqns[k].inputs[j].value, dt) for k, j, dt in slots]
        _count_hot(entry, d)
        res = run_graph(d, [lf.outer for lf in t.leaves] + scalars + [ct], consts_for(d, g))
        grads = [to_user_like(x, lf) for x, lf in zip(res[1:], t.leaves)]
        value = to_user(res[0], kind)
        gr = _regroup(t, nums, grads, single)
        if has_aux:
            return (value, realize(t, aux)), gr
        return value, gr
    return vg


def grad(f, argnums=0, has_aux=False):
    """The gradient of scalar-valued f w.r.t. argnums; with has_aux, (gradient, aux)."""
    vg = _value_and_grad(f, argnums, has_aux)

    @wraps(f)
    def g(*args, **kwargs):
        value, gr = vg(*args, **kwargs)
        return (gr, value[1]) if has_aux else gr
    return g


# --- vjp / jvp ----------------------------------------------------------------------------
def _float_select(i, info):
    return info.type.dtype in FLOATS


def vjp(f, *primals, has_aux=False):
    """(f(*primals), pullback): pullback(cotangent) -> one cotangent per primal."""
    t0 = time.perf_counter()
    t = trace_call(f, primals, {}, _float_select, "vjp")
    out, aux = _split_aux(t.out, has_aux, f)
    nodes, kinds, otd = out_nodes(out, f"vjp: {fname(f)}")
    entry = _tier_entry("vjp", f, t)
    # the eager tier (as grad's): the rules run over the records when the pullback is called
    plan = eager_plan(nodes, t.trace, t.inputs, INTERPRET_MIN_SIZE) if _cold(entry) else None
    outer = [lf.outer for lf in t.leaves]
    if plan is not None:
        args = [getattr(lf.outer, "val", lf.outer) for lf in t.leaves]  # a Tensor's array too
        aux_value = realize(t, aux, eager=True) if has_aux else None
        for n in t.inputs:  # the pullback reads the arguments as they were at this call
            n.val = np.array(n.val)
        outs = fresh([n.val for n in nodes], args, plan[2])
        entry[0] += 1
        entry[1] += time.perf_counter() - t0
        g = None
    else:
        g = extract(nodes, t.trace, inputs=t.inputs, name=getattr(f, "__name__", "f"))
        outs = run_graph(g, outer, g.consts)
    value = pytree.unflatten(otd, [to_user(v, k) for v, k in zip(outs, kinds)])

    def pullback(ct):
        cts, ctd = pytree.flatten(ct)
        if ctd != otd:
            raise ValueError(f"vjp: cotangent structure {ctd} does not match the output's {otd}")
        cn = []
        for c, n in zip(cts, nodes):
            info = leaf_info(c)
            if info is None or info.type.shape != n.type.shape:
                raise ValueError(f"vjp: cotangent of shape {getattr(c, 'shape', ())} for an "
                                 f"output of shape {n.type.shape}{_at()}")
            cn.append(info.outer if isinstance(info.outer, Node) else
                      np.asarray(info.outer, n.type.np_dtype))
        if plan is not None and not any(_live(c) for c in cn):  # the eager tier (above)
            res = _eager_run(plan, nodes, t, [getattr(c, "val", c) for c in cn])
        else:
            gr = g if g is not None else _extract_vjp(t, nodes, f)
            d = derived("vjp", gr, lambda: vjp_graph(gr))
            res = run_graph(d, outer + cn, consts_for(d, gr))
        grads = [to_user_like(x, lf) for x, lf in zip(res[len(nodes):], t.leaves)]
        return _regroup_all(t, primals, grads)

    if has_aux:
        return value, pullback, (aux_value if plan is not None else realize(t, aux))
    return value, pullback


def _extract_vjp(t, nodes, f):
    """The graph of a vjp's trace, for a pullback the eager tier does not serve (a cotangent
    live in an enclosing recorder). Its arguments' values are read when the graph runs."""
    return extract(nodes, t.trace, inputs=t.inputs, name=getattr(f, "__name__", "f"))


def _eager_run(plan, nodes, t, cts):
    """(outputs..., cotangents of every input...) of vjp's eager tier as fresh arrays: the
    rules of `plan` (`eager_plan`) run on the records' values."""
    grads = eager_run(plan, nodes, t.inputs, cts)
    EAGER_STATS["calls"] += 1
    args = [getattr(lf.outer, "val", lf.outer) for lf in t.leaves]  # a Tensor's array too
    return fresh([n.val for n in nodes] + grads, args + list(cts), plan[2])


def _regroup_all(t, args, values):
    res = []
    for i, a in enumerate(args):
        td, idx = t.groups[i]
        leaves = pytree.leaves(a)
        res.append(pytree.unflatten(td, [values[j] if j is not None else _zero_like(lf)
                                         for j, lf in zip(idx, leaves)]))
    return tuple(res)


def _zero_like(x):
    info = leaf_info(x)
    return None if info is None else np.zeros(info.type.shape, info.type.np_dtype)


def jvp(f, primals, tangents, has_aux=False):
    """(f(*primals), the directional derivative along tangents)."""
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    t = trace_call(f, primals, {}, _float_select, "jvp")
    out, aux = _split_aux(t.out, has_aux, f)
    nodes, kinds, otd = out_nodes(out, f"jvp: {fname(f)}")
    g = extract(nodes, t.trace, inputs=t.inputs, name=getattr(f, "__name__", "f"))
    tans = []
    for i, tv in enumerate(tangents):
        td, idx = t.groups[i]
        tl, ttd = pytree.flatten(tv)
        if ttd != td:
            raise ValueError(f"jvp: tangent {i} has structure {ttd}, its primal {td}")
        for j, x in zip(idx, tl):
            if j is None:
                continue
            info, lf = leaf_info(x), t.leaves[j]
            if info is None or info.type.shape != lf.type.shape:
                raise ValueError(f"jvp: tangent of shape {getattr(x, 'shape', ())} for a "
                                 f"primal of shape {lf.type.shape}{_at()}")
            tans.append(info.outer if isinstance(info.outer, Node) else
                        np.asarray(info.outer, lf.type.np_dtype))
    d = derived("jvp", g, lambda: jvp_graph(g))
    res = run_graph(d, [lf.outer for lf in t.leaves] + tans, consts_for(d, g))
    n = len(nodes)
    value = pytree.unflatten(otd, [to_user(v, k) for v, k in zip(res[:n], kinds)])
    tout = pytree.unflatten(otd, [to_user(v, k) for v, k in zip(res[n:], kinds)])
    return (value, tout, realize(t, aux)) if has_aux else (value, tout)


def stop_gradient(x):
    """x with no derivative flowing through it (values unchanged)."""
    T = tensor_cls()

    def one(v):
        if isinstance(v, TracedArray):
            return TracedArray(ops.stop_gradient(v._n), v.weak) if v._n.trace.active else v
        if T is not None and isinstance(v, T):
            return T._wrap(ops.stop_gradient(v._n))
        return v
    return pytree.tree_map(one, x)


def make_ir(f, static_argnums=()):
    """make_ir(f)(*args) -> the Graph f records (guards included), e.g. make_ir(grad(f))(x)."""
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    @functools.wraps(f)
    def mk(*args, **kwargs):
        t = trace_call(f, args, kwargs, lambda i, info: i not in static, "jit")
        nodes, _, _ = out_nodes(t.out, f"make_ir: {fname(f)}")
        return extract(nodes, t.trace, inputs=t.inputs, name=getattr(f, "__name__", "f"))
    return mk



__all__ = ["grad", "value_and_grad", "vjp", "jvp",
           "stop_gradient", "make_ir", "run_graph", "GuardFailed"]
