"""The call path after the performance work: the METH_FASTCALL entry, workspaces kept between
calls (one per running call), explicit constants on the generated fast path, the GIL released
by graphs with enough work, the BLAS and thread helpers. Correctness only (no timings)."""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import adjit
from adjit.runtime import compile_graph
from adjit.codegen.builder import FnBuilder
from adjit.codegen.lower import LOWERINGS
from adjit.ir import GuardFailed, parse_graph
from adjit.runtime import call, native

TEMPS = ("def f(a: f64[64,8], b: f64[8,8]) -> f64[64,8]:\n"
         "  c: f64[64,8] = tanh a\n"
         "  d: f64[64,8] = dot_general[contract=((1,), (0,)), batch=((), ())] c b\n"
         "  e: f64[64,8] = mul d c\n  return e\n")


def _want(a, b):
    return (np.tanh(a) @ b) * np.tanh(a)


def test_workspace_is_reused_and_threads_do_not_share_it():
    cg = compile_graph(parse_graph(TEMPS))
    assert cg.ws_bytes > 0
    rng = np.random.default_rng(0)
    inputs = [(rng.standard_normal((64, 8)), rng.standard_normal((8, 8))) for _ in range(8)]
    errors = []

    def work(k):
        a, b = inputs[k]
        for _ in range(200):
            got = cg([a, b])[0]
            if not np.allclose(got, _want(a, b), rtol=1e-12):
                errors.append(k)
                return
    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert 1 <= len(cg._ws_pool) <= call.WS_POOL


def test_outputs_are_fresh_arrays():
    cg = compile_graph(parse_graph(TEMPS))
    a, b = np.ones((64, 8)), np.eye(8)
    first, second = cg([a, b])[0], cg([a, b])[0]
    assert first is not second and not np.shares_memory(first, second)
    assert first.flags.owndata and first.flags.writeable


def test_explicit_constants_take_the_fast_path_and_bind():
    src = ("def f(a: f64[3]) -> f64[3]:\n  k: f64[3] = const #0\n  b: f64[3] = mul a k\n"
           "  return b\n")
    g = parse_graph(src)
    cg = compile_graph(g)
    a = np.arange(3.0)
    slow_calls = []
    orig = cg._call
    cg._call = lambda *args: slow_calls.append(1) or orig(*args)
    cg._fast = None
    for k in (np.full(3, 2.0), np.full(3, -1.0), np.arange(3.0)):
        np.testing.assert_array_equal(cg([a], [k])[0], a * k)
    assert not slow_calls
    # a constant of the wrong layout still works (the slow path copies it)
    k = np.arange(6.0)[::2]
    np.testing.assert_array_equal(cg([a], [k])[0], a * k)
    assert slow_calls


def test_fastcall_statuses_and_reference_counts():
    g = parse_graph("def f(a: f64[], b: i64[2], c: f64[4]) -> f64[2]:\n"
                    "  p: bool[] = gt a 0.0\n  guard p == true\n"
                    "  d: f64[2] = gather[axis=0] c b\n  return d\n")
    cg = compile_graph(g)
    assert cg._fc is not None
    c = np.arange(4.0)
    with pytest.raises(GuardFailed):
        cg([np.array(-1.0), np.array([0, 1]), c])
    with pytest.raises(IndexError):
        cg([np.array(1.0), np.array([0, 7]), c])

    def calls():
        for a, i in ((1.0, [3, 1]), (-1.0, [0, 1]), (1.0, [0, 7])) * 300:
            try:
                cg([np.array(a), np.array(i), c])
            except (GuardFailed, IndexError):
                pass
    calls()
    before = [sys.getrefcount(s) for s in call._STATUS]
    calls()  # each status returned 300 times: its reference released every time
    assert [sys.getrefcount(s) for s in call._STATUS] == before


def test_graphs_with_enough_work_release_the_gil():
    big = parse_graph("def f(a: f64[200000]) -> f64[]:\n  b: f64[200000] = sin a\n"
                      "  c: f64[] = reduce_sum[axes=(0,)] b\n  return c\n")
    small = parse_graph("def f(a: f64[8]) -> f64[8]:\n  b: f64[8] = sin a\n  return b\n")
    fb_big, fb_small = FnBuilder(big, LOWERINGS, "t"), FnBuilder(small, LOWERINGS, "t")
    fb_big.build()
    fb_small.build()
    assert fb_big.releases_gil() and "PyEval_SaveThread" in fb_big.imports
    assert not fb_small.releases_gil() and "PyEval_SaveThread" not in fb_small.imports
    a = np.linspace(-3, 3, 200000)
    assert np.isclose(compile_graph(big)([a])[0], np.sin(a).sum(), rtol=1e-10, atol=1e-9)


def test_blas_helpers_keep_the_pool_setting_and_products_right():
    info = native.blas_info()
    assert set(info) >= {"library", "ilp64", "thread_control"}
    f = adjit.jit(lambda a, b: a @ b)
    rng = np.random.default_rng(3)
    for n in (5, 70, 300):  # inline loops, one BLAS call, two halves on two threads
        a = rng.standard_normal((n, n)).astype(np.float32)
        b = rng.standard_normal((n, n)).astype(np.float32)
        for _ in range(2):
            np.testing.assert_allclose(f(a, b), a @ b, rtol=2e-4, atol=2e-4)


def test_thread_setting_round_trips():
    old = native.set_num_threads(1)
    try:
        assert native.get_num_threads() == 1
        assert native.set_num_threads(3) == 1
        assert native.get_num_threads() == 3
    finally:
        native.set_num_threads(old)


def test_lapack_calls_run_with_a_one_thread_blas_pool_and_restore_it():
    # OpenBLAS's spin-waiting pool made potrf/trsm 3-100x slower on a busy machine (W10):
    # each LAPACK call runs inside the pool guard the products use, and the setting comes back
    import ctypes
    from adjit.runtime import blas
    g = parse_graph("def f(a: f64[60,60], b: f64[60,3]) -> f64[60,3]:\n"
                    "  l: f64[60,60] = cholesky a\n"
                    "  x: f64[60,3] = triangular_solve[lower=True, trans=True, "
                    "unit_diagonal=False] l b\n  return x\n")
    fb = FnBuilder(g, LOWERINGS, "t")
    fb.build()
    assert {"blas_single_enter", "blas_single_leave"} <= set(fb.imports)
    rng = np.random.default_rng(5)
    m = rng.standard_normal((60, 60))
    a, b = m @ m.T + 60 * np.eye(60), rng.standard_normal((60, 3))
    prov = blas.provider()
    before = ctypes.CFUNCTYPE(ctypes.c_int32)(prov[3])() if prov[3] else None
    x = compile_graph(g)([a, b])[0]
    scipy_linalg = pytest.importorskip("scipy.linalg")
    # trsm runs on the row-major buffers with side and uplo flipped (codegen/lapack.py): the
    # interpreter's call bit for bit, SciPy's (side 'L' on column-major copies) to rounding
    from adjit.ir import eval_graph
    np.testing.assert_array_equal(x, eval_graph(g, [a, b])[0])
    np.testing.assert_allclose(
        x, scipy_linalg.solve_triangular(np.linalg.cholesky(a), b, lower=True, trans=1),
        rtol=1e-13, atol=1e-15)
    if before is not None:
        assert ctypes.CFUNCTYPE(ctypes.c_int32)(prov[3])() == before
