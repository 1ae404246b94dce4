"""jit reads the arrays of the function's closure cells, the module globals it names and
self's array attributes on every call (issue 14.2): each test compares the jitted function
with the same NumPy function after the array is mutated in place or rebound."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import adjit

x = np.linspace(-1.0, 1.0, 4)


def _same(jf, f, *args):
    np.testing.assert_allclose(jf(*args), f(*args), rtol=1e-12, atol=1e-12)


def test_closure_array_mutated_in_place_and_rebound():
    def make():
        X = np.arange(4.0)

        def f(v):
            return v * X + np.sum(X) * np.max(X)   # np.sum / np.max of X: recorded

        def set_x(new):
            nonlocal X
            X = new
        return f, lambda: X, set_x
    f, get, set_x = make()
    jf = adjit.jit(f)
    _same(jf, f, x)
    get()[:] = 10.0                       # in place
    _same(jf, f, x)
    set_x(np.array([3.0, -1.0, 2.0, 5.0]))  # rebound, same shape: no retrace
    _same(jf, f, x)
    assert jf.traces == 1
    set_x(np.arange(8.0).reshape(2, 4))     # new shape: traced again
    _same(jf, f, x)
    assert jf.traces == 2


G = np.arange(4.0)


def uses_global(v):
    return v * np.sum(G) + G.mean() - G


def test_module_global_rebound_and_sum():
    global G
    jf = adjit.jit(uses_global)
    _same(jf, uses_global, x)
    G = G * 3 + 1
    _same(jf, uses_global, x)
    G[1] = -7.0
    _same(jf, uses_global, x)


def test_non_contiguous_closure_array_is_read_every_call():
    base = np.arange(8.0)
    Y = base[::2]

    def f(v):
        return v + Y

    jf = adjit.jit(f)
    for k in range(3):
        base[:] = k * 10.0
        _same(jf, f, x)


def test_jit_of_grad_reads_the_loss_globals():
    global G
    loss = lambda w: np.sum((w - G) ** 2) * np.mean(G)   # noqa: E731
    jg = adjit.jit(adjit.grad(loss))
    want = lambda w: 2 * (w - G) * np.mean(G)            # noqa: E731
    _same(jg, want, x)
    G = G + 2.0
    _same(jg, want, x)


def test_nested_function_and_the_same_array_twice():
    def make():
        A = np.arange(4.0)
        B = A

        def f(v):
            def inner(y):
                return y * np.sum(A)
            return inner(v) + B

        def rebind(a):
            nonlocal A
            A = a
        return f, rebind
    f, rebind = make()
    jf = adjit.jit(f)
    _same(jf, f, x)
    rebind(np.full(4, 2.0))   # A changes, B (the same array before) does not
    _same(jf, f, x)


W = np.arange(4.0)


@adjit.custom_vjp
def scaled(v):
    return v * W


def _fwd(v):
    return v * W, None


def _bwd(res, g):
    return (g * W * 2,)   # a deliberately different rule, to see it used


scaled.defvjp(_fwd, _bwd)


def test_custom_vjp_reading_a_closure_array():
    global W
    jf = adjit.jit(lambda v: np.sum(scaled(v)))
    jg = adjit.jit(adjit.grad(lambda v: np.sum(scaled(v))))
    jvg = adjit.jit(adjit.vmap(adjit.grad(lambda v: np.sum(scaled(v)))))
    xs = np.stack([x, x + 1])
    for step in range(3):
        np.testing.assert_allclose(jf(x), np.sum(x * W))
        np.testing.assert_allclose(jg(x), 2 * W)
        np.testing.assert_allclose(jvg(xs), np.stack([2 * W, 2 * W]))
        if step == 0:
            W[:] = 5.0
        else:
            W = np.arange(4.0) - step


class Model:
    def __init__(self):
        self.w = np.arange(4.0)
        self.scale = 2.0

    @adjit.jit
    def __call__(self, v):
        return v * self.w * self.scale + np.sum(self.w)


def _model_np(m, v):
    return v * m.w * m.scale + np.sum(m.w)


def test_method_sees_rebound_self_attributes():
    m = Model()
    _same(m, lambda v: _model_np(m, v), x)
    m.w = m.w * 10
    _same(m, lambda v: _model_np(m, v), x)
    m.w *= -1
    _same(m, lambda v: _model_np(m, v), x)
    m2 = Model()
    m2.scale = 3.0   # another instance: its own non-array attributes
    _same(m2, lambda v: _model_np(m2, v), x)
    obj = Plain()
    bound = adjit.jit(obj.f)   # jit of a bound method
    _same(bound, lambda v: v + np.sum(obj.w), x)
    obj.w = obj.w + 1
    _same(bound, lambda v: v + np.sum(obj.w), x)


class Plain:
    def __init__(self):
        self.w = np.arange(4.0)

    def f(self, v):
        return v + np.sum(self.w)


class Holder:
    pass


HELD = Holder()
HELD.data = np.arange(4.0)


def _helper(v):
    return v * np.sum(HELD.data)


def test_unreachable_data_is_frozen_and_warned_once():
    jf = adjit.jit(lambda v: _helper(v) + 1.0)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        first = jf(x)
        jf(x)
    msgs = [str(w.message) for w in rec if "HELD.data" in str(w.message)]
    assert len(msgs) == 1 and f"{__file__}:" in msgs[0], [str(w.message) for w in rec]
    np.testing.assert_allclose(first, x * np.sum(HELD.data) + 1.0)
    saved = HELD.data
    try:
        HELD.data = HELD.data + 100    # rebound: keyed by identity, so traced again
        np.testing.assert_allclose(jf(x), x * np.sum(HELD.data) + 1.0)
        HELD.data += 1                 # the documented boundary: a value computed from it
        np.testing.assert_allclose(jf(x), x * np.sum(HELD.data - 1) + 1.0)  # is frozen
    finally:
        HELD.data = saved


def test_literals_do_not_warn():
    def f(v):
        return v * np.sqrt(2 / np.pi) + np.array([1.0, 2.0, 3.0, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _same(adjit.jit(f), f, x)


def test_grad_without_jit_sees_every_change():
    global G
    g = adjit.grad(lambda w: np.sum(w * G) * np.sum(G))
    np.testing.assert_allclose(g(x), G * np.sum(G))
    G = G + 1
    np.testing.assert_allclose(g(x), G * np.sum(G))


HG = np.arange(4.0)


def _helper_global(v):
    return v * np.sum(HG)


def test_helper_global_is_frozen_and_warned_once():
    global HG
    jf = adjit.jit(lambda v: _helper_global(v) - 1.0)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        first = jf(x)
        jf(x)
    msgs = [str(w.message) for w in rec if "`HG`" in str(w.message)]
    assert len(msgs) == 1 and "computes a value from the array" in msgs[0]
    np.testing.assert_allclose(first, x * np.sum(HG) - 1.0)
    saved = HG
    try:
        HG = HG + 1.0   # a helper's global rebound: keyed by identity, traced again
        np.testing.assert_allclose(jf(x), x * np.sum(HG) - 1.0)
        HG += 1.0       # in place: the value computed from it is frozen (the boundary)
        np.testing.assert_allclose(jf(x), x * np.sum(HG - 1.0) - 1.0)
    finally:
        HG = saved


RNG = np.random.default_rng(3)


def _draws(jf, *args):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = [jf(*args), jf(*args)]
    return out, [str(w.message) for w in rec if "draws random numbers" in str(w.message)]


def test_random_draws_while_tracing_are_frozen_and_warned_once():
    """NumPy draws new numbers on every call; a jit trace keeps its draws as constants (as
    JAX's jit does with np.random), so jit says so, naming the generator, once per trace:
    a RandomState in a closure (HIPS autograd's black_box_svi), through grad; NumPy's global
    state; a Generator global; a generator held by `self`; a generator's bound method."""
    rs = np.random.RandomState(0)

    def objective(p):
        return np.sum((rs.randn(3, 4) * np.exp(p) + 1.0) ** 2)

    plain = adjit.grad(objective)
    assert not np.allclose(plain(x), plain(x))  # NumPy semantics: fresh noise every call
    (a, b), msgs = _draws(adjit.jit(adjit.grad(objective)), x)
    # the trace's draws, reused (native code under ADJIT_TIER=native: within its ulp bounds)
    np.testing.assert_allclose(a, b, rtol=1e-14)
    assert len(msgs) == 1 and "`rs`" in msgs[0] and "Pass the random numbers" in msgs[0]
    _, msgs = _draws(adjit.jit(lambda v: v * np.random.normal(size=4)), x)
    assert len(msgs) == 1 and "`np.random`" in msgs[0]
    _, msgs = _draws(adjit.jit(lambda v: v + RNG.standard_normal(4)), x)
    assert len(msgs) == 1 and "`RNG`" in msgs[0]

    class Model:
        def __init__(self):
            self.rng = np.random.default_rng(1)

        @adjit.jit
        def noisy(self, v):
            return v * self.rng.uniform(size=4)
    _, msgs = _draws(Model().noisy, x)
    assert len(msgs) == 1 and "`Model.rng`" in msgs[0]
    normal = np.random.default_rng(2).normal
    _, msgs = _draws(adjit.jit(lambda v: v + normal(size=4)), x)
    assert len(msgs) == 1 and "`normal`" in msgs[0]


def test_no_random_warning_without_draws_from_outside():
    """A generator seeded inside the function gives the same numbers on every call (so does
    the trace), and a generator only used outside the traced function is not drawn from."""
    outer = np.random.default_rng(4)

    def f(v):
        return v * np.random.default_rng(0).normal(size=4)

    def g(v):
        return v * 2.0 if outer is not None else v
    for fn in (f, g):
        (a, _), msgs = _draws(adjit.jit(fn), x)
        assert msgs == []
        np.testing.assert_allclose(a, fn(x))
    outer.normal(size=3)


def test_jit_warnings_name_the_users_function_through_grad():
    """jit(grad(f)): the warning names f's own file and line, not adjit's wrapper."""
    def objective(v):
        return np.sum(v * np.random.normal(size=4))
    _, msgs = _draws(adjit.jit(adjit.grad(objective)), x)
    line = objective.__code__.co_firstlineno
    assert len(msgs) == 1 and f"objective ({__file__}:{line})" in msgs[0], msgs


def test_tensor_front_random_draws_while_tracing_are_warned():
    """torch.randn in a jitted Tensor function: fresh numbers on every eager call (as
    PyTorch), the trace's numbers on every jitted call, and jit says so."""
    import adjit as torch

    def f(t):
        return t * torch.randn(4)
    t = torch.ones(4)
    assert not np.allclose(f(t).numpy(), f(t).numpy())
    (a, b), msgs = _draws(adjit.jit(f), t)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert len(msgs) == 1 and "`adjit.randn/rand/randint`" in msgs[0]


@pytest.mark.parametrize("source", ["np.random", "RandomState"])
def test_a_draw_from_the_cached_second_gaussian_is_seen(source):
    """Legacy normal draws come in pairs: after an odd number of them, the next one is the
    cached second value (`has_gauss` in `get_state()`) and leaves the bit generator as it was.
    A trace that draws it takes a constant all the same: jit must say so, and the trace's
    draw is NumPy's next number in the sequence."""
    rs = np.random.RandomState(7)
    draw = np.random.standard_normal if source == "np.random" else rs.standard_normal
    seed = np.random.seed if source == "np.random" else rs.seed

    def f(v):
        return v + draw()
    seed(7)
    draw()  # one: the second of the pair is cached
    want = [x + draw(), x + draw()]  # NumPy's next numbers, without adjit
    seed(7)
    draw()
    (a, b), msgs = _draws(adjit.jit(f), x)
    np.testing.assert_array_equal(a, want[0])
    assert len(msgs) == 1 and ("`np.random`" if source == "np.random" else "`draw`") in msgs[0]
    np.testing.assert_array_equal(x + draw(), want[1])  # the stream goes on where NumPy's does


def test_grad_draws_numpys_sequence_with_a_cached_gaussian():
    """grad runs the Python on every call: after an odd number of legacy normal draws, the
    draws inside the differentiated function are NumPy's next numbers, call after call."""
    def f(v):
        return np.sum(v * np.random.standard_normal(3))
    np.random.seed(11)
    np.random.standard_normal()
    want = [np.random.standard_normal(3) for _ in range(3)]
    np.random.seed(11)
    np.random.standard_normal()
    g = adjit.grad(f)
    for w in want:
        np.testing.assert_array_equal(g(np.ones(3)), w)


# --- helpers held where jit reads no slot: a default value, a partial's argument, a bound
# method in a global or closure cell. What they read is keyed (a changed value traces
# again); before, nothing was followed and a changed value was silently not seen.

_HELD_SCALE = np.array([2.0])


def _held_helper(w):
    return np.sum(w * _HELD_SCALE)


class _HeldModel:
    def __init__(self):
        self.k = 2.0
        self.bias = np.array([0.5, -1.0, 2.0])

    def step(self, w):
        return w * self.k + self.bias


def _check_tracks(f, change, n=3):
    import adjit
    jf = adjit.jit(f)
    vg = adjit.jit(adjit.value_and_grad(f))
    w = np.array([1.0, -2.0, 0.5])
    for k in range(n):
        want = f(w)
        assert jf(w) == want, k
        val, g = vg(w)
        assert val == want
        eps = 1e-6
        fd = np.array([(f(w + eps * e) - f(w - eps * e)) / (2 * eps) for e in np.eye(3)])
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6)
        change(k)


def test_a_helper_held_as_a_default_value_is_followed():
    global _HELD_SCALE

    def loss(w, f=_held_helper):
        return f(w) ** 2

    def change(k):
        global _HELD_SCALE
        _HELD_SCALE = np.array([3.0 + k])  # rebinding the global the helper reads
    keep = _HELD_SCALE
    try:
        _check_tracks(loss, change)
    finally:
        _HELD_SCALE = keep


def test_a_helper_held_by_a_partial_is_followed():
    import functools
    global _HELD_SCALE

    def loss(f, w):
        return f(w) ** 2
    p = functools.partial(loss, _held_helper)

    def change(k):
        global _HELD_SCALE
        _HELD_SCALE = np.array([3.0 + k])
    keep = _HELD_SCALE
    try:
        _check_tracks(p, change)
    finally:
        _HELD_SCALE = keep


def test_a_bound_method_in_a_cell_global_or_default_reads_its_objects_attributes():
    m = _HeldModel()
    step = m.step

    def in_cell(w):
        return np.sum(step(w) ** 2)

    def in_default(w, s=m.step):
        return np.sum(s(w) ** 2)

    def change(k):
        m.k = 3.0 + k                            # a scalar attribute
        m.bias = m.bias + 1.0                    # a rebound array attribute
    for f in (in_cell, in_default):
        _check_tracks(f, change)
    g = {"np": np, "step": m.step}
    exec("def in_global(w):\n    return np.sum(step(w) ** 2)\n", g)
    _check_tracks(g["in_global"], change)
