"""The compiled-code caches: disk hits without LLVM, damaged entries, threads."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest

from adjit.ir import eval_graph, parse_graph
from adjit.runtime import cache, cache_clear, cache_info, run_graph, engine, get_compiled

G1 = "def f(a: f64[3]) -> f64[3]:\n  b: f64[3] = mul a 3.0\n  c: f64[3] = exp b\n  return c\n"
G2 = ("def f(a: f64[3]) -> f64[]:\n  b: f64[3] = sin a\n  c: f64[] = reduce_sum[axes=(0,)] b\n"
      "  return c\n")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(tmp_path))
    cache_clear()
    yield tmp_path
    cache_clear()


def _entries(d):
    return sorted(p for p in d.rglob("*.o"))


def test_memory_and_disk_hits(cache_dir):
    g = parse_graph(G1)
    x = np.array([0.0, 0.5, -1.0])
    before = dict(cache_info())
    np.testing.assert_allclose(get_compiled(g)([x])[0], np.exp(3 * x), rtol=1e-15)
    get_compiled(parse_graph(G1))([x])
    info = cache_info()
    assert info["hits"] == before["hits"] + 1 and info["compiles"] == before["compiles"] + 1
    assert info["disk_entries"] == 1 and info["size"] > 0 and info["path"] == str(cache_dir)
    cache_clear()
    get_compiled(g)([x])
    assert cache_info()["disk_hits"] == before["disk_hits"] + 1


SECOND_PROCESS = textwrap.dedent("""
    import numpy as np
    import importlib
    engine = importlib.import_module("adjit.runtime.engine")
    lower = importlib.import_module("adjit.runtime.compile")
    def boom(*a, **k):
        raise AssertionError("LLVM compilation must not run on a disk hit")
    engine.optimize = engine.emit_object = lower.lower = lower.compile_object = boom
    from adjit.ir import parse_graph
    from adjit.runtime import run_graph, cache_info
    out = run_graph(parse_graph({src!r}), [np.array([0.0, 0.5, -1.0])])[0]
    assert cache_info()["disk_hits"] == 1, cache_info()
    print(repr(out.tolist()))
""")


@pytest.mark.usefixtures("native_tier")  # checks native code itself
def test_second_process_loads_object_code_without_llvm(cache_dir):
    x = np.array([0.0, 0.5, -1.0])
    want = get_compiled(parse_graph(G1))([x])[0]
    env = dict(os.environ, ADJIT_CACHE_DIR=str(cache_dir),
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    r = subprocess.run([sys.executable, "-c", SECOND_PROCESS.format(src=G1)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert eval(r.stdout.strip()) == want.tolist()


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_corrupt_entries_are_recompiled(cache_dir, damage):
    gs = [parse_graph(G1), parse_graph(G2)]
    x = np.array([0.1, 0.2, 0.3])
    want = [eval_graph(g, [x])[0] for g in gs]
    for g in gs:
        get_compiled(g)([x])
    files = _entries(cache_dir)
    assert len(files) == 2
    for f in files:
        data = f.read_bytes()
        f.write_bytes({"truncate": data[:len(data) // 2],
                       "flip": data[:-10] + bytes(b ^ 0xFF for b in data[-10:]),
                       "empty": b"", "garbage": os.urandom(len(data))}[damage])
    cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for g, w in zip(gs, want):
            np.testing.assert_allclose(get_compiled(g)([x])[0], w, rtol=1e-14)
    assert any("discarding cache entry" in str(c.message) for c in caught)
    cache_clear()  # the rewritten entries are valid again
    for g, w in zip(gs, want):
        np.testing.assert_allclose(get_compiled(g)([x])[0], w, rtol=1e-14)


def test_swapped_entries_are_rejected(cache_dir):
    gs = [parse_graph(G1), parse_graph(G2)]
    x = np.array([0.1, 0.2, 0.3])
    want = [eval_graph(g, [x])[0] for g in gs]
    for g in gs:
        get_compiled(g)([x])
    a, b = _entries(cache_dir)
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for g, w in zip(gs, want):
            np.testing.assert_allclose(get_compiled(g)([x])[0], w, rtol=1e-14)


def test_disable_jit_uses_the_interpreter(cache_dir, monkeypatch):
    monkeypatch.setenv("ADJIT_DISABLE_JIT", "1")
    g = parse_graph(G1)
    assert get_compiled(g) is None
    before = cache_info()["compiles"]
    np.testing.assert_allclose(run_graph(g, [np.zeros(3)])[0], np.ones(3))
    assert cache_info()["compiles"] == before


def test_graphs_of_one_structure_keep_their_own_constants(cache_dir):
    from adjit.ir.core import const_node
    src = "def f(a: f64[2]) -> f64[2]:\n  c: f64[2] = const #0\n  b: f64[2] = add a c\n" \
          "  return b\n"
    g1, g2 = parse_graph(src), parse_graph(src)
    g1.consts = [const_node(np.array([1.0, 2.0]))]
    g2.consts = [const_node(np.array([10.0, 20.0]))]
    x = np.zeros(2)
    np.testing.assert_array_equal(get_compiled(g1)([x])[0], [1.0, 2.0])
    np.testing.assert_array_equal(get_compiled(g2)([x])[0], [10.0, 20.0])
    np.testing.assert_array_equal(get_compiled(g2)([x], [np.array([5.0, 6.0])])[0],
                                  [5.0, 6.0])


def test_four_threads_with_different_shapes(cache_dir):
    shapes = [(7,), (3, 5), (64, 33), (2, 1, 9)]
    errors = []

    def graph(shape):
        t = f"f64[{','.join(map(str, shape))}]"
        red = f"f64[{','.join(map(str, shape[1:]))}]"
        return parse_graph(f"def f(a: {t}, b: {t}) -> ({t}, {red}):\n"
                           f"  c: {t} = mul a b\n  d: {t} = tanh c\n"
                           f"  e: {red} = reduce_sum[axes=(0,)] d\n  return d, e\n")

    shared = get_compiled(graph((50, 20)))

    def work(k):
        try:
            rng = np.random.default_rng(k)
            for shape, cg in ((shapes[k], get_compiled(graph(shapes[k]))), ((50, 20), shared)):
                for _ in range(100):
                    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
                    d, e = cg([a, b])
                    np.testing.assert_allclose(d, np.tanh(a * b), rtol=1e-14, atol=1e-15)
                    np.testing.assert_allclose(e, np.tanh(a * b).sum(0), rtol=1e-12,
                                               atol=1e-13)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


KEY_PROBE = textwrap.dedent("""
    import sys
    from adjit.runtime import cache
    print(cache.disk_key("x"), "adjit.codegen.lower" in sys.modules)
""")


def test_cache_key_follows_the_code_generators_files(tmp_path):
    """An edit of a codegen source or of a helper .ll file (an editable install) is a new
    disk-cache key, with nothing to bump; an edit elsewhere is not. Computing the key does not
    import the lowering."""
    import adjit
    import shutil
    pkg = tmp_path / "pkg"
    shutil.copytree(os.path.dirname(adjit.__file__), pkg / "adjit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, PYTHONPATH=str(pkg), ADJIT_CACHE_DIR=str(tmp_path / "c"))

    def key():
        r = subprocess.run([sys.executable, "-c", KEY_PROBE], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        k, lowered = r.stdout.split()
        assert lowered == "False", "computing the key imported the lowering"
        return k

    def edit(rel):
        with open(pkg / "adjit" / rel, "a") as f:
            f.write("\n; edited\n" if rel.endswith(".ll") else "\n# edited\n")

    k0 = key()
    edit("viz/__init__.py")           # not part of the code generator
    assert key() == k0
    keys = {k0}
    for rel in ("codegen/mathlib.py", "codegen/kernels.py", "codegen/abi.py",
                "runtime/ll/threads.ll", "runtime/engine.py"):
        edit(rel)
        keys.add(key())
    assert len(keys) == 6, "an edit of the code generator kept an old key"


def test_the_code_generators_digest_covers_its_files(monkeypatch, tmp_path):
    """The digest reads the bytes of KEY_SOURCES (cached per process): the lowering, the math
    library, the helper IR and the engine's settings."""
    files = cache.key_files()
    for rel in ("codegen/lower.py", "codegen/mathlib.py", "codegen/kernels.py",
                "runtime/ll/gemm.ll", "runtime/ll/threads.ll", "runtime/engine.py"):
        assert rel.replace("/", os.sep) in files
    k0 = cache.disk_key("x")
    src = tmp_path / "adjit"
    (src / "codegen").mkdir(parents=True)
    (src / "codegen" / "lower.py").write_text("# a lowering\n")
    monkeypatch.setattr(cache, "PACKAGE_DIR", str(src))
    monkeypatch.setattr(cache, "_DIGEST", None)
    k1 = cache.disk_key("x")
    monkeypatch.setattr(cache, "_DIGEST", None)
    (src / "codegen" / "lower.py").write_text("# another lowering\n")
    k2 = cache.disk_key("x")
    assert len({k0, k1, k2}) == 3


DAMAGE = textwrap.dedent("""
    import hashlib, json, os, sys, warnings
    import numpy as np
    from adjit.ir import parse_graph
    from adjit.runtime import cache, get_compiled, cache_clear
    g = parse_graph({src!r})
    rng = np.random.default_rng(0)
    a, w = rng.standard_normal((64, 32)), rng.standard_normal((32, 16))
    want = np.tanh(a @ w).sum()
    path = cache._path(cache.disk_key(g.structure_key()))
    good = open(path, "rb").read()
    i0 = good.index(b"\\n{{")                        # the newline before the header
    i1 = good.index(b"\\n", i0 + 1)                   # end of the header
    head = json.loads(good[i0 + 1:i1])
    assert head["workspace"] > 0 and head["imports"] == ["dgemm"], head

    def flip(data, i):
        return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]

    def at(field):       # a byte inside the value of header field `field`
        return good.index(json.dumps(field).encode() + b": ") + len(field) + 4 + 1

    def signed(**fields):   # a header with a valid checksum but bad fields
        h = dict(head, **fields)
        h = {{k: v for k, v in h.items() if v is not ...}}
        rest = json.dumps(h).encode() + b"\\n" + good[i1 + 1:]
        return cache.MAGIC + hashlib.sha256(rest).hexdigest().encode() + b"\\n" + rest

    cases = {{"empty": b"", "magic": flip(good, 3), "checksum line": flip(good, i0 - 5),
             "separator": flip(good, i1), "object start": flip(good, i1 + 1),
             "object middle": flip(good, (i1 + len(good)) // 2), "object end": flip(good, -1),
             "appended": good + b"\\0", "garbage": os.urandom(len(good))}}
    for field in head:
        cases["field " + field] = flip(good, at(field))
    # a digit of the workspace size made smaller: JSON stays valid
    ws = str(head["workspace"]).encode()
    j = good.index(b'"workspace": ' + ws) + len(b'"workspace": ')
    cases["workspace digit"] = good[:j] + b"1" + good[j + 1:]
    for cut in (2, len(cache.MAGIC) + 10, i0, i0 + 10, i1, i1 + 1, len(good) - 1):
        cases[f"truncated at {{cut}}"] = good[:cut]
    for name, value in [("workspace", -1), ("workspace", 1 << 50), ("workspace", "8192"),
                        ("workspace", True), ("workspace", 8192.5), ("symbol", ""),
                        ("symbol", "a b"), ("symbol", 5), ("symbol", "no_such_symbol"),
                        ("imports", "dgemm"), ("imports", [5]), ("imports", ["../x"]),
                        ("imports", ["no_such_routine"]), ("fastcall", 5),
                        ("fastcall", "bad name"), ("length", -1), ("length", "1"),
                        ("key", "0" * 64), ("key", ...), ("extra", 1)]:
        cases[f"signed {{name}}={{value!r}}"] = signed(**{{name: value}})
    rest = b"[]\\n" + good[i1 + 1:]
    cases["signed header list"] = (cache.MAGIC + hashlib.sha256(rest).hexdigest().encode()
                                   + b"\\n" + rest)
    for name, data in cases.items():
        print("case", name, flush=True)
        with open(path, "wb") as f:
            f.write(data)
        cache_clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = get_compiled(g)([a, w])[0]
        assert abs(got - want) <= 1e-9 * abs(want), (name, got, want)
        msgs = [str(c.message) for c in caught]
        assert any("discarding cache entry" in m for m in msgs), (name, msgs)
        assert open(path, "rb").read() == good, name   # recompiled and stored again
    print("all", len(cases))
""")


def test_damaged_entries_never_crash(cache_dir):
    """Every part of an entry damaged (header fields, lengths, symbol names, object code,
    truncation, re-signed headers with bad fields): a warning, a recompile and the right
    result, never a crash - in a fresh process, as a damaged file is met in practice."""
    src = ("def f(a: f64[64,32], w: f64[32,16]) -> f64[]:\n"
           "  b: f64[64,16] = dot_general[contract=((1,), (0,)), batch=((), ())] a w\n"
           "  c: f64[64,16] = tanh b\n  d: f64[] = reduce_sum[axes=(0, 1)] c\n  return d\n")
    rng = np.random.default_rng(0)
    get_compiled(parse_graph(src))([rng.standard_normal((64, 32)),
                                       rng.standard_normal((32, 16))])
    env = dict(os.environ, ADJIT_CACHE_DIR=str(cache_dir),
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    r = subprocess.run([sys.executable, "-c", DAMAGE.format(src=src)], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    assert r.stdout.strip().splitlines()[-1].startswith("all "), r.stdout


def test_cache_clear_and_info_touch_only_adjits_entries(cache_dir):
    """Files adjit did not write (another name, another folder, or an entry's name without
    adjit's magic line) are neither counted nor deleted by `adjit cache clear`."""
    get_compiled(parse_graph(G1))([np.zeros(3)])
    (mine,) = _entries(cache_dir)
    foreign = {cache_dir / "notes.o": b"my notes",
               cache_dir / "zz" / "build.o": b"\x7fELF object of another project",
               mine.parent / ("0" * 64 + ".o"): b"\x7fELF same name pattern, wrong folder",
               cache_dir / "ab" / ("ab" + "1" * 62 + ".o"): b"\x7fELF name pattern, no magic",
               cache_dir / "ab" / "readme.txt": b"text"}
    for f, data in foreign.items():
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(data)
    info = cache_info()
    assert info["disk_entries"] == 1 and info["size"] == mine.stat().st_size
    env = dict(os.environ, ADJIT_CACHE_DIR=str(cache_dir),
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    r = subprocess.run([sys.executable, "-m", "adjit", "cache", "clear"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "removed 1 entries" in r.stdout, r.stdout
    assert not mine.exists()
    for f, data in foreign.items():
        assert f.read_bytes() == data, f
    assert cache_info()["disk_entries"] == 0


def _mode(p):
    return os.stat(p).st_mode & 0o7777


def test_cache_folders_are_private_below_a_shared_sticky_parent(tmp_path, monkeypatch):
    """The cache root and its folders are created 0700 and entries 0600; a world-writable
    sticky folder above the root (like /tmp) is fine."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    root = shared / "me" / "adjit"
    monkeypatch.setenv("ADJIT_CACHE_DIR", str(root))
    cache_clear()
    x = np.array([0.1, 0.2, 0.3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_compiled(parse_graph(G1))([x])
        (entry,) = _entries(root)
        assert (_mode(root), _mode(entry.parent), _mode(entry)) == (0o700, 0o700, 0o600)
        before = cache_info()["disk_hits"]
        cache_clear()
        get_compiled(parse_graph(G1))([x])
        assert cache_info()["disk_hits"] == before + 1
    cache_clear()


@pytest.mark.parametrize("unsafe", ["root group-writable", "folder world-writable",
                                    "entry world-writable", "another owner"])
def test_untrusted_cache_folders_are_not_used(cache_dir, monkeypatch, unsafe):
    """A cache folder (the root or an entry's folder) or entry another user owns or may write
    is never loaded from (another user could plant code there) nor written to: one warning,
    then graphs compile in memory with the right results."""
    x = np.array([0.1, 0.2, 0.3])
    want = [eval_graph(parse_graph(G), [x])[0] for G in (G1, G2)]
    get_compiled(parse_graph(G1))([x])
    (entry,) = _entries(cache_dir)
    if unsafe == "root group-writable":
        os.chmod(cache_dir, 0o770)
    elif unsafe == "folder world-writable":
        os.chmod(entry.parent, 0o777)
    elif unsafe == "entry world-writable":
        os.chmod(entry, 0o666)
    else:   # running as root here: pretend the folders belong to someone else
        monkeypatch.setattr(cache, "_uid", lambda: os.stat(cache_dir).st_uid + 1)
    cache_clear()
    before = dict(cache_info())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for G, w in zip((G1, G2, G1), want + want[:1]):
            cache_clear()
            np.testing.assert_allclose(get_compiled(parse_graph(G))([x])[0], w,
                                       rtol=1e-14)
    info = cache_info()
    assert (info["untrusted"] is not None) == (unsafe in ("root group-writable", "another owner"))
    msgs = [str(c.message) for c in caught]
    if unsafe == "entry world-writable":
        # discarded and replaced by a private entry, which the third call loads
        assert any("discarding cache entry" in m and "writable" in m for m in msgs), msgs
        assert info["compiles"] == before["compiles"] + 2
        assert info["disk_hits"] == before["disk_hits"] + 1 and _mode(entry) == 0o600
    else:
        assert info["disk_hits"] == before["disk_hits"], "loaded code from an untrusted folder"
        assert info["compiles"] == before["compiles"] + 3
        bad = [m for m in msgs if "not using the disk cache" in m]
        assert len(bad) == 1, msgs          # once, however many graphs
        assert ("owned by uid" if unsafe == "another owner" else "writable") in bad[0]
        # nothing written into the untrusted folders either
        unsafe_dir = entry.parent if unsafe == "folder world-writable" else cache_dir
        assert [p.name for p in _entries(unsafe_dir)] == [entry.name]


@pytest.mark.usefixtures("native_tier")  # checks native code itself
@pytest.mark.parametrize("where", ["worker", "in process"])
def test_compile_errors_fall_back_to_the_interpreter_once(cache_dir, monkeypatch, where):
    # ADJIT_TIER=native compiles in the compile worker; in this process only when the worker
    # cannot run. A CompileError in either place: one warning, the interpreter's result, the
    # structure is not compiled again.
    import importlib
    from adjit.runtime import background
    from conftest import broken_worker
    import adjit.runtime as runtime
    lower = importlib.import_module("adjit.runtime.compile")
    monkeypatch.setattr(runtime, "_CANNOT_COMPILE_WARNED", set())  # (warned once per graph)
    log = cache_dir / "compiles.log"
    calls = []

    def broken(g):
        calls.append(g)
        raise engine.CompileError(f"graph {g.name}", "test failure")
    monkeypatch.setattr(lower, "compile_object", broken)
    if where == "worker":
        stop = broken_worker(monkeypatch, log)
        next(stop)
    else:
        monkeypatch.setattr(background, "_worker_usable", lambda: False)
    try:
        g = parse_graph(G2)
        x = np.array([0.1, 0.2, 0.3])
        with pytest.warns(RuntimeWarning, match="test failure"):
            out = run_graph(g, [x])
        np.testing.assert_allclose(out[0], np.sin(x).sum())
        run_graph(g, [x])
        compiled = log.read_text().split() if where == "worker" else calls
        assert len(compiled) == 1, compiled
        assert (not calls) if where == "worker" else not log.exists()
        with pytest.raises(engine.CompileError, match="test failure"):
            get_compiled(g)
    finally:
        if where == "worker":
            next(stop, None)


def test_adjits_parses_hold_one_lock(monkeypatch):
    # CPython 3.11 fails two threads that build `ast` trees at once ("AST constructor recursion
    # depth mismatch", gh-106905: seen when test_four_threads_with_different_shapes parsed IR
    # text in four threads): every ast.parse adjit makes, and inspect.signature of a builtin
    # (which parses its text signature), runs under adjit._ast.LOCK
    import ast
    import inspect

    from adjit import _ast
    from adjit.tracer import np_dispatch, trace_args
    seen = []
    real_parse, real_sig = ast.parse, inspect.signature

    def parse(*a, **k):
        seen.append(("parse", _ast.LOCK._is_owned()))
        return real_parse(*a, **k)

    def signature(*a, **k):
        seen.append(("signature", _ast.LOCK._is_owned()))
        return real_sig(*a, **k)
    monkeypatch.setattr(ast, "parse", parse)
    monkeypatch.setattr(inspect, "signature", signature)
    parse_graph("def f(a: f64[3]) -> f64[3]:\n"
                "  b: f64[3] = broadcast_in_dim[shape=(3,), dims=(0,)] a\n  return b\n")
    np_dispatch._signatures.__wrapped__("concatenate", np_dispatch.numpy_function("sum"))
    trace_args.positional_params(np.add)
    assert {k for k, _ in seen} == {"parse", "signature"}
    assert all(held for _, held in seen), seen
