"""The arrays a jitted function reads from outside its arguments, made inputs of every call.

`Slots(f)` finds, once, where `f` can read arrays without being passed them: its closure
cells, the module globals its code (and the code of functions defined inside it) loads by
name, the slots of functions held in those cells (the function `jit(grad(loss))` wraps:
grad's wrapper holds `loss` in a cell) and of the rules (fun, fwd, bwd, jvp) of custom_vjp /
custom_jvp objects held in those cells or globals, and, for a method, the attributes of
`self`.
Each call `gather`s their current values (one read per slot); the arrays among them are
inputs of the trace, keyed by shape and dtype like arguments, and while tracing `substitute`
runs a copy of the function whose cells / globals dict / `self` attributes hold the traced
values instead, so `np.sum(X)` of such an array is recorded, not computed by NumPy.

A slot (or an attribute of `self`) may hold a container: a tuple, list, dict or namedtuple,
nested, of at most `MAX_TREE_LEAVES` leaves, holding an array (or empty) when planned. Its
arrays are live like a plain slot's: `tree_flat` reads them on every call, and while tracing
`tree_build` gives the function a copy of the container (one per container object) holding
the traced values; its other leaves are keyed by value (jit's static key). A container that
holds no array at a call (a list `f` appends to) is not copied: `f` sees it itself.

jit gives every array object one traced value, however it is reached (an argument, two
names, a container, `self`), so identity (`args[0] is a`) inside the trace is identity
outside.

A slot holding a Python scalar (SCALARS: a global `lr = 0.2`) is keyed by value, floats by bit
pattern (`scalar_key`), so a changed value traces again; jit promotes a float slot that shows
a second value to a scalar input (`promoted`: the reader passes it as a float64 0-d array).

Not reached (frozen: constants of the trace, bound by reference): arrays held by other
objects, by larger containers or by containers of other values only when planned, and the
globals of helper functions that `f` calls by name.
"""
from __future__ import annotations

import builtins
import copy
import dis
import struct
import types

import numpy as np

from .._frames import is_adjit_file
from .jitargs import _define, aliases

_EMPTY = object()     # an empty cell / an undefined global
_MISS = object()      # a hot-path key entry jit never files (a slot holding no array)
_STORES = {"STORE_GLOBAL", "DELETE_GLOBAL"}
MAX_DEPTH = 8   # functions held in cells followed this deep (adjit wraps its transforms twice)
MAX_TREE_LEAVES = 256  # a larger container (when planned) is not a slot: it stays frozen
_nd = np.ndarray
# Python scalars a slot may hold: keyed by value (floats by bit pattern), never inputs
SCALARS = frozenset((bool, int, float, complex, str))
_pack_d = struct.Struct("<d").pack


def scalar_key(v):
    """The hot path's key of a scalar slot's value: its type and value, floats (and complex
    numbers) by bit pattern, so 0.0 and -0.0 differ and a NaN matches itself."""
    t = type(v)
    if t is float:
        return _pack_d(v)
    if t is complex:
        return (t, _pack_d(v.real), _pack_d(v.imag))
    return (t, v)


def _candidate(v):
    """Can this slot hold a live array? Arrays and array-like NumPy scalars, containers
    (tuple, list, dict, namedtuple, nested) of at most MAX_TREE_LEAVES leaves holding an
    array, and (so that a name bound or filled later is seen) None, unbound slots and empty
    containers; and the scalars of SCALARS (keyed by value: a changed `lr = 0.1` traces
    again); functions, modules, classes and containers without arrays are structure."""
    return v is _EMPTY or v is None or type(v) in SCALARS or \
        isinstance(v, (np.ndarray, np.generic)) or \
        _is_tensor(v) or (is_tree(v) and (not v or holds_array(v)) and _small_tree(v, [0], 0))


def _live_leaf(v):
    return isinstance(v, (np.ndarray, np.generic)) or _is_tensor(v)


def is_tree(v):
    """Is v a container whose arrays are live (tuple, list, dict, namedtuple)?"""
    t = type(v)
    return t is tuple or t is list or t is dict or (isinstance(v, tuple) and
                                                    hasattr(t, "_fields"))


def _children(v):
    return v.values() if type(v) is dict else v


def _small_tree(v, count, depth):
    """Has container v at most MAX_TREE_LEAVES leaves, nested at most MAX_DEPTH deep?"""
    if depth > MAX_DEPTH:
        return False
    for c in _children(v):
        if is_tree(c):
            if not _small_tree(c, count, depth + 1):
                return False
        else:
            count[0] += 1
            if count[0] > MAX_TREE_LEAVES:
                return False
    return True


def holds_array(v, depth=0):
    """Does container v hold an array (or NumPy scalar, or Tensor) somewhere inside?"""
    if depth > MAX_DEPTH:
        return False
    for c in _children(v):
        if _live_leaf(c) or (is_tree(c) and holds_array(c, depth + 1)):
            return True
    return False


def tree_flat(v, leaves, static_key, depth=0):
    """The key of container v's structure, and its live leaves appended to `leaves` (in the
    order `tree_build` takes them). An ndarray is keyed by its shape and dtype, another live
    leaf (NumPy scalar, ndarray subclass, Tensor) by its type (jit keys its leaves' shapes
    and dtypes besides), any other leaf by `static_key` of its value (its identity when it
    is not hashable); a container nested deeper than MAX_DEPTH is such a leaf."""
    t = type(v)
    if t is _nd:
        leaves.append(v)
        return (v.shape, v.dtype)
    if depth <= MAX_DEPTH and (t is tuple or t is list or (isinstance(v, tuple) and
                                                         hasattr(t, "_fields"))):
        return (t, tuple([tree_flat(c, leaves, static_key, depth + 1) for c in v]))
    if depth <= MAX_DEPTH and t is dict:
        return (t, tuple(v), tuple([tree_flat(c, leaves, static_key, depth + 1)
                                    for c in v.values()]))
    if _live_leaf(v):
        leaves.append(v)
        return (t, None)
    try:
        return static_key(v, "a leaf of a container")
    except TypeError:
        return ("id", id(v))


NO_ARRAYS = ("no arrays",)


def slot_key(v, leaves, static_key):
    """`tree_flat` of a slot's container, NO_ARRAYS when it holds no array now (then the
    function sees the container itself, unkeyed)."""
    n = len(leaves)
    k = tree_flat(v, leaves, static_key)
    return k if len(leaves) > n else NO_ARRAYS


def tree_build(v, it, memo, depth=0):
    """A copy of container v (as `tree_flat` walked it) whose live leaves are the next values
    of iterator `it`; `memo` (id of a container -> its copy) gives a container reached twice
    one copy, so container identity holds inside the trace too."""
    t = type(v)
    if t is _nd:
        return next(it)
    if depth <= MAX_DEPTH and is_tree(v):
        if t is dict:
            new = dict(zip(v, [tree_build(c, it, memo, depth + 1) for c in v.values()]))
        else:
            kids = [tree_build(c, it, memo, depth + 1) for c in v]
            new = kids if t is list else tuple(kids) if t is tuple else t(*kids)
        return memo.setdefault(id(v), new)
    if _live_leaf(v):
        return next(it)
    return v


def _is_tensor(v):
    n = getattr(type(v), "_wrap", None)
    return n is not None and type(getattr(v, "_n", None)).__name__ == "Node"


def _global_names(code, out, stores):
    for ins in dis.get_instructions(code):
        if ins.opname == "LOAD_GLOBAL":
            out.append(ins.argval)
        elif ins.opname in _STORES:
            stores.add(ins.argval)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _global_names(c, out, stores)


def _cell(c):
    try:
        return c.cell_contents
    except ValueError:
        return _EMPTY


class _Plan:
    """Where one function (or custom_vjp / custom_jvp object: its rules) reads values:
    cells [(index, slot number | sub-plan)], globals [(name, slot number | sub-plan)],
    rules [(attribute, sub-plan)]."""
    __slots__ = ("fn", "cells", "gnames", "rules")

    def __init__(self, fn):
        self.fn, self.cells, self.gnames, self.rules = fn, [], [], []

    def __bool__(self):
        return bool(self.cells or self.gnames or self.rules)


def _custom():
    from .custom import _Custom
    return _Custom


class Slots:
    """The live slots of a function (see the module doc)."""

    def __init__(self, f, static_key=None, promoted=frozenset()):
        self.readers = []   # ("cell", cell, None) | ("global", dict, name)
        self.scalar = []    # per reader: it held a Python scalar (SCALARS) when planned
        self.trees = False  # a slot held a container when planned (jit's hot path flattens)
        self.checks = []    # (reader, the function / rule object it held when planned)
        self.plan = self._plan(f, 0, set()) if isinstance(f, types.FunctionType) else None
        self.n = len(self.readers)
        self.cells = [w for k, w, _ in self.readers if k == "cell"]
        self.globs = [(w, nm) for k, w, nm in self.readers if k == "global"]
        self.static_key = static_key
        # per slot in gather() order: held a scalar when planned (the hot path keys it by value)
        self.scalars = [self.scalar[i] for i in self.order()]
        # per slot in gather() order: a float slot that has seen a second value is a scalar
        # input (jit's `promoted`, by `rid`): keyed by its type, its value passed each call
        self.promoted = [self.scalar[i] and not self.trees and self.rid(i) in promoted
                         for i in self.order()]
        self.read = self._read_trees if self.trees or not self.n else _reader(self)

    def _read_trees(self, leaves):
        """`read` when a slot may hold a container (see `_reader`)."""
        sv = self.gather()
        if sv is None:
            return None
        sl = []
        k = tuple([slot_key(v, sl, self.static_key) if is_tree(v) else
                   tree_flat(v, sl, self.static_key) for v in sv])
        lv = leaves + tuple(sl)
        if len({*map(id, lv)}) < len(lv):
            k += (aliases(lv),)
        return k, lv

    def _sub(self, v, depth, seen, reader):
        """A sub-plan for a function or custom-rule object held in a slot, or None."""
        if depth >= MAX_DEPTH or id(v) in seen:
            return None
        if isinstance(v, types.FunctionType):
            sub = self._plan(v, depth + 1, seen)
        elif isinstance(v, _custom()):
            seen.add(id(v))
            sub = _Plan(v)
            for a in ("fun", "fwd", "bwd", "jvp"):
                r = getattr(v, a, None)
                if isinstance(r, types.FunctionType) and id(r) not in seen:
                    rp = self._plan(r, depth + 1, seen)
                    if rp:
                        sub.rules.append((a, rp))
        else:
            return None
        if not sub:
            return None
        self.checks.append((reader, v))
        return sub

    def _plan(self, fn, depth, seen):
        seen.add(id(fn))
        p = _Plan(fn)
        for i, c in enumerate(fn.__closure__ or ()):
            v = _cell(c)
            sub = self._sub(v, depth, seen, ("cell", c, None))
            if sub is not None:
                p.cells.append((i, sub))
            elif _candidate(v):
                self.trees = self.trees or is_tree(v)
                p.cells.append((i, len(self.readers)))
                self.readers.append(("cell", c, None))
                self.scalar.append(type(v) in SCALARS)
        names, stores = [], set()
        _global_names(fn.__code__, names, stores)
        if stores:  # f writes module globals: a copy of the dict would lose the writes
            return p
        g = fn.__globals__
        for nm in dict.fromkeys(names):
            v = g.get(nm, _EMPTY)
            if v is _EMPTY and hasattr(builtins, nm):
                continue
            # a helper function named as a global is not followed (its arrays stay frozen:
            # the documented boundary); custom_vjp / custom_jvp objects are
            sub = self._sub(v, depth, seen, ("global", g, nm)) \
                if isinstance(v, _custom()) else None
            if sub is not None:
                p.gnames.append((nm, sub))
            elif _candidate(v):
                self.trees = self.trees or is_tree(v)
                p.gnames.append((nm, len(self.readers)))
                self.readers.append(("global", g, nm))
                self.scalar.append(type(v) in SCALARS)
        return p

    def gather(self):
        """The current value of every slot (None when a function held in a cell changed:
        plan again)."""
        for (k, w, nm), v in self.checks:
            if (_cell(w) if k == "cell" else w.get(nm, _EMPTY)) is not v:
                return None
        vals = []
        for c in self.cells:
            try:
                vals.append(c.cell_contents)
            except ValueError:
                vals.append(_EMPTY)
        for g, nm in self.globs:
            vals.append(g.get(nm, _EMPTY))
        return vals

    def rid(self, i):
        """Slot i's identity across plans: its cell, or its globals dict and name."""
        _, w, nm = self.readers[i]
        return (id(w), nm)

    def stale(self, vals):
        """Does a slot hold a scalar where the plan has none, or the reverse (plan again: the
        hot path reads scalar slots apart)?"""
        return not self.trees and [type(v) in SCALARS for v in vals] != self.scalars

    def order(self):
        """Slot numbers in the order `gather` returns them."""
        cells = [i for i, (k, _, _) in enumerate(self.readers) if k == "cell"]
        return cells + [i for i, (k, _, _) in enumerate(self.readers) if k == "global"]

    def substitute(self, subst):
        """A copy of the planned function whose slots (slot number -> value) hold the given
        values; the function itself when there is nothing to substitute."""
        return _build(self.plan, subst) if self.plan is not None and subst else None


def _reader(slots):
    """jit's hot path over plain slots, generated once per plan: `read(leaves)` -> (key, leaves
    + the slots' values in `order()`), or None when a function held in a slot changed (plan
    again). The key holds each value's shape and dtype (a placeholder for a non-array, which
    jit never files) and, when an array object is also an argument or another slot, where
    (jit traces it as one value)."""
    env = {"E": _EMPTY, "nd": _nd, "MISS": _MISS, "aliases": aliases}
    lines = ["def read(leaves):"]

    def const(v):
        name = f"k{len(env)}"
        env[name] = v
        return name

    for (k, w, nm), v in slots.checks:
        if k == "cell":
            lines += ["    try:", f"        if {const(w)}.cell_contents is not {const(v)}:",
                      "            return None", "    except ValueError:", "        return None"]
        else:
            lines += [f"    if {const(w)}.get({const(nm)}, E) is not {const(v)}:",
                      "        return None"]
    vs = []
    for c in slots.cells:
        vs.append(f"v{len(vs)}")
        lines += ["    try:", f"        {vs[-1]} = {const(c)}.cell_contents",
                  "    except ValueError:", f"        {vs[-1]} = E"]
    for g, nm in slots.globs:
        vs.append(f"v{len(vs)}")
        lines.append(f"    {vs[-1]} = {const(g)}.get({const(nm)}, E)")
    # a slot that held a scalar when planned is keyed by its value (None when it holds
    # something else now: jit plans again); its value is no input
    # (a promoted float slot: None unless it holds a float; keyed by `float`, its value an
    # input)
    env["SC"], env["sk"], env["asarray"], env["f64"], env["pk"] = \
        SCALARS, scalar_key, np.asarray, np.dtype(np.float64), _pack_d
    for v, sc, pr in zip(vs, slots.scalars, slots.promoted):
        if pr:
            lines += [f"    if type({v}) is not float:", "        return None"]
        elif sc:
            lines += [f"    t{v} = type({v})", f"    if t{v} not in SC:", "        return None"]
    lines.append("    k = (" + "".join(
        "float, " if pr else f"pk({v}) if t{v} is float else sk({v}) if t{v} is complex else (t{v}, {v}), "
        if sc else
        f"({v}.shape, {v}.dtype) if type({v}) is nd else MISS, "
        for v, sc, pr in zip(vs, slots.scalars, slots.promoted)) + ")")
    ins = [f"asarray({v}, f64)" if pr else v
           for v, sc, pr in zip(vs, slots.scalars, slots.promoted) if pr or not sc]
    vs = [v for v, sc in zip(vs, slots.scalars) if not sc]
    lines.append("    lv = leaves + (" + "".join(f"{v}, " for v in ins) + ")" if ins else
                 "    lv = leaves")
    if not vs:
        lines.append("    return k, lv")
        return _define("\n".join(lines), env, "read")
    pairs = [f"{p} is {q}" for i, p in enumerate(vs) for q in vs[i + 1:]]
    if pairs:
        lines += [f"    if {' or '.join(pairs)}:", "        return k + (aliases(lv),), lv"]
    lines += ["    for a in leaves:", f"        if {' or '.join(f'a is {v}' for v in vs)}:",
              "            return k + (aliases(lv),), lv", "    return k, lv"]
    return _define("\n".join(lines), env, "read")


def _build(p, subst):
    fn = p.fn
    if p.rules:  # a custom_vjp / custom_jvp object: a copy with its rules rebuilt
        new = {a: _build(rp, subst) for a, rp in p.rules}
        new = {a: r for a, r in new.items() if r is not getattr(fn, a)}
        if not new:
            return fn
        obj = copy.copy(fn)
        for a, r in new.items():
            setattr(obj, a, r)
        return obj
    closure = list(fn.__closure__ or ())
    changed = False
    for i, s in p.cells:
        if isinstance(s, _Plan):
            nf = _build(s, subst)
            if nf is not s.fn:
                closure[i] = types.CellType(nf)
                changed = True
        elif s in subst:
            closure[i] = types.CellType(subst[s])
            changed = True
    g = fn.__globals__
    gsub = {}
    for nm, s in p.gnames:
        if isinstance(s, _Plan):
            nf = _build(s, subst)
            if nf is not s.fn:
                gsub[nm] = nf
        elif s in subst:
            gsub[nm] = subst[s]
    if gsub:
        g = dict(g)
        g.update(gsub)
        changed = True
    if not changed:
        return fn
    nf = types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, tuple(closure))
    nf.__kwdefaults__ = fn.__kwdefaults__
    nf.__qualname__ = fn.__qualname__
    nf.__module__ = fn.__module__
    nf.__dict__.update(fn.__dict__)
    return nf


def self_arrays(obj, static_key):
    """The array attributes of `self` (name -> value; small containers holding arrays,
    live as a slot's) and the key of the rest: its type and, per other attribute,
    `static_key` of its value when hashable, else its identity."""
    d = getattr(obj, "__dict__", None)
    if not isinstance(d, dict):
        return {}, (type(obj), id(obj))
    arrays, rest = {}, []
    for k, v in d.items():
        if _live_leaf(v) or (is_tree(v) and holds_array(v) and _small_tree(v, [0], 0)):
            arrays[k] = v
        else:
            try:
                rest.append((k, static_key(v, f"attribute {k!r} of self")))
            except TypeError:
                rest.append((k, ("id", id(v))))
    return arrays, (type(obj), tuple(rest))


# --- random generators a trace draws from -----------------------------------------------------
_RANDOM = (np.random.Generator, np.random.RandomState)


def _generator(v):
    """The NumPy generator `v` is, or whose bound method it is (`rng.normal`), else None."""
    if isinstance(v, _RANDOM):
        return v
    s = getattr(v, "__self__", None) if callable(v) else None
    return s if isinstance(s, _RANDOM) else None


def random_sources(f, args=()):
    """[(name, generator)]: the NumPy random generators a trace of `f` can draw from without
    being passed their draws: NumPy's global state (np.random.normal, ...), the Tensor
    front's (adjit.randn, rand, randint: `torch.randn` in a jitted function), the Generator /
    RandomState objects (or their bound methods) in the closure cells of `f` and the module
    globals its code names, following the functions held there (MAX_DEPTH deep), and those
    among or held as attributes by the positional arguments (`self.rng`). A draw made while
    jit traces is a constant of the trace (the value model): jit compares their states
    around the trace (`random_state`) to warn about it."""
    out, seen = {}, set()
    glob = getattr(np.random.mtrand, "_rand", None)  # the state np.random.normal etc. draw from
    if isinstance(glob, _RANDOM):
        out[id(glob)] = ("np.random", glob)
    from ..tracer import factory  # the Tensor front's generator (manual_seed rebinds it)
    mine = getattr(factory, "_rng", None)
    if isinstance(mine, _RANDOM):
        out[id(mine)] = ("adjit.randn/rand/randint", mine)

    def add(name, v):
        r = _generator(v)
        if r is not None and id(r) not in out:
            out[id(r)] = (name, r)

    def walk(fn, depth):
        if depth > MAX_DEPTH or id(fn) in seen:
            return
        seen.add(id(fn))
        code = fn.__code__
        for nm, c in zip(code.co_freevars, fn.__closure__ or ()):
            v = _cell(c)
            add(nm, v)
            if isinstance(v, types.FunctionType):
                walk(v, depth + 1)
        if is_adjit_file(code.co_filename):  # adjit's wrappers: only what they hold
            return
        names, _ = [], set()
        _global_names(code, names, _)
        for nm in dict.fromkeys(names):
            v = fn.__globals__.get(nm, _EMPTY)
            add(nm, v)
            if isinstance(v, types.FunctionType):
                walk(v, depth + 1)

    if isinstance(f, types.FunctionType):
        walk(f, 0)
    for i, a in enumerate(args):
        add(f"argument {i}", a)
        d = getattr(a, "__dict__", None)
        if isinstance(d, dict) and not isinstance(a, (types.FunctionType, types.ModuleType)):
            for k, v in list(d.items()):
                add(f"{type(a).__name__}.{k}", v)
    return list(out.values())


_MT_BYTES = 624 * 4 + 4  # numpy's mt19937_state: uint32 key[624], int pos
_MT_RAW = None  # whether the raw bytes at an MT19937's state address are that state (checked once)


def _mt_raw(bg):
    """The raw bytes of MT19937 `bg`'s state (its key and position), or None when this NumPy's
    layout is not the one checked here. ~0.3 us, where the state's dict costs ~75 us: jit
    snapshots np.random's global RandomState twice per trace."""
    global _MT_RAW
    import ctypes
    raw = ctypes.string_at(bg.ctypes.state_address, _MT_BYTES)
    if _MT_RAW is None:
        st = bg.state["state"]
        want = np.asarray(st["key"], np.uint32).tobytes() + np.int32(st["pos"]).tobytes()
        _MT_RAW = raw == want
    return raw if _MT_RAW else None


_GAUSS_AT = None  # offset of a RandomState's cached gaussian (has_gauss, gauss), or False


def _gauss_offsets():
    """Where a RandomState object keeps its cached second gaussian (legacy normal draws come
    in pairs: `has_gauss`, `gauss` in `get_state()`), found once on a private RandomState by
    the bytes of a known cached value and checked against `get_state` through a draw and a
    set_state; False when that layout is not found (then the state's dict is compared)."""
    global _GAUSS_AT
    if _GAUSS_AT is not None:
        return _GAUSS_AT
    import ctypes
    import struct
    _GAUSS_AT = False
    rs = np.random.RandomState(12345)
    rs.standard_normal()
    size = type(rs).__basicsize__
    g = rs.get_state(legacy=False)["gauss"]
    mem = ctypes.string_at(id(rs), size)
    at = mem.find(struct.pack("d", g))
    if at < 8 or mem.find(struct.pack("d", g), at + 1) != -1:
        return _GAUSS_AT
    h = at - 8  # aug_bitgen_t: the bit generator's pointer, int has_gauss, double gauss

    def read(r):
        raw = ctypes.string_at(id(r) + h, 16)
        return struct.unpack("i", raw[:4])[0], struct.unpack("d", raw[8:])[0]
    checks = []
    for step in range(3):
        st = rs.get_state(legacy=False)
        checks.append(read(rs) == (st["has_gauss"], st["gauss"]) or
                      not st["has_gauss"] and read(rs)[0] == 0)
        if step == 0:
            rs.standard_normal()  # uses the cached value: has_gauss 0
        elif step == 1:
            st["has_gauss"], st["gauss"] = 1, 0.25
            rs.set_state(st)
    if all(checks) and read(rs) == (1, 0.25):
        _GAUSS_AT = h
    return _GAUSS_AT


def random_state(r):
    """A comparable snapshot of a generator's state (a RandomState's cached second gaussian
    included: a draw that uses it leaves the bit generator as it was)."""
    legacy = isinstance(r, np.random.RandomState)
    bg = r._bit_generator if legacy else getattr(r, "bit_generator", None)
    if type(bg) is np.random.MT19937:
        raw = _mt_raw(bg)
        if raw is not None and not legacy:
            return raw
        if raw is not None:
            h = _gauss_offsets()
            if h:  # has_gauss (an int) and gauss (a double after 4 bytes of padding)
                import ctypes
                return raw + ctypes.string_at(id(r) + h, 4) + ctypes.string_at(id(r) + h + 8, 8)
    def frozen(s):
        if isinstance(s, dict):
            return tuple((k, frozen(v)) for k, v in sorted(s.items()))
        if isinstance(s, (tuple, list)):
            return tuple(frozen(v) for v in s)
        if isinstance(s, np.ndarray):
            return (s.dtype.str, s.tobytes())
        return s
    # (a RandomState's state as its bit generator's dict: the same values as the legacy
    # tuple, ~4x cheaper to get; jit takes two snapshots of np.random's per trace)
    return frozen(r.get_state(legacy=False) if isinstance(r, np.random.RandomState)
                  else r.bit_generator.state)
