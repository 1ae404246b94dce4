"""Module functions a PyTorch user expects (issue 19.5): torch.maximum, minimum, einsum, outer,
cumsum, logsumexp, softmax, log_softmax as functions and methods, against PyTorch 2.13: values,
first and second derivatives, grad_fn names, errors."""
import numpy as np
import pytest

import adjit
from peers import require

torch = require("torch")

A = np.array([[0.5, -1.25, 2.0], [3.0, 0.1, -0.7]])
B = np.array([[1.5, -1.25, 0.0], [-3.0, 0.2, 1.7]])

CASES = {
    "maximum": lambda T, a, b: T.maximum(a, b),
    "minimum": lambda T, a, b: T.minimum(a, b),
    "einsum": lambda T, a, b: T.einsum("ij,kj->ik", a, b),
    "outer": lambda T, a, b: T.outer(a[0], b[1]),
    "cumsum": lambda T, a, b: T.cumsum(a * b, 1),
    "cumsum_method": lambda T, a, b: (a * b).cumsum(0),
    "logsumexp": lambda T, a, b: T.logsumexp(a * b, 1),
    "logsumexp_dims": lambda T, a, b: T.logsumexp(a * b, (0, 1)),
    "logsumexp_keepdim": lambda T, a, b: T.logsumexp(a * 100, -1, keepdim=True),
    "logsumexp_method": lambda T, a, b: (a * b).logsumexp(0),
    "logsumexp_0d": lambda T, a, b: T.logsumexp(a[0, 0], 0),
    "logsumexp_bad_dim": lambda T, a, b: T.logsumexp(a, 2),
    "logsumexp_int": lambda T, a, b: T.logsumexp(T.tensor([1, 2]), 0),
    "logsumexp_neg_inf": lambda T, a, b: T.logsumexp(T.tensor([-float("inf")] * 2), 0),
    "softmax": lambda T, a, b: T.softmax(a * b, 1),
    "log_softmax": lambda T, a, b: T.log_softmax(a * b, 0),
}


def _obs(T, case):
    a = T.tensor(A, requires_grad=True)
    b = T.tensor(B, requires_grad=True)
    try:
        y = CASES[case](T, a, b)
    except Exception as e:  # noqa: BLE001 - the exception is the observation
        return [(type(e).__name__, str(e))]
    obs = [y.detach().numpy(), y.dtype == T.float64, y.requires_grad,
           None if y.grad_fn is None else type(y.grad_fn).__name__]
    if y.requires_grad:
        w = T.tensor(np.linspace(0.3, 1.7, y.numel()).reshape(y.shape))
        g = T.autograd.grad((y * y.sin() * w).sum(), (a, b), create_graph=True,
                            allow_unused=True, materialize_grads=True)
        obs += [t.detach().numpy() for t in g]
        gg = T.autograd.grad(sum((t * t).sum() for t in g), (a, b), allow_unused=True,
                             materialize_grads=True)
        obs += [t.numpy() for t in gg]
    return obs


@pytest.mark.parametrize("case", sorted(CASES))
def test_module_function_as_torch(case):
    mine, ref = _obs(adjit, case), _obs(torch, case)
    assert len(mine) == len(ref), (mine, ref)
    for m, r in zip(mine, ref):
        if isinstance(r, np.ndarray):
            np.testing.assert_allclose(m, r, rtol=1e-10, atol=1e-12)
        else:
            assert m == r
