"""einsum and the products, complete (issue 16 items 1 and 4's torch.einsum): random specs
(repeated labels, ellipsis, extents of 1 that broadcast, 1-4 operands, string and sublist
forms) against NumPy's values, JAX x64's first and second derivatives, the interpreter against
native code, vmap against a loop; tensordot's axes forms; matmul/dot/vdot/inner/outer
broadcasting; the Tensor front against PyTorch 2.13."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import adjit
from adjit import grad, jit, make_ir, vmap

from peers import require

RNG = np.random.default_rng(16)
LABELS = "abcdeBC"


# --- random einsum specs ---------------------------------------------------------------------
@st.composite
def specs(draw, max_ops=4):
    """(subscripts, shapes, sublist form or None): labels drawn from a small pool (so they
    repeat within and across operands), optional ellipsis with broadcasting leading axes,
    axes of extent 1 under a larger label, implicit or explicit output."""
    n = draw(st.integers(1, max_ops))
    size = {c: draw(st.integers(2, 3)) for c in LABELS}
    ell = draw(st.booleans())
    eshape = draw(st.lists(st.integers(1, 3), max_size=2)) if ell else []
    terms, shapes = [], []
    for _ in range(n):
        ls = draw(st.lists(st.sampled_from(LABELS[:5] if n > 2 else LABELS), max_size=3))
        shp = []
        for c in ls:
            once = ls.count(c) == 1
            shp.append(1 if once and draw(st.integers(0, 4)) == 0 else size[c])
        if ell and draw(st.booleans()):
            k = draw(st.integers(0, len(eshape)))
            es = [1 if draw(st.integers(0, 3)) == 0 else d for d in eshape[len(eshape) - k:]]
            cut = draw(st.integers(0, len(ls)))
            ls = ls[:cut] + ["..."] + ls[cut:]
            shp = shp[:cut] + es + shp[cut:]
        terms.append(ls)
        shapes.append(tuple(shp))
    used = [c for t in terms for c in t if c != "..."]
    has_ell = any("..." in t for t in terms)
    if draw(st.booleans()):
        out = None
    else:
        pool = sorted(set(used))
        out = draw(st.permutations(pool))[:draw(st.integers(0, len(pool)))]
        if has_ell:
            at = draw(st.integers(0, len(out)))
            out = list(out[:at]) + ["..."] + list(out[at:])
    spec = ",".join("".join(t) for t in terms) + ("" if out is None else "->" + "".join(out))
    return spec, shapes


def _sublists(spec):
    """The interleaved form's sublists of a string spec."""
    ins, _, out = spec.partition("->")
    conv = [[Ellipsis if c == "." else "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
             .index(c) for c in t.replace("...", ".")] for t in ins.split(",")]
    outl = None if "->" not in spec else \
        [Ellipsis if c == "." else "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
         .index(c) for c in out.replace("...", ".")]
    return conv, outl


def _args(shapes, rng=RNG):
    return [rng.standard_normal(s) for s in shapes]


def _interleave(xs, subs, out):
    args = [v for pair in zip(xs, subs) for v in pair]
    return args + ([out] if out is not None else [])


SLOW = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.function_scoped_fixture])


@SLOW
@given(specs(), st.booleans())
def test_random_einsum_values_vs_numpy_native_and_interpreted(monkeypatch, case, sublist):
    spec, shapes = case
    xs = _args(shapes)
    try:
        want = np.einsum(spec, *xs)
    except ValueError:
        with pytest.raises(ValueError):
            jit(lambda *a: np.einsum(spec, *a))(*xs)
        return
    if sublist:
        subs, out = _sublists(spec)

        def f(*a):
            return np.einsum(*_interleave(a, subs, out))
    else:
        def f(*a):
            return np.einsum(spec, *a)
    got = jit(f)(*xs)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.shape(got) == want.shape
    with monkeypatch.context() as m:
        m.setenv("ADJIT_DISABLE_JIT", "1")
        np.testing.assert_allclose(jit(f)(*xs), want, rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def jax():
    j = require("jax")
    j.config.update("jax_enable_x64", True)
    return j


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(max_ops=3))
def test_random_einsum_first_and_second_derivatives_vs_jax(jax, case):
    import jax.numpy as jnp
    spec, shapes = case
    xs = _args(shapes)
    try:
        out = np.einsum(spec, *xs)
    except ValueError:
        return
    w = RNG.standard_normal(out.shape)
    argn = tuple(range(len(xs)))

    def f(npm, *a):
        return npm.sum(npm.sin(npm.einsum(spec, *a)) * w)

    def g2(npm, gradf):  # a second-order scalar: the squared norm of the gradient
        def h(*a):
            gs = gradf(lambda *b: f(npm, *b), argn)(*a)
            return sum(npm.sum(gi ** 2) for gi in gs)
        return h

    got = grad(lambda *a: f(np, *a), argnums=argn)(*xs)
    want = jax.grad(lambda *a: f(jnp, *a), argnums=argn)(*xs)
    for g_, w_ in zip(got, want):
        np.testing.assert_allclose(g_, np.asarray(w_), rtol=1e-10, atol=1e-10)
    got2 = grad(g2(np, lambda fn, a: grad(fn, argnums=a)), argnums=argn)(*xs)
    want2 = jax.grad(g2(jnp, lambda fn, a: jax.grad(fn, argnums=a)), argnums=argn)(*xs)
    for g_, w_ in zip(got2, want2):
        np.testing.assert_allclose(g_, np.asarray(w_), rtol=1e-9, atol=1e-9)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(max_ops=3), st.data())
def test_random_einsum_vmap_matches_a_loop(case, data):
    spec, shapes = case
    xs = _args(shapes)
    try:
        np.einsum(spec, *xs)
    except ValueError:
        return
    batched = [data.draw(st.booleans()) for _ in xs]
    if not any(batched):
        batched[0] = True
    xb = [RNG.standard_normal((3,) + s) if b else x for x, s, b in zip(xs, shapes, batched)]
    axes = tuple(0 if b else None for b in batched)
    got = vmap(lambda *a: np.einsum(spec, *a), in_axes=axes)(*xb)
    want = np.stack([np.einsum(spec, *[x[i] if b else x for x, b in zip(xb, batched)])
                     for i in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# --- named cases ------------------------------------------------------------------------------
def test_size_one_axes_broadcast_against_a_shared_label():
    # the example: NumPy gives (20, 40, 20)
    x, W = RNG.standard_normal((1, 40, 1)), RNG.standard_normal((20, 1, 20))
    want = np.einsum("mnd,mdo->mno", x, W)
    got = jit(lambda x, W: np.einsum("mnd,mdo->mno", x, W))(x, W)
    assert got.shape == (20, 40, 20)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_bayesian_neural_net_style_einsum_and_gradient(jax):
    # a batch of sampled weight sets applied to one input batch, as autograd's
    # bayesian_neural_net example does: inputs (1, N, D) against weights (S, D, H)
    import jax.numpy as jnp
    inputs = RNG.standard_normal((1, 7, 3))
    W = RNG.standard_normal((5, 3, 4))
    b = RNG.standard_normal((5, 1, 4))
    y = RNG.standard_normal((7,))

    def loss(npm, W, b):
        h = npm.tanh(npm.einsum("mnd,mdo->mno", inputs, W) + b)
        return npm.sum((npm.einsum("mno->n", h) - y) ** 2)
    np.testing.assert_allclose(jit(lambda W, b: loss(np, W, b))(W, b), loss(np, W, b),
                               rtol=1e-12)
    got = grad(lambda W, b: loss(np, W, b), argnums=(0, 1))(W, b)
    want = jax.grad(lambda W, b: loss(jnp, W, b), argnums=(0, 1))(W, b)
    for g_, w_ in zip(got, want):
        np.testing.assert_allclose(g_, np.asarray(w_), rtol=1e-10)


@pytest.mark.parametrize("spec,shapes", [
    ("ii->i", [(4, 4)]), ("ii->", [(4, 4)]), ("ii", [(4, 4)]), ("iij->j", [(3, 3, 2)]),
    ("iii->i", [(3, 3, 3)]), ("ij,ij->ij", [(2, 3), (2, 3)]), ("ii,i->i", [(3, 3), (3,)]),
    ("...ii->...i", [(2, 3, 3)]), ("i...i", [(3, 2, 3)]), ("ij,jk,kl,lm->im",
                                                          [(2, 3), (3, 4), (4, 5), (5, 2)]),
    ("", [()]), ("->", [()]), (",->", [(), ()]), ("i,->i", [(3,), ()]),
    ("...,...->...", [(2, 1), (3,)]), ("ab,cd,bd->ac", [(3, 4), (5, 6), (4, 6)]),
])
def test_named_specs_vs_numpy(spec, shapes):
    xs = _args(shapes)
    want = np.einsum(spec, *xs)
    got = jit(lambda *a: np.einsum(spec, *a))(*xs)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    assert np.shape(got) == want.shape


def test_diagonals_gather_no_dense_identity():
    g = make_ir(lambda x: np.einsum("ii->i", x))(np.ones((500, 500)))
    assert [e.prim.name for e in g.eqns] == ["reshape", "gather"]


def _dots(g):
    return [(tuple(e.inputs[0].type.shape), tuple(e.inputs[1].type.shape))
            for e in g.eqns if e.prim.name == "dot_general"]


def test_contraction_order_is_numpys_greedy_path():
    shapes = [(2, 300), (300, 2), (2, 300)]
    xs = [np.ones(s) for s in shapes]
    for opt in (True, False, "greedy", "optimal"):
        path = np.einsum_path("ij,jk,kl->il", *xs, optimize="greedy" if opt in (True, False)
                              else opt)[0]
        assert path[1] == (0, 1)   # the cheap pair first: (2, 300) @ (300, 2)
        g = make_ir(lambda *a: np.einsum("ij,jk,kl->il", *a, optimize=opt))(*xs)
        dots = _dots(g)
        assert len(dots) == 2 and dots[0] == ((2, 300), (300, 2))
    # an explicit path is followed
    g = make_ir(lambda *a: np.einsum("ij,jk,kl->il", *a,
                                     optimize=["einsum_path", (1, 2), (0, 1)]))(*xs)
    assert _dots(g)[0] == ((300, 2), (2, 300))
    np.testing.assert_allclose(
        jit(lambda *a: np.einsum("ij,jk,kl->il", *a, optimize=["einsum_path", (1, 2),
                                                                (0, 1)]))(*xs),
        np.einsum("ij,jk,kl->il", *xs), rtol=1e-12)


def test_bad_optimize_and_subscripts_are_refused():
    x = np.ones((2, 3))
    with pytest.raises(TypeError, match="optimize"):
        jit(lambda x: np.einsum("ij,jk", x, x.T, optimize="fastest"))(x)
    for spec, n, msg in [("ij,jk->q", 2, "never appeared"), ("i1", 1, "must be letters"),
                         ("ijk", 1, "too many subscripts"), ("ij,jk", 1, "more operands"),
                         ("ij", 2, "fewer operands"), ("ii", 1, "collapsing index"),
                         ("ij,ij->ii", 2, "multiple times"), ("i", 1, "more dimensions"),
                         ("ij,ij->", 2, "broadcast")]:
        y = x if spec != "ij,ij->" else x[:, :2]
        with pytest.raises(ValueError, match=msg):
            np.einsum(spec, *[x, y][:n])
        with pytest.raises(ValueError, match=msg) as got:
            jit(lambda x, y: np.einsum(spec, *[x, y][:n]))(x, y)
        assert "test_einsum_complete.py" in str(got.value)


def test_einsum_dtype_and_bool():
    a = RNG.integers(-3, 4, (3, 4))
    np.testing.assert_array_equal(jit(lambda a: np.einsum("ij,kj", a, a))(a),
                                  np.einsum("ij,kj", a, a))
    got = jit(lambda a: np.einsum("ij,kj", a, a, dtype=np.float32, casting="unsafe"))(a)
    assert got.dtype == np.float32
    b = a > 0
    want = np.einsum("ij,kj->ik", b, b)
    got = jit(lambda b: np.einsum("ij,kj->ik", b, b))(b)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


# --- tensordot, matmul, dot, vdot, inner, outer -----------------------------------------------
@pytest.mark.parametrize("sa,sb,axes", [
    ((2, 3, 4), (3, 4, 5), 2), ((2, 3), (3, 4), 1), ((2, 3), (4, 5), 0), ((2, 3), (3, 2), -1),
    ((2, 3, 4), (4, 3, 5), ([1, 2], [1, 0])), ((2, 3, 4), (5, 2), (0, 1)),
    ((2, 3, 4), (4, 2), ([-1, 0], [0, -1])), ((3,), (3,), 1), ((2, 3), (2, 3), ((0, 1), (0, 1))),
])
def test_tensordot_axes_forms(sa, sb, axes):
    a, b = RNG.standard_normal(sa), RNG.standard_normal(sb)
    want = np.tensordot(a, b, axes)
    np.testing.assert_allclose(jit(lambda a, b: np.tensordot(a, b, axes))(a, b), want,
                               rtol=1e-12)
    ga = grad(lambda a, b: np.sum(np.sin(np.tensordot(a, b, axes))))(a, b)
    eps = 1e-6
    d = RNG.standard_normal(sa)
    fd = (np.sum(np.sin(np.tensordot(a + eps * d, b, axes))) -
          np.sum(np.sin(np.tensordot(a - eps * d, b, axes)))) / (2 * eps)
    np.testing.assert_allclose(np.sum(ga * d), fd, rtol=1e-6)


def test_tensordot_errors():
    a, b = np.ones((2, 3)), np.ones((4, 3))
    with pytest.raises(ValueError, match="shape-mismatch"):
        jit(lambda a, b: np.tensordot(a, b, 1))(a, b)


PRODUCTS = [
    ("matmul", (2, 1, 3, 4), (5, 4, 2)), ("matmul", (4,), (2, 4, 3)), ("matmul", (2, 3, 4), (4,)),
    ("matmul", (4,), (4,)), ("matmul", (1, 3, 4), (6, 4, 2)), ("matmul", (3, 1, 2, 4), (1, 5, 4, 2)),
    ("dot", (2, 3, 4), (5, 4, 6)), ("dot", (3, 4), (4,)), ("dot", (4,), (2, 4, 3)),
    ("dot", (), (2, 3)), ("dot", (2, 3, 4), (4, 1)),
    ("vdot", (2, 3), (3, 2)), ("vdot", (4,), (4,)),
    ("inner", (2, 3, 4), (5, 4)), ("inner", (4,), (4,)), ("inner", (), (2, 3)),
    ("outer", (2, 3), (4,)), ("outer", (3,), ()),
]


@pytest.mark.parametrize("name,sa,sb", PRODUCTS)
def test_products_vs_numpy_and_jax(jax, name, sa, sb):
    import jax.numpy as jnp
    a, b = RNG.standard_normal(sa), RNG.standard_normal(sb)
    want = getattr(np, name)(a, b)
    got = jit(lambda a, b: getattr(np, name)(a, b))(a, b)
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-12)

    def f(npm, a, b):
        return npm.sum(npm.sin(getattr(npm, name)(a, b)))
    gg = grad(lambda a, b: f(np, a, b), argnums=(0, 1))(a, b)
    gw = jax.grad(lambda a, b: f(jnp, a, b), argnums=(0, 1))(a, b)
    for g_, w_ in zip(gg, gw):
        np.testing.assert_allclose(g_, np.asarray(w_), rtol=1e-10, atol=1e-12)


def test_matmul_broadcast_batch_is_not_materialised():
    # (1, k, p) against (B, n, k): the extent-1 batch axis leaves the product, no broadcast
    g = make_ir(lambda a, b: a @ b)(np.ones((6, 5, 4)), np.ones((1, 4, 3)))
    assert not [e for e in g.eqns if e.prim.name == "broadcast_in_dim"]


@pytest.mark.parametrize("name,sa,sb", [("matmul", (2, 3), (4, 2)), ("matmul", (), (3,)),
                                        ("matmul", (2, 2, 3), (3, 3, 2)),
                                        ("dot", (2, 3), (2, 3)), ("inner", (2, 3), (2,)),
                                        ("vdot", (3,), (4,))])
def test_product_errors(name, sa, sb):
    a, b = np.ones(sa), np.ones(sb)
    with pytest.raises(ValueError):
        getattr(np, name)(a, b)
    with pytest.raises(ValueError, match="test_einsum_complete.py"):
        jit(lambda a, b: getattr(np, name)(a, b))(a, b)


# --- the Tensor front vs PyTorch ----------------------------------------------------------------
@pytest.fixture(scope="module")
def torch():
    return require("torch")


def _both(torch, arrays):
    return ([torch.tensor(a, requires_grad=True) for a in arrays],
            [adjit.tensor(a, requires_grad=True) for a in arrays])


def _compare(torch, tt, at, rt, ra, top=True):
    np.testing.assert_allclose(ra.detach().numpy(), rt.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    if top:
        assert (ra.grad_fn.name() if ra.grad_fn else None) == rt.grad_fn.name()
    w = RNG.standard_normal(tuple(rt.shape))
    (rt * torch.tensor(w)).sin().sum().backward()
    (ra * adjit.tensor(w)).sin().sum().backward()
    for t, a in zip(tt, at):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


TORCH_SPECS = [
    ("ij->ij", [(2, 3)]), ("ij->i", [(2, 3)]), ("iij->ji", [(2, 2, 3)]), ("ii->i", [(2, 2)]),
    ("iji->j", [(2, 3, 2)]), ("ij,jk->ik", [(2, 3), (3, 4)]), ("i,j", [(3,), (2,)]),
    ("ij,j->j", [(2, 3), (3,)]), ("ij,jk->ik", [(2, 1), (1, 4)]), ("i,i->i", [(3,), (1,)]),
    ("ij,jk,kl->", [(2, 3), (3, 4), (4, 5)]), ("i,j,k->ijk", [(2,), (3,), (4,)]),
    ("...ij,...jk->...ik", [(2, 1, 3), (2, 3, 4)]), ("...,...", [(2, 3), (3,)]),
    ("ii,i->i", [(3, 3), (3,)]), ("...i->i", [(2, 3)]), ("mnd,mdo->mno", [(1, 4, 1), (5, 1, 6)]),
    ("bij,bjk,bkl->bil", [(2, 3, 4), (2, 4, 5), (2, 5, 3)]), ("ba", [(2, 3)]),
]


@pytest.mark.parametrize("spec,shapes", TORCH_SPECS)
def test_torch_einsum_vs_pytorch(torch, spec, shapes):
    arrays = _args(shapes)
    tt, at = _both(torch, arrays)
    _compare(torch, tt, at, torch.einsum(spec, *tt), adjit.einsum(spec, *at))


def test_torch_einsum_sublist_and_list_forms(torch):
    arrays = _args([(2, 3), (3, 4)])
    tt, at = _both(torch, arrays)
    _compare(torch, tt, at, torch.einsum(tt[0], [0, 1], tt[1], [1, 2], [2, 0]),
             adjit.einsum(at[0], [0, 1], at[1], [1, 2], [2, 0]))
    tt, at = _both(torch, arrays[:1])
    _compare(torch, tt, at, torch.einsum(tt[0], [Ellipsis, 1]), adjit.einsum(at[0], [Ellipsis, 1]))
    tt, at = _both(torch, arrays)
    _compare(torch, tt, at, torch.einsum("ij,jk", tt), adjit.einsum("ij,jk", at))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(max_ops=3))
def test_random_torch_einsum_vs_pytorch(torch, case):
    spec, shapes = case
    arrays = _args(shapes)
    tt, at = _both(torch, arrays)
    try:
        rt = torch.einsum(spec, *tt)
    except RuntimeError:
        with pytest.raises(RuntimeError):
            adjit.einsum(spec, *at)
        return
    ra = adjit.einsum(spec, *at)
    _compare(torch, tt, at, rt, ra, top=len(shapes) < 3)


@pytest.mark.parametrize("name,sa,sb,kw", [
    ("tensordot", (2, 3, 4), (3, 4, 5), {}), ("tensordot", (2, 3), (3, 4), {"dims": 1}),
    ("tensordot", (2, 3, 4), (4, 3, 5), {"dims": ([1, 2], [1, 0])}),
    ("tensordot", (2, 3), (4, 5), {"dims": 0}),
    ("outer", (3,), (4,), {}), ("inner", (2, 3), (4, 3), {}), ("inner", (3,), (3,), {}),
    ("inner", (), (2, 3), {}), ("dot", (3,), (3,), {}), ("vdot", (3,), (3,), {}),
    ("matmul", (2, 1, 3, 4), (5, 4, 2), {}), ("matmul", (3, 4), (2, 4, 5), {}),
    ("matmul", (4,), (2, 4, 3), {}), ("matmul", (2, 3, 4), (4,), {}),
])
def test_torch_products_vs_pytorch(torch, name, sa, sb, kw):
    arrays = _args([sa, sb])
    tt, at = _both(torch, arrays)
    _compare(torch, tt, at, getattr(torch, name)(*tt, **kw), getattr(adjit, name)(*at, **kw))


@pytest.mark.parametrize("call", [
    lambda m, a, b: m.einsum("ij,jk", a, b[:2]), lambda m, a, b: m.einsum("ii", a),
    lambda m, a, b: m.einsum("ij,jk", a, b.double()), lambda m, a, b: m.outer(a, b),
    lambda m, a, b: m.tensordot(a, b, dims=([0], [0])), lambda m, a, b: m.vdot(a[0], b[0]),
    lambda m, a, b: m.inner(a, b[:, :2]),
])
def test_torch_product_errors_like_pytorch(torch, call):
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 4))
    with pytest.raises(RuntimeError) as want:
        call(torch, torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.float32))
    with pytest.raises(RuntimeError) as got:
        call(adjit, adjit.tensor(a, dtype=adjit.float32), adjit.tensor(b, dtype=adjit.float32))
    assert type(got.value) is type(want.value)
