"""The call path of compiled graphs: argument checks, buffers, one native call.

Hot path per call (generated per graph, `_make_fast`): for each argument (and explicit
constant) one type/dtype/shape/strides comparison against precomputed expectations (a mismatch
of layout only costs one np.ascontiguousarray), one np.empty per output, a workspace from the
graph's pool, and one call of the compiled METH_FASTCALL entry - a builtin function object
made with PyCFunction_NewEx, so no ctypes and no argument tuple (the ctypes entry remains for
interpreters where that is not available). The compiled entry reads each array's data pointer
itself (arr.ctypes.data costs ~1 us per array in Python) and releases the GIL when the graph
has enough work.
"""
from __future__ import annotations

import copy
import ctypes
import sys

import numpy as np

from .._gencode import define
from ..ir.core import GuardFailed, Node
from ..codegen.abi import out_type
from ..codegen.lapack import STATUS_MESSAGES
from ..ir.types import AType, DTYPES
from . import engine

_ndarray = np.ndarray
_empty = np.empty
_EMPTY = np.empty(0, np.uint8)
_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.py_object)
_FN_PTRS = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p)
WS_POOL = 4               # idle workspaces kept per graph (one per concurrently running call)
# `void **args` blocks by length: a ctypes array type is a class cycle, which ctypes' own cache
# holds only weakly, so `c_void_p * n` on every call made cyclic garbage each time the
# collector had freed the last one; these stay (one per argument count seen)
_PTR_BLOCKS: dict = {}


def _pointer_block(bufs):
    """The `void **` argument block of the arrays `bufs` (their data pointers)."""
    n = len(bufs)
    block = _PTR_BLOCKS.get(n)
    if block is None:
        block = _PTR_BLOCKS[n] = ctypes.c_void_p * n
    return block(*[a.ctypes.data for a in bufs])


def _probe_py_abi():
    """True when the compiled `_py` wrapper may read tuples and ndarrays directly."""
    from ..codegen.abi import PY_ABI
    a = np.arange(3.0)
    t = (a,)
    try:
        return (ctypes.c_void_p.from_address(id(t) + PY_ABI[0]).value == id(a) and
                ctypes.c_void_p.from_address(id(a) + PY_ABI[1]).value == a.ctypes.data)
    except Exception:  # pragma: no cover - exotic interpreter
        return False


_PY_ABI_OK = None
# the fastcall entry raises reference counts itself: only where they are plain counters
_FASTCALL_OK = sys.implementation.name == "cpython" and getattr(
    sys, "_is_gil_enabled", lambda: True)()
METH_FASTCALL = 0x0080
# what the fastcall entry returns for status 0, 1, 2 (ordinary, mortal objects)
_ST_OK, _ST_GUARD, _ST_INDEX = object(), object(), object()
# and one per LAPACK failure (codegen/lapack.py STATUS_MESSAGES): status k is _STATUS[k]
_STATUS = (_ST_OK, _ST_GUARD, _ST_INDEX) + tuple(object() for _ in range(
    max(STATUS_MESSAGES) - 2))
_STATUS_CODE = {id(s): k for k, s in enumerate(_STATUS)}


class _MethodDef(ctypes.Structure):
    _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p),
                ("ml_flags", ctypes.c_int), ("ml_doc", ctypes.c_char_p)]


_new_cfunction = None


def _fastcall(address, name, lib):
    """A builtin function object calling the compiled `_fc` entry (METH_FASTCALL): the
    method definition it points to and the loaded code (`lib`: elfload.Mapped or engine.Loaded)
    are kept alive by the function's `self` tuple, so the code outlives every holder of the
    function."""
    global _new_cfunction
    if _new_cfunction is None:
        f = ctypes.pythonapi.PyCFunction_NewEx
        f.restype = ctypes.py_object
        f.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.py_object]
        _new_cfunction = f
    mdef = _MethodDef(f"adjit_{name}".encode(), address, METH_FASTCALL, None)
    # self: the three status objects (the entry reads only these), then the definition and
    # the code (alive as long as the function)
    return _new_cfunction(ctypes.addressof(mdef), (*_STATUS, mdef, lib), None)


class _Spec:
    __slots__ = ("shape", "dtype", "strides", "name")

    def __init__(self, typ: AType, name):
        self.shape = typ.shape
        self.dtype = DTYPES[typ.dtype]
        self.strides = np.empty(typ.shape, self.dtype).strides if typ.size else None
        self.name = name


class CompiledGraph:
    """A graph compiled to native code. `cg(args, consts=None) -> list of np.ndarray`.

    `consts` binds the graph's constvars (default: the graph's own `consts`). Outputs are fresh
    arrays on every call. Raises GuardFailed when a guard does not hold (retrace), TypeError /
    ValueError naming the argument for a wrong dtype or shape, IndexError for an index out of
    range in gather/scatter_add.
    """

    def __init__(self, g, obj: bytes, meta: dict):
        global _PY_ABI_OK
        if _PY_ABI_OK is None:
            _PY_ABI_OK = _probe_py_abi()
        self.name = g.name
        self.meta = meta
        what = f"graph {g.name}"
        imports = {f"adjit_{n}": engine.import_address(n) for n in meta["imports"]}
        sym = meta["symbol"] + ("_py" if _PY_ABI_OK else "")
        fc = meta.get("fastcall") if _PY_ABI_OK and _FASTCALL_OK else None
        # the loaded code (elfload.Mapped, or engine.Loaded with LLJIT: unmapped or freed when
        # the last reference goes). Every callable that can enter it holds it: this object
        # (and its for_graph copies, so g.native), the ctypes entry, the builtin fastcall
        # entry, the generated fast path (jit's direct entry). So the memory cache may drop
        # an entry, or cache_clear() all of them, while callers run: code goes with its last
        # caller.
        # (the object code itself is not kept: the `void **args` entry is exported too)
        syms = list(dict.fromkeys([sym, meta["symbol"]] + ([fc] if fc else [])))
        lib = self._lib = engine.load_many(obj, syms, imports, what)
        self._fn = (_FN if _PY_ABI_OK else _FN_PTRS)(lib.addresses[sym])
        self._fn.lib = lib
        self._fc = _fastcall(lib.addresses[fc], g.name, lib) if fc else None
        self.in_specs = [_Spec(v.type, f"argument {i}") for i, v in enumerate(g.invars)]
        self.const_specs = [_Spec(v.type, f"constant #{i}") for i, v in enumerate(g.constvars)]
        outs = [out_type(v) for v in g.outvars]
        self.out_specs = [(t.shape, DTYPES[t.dtype]) for t in outs]
        self.ws_bytes = meta["workspace"]
        self._ws_pool = []  # workspaces not in use (shared by copies made by for_graph)
        self._fast = None
        self._default_consts = None
        self._graph_consts = list(g.consts)

    def for_graph(self, g):
        """This code with `g`'s constants as the default binding (graphs of one structure
        share code but not constant values)."""
        if len(g.consts) == len(self._graph_consts) and all(
                a is b for a, b in zip(g.consts, self._graph_consts)):
            return self
        c = copy.copy(self)
        c._graph_consts = list(g.consts)
        c._default_consts = None
        c._fast = None
        return c

    def _prepare(self, specs, values, what):
        if len(values) != len(specs):
            raise TypeError(f"{self.name}: expected {len(specs)} {what}, got {len(values)}")
        out = []
        for s, a in zip(specs, values):
            if type(a) is not _ndarray or a.dtype is not s.dtype or a.shape != s.shape or \
                    a.strides != s.strides:
                a = self._convert(s, a)
            out.append(a)
        return out

    def _convert(self, s, a):
        """The slow path: a non-array, another dtype object, another shape or layout."""
        if isinstance(a, Node):
            a = a.val
        if not isinstance(a, np.ndarray):
            try:
                a = np.asarray(a)
            except Exception:
                raise TypeError(f"{self.name}: {s.name} is a {type(a).__name__}, not an array")
        if a.dtype != s.dtype and a.dtype.kind == s.dtype.kind and \
                a.dtype.itemsize == s.dtype.itemsize and not a.dtype.isnative:
            a = a.astype(s.dtype)  # the same numbers in the other byte order
        if a.dtype != s.dtype:
            raise TypeError(f"{self.name}: {s.name} has dtype {a.dtype}, expected {s.dtype} "
                            "(adjit supports float32, float64, int32, int64 and bool arrays)")
        if a.shape != s.shape:
            raise ValueError(f"{self.name}: {s.name} has shape {a.shape}, expected {s.shape}")
        if not (a.flags.c_contiguous and a.flags.aligned):
            # Fortran order, negative or zero (broadcast) strides, slices: copy once
            a = np.ascontiguousarray(a)
            if not a.flags.aligned:
                a = a.copy()
        return a

    def consts_default(self):
        if self._default_consts is None:
            vals = [c.val if isinstance(c, Node) else c for c in self._graph_consts]
            if any(v is None for v in vals):
                raise ValueError(f"{self.name}: the graph's constants have no values; "
                                 "pass consts=")
            self._default_consts = self._prepare(self.const_specs, vals, "constants")
        return self._default_consts

    def __call__(self, args, consts=None):
        f = self._fast
        if f is None:
            f = self._fast = self._make_fast()
        return f(args, consts)

    def _make_fast(self):
        """The hot path, generated per graph with its checks unrolled (as dataclasses and
        namedtuple generate code): a loop over specs costs ~1 us more on a tiny graph."""
        n_in, n_out, n_c = len(self.in_specs), len(self.out_specs), len(self.const_specs)
        env = {"nd": _ndarray, "empty": _empty, "EMPTY": _EMPTY, "u8": np.dtype(np.uint8),
               "fn": self._fn, "self": self, "slow": self._call, "err": _status_error,
               "lib": self._lib}  # the code lives as long as this function
        a = [f"a{i}" for i in range(n_in)]
        cn = [f"c{i}" for i in range(n_c)]
        lines = ["def fast(args, consts=None):",
                 f"    if len(args) != {n_in}:", "        return slow(args, consts)"]
        if n_in:
            lines.append(f"    {', '.join(a)}, = args")
        for i, sp in enumerate(self.in_specs):
            env.update({f"d{i}": sp.dtype, f"s{i}": sp.shape, f"t{i}": sp.strides})
            lines += [f"    if type(a{i}) is not nd or a{i}.dtype is not d{i} or "
                      f"a{i}.shape != s{i} or a{i}.strides != t{i}:",
                      "        return slow(args, consts)"]
        # constants: the prepared defaults (set by the first slow call), or explicit ones
        # checked like arguments (the eager backward passes its graph's constants every time)
        if n_c:
            lines += ["    if consts is None:", "        cs = self._default_consts",
                      "        if cs is None:", "            return slow(args, consts)",
                      f"        {', '.join(cn)}, = cs", "    else:",
                      f"        if len(consts) != {n_c}:",
                      "            return slow(args, consts)",
                      f"        {', '.join(cn)}, = consts"]
            for i, sp in enumerate(self.const_specs):
                env.update({f"cd{i}": sp.dtype, f"cs{i}": sp.shape, f"ct{i}": sp.strides})
                lines += [f"        if type(c{i}) is not nd or c{i}.dtype is not cd{i} or "
                          f"c{i}.shape != cs{i} or c{i}.strides != ct{i}:",
                          "            return slow(args, consts)"]
        else:
            lines += ["    if consts is not None and len(consts):",
                      "        return slow(args, consts)"]
        for i, (shp, dt) in enumerate(self.out_specs):
            env.update({f"os{i}": shp, f"od{i}": dt})
            lines.append(f"    o{i} = empty(os{i}, od{i})")
        if self.ws_bytes:  # scratch kept between calls: a pool, one buffer per running call
            env.update(pool=self._ws_pool, wsb=self.ws_bytes)
            lines += ["    try:", "        ws = pool.pop()", "    except IndexError:",
                      "        ws = empty(wsb, u8)"]
        else:
            lines.append("    ws = EMPTY")
        outs = [f"o{i}" for i in range(n_out)]
        bufs = ", ".join(a + cn + outs + ["ws"])
        if self._fc is not None:
            env.update(fc=self._fc, OK=_ST_OK, GUARD=_ST_GUARD)
            lines += [f"    st = fc({bufs})"]
        else:
            lines += [f"    st = fn(({bufs},))"]
        if self.ws_bytes:
            lines += [f"    if len(pool) < {WS_POOL}:", "        pool.append(ws)"]
        env["name"] = self.name
        if self._fc is not None:
            env["code"] = _STATUS_CODE
            lines += ["    if st is not OK:", "        raise err(name, code[id(st)])"]
        else:
            lines += ["    if st:", "        raise err(name, st)"]
        lines += [f"    return [{', '.join(outs)}]"]
        if not _PY_ABI_OK:  # pragma: no cover
            return self._call
        # the source depends only on the counts of arguments, constants and results (shapes,
        # dtypes, strides and the rest are names in `env`): compiled once per such form in a
        # process (~0.3-0.7 ms, paid by the call that first runs native code), then reused by
        # every graph of that form (a step defined again, another structure of the same form)
        return define("\n".join(lines), env, "fast", "<adjit native entry>")

    def _call(self, args, consts=None):
        """The general path: any argument kinds and layouts, explicit constants."""
        ins = self._prepare(self.in_specs, args, "arguments")
        cs = self.consts_default() if consts is None else \
            self._prepare(self.const_specs, consts, "constants")
        outs = [_empty(shape, dt) for shape, dt in self.out_specs]
        ws = _EMPTY
        if self.ws_bytes:
            try:
                ws = self._ws_pool.pop()
            except IndexError:
                ws = _empty(self.ws_bytes, np.uint8)
        bufs = (*ins, *cs, *outs, ws)
        if _PY_ABI_OK:
            status = self._fn(bufs)
        else:  # pragma: no cover - only on interpreters whose object layout we do not know
            status = self._fn(_pointer_block(bufs))
        if self.ws_bytes and len(self._ws_pool) < WS_POOL:
            self._ws_pool.append(ws)
        if status:
            raise _status_error(self.name, status)
        return outs

    def run_pointers(self, args, consts=None):
        """Call through the documented `void **args` entry (tests use it to check the ABI)."""
        ins = self._prepare(self.in_specs, args, "arguments")
        cs = self.consts_default() if consts is None else \
            self._prepare(self.const_specs, consts, "constants")
        outs = [np.empty(shape, dt) for shape, dt in self.out_specs]
        ws = np.empty(self.ws_bytes, np.uint8) if self.ws_bytes else _EMPTY
        bufs = (*ins, *cs, *outs, ws)
        ptrs = _pointer_block(bufs)
        status = _FN_PTRS(self._lib.addresses[self.meta["symbol"]])(ptrs)
        if status:
            raise _status_error(self.name, status)
        return outs


def _status_error(name, status):
    if status == 1:
        return GuardFailed(f"{name}: a guard recorded at trace time does not hold")
    if status == 2:
        return IndexError(f"{name}: an index is out of range in gather/scatter_add")
    if status in STATUS_MESSAGES:  # LAPACK's info != 0: NumPy's error and message
        return np.linalg.LinAlgError(STATUS_MESSAGES[status])
    return RuntimeError(f"{name}: compiled code returned status {status}")
