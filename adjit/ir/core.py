"""The recorder: primitives, `bind`, recorded values (Node) and trace levels.

Eager execution *is* tracing. `bind(prim, *args)` computes the value at once with the
primitive's NumPy implementation and, when some argument is a recorded value of an active
trace, records one equation (`Rec`) that the output Node points at. There is no global graph:
a graph is whatever is reachable from a root (see `graph.extract`).

Levels keep nested transforms apart: each transform opens a `Trace` with a level one deeper than
the enclosing one; an operation is recorded at the deepest level among its arguments, and values
of shallower levels are, from the deeper trace's point of view, captured inputs.
Level 0 is the eager tape of `adjit.Tensor`: it records only when an argument requires grad.
"""
from __future__ import annotations

import itertools
import sys
import threading
import weakref

import numpy as np

from .._fp import FP_QUIET, FP_STATE, fp_reset as _fp_reset, fp_set as _fp_set
from .._frames import is_adjit_file
from .types import AType, DTYPES, NAME_OF, dtype_name, float_bits

_seq = itertools.count()


class WeakType(AType):
    """The type of a scalar literal: fits any shape of the other operand (weak typing)."""
    __slots__ = ()
    weak = True


_WEAK_TYPES: dict = {}


class Lit:
    """A Python scalar operand of an equation; takes the other operand's dtype."""
    __slots__ = ("value", "dtype")

    def __init__(self, value, dtype):
        self.value = value
        self.dtype = dtype

    @property
    def type(self):
        t = _WEAK_TYPES.get(self.dtype)
        if t is None:  # types are immutable: one per dtype (a shape rule asks on every miss)
            t = _WEAK_TYPES[self.dtype] = WeakType((), self.dtype)
        return t

    def array(self):
        return np.asarray(self.value, DTYPES[self.dtype])


_new = object.__new__


class Rec:
    """One recorded equation: the primitive, its inputs (Node | Lit), params, source location.
    (`_record` builds one without calling __init__: keep the two in step.)"""
    __slots__ = ("prim", "inputs", "params", "loc", "seq", "sig", "__weakref__")

    def __init__(self, prim, inputs, params, loc, sig=None):
        self.prim = prim
        self.inputs = inputs
        self.params = params
        self.loc = loc
        self.seq = next(_seq)
        # (prim, shape rule, operand types, literals, params): one shared tuple per distinct
        # signature (None when a parameter is unhashable); see _RULES
        self.sig = sig


class MultiRec(Rec):
    """The equation of a primitive with several results: their types, and weak references to
    the Nodes that hold them (a Node finds its position by identity; see `output_index`)."""
    __slots__ = ("types", "outs")


def output_index(n) -> int:
    """Which result of its equation Node `n` is (0 for a one-result equation)."""
    r = n.rec
    if type(r) is not MultiRec:
        return 0
    for k, w in enumerate(r.outs):
        if w() is n:
            return k
    raise AssertionError("a result of a multi-output equation lost its place")  # pragma: no cover


class Node:
    """A recorded value: its array (None while building a graph abstractly), type, producer,
    trace level. `requires_grad`: the value takes part in recording -- on the eager tape
    (level 0) a value requiring grad, so an operation on it is recorded; at a deeper level a
    value computed from the trace's inputs (False for a captured constant). The eager tape's
    values are instances of TAPE_NODE, a subclass the Tensor front supplies (adjit/tracer/
    tape.py `TapeNode`: grad, grad_fn, version counter); the IR knows nothing of that state.
    (`_record` builds a traced one without calling __init__: keep the two in step.)"""
    __slots__ = ("val", "type", "rec", "trace", "requires_grad", "__weakref__")

    def __init__(self, val, typ, rec, trace, requires_grad=False):
        self.val = val
        self.type = typ
        self.rec = rec
        self.trace = trace
        self.requires_grad = requires_grad

    @property
    def shape(self):
        return self.type.shape

    @property
    def dtype(self):
        return self.type.dtype

    def __repr__(self):
        return f"Node({self.type}, level={self.trace.level})"


class Trace:
    """A recording level. Level 0 (EAGER) is the Tensor tape; transforms open deeper ones.
    `nodes`: None, or (jit's trace, while it records) a list that every Node recorded at this
    level is appended to, so that jit can drop their values once its first call has returned
    them and extract the graph later (jit.py `_Branch.graph`)."""
    __slots__ = ("level", "active", "guards", "kind", "nodes")

    def __init__(self, level, kind="trace"):
        self.level = level
        self.active = True
        self.guards = []
        self.kind = kind
        self.nodes = None


EAGER = Trace(0, "eager")
# TAPE_NODE: the class of the eager tape's values, a subclass of Node with a `view_of(operands)`
# method, set by the Tensor front (`set_tape_node`); the recorder constructs it directly. The hot
# paths test `type(a) is TAPE_NODE or type(a) is Node` (two identity tests), where `isinstance`
# pays a `__class__` lookup for every operand that is not a Node.
TAPE_NODE = Node


def set_tape_node(cls):
    """Make `cls` (a subclass of Node) the class of the eager tape's values."""
    global TAPE_NODE
    TAPE_NODE = cls


# How many (thread, mode) pairs have inference mode or anomaly mode on, over all threads: 0
# means no thread has either, so a hot path (every Tensor made, every op tagged) tests
# `MODES_ON[0] and STATE.inference` and skips the slower thread-local read. Kept exact by the
# setters of `_State.inference` / `.anomaly` (every write goes through them); a thread that ends
# with a mode on leaves the count positive, which only sends the checks to the exact read.
MODES_ON = [0]
_MODES_LOCK = threading.Lock()


def _mode_flag(name):
    slot = "_" + name

    def get(self):
        return getattr(self, slot)

    def set(self, value):
        value = bool(value)
        if value != getattr(self, slot, False):
            with _MODES_LOCK:
                MODES_ON[0] += 1 if value else -1
        setattr(self, slot, value)
    return property(get, set)


class _State(threading.local):
    inference = _mode_flag("inference")  # adjit.inference_mode(): new tensors are inference tensors
    anomaly = _mode_flag("anomaly")  # autograd.set_detect_anomaly: forward stacks, NaN checks

    def __init__(self):
        self.stack = [EAGER]
        self.grad_enabled = True
        self._inference = False
        self._anomaly = False
        self.anomaly_nan = True
        self.loc = None  # set by graph transforms: derived equations keep the source location
        # set by the NumPy front's entry points (TracedArray.__array_ufunc__ and
        # __array_function__, whose implementations are adjit's own code down to `bind`): the
        # user's location, found once from the entry's caller, which every equation recorded
        # inside takes instead of walking the implementation's frames to the same place
        self.entry_loc = None
        # record without computing (values None): a transform that computed a graph's results
        # another way (the interpreter tier) records its equations this way (see `recording`)
        self.abstract = False


STATE = _State()


class recording_only:
    """Context manager: `bind` records at traced levels without computing (results' values
    None); operations on plain arrays still compute. For a caller that computes the results of
    what it records another way and sets them on the nodes it hands out."""
    __slots__ = ("prev",)

    def __enter__(self):
        self.prev = STATE.abstract
        STATE.abstract = True

    def __exit__(self, *exc):
        STATE.abstract = self.prev


class new_trace:
    """Context manager opening a trace one level deeper than the current innermost one."""
    __slots__ = ("trace", "kind")

    def __init__(self, kind="trace"):
        self.kind = kind

    def __enter__(self):
        self.trace = Trace(len(STATE.stack), self.kind)
        STATE.stack.append(self.trace)
        return self.trace

    def __exit__(self, *exc):
        self.trace.active = False
        STATE.stack.remove(self.trace)
        return False


# ---------------------------------------------------------------------------------- primitives

class Primitive:
    """One record per primitive: plain data from which the other layers generate their tables.

    shape_rule(*types, **params) -> AType     types of inputs (Lit operands give AType((), dt));
                                              a tuple of ATypes when `nout` > 1
    impl(*arrays, **params) -> np.ndarray     the NumPy reference implementation (a tuple of
                                              arrays when `nout` > 1)
    vjp(ct, *primals, out=out, **params) -> one cotangent (or None) per input, built with ops;
        with `nout` > 1, `ct` and `out` are tuples (a None cotangent: that output is unused)
    jvp(tangents, *primals, out=out, **params) -> tangent of the output (tangents may be None);
        with `nout` > 1, a tuple with one tangent (or None) per output
    batch: the vmap rule; filled from `kind` by ir.batching unless the record gives one
    samples(dtype, rng) -> list of (args, params): inputs for the registry sweep tests

    Plain data read by the generated tables:
    kind      "unary", "binary", "elementwise" (any other elementwise operation), "reduction"
              (param `axes`), "axis" (param `axis`), "structural" (shape ops and kernels, with a
              hand-written batching rule), "effect" (guard), "call" (custom calls)
    nout      number of results (an equation binds that many output variables)
    lowering  how codegen lowers it (codegen/lower.py generates LOWERINGS from it), or None
              when codegen's hand-written table has it (index maps and kernels):
                ("math", fn)            a function of codegen/mathlib.py, on floats
                ("intrinsic", name[, "int_identity"])  an LLVM intrinsic (`name.f32/.f64`) on
                                        floats; integers pass through unchanged if so marked
                ("instr", fop, iop)     one IRBuilder instruction (float op, integer op)
                ("cmp", op)             a comparison (NumPy's NaN rules)
                ("expr", fn)            fn(o, *xs) -> value (a tuple of values when nout > 1),
                                        written with `o.<primitive>(...)` of other lowerable
                                        elementwise primitives and Python numbers
                ("extern", capsule)     SciPy's scalar C function of that name in
                                        scipy.special.cython_special (codegen/special.py)
                ("special", fn)         a function of codegen/special.py (reads params)
    cost      element-operations per element, for the parallel-loop heuristic
    numpy     NumPy ufunc names dispatched to it on traced arrays (unary and binary kinds)
    torch     Tensor method (and torch function) names that apply it
    grad_fn   PyTorch's grad_fn name for those; torch_saves what that node saves ("nothing",
              "result" or "inputs": PyTorch's errors about modified saved tensors)
    fp_warns  `impl` can make NumPy report a floating-point condition (overflow, invalid value,
              division by zero): `bind` runs it with NumPy's reports off, as native code and
              PyTorch run (adjit/_fp.py). False for impls that cannot (data movement,
              comparisons, sign changes), which then pay nothing; tests/test_housekeeping.py
              checks each such claim on special values
    """
    __slots__ = ("name", "shape_rule", "impl", "vjp", "jvp", "batch", "samples", "saves",
                 "smooth", "dtypes", "torch_name", "doc", "kind", "nout", "lowering", "cost",
                 "numpy", "torch", "grad_fn", "torch_saves", "residual_vjp", "fp_warns")

    def __init__(self, name, shape_rule, impl, vjp=None, jvp=None, samples=None, saves=True,
                 smooth=True, dtypes=("f32", "f64"), doc="", *, kind="structural", nout=1,
                 lowering=None, cost=1, numpy=(), torch=(), grad_fn=None, torch_saves="inputs",
                 batch=None, fp_warns=True):
        self.name = name
        self.shape_rule = shape_rule
        self.impl = impl
        self.vjp = vjp
        self.jvp = jvp
        self.batch = batch
        self.samples = samples
        self.saves = saves
        self.smooth = smooth
        self.dtypes = dtypes
        self.doc = doc
        self.kind = kind
        self.nout = nout
        self.lowering = lowering
        self.cost = cost
        self.numpy = tuple(numpy)
        self.torch = tuple(torch)
        self.grad_fn = grad_fn
        self.torch_saves = torch_saves
        self.residual_vjp = None
        self.fp_warns = fp_warns

    def __repr__(self):
        return f"<primitive {self.name}>"

    def __call__(self, *args, **params):
        return bind(self, *args, **params)


REGISTRY: dict[str, Primitive] = {}
# (on_add, on_remove) of each layer that generates a table from the registry (lowering, batching,
# NumPy dispatch, Tensor methods): called for every primitive registered, before and after
_LISTENERS: list = []


def register(prim: Primitive) -> Primitive:
    if prim.name in REGISTRY:
        raise ValueError(f"primitive {prim.name} registered twice")
    REGISTRY[prim.name] = prim
    for add, _ in _LISTENERS:
        add(prim)
    return prim


def unregister(name: str) -> Primitive:
    """Remove a primitive and every table entry generated from it (see `registered`)."""
    prim = REGISTRY.pop(name)
    for _, remove in reversed(_LISTENERS):
        remove(prim)
    _RULES.clear()  # cached shape-rule answers hold the record
    _EAGER.clear()
    TRANSIENT.discard(name)
    return prim


def on_register(add, remove):
    """Subscribe a generated table: `add(prim)` now for every registered primitive and later
    for each new one, `remove(prim)` when one is unregistered."""
    _LISTENERS.append((add, remove))
    for p in list(REGISTRY.values()):
        add(p)


class registered:
    """`with registered(Primitive(...)) as p:` -- a primitive, with everything generated from its
    record, that exists only inside the block (tests add throwaway primitives this way)."""

    def __init__(self, *prims):
        self.prims = prims

    def __enter__(self):
        done = []
        try:
            for p in self.prims:
                register(p)
                done.append(p)
                TRANSIENT.add(p.name)
        except BaseException:
            for p in reversed(done):
                unregister(p.name)
            raise
        return self.prims[0] if len(self.prims) == 1 else self.prims

    def __exit__(self, *exc):
        for p in reversed(self.prims):
            unregister(p.name)
        return False


# names of primitives that exist only inside a `registered` block: code using them is never
# written to (or read from) the disk cache, whose key knows only the code generator's version
TRANSIENT: set = set()


# ---------------------------------------------------------------------------------- bind

# Keyed by id(code): hashing a code object hashes its constants and bytecode every time. An
# entry holds a weak reference to its code, whose callback drops the entry when the code dies
# (a notebook or test suite that defines many functions would otherwise keep every one's code
# alive), so an id is never reused while its entry exists. Per code: (weakref, is it adjit's
# own code, {f_lasti: (filename, lineno)} for user code: f_lineno decodes a table).
_INTERNAL = {}  # this runs on every equation


def _code_entry(c):
    k = id(c)

    def drop(r, k=k):
        e = _INTERNAL.get(k)
        if e is not None and e[0] is r:
            del _INTERNAL[k]

    e = _INTERNAL[k] = (weakref.ref(c, drop), is_adjit_file(c.co_filename), {})
    return e


def user_location(depth=2):
    """(filename, lineno) of the innermost frame outside the adjit package."""
    f = sys._getframe(depth)
    while f is not None:
        c = f.f_code
        e = _INTERNAL.get(id(c))
        if e is None:
            e = _code_entry(c)
        if not e[1]:
            lines = e[2]
            loc = lines.get(f.f_lasti)
            if loc is None:
                loc = lines[f.f_lasti] = (c.co_filename, f.f_lineno)
            return loc
        f = f.f_back
    return None


class NoDerivative:
    """What a vjp rule returns for an operand it has no derivative in (betainc's a and b, as
    JAX): autodiff raises NotImplementedError with `message` only when a derivative flows into
    that operand (an active one); a constant operand differentiates fine."""

    def __init__(self, message):
        self.message = message

    def fail(self):
        raise NotImplementedError(self.message + where_loc())


def where_loc():
    loc = STATE.loc or user_location(3)
    return f" at {loc[0]}:{loc[1]}" if loc else ""


class GuardFailed(Exception):
    """A recorded guard does not hold for new inputs: the caller must retrace."""


def _lit_dtype(args):
    # the last array operand decides (select's predicate comes first and is bool)
    for a in reversed(args):
        ta = type(a)
        if ta is TAPE_NODE or ta is Node:
            return a.type.dtype
        if isinstance(a, np.ndarray):
            return dtype_name(a.dtype)
        if isinstance(a, np.generic):
            return dtype_name(a.dtype)
    return None


def _as_array(a, litdt):
    t = type(a)
    if t is np.ndarray:
        return a
    if t is TAPE_NODE or t is Node:
        return a.val
    if isinstance(a, (bool, int, float, np.generic)):
        return np.asarray(a, DTYPES[litdt] if litdt else None)
    return a


# (shape, NumPy dtype) -> AType: the types of unrecorded results, shared (types are immutable)
_ATYPES: dict = {}


def atype_of(arr) -> AType:
    """The AType of an ndarray, one shared object per (shape, dtype)."""
    key = (arr.shape, arr.dtype)
    t = _ATYPES.get(key)
    if t is None:
        t = AType(arr.shape, arr.dtype)
        if len(_ATYPES) >= 4096:
            _ATYPES.clear()
        _ATYPES[key] = t
    return t


# signature -> (output AType, the signature). A signature is (prim, shape_rule, for each operand
# its shape and dtype, or None and (dtype, type, value) for a literal, then the params). A shape
# rule is a pure function of its input types and parameters, and every equation of a training
# loop asks the same question every step: the answer is one shared (immutable) AType, and the
# signature one shared tuple (Rec.sig, which the eager backward's structure key is made of).
_RULES: dict = {}
_LITS: dict = {}  # literal signature -> (Lit, read-only array of its value)
_UNSET = object()
_NDARRAY = np.ndarray  # (a global read, not np's attribute, per operand of every bind)


def bind(prim: Primitive, *args, **params):
    """Apply a primitive: compute its value and record it at the deepest active level."""
    trace = None
    rg = False
    plain = True  # every operand an ndarray (the eager tier's derivative rules)
    for a in args:
        ta = type(a)
        if ta is _NDARRAY:
            continue
        plain = False
        if ta is TAPE_NODE or ta is Node:
            t = a.trace
            if not t.active:
                continue
            if trace is None or t.level > trace.level:
                trace = t
            if a.requires_grad:
                rg = True
    if trace is EAGER:
        if rg and STATE.grad_enabled:
            return _record_eager(prim, args, params)
    elif trace is None and not args and len(STATE.stack) > 1:
        trace = STATE.stack[-1]  # a constant-maker (full, iota) inside a trace is recorded
    if trace is None or trace is EAGER:
        # Nothing to record: a plain NumPy computation.
        if plain:
            vals = args
        else:
            vals = _lit_pair(prim, args) if trace is None and len(args) == 2 else None
            if vals is None:
                litdt = _lit_dtype(args)
                vals = [_as_array(a, litdt) for a in args]
        if prim.fp_warns:
            token = _fp_set(FP_QUIET)  # nan/inf silently, as native code (adjit/_fp.py)
            try:
                out = prim.impl(*vals, **params)
            finally:
                _fp_reset(token)
        else:
            out = prim.impl(*vals, **params)
        if type(out) is not _NDARRAY and out is not None:
            if prim.nout != 1:  # several results: a tuple of them
                outs = tuple(np.asarray(o) for o in out)
                if trace is None and not any(isinstance(a, Node) for a in args):
                    return outs
                return tuple(TAPE_NODE(o, atype_of(o), None, EAGER) for o in outs)
            out = np.asarray(out)
        if plain:
            return out
        if trace is None:
            for a in args:
                if isinstance(a, Node):
                    break
            else:
                return out
        return TAPE_NODE(out, atype_of(out), None, EAGER)
    return _record(prim, trace, args, params)


def _lit_array(dt, v):
    """The shared read-only array of Python number `v` as a literal next to an array of NumPy
    dtype `dt` (`_as_array(v, dtype name)`'s value), or None for a dtype the IR lacks."""
    name = NAME_OF.get(dt)
    if name is None:
        return None
    tv = type(v)
    lk = (name, tv, v if tv is not float or (v == v and v) else float_bits(v))
    hit = _LITS.get(lk)
    if hit is None:
        arr = np.asarray(v, DTYPES[name])
        arr.flags.writeable = False
        hit = (Lit(v, name), arr)
        if len(_LITS) >= 1024:
            _LITS.clear()
        _LITS[lk] = hit
    return hit[1]


def _lit_pair(prim, args):
    """The operands of a binary elementwise primitive on an ndarray and a Python number, the
    number as its shared array (a ufunc's result never aliases an operand); else None."""
    if prim.kind != "binary":
        return None
    a, b = args
    ta, tb = type(a), type(b)
    if ta is np.ndarray and (tb is float or tb is int):
        lv = _lit_array(a.dtype, b)
        return None if lv is None else (a, lv)
    if tb is np.ndarray and (ta is float or ta is int):
        lv = _lit_array(b.dtype, a)
        return None if lv is None else (lv, b)
    return None


def _record(prim, trace, args, params):
    st = STATE  # (a thread-local: read once)
    na = len(args)
    a = args[0] if na else None
    ta = type(a)
    if na == 2 and (ta is TAPE_NODE or ta is Node) and (
            type(args[1]) is TAPE_NODE or type(args[1]) is Node):
        # two recorded operands (most equations): the loop below, unrolled
        b = args[1]
        t, u = a.trace, b.trace
        if (t is not trace and t.level > trace.level) or (u is not trace and
                                                          u.level > trace.level):
            raise AssertionError("value of an inner trace escaped")  # pragma: no cover
        inputs = [a, b]
        vals = (a.val, b.val)
        abstract = vals[0] is None or vals[1] is None
        t, u = a.type, b.type
        key = (prim, prim.shape_rule, t.shape, t.dtype, u.shape, u.dtype,
               tuple(params.items())) if params else \
            (prim, prim.shape_rule, t.shape, t.dtype, u.shape, u.dtype)
    elif na == 1 and (ta is TAPE_NODE or ta is Node):
        t = a.trace
        if t is not trace and t.level > trace.level:
            raise AssertionError("value of an inner trace escaped")  # pragma: no cover
        inputs = [a]
        vals = (a.val,)
        abstract = vals[0] is None
        t = a.type
        key = (prim, prim.shape_rule, t.shape, t.dtype, tuple(params.items())) if params \
            else (prim, prim.shape_rule, t.shape, t.dtype)
    else:
        inputs = []
        vals = []
        key = [prim, prim.shape_rule]
        abstract = False
        litdt = _UNSET
        for a in args:
            ta = type(a)
            if ta is TAPE_NODE or ta is Node:
                t = a.trace
                if t is not trace and t.level > trace.level:
                    raise AssertionError("value of an inner trace escaped")  # pragma: no cover
                inputs.append(a)
                t = a.type
                key.append(t.shape)
                key.append(t.dtype)
                v = a.val
                if v is None:
                    abstract = True
                vals.append(v)
                continue
            if litdt is _UNSET:  # (_lit_dtype inlined: one call less per recorded literal)
                litdt = None
                for b in reversed(args):
                    tb = type(b)
                    if tb is TAPE_NODE or tb is Node:
                        litdt = b.type.dtype
                        break
                    if isinstance(b, (np.ndarray, np.generic)):
                        litdt = dtype_name(b.dtype)
                        break
            if ta is float or ta is int or ta is bool:
                v = a
            elif isinstance(a, np.ndarray) or (isinstance(a, np.generic) and litdt is None):
                arr = np.asarray(a)
                n = TAPE_NODE(arr, atype_of(arr), None, EAGER)
                inputs.append(n)
                key.append(n.type.shape)
                key.append(n.type.dtype)
                vals.append(arr)
                continue
            elif isinstance(a, (bool, int, float, np.generic)):
                v = a.item() if isinstance(a, np.generic) else a
            else:
                raise TypeError(f"{prim.name}: unsupported operand of type {type(a).__name__}")
            # a literal: its value is part of the signature (-0.0 and nan by their bits; 1, 1.0
            # and True apart), and one Lit and one read-only array serve every equal literal
            tv = type(v)
            lk = (litdt, tv, v if tv is not float or (v == v and v) else float_bits(v))
            hit = _LITS.get(lk)
            if hit is None:
                arr = np.asarray(v, DTYPES[litdt]) if litdt else np.asarray(v)
                arr.flags.writeable = False
                hit = (Lit(v, litdt), arr)
                if len(_LITS) >= 1024:
                    _LITS.clear()
                _LITS[lk] = hit
            inputs.append(hit[0])
            vals.append(hit[1])
            key.append(None)
            key.append(lk)
        if params:
            key.append(tuple(params.items()))
        key = tuple(key)
    try:
        hit = _RULES.get(key)
    except TypeError:  # an unhashable parameter value: no caching
        key = hit = None
    if hit is None:
        typ = prim.shape_rule(*[i.type for i in inputs], **params)
        if key is not None and (type(typ) is AType or type(typ) is tuple):
            if len(_RULES) >= 8192:
                _RULES.clear()
            _RULES[key] = (typ, key)
    else:
        typ, key = hit
    if abstract or (trace is not EAGER and st.abstract):
        out = None
    else:
        if prim.fp_warns:
            token = FP_STATE.set(FP_QUIET)
            try:
                out = prim.impl(*vals, **params) if params else prim.impl(*vals)
            finally:
                FP_STATE.reset(token)
        else:
            out = prim.impl(*vals, **params) if params else prim.impl(*vals)
        if type(out) is not _NDARRAY and type(typ) is not tuple:
            out = np.asarray(out)
    loc = st.loc
    if loc is None:
        loc = st.entry_loc
        if loc is None:
            loc = user_location(3)
    if type(typ) is tuple:
        return _record_outputs(prim, trace, inputs, params, loc, typ, out)
    # (Rec.__init__ and Node.__init__ written out: a class call runs __init__ in a frame of
    # its own, ~0.1 us of every equation; keep these in step with those methods)
    rec = _new(Rec)
    rec.prim = prim
    rec.inputs = inputs
    rec.params = params
    rec.loc = loc
    rec.seq = next(_seq)
    rec.sig = key
    if trace is EAGER:
        if prim.name == "guard":
            trace.guards.append(rec)
            return out
        node = TAPE_NODE(out, typ, rec, trace, True)
        if out.base is not None:
            node.view_of(inputs)  # a NumPy view of an operand's storage (see TapeNode)
        return node
    if prim.name == "guard":
        trace.guards.append(rec)
        return out
    node = _new(Node)
    node.val = out
    node.type = typ
    node.rec = rec
    node.trace = trace
    node.requires_grad = True
    ns = trace.nodes
    if ns is not None:
        ns.append(node)
    if not st.grad_enabled and prim.name != "stop_gradient":
        # no_grad inside a transform: keep the value on the trace (so guards computed from it can
        # be re-checked when replayed) but let no derivative through.
        return bind(REGISTRY["stop_gradient"], node)
    return node


# The eager tape's fast path (`_record_eager`): a key made of the primitive, for each operand
# the id of a tape value's AType or the type and value of a Python number (a zero or nan float
# by its bits, as `_record` keys it: -0.0 and 0.0 apart), and the params, mapped to
# what `_record` derived for that signature: (result type, signature, then for each literal
# operand its Lit and read-only array, then the operands' ATypes). The entry holds those
# ATypes, so an id in a live key always names the same object.
_EAGER: dict = {}


def _record_eager(prim, args, params):
    """`_record` at the eager tape, for the common operand patterns (a tape value, or two, one
    of them possibly a Python number): one dictionary lookup stands for the operand loop, the
    literal lookup and the shape rule. The equation it records is the one `_record` records."""
    n = len(args)
    if n == 2:
        a, b = args
        ta, tb = type(a), type(b)
        if ta is TAPE_NODE:
            if tb is TAPE_NODE:
                key = (prim, 0, id(a.type), id(b.type), tuple(params.items()) if params else None)
            elif tb is float or tb is int:
                key = (prim, 1, id(a.type), tb,
                       b if tb is int or b == b and b else float_bits(b),
                       tuple(params.items()) if params else None)
            else:
                return _record(prim, EAGER, args, params)
        elif ta is float or ta is int:
            if tb is not TAPE_NODE:
                return _record(prim, EAGER, args, params)
            key = (prim, 2, ta, a if ta is int or a == a and a else float_bits(a), id(b.type),
                   tuple(params.items()) if params else None)
        else:
            return _record(prim, EAGER, args, params)
    elif n == 1:
        a = args[0]
        if type(a) is not TAPE_NODE:
            return _record(prim, EAGER, args, params)
        key = (prim, 3, id(a.type), tuple(params.items()) if params else None)
    else:  # (select): per operand an id, or a number's type then value (a type is no int)
        key = [prim, 4]
        for a in args:
            ta = type(a)
            if ta is TAPE_NODE:
                key.append(id(a.type))
            elif ta is float or ta is int:
                key.append(ta)
                key.append(a if ta is int or a == a and a else float_bits(a))
            else:
                return _record(prim, EAGER, args, params)
        key.append(tuple(params.items()) if params else None)
        key = tuple(key)
    try:
        hit = _EAGER.get(key)
    except TypeError:  # an unhashable parameter value
        return _record(prim, EAGER, args, params)
    if hit is None:
        return _learn(prim, args, params, key)
    pat = key[1]
    if pat == 0:
        inputs = [a, b]
        va, vb = a.val, b.val
        if va is None or vb is None or a.trace is not EAGER or b.trace is not EAGER:
            return _record(prim, EAGER, args, params)
    elif pat == 1:
        inputs = [a, hit[2]]
        va, vb = a.val, hit[3]
        if va is None or a.trace is not EAGER:
            return _record(prim, EAGER, args, params)
    elif pat == 2:
        inputs = [hit[2], b]
        va, vb = hit[3], b.val
        if vb is None or b.trace is not EAGER:
            return _record(prim, EAGER, args, params)
    elif pat == 3:
        inputs = [a]
        va = a.val
        if va is None or a.trace is not EAGER:
            return _record(prim, EAGER, args, params)
    else:
        inputs, vals, k = [], [], 2
        for a in args:
            if type(a) is TAPE_NODE:
                if a.val is None or a.trace is not EAGER:
                    return _record(prim, EAGER, args, params)
                inputs.append(a)
                vals.append(a.val)
            else:
                inputs.append(hit[k])
                vals.append(hit[k + 1])
                k += 2
        return _finish(prim, inputs, vals, params, hit)
    impl = prim.impl
    if prim.fp_warns:
        token = _fp_set(FP_QUIET)  # nan/inf silently, as native code (adjit/_fp.py)
        try:
            if pat == 3:
                out = impl(va, **params) if params else impl(va)
            else:
                out = impl(va, vb, **params) if params else impl(va, vb)
        finally:
            _fp_reset(token)
    elif pat == 3:
        out = impl(va, **params) if params else impl(va)
    else:
        out = impl(va, vb, **params) if params else impl(va, vb)
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    loc = STATE.loc
    if loc is None:
        loc = user_location(3)
    node = TAPE_NODE(out, hit[0], Rec(prim, inputs, params, loc, hit[1]), EAGER, True)
    if out.base is not None:
        node.view_of(inputs)  # a NumPy view of an operand's storage (see TapeNode)
    return node


# for the Tensor front's fast paths, which call it directly (no `bind`: no search for the
# deepest trace) when every operand is a tape value or a Python number, some tape value
# requires grad, and grad mode is on -- the case in which `bind` calls it
record_eager = _record_eager


def _finish(prim, inputs, vals, params, hit):
    """The rest of `_record_eager` for three or more operands."""
    if prim.fp_warns:
        token = _fp_set(FP_QUIET)
        try:
            out = prim.impl(*vals, **params)
        finally:
            _fp_reset(token)
    else:
        out = prim.impl(*vals, **params)
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    loc = STATE.loc
    if loc is None:
        loc = user_location(4)
    node = TAPE_NODE(out, hit[0], Rec(prim, inputs, params, loc, hit[1]), EAGER, True)
    if out.base is not None:
        node.view_of(inputs)
    return node


def _learn(prim, args, params, key):
    """`_record`, then the fast path's entry for its signature (one-result equations only)."""
    node = _record(prim, EAGER, args, params)
    if type(node) is not TAPE_NODE or node.trace is not EAGER or node.rec is None:
        return node
    rec = node.rec
    if rec.sig is None or type(node.type) is not AType or type(rec) is not Rec or \
            prim.name == "guard" or len(rec.inputs) != len(args):
        return node
    entry = [node.type, rec.sig]
    for i in rec.inputs:
        if type(i) is Lit:
            arr = np.asarray(i.value, DTYPES[i.dtype]) if i.dtype else np.asarray(i.value)
            arr.flags.writeable = False
            entry += [i, arr]
        elif type(i) is not TAPE_NODE:
            return node
    entry += [i.type for i in args if type(i) is TAPE_NODE]  # (keeps the ids in `key` alive)
    if len(_EAGER) >= 8192:
        _EAGER.clear()
    _EAGER[key] = tuple(entry)
    return node


def _record_outputs(prim, trace, inputs, params, loc, types, out):
    """The equation of a primitive with several results: a tuple of Nodes, one per result."""
    if len(types) != prim.nout:
        raise TypeError(f"{prim.name}: the shape rule gave {len(types)} types for {prim.nout} "
                        "results")
    # no shared signature: the eager backward's structure key adds each result's position
    rec = MultiRec(prim, inputs, params, loc, None)
    rec.types = types
    vals = [None] * len(types) if out is None else [np.asarray(o) for o in out]
    cls = TAPE_NODE if trace is EAGER else Node
    nodes = tuple(cls(v, t, rec, trace, True) for v, t in zip(vals, types))
    rec.outs = tuple(weakref.ref(n) for n in nodes)
    if trace.nodes is not None:
        trace.nodes.extend(nodes)
    if trace is not EAGER and not STATE.grad_enabled:
        return tuple(bind(REGISTRY["stop_gradient"], n) for n in nodes)
    return nodes


def const_node(arr) -> Node:
    arr = np.asarray(arr)
    return TAPE_NODE(arr, atype_of(arr), None, EAGER)
