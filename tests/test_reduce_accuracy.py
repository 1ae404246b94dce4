"""Accuracy of native sums (issue 14.4): full and contiguous-axis f32 sums stay within 1e-6
(relative) of the float64 sum of the same values, outer-axis sums and f64 sums are no worse
than NumPy's on the same array, cumsum matches NumPy. The references are NumPy's (float64 sum,
math.fsum); before blocked pairwise summation, 64 lane accumulators each summed ~150K f32
values (relative error 1.7e-4 on 10M x 0.1)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import adjit
from adjit.runtime import compile_graph
from adjit.ir import parse_graph


def _sum_graph(shape, dt, axes, pre=""):
    """reduce_sum over `axes` of `pre`(a) (pre: 'transpose' or 'mul' for a fused producer)."""
    n = len(shape)
    keep = [d for i, d in enumerate(shape) if i not in axes]
    t = lambda s: f"{dt}[{','.join(map(str, s))}]"  # noqa: E731
    body, x = "", "a"
    if pre == "transpose":
        perm = tuple(reversed(range(n)))
        shape_t = [shape[p] for p in perm]
        body = f"  x: {t(shape_t)} = transpose[perm={perm}] a\n"
        x = "x"
    elif pre == "mul":
        body = f"  x: {t(shape)} = mul a 3.0\n"
        x = "x"
    return parse_graph(f"def f(a: {t(shape)}) -> {t(keep)}:\n{body}"
                       f"  b: {t(keep)} = reduce_sum[axes={tuple(axes)}] {x}\n  return b\n")


def _run(g, *args):
    return compile_graph(g)(list(args))[0]


def _rel(got, ref):
    ref = np.asarray(ref, np.float64)
    return float(np.max(np.abs(np.asarray(got, np.float64) - ref) / np.abs(ref)))


@pytest.mark.parametrize("n", [10_000_000, 300_000])
def test_f32_full_sum_constant(n):
    # 10M is split across threads (parallel.py), 300K is one loop
    x = np.full(n, 0.1, np.float32)
    got = _run(_sum_graph((n,), "f32", (0,)), x)
    assert _rel(got, x.astype(np.float64).sum()) < 1e-6


@pytest.mark.parametrize("shape,pre", [((2_000_000,), "mul"), ((400, 5000), "transpose"),
                                       ((5000, 400), "transpose"), ((200_000, 3), "transpose")])
def test_f32_full_sum_random(shape, pre):
    # fused producers; transposed operands give a nested (not flat) loop with long or short rows
    x = np.random.default_rng(1).random(shape, dtype=np.float32) + np.float32(0.5)
    got = _run(_sum_graph(shape, "f32", tuple(range(len(shape))), pre), x)
    ref = (x.astype(np.float64) * (3.0 if pre == "mul" else 1.0)).sum()
    assert _rel(got, ref) < 1e-6


def test_f32_contiguous_axis():
    x = np.full((8, 400_000), 0.1, np.float32)
    x[3] = np.random.default_rng(2).random(400_000, dtype=np.float32)
    got = _run(_sum_graph(x.shape, "f32", (1,)), x)
    assert _rel(got, x.astype(np.float64).sum(1)) < 1e-6


def test_f32_outer_axis_no_worse_than_numpy():
    x = np.random.default_rng(3).random((4096, 64), dtype=np.float32)
    ref = x.astype(np.float64).sum(0)
    got = _run(_sum_graph(x.shape, "f32", (0,)), x)
    assert _rel(got, ref) <= _rel(x.sum(0), ref) * 1.01 + 1e-12


def test_f32_sum_with_sibling_output():
    # the sum shares its loop nest with an elementwise output (builder.loop_unit)
    n = 3_000_000
    g = parse_graph(f"def f(a: f32[{n}]) -> (f32[{n}], f32[]):\n  c: f32[{n}] = mul a a\n"
                    f"  b: f32[] = reduce_sum[axes=(0,)] c\n  return c, b\n")
    x = np.full(n, 0.3, np.float32)
    c, s = compile_graph(g)([x])
    np.testing.assert_array_equal(c, x * x)
    assert _rel(s, (x * x).astype(np.float64).sum()) < 1e-6


@pytest.mark.parametrize("data", ["constant", "random"])
def test_f64_sum_no_worse_than_numpy(data):
    n = 4_000_000
    x = (np.full(n, 0.1) if data == "constant" else
         np.random.default_rng(4).standard_normal(n) + 0.25)
    ref = math.fsum(x)
    got = _run(_sum_graph((n,), "f64", (0,)), x)
    ulp = np.spacing(abs(ref))
    assert abs(got - ref) <= 4 * abs(x.sum() - ref) + 4 * ulp


@pytest.mark.parametrize("dt", ["f32", "f64"])
def test_cumsum_as_numpy(dt):
    x = np.random.default_rng(5).random(100_000).astype(dt.replace("f", "float"))
    g = parse_graph(f"def f(a: {dt}[100000]) -> {dt}[100000]:\n"
                    f"  b: {dt}[100000] = cumsum[axis=0] a\n  return b\n")
    np.testing.assert_array_equal(_run(g, x), np.cumsum(x))


def test_jit_numpy_front_f32_sum():
    # a call on the interpreter (first call: traced) and one in native code agree
    x = np.full(5_000_000, 0.1, np.float32)
    f = adjit.jit(lambda a: np.sum(a))
    first, second = f(x), f(x)
    ref = x.astype(np.float64).sum()
    assert _rel(first, ref) < 1e-6 and _rel(second, ref) < 1e-6
