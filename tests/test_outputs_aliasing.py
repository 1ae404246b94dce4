"""Outputs that alias: one value returned twice, an input returned directly, the same value in
several pytree leaves (issue 12, item 1), and custom_vjp rules (items 9 and 10).

A graph's output list may name one variable several times or an input directly; reverse mode
must sum the cotangents of every such output. Everything is compared with JAX (x64) for the
NumPy front and with PyTorch for the Tensor front.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import adjit
from peers import require

jax = require("jax")
jnp = jax.numpy
torch = require("torch")

TOL = dict(rtol=1e-12, atol=1e-12)


def _close_trees(got, want):
    gl, gt = jax.tree_util.tree_flatten(got)
    wl, wt = jax.tree_util.tree_flatten(want)
    assert gt == wt, f"structure {gt} vs {wt}"
    for g, w in zip(gl, wl):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), **TOL)


X = np.array([0.3, -1.2, 2.0])
U = np.array([1.0, 2.0, 3.0])
W = np.array([10.0, -20.0, 30.0])


# --- item 1: the cotangents of repeated outputs are summed --------------------------------
CASES = {
    "input_twice": (lambda m: lambda a: (a, a)),
    "same_value_twice": (lambda m: lambda a: (3.0 * a, ) * 2),
    "input_and_value": (lambda m: lambda a: (a, m.sin(a), a)),
    "dict_leaves": (lambda m: lambda a: (lambda t: {"p": t, "q": [t, a]})(m.tanh(a))),
    "same_loss_twice": (lambda m: lambda a: (m.sum(a * a),) * 2),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_vjp_sums_cotangents_of_repeated_outputs(name):
    f = CASES[name]
    out = f(np)(X)
    rng = np.random.default_rng(0)
    ct = jax.tree_util.tree_map(lambda o: rng.standard_normal(np.shape(o)), out)
    (got,) = adjit.vjp(f(np), X)[1](ct)
    with jax.enable_x64(True):
        (want,) = jax.vjp(f(jnp), X)[1](jax.tree_util.tree_map(jnp.asarray, ct))
    np.testing.assert_allclose(got, np.asarray(want), **TOL)


def test_vjp_examples_of_the_issue():
    np.testing.assert_allclose(adjit.vjp(lambda a: (a, a), X)[1]((U, W))[0], U + W, **TOL)
    np.testing.assert_allclose(adjit.vjp(lambda a: (3 * a, 3 * a), X)[1]((U, W))[0],
                               3 * (U + W), **TOL)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("jac", ["jacrev", "jacfwd"])
def test_jacobians_of_repeated_outputs(name, jac):
    f = CASES[name]
    got = getattr(adjit, jac)(f(np))(X)
    with jax.enable_x64(True):
        want = getattr(jax, jac)(f(jnp))(X)
    _close_trees(got, want)


def test_second_order_vjp_of_addition():
    # the vjp graph of a + b returns its cotangent twice (once per operand): differentiating it
    # again w.r.t. that cotangent sums both
    def inner(m, c):
        return (adjit if m is np else jax).vjp(lambda a, b: a + b, X, W)[1](c)
    p, q = np.array([1.0, -2.0, 0.5]), np.array([4.0, 5.0, -6.0])
    (got,) = adjit.vjp(lambda c: inner(np, c), U)[1]((p, q))
    with jax.enable_x64(True):
        (want,) = jax.vjp(lambda c: inner(jnp, c), U)[1]((p, q))
    np.testing.assert_allclose(got, np.asarray(want), **TOL)
    np.testing.assert_allclose(got, p + q, **TOL)


def test_grad_of_a_jacrev_of_a_tuple():
    def f(m):
        lib = adjit if m is np else jax
        return lambda a: m.sum(lib.jacrev(lambda b: (lambda s: (s, s))(m.sin(b)))(a)[0] ** 2)
    got = adjit.grad(f(np))(X)
    with jax.enable_x64(True):
        want = jax.grad(f(jnp))(X)
    np.testing.assert_allclose(got, np.asarray(want), **TOL)


# --- the Tensor front: retained gradients of the root and with inputs= ------------------------
def _retained(T, inputs):
    x = T.tensor([1.0, 2.0], dtype=T.float64, requires_grad=True)
    v = T.tensor([3.0, -1.0], dtype=T.float64, requires_grad=True)
    y, w = x * 3, v * 2
    z = (y * y + w).sum()
    for t in (y, w, z):
        t.retain_grad()
    z.backward(inputs=[{"x": x, "y": y, "v": v}[k] for k in inputs] if inputs else None)
    return [None if t.grad is None else t.grad.numpy().tolist() for t in (x, v, y, w, z)]


@pytest.mark.parametrize("inputs", [None, ("x",), ("y",), ("v",), ("x", "x")])
def test_tensor_retained_grads_vs_torch(inputs):
    assert _retained(adjit, inputs) == _retained(torch, inputs)


def test_tensor_same_value_reached_twice_vs_torch():
    def run(T):
        x = T.tensor([1.0, -2.0, 0.5], dtype=T.float64, requires_grad=True)
        y = x.exp()
        y.retain_grad()
        (T.stack([y, y, x]) * T.arange(9, dtype=T.float64).reshape(3, 3)).sum().backward()
        return x.grad.numpy(), y.grad.numpy()
    for a, b in zip(run(adjit), run(torch)):
        np.testing.assert_allclose(a, b, **TOL)


def test_tensor_front_transforms_of_aliasing_outputs_vs_torch_func():
    def args(T):
        return [T.tensor(v, dtype=T.float64) for v in (X, U, W)]

    def f(v):
        t = v.exp()
        return t, t, v
    x, u, w = args(adjit)
    tx, tu, tw = args(torch)
    (got,) = adjit.vjp(f, x)[1]((u, w, u))
    (want,) = torch.func.vjp(f, tx)[1]((tu, tw, tu))
    np.testing.assert_allclose(got.numpy(), want.numpy(), **TOL)
    for g, wj in zip(adjit.jacrev(f)(x), torch.func.jacrev(f)(tx)):
        np.testing.assert_allclose(g.numpy(), wj.numpy(), **TOL)


# --- item 9: forward mode of a custom_vjp function is refused, as in JAX ----------------------
def _clipped(m, cv):
    @cv
    def f(x):
        return m.sin(x) * 2.0

    def fwd(x):  # not f(x): under JAX's forward-over-reverse that call would be refused
        return m.sin(x) * 2.0, m.cos(x)

    def bwd(c, g):
        return (m.clip(g, -0.5, 0.5) * c,)
    f.defvjp(fwd, bwd)
    return f


def test_forward_mode_of_custom_vjp_is_refused_like_jax():
    f, jf = _clipped(np, adjit.custom_vjp), _clipped(jnp, jax.custom_vjp)
    with jax.enable_x64(True):
        for call in (lambda: jax.jvp(jf, (X,), (U,)), lambda: jax.jacfwd(jf)(X)):
            with pytest.raises(TypeError, match=r"can't apply forward-mode autodiff \(jvp\) "
                                                r"to a custom_vjp function"):
                call()
        want_rev = jax.jacrev(jf)(X)
        want_hess = jax.hessian(lambda x: jnp.sum(jf(x)))(X)
        want_zero = jax.jvp(lambda x: jf(jax.lax.stop_gradient(x)), (X,), (U,))[1]
    for call in (lambda: adjit.jvp(f, (X,), (U,)), lambda: adjit.jacfwd(f)(X)):
        with pytest.raises(TypeError, match=r"can't apply forward-mode autodiff \(jvp\) to a "
                                            r"custom_vjp function: f \(the call at .*"
                                            r"test_outputs_aliasing.py:\d+\)"):
            call()
    # reverse mode uses the rule; forward-over-reverse differentiates the rule (as JAX does)
    np.testing.assert_allclose(adjit.jacrev(f)(X), np.asarray(want_rev), **TOL)
    np.testing.assert_allclose(adjit.hessian(lambda x: np.sum(f(x)))(X), np.asarray(want_hess),
                               **TOL)
    # a zero tangent never reaches the rule
    np.testing.assert_allclose(adjit.jvp(lambda x: f(adjit.stop_gradient(x)), (X,), (U,))[1],
                               np.asarray(want_zero), **TOL)


def test_second_order_through_custom_vjp_differentiates_fwd_and_bwd_like_jax():
    # under reverse mode the value of a custom_vjp call is fwd's output: a second derivative
    # differentiates fwd and bwd (JAX's semantics), so a forward rule is never needed and the
    # value's derivative is fwd's even where bwd is not its derivative (here bwd says 1, fwd 2)
    def make(m, cv):
        @cv
        def f(a, b):
            return a * b * 2.0

        def fwd(a, b):
            return a * b * 2.0, (a, b)

        def bwd(r, g):
            return g * r[1], g
        f.defvjp(fwd, bwd)
        return f
    f, jf = make(np, adjit.custom_vjp), make(jnp, jax.custom_vjp)

    def inner(m, lib, f):
        return lambda a: m.sum(lib.grad(lambda b: m.sum(f(b, b) * b))(a) ** 2)
    with jax.enable_x64(True):
        want_h = jax.hessian(lambda a: jnp.sum(jf(a, a) ** 2))(X)
        want_g = jax.grad(inner(jnp, jax, jf))(X)
    np.testing.assert_allclose(adjit.hessian(lambda a: np.sum(f(a, a) ** 2))(X),
                               np.asarray(want_h), **TOL)
    np.testing.assert_allclose(adjit.grad(inner(np, adjit, f))(X), np.asarray(want_g), **TOL)


def test_custom_vjp_fwd_must_return_the_function_type():
    @adjit.custom_vjp
    def f(x):
        return x * 2.0
    f.defvjp(lambda x: (np.sum(x), None), lambda r, g: (g,))
    with pytest.raises(TypeError, match=r"fwd .* returned an output of type f64\[\], f .* "
                                        r"f64\[3\]"):
        adjit.grad(lambda x: np.sum(f(x)))(X)


# --- item 10: rules may build constant arrays ---------------------------------------------------
def _with_constants(m, cv):
    @cv
    def f(x):
        return m.sum(x * m.ones(3)) + m.sum(m.array([1.0, 2.0, 3.0]) * x * x)

    def fwd(x):
        return f(x), x * m.full(3, 2.0)

    def bwd(r, g):
        return (g * m.ones(3) + g * r * m.array([1.0, 2.0, 3.0]),)
    f.defvjp(fwd, bwd)
    return f


def test_custom_vjp_rules_with_constant_arrays():
    f, jf = _with_constants(np, adjit.custom_vjp), _with_constants(jnp, jax.custom_vjp)
    xs = np.stack([X, 2 * X])
    with jax.enable_x64(True):
        want = jax.grad(jf)(X)
        want_v = jax.vmap(jax.grad(jf))(xs)
        want_2 = jax.grad(lambda x: jnp.sum(jax.grad(jf)(x) * x))(X)
    np.testing.assert_allclose(adjit.grad(f)(X), np.asarray(want), **TOL)
    np.testing.assert_allclose(adjit.jit(adjit.grad(f))(X), np.asarray(want), **TOL)
    np.testing.assert_allclose(adjit.vmap(adjit.grad(f))(xs), np.asarray(want_v), **TOL)
    np.testing.assert_allclose(adjit.grad(lambda x: np.sum(adjit.grad(f)(x) * x))(X),
                               np.asarray(want_2), **TOL)


def test_custom_jvp_rule_with_constant_arrays():
    def make(m, cj):
        @cj
        def f(x):
            return m.sin(x)

        @f.defjvp
        def f_jvp(primals, tangents):
            (x,), (t,) = primals, tangents
            return f(x), m.cos(x) * t * m.ones(3) + m.array([0.0, 1.0, 0.0]) * t
        return f
    f, jf = make(np, adjit.custom_jvp), make(jnp, jax.custom_jvp)
    with jax.enable_x64(True):
        want_f = jax.jacfwd(jf)(X)
        want_r = jax.jacrev(jf)(X)
    np.testing.assert_allclose(adjit.jacfwd(f)(X), np.asarray(want_f), **TOL)
    np.testing.assert_allclose(adjit.jacrev(f)(X), np.asarray(want_r), **TOL)


# --- hypothesis: random programs whose outputs alias ------------------------------------------
UNARY = [lambda m, a: m.sin(a), lambda m, a: m.tanh(a), lambda m, a: a * a,
         lambda m, a: 2.5 * a, lambda m, a: m.exp(-a * a), lambda m, a: m.cumsum(a)]
BINARY = [lambda m, a, b: a + b, lambda m, a, b: a * b, lambda m, a, b: a - 2.0 * b,
          lambda m, a, b: a / (1.0 + b * b)]


@st.composite
def aliasing_programs(draw):
    steps = []
    for k in range(draw(st.integers(0, 4))):
        n = 2 + k
        if draw(st.booleans()):
            steps.append(("u", draw(st.integers(0, len(UNARY) - 1)), draw(st.integers(0, n - 1))))
        else:
            steps.append(("b", draw(st.integers(0, len(BINARY) - 1)),
                          draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))))
    n = 2 + len(steps)
    # outputs: indices into the values (0 and 1 are the inputs), repeats likely
    pick = st.integers(0, n - 1)
    outs = draw(st.lists(st.sampled_from([0, 1, n - 1]) | pick, min_size=1, max_size=5))
    shape = draw(st.sampled_from(["tuple", "dict", "nested", "single"]))
    return steps, outs, shape


def run_aliasing(prog, m, x, y):
    steps, outs, shape = prog
    vals = [x, y]
    for s in steps:
        vals.append(UNARY[s[1]](m, vals[s[2]]) if s[0] == "u" else
                    BINARY[s[1]](m, vals[s[2]], vals[s[3]]))
    leaves = [vals[i] for i in outs]
    if shape == "single":
        return leaves[0]
    if shape == "tuple":
        return tuple(leaves)
    if shape == "dict":
        return {f"k{i}": v for i, v in enumerate(leaves)}
    return (leaves[0], {"rest": list(leaves[1:]), "again": leaves[0]})


@settings(max_examples=25, deadline=None, derandomize=True)
@given(aliasing_programs(), st.integers(0, 1000))
def test_random_aliasing_programs_vs_jax(prog, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-1.5, 1.5, 3), rng.uniform(-1.5, 1.5, 3)
    xs, ys = rng.uniform(-1.5, 1.5, (2, 3)), rng.uniform(-1.5, 1.5, (2, 3))

    def f(a, b):
        return run_aliasing(prog, np, a, b)

    def jf(a, b):
        return run_aliasing(prog, jnp, a, b)
    out = f(x, y)
    ct = jax.tree_util.tree_map(lambda o: rng.standard_normal(np.shape(o)), out)
    tx, ty = rng.standard_normal(3), rng.standard_normal(3)
    got = {
        "vjp": adjit.vjp(f, x, y)[1](ct),
        "jvp": adjit.jvp(f, (x, y), (tx, ty))[1],
        "jacrev": adjit.jacrev(f, argnums=(0, 1))(x, y),
        "jacfwd": adjit.jacfwd(f, argnums=(0, 1))(x, y),
        "vmap": adjit.vmap(f)(xs, ys),
        "vmap_none": adjit.vmap(f, in_axes=(0, None))(xs, y),
        "vmap_vjp": adjit.vmap(lambda a, b: adjit.vjp(f, a, b)[1](ct))(xs, ys),
    }
    with jax.enable_x64(True):
        jct = jax.tree_util.tree_map(jnp.asarray, ct)
        want = {
            "vjp": jax.vjp(jf, x, y)[1](jct),
            "jvp": jax.jvp(jf, (x, y), (tx, ty))[1],
            "jacrev": jax.jacrev(jf, argnums=(0, 1))(x, y),
            "jacfwd": jax.jacfwd(jf, argnums=(0, 1))(x, y),
            "vmap": jax.vmap(jf)(xs, ys),
            "vmap_none": jax.vmap(jf, in_axes=(0, None))(xs, y),
            "vmap_vjp": jax.vmap(lambda a, b: jax.vjp(jf, a, b)[1](jct))(xs, ys),
        }
    for k in got:
        try:
            _close_trees(got[k], want[k])
        except AssertionError as e:
            raise AssertionError(f"{k}: {e}") from None
