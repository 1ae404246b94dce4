"""IR passes, each Graph -> Graph: dce, cse, fold_constants, simplify, absorb_negations, and
`optimize` (all of them to a fixed point).

A pass never mutates its input: it builds new equations (sharing the Var objects) and returns a
new Graph. Invars, constvars and their bindings (`consts`) are kept exactly as they are, all of
them, even unused ones: compiled callers pass consts by position, so dropping one would shift the
rest. A `const #i` value is bound at run time and is never folded into the code.

    >>> from adjit.ir import parse_graph, print_graph
    >>> g = parse_graph("def f(a: f64[3]) -> f64[3]:\\n  b: f64[3] = mul a 1.0\\n"
    ...                 "  c: f64[3] = neg b\\n  d: f64[3] = neg c\\n  return d\\n")
    >>> print(print_graph(optimize(g)), end="")
    def f(a: f64[3]) -> f64[3]:
      return a
"""
from __future__ import annotations

import math

import numpy as np

from .core import Lit, REGISTRY
from .graph import Eqn, Graph, Var
from .types import AType

# Folding runs the NumPy impl on materialised constants: above this many elements a constant
# stays as code (a `full` of a large shape costs nothing until it is computed).
FOLD_LIMIT = 1 << 12


def _rebuild(g: Graph, rewrite) -> Graph:
    """Walk `g`'s equations in order with their inputs renamed so far; `rewrite(e, ins, defs)`
    returns None (keep e), a list of equations to emit instead (possibly empty), a Var that
    replaces e's output everywhere after it, or a tuple of Vars replacing e's several outputs.
    `defs` maps each emitted Var to its equation."""
    sub, defs, eqns = {}, {}, []

    def look(x):
        return x if isinstance(x, Lit) else sub.get(x, x)

    for e in g.eqns:
        ins = [look(x) for x in e.inputs]
        r = rewrite(e, ins, defs)
        if isinstance(r, Var):
            # a Lit never replaces a Var: graph outputs and every operand slot need a full type
            assert r.type == e.outvars[0].type, (e.prim.name, r.type, e.outvars[0].type)
            sub[e.outvars[0]] = r
            continue
        if isinstance(r, tuple):  # a multi-output equation replaced by an earlier one
            for v, w in zip(e.outvars, r):
                assert v.type == w.type, (e.prim.name, w.type, v.type)
                sub[v] = w
            continue
        if r is None:  # unchanged: the same equation object (optimize's fixpoint test)
            r = [e] if all(a is b for a, b in zip(ins, e.inputs)) else \
                [Eqn(e.prim, ins, e.params, e.outvars, e.loc)]
        for n in r:
            eqns.append(n)
            for v in n.outvars:
                defs[v] = n
    return Graph(g.invars, g.constvars, eqns, [look(v) for v in g.outvars], g.consts, g.name)


# ----------------------------------------------------------------------------------- DCE

def dce(g: Graph) -> Graph:
    """Drop equations whose results nothing uses. Guards are effects: they always stay, and so
    does everything they read."""
    live = {v for v in g.outvars if isinstance(v, Var)}
    keep = []
    for e in reversed(g.eqns):
        if e.prim.name == "guard" or any(v in live for v in e.outvars):
            keep.append(e)
            live.update(x for x in e.inputs if isinstance(x, Var))
    keep.reverse()
    return Graph(g.invars, g.constvars, keep, g.outvars, g.consts, g.name)


# ----------------------------------------------------------------------------------- CSE

def _operand_key(x):
    # repr, not ==: 0.0 == -0.0 and 1 == 1.0 == True, but they are different literals
    if isinstance(x, Lit):
        return ("lit", x.dtype, type(x.value).__name__, repr(x.value))
    return ("var", id(x))


def _key(prim, ins, params):
    return (prim.name, repr(sorted(params.items())), tuple(_operand_key(x) for x in ins))


def cse(g: Graph) -> Graph:
    """Merge equations with the same primitive, params and inputs; a repeated guard (same
    predicate, same expectation) is dropped since the first one already checked it."""
    seen = {}

    def rewrite(e, ins, defs):
        k = _key(e.prim, ins, e.params)
        if k in seen:
            return [] if e.prim.name == "guard" else seen[k]
        seen[k] = (e.outvars[0] if len(e.outvars) == 1 else tuple(e.outvars)) if e.outvars \
            else None
        return None

    return _rebuild(g, rewrite)


# ---------------------------------------------------------------------- constant folding

def _as_full(r: np.ndarray, out: Var, loc):
    """`full` for a uniform (the same bits everywhere), finite array, else None (a non-uniform
    constant has no IR form but its equations; non-finite values stay computed so nan/inf are
    never params)."""
    if r.size and not (np.all(r == r.flat[0]) and np.all(np.isfinite(r))):
        return None
    if r.size and r.dtype.kind == "f" and not np.all(np.signbit(r) == np.signbit(r.flat[0])):
        return None  # 0.0 == -0.0: a mix of both signs of zero is not one `full`
    value = (r.flat[0] if r.size else r.dtype.type(0)).item()
    return Eqn(REGISTRY["full"], [], {"shape": out.type.shape, "value": value,
                                      "dtype": out.type.dtype}, [out], loc)


def _lit_fits(e, ins, k) -> bool:
    """May the literal ins[k] stand in that slot? The text form gives a literal the dtype of the
    last variable operand (as `bind` does), and the shape rule must still give the same type."""
    if e.prim.name == "guard":
        return False
    vars_ = [x for x in ins if isinstance(x, Var)]
    if not vars_ or vars_[-1].type.dtype != ins[k].dtype:
        return False
    try:
        return e.prim.shape_rule(*[x.type for x in ins], **e.params) == e.outvars[0].type
    except Exception:
        return False


def fold_constants(g: Graph) -> Graph:
    """Evaluate equations whose inputs are all literals or `full` values with the primitive's
    impl; a uniform result becomes a `full`, a scalar one a literal wherever a slot allows."""
    known = {}  # Var -> its value, for `full` results (never constvars: bound at run time)

    def rewrite(e, ins, defs):
        if len(e.outvars) != 1:
            return None  # a guard (folding it would check it now instead of at run time), or
            # several results (no `full` form for a tuple)
        out = e.outvars[0]
        if e.prim.name == "full":
            if out.type.size <= FOLD_LIMIT:
                known[out] = e.prim.impl(**e.params)
            return None
        vals = [x.array() if isinstance(x, Lit) else known.get(x) for x in ins]
        if ins and all(v is not None for v in vals) and out.type.size <= FOLD_LIMIT:
            try:
                with np.errstate(all="ignore"):  # a nan or inf result is not folded anyway
                    r = np.asarray(e.prim.impl(*vals, **e.params))
            except Exception:  # let it fail at run time, where the error has context
                r = None
            if r is not None and AType(r.shape, r.dtype) == out.type:
                f = _as_full(r, out, e.loc)
                if f is not None:
                    known[out] = r
                    return [f]
        new = list(ins)
        for k, x in enumerate(ins):
            if isinstance(x, Var) and x.type.shape == () and x in known:
                trial = new[:k] + [Lit(known[x].item(), x.type.dtype)] + new[k + 1:]
                if _lit_fits(e, trial, k):
                    new = trial
        if all(a is b for a, b in zip(new, ins)):
            return None
        return [Eqn(e.prim, new, e.params, e.outvars, e.loc)]

    return _rebuild(g, rewrite)


# ------------------------------------------------------------------ algebraic simplification

def _value(x, defs):
    """The scalar an operand is known to hold everywhere (a literal or a `full`, or a
    broadcast or reshape of one: every element is that value), else None."""
    for _ in range(8):
        if isinstance(x, Lit):
            return None if isinstance(x.value, bool) else x.value
        e = defs.get(x)
        if e is None:
            return None
        if e.prim.name == "full" and not isinstance(e.params["value"], bool):
            return e.params["value"]
        if e.prim.name not in ("broadcast_in_dim", "reshape"):
            return None
        x = e.inputs[0]
    return None


def _producer(x, defs, name):
    """The `name` equation that defines x, if it reads a variable (a literal operand of a shape
    op has no dtype of its own in the text, so such an equation is left alone)."""
    e = defs.get(x) if isinstance(x, Var) else None
    if e is None or e.prim.name != name or not isinstance(e.inputs[0], Var):
        return None
    return e


def _same(x, out):
    """x itself may replace out: a Var of exactly out's type."""
    return x if isinstance(x, Var) and x.type == out.type else None


_FLOATS = ("f32", "f64")


def _is_zero(v):
    return v is not None and v == 0


def _pos_zero(v):
    """v is +0.0 (an int 0 is +0.0 in a float slot)."""
    return v is not None and v == 0 and math.copysign(1.0, v) > 0


def _neg_zero(v):
    return v is not None and v == 0 and math.copysign(1.0, v) < 0


def _plus_zero(x, defs):
    """x is certainly `a + 0.0` (never -0.0: -0.0 + 0.0 is 0.0), as the exact forms of the
    identity and outer products end."""
    e = defs.get(x) if isinstance(x, Var) else None
    if e is None or e.prim.name != "add" or x.type.dtype not in _FLOATS:
        return False
    return any(_pos_zero(_value(a, defs)) for a in e.inputs)


# elementwise kinds whose result at each index is a function of the operands at that index alone
_ELEMENTWISE = ("unary", "binary", "elementwise")


def _sink_shape_op(e, ins, defs, shape_op):
    """op(S x, S y, literals...) -> S(op(x, y, ...)) for S a broadcast_in_dim (or reshape) when
    every variable operand is an S with the same parameters of operands of one shape: each
    result element is op of the same operand values, so the bits are the same, and the
    operation runs on the smaller shape (W2's isnan test of a row max: `ne m m` on the
    broadcast row maxima) or next to the operands' other shape operations, which then merge."""
    if e.prim.kind not in _ELEMENTWISE or e.prim.name in ("bitcast_convert_type", "pow"):
        return None  # pow: NumPy squares (0.5: sqrt) for an exponent broadcast along its loop
        # (stride 0) and calls pow for one laid out in memory: moving the broadcast changes bits
    out = e.outvars[0]
    inner, params = [], None
    for x in ins:
        if isinstance(x, Lit):
            inner.append(x)
            continue
        b = _producer(x, defs, shape_op)
        if b is None:
            return None
        if params is None:
            params, shape = b.params, b.inputs[0].type.shape
        elif b.params != params or b.inputs[0].type.shape != shape:
            return None
        inner.append(b.inputs[0])
    if params is None or tuple(params["shape"]) != tuple(out.type.shape):
        return None
    try:
        t = e.prim.shape_rule(*[x.type for x in inner], **e.params)
    except Exception:
        return None
    if t != AType(shape, out.type.dtype):
        return None
    v = Var(t)
    return [Eqn(e.prim, inner, e.params, [v], e.loc),
            Eqn(REGISTRY[shape_op], [v], params, [out], e.loc)]


def _bcast_of_reshape(inner, p):
    """The dims that broadcast the operand x of `inner` (a reshape that only inserts or drops
    size-1 axes) as broadcast_in_dim[p] broadcasts the reshape's result, or None: x's other
    axes keep their targets, a size-1 axis of x takes a free axis between its neighbours'."""
    xs, ys = inner.inputs[0].type.shape, inner.outvars[0].type.shape
    if [d for d in xs if d != 1] != [d for d in ys if d != 1]:
        return None
    targets = [d for d, n in zip(p["dims"], ys) if n != 1]  # x's non-1 axes, in order
    used = set(targets)
    dims, k, prev = [], 0, -1
    for j, n in enumerate(xs):
        if n != 1:
            d = targets[k]
            k += 1
        else:
            nxt = targets[k] if k < len(targets) else len(p["shape"])
            d = next((c for c in range(prev + 1, nxt) if c not in used), None)
            if d is None:
                return None
            used.add(d)
        dims.append(d)
        prev = d
    return tuple(dims)


def is_identity(x, defs):
    """Whether x is certainly an n x n identity matrix as `ops.eye` records it (reshape[(n, n)]
    of pad[interior=n] of a `full` of ones: the ones n + 1 apart, zeros between)."""
    r = _producer(x, defs, "reshape")
    if r is None or len(x.type.shape) != 2 or x.type.shape[0] != x.type.shape[1]:
        return False
    n = x.type.shape[0]
    pd = _producer(r.inputs[0], defs, "pad")
    if pd is None or (tuple(pd.params["low"]), tuple(pd.params["high"]),
                      tuple(pd.params["interior"])) != ((0,), (0,), (n,)):
        return False
    one = pd.inputs[0]
    return isinstance(one, Var) and one.type.shape == (n,) and _value(one, defs) == 1


def _dot_identity(e, ins, defs, out):
    """dot_general of a matrix operand and an identity matrix -> the operand, its contracted
    axis moved where the identity's free axis lands (a transpose, or nothing), with the bits
    of the product NumPy (BLAS) computes. Each result is x[.., j] * 1 plus the products of the
    fibre's other elements with 0, summed from +0.0: for integers that is x; for floats it is
    x + 0.0 (-0.0 becomes 0.0), except that a non-finite element k (inf * 0 is nan) makes
    every other result of its fibre nan. `_exact_identity_product` computes that elementwise:
    no GEMM, and fusable."""
    (lc, rc), (lb, rb) = e.params["contract"], e.params["batch"]
    if lb or rb or len(lc) != 1 or not all(isinstance(x, Var) for x in ins):
        return None
    x, y = ins
    if is_identity(y, defs):  # out = x's free axes, then the identity's free axis (= c)
        c, nd = lc[0], len(x.type.shape)
        perm, src = tuple([a for a in range(nd) if a != c] + [c]), x
    elif is_identity(x, defs):  # out = the identity's free axis (= c), then y's free axes
        c, nd = rc[0], len(y.type.shape)
        perm, src = tuple([c] + [a for a in range(nd) if a != c]), y
    else:
        return None
    eqns = []
    if src.type.dtype in _FLOATS:
        src = _exact_identity_product(src, c, e.loc, eqns)
    if perm == tuple(range(nd)):
        if not eqns:
            return _same(src, out)
        eqns[-1] = Eqn(eqns[-1].prim, eqns[-1].inputs, eqns[-1].params, [out], e.loc)
        return eqns
    return eqns + [Eqn(REGISTRY["transpose"], [src], {"perm": perm}, [out], e.loc)]


def _exact_identity_product(x, c, loc, eqns):
    """x + q with q = nan where another element of x's fibre along axis c is not finite, else
    +0.0: the bits of the product of x with an identity matrix over axis c (see
    `_dot_identity`), in six elementwise operations and a reduction. n = fmin(x - x, 1) is 1
    for a non-finite element (x - x is nan; fmin takes the number) and 0 for a finite one; the
    fibre's count of them minus the element's own is 0 or more, and sqrt(n - count) is +0.0
    for 0, nan for more (IEEE sqrt: the same bits in every tier); x + (+0.0) gives 0.0 for
    -0.0 as the sum from +0.0 does."""
    t, dt = x.type, x.type.dtype

    def emit(name, ins, params, typ):
        v = Var(typ)
        eqns.append(Eqn(REGISTRY[name], ins, params, [v], loc))
        return v
    zero_or_nan = emit("sub", [x, x], {}, t)  # inf - inf and nan - nan are nan, else +0.0
    own = emit("fmin", [zero_or_nan, Lit(1.0, dt)], {}, t)
    kept = tuple(a for a in range(len(t.shape)) if a != c)
    count = emit("reduce_sum", [own], {"axes": (c,)}, AType(tuple(t.shape[a] for a in kept), dt))
    counts = emit("broadcast_in_dim", [count], {"shape": t.shape, "dims": kept}, t)
    others = emit("sub", [own, counts], {}, t)  # minus the non-finite elements besides this one
    q = emit("sqrt", [others], {}, t)
    return emit("add", [x, q], {}, t)


def _simplify_eqn(e, ins, defs):
    if len(e.outvars) != 1:
        return None
    # the identities first (`mul (broadcast b) 1.0` is the broadcast, not a product to move)
    r = _identities(e, ins, defs)
    if r is None:
        r = _sink_shape_op(e, ins, defs, "broadcast_in_dim") or \
            _sink_shape_op(e, ins, defs, "reshape")
    return r


def _identities(e, ins, defs):
    name, p = e.prim.name, e.params
    out = e.outvars[0]
    val = [_value(x, defs) for x in ins]
    if name == "mul":  # x*0 stays: it is nan for x = nan or inf
        return (_same(ins[0], out) if val[1] == 1 else None) or \
            (_same(ins[1], out) if val[0] == 1 else None)
    if name == "add":  # floats: x + (-0.0) is x for every x; x + 0.0 is 0.0 for x = -0.0
        flt = out.type.dtype in _FLOATS
        zero = _neg_zero if flt else _is_zero
        r = (_same(ins[0], out) if zero(val[1]) else None) or \
            (_same(ins[1], out) if zero(val[0]) else None)
        if r is None and flt:  # (x + 0.0) + 0.0 is x + 0.0: x + 0.0 is never -0.0
            for k in (0, 1):
                if _pos_zero(val[1 - k]) and _plus_zero(ins[k], defs):
                    return _same(ins[k], out)
        return r
    if name == "sub":  # floats: x - 0.0 is x for every x; x - (-0.0) is x + 0.0
        zero = _pos_zero if out.type.dtype in _FLOATS else _is_zero
        return _same(ins[0], out) if zero(val[1]) else None
    if name == "div":
        return _same(ins[0], out) if val[1] == 1 else None
    if name == "pow":
        # x**1 and x**0 are exact in any pow (x and 1 are representable: a result within an ulp
        # is them); x**2 is x*x only where NumPy squares: a scalar exponent (a literal), not an
        # array of twos (its pow rounds x**2 on its own: up to an ulp away)
        if val[1] == 1:
            return _same(ins[0], out)
        if val[1] == 0 and out.type.dtype in _FLOATS:  # x**0 is 1, nan and inf too
            return [Eqn(REGISTRY["full"], [], {"shape": out.type.shape, "value": 1.0,
                                               "dtype": out.type.dtype}, [out], e.loc)]
        if val[1] == 2 and isinstance(ins[0], Var) and isinstance(ins[1], Lit):
            return [Eqn(REGISTRY["mul"], [ins[0], ins[0]], {}, [out], e.loc)]
        return None
    if name == "neg":
        inner = _producer(ins[0], defs, "neg")
        return _same(inner.inputs[0], out) if inner else None
    if name == "dot_general":
        return _dot_identity(e, ins, defs, out) or _outer_product(e, ins, out)
    if name == "convert_element_type":
        return _same(ins[0], out)
    if name == "reshape":
        inner = _producer(ins[0], defs, "reshape")
        if inner:
            x = inner.inputs[0]
            return _same(x, out) or [Eqn(e.prim, [x], p, [out], e.loc)]
        return _same(ins[0], out)
    if name == "transpose":
        inner = _producer(ins[0], defs, "transpose")
        if inner:
            perm = tuple(inner.params["perm"][j] for j in p["perm"])
            x = inner.inputs[0]
            if perm == tuple(range(len(perm))):
                return _same(x, out)
            return [Eqn(e.prim, [x], {"perm": perm}, [out], e.loc)]
        return None
    if name == "broadcast_in_dim":
        if tuple(p["dims"]) == tuple(range(len(p["shape"]))) and _same(ins[0], out):
            return ins[0]  # same shape, axes in place: the identity
        inner = _producer(ins[0], defs, "broadcast_in_dim")
        if inner:
            dims = tuple(p["dims"][d] for d in inner.params["dims"])
            return [Eqn(e.prim, [inner.inputs[0]], {"shape": p["shape"], "dims": dims}, [out],
                        e.loc)]
        inner = _producer(ins[0], defs, "reshape")
        if inner:  # a reshape that only adds or drops size-1 axes: broadcast its operand
            dims = _bcast_of_reshape(inner, p)
            if dims is not None:
                return [Eqn(e.prim, [inner.inputs[0]], {"shape": p["shape"], "dims": dims},
                            [out], e.loc)]
    return None


def _outer_product(e, ins, out):
    """A dot_general whose contracted axes all have extent 1 (an outer product, batched over
    leading batch axes) -> mul of two broadcasts: elementwise, so fusion can inline it into
    its consumer instead of a GEMM writing a buffer. Each result is the one product summed
    from +0.0, as BLAS and NumPy's own loops compute it: x*y + 0.0 for floats (a -0.0 product
    gives 0.0), x*y for integers."""
    (lc, rc), (lb, rb) = e.params["contract"], e.params["batch"]
    x, y = ins
    if not (isinstance(x, Var) and isinstance(y, Var)):
        return None
    xs, ys = x.type.shape, y.type.shape
    nb = len(lb)
    if any(xs[a] != 1 for a in lc) or tuple(lb) != tuple(range(nb)) or \
            tuple(rb) != tuple(range(nb)):
        return None
    xk = [a for a in range(len(xs)) if a not in lc]
    yk = [a for a in range(len(ys)) if a not in rc]
    shape, dt = out.type.shape, out.type.dtype
    nxf = len(xk) - nb
    eqns = []

    def operand(v, keep, dims):
        kept = tuple(v.type.shape[a] for a in keep)
        if kept != v.type.shape:
            r = Var(AType(kept, dt))
            eqns.append(Eqn(REGISTRY["reshape"], [v], {"shape": kept}, [r], e.loc))
            v = r
        b = Var(AType(shape, dt))
        eqns.append(Eqn(REGISTRY["broadcast_in_dim"], [v], {"shape": shape, "dims": dims}, [b],
                        e.loc))
        return b
    bx = operand(x, xk, tuple(range(nb + nxf)))
    by = operand(y, yk, tuple(range(nb)) + tuple(range(nb + nxf, len(shape))))
    if dt not in _FLOATS:
        eqns.append(Eqn(REGISTRY["mul"], [bx, by], {}, [out], e.loc))
        return eqns
    m = Var(AType(shape, dt))  # BLAS sums from +0.0: x*y + 0.0 (-0.0 becomes 0.0)
    eqns.append(Eqn(REGISTRY["mul"], [bx, by], {}, [m], e.loc))
    eqns.append(Eqn(REGISTRY["add"], [m, Lit(0.0, dt)], {}, [out], e.loc))
    return eqns


def simplify(g: Graph) -> Graph:
    """Algebraic identities, each giving the bits NumPy gives for the equation it replaces
    (NaN for NaN): x*1, 1*x, x/1, pow x 1 -> x; floats: x + (-0.0), (-0.0) + x, x - 0.0 -> x
    (x + 0.0 stays: it is 0.0 for x = -0.0; (x + 0.0) + 0.0 -> x + 0.0), integers: x+0, 0+x,
    x-0 -> x; neg(neg x) -> x; pow x 2 -> mul x x for a literal exponent (NumPy squares for a
    scalar one); pow x 0 -> full 1 (floats: nan**0 and inf**0 are 1 too);
    reshape/broadcast_in_dim/convert_element_type to the same type -> x;
    reshape of reshape, broadcast of broadcast, transpose of transpose -> one (or none);
    broadcast of a reshape that only adds or drops size-1 axes -> one broadcast; an elementwise
    operation (not pow) of broadcasts (or reshapes) with the same parameters -> the broadcast
    (reshape) of the operation on their operands. dot_general with an identity matrix
    (`ops.eye`) -> the other operand (transposed as the contraction requires), with the
    product's own nan spread and signed zeros for floats (`_dot_identity`). A dot_general whose
    contracted axes have extent 1 -> mul of two broadcasts (+ 0.0 for floats; fusable)."""
    return _rebuild(g, _simplify_eqn)


# ------------------------------------------------------------------- negations absorbed

_SIGN_THROUGH = ("broadcast_in_dim", "reshape", "transpose")  # data movement: -x moves as x
_NEG_DEPTH = 8


def _uses(g: Graph):
    """{Var: how many operand slots read it}, a result of the graph counting as two."""
    n = {}
    for e in g.eqns:
        for x in e.inputs:
            if isinstance(x, Var):
                n[x] = n.get(x, 0) + 1
    for v in g.outvars:
        if isinstance(v, Var):
            n[v] = n.get(v, 0) + 2
    return n


def absorb_negations(g: Graph) -> Graph:
    """Floats: `add a t` / `add t a` -> `sub a t'` and `sub a t` -> `add a t'` where t is -t'
    computed with one `neg` inside: t = neg t', or t made from a neg by data movement
    (broadcast_in_dim, reshape, transpose) and `mul` / `div` operands (-x * y is -(x * y),
    x / -y is -(x / y): IEEE rounding is symmetric in sign), each link read only by the next.
    t' is the same chain without the neg; a + (-t') is a - t' and a - (-t') is a + t' bit for
    bit (IEEE subtraction is addition of the negation), so one elementwise operation goes
    (jacrev of tanh's derivative `1 - t*t` records `neg (add u u)` added to the other term of
    W5's Hessian). The sign of a NaN may change: NaN is NaN in the value model."""
    if not any(e.prim.name == "neg" for e in g.eqns):
        return g  # nothing to absorb (most graphs: no walk, no rebuild)
    uses = _uses(g)
    sub_, add_ = REGISTRY["sub"], REGISTRY["add"]

    def positive(x, defs, new, depth):
        # a Var holding -x with the chain's neg dropped (new equations appended), or None
        if not isinstance(x, Var) or uses.get(x, 0) != 1 or depth > _NEG_DEPTH or \
                x.type.dtype not in _FLOATS:
            return None
        e = defs.get(x)
        if e is None or len(e.outvars) != 1:
            return None
        name, ins = e.prim.name, e.inputs
        if name == "neg":
            return ins[0] if isinstance(ins[0], Var) and ins[0].type == x.type else None
        if name in _SIGN_THROUGH:
            ks = (0,)
        elif name in ("mul", "div") and len(ins) == 2:
            ks = (0, 1)
        else:
            return None
        for k in ks:
            y = positive(ins[k], defs, new, depth + 1)
            if y is not None:
                v = Var(x.type)
                new.append(Eqn(e.prim, [y if j == k else a for j, a in enumerate(ins)],
                               e.params, [v], e.loc))
                return v
        return None

    def rewrite(e, ins, defs):
        name = e.prim.name
        if name not in ("add", "sub") or len(ins) != 2 or len(e.outvars) != 1 or \
                e.outvars[0].type.dtype not in _FLOATS or REGISTRY.get(name) is not e.prim:
            return None
        for k in ((1, 0) if name == "add" else (1,)):
            new = []
            y = positive(ins[k], defs, new, 0)
            if y is None:
                continue
            a = ins[1 - k]
            return new + [Eqn(sub_ if name == "add" else add_, [a, y], {}, e.outvars, e.loc)]
        return None

    return _rebuild(g, rewrite)


# --------------------------------------------------------------------------- the pipeline

PASSES = (simplify, absorb_negations, fold_constants, cse, dce)


def optimize(g: Graph, max_rounds=20) -> Graph:
    """Run every pass until the graph stops changing (each round strictly shrinks or
    canonicalises it; `max_rounds` only guards against a pass that oscillates).

    A pass keeps an unchanged equation as the same object, so a round that changed nothing
    returns the very same equations: that test is free, where comparing structure keys printed
    the graph twice a round (most of the pass time of a small graph that runs once). Structure
    keys are compared only from the third round on, to stop a pass that rebuilds equivalent
    equations forever."""
    key = None
    for r in range(max_rounds):
        before, outs = g.eqns, g.outvars
        for p in PASSES:
            g = p(g)
        if len(g.eqns) == len(before) and all(a is b for a, b in zip(g.eqns, before)) and \
                all(a is b for a, b in zip(g.outvars, outs)):
            break
        if r >= 1:
            new = g.structure_key()
            if new == key:
                break
            key = new
    return g
