"""The first call of jit(grad(f)) on big arrays (issue 18 item 2): the trace records the adjoint
into jit's trace but computes it once, on the interpreter tier's optimised graph (no `pow x 1.0`,
each equation once), with guards, fresh outputs and values unchanged."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_passes import _program  # random programs (and their vjps)

import adjit
import adjit.runtime as runtime
from adjit.ir.core import REGISTRY
from adjit.transforms import autodiff
from peers import require

N = 2 * autodiff.INTERPRET_MIN_SIZE


def f(x):
    return (np.sin(x) * x + np.tanh(x) ** 2).sum()


@pytest.fixture
def pow_calls(monkeypatch):
    calls = []
    prim = REGISTRY["pow"]
    impl = prim.impl

    def spy(*args, **params):
        calls.append(args[1])
        return impl(*args, **params)
    monkeypatch.setattr(prim, "impl", spy)
    return calls


def _jax_grad(fn, x):
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    return np.asarray(jax.grad(lambda a: fn(a, jnp))(jnp.asarray(x)))


def test_first_call_evaluates_the_optimised_adjoint(pow_calls):
    x = np.random.default_rng(0).uniform(-3, 3, N)
    g = adjit.jit(adjit.value_and_grad(f))
    val, gr = g(x)
    # the unoptimised adjoint of tanh(x)**2 computes tanh(x)**1.0: the optimised one does not
    assert not any(np.ndim(e) == 0 and float(e) == 1.0 for e in pow_calls), pow_calls
    want = _jax_grad(lambda a, m: (m.sin(a) * a + m.tanh(a) ** 2).sum(), x)
    np.testing.assert_allclose(gr, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(val, f(x), rtol=1e-12)
    assert gr.flags.writeable and gr.base is None and not np.shares_memory(gr, x)
    val2, gr2 = g(x)
    if runtime.tier_mode() == "native":  # native code: sin/tanh within the ulp bounds of
        np.testing.assert_allclose(gr2, gr, rtol=1e-13, atol=1e-15)  # docs/codegen.md
    else:  # the interpreted second call agrees with the first, bitwise
        np.testing.assert_array_equal(gr2, gr)


def test_first_call_guards_and_branches_on_the_gradient():
    def h(x):  # a guard inside grad, and one on the gradient's value in jit's trace
        gr = adjit.grad(lambda a: (a * a).sum() if a[0] > 0 else (a * a * a).sum())(x)
        return gr * 2.0 if gr[1] > 0 else gr - 1.0
    j = adjit.jit(h)
    for s in (1.0, -1.0, 1.0):
        x = np.linspace(0.5, 1.5, N) * s
        want = _jax_grad(lambda a, m: (a * a).sum() if s > 0 else (a * a * a).sum(), x)
        want = want * 2.0 if want[1] > 0 else want - 1.0
        np.testing.assert_allclose(j(x), want, rtol=1e-12)


@pytest.fixture
def sin_calls(monkeypatch):
    calls = []
    prim = REGISTRY["sin"]
    impl = prim.impl

    def spy(*args, **params):
        calls.append(np.shape(args[0]))
        return impl(*args, **params)
    monkeypatch.setattr(prim, "impl", spy)
    return calls


@pytest.mark.parametrize("n", [7, N + 3])  # sizes no other test traced
def test_first_call_computes_the_forward_once(sin_calls, n):
    """jit(value_and_grad)'s first call: the forward computed while tracing f is the one the
    adjoint reads (recorded into jit's trace with its values), not evaluated a second time."""
    x = np.random.default_rng(1).uniform(-3, 3, n)
    val, gr = adjit.jit(adjit.value_and_grad(f))(x)
    assert sin_calls == [(n,)]  # the adjoint of sin is cos: sin runs once, in the forward
    want = _jax_grad(lambda a, m: (m.sin(a) * a + m.tanh(a) ** 2).sum(), x)
    np.testing.assert_allclose(gr, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(val, f(x), rtol=1e-12)
    val2, gr2 = adjit.jit(adjit.value_and_grad(f))(x)  # a second function: same bits
    np.testing.assert_array_equal(gr2, gr)


def _by_hand(x):  # W4's gradient, NumPy by hand
    t = np.tanh(x)
    return np.cos(x) * x + np.sin(x) + 2 * t * (1 - t * t)


def _peak(fn, x):
    """(peak traced bytes of fn(x) above the start, its result): tracemalloc sees NumPy's
    buffers."""
    import tracemalloc
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        r = fn(x)
        return tracemalloc.get_traced_memory()[1] - base, r
    finally:
        tracemalloc.stop()


def test_first_call_peak_memory_near_numpy_by_hand():
    """Peak traced memory (tracemalloc sees NumPy's buffers) of jit(grad)'s first call at 1M
    elements against NumPy by hand: within 1.5x (the forward values the adjoint does not
    read are dropped before it runs, and the forward is not recomputed)."""
    x = np.random.default_rng(2).uniform(-3, 3, 1 << 20)
    j = adjit.jit(adjit.grad(f))
    ours, gr = _peak(j, x)
    numpy_peak, want = _peak(_by_hand, x)
    np.testing.assert_allclose(gr, want, rtol=1e-12, atol=1e-13)
    assert ours <= 1.5 * numpy_peak, (ours / 2**20, numpy_peak / 2**20)


def test_first_call_inside_jit_with_aux_and_second_order():
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    x = np.linspace(-1.0, 1.5, 9)

    def loss(a):
        h = np.tanh(a) * a
        return np.sum(h ** 2), h

    (val, aux), gr = adjit.jit(adjit.value_and_grad(loss, has_aux=True))(x)
    (jval, jaux), jgr = jax.value_and_grad(
        lambda a: (jax.numpy.sum((jax.numpy.tanh(a) * a) ** 2), jax.numpy.tanh(a) * a),
        has_aux=True)(x)
    np.testing.assert_allclose(gr, np.asarray(jgr), rtol=1e-12)
    np.testing.assert_allclose(aux, np.asarray(jaux), rtol=1e-13)
    np.testing.assert_allclose(val, float(jval), rtol=1e-13)
    h = adjit.jit(adjit.grad(lambda a: np.sum(adjit.grad(lambda b: np.sum(np.sin(b) * b))(a) ** 2)))
    jh = jax.grad(lambda a: jax.numpy.sum(jax.grad(lambda b: jax.numpy.sum(jax.numpy.sin(b) * b))(a) ** 2))
    for _ in range(3):  # the traced call, then the replays
        np.testing.assert_allclose(h(x), np.asarray(jh(x)), rtol=1e-12, atol=1e-14)


def _adjoint_growth(monkeypatch, fn, x):
    """(result of fn(x), the most memory (tracemalloc: NumPy's buffers) the adjoint's
    evaluation inside the trace held above what was allocated when it started)."""
    import tracemalloc
    growth = []
    run = autodiff._interpret

    def spy(*args, **kwargs):
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        r = run(*args, **kwargs)
        growth.append(tracemalloc.get_traced_memory()[1] - base)
        return r
    monkeypatch.setattr(autodiff, "_interpret", spy)
    tracemalloc.start()
    try:
        r = fn(x)
    finally:
        tracemalloc.stop()
    assert len(growth) == 1, growth
    return r, growth[0]


def test_first_call_adjoint_writes_into_the_forward_buffers(monkeypatch):
    """jit(grad)'s first call hands the forward values it computed while tracing to the
    adjoint's plan, which writes its results into their buffers (those it reads for the last
    time, and those it does not read) instead of new arrays: the adjoint allocates no array of
    x's size (it allocated three), so the call touches no more fresh memory than NumPy by hand.
    Its bits are NumPy's evaluation of the same equations, and the interpreted calls' after it."""
    n = 1 << 18
    adjit.jit(adjit.grad(f))(np.linspace(-1.0, 1.0, n + 1))  # imports and caches, another size
    x = np.random.default_rng(3).uniform(-3, 3, n)
    x[:4] = [0.0, -0.0, np.nan, np.inf]
    x0 = x.copy()
    j = adjit.jit(adjit.grad(f))
    gr, growth = _adjoint_growth(monkeypatch, j, x)
    assert growth < 0.25 * x.nbytes, growth / x.nbytes
    assert x.tobytes() == x0.tobytes()  # the argument is never written
    assert gr.base is None and gr.flags.writeable and not np.shares_memory(gr, x)
    with np.errstate(all="ignore"):  # the optimised adjoint's equations, by NumPy
        t, s = np.tanh(x0), np.sin(x0)
        want = (2.0 * t * (1.0 - t * t) + s) + x0 * np.cos(x0)
    assert gr.tobytes() == want.tobytes()
    np.testing.assert_allclose(gr[4:], _jax_grad(lambda a, m: (m.sin(a) * a + m.tanh(a) ** 2)
                                                 .sum(), x0[4:])[0:], rtol=1e-12, atol=1e-14)
    if runtime.tier_mode() != "native":  # interpreted replays: the same bits
        for _ in range(2):
            assert j(x).tobytes() == gr.tobytes()


def test_first_call_donation_keeps_views_aux_and_second_order_right():
    """Forward values that are views of others (a transpose read after its base's last use), an
    aux output that is a forward value the adjoint reads, grad of grad (whose outer level reads
    the forward values again: nothing is handed over there): the values JAX computes."""
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    x = np.random.default_rng(4).uniform(-1.5, 1.5, (256, 2 * N // 256 + 1))
    x0 = x.copy()

    def loss(a, m):
        e = m.exp(a * 0.5)
        v = e.T  # a view of e, read after e's last direct use
        w = e * a
        h = m.tanh(a) * a
        return m.sum(w + m.sin(v).T * h + h * h), h

    (val, aux), gr = adjit.jit(adjit.value_and_grad(lambda a: loss(a, np), has_aux=True))(x)
    (jval, jaux), jgr = jax.value_and_grad(lambda a: loss(a, jnp), has_aux=True)(x)
    np.testing.assert_allclose(gr, np.asarray(jgr), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(aux, np.asarray(jaux), rtol=1e-13)
    np.testing.assert_allclose(val, float(jval), rtol=1e-12)
    assert x.tobytes() == x0.tobytes()
    assert not np.shares_memory(gr, aux)
    h = adjit.jit(adjit.grad(lambda a: np.sum(adjit.grad(lambda b: np.sum(np.sin(b) * b))(a) ** 2)))
    jh = jax.grad(lambda a: jnp.sum(jax.grad(lambda b: jnp.sum(jnp.sin(b) * b))(a) ** 2))
    y = np.linspace(-2.0, 2.0, N + 5)
    for _ in range(2):
        np.testing.assert_allclose(h(y), np.asarray(jh(y)), rtol=1e-12, atol=1e-13)


def _donated_check(g, args, donate):
    from adjit.ir.graph import eval_graph
    from adjit.ir.passes import optimize
    from adjit.runtime.interpreter import Plan
    opt = optimize(g)
    with np.errstate(all="ignore"):
        want = eval_graph(opt, [a.copy() for a in args])
    kept = [a.copy() for a in args]
    plan = Plan(opt)
    # the donated arrays: only the list holds them (fresh copies); the others the caller keeps
    handed = [np.array(a) if i in donate else a for i, a in enumerate(args)]
    got = plan.donated(handed, opt.consts, sorted(donate))
    assert all(handed[i] is None for i in donate)
    for i, a in enumerate(args):
        if i not in donate:
            assert a.tobytes() == kept[i].tobytes(), i  # never written
    for k, (h, w) in enumerate(zip(got, want)):
        h, w = np.asarray(h), np.asarray(w)
        assert h.dtype == w.dtype and h.shape == w.shape and h.tobytes() == w.tobytes(), k
        assert h.base is None or h.ndim == 0
        for i, a in enumerate(args):
            assert i in donate or not np.shares_memory(h, a)
        for h2 in got[k + 1:]:
            assert not np.shares_memory(h, h2)




@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(st.lists(st.tuples(st.integers(0, 99), st.integers(0, 50),
                                    st.integers(0, 50)), min_size=1, max_size=12),
                 st.sampled_from([(), (3,), (2, 3), (3, 1)]), st.sampled_from(["f64", "f32"]),
                 st.integers(1, 2)), st.integers(0, 255))
def test_a_plan_with_donated_arguments_gives_the_same_bits(prog, mask):
    """Plan.donated on random programs and their vjps (every value, views included, handed
    over or kept by the caller): eval_graph's bits, kept arguments unchanged, fresh results."""
    from adjit.ir import DTYPES
    from adjit.ir.autodiff import vjp_graph
    instrs, shape, dt, n_in = prog
    g = _program(instrs, shape, dt, n_in)
    rng = np.random.default_rng(len(instrs))
    for gr in (g, vjp_graph(g)):
        args = [rng.uniform(-2, 2, v.type.shape).astype(DTYPES[dt]) for v in gr.invars]
        _donated_check(gr, args, {i for i in range(len(args)) if mask >> (i % 8) & 1})


def test_first_call_adjoint_multiplies_by_no_seed(monkeypatch):
    """grad's seed (1.0) is a `full` in the adjoint jit of grad's first call evaluates, so the
    passes drop the products by it (W4: three passes over the array of the eleven)."""
    from adjit.ir.passes import optimize
    seen = []
    run = autodiff._interpret

    def spy(g, *args, **kwargs):
        seen.append(g)
        return run(g, *args, **kwargs)
    monkeypatch.setattr(autodiff, "_interpret", spy)
    x = np.random.default_rng(5).uniform(-3, 3, N + 7)
    gr = adjit.jit(adjit.grad(f))(x)
    (a,) = seen
    opt = optimize(a)
    ct = opt.invars[-1]
    assert not any(ct in e.inputs or e.prim.name == "broadcast_in_dim" for e in opt.eqns), opt
    with np.errstate(all="ignore"):
        t = np.tanh(x)
        want = (2.0 * t * (1.0 - t * t) + np.sin(x)) + x * np.cos(x)
    assert gr.tobytes() == want.tobytes()
    np.testing.assert_allclose(gr, _jax_grad(lambda a, m: (m.sin(a) * a + m.tanh(a) ** 2).sum(),
                                             x), rtol=1e-12, atol=1e-14)


# --- grad without jit on big arrays: a cold call's adjoint on the trace's values -------------
def _spy_run_graph(monkeypatch):
    runs = []
    run = autodiff.run_graph

    def spy(g, *args, **kwargs):
        runs.append(g.name)
        return run(g, *args, **kwargs)
    monkeypatch.setattr(autodiff, "run_graph", spy)
    return runs


def test_plain_grad_cold_call_computes_the_forward_once(sin_calls, monkeypatch):
    """grad without jit, values past the eager tier's size: a cold call feeds the forward
    values its trace computed to the adjoint's plan (as jit of grad's first call does), where
    it ran the derived vjp graph, which computed the forward again (sin twice per call). Its
    bits are those of the structured path (a hot call's, and every big call's before)."""
    monkeypatch.setenv("ADJIT_TIER", "interp")
    runs = _spy_run_graph(monkeypatch)
    n = N + 11  # a size no other test traced
    x = np.random.default_rng(7).uniform(-3, 3, n)
    x[:4] = [0.0, -0.0, np.nan, np.inf]
    x0 = x.copy()
    vg = adjit.value_and_grad(f)
    val, gr = vg(x)
    assert sin_calls == [(n,)] and runs == []
    assert x.tobytes() == x0.tobytes()  # the argument is never written
    assert gr.flags.writeable and not np.shares_memory(gr, x)
    monkeypatch.setattr(autodiff, "HOT_SECONDS", 0.0)  # hot: the derived vjp graph's path
    val2, gr2 = vg(x)
    assert len(runs) == 1
    assert gr2.tobytes() == gr.tobytes()
    assert np.asarray(val2).tobytes() == np.asarray(val).tobytes()
    with np.errstate(all="ignore"):
        assert np.asarray(val).tobytes() == np.asarray(f(x0)).tobytes()
    want = _jax_grad(lambda a, m: (m.sin(a) * a + m.tanh(a) ** 2).sum(), x0[4:])
    np.testing.assert_allclose(adjit.grad(f)(x0[4:]), want, rtol=1e-12, atol=1e-14)


def test_plain_grad_cold_call_peak_memory_is_numpys_by_hand(auto_tier):
    """The first call of grad(f) without jit at 1M elements held the trace's forward values
    while the vjp graph computed them again: nine arrays of x's size at the peak against NumPy
    by hand's five. The adjoint now writes into the forward's dead buffers: the forward's."""
    x = np.random.default_rng(8).uniform(-3, 3, (1 << 20) + 13)
    ours, gr = _peak(adjit.grad(f), x)
    numpy_peak, want = _peak(_by_hand, x)
    np.testing.assert_allclose(gr, want, rtol=1e-12, atol=1e-13)
    assert ours <= numpy_peak + x.nbytes // 4, (ours / x.nbytes, numpy_peak / x.nbytes)


def test_plain_grad_cold_call_keeps_aux_views_and_pytrees_right(monkeypatch):
    """What the cold call's adjoint may not write into: aux's values (also forward values the
    adjoint reads or does not), a view of a forward value, the arguments; pytree arguments and
    a constant array from the closure."""
    monkeypatch.setenv("ADJIT_TIER", "interp")
    n = N + 17
    rng = np.random.default_rng(9)
    p = {"w": rng.uniform(-2, 2, n), "b": rng.uniform(-2, 2, n)}
    c = rng.uniform(-1, 1, n)
    p0 = {k: v.copy() for k, v in p.items()}

    def loss(p):
        s = np.sin(p["w"])  # the adjoint reads it (d/db of s * b)
        m = s * p["b"]  # read by nothing in the adjoint: a donated buffer but for aux
        r = m.reshape(2, -1)[0] if n % 2 == 0 else m[: n // 2]  # a view of m
        return (m * c + np.tanh(p["b"]) ** 2).sum() + r.sum(), (m, r, s)

    (val, (m, r, s)), gr = adjit.value_and_grad(loss, has_aux=True)(p)
    for k in p:
        assert p[k].tobytes() == p0[k].tobytes()
    s0 = np.sin(p0["w"])
    m0 = s0 * p0["b"]
    assert m.tobytes() == m0.tobytes() and s.tobytes() == s0.tobytes()
    assert r.tobytes() == m0[: n // 2].tobytes()
    head = np.zeros(n)
    head[: n // 2] = 1.0
    want_w = np.cos(p0["w"]) * p0["b"] * (c + head)
    t = np.tanh(p0["b"])
    want_b = s0 * (c + head) + 2 * t * (1 - t * t)
    np.testing.assert_allclose(gr["w"], want_w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gr["b"], want_b, rtol=1e-12, atol=1e-14)
    monkeypatch.setattr(autodiff, "HOT_SECONDS", 0.0)  # the structured path: the same bits
    (val2, aux2), gr2 = adjit.value_and_grad(loss, has_aux=True)(p)
    assert gr2["w"].tobytes() == gr["w"].tobytes() and gr2["b"].tobytes() == gr["b"].tobytes()
    assert np.asarray(val2).tobytes() == np.asarray(val).tobytes()
