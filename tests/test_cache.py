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


def test_cache_key_changes_with_the_lowering_version(monkeypatch):
    import importlib
    lower = importlib.import_module("adjit.codegen.lower")
    k1 = cache.disk_key("x")
    monkeypatch.setattr(lower, "LOWERING_VERSION", "test")
    assert cache.disk_key("x") != k1


def test_compile_errors_fall_back_to_the_interpreter_once(cache_dir, monkeypatch):
    import importlib
    lower = importlib.import_module("adjit.runtime.compile")
    calls = []

    def broken(g):
        calls.append(g)
        raise engine.CompileError(f"graph {g.name}", "test failure")
    monkeypatch.setattr(lower, "compile_object", broken)
    g = parse_graph(G2)
    x = np.array([0.1, 0.2, 0.3])
    with pytest.warns(RuntimeWarning, match="test failure"):
        out = run_graph(g, [x])
    np.testing.assert_allclose(out[0], np.sin(x).sum())
    run_graph(g, [x])
    assert len(calls) == 1
    with pytest.raises(engine.CompileError):
        get_compiled(g)
