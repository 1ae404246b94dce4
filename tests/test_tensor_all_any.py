"""Tensor.all / Tensor.any and torch.all / torch.any against PyTorch 2.13 (they were missing):
values, dtype (bool), shape, no gradient, dim as an int, a tuple, a list, (), None, keepdim,
and the errors (dimension out of range, a repeated dim)."""
from __future__ import annotations

import pytest

import adjit

from peers import require

torch = require("torch")

DATA = [[[1.0, 0.0, 2.0], [2.0, 3.0, -1.0]], [[1, 2], [0, 4]], [[True, False], [True, True]],
        2.5, 0.0, [], [[float("nan"), 1.0]], [[[0.0, 1.0]], [[1.0, 1.0]]]]
CALLS = [((), {}), ((0,), {}), ((-1,), {}), ((1, True), {}), ((), {"dim": 1, "keepdim": True}),
         ((), {"dim": (0, -1)}), ((), {"dim": [0]}), ((), {"keepdim": True}),
         ((), {"dim": ()}), ((), {"dim": [], "keepdim": True}), ((3,), {}),
         ((), {"dim": (0, -2)})]


def _run(lib, x, name, fn, args, kw):
    try:
        r = getattr(lib, name)(x, *args, **kw) if fn else getattr(x, name)(*args, **kw)
    except Exception as exc:  # noqa: BLE001 - the type and message are compared
        return type(exc).__name__, str(exc)
    return r.tolist(), str(r.dtype).split(".")[-1], tuple(r.shape), r.requires_grad


@pytest.mark.parametrize("name", ["all", "any"])
@pytest.mark.parametrize("fn", [False, True], ids=["method", "function"])
@pytest.mark.parametrize("k", range(len(DATA)))
def test_all_any_as_torch(name, fn, k):
    a, b = adjit.tensor(DATA[k]), torch.tensor(DATA[k])
    for args, kw in CALLS:
        mine, want = _run(adjit, a, name, fn, args, kw), _run(torch, b, name, fn, args, kw)
        assert mine == want, (args, kw, mine, want)


@pytest.mark.parametrize("name", ["all", "any"])
def test_all_any_of_a_tensor_requiring_grad_has_no_gradient(name):
    a = adjit.tensor([1.0, 0.0], requires_grad=True)
    b = torch.tensor([1.0, 0.0], requires_grad=True)
    r, w = getattr(a * 2, name)(), getattr(b * 2, name)()
    assert (r.item(), r.requires_grad, r.grad_fn) == (w.item(), w.requires_grad, w.grad_fn)


def test_all_any_under_jit():
    x = [[0.0, 1.0], [0.0, 0.0]]
    f = adjit.jit(lambda u: (u.any(0), adjit.all(u > -1.0, dim=1, keepdim=True)))
    got = f(adjit.tensor(x))
    t = torch.tensor(x)
    assert got[0].tolist() == t.any(0).tolist()
    assert got[1].tolist() == torch.all(t > -1.0, dim=1, keepdim=True).tolist()
