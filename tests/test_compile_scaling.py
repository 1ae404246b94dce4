"""Compile time scales linearly (issue 18, item 5): big graphs are lowered to several bounded
functions (codegen/builder.py, sections) instead of one giant function, whose -O3 time was
superlinear; results stay NumPy's (and JAX's for the gradients)."""
from __future__ import annotations

import re

import numpy as np
import pytest

import adjit
from adjit.codegen import builder
from adjit.codegen.lower import lower
from adjit.ir import GuardFailed, parse_graph
from adjit.ir.autodiff import vjp_graph
from adjit.ir.passes import optimize
from adjit.runtime import compile_graph
from peers import require

H, I, B, STEPS = 8, 4, 3, 30


def _lstm(xp):
    def sigmoid(z):
        return 0.5 * (xp.tanh(0.5 * z) + 1.0)

    def f(W, b, xs):
        h = xp.zeros((B, H))
        c = xp.zeros((B, H))
        for t in range(STEPS):
            z = xp.concatenate([xs[t], h], axis=1) @ W + b
            i, fg, o, g = (sigmoid(z[:, :H]), sigmoid(z[:, H:2 * H]),
                           sigmoid(z[:, 2 * H:3 * H]), xp.tanh(z[:, 3 * H:]))
            c = fg * c + i * g
            h = o * xp.tanh(c)
        return xp.sum(h ** 2)
    return f


def _inputs():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((I + H, 4 * H)) / 3, rng.standard_normal(4 * H) / 3,
            rng.standard_normal((STEPS, B, I)))


def _function_sizes(text):
    """LLVM instructions per defined function of an LLVM IR module's text."""
    sizes, cur = {}, None
    for line in text.splitlines():
        m = re.match(r"define .*@\"?([\w.]+)\"?\(", line)
        if m:
            cur = m.group(1)
            sizes[cur] = 0
        elif line.startswith("}"):
            cur = None
        elif cur and line.startswith("  ") and not line.strip().endswith(":"):
            sizes[cur] += 1
    return sizes


def test_big_graph_is_split_into_bounded_functions():
    args = _inputs()
    g = optimize(vjp_graph(adjit.make_ir(_lstm(np))(*args), wrt=[0, 1]))
    assert len(g.eqns) > 1000
    text, _ = lower(g)
    sizes = _function_sizes(text)
    assert max(sizes.values()) < 3 * builder.SECTION_INSNS, sizes
    assert sum(1 for n in sizes if "_sec" in n) >= 3
    # a big graph: sections of BIG_SECTION_INSNS, marked for the engine's cheaper pipeline
    assert len(g.eqns) >= builder.BIG_GRAPH and text.startswith(builder.SECTIONED)
    assert max(v for n, v in sizes.items() if "_sec" in n) < 3 * builder.BIG_SECTION_INSNS


def test_sectioned_module_leaves_code_generation_options_as_they_were():
    """A sectioned module is emitted without loop strength reduction, an LLVM option that is
    process-wide: it is set for that module only, so the next small graph's object code is
    the same bytes as before."""
    from adjit.runtime import engine

    def small(x):
        return np.sum(np.tanh(x) * x)
    x = np.linspace(-1, 1, 100)
    text, _ = lower(optimize(vjp_graph(adjit.make_ir(small)(x), wrt=[0])))
    assert not text.startswith(builder.SECTIONED)
    before = engine.emit_object(engine.optimize(text, "small"), "small")
    big, _ = lower(optimize(vjp_graph(adjit.make_ir(_lstm(np))(*_inputs()), wrt=[0, 1])))
    assert big.startswith(builder.SECTIONED)
    engine.emit_object(engine.optimize(big, "big"), "big")
    assert engine.emit_object(engine.optimize(text, "small"), "small") == before


def test_big_graph_does_not_vectorise_its_short_loops(monkeypatch):
    """A big graph's many short loops (at most emit.SHORT_LOOP iterations) are not
    loop-vectorised (~40% of their -O3 time); its long loops and a small graph's loops still
    are ("vector.body" is the vectoriser's block), and the results stay NumPy's."""
    from adjit.codegen import emit
    from adjit.runtime import engine

    def small(x):
        return np.tanh(x) * x + 1.0
    x = np.linspace(-1, 1, 1000)
    text, _ = lower(optimize(adjit.make_ir(small)(x)))
    assert not text.startswith(builder.SECTIONED)
    assert "vector.body" in str(engine.optimize(text, "small"))
    g = optimize(vjp_graph(adjit.make_ir(_lstm(np))(*_inputs()), wrt=[0, 1]))
    big, _ = lower(g)
    assert big.startswith(builder.SECTIONED) and 4 * H * B <= emit.SHORT_LOOP
    assert "llvm.loop.vectorize.enable" in big
    vectorised = str(engine.optimize(big, "big")).count("vector.body:")
    monkeypatch.setattr(emit, "SHORT_LOOP", 0)
    every = str(engine.optimize(lower(g)[0], "big")).count("vector.body:")
    assert vectorised * 5 < every, (vectorised, every)
    monkeypatch.undo()

    def chain(x):
        for i in range(100):
            x = np.sin(x) * (1.0 + 1e-3 * i) + np.tanh(x) * 0.5
        return x
    g = optimize(adjit.make_ir(chain)(x))
    assert len(g.eqns) >= builder.BIG_GRAPH
    long, _ = lower(g)
    assert "vector.body" in str(engine.optimize(long, "long"))
    np.testing.assert_allclose(compile_graph(g)([x])[0], chain(x), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("enabled", [True, False])
def test_lowering_restores_the_garbage_collector(enabled, monkeypatch):
    """lower() pauses the cyclic garbage collector (half of a big graph's lowering time) and
    leaves it as it found it, also when lowering fails."""
    import gc
    from adjit.codegen import lower as lower_mod
    from adjit.codegen.errors import CompileError

    def f(x):
        return np.sin(x) * 2.0
    g = optimize(adjit.make_ir(f)(np.ones(3)))
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        seen = []
        real = lower_mod.FnBuilder.build
        monkeypatch.setattr(lower_mod.FnBuilder, "build",
                            lambda self: seen.append(gc.isenabled()) or real(self))
        lower(g)
        assert seen == [False] and gc.isenabled() == enabled

        def boom(self):
            raise ValueError("a bug in a lowering")
        monkeypatch.setattr(lower_mod.FnBuilder, "build", boom)
        with pytest.raises(CompileError, match="lowering failed"):
            lower(g)
        assert gc.isenabled() == enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_split_lstm_value_and_grad_matches_jax():
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    args = _inputs()
    v, gs = adjit.jit(adjit.value_and_grad(_lstm(np), argnums=(0, 1)))(*args)
    v2, gs2 = adjit.jit(adjit.value_and_grad(_lstm(np), argnums=(0, 1)))(*args)  # compiled
    jv, jgs = jax.jit(jax.value_and_grad(_lstm(jnp), argnums=(0, 1)))(*args)
    for val in (v, v2):
        np.testing.assert_allclose(val, float(jv), rtol=1e-12)
    for got in (gs, gs2):
        for a, b in zip(got, jgs):
            np.testing.assert_allclose(a, np.asarray(b), rtol=1e-10, atol=1e-12)


def _name(prefix, k):  # IR names are lower-case letters
    return prefix + "".join(chr(ord("a") + int(d)) for d in str(k))


def _chain_graph(n):
    """x_k = op_k(cumsum(x_(k-1))); every x_k is an output and every cumsum a kernel, so each
    step is a loop nest of its own."""
    x = _name("x", 0)
    lines = [f"def f(a: f64[5]) -> ({', '.join(['f64[5]'] * n)}):", f"  {x}: f64[5] = sin a"]
    for k in range(1, n):
        op = ("tanh", "exp", "sin")[k % 3]
        lines.append(f"  {_name('y', k)}: f64[5] = cumsum[axis=0, reverse=False] {_name('x', k - 1)}")
        lines.append(f"  {_name('x', k)}: f64[5] = {op} {_name('y', k)}")
    lines.append(f"  return {', '.join(_name('x', k) for k in range(n))}")
    return "\n".join(lines) + "\n"


def test_split_chain_matches_numpy(monkeypatch):
    monkeypatch.setattr(builder, "SECTION_INSNS", 60)
    n = 40
    g = parse_graph(_chain_graph(n))
    text, _ = lower(g)
    assert sum(1 for f in _function_sizes(text) if "_sec" in f) >= 3
    a = np.linspace(-2, 2, 5)
    xs = [np.sin(a)]
    for k in range(1, n):
        xs.append((np.tanh, np.exp, np.sin)[k % 3](np.cumsum(xs[-1])))
    got = compile_graph(g)([a])
    assert len(got) == n
    for x, y in zip(got, xs):
        np.testing.assert_allclose(x, y, rtol=1e-11, atol=1e-14)  # ulps, compounded


def test_guard_in_a_later_section_fails_the_call(monkeypatch):
    monkeypatch.setattr(builder, "SECTION_INSNS", 60)
    n = 30
    last = _name("x", n - 1)
    text = "\n".join(_chain_graph(n).splitlines()[:-1]) + "\n"
    text = text.replace(f"-> ({', '.join(['f64[5]'] * n)}):", "-> f64[5]:")
    text += ("  s: f64[] = reduce_sum[axes=(0,)] a\n  ok: bool[] = gt s 0.0\n"
             f"  guard ok == true\n  r: f64[5] = mul {last} 2.0\n  return r\n")
    g = parse_graph(text)
    assert sum(1 for f in _function_sizes(lower(g)[0]) if "_sec" in f) >= 1
    cg = compile_graph(g)
    a = np.linspace(0.1, 1, 5)
    assert cg([a])[0].shape == (5,)
    with pytest.raises(GuardFailed):
        cg([-a - 50.0])


def test_optimize_reaches_its_fixpoint_without_printing_the_graph(monkeypatch):
    """The first-call path (a graph that runs once, issue 18 item 3 of oneshot.py): optimize
    used to print the graph (structure_key) before and after every round."""
    from adjit.ir.graph import Graph
    from adjit.ir import eval_graph

    def f(x):
        return np.sum(np.tanh(x) * 1.0 + np.sin(x) * np.sin(x) + 0.0)
    x = np.linspace(-1, 1, 7)
    g = vjp_graph(adjit.make_ir(f)(x), wrt=[0])
    calls = []
    real = Graph.structure_key
    monkeypatch.setattr(Graph, "structure_key", lambda self: calls.append(1) or real(self))
    opt = optimize(g)
    assert calls == []
    assert len(opt.eqns) < len(g.eqns)
    again = optimize(opt)  # a fixpoint: the very same equations
    assert all(a is b for a, b in zip(again.eqns, opt.eqns)) and len(again.eqns) == len(opt.eqns)
    val, grad = eval_graph(opt, [x, np.array(1.0)])
    np.testing.assert_allclose(val, f(x), rtol=1e-14)
    np.testing.assert_allclose(grad, 1 / np.cosh(x) ** 2 + 2 * np.sin(x) * np.cos(x), rtol=1e-13)


def test_long_chain_is_fused_into_several_bounded_loops():
    """A long same-shape elementwise chain is not fused into ONE loop body (LLVM's optimisation
    time grows superlinearly with a body): bodies are capped at fusion.BODY_COST_MAX."""
    from adjit.codegen import fusion
    from adjit.codegen.lower import LOWERINGS

    steps = 120

    def f(x):
        for i in range(steps):
            y = np.sin(x) * (1.0 + 1e-3 * i)
            x = y + (np.tanh(x) if i % 2 else np.exp(-x * x)) * 0.5
        return x
    a = np.linspace(-1, 1, 37)
    g = optimize(adjit.make_ir(f)(a))
    p = fusion.plan(g, LOWERINGS)
    live = [e for e in g.eqns if e not in p.dead]
    assert len(p.loops) >= 4
    total = sum(e.prim.cost for e in live)
    assert total > 4 * fusion.BODY_COST_MAX
    got = compile_graph(g)([a])[0]
    np.testing.assert_allclose(got, f(a), rtol=1e-12, atol=1e-14)


def test_graph_calls_outlined_math_when_it_uses_a_function_often(monkeypatch):
    """From mathlib.OUTLINE_MIN uses of one function (and dtype) on, a graph calls one
    outlined copy per module instead of inlining the polynomial at every use: same bits as
    the inlined code, NumPy's values; below it (every bench workload) the code is inlined."""
    from adjit.codegen import mathlib

    def f(x, y):
        for k in range(6):
            x = np.sin(x) * 1.01 + np.tanh(y) * 0.5
            y = y - 0.1 * np.exp(-x * x)
        return x + np.cos(y) + np.tanh(y.astype(np.float32)).astype(np.float64)
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(1003) * 3, rng.standard_normal(1003) * 3
    g = optimize(adjit.make_ir(f)(a, b))
    text, _ = lower(g)
    for fn in ("sin_f64", "tanh_f64", "exp_f64"):
        assert f"adjit_math_{fn}" in text
    assert "adjit_math_cos" not in text and "adjit_math_tanh_f32" not in text  # one use each
    got = compile_graph(g)([a, b])[0]
    monkeypatch.setattr(mathlib, "OUTLINE_MIN", 10 ** 9)
    g2 = optimize(adjit.make_ir(f)(a, b))
    assert "adjit_math_" not in lower(g2)[0]
    inlined = compile_graph(g2)([a, b])[0]
    np.testing.assert_array_equal(got.view(np.uint64), inlined.view(np.uint64))
    np.testing.assert_allclose(got, f(a, b), rtol=1e-12, atol=3e-7)  # (f32 tanh: its ulps)


# --- repeated nests built once, wide graphs (compile time of MLP stacks) -----------------------
def _mlp_stack(xp, layers):
    def f(Ws, X, T):
        h = X
        for W in Ws:
            h = xp.tanh(h @ W)
        return xp.sum((h - T) ** 2)
    return f


def _mlp_inputs(layers, width=8, batch=4):
    rng = np.random.default_rng(3)
    Ws = tuple(rng.standard_normal((width, width)) / 2 for _ in range(layers))
    return Ws, rng.standard_normal((batch, width)), rng.standard_normal((batch, width))


def _mlp_check_against_jax(layers, cg, g, Ws, X, T):
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    jv, jgs = jax.value_and_grad(_mlp_stack(jnp, layers))(Ws, X, T)
    args = [*Ws, X, T, np.array(1.0)][:len(g.invars)]
    for outs in (cg(args), cg._call(args), cg.run_pointers(args)):  # the three entries
        np.testing.assert_allclose(outs[0], float(jv), rtol=1e-12)
        for a, b in zip(outs[1:], jgs):
            np.testing.assert_allclose(a, np.asarray(b), rtol=1e-10, atol=1e-13)


def test_repeated_nests_are_built_once_and_called():
    """An MLP stack's layers are the same loop nests over other buffers: each distinct nest is
    one internal function, called once per layer (LLVM optimises a handful of loops instead of
    several per layer); results stay JAX's."""
    layers = 24
    Ws, X, T = _mlp_inputs(layers)
    g = optimize(vjp_graph(adjit.make_ir(_mlp_stack(np, layers))(Ws, X, T),
                           wrt=list(range(layers))))
    assert len(g.eqns) >= builder.SHARE_MIN
    text, _ = lower(g)
    nests = [n for n in _function_sizes(text) if "_nest" in n]
    calls = sum(text.count(f'call i32 @"{n}"') for n in nests)
    assert 2 <= len(nests) <= 8, nests
    assert calls >= 3 * layers // 2, calls  # (the first and last layers differ)
    _mlp_check_against_jax(layers, compile_graph(g), g, Ws, X, T)


def test_wide_graph_body_takes_the_argument_array():
    """More than WIDE_ARGS buffers (here 2 per layer): the body takes the `void **args`
    array and each section only the buffers it uses, instead of every section and call
    carrying thousands of parameters (LLVM's time was quadratic in them)."""
    layers = 80
    Ws, X, T = _mlp_inputs(layers)
    g = optimize(vjp_graph(adjit.make_ir(_mlp_stack(np, layers))(Ws, X, T),
                           wrt=list(range(layers))))
    n_args = len(g.invars) + len(g.constvars) + len(g.outvars) + 1
    assert n_args > builder.WIDE_ARGS
    text, _ = lower(g)
    head = next(line for line in text.splitlines() if '@"adjit_entry_body"(' in line)
    assert head.count("ptr") == 1, head[:200]
    sections = [line for line in text.splitlines()
                if line.startswith("define") and "_sec" in line]
    assert sections and all(line.count("ptr noalias") < n_args // 2 for line in sections)
    _mlp_check_against_jax(layers, compile_graph(g), g, Ws, X, T)


def test_index_check_inside_a_shared_nest_fails_the_call():
    """A repeated nest that gathers checks its indices in the shared function: an index out
    of range still fails the call (IndexError), in range the values are NumPy's."""
    def f(x, idx):
        for _ in range(40):
            x = np.tanh(x[idx] * 1.5 + 0.5)
        return x
    x = np.linspace(-1, 1, 16)
    idx = np.arange(16)[::-1].copy()
    g = optimize(adjit.make_ir(f)(x, idx))
    assert len(g.eqns) >= builder.SHARE_MIN
    text, _ = lower(g)
    assert '_nest0"' in text
    cg = compile_graph(g)
    np.testing.assert_allclose(cg([x, idx])[0], f(x, idx), rtol=1e-13)
    bad = idx.copy()
    bad[3] = 99
    with pytest.raises(IndexError):
        cg([x, bad])


def test_unused_math_vector_variants_are_dropped_before_code_generation():
    """Outlined math functions keep their 128/256/512-bit variants alive only until the loop
    vectoriser has picked one: the variants nothing calls are deleted before code generation;
    values stay NumPy's."""
    from adjit.runtime import engine

    def f(x):
        for i in range(6):
            x = np.sin(x) * (1.0 + 1e-3 * i) + 0.25
        return x
    x = np.linspace(-2, 2, 256)
    g = optimize(adjit.make_ir(f)(x))
    text, _ = lower(g)
    assert text.count('define internal <') == 3  # v2, v4, v8 of sin
    opt = str(engine.optimize(text, "variants"))
    defined = set(re.findall(r"define internal <\d+ x double> @\"?(adjit_math_sin_f64_v\d)", opt))
    called = set(re.findall(r"call [^@]*@\"?(adjit_math_sin_f64_v\d)", opt))
    assert called and defined == called, (defined, called)
    assert "llvm.compiler.used" not in opt
    np.testing.assert_allclose(compile_graph(g)([x])[0], f(x), rtol=1e-12, atol=1e-14)


def _wide_mlp(layers=80, width=64, batch=32):
    """value_and_grad of a BLAS-sized MLP stack with more than WIDE_ARGS buffers."""
    rng = np.random.default_rng(5)
    Ws = tuple(rng.standard_normal((width, width)) / 8 for _ in range(layers))
    X, T = rng.standard_normal((batch, width)), rng.standard_normal((batch, width))
    g = optimize(vjp_graph(adjit.make_ir(_mlp_stack(np, layers))(Ws, X, T),
                           wrt=list(range(layers))))
    assert len(g.invars) + len(g.constvars) + len(g.outvars) + 1 > builder.WIDE_ARGS
    return g, Ws, X, T


def _sections(text):
    """{section name: its lines} of a lowered module."""
    out, cur = {}, None
    for line in text.splitlines():
        m = re.match(r'define .*@"(\w+_sec\d+)"\(', line)
        if m:
            cur = out[m.group(1)] = []
        elif line.startswith("}"):
            cur = None
        elif cur is not None:
            cur.append(line)
    return out


def test_section_parameters_are_made_on_first_use(monkeypatch):
    """A section of a wide graph gets a parameter for each buffer its code uses, made when
    first used: not every one of the body's buffers made and most dropped (mlp-1000: 2,005
    per section, most of the lowering's llvmlite objects)."""
    from llvmlite.ir import values
    g, Ws, X, T = _wide_mlp(layers=250)
    n_args = len(g.invars) + len(g.constvars) + len(g.outvars) + 1
    made = []
    real = values.Argument.__init__

    def counting(self, *a, **kw):
        made.append(1)
        real(self, *a, **kw)
    monkeypatch.setattr(values.Argument, "__init__", counting)
    text, _ = lower(g)
    monkeypatch.undo()
    n_sections = len(_sections(text))
    assert n_sections >= 4
    # the body's placeholders (n_args) and the parameters sections use (each buffer is used
    # by one or two sections), not n_args per section
    assert len(made) < 4 * n_args, (len(made), n_args, n_sections)


def test_big_graph_sections_hold_a_bounded_number_of_nests():
    """A big graph's sections hold at most BIG_SECTION_UNITS loop nests (each a GEMM call or
    a shared nest's call in an MLP stack): code generation was quadratic in a section's calls
    (mlp-1000, sections of 1,000 instructions: 0.8 s; of 64 nests: 0.3-0.5 s); results stay
    JAX's."""
    g, Ws, X, T = _wide_mlp()
    text, _ = lower(g)
    secs = _sections(text)
    assert secs
    for name, lines in secs.items():
        calls = sum(1 for line in lines if re.search(r'call (void|i32) @"adjit_(gemm|entry_nest)',
                                                     line))
        assert calls <= builder.BIG_SECTION_UNITS, (name, calls)
    _mlp_check_against_jax(len(Ws), compile_graph(g), g, Ws, X, T)


def _gemms(xp):
    def f(a, b, c):
        return a @ b, (a @ b) @ c.T, a.T @ (a @ b)
    rng = np.random.default_rng(2)
    return f, (rng.standard_normal((40, 30)), rng.standard_normal((30, 50)),
               rng.standard_normal((20, 50)))


def test_few_products_call_blas_at_the_site_without_zero_offset_geps():
    """A graph of only products (at most GEMM_INLINE_MAX) calls BLAS where each product is
    (no helper function per signature: every function of a module costs LLVM ~0.5 ms however
    small), on its buffers' pointers themselves (no `getelementptr ..., i64 0`); with loops
    too, or more products, one helper per signature. Results: NumPy's."""
    from adjit.codegen import kernels
    f, args = _gemms(np)
    g = optimize(adjit.make_ir(f)(*args))
    text, _ = lower(g)
    assert "call void @\"adjit_dgemm\"" in text
    assert 'define internal void @"adjit_gemm_' not in text
    assert not re.search(r"getelementptr inbounds (double|float), ptr %\"?[.\w]+\"?, i64 0$",
                         text, re.M)
    for got, want in zip(compile_graph(g)(list(args)), f(*args)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    # a graph with loops too: helpers, as before
    h, _ = lower(optimize(adjit.make_ir(lambda a, b, c: np.tanh(f(a, b, c)[1]))(*args)))
    assert 'define internal void @"adjit_gemm_' in h
    # more products: one helper per signature, as before
    assert len([e for e in g.eqns if e.prim.name == "dot_general"]) > 1
    old = kernels.GEMM_INLINE_MAX
    try:
        kernels.GEMM_INLINE_MAX = 1
        text, _ = lower(g)
    finally:
        kernels.GEMM_INLINE_MAX = old
    assert 'define internal void @"adjit_gemm_' in text


def test_loop_free_module_gets_the_O1_pipeline(monkeypatch):
    """A module without loops (BLAS calls, scalar code) is optimised with LLVM's -O1
    pipeline, which gives it the same object code as -O3 in less time; a module with loops
    keeps -O3."""
    from adjit.runtime import engine
    e = engine.engine()
    levels = []
    real = e.llvm.create_pipeline_tuning_options

    def recording(*a, **kw):
        levels.append(kw.get("speed_level", a[0] if a else None))
        return real(*a, **kw)
    f, args = _gemms(np)
    text, _ = lower(optimize(adjit.make_ir(f)(*args)))
    loop_text, _ = lower(optimize(adjit.make_ir(lambda x: np.tanh(x) * 2.0)(args[0])))
    assert engine.straight_line(text) and not engine.straight_line(loop_text)
    monkeypatch.setattr(e.llvm, "create_pipeline_tuning_options", recording)
    fast = engine.emit_object(engine.optimize(text, "gemms"), "gemms")
    engine.optimize(loop_text, "tanh")
    assert levels == [1, 3]
    monkeypatch.setattr(engine, "straight_line", lambda t: False)
    assert engine.emit_object(engine.optimize(text, "gemms"), "gemms") == fast
    assert levels == [1, 3, 3]


def test_lowering_leaves_no_cyclic_garbage():
    """A finished lowering's llvmlite objects are freed by reference counting (its cycles
    broken), not left to the garbage collector: mlp-1000's ~130,000 cost 0.1-0.3 s of
    collections after lowering."""
    import gc
    g, Ws, X, T = _wide_mlp()
    gc.collect()
    gc.disable()
    try:
        text, meta = lower(g)
        found = gc.collect()
    finally:
        gc.enable()
    assert text.startswith(builder.SECTIONED) and meta["workspace"] > 0
    assert found < 200, found
