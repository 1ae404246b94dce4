"""Caches of compiled graphs: in memory by structure, on disk as object code.

Memory: keyed by `g.structure_key()` (printed IR without locations: shapes, dtypes, literals,
params; constants by type only, since their values are bound at call time).

Disk (`ADJIT_CACHE_DIR`, default ~/.cache/adjit): one file per graph named by
sha256(IR text, LOWERING_VERSION, target triple + CPU name + features, LLVM/llvmlite/adjit
versions, math flags, Python object layout). A file holds a magic line, a JSON header (its own
key, the entry symbol, workspace size, BLAS imports, the object's length and sha256) and the
object code. A hit links the object without building LLVM IR. Anything that does not verify
(truncated, corrupt, another entry's file, another version) is discarded with a warning and
compiled again. Writes are atomic (temporary file + os.replace), so concurrent processes see
either no file or a whole one.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import warnings
from collections import OrderedDict

from . import engine
from ..ir.core import on_register

MAGIC = b"ADJIT-OBJECT 1\n"
MEMORY_ENTRIES = 2048
_LOCK = threading.Lock()
_MEM: OrderedDict = OrderedDict()
_FAILED: dict = {}
STATS = {"hits": 0, "misses": 0, "disk_hits": 0, "disk_misses": 0, "disk_rejected": 0,
         "compiles": 0}
_VERSION = None


def cache_dir() -> str:
    return os.environ.get("ADJIT_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache",
                                                             "adjit")


def _adjit_version():
    global _VERSION
    if _VERSION is None:
        from .. import __version__  # importlib.metadata costs ~20 ms of a cold start
        _VERSION = __version__
    return _VERSION


def _lowering_version():
    # codegen.lower re-exports abi's value (a test may patch it there); a cache hit does not
    # import the lowering at all
    import sys
    from ..codegen import abi
    lower = sys.modules.get("adjit.codegen.lower")
    return getattr(lower, "LOWERING_VERSION", abi.LOWERING_VERSION)


def disk_key(skey: str) -> str:
    from ..codegen.abi import MATH_FLAGS, PY_ABI
    parts = [skey, f"lowering={_lowering_version()}", engine.host_signature(),
             f"adjit={_adjit_version()}", f"math={MATH_FLAGS}", f"pyabi={PY_ABI}"]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _path(key):
    return os.path.join(cache_dir(), key[:2], key + ".o")


def read_entry(key):
    """(object bytes, meta) from disk, or None (missing or rejected with a warning)."""
    path = _path(key)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        if not data.startswith(MAGIC):
            raise ValueError("bad magic")
        head_end = data.index(b"\n", len(MAGIC))
        meta = json.loads(data[len(MAGIC):head_end])
        obj = data[head_end + 1:]
        if meta.get("key") != key:
            raise ValueError("entry belongs to another key")
        if len(obj) != meta["length"] or hashlib.sha256(obj).hexdigest() != meta["sha256"]:
            raise ValueError("object code truncated or corrupt")
        return obj, meta
    except Exception as exc:
        STATS["disk_rejected"] += 1
        warnings.warn(f"adjit: discarding cache entry {path}: {exc}", RuntimeWarning,
                      stacklevel=3)
        try:
            os.remove(path)
        except OSError:
            pass
        return None


def write_entry(key, obj: bytes, meta: dict):
    path = _path(key)
    head = dict(meta, key=key, length=len(obj), sha256=hashlib.sha256(obj).hexdigest())
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + json.dumps(head, sort_keys=True).encode() + b"\n" + obj)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:  # a read-only or full disk only costs the next process a compile
        warnings.warn(f"adjit: cannot write cache entry {path}: {exc}", RuntimeWarning,
                      stacklevel=3)


def _build(g, skey):
    from .call import CompiledGraph
    from ..ir.core import TRANSIENT
    if TRANSIENT and any(e.prim.name in TRANSIENT for e in g.eqns):
        # a throwaway primitive (ir.core.registered): its lowering is not part of the key
        from ..codegen.lower import compile_object
        STATS["compiles"] += 1
        obj, meta = compile_object(g)
        return CompiledGraph(g, obj, meta)
    key = disk_key(skey)
    hit = read_entry(key)
    if hit is not None:
        obj, meta = hit
        try:
            cg = CompiledGraph(g, obj, meta)
            STATS["disk_hits"] += 1
            return cg
        except engine.CompileError as exc:  # object from a foreign build that will not link
            warnings.warn(f"adjit: discarding cache entry {_path(key)}: {exc}", RuntimeWarning)
    STATS["disk_misses"] += 1
    STATS["compiles"] += 1
    from ..codegen.lower import compile_object  # a hit does not need the lowering
    obj, meta = compile_object(g)
    cg = CompiledGraph(g, obj, meta)
    write_entry(key, obj, meta)
    return cg


def _forget(prim):
    """A primitive was unregistered: drop compiled code that uses it (a primitive registered
    later under the same name may lower differently)."""
    needle = f"= {prim.name}"
    with _LOCK:
        for table in (_MEM, _FAILED):
            for k in [k for k in table if needle in k]:
                del table[k]


def get_compiled(g):
    """The CompiledGraph for `g` (memory cache, then disk, then compile), bound to g's consts.
    Raises CompileError when `g` cannot be compiled."""
    skey = g.structure_key()
    with _LOCK:
        cg = _MEM.get(skey)
        if cg is not None:
            _MEM.move_to_end(skey)
            STATS["hits"] += 1
    if cg is None:
        failed = _FAILED.get(skey)
        if failed is not None:
            raise failed
        STATS["misses"] += 1
        try:
            cg = _build(g, skey)
        except engine.CompileError as exc:
            _FAILED[skey] = exc  # do not retry on every call
            raise
        with _LOCK:
            _MEM[skey] = cg
            while len(_MEM) > MEMORY_ENTRIES:
                _MEM.popitem(last=False)
    return cg.for_graph(g)


def cache_info() -> dict:
    """Entries in memory, entries and bytes on disk, the disk path, hit/miss counters."""
    d = cache_dir()
    n = size = 0
    if os.path.isdir(d):
        for root, _, files in os.walk(d):
            for f in files:
                if f.endswith(".o"):
                    n += 1
                    try:
                        size += os.path.getsize(os.path.join(root, f))
                    except OSError:
                        pass
    return dict(entries=len(_MEM), disk_entries=n, size=size, path=d, **STATS)


def cache_clear(disk=False):
    """Forget compiled graphs in memory (and delete the disk cache's entries if `disk`)."""
    with _LOCK:
        _MEM.clear()
        _FAILED.clear()
    if disk and os.path.isdir(cache_dir()):
        for root, _, files in os.walk(cache_dir()):
            for f in files:
                if f.endswith(".o"):
                    try:
                        os.remove(os.path.join(root, f))
                    except OSError:
                        pass


on_register(lambda p: None, _forget)
