"""Visible details of the Tensor front against PyTorch 2.13: the op the version-counter error
names (several ops saving the same tensor), and what `adjit.jit` returns for Tensors that
require grad (torch.compile's CompiledFunctionBackward, a working backward)."""
from __future__ import annotations

import numpy as np
import pytest

import adjit

from peers import require

torch = require("torch")


def _y_exp(L, x):
    y = x.exp()
    return y * y, lambda: y.add_(1)


def _y_mul(L, x):
    y = x * 1
    return y * y, lambda: y.add_(1)


def _y_sin_mul(L, x):
    y = x * 2
    return y.sin() * y, lambda: y.mul_(2)


def _y_twice(L, x):
    y = x + 1
    return y * y, lambda: (y.add_(1), y.add_(1))


def _saved_result(L, x):
    z = (x + 1).exp()
    return z.sum(), lambda: z.add_(1)


def _y_tanh_pow(L, x):
    y = x.tanh()
    return y ** 2 + y.sigmoid(), lambda: y.sub_(1)


def _y_sqrt_div(L, x):
    y = x.sqrt()
    return (x / y) * y.log(), lambda: y.mul_(3)


def _unused_after(L, x):
    y = x.sin()
    return y.exp(), lambda: y.add_(1)  # exp saves its result, not y: no error


CASES = [_y_exp, _y_mul, _y_sin_mul, _y_twice, _saved_result, _y_tanh_pow, _y_sqrt_div,
         _unused_after]


def _message(L, case):
    x = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
    z, modify = case(L, x)
    modify()
    try:
        z.sum().backward()
    except RuntimeError as e:
        return str(e)
    return "no error"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_version_counter_error_names_the_op_pytorch_names(case):
    assert _message(adjit, case) == _message(torch, case)


# --------------------------------------------------------------------------------- jit
def _f(a, b):
    return (a * b).sum(), a * 2


def test_jit_result_has_grad_fn_and_backward_matches_torch():
    f = adjit.jit(_f)
    xt = torch.tensor([1.0, 2.0], requires_grad=True)
    yt = torch.tensor([3.0, 4.0])
    st, vt = _f(xt, yt)
    (st + vt.sum()).backward()
    for _ in range(3):  # the tracing call and the replays
        x = adjit.tensor([1.0, 2.0], requires_grad=True)
        y = adjit.tensor([3.0, 4.0])
        s, v = f(x, y)
        assert s.requires_grad and v.requires_grad and not s.is_leaf
        assert type(s.grad_fn).__name__ == "CompiledFunctionBackward"
        assert s.grad_fn is v.grad_fn
        assert [type(fn).__name__ if fn is not None else None
                for fn, _ in s.grad_fn.next_functions] == ["AccumulateGrad", None]
        (s + v.sum()).backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy())
    s, v = f(adjit.tensor([3.0, 4.0]), adjit.tensor([3.0, 4.0]))
    assert not s.requires_grad and s.grad_fn is None and s.is_leaf
    with adjit.no_grad():
        s, v = f(adjit.tensor([1.0, 2.0], requires_grad=True), adjit.tensor([3.0, 4.0]))
    assert not s.requires_grad and s.grad_fn is None


def test_jit_grad_fn_name_is_torch_compiles():
    pytest.importorskip("torch._dynamo")
    g = torch.compile(_f, backend="aot_eager")
    s, v = g(torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([3.0, 4.0]))
    a, b = adjit.jit(_f)(adjit.tensor([1.0, 2.0], requires_grad=True),
                         adjit.tensor([3.0, 4.0]))
    assert type(a.grad_fn).__name__ == type(s.grad_fn).__name__
    assert (a.grad_fn is b.grad_fn) == (s.grad_fn is v.grad_fn)
    assert [fn is None for fn, _ in a.grad_fn.next_functions] == \
        [fn is None for fn, _ in s.grad_fn.next_functions]
