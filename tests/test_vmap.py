"""vmap: every primitive has a batching rule (checked against a loop over its registry samples,
for every choice of batched operands), in_axes/out_axes, pytrees, composition with grad / jit /
itself, per-example gradients (the JAX cookbook's), and the errors."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from adjit import grad, hessian, jacfwd, jacrev, jit, make_ir, value_and_grad, vmap
from adjit.ir import REGISTRY
from adjit.ir import batching  # noqa: F401  (fills the batch slots)
from adjit.ir.core import bind

from peers import require

RNG = np.random.default_rng(3)


# --- the batching rules, primitive by primitive --------------------------------------------------
def test_every_primitive_has_a_batching_rule():
    missing = sorted(n for n, p in REGISTRY.items() if p.batch is None)
    assert not missing, f"primitives without a batching rule: {missing}"


def _samples(prim, dt, n=3):
    """n draws of the primitive's samples (same structure, different values)."""
    draws = [prim.samples(dt, np.random.default_rng(s)) for s in range(n)]
    return [list(zip(*[d[i][0] for d in draws])) + [draws[0][i][1]]
            for i in range(len(draws[0]))]


def _cases():
    for name, p in sorted(REGISTRY.items()):
        for dt in p.dtypes[:2]:
            yield pytest.param(name, dt, id=f"{name}-{dt}")


@pytest.mark.parametrize("name,dt", list(_cases()))
def test_batching_rule_matches_a_loop(name, dt):
    p = REGISTRY[name]
    for case in _samples(p, dt):
        *per_arg, params = case
        if not per_arg:
            continue
        for mask in itertools.product([False, True], repeat=len(per_arg)):
            if not any(mask):
                continue
            args, dims = [], []
            for draws, b in zip(per_arg, mask):
                if b and isinstance(draws[0], np.ndarray):
                    args.append(np.stack(draws))
                    dims.append(0)
                else:
                    args.append(draws[0])
                    dims.append(None)
            if all(d is None for d in dims):
                continue
            out, od = p.batch(args, dims, **params)
            if name == "guard":
                continue
            outs = out if p.nout > 1 else (out,)  # several results (divmod): each batched
            for i in range(3):
                ex = [a[i] if d == 0 else a for a, d in zip(args, dims)]
                want = bind(p, *ex, **params)
                outs, wants = (out, want) if p.nout > 1 else ((out,), (want,))
                ods = od if isinstance(od, (tuple, list)) else (od,) * len(outs)
                for o_, d_, w_ in zip(outs, ods, wants):  # several results: each one
                    got = o_[i] if d_ == 0 else o_
                    np.testing.assert_allclose(np.asarray(got), np.asarray(w_), rtol=1e-6,
                                               err_msg=f"{name} mask={mask} example {i}")


# --- vmap ------------------------------------------------------------------------------------
def loop(f, *xs):
    return np.stack([f(*a) for a in zip(*xs)])


def test_vmap_matches_loop_for_many_functions():
    xs = RNG.normal(size=(5, 3, 4))
    ys = RNG.normal(size=(5, 4))
    W = RNG.normal(size=(4, 2))
    fns = [
        lambda x, y: np.sum(np.tanh(x @ y)),
        lambda x, y: x @ W + y[:3, None],
        lambda x, y: np.concatenate([x[0], y]) * np.max(x),
        lambda x, y: x[np.argmax(y[:3])] * y,
        lambda x, y: np.cumsum(x, axis=1)[:, ::-1] - np.mean(y),
        lambda x, y: np.where(x > 0, x, y) ** 2,
        lambda x, y: np.einsum("ij,j->i", x, y),
        lambda x, y: np.linalg.norm(x, axis=0) + np.prod(y),
        lambda x, y: np.take(y, np.array([0, 3, 3])) + np.var(x),
        lambda x, y: np.stack([x.T @ x[:, 0], y]),
    ]
    for f in fns:
        np.testing.assert_allclose(vmap(f)(xs, ys), loop(f, xs, ys), rtol=1e-12, atol=1e-12)


def test_in_axes_out_axes_and_pytrees():
    x = RNG.normal(size=(3, 5))
    b = RNG.normal(size=3)
    out = vmap(lambda x, b: x + b, in_axes=(1, None))(x, b)
    np.testing.assert_allclose(out, x.T + b)
    out = vmap(lambda x, b: x * b, in_axes=(1, 0), out_axes=1)(x, np.arange(5.0))
    np.testing.assert_allclose(out, x * np.arange(5.0))
    d = vmap(lambda p: {"s": p["a"] * 2, "t": (p["b"].sum(),)},
             in_axes=({"a": 0, "b": 1},))({"a": x, "b": x.T})
    np.testing.assert_allclose(d["s"], 2 * x)
    np.testing.assert_allclose(d["t"][0], x.sum(axis=1))
    c = vmap(lambda x: (x.sum(), 1.0), out_axes=(0, None))(x)
    assert c[1] == 1.0
    np.testing.assert_allclose(vmap(lambda x: np.float64(2.0) + 0 * x.sum())(x), [2.0] * 3)


def test_nested_vmap_jit_and_edge_sizes():
    x = RNG.normal(size=(2, 3, 4))
    f = lambda v: np.sum(v ** 2)  # noqa: E731
    np.testing.assert_allclose(vmap(vmap(f))(x), np.sum(x ** 2, axis=2))
    jf = jit(vmap(f))
    np.testing.assert_allclose(jf(x[0]), np.sum(x[0] ** 2, axis=1))
    np.testing.assert_allclose(jf(x[1]), np.sum(x[1] ** 2, axis=1))
    assert jf.traces == 1
    assert vmap(f)(np.zeros((0, 4))).shape == (0,)
    np.testing.assert_allclose(vmap(f)(x[0, :1]), [np.sum(x[0, 0] ** 2)])


def test_per_example_gradients():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 3)), rng.normal(size=8)
    w = rng.normal(size=3)

    def loss(w, x, t):
        return (np.dot(x, w) - t) ** 2
    g = vmap(grad(loss), in_axes=(None, 0, 0))(w, X, y)
    np.testing.assert_allclose(g, 2 * (X @ w - y)[:, None] * X)
    np.testing.assert_allclose(g.mean(0), grad(lambda w: np.mean((X @ w - y) ** 2))(w))
    v, gs = vmap(value_and_grad(loss), in_axes=(None, 0, 0))(w, X, y)
    np.testing.assert_allclose(v, (X @ w - y) ** 2)


def test_batched_jacobians_and_grad_of_vmap():
    X = RNG.normal(size=(4, 3))
    J = vmap(jacrev(np.sin))(X)
    assert J.shape == (4, 3, 3)
    np.testing.assert_allclose(J, vmap(jacfwd(np.sin))(X))
    np.testing.assert_allclose(J[1], np.diag(np.cos(X[1])))
    g = grad(lambda X: np.sum(vmap(lambda r: np.max(r) * np.sum(r))(X)))(X)
    want = np.sum(X, axis=1, keepdims=True) * (X == X.max(1, keepdims=True)) + \
        X.max(1, keepdims=True)
    np.testing.assert_allclose(g, want)


def test_control_flow_in_vmap():
    f = lambda x: x * 2 if np.sum(x) > 0 else -x  # noqa: E731
    np.testing.assert_allclose(vmap(f)(np.ones((3, 2))), 2 * np.ones((3, 2)))
    with pytest.raises(ValueError, match="np.where"):
        vmap(f)(np.array([[1.0], [-1.0]]))
    assert "guard" in str(make_ir(vmap(f))(np.ones((3, 2))))


def test_vmap_errors():
    with pytest.raises(ValueError, match="inconsistent sizes"):
        vmap(lambda a, b: a * b)(np.ones((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match="in_axes"):
        vmap(lambda a: a, in_axes=(0, 0))(np.ones(2))
    with pytest.raises(ValueError, match="at least one"):
        vmap(lambda a: a, in_axes=None)(np.ones(2))
    with pytest.raises(ValueError, match="out_axes is None"):
        vmap(lambda a: a, out_axes=None)(np.ones(2))
    with pytest.raises(ValueError, match="shape"):
        vmap(lambda a: a)(3.0)


def test_per_example_gradients_vs_jax():
    jax = require("jax")
    import jax.numpy as jnp
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(6, 3)), rng.integers(0, 2, 6).astype(float)
    w = rng.normal(size=3)

    def loss(np, w, x, t):
        p = 1 / (1 + np.exp(-np.dot(x, w)))
        return -(t * np.log(p) + (1 - t) * np.log(1 - p))
    ours = vmap(grad(lambda w, x, t: loss(np, w, x, t)), in_axes=(None, 0, 0))(w, X, y)
    with jax.enable_x64(True):
        theirs = jax.vmap(jax.grad(lambda w, x, t: loss(jnp, w, x, t)),
                          in_axes=(None, 0, 0))(w, X, y)
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-10)


def test_hessian_of_a_scalar_function_records_its_bases_so_the_passes_see_them():
    # jacrev of a scalar function seeds its vjp with a basis of one element: a `full` of ones,
    # recorded (and what an inlined graph computes from a `full` is recorded too), so the
    # optimised graph multiplies by no constant array of ones (W5)
    from adjit.ir import print_graph
    from adjit.ir.passes import optimize
    jax = require("jax")
    import jax.numpy as jnp
    rng = np.random.default_rng(5)
    x, A = rng.standard_normal(6), rng.standard_normal((6, 6)) / 3

    def f(x, A, tanh=np.tanh):
        return (tanh(A @ x) ** 2).sum()
    g = optimize(make_ir(hessian(f))(x, A))
    consts = [np.asarray(getattr(c, "val", c)) for c in g.consts]
    assert not any(c.size > 1 and np.all(c == 1.0) for c in consts), print_graph(g)
    # jacfwd's basis is `ops.eye`, recorded: the product A @ eye is gone, no constant is left
    assert not g.consts and [e.prim.name for e in g.eqns].count("dot_general") == 2, \
        print_graph(g)
    with jax.enable_x64(True):
        want = np.asarray(jax.hessian(lambda x, A: f(x, A, jnp.tanh))(x, A))
    for h in (hessian(f), jit(hessian(f))):
        for _ in range(3):
            np.testing.assert_allclose(h(x, A), want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("shapes", [[(3,)], [(2, 2), (3,)], [(), (2,)]])
def test_jacobians_over_several_arguments_with_recorded_bases(shapes):
    # the bases are identity matrices made of primitives (ops.eye), sliced per argument:
    # jacfwd and jacrev, inside jit and not, against JAX
    jax = require("jax")
    import jax.numpy as jnp
    rng = np.random.default_rng(len(shapes))
    args = [rng.standard_normal(s) for s in shapes]
    W = rng.standard_normal((4, sum(int(np.prod(s)) for s in shapes)))

    def f(*xs, np_=np):
        flat = np_.concatenate([np_.reshape(x, (-1,)) for x in xs])
        return np_.tanh(W @ flat) * flat[0]
    nums = tuple(range(len(shapes)))
    with jax.enable_x64(True):
        for ours, theirs in ((jacfwd, jax.jacfwd), (jacrev, jax.jacrev)):
            want = theirs(lambda *xs: f(*xs, np_=jnp), argnums=nums)(*args)
            for fn in (ours(f, argnums=nums), jit(ours(f, argnums=nums))):
                for _ in range(2):
                    got = fn(*args)
                    for g_, w in zip(got, want):
                        np.testing.assert_allclose(g_, np.asarray(w), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("oshape", [(), (1,), (1, 1)])
def test_jacrev_of_a_one_element_output_is_one_vjp(oshape):
    # a one-element output is differentiated by one vjp (no batch of one): the Jacobian's
    # values and shapes as JAX's, with several arguments and aux, and an enclosing jacfwd
    # (hessian) whose graph carries no unit axis
    jax = require("jax")
    jnp = jax.numpy

    def make(xp):
        def f(x, A):
            return ((xp.tanh(A @ x) ** 2).sum() + xp.sum(x ** 3)).reshape(oshape), x * 2
        return f
    rng = np.random.default_rng(3)
    x, A = rng.standard_normal(5), rng.standard_normal((5, 5)) / 3
    jax.config.update("jax_enable_x64", True)
    want = jax.jacrev(make(jnp), argnums=(0, 1), has_aux=True)(jnp.asarray(x), jnp.asarray(A))
    want_h = jax.hessian(lambda x, A: make(jnp)(x, A)[0].sum())(jnp.asarray(x), jnp.asarray(A))
    got = jacrev(make(np), argnums=(0, 1), has_aux=True)(x, A)
    for gj, wj in zip(got[0], want[0]):
        assert gj.shape == wj.shape
        np.testing.assert_allclose(gj, np.asarray(wj), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[1], 2 * x)
    h = hessian(lambda x, A: make(np)(x, A)[0].sum())
    np.testing.assert_allclose(h(x, A), np.asarray(want_h), rtol=1e-12, atol=1e-14)
    if oshape == ():  # (the others reshape to a unit axis themselves)
        g = make_ir(h)(x, A)
        assert all(1 not in v.type.shape for e in g.eqns for v in e.outvars), str(g)


@pytest.mark.parametrize("ishape", [(), (1,)])
def test_jacfwd_of_a_one_element_input_is_one_jvp(ishape):
    # a one-element input is differentiated by one jvp (no batch of one): values and shapes as
    # JAX's (several outputs, aux, an argument held constant), and the hessian of a scalar
    # function of a scalar carries no unit axis
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    def make(xp):
        def f(x, c):
            return (xp.sin(x) * c, (x ** 2).sum() * c[:2]), x * 3
        return f
    x = np.full(ishape, 0.7)
    c = np.array([1.0, -2.0, 0.5])
    got, aux = jacfwd(make(np), has_aux=True)(x, c)
    want, waux = jax.jacfwd(make(jnp), has_aux=True)(jnp.asarray(x), jnp.asarray(c))
    for gj, wj in zip(got, want):
        assert gj.shape == wj.shape
        np.testing.assert_allclose(gj, np.asarray(wj), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(aux, 3 * x)
    s = np.float64(0.3)
    h = hessian(lambda s: np.sin(s) * s ** 3)
    np.testing.assert_allclose(h(s), float(jax.hessian(lambda s: jnp.sin(s) * s ** 3)(0.3)),
                               rtol=1e-13)
    g = make_ir(h)(s)
    assert all(1 not in v.type.shape for e in g.eqns for v in e.outvars), str(g)
