"""Random fused programs (elementwise chains, broadcasts, reductions, transposes, slices):
compiled == interpreter, with inputs in every layout (C, Fortran, negative and zero strides,
slices) and shapes including empty and size-1 dimensions. Plus checks that fusion happens."""
from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adjit.codegen import compile_graph
from adjit.codegen.builder import FnBuilder
from adjit.codegen.lower import LOWERINGS
from adjit.ir import AType, eval_graph, extract, new_trace, ops, parse_graph
from adjit.ir.core import Node

KINDS = ("unary", "binary", "literal", "bcast", "reduce", "transpose", "select", "slice")
UNARY = ("tanh", "sin", "neg", "abs", "exp", "logistic", "cos", "expm1")
BINARY = ("add", "sub", "mul", "div", "maximum", "minimum")
LAYOUTS = ("c", "fortran", "reversed", "broadcast", "strided")


@st.composite
def programs(draw):
    rank = draw(st.integers(0, 3))
    shape = tuple(draw(st.integers(0, 4)) for _ in range(rank))
    n_in = draw(st.integers(1, 3))
    steps = [draw(st.tuples(st.sampled_from(KINDS), st.integers(0, 10 ** 6),
                            st.integers(0, 10 ** 6))) for _ in range(draw(st.integers(1, 8)))]
    layouts = [draw(st.sampled_from(LAYOUTS)) for _ in range(n_in)]
    dt = draw(st.sampled_from(("f64", "f32")))
    n_out = draw(st.integers(1, 2))
    return shape, n_in, steps, layouts, dt, n_out


def _step(pool, kind, a, b):
    x = pool[a % len(pool)]
    shp = x.type.shape
    same = [p for p in pool if p.type.shape == shp]
    y = same[b % len(same)]
    if kind == "unary":
        return getattr(ops, UNARY[b % len(UNARY)])(x)
    if kind == "binary":
        return getattr(ops, BINARY[a % len(BINARY)])(x, y)
    if kind == "literal":
        lit = (0.5, -2.0, 3.0)[b % 3]
        return getattr(ops, BINARY[a % 4])(lit, x) if b % 2 else getattr(ops, BINARY[a % 4])(x, lit)
    if kind == "bcast":
        if len(shp) >= 4:
            return None
        new = (b % 3 + 1,) + shp
        return ops.broadcast_in_dim(x, shape=new, dims=tuple(range(1, len(new))))
    if kind == "reduce":
        if not shp:
            return None
        axes = tuple(i for i in range(len(shp)) if (b >> i) & 1) or (b % len(shp),)
        if any(shp[i] == 0 for i in axes):
            return ops.reduce_sum(x, axes)
        return ops.reduce_sum(x, axes) if a % 2 else ops.reduce_max(x, axes=axes)
    if kind == "transpose":
        perm = tuple(np.random.default_rng(b).permutation(len(shp)))
        return ops.transpose(x, perm)
    if kind == "select":
        return ops.select(ops.gt(x, 0.0), x, y)
    if kind == "slice":
        if not shp:
            return None
        start = tuple(min(1, d) if (b >> i) & 1 else 0 for i, d in enumerate(shp))
        strides = tuple(1 + ((b >> (i + 4)) & 1) for i in range(len(shp)))
        return ops.slice(x, start=start, limit=shp, strides=strides)
    raise AssertionError(kind)


def _layout(arr, how, rng):
    if arr.ndim == 0:
        return arr
    if how == "fortran":
        return np.asfortranarray(arr)
    if how == "reversed" and arr.ndim:
        return np.ascontiguousarray(arr[::-1])[::-1]
    if how == "broadcast" and arr.ndim and arr.shape[0] > 0:
        return np.broadcast_to(arr[:1], arr.shape)
    if how == "strided":
        big = np.empty(tuple(2 * d for d in arr.shape), arr.dtype)
        view = big[tuple(slice(None, None, 2) for _ in arr.shape)]
        view[...] = arr
        return view
    return arr


@settings(max_examples=int(os.environ.get("ADJIT_FUSION_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_random_fused_programs(prog):
    shape, n_in, steps, layouts, dt, n_out = prog
    with new_trace("fusion") as tr:
        ins = [Node(None, AType(shape, dt), None, tr) for _ in range(n_in)]
        pool = list(ins)
        for kind, a, b in steps:
            out = _step(pool, kind, a, b)
            if out is not None and type(out) is Node:
                pool.append(out)
        outs = pool[-n_out:] if len(pool) > n_in else pool[:1]
        g = extract(outs, tr, inputs=ins)
    rng = np.random.default_rng(len(steps))
    npdt = np.float64 if dt == "f64" else np.float32
    args = [_layout(np.asarray(rng.uniform(-2, 2, shape), npdt), how, rng) for how in layouts]
    with np.errstate(all="ignore"):
        want = eval_graph(g, [np.array(a) for a in args])
        got = compile_graph(g)(args)
    tol = dict(rtol=1e-12, atol=1e-12) if dt == "f64" else dict(rtol=2e-5, atol=2e-5)
    for g_, w in zip(got, want):
        assert g_.shape == np.shape(w) and g_.dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g_, w, equal_nan=True, **tol)


def _temps(text):
    g = parse_graph(text)
    fb = FnBuilder(g, LOWERINGS, "t")
    fb.build()
    return fb.plan.materialised - set(fb.plan.out_slot), fb.ws_bytes


def test_elementwise_chain_broadcast_and_reduction_fuse_without_temporaries():
    temps, ws = _temps(
        "def f(a: f64[3,4], b: f64[4]) -> f64[3]:\n"
        "  c: f64[3,4] = broadcast_in_dim[shape=(3, 4), dims=(1,)] b\n"
        "  d: f64[3,4] = mul a c\n  e: f64[3,4] = exp d\n  g: f64[3,4] = add e 1.0\n"
        "  h: f64[3] = reduce_sum[axes=(1,)] g\n  return h\n")
    assert not temps and ws == 0


def test_shared_value_in_one_loop_is_not_materialised():
    temps, _ = _temps("def f(a: f64[8]) -> f64[8]:\n  b: f64[8] = logistic a\n"
                      "  c: f64[8] = sub 1.0 b\n  d: f64[8] = mul b c\n  return d\n")
    assert not temps


def test_expensive_value_under_an_expanding_broadcast_is_materialised():
    temps, ws = _temps("def f(a: f64[4]) -> f64[100,4]:\n  b: f64[4] = exp a\n"
                       "  c: f64[100,4] = broadcast_in_dim[shape=(100, 4), dims=(1,)] b\n"
                       "  return c\n")
    assert len(temps) == 1 and ws == 64
