"""adjit.func (torch.func's grad, grad_and_value, vjp, jvp, vmap, jacrev, jacfwd, hessian with
argnums / has_aux) against PyTorch 2.13's torch.func: values, result structure, composition
and argument errors (issue 19)."""
import numpy as np
import pytest

import adjit
from peers import require, same_as_torch

torch = require("torch")
require("torch.func")


def X(T):
    return T.tensor([0.5, 2.0], dtype=T.float64)


def ones(T, *shape):
    return T.ones(*shape, dtype=T.float64)


def f(x):
    return (x.sin() * x).sum()


def g(x, y):
    return (x.sin() * y * y).sum()


CASES = {
    "grad": lambda T: T.func.grad(f)(X(T)),
    "grad_argnums": lambda T: T.func.grad(g, argnums=(0, 1))(X(T), X(T) + 1),
    "grad_argnum1": lambda T: T.func.grad(g, argnums=1)(X(T), X(T) + 1),
    "grad_aux": lambda T: T.func.grad(lambda x: (f(x), x * 2), has_aux=True)(X(T)),
    "grad_not_scalar": lambda T: T.func.grad(lambda x: x.sin())(X(T)),
    "grad_not_tensor": lambda T: T.func.grad(lambda x: 3.0)(X(T)),
    "grad_aux_not_tuple": lambda T: T.func.grad(f, has_aux=True)(X(T)),
    "grad_bad_argnum": lambda T: T.func.grad(f, argnums=2)(X(T)),
    "grad_of_grad": lambda T: T.func.grad(T.func.grad(f))(X(T)[0]),
    "grad_requires_grad_input": lambda T: T.func.grad(f)(X(T).requires_grad_()),
    "grad_and_value": lambda T: T.func.grad_and_value(g, argnums=(0, 1))(X(T), X(T)),
    "grad_and_value_aux": lambda T: T.func.grad_and_value(lambda x: (f(x), x.cos()),
                                                          has_aux=True)(X(T)),
    "vjp": lambda T: T.func.vjp(lambda x: x.sin() * x, X(T))[1](ones(T, 2)),
    "vjp_value": lambda T: T.func.vjp(lambda x: x.sin() * x, X(T))[0],
    "vjp_two": lambda T: T.func.vjp(lambda x, y: x.sin() * y, X(T), X(T))[1](ones(T, 2)),
    "vjp_aux": lambda T: T.func.vjp(lambda x: (x.exp(), x.cos()), X(T), has_aux=True)[2],
    "jvp": lambda T: T.func.jvp(lambda x: x.sin() * x, (X(T),), (ones(T, 2),)),
    "jvp_aux": lambda T: T.func.jvp(lambda x: (x.sin() * x, x.cos()), (X(T),), (ones(T, 2),),
                                    has_aux=True),
    "jvp_strict": lambda T: T.func.jvp(lambda x: x * 0, (X(T),), (ones(T, 2),), strict=True),
    "jvp_strict_constant": lambda T: T.func.jvp(lambda x: (x * 2, T.ones(2)), (X(T),),
                                                (ones(T, 2),), strict=True),
    "jvp_not_tuple": lambda T: T.func.jvp(lambda x: x.sin(), X(T), ones(T, 2)),
    "jvp_bad_size": lambda T: T.func.jvp(lambda x: x.sin(), (X(T),), (ones(T, 3),)),
    "vmap": lambda T: T.func.vmap(lambda x: x.sin() * x)(ones(T, 3, 2)),
    "vmap_dims": lambda T: T.func.vmap(lambda x, y: x * y, in_dims=(1, None), out_dims=1)(
        ones(T, 2, 3), X(T)[0]),
    "vmap_bad_randomness": lambda T: T.func.vmap(lambda x: x, randomness="bad")(X(T)),
    "vmap_of_grad": lambda T: T.func.vmap(T.func.grad(f))(
        T.tensor(np.linspace(0.1, 1.2, 6).reshape(3, 2))),
    "jacrev": lambda T: T.func.jacrev(lambda x: x.sin() * x)(X(T)),
    "jacrev_argnums": lambda T: T.func.jacrev(lambda x, y: x.sin() * y, argnums=(0, 1))(
        X(T), X(T) + 2),
    "jacrev_aux": lambda T: T.func.jacrev(lambda x: (x.sin() * x, x), has_aux=True)(X(T)),
    "jacrev_two_outputs": lambda T: T.func.jacrev(lambda x: (x.sin(), x.cos()))(X(T)),
    "jacfwd": lambda T: T.func.jacfwd(lambda x: x.exp() * x)(X(T)),
    "jacfwd_aux": lambda T: T.func.jacfwd(lambda x: (x.exp(), x), has_aux=True)(X(T)),
    "hessian": lambda T: T.func.hessian(f)(X(T)),
    "hessian_argnum1": lambda T: T.func.hessian(g, argnums=1)(X(T), X(T)),
    "hessian_argnums": lambda T: T.func.hessian(g, argnums=(0, 1))(X(T), X(T) + 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_func_as_torch(case):
    same_as_torch(CASES[case], rtol=1e-12, atol=1e-12)


def test_jvp_structure_message():
    """PyTorch's message for mismatched primals / tangents (adjit stops before PyTorch's
    TreeSpec rendering, which names torch's internal classes)."""
    with pytest.raises(RuntimeError) as ours:
        adjit.func.jvp(lambda x: x, (X(adjit),), X(adjit))
    with pytest.raises(RuntimeError) as ref:
        torch.func.jvp(lambda x: x, (X(torch),), X(torch))
    assert str(ref.value).startswith(str(ours.value))


def test_hessian_finite_differences():
    """adjit.func.hessian against central differences of adjit.func.grad (no peer)."""
    x = np.array([0.3, -1.1])
    h = adjit.func.hessian(lambda a: (a.sin() * a ** 2).exp().sum())(adjit.tensor(x)).numpy()
    gr = adjit.func.grad(lambda a: (a.sin() * a ** 2).exp().sum())
    eps = 1e-6
    fd = np.stack([(gr(adjit.tensor(x + eps * e)).numpy() - gr(adjit.tensor(x - eps * e))
                    .numpy()) / (2 * eps) for e in np.eye(2)], 1)
    np.testing.assert_allclose(h, fd, rtol=1e-6)


def test_unsupported_keywords_are_refused():
    with pytest.raises(NotImplementedError, match="chunk_size"):
        adjit.func.vmap(lambda x: x, chunk_size=2)
    with pytest.raises(NotImplementedError, match="randomness='same'"):
        adjit.func.vmap(lambda x: x, randomness="same")
