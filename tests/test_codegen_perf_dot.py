"""dot_general on the fast paths: axes of extent 1 squeezed away before the GEMM layout check,
small products as inline loops, large ones through BLAS (split in halves on two threads from
2^22 multiply-adds). Compiled == np.einsum; correctness only."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adjit.runtime import compile_graph
from adjit.codegen import kernels
from adjit.codegen.lower import lower
from adjit.ir import parse_graph
from adjit.runtime import native

LETTERS = "abcdefgh"


def _src(xs, ys, lc, rc, lb, rb, dt):
    nb = len(lb)
    xf = [a for a in range(len(xs)) if a not in lc and a not in lb]
    yf = [a for a in range(len(ys)) if a not in rc and a not in rb]
    out = [xs[a] for a in lb] + [xs[a] for a in xf] + [ys[a] for a in yf]
    t = lambda s: f"{dt}[{','.join(map(str, s))}]"  # noqa: E731
    src = (f"def f(x: {t(xs)}, y: {t(ys)}) -> {t(out)}:\n"
           f"  z: {t(out)} = dot_general[contract=({tuple(lc)}, {tuple(rc)}), "
           f"batch=({tuple(lb)}, {tuple(rb)})] x y\n  return z\n")
    # einsum spec
    xl, yl = [None] * len(xs), [None] * len(ys)
    it = iter(LETTERS)
    for a, b in zip(lb, rb):
        xl[a] = yl[b] = next(it)
    for a, b in zip(lc, rc):
        xl[a] = yl[b] = next(it)
    for a in xf:
        xl[a] = next(it)
    for a in yf:
        yl[a] = next(it)
    o = [xl[a] for a in lb] + [xl[a] for a in xf] + [yl[a] for a in yf]
    assert nb == len(rb)
    return src, f"{''.join(xl)},{''.join(yl)}->{''.join(o)}"


@st.composite
def products(draw):
    nb = draw(st.integers(0, 1))
    nc = draw(st.integers(1, 2))
    nxf, nyf = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    ext = st.sampled_from((1, 1, 2, 3, 5, 8))
    batch = [draw(ext) for _ in range(nb)]
    cont = [draw(ext) for _ in range(nc)]
    xfree = [draw(ext) for _ in range(nxf)]
    yfree = [draw(ext) for _ in range(nyf)]
    # axes: batch first (GEMM needs it), contracted and free axes in a drawn order
    xorder = draw(st.permutations(["c"] * nc + ["f"] * nxf)) if nc + nxf else []
    yorder = draw(st.permutations(["c"] * nc + ["f"] * nyf)) if nc + nyf else []
    xs, ys, lc, rc = list(batch), list(batch), [], []
    ci = fi = 0
    for k in xorder:
        if k == "c":
            lc.append(len(xs))
            xs.append(cont[ci])
            ci += 1
        else:
            xs.append(xfree[fi])
            fi += 1
    cpos = {}
    ci = fi = 0
    for k in yorder:
        if k == "c":
            cpos[ci] = len(ys)
            ys.append(cont[ci])
            ci += 1
        else:
            ys.append(yfree[fi])
            fi += 1
    rc = [cpos[i] for i in range(nc)]
    lb = rb = list(range(nb))
    dt = draw(st.sampled_from(("f64", "f32", "i64", "i32")))
    return xs, ys, lc, rc, lb, rb, dt


def _check(xs, ys, lc, rc, lb, rb, dt):
    src, spec = _src(xs, ys, lc, rc, lb, rb, dt)
    g = parse_graph(src)
    rng = np.random.default_rng(len(src))
    npdt = {"f64": np.float64, "f32": np.float32, "i64": np.int64, "i32": np.int32}[dt]
    x = (rng.standard_normal(xs) * 4).astype(npdt)
    y = (rng.standard_normal(ys) * 4).astype(npdt)
    got = compile_graph(g)([x, y])[0]
    want = np.einsum(spec, x.astype(np.float64), y.astype(np.float64))
    if dt in ("f64", "f32"):
        tol = 1e-12 if dt == "f64" else 2e-5
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 10)
    else:
        np.testing.assert_array_equal(got, want.astype(npdt))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(products(), st.sampled_from((0, 2048, 10 ** 9)))
def test_random_products(prod, small):
    old = kernels.SMALL_GEMM
    kernels.SMALL_GEMM = small  # all through BLAS / the default / all inline loops
    try:
        _check(*prod)
    finally:
        kernels.SMALL_GEMM = old


def test_size_one_axes_do_not_hide_a_matrix_product():
    # [16,16] x [16,16,1] contracting axis 1 with 1: a GEMM once the unit axis is dropped
    src = ("def f(x: f64[16,16], y: f64[16,16,1]) -> f64[16,16,1]:\n"
           "  z: f64[16,16,1] = dot_general[contract=((1,), (1,)), batch=((), ())] x y\n"
           "  return z\n")
    old = kernels.SMALL_GEMM
    kernels.SMALL_GEMM = 0
    try:
        cg = compile_graph(parse_graph(src))
    finally:
        kernels.SMALL_GEMM = old
    assert cg.meta["imports"] == ["dgemm"]
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 16)), rng.standard_normal((16, 16, 1))
    np.testing.assert_allclose(cg([x, y])[0], np.einsum("ab,cbd->acd", x, y), rtol=1e-13)


@pytest.mark.parametrize("dt", ["f32", "f64"])
@pytest.mark.parametrize("xl,yl", [("N", "N"), ("T", "N"), ("N", "T"), ("T", "T")])
@pytest.mark.parametrize("M,N", [(255, 130), (130, 255)])
def test_large_products_split_on_threads_match_numpy(dt, xl, yl, M, N):
    # 1e7 multiply-adds, split in halves of the row-major rows (BLAS n, M > N) or of the
    # columns (BLAS m, N > M)
    K = 300
    xs = (M, K) if xl == "N" else (K, M)
    ys = (K, N) if yl == "N" else (N, K)
    lc = (1,) if xl == "N" else (0,)
    rc = (0,) if yl == "N" else (1,)
    t = f"{dt}"
    src = (f"def f(x: {t}[{xs[0]},{xs[1]}], y: {t}[{ys[0]},{ys[1]}]) -> {t}[{M},{N}]:\n"
           f"  z: {t}[{M},{N}] = dot_general[contract=({lc}, {rc}), batch=((), ())] x y\n"
           f"  return z\n")
    cg = compile_graph(parse_graph(src))
    npdt = np.float32 if dt == "f32" else np.float64
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(xs).astype(npdt), rng.standard_normal(ys).astype(npdt)
    want = (x if xl == "N" else x.T).astype(np.float64) @ (y if yl == "N" else y.T)
    prev = native.get_num_threads()
    try:
        res = []
        for n in (1, 2):
            native.set_num_threads(n)
            res.append(cg([x, y])[0])
    finally:
        native.set_num_threads(prev)
    np.testing.assert_array_equal(res[0], res[1])
    tol = 1e-4 if dt == "f32" else 1e-12
    np.testing.assert_allclose(res[1], want, rtol=tol, atol=tol * 10)


def test_matrix_products_of_one_signature_share_one_gemm_helper():
    """Every BLAS product of one signature (dtype, layouts, batch, sizes) calls one internal
    function of the module holding the ?gemm arguments (issue 18 item 5: an MLP stack's many
    products kept LLVM busy with their argument set-up); batched and transposed ones too."""
    src = ("def f(x: f64[3,20,30], y: f64[3,30,40], a: f64[20,30], b: f64[30,40], "
           "c: f64[40,30]) -> (f64[3,20,40], f64[20,40], f64[20,40], f64[20,40]):\n"
           "  z: f64[3,20,40] = dot_general[contract=((2,), (1,)), batch=((0,), (0,))] x y\n"
           "  p: f64[20,40] = dot_general[contract=((1,), (0,)), batch=((), ())] a b\n"
           "  q: f64[20,40] = dot_general[contract=((1,), (1,)), batch=((), ())] a c\n"
           "  e: f64[20,30] = sin a\n"
           "  r: f64[20,40] = dot_general[contract=((1,), (0,)), batch=((), ())] e b\n"
           "  return z, p, q, r\n")
    g = parse_graph(src)
    text, _ = lower(g)
    helpers = re.findall(r"define internal void @\"?(adjit_gemm_\w+)", text)
    assert len(helpers) == 3, helpers  # batched, N-N (used twice), transposed
    assert text.count("call void @\"adjit_dgemm\"") + text.count("call void @adjit_dgemm(") == 3
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3, 20, 30)), rng.standard_normal((3, 30, 40))
    a, b, c = (rng.standard_normal(s) for s in ((20, 30), (30, 40), (40, 30)))
    z, p, q, r = compile_graph(g)([x, y, a, b, c])
    np.testing.assert_allclose(z, x @ y, rtol=1e-13)
    np.testing.assert_allclose(p, a @ b, rtol=1e-13)
    np.testing.assert_allclose(q, a @ c.T, rtol=1e-13)
    np.testing.assert_allclose(r, np.sin(a) @ b, rtol=1e-13)
