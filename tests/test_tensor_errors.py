"""Bad input: adjit raises what PyTorch raises (type and message), and shape errors also name
the user's source line. Cases are compared with torch as in test_tensor_vs_torch."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import adjit

from test_tensor_vs_torch import check, err, leaf

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


@case
def backward_errors(t):
    x = leaf(t, [1., 2., 3.])
    y = (x * x).sum()
    y.backward()
    second = err(lambda: y.backward())
    z = x * 2
    nonscalar = err(lambda: z.backward())
    wrong_shape = err(lambda: (x * 3).backward(t.ones(2)))
    wrong_shape2 = err(lambda: (x * 3).backward(t.ones(3, 1)))
    plain = err(lambda: t.ones(3).sum().backward())
    s = (x + 1).sum()  # nothing saved: a second backward is allowed
    s.backward()
    again = err(lambda: s.backward())
    return [second, nonscalar, wrong_shape, wrong_shape2, plain, again, x.grad]


@case
def second_backward_through_scalar_product(t):
    x = leaf(t, [1., 2.])
    y = (x * 2).sum()
    y.backward()
    return [err(lambda: y.backward()), x.grad]


@case
def numpy_of_tensor_requiring_grad(t):
    x = leaf(t, [1., 2.])
    return [err(lambda: x.numpy()), err(lambda: (x * 2).numpy()), x.detach().numpy().tolist()]


@case
def inplace_on_leaf_requiring_grad(t):
    x = leaf(t, [1., 2., 3.])

    def setitem():
        x[0] = 99

    def iadd():
        y = x
        y += 1

    return [err(setitem), err(lambda: x.add_(1)), err(iadd), err(lambda: x.mul_(2)),
            err(lambda: x.zero_()), err(lambda: x.sub_(1)), x, x.is_leaf]


@case
def saved_tensor_modified_in_place(t):
    x = leaf(t, [1., 2., 3.])
    y = x * 1
    z = y * y
    y.add_(1)
    r1 = err(lambda: z.sum().backward())
    e = x.exp()
    f = e * 2
    e.add_(1)
    r2 = err(lambda: f.sum().backward())  # mul saved no e (2 needs no grad)...
    g = x.exp()
    g += 1                                 # ...but exp saved its result
    r3 = err(lambda: g.sum().backward())
    w = leaf(t, [1., 2.])
    v = w * w
    with t.no_grad():
        w.add_(1)
    r4 = err(lambda: v.sum().backward())
    b = t.ones(3)
    p = x * b
    b.mul_(2)
    r5 = err(lambda: p.sum().backward())
    return [r1, r2, r3, r4, r5, x.grad]


@case
def broadcast_and_matmul_mismatch(t):
    return [err(lambda: t.ones(3) + t.ones(4)), err(lambda: t.ones(2, 3) * t.ones(3, 2)),
            err(lambda: t.ones(2, 3) @ t.ones(4, 5)), err(lambda: t.ones(2, 3) @ t.ones(4)),
            err(lambda: t.ones(3) @ t.ones(4)), err(lambda: t.ones(3) @ t.ones(4, 5)),
            err(lambda: t.ones(2, 2, 3) @ t.ones(4, 5)), err(lambda: t.ones(2, 2, 3) @ t.ones(4)),
            err(lambda: t.ones(2, 2, 3) @ t.ones(2, 4, 5)), err(lambda: t.ones(3) @ t.tensor(2.)),
            err(lambda: t.ones(2, 3).mm(t.ones(3))), err(lambda: t.ones(3).dot(t.ones(3, 1))),
            err(lambda: t.ones(2, 3) @ t.ones(3, 2, dtype=t.float64)),
            err(lambda: t.ones(2, 2, 3) @ t.ones(3, 3, 2)),
            err(lambda: t.ones(3).expand(2, 4)), err(lambda: t.ones(2, 3) - t.ones(3, 3))]


@case
def shape_errors(t):
    return [err(lambda: t.ones(3).view(2, 2)), err(lambda: t.ones(6).view(-1, -1)),
            err(lambda: t.ones(6).reshape(4, -1)), err(lambda: t.ones(2, 3).T.view(6)),
            err(lambda: t.cat([t.ones(2, 3), t.ones(2, 2)])),
            err(lambda: t.stack([t.ones(2), t.ones(3)])),
            err(lambda: t.cat([t.ones(2), t.ones(2, 2)])), err(lambda: t.ones(2, 3).sum(2)),
            err(lambda: t.ones(2).unsqueeze(3)), err(lambda: t.ones(2, 3).t().t().permute(0)),
            err(lambda: t.ones(3, 2, 2).t()), err(lambda: t.ones(2, 3).transpose(0, 2)),
            err(lambda: t.tensor([]).max()), err(lambda: t.tensor([]).min())]


@case
def conversion_errors(t):
    return [err(lambda: bool(t.ones(3))), err(lambda: t.ones(2).item()),
            err(lambda: float(t.ones(2))), err(lambda: int(t.ones(2))),
            err(lambda: t.ones(2) if t.ones(2) else 0), err(lambda: len(t.tensor(1.))),
            err(lambda: [i for i in t.tensor(2.)]), err(lambda: f"{t.ones(2):.2f}"),
            err(lambda: t.tensor(1.5).__index__()), err(lambda: [0, 1][t.tensor([1])])]


@case
def bad_tensor_data(t):
    return [err(lambda: t.tensor("a")), err(lambda: t.tensor([1, "a"])),
            err(lambda: t.tensor([[1, 2], [3]])), err(lambda: t.tensor([None])),
            err(lambda: t.tensor(object())), err(lambda: t.tensor([[1], 2])),
            err(lambda: t.tensor([1, 2], dtype=t.int64, requires_grad=True)),
            err(lambda: t.tensor([1, 2]).requires_grad_()), err(lambda: t.zeros(2, "a")),
            err(lambda: t.ones(-1))]


@case
def indexing_errors(t):
    x = t.tensor([1., 2., 3.])
    m = t.ones(2, 3)
    return [err(lambda: x[3]), err(lambda: x[-4]), err(lambda: m[2]), err(lambda: m[0, 3]),
            err(lambda: x[::-1]), err(lambda: x[0, 0]), err(lambda: x[[5]]),
            err(lambda: x[t.tensor([True, False])]), err(lambda: x[1.5]),
            err(lambda: x[t.tensor([0.])]), err(lambda: t.tensor(1.)[0]), err(lambda: x[::0]),
            err(lambda: m[:, ::-2]), err(lambda: x["a"])]


@case
def setitem_errors(t):
    x = t.tensor([1., 2., 3.])

    def bad_shape():
        x[0:2] = t.tensor([1., 2., 3.])

    def neg_step():
        x[::-1] = 0.

    def out_of_range():
        x[5] = 1.

    return [err(bad_shape), err(neg_step), err(out_of_range), x]


@pytest.mark.parametrize("fn", CASES, ids=[c.__name__ for c in CASES])
def test_matches_torch(fn):
    check(fn)


# ------------------------------------------------------------------- where the user went wrong
def _raise(fn):
    with pytest.raises(RuntimeError) as info:
        fn()
    return info.value


@pytest.mark.parametrize("fn", [
    lambda: adjit.ones(3) + adjit.ones(4),
    lambda: adjit.ones(2, 3) @ adjit.ones(4, 5),
    lambda: adjit.ones(2, 3) @ adjit.ones(4),
    lambda: adjit.ones(3) @ adjit.ones(4),
    lambda: adjit.ones(3).view(2, 2),
    lambda: adjit.cat([adjit.ones(2, 3), adjit.ones(2, 2)]),
    lambda: adjit.tensor([1., 2.], requires_grad=True).mul(3).backward(adjit.ones(3)),
], ids=["broadcast", "mm", "mv", "dot", "view", "cat", "gradient"])
def test_shape_errors_name_the_user_line(fn):
    exc = _raise(fn)
    here = sys._getframe().f_code.co_filename
    assert exc.adjit_location[0] == here
    assert getattr(exc, "__notes__", [f"at {here}"])[-1].startswith(f"at {here}:")
    assert "adjit" not in str(exc).split(":")[0]  # the message itself stays PyTorch's


def test_location_points_at_the_calling_line():
    def user_code():
        a = adjit.ones(3)
        return a + adjit.ones(4)  # <- this line
    exc = _raise(user_code)
    line = user_code.__code__.co_firstlineno + 2
    assert exc.adjit_location[1] == line
