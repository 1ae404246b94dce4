"""Caches of compiled graphs: in memory by structure, on disk as object code.

Memory: keyed by `g.structure_key()` (printed IR without locations: shapes, dtypes, literals,
params; constants by type only, since their values are bound at call time).

Disk (`ADJIT_CACHE_DIR`, default ~/.cache/adjit): one file per graph, <root>/<2 hex>/<64 hex>.o,
named by sha256(IR text, the code generator's digest, target triple + CPU name + features,
LLVM/llvmlite versions, Python object layout). The code generator's digest is a sha256 of the
bytes of the files that decide what object code is generated (KEY_SOURCES: adjit/codegen/,
the primitive records (their lowering specs), the LLVM engine's settings, SciPy's special
function binding, the helpers' .ll files) and of the BLAS library's identity, read
from the files once per process (so an edit in an editable install is a new key), without
importing the lowering. A file holds a magic line, the sha256 of everything after that line,
a JSON header (its own key, the entry symbol, workspace size, imports, the object's length)
and the object code. Every header field is checked before use; a hit links the object without
building LLVM IR. Anything that does not verify (truncated, corrupt, another entry's file,
another version) is discarded with a warning and compiled again. Writes are atomic (temporary
file + os.replace), so concurrent processes see either no file or a whole one.

Hot marks: `<root>/hot/<blake2b-256 of the structure key>` (an empty file) is written with each entry.
It says "this structure was compiled in an earlier process" without starting LLVM (the entry's
name needs the host signature, which does): under ADJIT_TIER=auto a structure's first run
checks its mark (a hash and a stat, ~10 us) and only then has the entry read and linked (by
the worker and a background thread; a big graph on its first run: see `was_hot`,
runtime/__init__.py `Interpreted._check`). A mark without a usable entry (another version,
CPU) gets the structure compiled by the worker before it is hot.

Trust: the cache root and its subfolders are created with mode 0700, entries with 0600. An
entry is loaded only when the root, its subfolder and the file itself are owned by this user
and not writable by group or others; otherwise (another user could plant code there) the disk
cache is not used (one warning per folder) and graphs are compiled in memory. Folders above
the root are not checked (like /tmp, they may be shared and sticky). `cache_clear(disk=True)`
and `cache_info()` touch only adjit's own entries (name pattern and magic line).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import warnings
from collections import OrderedDict

from . import engine
from ..ir.core import on_register

MAGIC = b"ADJIT-OBJECT 2\n"
MAGIC_ANY = b"ADJIT-OBJECT "       # any format version: an entry adjit wrote
MEMORY_ENTRIES = 2048
_LOCK = threading.Lock()
_BUILDING = {}  # structure key -> the lock held while this process compiles it
_MEM: OrderedDict = OrderedDict()
_FAILED: dict = {}
STATS = {"hits": 0, "misses": 0, "disk_hits": 0, "disk_misses": 0, "disk_rejected": 0,
         "background_compiles": 0,
         "compiles": 0}
# the files whose bytes make the code generator's digest: (folder under the package, suffix);
# folders are walked recursively
# ir/prims: a primitive record carries its lowering (math function, intrinsic, expression)
KEY_SOURCES = (("codegen", ".py"), ("ir/prims", ".py"), ("runtime/ll", ".ll"),
               ("runtime/engine.py", ""), ("runtime/special.py", ""))
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DIGEST = None
_ENTRY = re.compile(r"[0-9a-f]{64}\.o\Z")
_SUBDIR = re.compile(r"[0-9a-f]{2}\Z")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
_HEADER = {"key", "symbol", "workspace", "imports", "length", "fastcall"}
_uid = os.geteuid if hasattr(os, "geteuid") else (lambda: -1)
_UNSAFE_WARNED = set()


def cache_dir() -> str:
    return os.environ.get("ADJIT_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache",
                                                             "adjit")


def key_files():
    """The files of KEY_SOURCES, sorted (paths relative to the package)."""
    out = []
    for rel, suffix in KEY_SOURCES:
        path = os.path.join(PACKAGE_DIR, rel)
        if os.path.isfile(path):
            out.append(rel)
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            out += [os.path.relpath(os.path.join(root, f), PACKAGE_DIR)
                    for f in files if f.endswith(suffix)]
    return sorted(out)


def codegen_digest() -> str:
    """sha256 of the code generator's files (KEY_SOURCES) and of the BLAS library's identity;
    computed once per process from the files' bytes (no module is imported)."""
    global _DIGEST
    if _DIGEST is None:
        from . import blas
        h = hashlib.sha256()
        for rel in key_files():
            with open(os.path.join(PACKAGE_DIR, rel), "rb") as f:
                data = f.read()
            h.update(f"{rel}\0{len(data)}\0".encode())
            h.update(data)
        h.update(f"blas={blas.identity()}".encode())
        _DIGEST = h.hexdigest()
    return _DIGEST


def disk_key(skey: str) -> str:
    from ..codegen.abi import PY_ABI
    parts = [skey, f"codegen={codegen_digest()}", engine.host_signature(), f"pyabi={PY_ABI}"]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _path(key):
    return os.path.join(cache_dir(), key[:2], key + ".o")


def _unsafe(st):
    """Why a cache folder or file with stat `st` must not be trusted, or None."""
    if st.st_uid != _uid():
        return f"owned by uid {st.st_uid}, not by this user (uid {_uid()})"
    if st.st_mode & 0o022:
        return f"writable by group or others (mode {st.st_mode & 0o7777:o})"
    return None


def trusted_cache_dir():
    """The cache root, or None when it exists and is not private to this user (with the
    warning): where the compile worker may write this process's entries."""
    root = cache_dir()
    try:
        why = _unsafe(os.stat(root))
    except OSError:
        return root   # not there yet: created private by whoever writes first
    if why is not None:
        _warn_unsafe(root, why)
        return None
    return root


def _warn_unsafe(path, why):
    if path not in _UNSAFE_WARNED:
        _UNSAFE_WARNED.add(path)
        warnings.warn(f"adjit: not using the disk cache in {path}: it is {why}; compiled code "
                      "is kept in memory only (make the folder private to you, e.g. chmod 700, "
                      "or set ADJIT_CACHE_DIR)", RuntimeWarning, stacklevel=4)


def _folder(key, create, name=None):
    """The entry's folder <root>/<key[:2]> (or <root>/<name>) when it and the root are private
    to this user (created with mode 0700 when `create`), else None (one warning per folder)."""
    root = cache_dir()
    sub = os.path.join(root, name or key[:2])
    for path in (root, sub):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if not create:
                return None
            try:
                os.makedirs(path, mode=0o700, exist_ok=True)
                st = os.stat(path)
            except OSError as exc:
                warnings.warn(f"adjit: cannot create the cache folder {path}: {exc}",
                              RuntimeWarning, stacklevel=4)
                return None
        except OSError:
            return None
        why = _unsafe(st)
        if why is not None:
            _warn_unsafe(path, why)
            return None
    return sub


def _validate(meta, key, obj):
    """Raise ValueError unless header `meta` is one this version writes, for `key`."""
    if not isinstance(meta, dict):
        raise ValueError("header is not an object")
    if set(meta) - _HEADER or not {"key", "symbol", "workspace", "imports", "length"} <= set(meta):
        raise ValueError(f"header fields {sorted(meta)}")
    if meta["key"] != key:
        raise ValueError("entry belongs to another key")
    for field in ("symbol", "fastcall"):
        v = meta.get(field)
        if not (v is None and field == "fastcall") and not (
                isinstance(v, str) and _NAME.match(v)):
            raise ValueError(f"bad {field} {v!r}")
    ws = meta["workspace"]
    if type(ws) is not int or not 0 <= ws < 1 << 40:
        raise ValueError(f"bad workspace size {ws!r}")
    imports = meta["imports"]
    if type(imports) is not list or not all(isinstance(n, str) and _NAME.match(n)
                                            for n in imports):
        raise ValueError(f"bad imports {imports!r}")
    if type(meta["length"]) is not int or meta["length"] != len(obj):
        raise ValueError("object code truncated or corrupt")


def read_entry(key):
    """(object bytes, meta) from disk, or None (missing, in an untrusted folder, or rejected
    with a warning)."""
    folder = _folder(key, create=False)
    if folder is None:
        return None
    path = os.path.join(folder, key + ".o")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            why = _unsafe(os.fstat(f.fileno()))
            data = f.read()
        if why is not None:
            raise ValueError(f"the file is {why}")
        if not data.startswith(MAGIC):
            raise ValueError("bad magic (another format version?)")
        sum_end = data.index(b"\n", len(MAGIC))
        digest = data[len(MAGIC):sum_end]
        rest = data[sum_end + 1:]
        if hashlib.sha256(rest).hexdigest().encode() != digest:
            raise ValueError("checksum mismatch (truncated or corrupt)")
        head_end = rest.index(b"\n")
        meta = json.loads(rest[:head_end])
        obj = rest[head_end + 1:]
        _validate(meta, key, obj)
        return obj, meta
    except Exception as exc:
        _reject(path, exc)
        return None


def _reject(path, exc):
    STATS["disk_rejected"] += 1
    warnings.warn(f"adjit: discarding cache entry {path}: {exc}", RuntimeWarning, stacklevel=4)
    try:
        os.remove(path)
    except OSError:
        pass


def _hot_path(skey):
    # BLAKE2b (256-bit digest): Python's own, where hashlib's sha256 is OpenSSL's, whose first
    # use in a process (~50 us) fell on a jitted function's second call (the first `was_hot`)
    return os.path.join(cache_dir(), "hot",
                        hashlib.blake2b(skey.encode(), digest_size=32).hexdigest())


def may_find() -> bool:
    """False when no structure key can find anything without a compile: nothing linked (or
    failed to compile) in this process and no hot mark on disk (no `hot` folder: a cold
    cache). One stat; a structure's first run then skips printing its key (~0.2 ms for
    W2's 76 equations) and hashing it."""
    if _MEM or _FAILED:
        return True
    try:
        return os.path.isdir(os.path.join(cache_dir(), "hot"))
    except (OSError, ValueError):
        return True


def was_hot(skey) -> bool:
    """Whether structure `skey` has a hot mark (an entry was written for it): cheap, no LLVM."""
    try:
        return os.path.isfile(_hot_path(skey))
    except (OSError, ValueError):
        return False


def mark_hot(skey):
    """Write structure `skey`'s hot mark (after its entry); errors only cost a later check."""
    path = _hot_path(skey)
    folder = _folder(None, create=True, name="hot")
    if folder is None:
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600))
    except OSError:
        pass


def write_entry(key, obj: bytes, meta: dict, skey=None):
    """Write the entry `key` (atomically) and, given the structure key `skey`, its hot mark."""
    head = dict(meta, key=key, length=len(obj))
    try:
        _validate(head, key, obj)   # never write what a reader would refuse
    except ValueError as exc:
        warnings.warn(f"adjit: not caching {key} on disk: {exc} (a new header field must be "
                      "checked in adjit/runtime/cache.py:_validate)", RuntimeWarning,
                      stacklevel=3)
        return
    folder = _folder(key, create=True)
    if folder is None:
        return
    path = os.path.join(folder, key + ".o")
    rest = json.dumps(head, sort_keys=True).encode() + b"\n" + obj
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")   # mode 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + hashlib.sha256(rest).hexdigest().encode() + b"\n" + rest)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:  # a read-only or full disk only costs the next process a compile
        warnings.warn(f"adjit: cannot write cache entry {path}: {exc}", RuntimeWarning,
                      stacklevel=3)
        return
    if skey is not None:
        mark_hot(skey)


def _build(g, skey):
    from .call import CompiledGraph
    from ..ir.core import TRANSIENT
    if TRANSIENT and any(e.prim.name in TRANSIENT for e in g.eqns):
        # a throwaway primitive (ir.core.registered): its lowering is not part of the key
        from .compile import compile_object
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
        except Exception as exc:  # object from a foreign build that will not link
            _reject(_path(key), exc)
    STATS["disk_misses"] += 1
    STATS["compiles"] += 1
    # compiled by the worker, which writes the entry (this process never loads LLVM); in this
    # process only when the worker cannot run or could not take the text
    from .background import compile_graph_object
    done = compile_graph_object(skey, f"graph {g.name}") if text_carries(g) else None
    if done is not None:
        return CompiledGraph(g, *done)
    from .compile import compile_object  # a hit does not need the lowering
    obj, meta = compile_object(g)
    cg = CompiledGraph(g, obj, meta)
    write_entry(key, obj, meta, skey)
    return cg


def _forget(prim):
    """A primitive was unregistered: drop compiled code that uses it (a primitive registered
    later under the same name may lower differently)."""
    needle = f"= {prim.name}"
    with _LOCK:
        for table in (_MEM, _FAILED):
            for k in [k for k in table if needle in k]:
                del table[k]


def _remember(skey, cg):
    with _LOCK:
        _MEM[skey] = cg
        _MEM.move_to_end(skey)
        while len(_MEM) > MEMORY_ENTRIES:
            _MEM.popitem(last=False)


def lookup(g, skey, disk=True):
    """The CompiledGraph of structure `skey` when it is ready without compiling: in memory, or
    (`disk`) an entry on disk, linked now. None otherwise; raises the CompileError of a
    structure that failed before."""
    with _LOCK:
        cg = _MEM.get(skey)
        if cg is not None:
            _MEM.move_to_end(skey)
            STATS["hits"] += 1
            return cg
    failed = _FAILED.get(skey)
    if failed is not None:
        raise failed
    if not disk or not disk_cacheable(g):
        return None
    from .call import CompiledGraph
    key = disk_key(skey)
    hit = read_entry(key)
    if hit is None:
        return None
    try:
        cg = CompiledGraph(g, *hit)
    except Exception as exc:  # object from a foreign build that will not link
        _reject(_path(key), exc)
        return None
    STATS["disk_hits"] += 1
    _remember(skey, cg)
    return cg


def disk_cacheable(g):
    """False for graphs with a throwaway primitive (ir.core.registered): their lowering is not
    part of the key."""
    from ..ir.core import TRANSIENT
    return not (TRANSIENT and any(e.prim.name in TRANSIENT for e in g.eqns))


def text_carries(g):
    """False when g's printed text (what the compile worker parses) does not carry all of g: a
    graph parameter (custom_vjp_call's `fun`, ...) holding constants prints their digest, not
    their values, so such a graph is compiled in this process."""
    for e in g.eqns:
        for p in e.params.values():
            inner = getattr(p, "graph", None)
            if inner is not None and (any(c is not None for c in inner.consts)
                                      or not text_carries(inner)):
                return False
    return True


def install(g, skey, obj, meta, stat="background_compiles"):
    """Link object code compiled elsewhere (the compile worker, or read from disk by its
    client: `stat` says which counter it adds to) for structure `skey`."""
    from .call import CompiledGraph
    cg = CompiledGraph(g, obj, meta)
    STATS[stat] += 1
    _remember(skey, cg)
    return cg


def compiled_for(g):
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
        with _LOCK:
            building = _BUILDING.setdefault(skey, threading.Lock())
        with building:  # threads asking for one structure at once: one compiles, others wait
            with _LOCK:
                cg = _MEM.get(skey)
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
                else:
                    with _LOCK:
                        _MEM[skey] = cg
                        while len(_MEM) > MEMORY_ENTRIES:
                            _MEM.popitem(last=False)
                finally:  # after _MEM / _FAILED hold the outcome: a later thread finds it
                    with _LOCK:
                        _BUILDING.pop(skey, None)
    return cg.for_graph(g)


def _own_entries():
    """Paths of the entries adjit wrote under the cache root: <2 hex>/<64 hex>.o files that
    start with adjit's magic line (any format version). Other files are never touched."""
    root = cache_dir()
    try:
        subs = [d for d in os.listdir(root) if _SUBDIR.match(d)]
    except OSError:
        return []
    out = []
    for d in sorted(subs):
        folder = os.path.join(root, d)
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in sorted(names):
            path = os.path.join(folder, name)
            if not (_ENTRY.match(name) and name.startswith(d)) or os.path.islink(path):
                continue
            try:
                with open(path, "rb") as f:
                    if f.read(len(MAGIC_ANY)) == MAGIC_ANY:
                        out.append(path)
            except OSError:
                continue
    return out


def cache_info() -> dict:
    """Entries in memory, adjit's entries and their bytes on disk, the disk path, why the disk
    cache is not used (`untrusted`: None when the folder is private or not there yet),
    hit/miss counters."""
    n = size = 0
    for path in _own_entries():
        try:
            size += os.path.getsize(path)
            n += 1
        except OSError:
            pass
    try:
        untrusted = _unsafe(os.stat(cache_dir()))
    except OSError:
        untrusted = None
    return dict(entries=len(_MEM), disk_entries=n, size=size, path=cache_dir(),
                untrusted=untrusted, **STATS)


def cache_clear(disk=False):
    """Forget compiled graphs in memory (and delete adjit's entries from the disk cache if
    `disk`; nothing else in the folder is touched)."""
    with _LOCK:
        _MEM.clear()
        _FAILED.clear()
    if disk:
        for path in _own_entries():
            try:
                os.remove(path)
            except OSError:
                pass
        hot = os.path.join(cache_dir(), "hot")
        try:
            names = os.listdir(hot)
        except OSError:
            names = []
        for name in names:  # the hot marks (64 hex digits); nothing else in the folder
            if re.fullmatch(r"[0-9a-f]{64}", name):
                try:
                    os.remove(os.path.join(hot, name))
                except OSError:
                    pass


on_register(lambda p: None, _forget)
