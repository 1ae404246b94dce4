"""adjit.autograd.functional (jacobian, hessian, vjp, jvp, hvp, vhp) against PyTorch 2.13's
torch.autograd.functional: values, result structure (Tensor / tuple / tuple of tuples),
requires_grad of the results, second derivatives through create_graph=True, exception types
and messages (issue 19)."""
import numpy as np
import pytest

import adjit
from peers import require, same_as_torch as both

torch = require("torch")


def X(T):
    return T.tensor([0.5, 2.0], dtype=T.float64)


def ones(T, n=2):
    return T.ones(n, dtype=T.float64)


def F(T):
    return T.autograd.functional


def cube(x):
    return (x ** 3).sum()


CASES = {
    "jac_scalar": lambda T: F(T).jacobian(cube, X(T)),
    "jac_two_inputs": lambda T: F(T).jacobian(lambda a, b: a * b.exp(), (X(T), X(T) + 1)),
    "jac_two_outputs": lambda T: F(T).jacobian(lambda a: (a.sin(), a * 2), X(T)),
    "jac_tuple_tuple": lambda T: F(T).jacobian(lambda a, b: (a * b, a.exp()), (X(T), X(T))),
    "jac_vectorize": lambda T: F(T).jacobian(lambda a, b: (a * b, a.exp()), (X(T), X(T)),
                                             vectorize=True),
    "jac_forward": lambda T: F(T).jacobian(lambda a: a.sin() * a, X(T), vectorize=True,
                                           strategy="forward-mode"),
    "jac_forward_novec": lambda T: F(T).jacobian(lambda a: a.sin(), X(T),
                                                 strategy="forward-mode"),
    "jac_bad_strategy": lambda T: F(T).jacobian(lambda a: a.sin(), X(T), strategy="both"),
    "jac_constant": lambda T: F(T).jacobian(lambda a: T.ones(3, dtype=T.float64), X(T)),
    "jac_constant_strict": lambda T: F(T).jacobian(lambda a: T.ones(2), X(T), strict=True),
    "jac_unused_strict": lambda T: F(T).jacobian(lambda a, b: a * 2, (X(T), X(T)),
                                                 strict=True),
    "jac_list_inputs": lambda T: F(T).jacobian(lambda a: a, [1.0]),
    "jac_float_output": lambda T: F(T).jacobian(lambda a: 3.0, X(T)),
    "jac_create_graph": lambda T: F(T).jacobian(cube, X(T).requires_grad_(), create_graph=True),
    "hess": lambda T: F(T).hessian(lambda a: (a.sin() * a ** 2).sum(), X(T)),
    "hess_vectorize": lambda T: F(T).hessian(lambda a: (a.sin() * a ** 2).sum(), X(T),
                                             vectorize=True),
    "hess_two_inputs": lambda T: F(T).hessian(lambda a, b: (a * b * b).sum(), (X(T), X(T))),
    "hess_not_scalar": lambda T: F(T).hessian(lambda a: a * 2, X(T)),
    "hess_linear_strict": lambda T: F(T).hessian(lambda a: (a * 2).sum(), X(T), strict=True),
    "hess_linear": lambda T: F(T).hessian(lambda a: (a * 2).sum(), X(T)),
    "vjp_scalar": lambda T: F(T).vjp(cube, X(T)),
    "vjp_v": lambda T: F(T).vjp(lambda a: a.tanh(), X(T), ones(T)),
    "vjp_two": lambda T: F(T).vjp(lambda a, b: a * b, (X(T), X(T) * 3), ones(T)),
    "vjp_no_v": lambda T: F(T).vjp(lambda a: a * 2, X(T)),
    "vjp_bad_v": lambda T: F(T).vjp(lambda a: a * 2, X(T), ones(T, 3)),
    "vjp_unused_strict": lambda T: F(T).vjp(lambda a, b: a * 2, (X(T), X(T)), ones(T),
                                            strict=True),
    "jvp": lambda T: F(T).jvp(lambda a: a.exp() * a, X(T), ones(T)),
    "jvp_two_outputs": lambda T: F(T).jvp(lambda a: (a * 2, a * a), X(T), ones(T)),
    "jvp_bad_v": lambda T: F(T).jvp(lambda a, b: a * 2, (X(T), X(T)), (ones(T),)),
    "jvp_unused_strict": lambda T: F(T).jvp(lambda a, b: a * 2, (X(T), X(T)),
                                            (ones(T), ones(T)), strict=True),
    "hvp": lambda T: F(T).hvp(lambda a: (a.sin() * a ** 2).sum(), X(T), ones(T)),
    "vhp": lambda T: F(T).vhp(lambda a: (a.sin() * a ** 2).sum(), X(T), ones(T)),
    "hvp_no_v": lambda T: F(T).hvp(cube, X(T)),
    "vhp_two": lambda T: F(T).vhp(lambda a, b: (a * a * b).sum(), (X(T), X(T)),
                                  (ones(T), ones(T))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_functional_as_torch(name):
    both(CASES[name])


def test_functional_create_graph_second_order():
    """create_graph=True keeps the results on the tape: their own gradient agrees."""
    def hvp_grad(T):
        x = X(T).requires_grad_()
        h = F(T).hvp(lambda a: (a.sin() * a ** 2).sum(), x, ones(T), create_graph=True)[1]
        return h, T.autograd.grad(h.sum(), x)

    def jac_grad(T):
        x = X(T).requires_grad_()
        j = F(T).jacobian(lambda a: a.sin() * a, x, create_graph=True)
        return j, T.autograd.grad(j.sum(), x)

    def hess_grad(T):
        x = X(T).requires_grad_()
        h = F(T).hessian(lambda a: (a.sin() * a).sum(), x, create_graph=True)
        return h, T.autograd.grad(h.sum(), x)

    def jvp_grad(T):
        x = X(T).requires_grad_()
        out, t = F(T).jvp(lambda a: a.exp() * a, x, ones(T), create_graph=True)
        return out, t, T.autograd.grad((t * t).sum(), x)
    for s in (hvp_grad, jac_grad, hess_grad, jvp_grad):
        r = both(s)
        assert r[1][2] is True  # the derivative itself requires grad


def test_functional_finite_differences():
    """The Hessian of a non-polynomial function against central differences (no peer)."""
    f = lambda a: (a.sin() * a ** 2).exp().sum()  # noqa: E731
    x = np.array([0.3, -0.7])
    h = adjit.autograd.functional.hessian(f, adjit.tensor(x)).numpy()

    def g(v):
        return adjit.autograd.functional.jacobian(f, adjit.tensor(v)).numpy()
    eps = 1e-6
    fd = np.stack([(g(x + eps * e) - g(x - eps * e)) / (2 * eps) for e in np.eye(2)], 1)
    np.testing.assert_allclose(h, fd, rtol=1e-6)
