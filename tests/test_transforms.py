"""grad / value_and_grad / vjp / jvp / jacrev / jacfwd / hessian / make_ir over NumPy code:
closed forms, composition to any order, nested levels kept apart, argument and result types,
pytrees, graph caching, and the errors for bad input."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
from adjit import (grad, hessian, jacfwd, jacrev, jvp, make_ir, stop_gradient, value_and_grad,
                   vjp, vmap)
from adjit.runtime import HOT_CALLS
from adjit.transforms.autodiff import CACHE_STATS
from peers import central_diff as fd_grad

X3 = np.array([0.3, -1.2, 2.0])


# --- closed forms ------------------------------------------------------------------------------
def test_grad_closed_form():
    f = lambda x: np.sum(np.sin(x) ** 2)  # noqa: E731
    np.testing.assert_allclose(grad(f)(X3), 2 * np.sin(X3) * np.cos(X3))
    np.testing.assert_allclose(grad(f)(X3), fd_grad(f, X3), rtol=1e-6)


def test_tanh_derivatives_to_third_order():
    x = 0.7
    t = np.tanh(x)
    d1, d2 = 1 - t ** 2, -2 * t * (1 - t ** 2)
    d3 = -2 * (1 - t ** 2) ** 2 + 4 * t ** 2 * (1 - t ** 2)
    assert grad(np.tanh)(x) == pytest.approx(d1)
    assert grad(grad(np.tanh))(x) == pytest.approx(d2)
    assert grad(grad(grad(np.tanh)))(x) == pytest.approx(d3)
    d4 = grad(grad(grad(grad(np.tanh))))(x)
    assert d4 == pytest.approx((grad(grad(grad(np.tanh)))(x + 1e-5) -
                                grad(grad(grad(np.tanh)))(x - 1e-5)) / 2e-5, rel=1e-5)


def test_nested_levels_kept_apart():
    assert grad(lambda x: x * grad(lambda y: x + y)(1.0))(1.0) == 1.0
    assert grad(lambda x: grad(lambda y: x * y)(1.0))(3.0) == 1.0
    # d/dx [x * d/dy (x*y*y)|_{y=2}] = d/dx [4 x^2] = 8x
    assert grad(lambda x: x * grad(lambda y: x * y * y)(2.0))(1.5) == pytest.approx(12.0)


def test_value_and_grad_and_argnums():
    f = lambda x, y: np.sum(x * y) + np.sum(y ** 2)  # noqa: E731
    x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    v, g = value_and_grad(f)(x, y)
    assert v == pytest.approx(f(x, y))
    np.testing.assert_allclose(g, y)
    gx, gy = grad(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, y)
    np.testing.assert_allclose(gy, x + 2 * y)
    np.testing.assert_allclose(grad(f, argnums=-1)(x, y), x + 2 * y)


def test_has_aux():
    def f(x):
        y = np.sum(x ** 2)
        return y, {"y": y, "half": x / 2}
    (v, aux), g = value_and_grad(f, has_aux=True)(X3)
    assert v == pytest.approx(np.sum(X3 ** 2))
    np.testing.assert_allclose(aux["half"], X3 / 2)
    g2, aux2 = grad(f, has_aux=True)(X3)
    np.testing.assert_allclose(g2, 2 * X3)
    assert aux2["y"] == pytest.approx(v)


def test_result_types():
    assert type(grad(lambda x: x ** 2)(3.0)) is float
    g = grad(lambda x: np.sum(x ** 2))(np.float32(3.0))
    assert type(g) is np.float32 and g == 6.0
    g0 = grad(lambda x: x ** 2)(np.array(3.0))
    assert isinstance(g0, np.ndarray) and g0.shape == () and g0 == 6.0
    x32 = np.ones((2, 3), np.float32)
    g32 = grad(lambda x: np.sum(x * 2.5))(x32)
    assert g32.dtype == np.float32 and g32.shape == (2, 3)
    v, _ = value_and_grad(lambda x: np.sum(x * 2.5))(x32)
    assert v.dtype == np.float32


def test_pytree_arguments():
    params = {"w": np.array([1.0, 2.0]), "b": (np.array(0.5), [3.0]), "none": None}

    def f(p):
        return np.sum(p["w"] ** 2) + p["b"][0] * p["b"][1][0]
    g = grad(f)(params)
    np.testing.assert_allclose(g["w"], [2.0, 4.0])
    assert g["b"][0] == 3.0 and g["b"][1][0] == 0.5 and type(g["b"][1][0]) is float
    assert g["none"] is None


def test_tensor_arguments():
    x = adjit.tensor([1.0, 2.0, 3.0])
    g = grad(lambda t: (t * t).sum())(x)
    assert isinstance(g, adjit.Tensor)
    np.testing.assert_allclose(g.detach().numpy(), [2.0, 4.0, 6.0])


def test_decorator_use():
    @grad
    def df(x):
        return x ** 3
    assert df(2.0) == pytest.approx(12.0)


# --- vjp / jvp / jacobians / hessian -----------------------------------------------------------
def vec(x):
    return np.stack([x[0] * x[1], np.sin(x[2]), np.sum(x ** 2)])


def vec_jac(x):
    return np.array([[x[1], x[0], 0], [0, 0, np.cos(x[2])], 2 * x])


def test_vjp_and_jvp():
    y, pb = vjp(vec, X3)
    np.testing.assert_allclose(y, vec(X3))
    ct = np.array([1.0, -2.0, 0.5])
    (g,) = pb(ct)
    np.testing.assert_allclose(g, ct @ vec_jac(X3))
    t = np.array([0.1, 0.2, -0.3])
    y2, tout = jvp(vec, (X3,), (t,))
    np.testing.assert_allclose(y2, vec(X3))
    np.testing.assert_allclose(tout, vec_jac(X3) @ t)


def test_jacobians_of_vector_function():
    np.testing.assert_allclose(jacrev(vec)(X3), vec_jac(X3))
    np.testing.assert_allclose(jacfwd(vec)(X3), vec_jac(X3))
    A = np.arange(6.0).reshape(2, 3)
    J = jacrev(lambda M: M @ X3)(A)
    assert J.shape == (2, 2, 3)
    np.testing.assert_allclose(jacfwd(lambda M: M @ X3)(A), J)
    assert jacrev(np.sin)(0.5) == pytest.approx(np.cos(0.5))


def test_jacobian_pytrees_and_argnums():
    f = lambda a, b: {"s": a * b[0], "t": np.sum(a) * b[1]}  # noqa: E731
    a, b = np.array([1.0, 2.0]), (3.0, 4.0)
    for jac in (jacrev, jacfwd):
        J = jac(f, argnums=(0, 1))(a, b)
        np.testing.assert_allclose(J["s"][0], 3.0 * np.eye(2))
        np.testing.assert_allclose(J["s"][1][0], a)
        np.testing.assert_allclose(J["t"][0], [4.0, 4.0])
        assert J["t"][1][1] == pytest.approx(3.0)


def test_hessian_and_hvp():
    f = lambda x: np.sum(x ** 3) + x[0] * x[1] * x[2]  # noqa: E731
    H = hessian(f)(X3)
    want = np.diag(6 * X3) + np.array([[0, X3[2], X3[1]], [X3[2], 0, X3[0]],
                                       [X3[1], X3[0], 0]])
    np.testing.assert_allclose(H, want)
    np.testing.assert_allclose(jacfwd(jacrev(f))(X3), want)
    np.testing.assert_allclose(jacrev(jacrev(f))(X3), want)
    np.testing.assert_allclose(jacrev(jacfwd(f))(X3), want)
    v = np.array([1.0, 0.5, -1.0])
    hvp = jvp(grad(f), (X3,), (v,))[1]  # forward-over-reverse
    np.testing.assert_allclose(hvp, want @ v)
    hvp2 = grad(lambda x: np.sum(grad(f)(x) * v))(X3)  # reverse-over-reverse
    np.testing.assert_allclose(hvp2, want @ v)


def test_grad_of_function_calling_vjp():
    def f(x):
        y, pb = vjp(lambda z: np.sin(z) * z, x)
        (g,) = pb(np.ones_like(y))
        return np.sum(g)
    # d/dx sum(cos(x) x + sin(x)) = -sin(x) x + 2 cos(x)
    np.testing.assert_allclose(grad(f)(X3), -np.sin(X3) * X3 + 2 * np.cos(X3))


def test_vmap_of_grad_and_grad_of_vmap():
    xs = np.arange(6.0).reshape(3, 2) / 3
    f = lambda x: np.sum(np.sin(x) * x)  # noqa: E731
    np.testing.assert_allclose(vmap(grad(f))(xs), np.sin(xs) + xs * np.cos(xs))
    g = grad(lambda xs: np.sum(vmap(f)(xs)))(xs)
    np.testing.assert_allclose(g, np.sin(xs) + xs * np.cos(xs))


def test_stop_gradient():
    f = lambda x: x * stop_gradient(x)  # noqa: E731
    assert grad(f)(3.0) == 3.0
    np.testing.assert_allclose(stop_gradient(X3), X3)


# --- IR and caching ------------------------------------------------------------------------
def test_make_ir_and_adjoint_graph():
    def f(x):
        y = np.sum(np.sin(x))
        if y > 0:
            return y * 2.0
        return y
    g = make_ir(f)(X3)
    text = str(g)
    assert "sin" in text and "guard" in text
    ag = str(make_ir(grad(f))(X3))
    assert "cos" in ag and "guard" in ag


def test_vjp_graph_cached_but_python_rerun():
    calls = []

    def f(x):
        calls.append(1)
        return np.sum(np.exp(x) * 3.0)
    df = grad(f)
    for _ in range(HOT_CALLS):  # past grad's eager tier (its first calls build no graph)
        df(X3)
    before = dict(CACHE_STATS)
    for i in range(3):
        np.testing.assert_allclose(df(X3 + i), 3 * np.exp(X3 + i))
    assert len(calls) == HOT_CALLS + 3
    assert CACHE_STATS["builds"] == before["builds"]
    assert CACHE_STATS["hits"] >= before["hits"] + 3


def test_closure_constant_not_stale():
    w = np.array([1.0, 2.0, 3.0])
    df = grad(lambda x: np.sum(w * x))
    np.testing.assert_allclose(df(X3), w)
    w[:] = [5.0, 6.0, 7.0]
    np.testing.assert_allclose(df(X3), [5.0, 6.0, 7.0])


def test_nan_inf_propagate_and_empty():
    g = grad(lambda x: np.sum(x * np.nan))(X3)
    assert np.isnan(g).all()
    with np.errstate(divide="ignore"):
        assert grad(lambda x: np.sum(np.sqrt(x)))(np.array([0.0, 4.0]))[0] == np.inf
    g = grad(lambda x: np.sum(x ** 2))(np.zeros((0, 3)))
    assert g.shape == (0, 3)
    assert jacrev(lambda x: x * 2)(np.zeros(0)).shape == (0, 0)


# --- errors --------------------------------------------------------------------------------
def here():
    import inspect
    return f"{__file__}:{inspect.currentframe().f_back.f_lineno}"


def test_error_non_scalar_output():
    with pytest.raises(ValueError, match="jacrev or vjp") as e:
        loc = here(); grad(lambda x: x * 2)(X3)  # noqa: E702
    assert loc in str(e.value)


def test_error_int_argument_and_argnums():
    with pytest.raises(TypeError, match="int"):
        grad(lambda x: x * 2.0)(3)
    with pytest.raises(TypeError, match="bool"):
        grad(lambda x: x * 2.0)(np.array([True]))
    with pytest.raises(ValueError, match="argnums"):
        grad(lambda x: x, argnums=1)(1.0)


def test_error_bad_outputs():
    with pytest.raises(TypeError, match="None"):
        grad(lambda x: None)(1.0)
    with pytest.raises(TypeError, match="str"):
        grad(lambda x: "a")(1.0)
    with pytest.raises(TypeError, match="pair"):
        grad(lambda x: x * 2, has_aux=True)(1.0)
    with pytest.raises(TypeError, match="float output"):
        grad(lambda x: np.argmax(x))(X3)


def test_error_unsupported_function_names_line():
    with pytest.raises(NotImplementedError, match="np.convolve") as e:
        loc = here(); grad(lambda x: np.sum(np.convolve(x, x)))(X3)  # noqa: E702
    assert loc in str(e.value)


def test_error_traced_value_escaping():
    with pytest.raises(TypeError, match="traced") as e:
        loc = here(); grad(lambda x: np.sum(np.asarray(x)))(X3)  # noqa: E702
    assert loc in str(e.value) and "gradient" in str(e.value)
    with pytest.raises(TypeError, match="np.stack"):
        grad(lambda x: np.sum(np.array([x, x])))(X3)
    with pytest.raises(TypeError, match="traced"):
        grad(lambda x: np.ones(3).dot(x))(X3)

    def fill(x):
        out = np.zeros(3)
        out[0] = x
        return np.sum(out)
    with pytest.raises(TypeError, match="gradient"):
        grad(fill)(1.0)
    with pytest.raises(TypeError, match="gradient"):
        grad(lambda x: float(x) * 2)(1.0)


def test_error_shape_mismatch_names_shapes_and_call():
    with pytest.raises(ValueError, match=r"\(3,\) \(4,\).*np.add") as e:
        loc = here(); grad(lambda x: np.sum(x + np.ones(4)))(X3)  # noqa: E702
    assert loc in str(e.value)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\).*np.dot"):
        grad(lambda x: np.dot(x, np.ones(2)))(X3)
    with pytest.raises(ValueError, match="concatenate"):
        grad(lambda x: np.sum(np.concatenate([x[None], np.ones((1, 2))])))(X3)


def test_error_vmap_axis_sizes():
    with pytest.raises(ValueError, match="inconsistent sizes.*3.*4"):
        vmap(lambda a, b: a + b)(np.ones(3), np.ones(4))
