"""Random fused programs (elementwise chains, broadcasts, reductions, transposes, slices):
compiled == interpreter, with inputs in every layout (C, Fortran, negative and zero strides,
slices) and shapes including empty and size-1 dimensions. Plus checks that fusion happens."""
from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adjit.runtime import compile_graph
from adjit.codegen.builder import FnBuilder
from adjit.codegen.lower import LOWERINGS
from adjit.ir import AType, eval_graph, extract, new_trace, ops, parse_graph
from adjit.ir.core import Node

KINDS = ("unary", "binary", "literal", "bcast", "reduce", "transpose", "select", "slice", "dot",
         "reshape")
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
    if kind == "reshape":
        size = int(np.prod(shp, dtype=np.int64))
        return ops.reshape(x, (size,) if b % 2 else tuple(reversed(shp)))
    if kind == "dot":
        if len(shp) not in (1, 2, 3):
            return None
        k = a % len(shp)
        batch = ((0,), (0,)) if len(shp) >= 2 and b % 2 and k != 0 else ((), ())
        out = ops.dot_general(x, y, contract=((k,), (k,)), batch=batch)
        if b % 3 == 0 and len(ops.shape(out)) >= 2:  # often folded into the product
            perm = tuple(range(len(ops.shape(out))))
            out = ops.transpose(out, perm[:-2] + perm[-2:][::-1])
        return out
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


@settings(max_examples=int(os.environ.get("ADJIT_FUSION_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
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


def test_broadcast_of_a_computed_scalar_is_never_materialised():
    # z = exp(b) is read through one expanding broadcast c by two loop nests (before and after
    # a GEMM; W10's amplitude): z gets a buffer, c none (each nest reads z)
    temps, ws = _temps("def f(a: f64[100,4], b: f64[], w: f64[4,4]) -> f64[100,4]:\n"
                       "  z: f64[] = exp b\n"
                       "  c: f64[100,4] = broadcast_in_dim[shape=(100, 4), dims=()] z\n"
                       "  d: f64[100,4] = mul a c\n"
                       "  m: f64[100,4] = dot_general[contract=((1,), (0,)), "
                       "batch=((), ())] d w\n"
                       "  g: f64[100,4] = mul c m\n  return g\n")
    assert sorted(v.name for v in temps) == ["d", "m", "z"], temps


def test_transposed_product_is_written_by_gemm_directly():
    src = ("def f(a: f64[5,3], b: f64[5,4]) -> f64[4,3]:\n"
           "  c: f64[3,4] = dot_general[contract=((0,), (0,)), batch=((), ())] a b\n"
           "  d: f64[4,3] = transpose[perm=(1, 0)] c\n  return d\n")
    temps, ws = _temps(src)
    assert not temps and ws == 0
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    np.testing.assert_allclose(compile_graph(parse_graph(src))([a, b])[0], (a.T @ b).T,
                               rtol=1e-13)
    batched = ("def f(a: f64[2,5,3], b: f64[2,3,4]) -> f64[2,4,5]:\n"
               "  c: f64[2,5,4] = dot_general[contract=((2,), (1,)), batch=((0,), (0,))] a b\n"
               "  d: f64[2,4,5] = transpose[perm=(0, 2, 1)] c\n  return d\n")
    a, b = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(compile_graph(parse_graph(batched))([a, b])[0],
                               np.swapaxes(a @ b, 1, 2), rtol=1e-13)


def test_values_read_at_two_indices_are_materialised_not_recomputed():
    # a stencil chain: each step reads the previous one shifted and unshifted; inlining both
    # reads would double the work at every step (2^30 here)
    with new_trace("stencil") as tr:
        x = Node(None, AType((16,), "f64"), None, tr)
        v = x
        for _ in range(30):
            shifted = ops.pad(ops.slice(v, start=(1,), limit=(16,), strides=(1,)),
                              low=(0,), high=(1,), interior=(0,))
            v = ops.add(ops.mul(ops.tanh(shifted), 0.5), v)
        g = extract([v], tr, inputs=[x])
    fb = FnBuilder(g, LOWERINGS, "t")
    assert len(fb.build()) < 400_000
    a = np.linspace(-1, 1, 16)
    np.testing.assert_allclose(compile_graph(g)([a])[0], eval_graph(g, [a])[0], rtol=1e-12)


def test_reshape_of_a_buffer_is_an_alias():
    src = ("def f(a: f64[2,3,4], b: f64[4,5]) -> f64[2,3,5]:\n"
           "  c: f64[2,3,4] = exp a\n  d: f64[6,4] = reshape[shape=(6, 4)] c\n"
           "  e: f64[6,5] = dot_general[contract=((1,), (0,)), batch=((), ())] d b\n"
           "  g: f64[2,3,5] = reshape[shape=(2, 3, 5)] e\n  return g\n")
    temps, ws = _temps(src)
    assert ws == 192 + 256  # c and e only (64-byte aligned slices); d is c
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 5))
    np.testing.assert_allclose(compile_graph(parse_graph(src))([a, b])[0], np.exp(a) @ b,
                               rtol=1e-13)


def test_broadcast_of_a_strided_view_with_a_wider_dtypes_strides():
    # The interpreter's broadcast_in_dim caches the view strides by the operand's shape and
    # strides: a float32 x[::2] has the strides of a contiguous float64 array of its shape, so
    # after one of those it reused them and asked NumPy for a view of a non-contiguous buffer
    # ("ndarray is not contiguous", at random in test_random_fused_programs' "strided" layout)
    src = ("def f(a: {t}[3]) -> {t}[2,3]:\n"
           "  b: {t}[2,3] = broadcast_in_dim[shape=(2, 3), dims=(1,)] a\n  return b\n")
    wide = np.arange(3.0)
    narrow = np.arange(6, dtype=np.float32)[::2]
    assert narrow.shape == wide.shape and narrow.strides == wide.strides
    for x, t in ((wide, "f64"), (narrow, "f32"), (np.arange(12, dtype=np.int32)[::4], "i32")):
        (out,) = eval_graph(parse_graph(src.format(t=t)), [x])
        np.testing.assert_array_equal(out, np.broadcast_to(x, (2, 3)))
        assert out.dtype == x.dtype


def test_workspace_is_the_peak_of_live_temporaries():
    # An MLP step (W3's function at a small size): the forward's 64x48 values die while the
    # backward's small ones are made, then a 64x48 product needs space again. Slices placed
    # as they came (first fit) let the small ones split the freed hole and appended the next
    # big one: a workspace a third over the live peak (W3: 2 MB for 1.5 MB).
    from adjit.bench.workloads import _mlp
    from adjit.ir.passes import optimize
    import adjit
    inp = _mlp.make_inputs(64, 40, 48, 10)(0)
    g = optimize(adjit.make_ir(adjit.value_and_grad(_mlp.loss, argnums=(0, 1, 2, 3)))(*inp))
    fb = FnBuilder(g, LOWERINGS, "t")
    live, peak, sizes = 0, 0, {}
    temp, release = fb.temp, fb.release

    def temp_(nbytes):
        nonlocal live, peak
        p, h, size = temp(nbytes)
        sizes[h] = size
        live += size
        peak = max(peak, live)
        return p, h, size

    def release_(h, size):
        nonlocal live
        live -= sizes.pop(h)
        return release(h, size)
    fb.temp, fb.release = temp_, release_
    fb.build()
    big = 64 * 48 * 4
    assert peak >= 2 * big  # the test's premise: two of the big ones live at once
    # placing slices with known lifetimes in the least space is NP-hard in general: biggest
    # first is a heuristic, exact on W3's graph and within 10% here (first fit was 33% over)
    assert peak <= fb.ws_bytes <= 1.1 * peak, (fb.ws_bytes, peak)
