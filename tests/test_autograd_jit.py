"""Issue 19 item: a custom Function with several outputs, and Hessian-vector products with
create_graph (autograd.grad and autograd.functional.hvp), inside adjit.jit: compiled natively,
values and gradients against PyTorch 2.13."""
import numpy as np
import pytest

import adjit
from peers import require

torch = require("torch")

X = np.array([[0.3, -0.5], [0.9, 1.2]])
Y = np.array([[1.5, 0.2], [-0.4, 0.7]])


def sincos(T):
    class SinCos(T.autograd.Function):
        """two outputs of different shapes; backward by hand"""
        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x.sin() * y, (x * y).cos().sum(0)

        @staticmethod
        def backward(ctx, ga, gb):
            x, y = ctx.saved_tensors
            s = -(x * y).sin() * gb
            return ga * x.cos() * y + s * y, ga * x.sin() + s * x
    return SinCos


def loss(T):
    F = sincos(T)

    def f(x, y):
        a, b = F.apply(x, y)
        return (a * a).sum() + (b * 3).sum()
    return f


def _native(f):
    return all(br.graph.native is not None for brs in f.cache.values() for br in brs)


@pytest.mark.usefixtures("native_tier")  # checks native code itself
def test_multi_output_function_compiles_under_jit_and_grad():
    f = adjit.jit(adjit.grad(loss(adjit), argnums=(0, 1)))
    for k in (1.0, 0.5):
        got = f(adjit.tensor(X * k), adjit.tensor(Y))
        xt, yt = torch.tensor(X * k, requires_grad=True), torch.tensor(Y, requires_grad=True)
        loss(torch)(xt, yt).backward()
        np.testing.assert_allclose(got[0].numpy(), xt.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(got[1].numpy(), yt.grad.numpy(), rtol=1e-12)
    st = f.stats()
    assert st["misses"] == 1 and st["compile_seconds"] > 0 and _native(f)


def test_multi_output_function_values_under_jit():
    g = adjit.jit(lambda x, y: sincos(adjit).apply(x, y))
    got = g(adjit.tensor(X), adjit.tensor(Y))
    want = sincos(torch).apply(torch.tensor(X), torch.tensor(Y))
    assert isinstance(got, tuple) and len(got) == 2
    for a, b in zip(got, want):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)


def test_multi_output_function_mixed_dtypes_refused_under_jit():
    class Split(adjit.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x > 0

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * 2
    with pytest.raises(NotImplementedError, match="one floating dtype"):
        adjit.jit(lambda x: Split.apply(x)[0].sum())(adjit.tensor(X))


@pytest.mark.usefixtures("native_tier")  # checks native code itself
def test_functional_hvp_create_graph_compiles_under_jit():
    def h(T):
        def f(x, v):
            return T.autograd.functional.hvp(lambda a: (a.sin() * a * a).sum(), x, v)[1]
        return f
    f = adjit.jit(h(adjit))
    v = np.array([1.0, 2.0, 3.0])
    for x in (np.array([0.3, -0.5, 0.9]), np.array([1.3, 0.2, -2.0])):
        got = f(adjit.tensor(x), adjit.tensor(v))
        want = h(torch)(torch.tensor(x), torch.tensor(v))
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    st = f.stats()
    assert st["misses"] == 1 and st["compile_seconds"] > 0 and _native(f)


def test_autograd_grad_hvp_compiles_natively_under_jit():
    def hvp(T):
        def f(x, v):
            x = x.detach().requires_grad_(True)
            y = (x.exp() * x).sum()
            g, = T.autograd.grad(y, x, create_graph=True)
            hv, = T.autograd.grad(g, x, grad_outputs=v)
            return hv
        return f
    f = adjit.jit(hvp(adjit))
    v = np.array([1.0, -2.0, 0.5])
    for x in (np.array([0.3, -0.5, 0.9]), np.array([1.1, 0.4, -1.0])):
        got = f(adjit.tensor(x), adjit.tensor(v))
        want = hvp(torch)(torch.tensor(x), torch.tensor(v))
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    assert _native(f)


def test_leaf_hooks_run_on_the_compiled_backward(monkeypatch):
    """Hooks on leaves (and post-accumulate hooks) no longer send the backward to the direct
    engine (5-10x slower on small graphs): they run on the compiled graph's leaf gradients.
    Values and hook calls as PyTorch; a hook on a non-leaf still uses the direct engine."""
    from adjit.tracer import backward as engine

    def scenario(T, calls):
        x = T.tensor(X, requires_grad=True)
        w = T.tensor(Y, requires_grad=True)
        hx = x.register_hook(lambda g: calls.append(("x", g.tolist())) or g * 3)
        w.register_hook(lambda g: calls.append(("w", g.tolist())))
        w.register_post_accumulate_grad_hook(lambda t: calls.append(("post", t.grad.tolist())))
        for _ in range(2):
            ((x @ w).tanh() ** 2).sum().backward()
        hx.remove()
        ((x * w).sum()).backward()
        return x.grad.tolist(), w.grad.tolist()

    direct = []
    real = engine.run_direct
    monkeypatch.setattr(engine, "run_direct", lambda *a, **k: direct.append(1) or real(*a, **k))
    mine, ref = [], []
    got, want = scenario(adjit, mine), scenario(torch, ref)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert sorted(c[0] for c in mine) == sorted(c[0] for c in ref)
    for name in ("x", "w", "post"):
        np.testing.assert_allclose([c[1] for c in mine if c[0] == name],
                                   [c[1] for c in ref if c[0] == name], rtol=1e-12)
    assert direct == []
    x = adjit.tensor(X, requires_grad=True)
    h = x * 2
    h.register_hook(lambda g: g * 2)
    h.sum().backward()
    assert direct == [1]
    np.testing.assert_allclose(x.grad.numpy(), np.full(X.shape, 4.0))
