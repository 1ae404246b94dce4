"""adjit.autograd (custom Function, grad, create_graph, hooks) against PyTorch 2.13: each scenario
is written once against a `torch`-like module and run with adjit and with torch; values, flags,
grad_fn names, exception types and messages must agree (issue 19)."""
import warnings

import numpy as np
import pytest

import adjit
from peers import require

torch = require("torch")


def run_both(scenario):
    """scenario(T) -> list of observations; Tensors become (values, requires_grad, is_leaf,
    grad_fn name), exceptions (type name, message)."""
    out = {}
    for name, T in (("adjit", adjit), ("torch", torch)):
        obs = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                scenario(T, obs.append)
            except Exception as e:  # noqa: BLE001 - the exception is the observation
                obs.append((type(e).__name__, str(e)))
        out[name] = [_norm(o) for o in obs]
    a, t = out["adjit"], out["torch"]
    assert len(a) == len(t), (a, t)
    _same(a, t)
    return a


def _same(x, y):
    if isinstance(x, np.ndarray):
        assert isinstance(y, np.ndarray) and x.dtype == y.dtype, (x, y)
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14)
    elif isinstance(x, (tuple, list)):
        assert isinstance(y, (tuple, list)) and len(x) == len(y), (x, y)
        for u, v in zip(x, y):
            _same(u, v)
    else:
        assert x == y


def _norm(o):
    if isinstance(o, (adjit.Tensor, torch.Tensor)):
        fn = o.grad_fn
        return ("tensor", np.array(o.detach().numpy()), o.requires_grad, o.is_leaf,
                None if fn is None else type(fn).__name__)
    if isinstance(o, (tuple, list)):
        return tuple(_norm(x) for x in o)
    return o


def legendre(T):
    class LegendrePolynomial3(T.autograd.Function):
        """PyTorch's tutorial example ("Learning PyTorch with Examples")."""
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return 0.5 * (5 * input ** 3 - 3 * input)

        @staticmethod
        def backward(ctx, grad_output):
            input, = ctx.saved_tensors
            return grad_output * 1.5 * (5 * input ** 2 - 1)
    return LegendrePolynomial3


def x64(T, v=(0.3, -0.5, 0.9)):
    return T.tensor(list(v), dtype=T.float64, requires_grad=True)


# ------------------------------------------------------------------ 1. custom Function
def test_tutorial_legendre_function_values_grad_fn_and_second_order():
    def s(T, see):
        P3 = legendre(T)
        x = x64(T)
        y = P3.apply(x)
        see(y)
        y.sum().backward()
        see(x.grad)
        x.grad = None
        z = P3.apply(x * 2)  # its backward is differentiable: second order through it
        g, = T.autograd.grad(z.sum(), x, create_graph=True)
        see(g)
        h, = T.autograd.grad(g.sum(), x)
        see(h)
    run_both(s)


def test_function_ctx_attributes_non_tensor_inputs_and_needs_input_grad():
    def s(T, see):
        class Scale(T.autograd.Function):
            @staticmethod
            def forward(ctx, x, k, w):
                ctx.k = k
                ctx.save_for_backward(x, w)
                see(ctx.needs_input_grad)
                return x * k * w

            @staticmethod
            def backward(ctx, g):
                x, w = ctx.saved_tensors
                see(ctx.needs_input_grad)
                return g * ctx.k * w, None, g * ctx.k * x
        x = x64(T)
        w = T.tensor([1.0, 2.0, 3.0], dtype=T.float64)
        y = Scale.apply(x, 3.0, w)
        see(y)
        y.backward(T.tensor([1.0, -1.0, 0.5], dtype=T.float64))
        see(x.grad)
        see(type(y.grad_fn).__name__)
        see(len(y.grad_fn.next_functions))
    run_both(s)


def test_function_multiple_outputs_non_differentiable_and_materialize_grads():
    def s(T, see):
        class Two(T.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                a, b = x * 2, x > 0
                ctx.mark_non_differentiable(b)
                return a, b, x.exp()

            @staticmethod
            def backward(ctx, ga, gb, gc):
                see(gb is None)
                see(ga)
                return ga * 2 + gc
        x = x64(T)
        a, b, c = Two.apply(x)
        see((a, b, c))
        a.sum().backward()  # gc is not used: materialized as zeros
        see(x.grad)

        class NoMat(T.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.set_materialize_grads(False)
                return x.clone(), x.clone()

            @staticmethod
            def backward(ctx, g1, g2):
                see(g2 is None)
                return g1
        x.grad = None
        p, q = NoMat.apply(x)
        (p * 3).sum().backward()
        see(x.grad)
    run_both(s)


def test_function_errors_as_pytorch():
    def wrong_count(T, see):
        class F(T.autograd.Function):
            @staticmethod
            def forward(ctx, x, k):
                return x * k

            @staticmethod
            def backward(ctx, g):
                return g
        F.apply(x64(T), 2.0).sum().backward()

    def grad_for_non_tensor(T, see):
        class F(T.autograd.Function):
            @staticmethod
            def forward(ctx, x, k):
                return x * k

            @staticmethod
            def backward(ctx, g):
                return g, 1.0
        F.apply(x64(T), 2.0).sum().backward()

    def bad_shape(T, see):
        class F(T.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x * 2

            @staticmethod
            def backward(ctx, g):
                return T.ones(2, dtype=T.float64)
        F.apply(x64(T)).sum().backward()

    def modified(T, see):
        P3 = legendre(T)
        x = x64(T)
        a = x * 1
        y = P3.apply(a)
        a.mul_(2)
        y.sum().backward()

    def twice(T, see):
        y = legendre(T).apply(x64(T))
        y.sum().backward()
        y.sum().backward()

    def no_backward(T, see):
        class F(T.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x * 1
        F.apply(x64(T)).sum().backward()

    for s in (wrong_count, grad_for_non_tensor, bad_shape, modified, twice, no_backward):
        obs = run_both(s)
        assert obs and isinstance(obs[-1], tuple) and obs[-1][0].endswith("Error"), obs


def test_once_differentiable_refuses_a_second_derivative():
    def s(T, see):
        from_ = T.autograd.function if T is torch else T.autograd

        class F(T.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x ** 2

            @staticmethod
            @from_.once_differentiable
            def backward(ctx, g):
                x, = ctx.saved_tensors
                return 2 * x * g
        x = x64(T)
        v = T.ones(3, dtype=T.float64, requires_grad=True)
        g, = T.autograd.grad(F.apply(x), x, grad_outputs=v, create_graph=True)
        see(g)
        g.sum().backward()
    obs = run_both(s)
    assert "once_differentiable" in obs[-1][1]


def test_mark_dirty_in_place_function():
    def s(T, see):
        class AddOne_(T.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                x.add_(1)
                ctx.mark_dirty(x)
                return x

            @staticmethod
            def backward(ctx, g):
                return g
        x = x64(T)
        a = x * 2
        b = AddOne_.apply(a)
        see(b is a)
        see(b)
        (b * b).sum().backward()
        see(x.grad)
    run_both(s)


@pytest.mark.usefixtures("native_tier")  # checks native code itself
def test_custom_function_compiles_under_jit_and_grad():
    P3 = legendre(adjit)
    x = np.array([0.3, -0.5, 0.9])
    f = adjit.jit(adjit.grad(lambda t: P3.apply(t).sum()))
    got = f(adjit.tensor(x, dtype=adjit.float64))
    xt = torch.tensor(x, requires_grad=True)
    legendre(torch).apply(xt).sum().backward()
    np.testing.assert_allclose(got.numpy(), xt.grad.numpy(), rtol=1e-12)
    f(adjit.tensor(x * 0.5, dtype=adjit.float64))
    st = f.stats()
    assert st["misses"] == 1 and st["compile_seconds"] > 0
    assert all(br.graph.native is not None for brs in f.cache.values() for br in brs)


# ------------------------------------------------------------------ 2. grad, create_graph
def test_grad_higher_orders_and_grad_fn_names():
    def s(T, see):
        x = x64(T)
        g3, = T.autograd.grad((x ** 4).sum(), x, create_graph=True)
        see(g3)
        g2, = T.autograd.grad(g3.sum(), x, create_graph=True)
        see(g2)
        g1, = T.autograd.grad(g2.sum(), x, create_graph=True)
        see(g1)
        g0, = T.autograd.grad(g1.sum(), x)
        see(g0)
        y = (x.sin() * x).sum()
        gy, = T.autograd.grad(y, x, create_graph=True)
        see(gy.requires_grad)
        see(gy.is_leaf)
        hv, = T.autograd.grad(gy, x, grad_outputs=T.tensor([1.0, 2.0, 3.0], dtype=T.float64))
        see(hv)
    run_both(s)


def test_backward_create_graph_accumulates_a_differentiable_grad():
    def s(T, see):
        x = x64(T)
        (x ** 3).sum().backward(create_graph=True)
        see(x.grad)  # grad_fn=<CopyBackwards>
        g = x.grad
        x.grad = None
        (g * g).sum().backward()
        see(x.grad)
        x.grad = None
        (x * x).sum().backward(create_graph=True)
        (x * x).sum().backward(create_graph=True)
        see(x.grad)  # AddBackward0
    run_both(s)


def test_grad_errors_and_options():
    def s(T, see):
        x = x64(T)
        u = T.tensor([1.0, 2.0], requires_grad=True)
        see(T.autograd.grad((x * 2).sum(), [x, u], allow_unused=True))
        see(T.autograd.grad((x * 2).sum(), [x, u], materialize_grads=True))
        for call in (lambda: T.autograd.grad((x * 2).sum(), [x, u]),
                     lambda: T.autograd.grad(x * 2, [x]),
                     lambda: T.autograd.grad((x * 2).sum(), [T.ones(2)]),
                     lambda: T.autograd.grad((T.ones(2) * 2).sum(), [x]),
                     lambda: T.autograd.grad((x * 2).sum(), [x], allow_unused=False,
                                             materialize_grads=True)):
            try:
                call()
            except Exception as e:  # noqa: BLE001
                see((type(e).__name__, str(e)))
        y = (x * x).sum()
        see(T.autograd.grad(y, x, retain_graph=True))
        see(T.autograd.grad(y, x))
        see(x.grad is None)
        T.autograd.grad(y, [x])  # freed
    obs = run_both(s)
    assert "second time" in obs[-1][1]


def test_autograd_backward_several_outputs():
    def s(T, see):
        x = x64(T)
        a, b = x * 2, x.exp()
        T.autograd.backward([a.sum(), b], [None, T.ones(3, dtype=T.float64)])
        see(x.grad)
    run_both(s)


@pytest.mark.usefixtures("native_tier")  # checks native code itself
def test_create_graph_hvp_compiles_under_jit():
    def hvp(T):
        def f(x, v):
            x = x.detach().requires_grad_(True)
            y = (x.sin() * x * x).sum()
            g, = T.autograd.grad(y, x, create_graph=True)
            hv, = T.autograd.grad(g, x, grad_outputs=v)
            return hv
        return f
    f = adjit.jit(hvp(adjit))
    v = np.array([1.0, 2.0, 3.0])
    for x in (np.array([0.3, -0.5, 0.9]), np.array([1.3, 0.2, -2.0])):
        got = f(adjit.tensor(x), adjit.tensor(v))
        want = hvp(torch)(torch.tensor(x), torch.tensor(v))
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    st = f.stats()
    assert st["misses"] == 1 and st["compile_seconds"] > 0


def test_detach_inside_jit_is_not_a_frozen_constant():
    f = adjit.jit(lambda t: t.detach() * 2)
    f(adjit.tensor([1.0, 2.0]))
    np.testing.assert_array_equal(f(adjit.tensor([3.0, 4.0])).numpy(), [6.0, 8.0])


# ------------------------------------------------------------------ 3. hooks
def test_hooks_leaves_non_leaves_retain_grad_and_remove():
    def s(T, see):
        x = x64(T)
        h = x.register_hook(lambda g: g * 10)
        (x * x).sum().backward()
        see(x.grad)
        h.remove()
        x.grad = None
        y = x * 3
        y.retain_grad()
        y.register_hook(lambda g: see(g) or g * 2)  # observe, then modify
        y.sum().backward()
        see(y.grad)   # retain_grad sees the hooked gradient
        see(x.grad)
        seen = []
        x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.sum().item()))
        (x * 2).sum().backward()
        see(seen)
        for call in (lambda: T.tensor(1.0).register_hook(lambda g: g),
                     lambda: (x * 2).register_post_accumulate_grad_hook(lambda t: None)):
            try:
                call()
            except Exception as e:  # noqa: BLE001
                see((type(e).__name__, str(e)))
    run_both(s)


# ------------------------------------------------------------------ multi-output records
def test_multi_output_record_in_the_eager_backward():
    """A primitive with two results (modf) on the tape: one vjp per record, with a cotangent
    per result (the direct engine and the compiled one), checked against PyTorch's frac/trunc."""
    from adjit.ir.core import bind, registered
    from test_primitive_record import modf
    with registered(modf()) as prims:
        p = prims[0] if isinstance(prims, (list, tuple)) else prims
        xv = np.array([0.3, -1.7, 2.2])
        x = adjit.tensor(xv, requires_grad=True)
        frac, whole = (adjit.Tensor._wrap(n) for n in bind(p, x._n))
        (frac * frac * 3 + whole * 0.5).sum().backward()
        xt = torch.tensor(xv, requires_grad=True)
        (torch.frac(xt) ** 2 * 3 + torch.trunc(xt) * 0.5).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
        x.grad = None
        frac, whole = (adjit.Tensor._wrap(n) for n in bind(p, x._n))
        g, = adjit.autograd.grad((frac * frac).sum(), x)
        np.testing.assert_allclose(g.numpy(), (2 * torch.frac(xt)).detach().numpy(),
                                   rtol=1e-12)
