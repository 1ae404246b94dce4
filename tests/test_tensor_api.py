"""adjit.Tensor's autograd API and Python protocol against torch (see test_tensor_vs_torch)."""
from __future__ import annotations

import pytest

from test_tensor_vs_torch import check, err, leaf

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


@case
def retain_grad_and_nonleaf_grad_warning(t):
    a, b = leaf(t, [2.]), leaf(t, [3.])
    c = a * b
    d = t.log(c)
    d.retain_grad()
    e = d * a + c
    e.backward()
    return [a.is_leaf, c.is_leaf, d.is_leaf, d.retains_grad, c.retains_grad, d.grad, c.grad,
            a.grad, e.grad_fn is not None, a.grad_fn, e.requires_grad]


@case
def retain_graph_twice(t):
    x = leaf(t, [1., 2.])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    g1 = x.grad.clone()
    y.backward()
    return [g1, x.grad, err(lambda: y.backward())]


@case
def backward_with_gradient(t):
    x = leaf(t, [1., 2., 3.])
    z = (x * 2 + 3) ** 2
    z.backward(t.tensor([1., 0.5, 2.]))
    m = leaf(t, [[1., 2.], [3., 4.]])
    (m * 3).backward(t.ones(2, 2))
    return [x.grad, m.grad, x.grad / len(x)]


@case
def accumulation_and_zero(t):
    x = leaf(t, 3.)
    grads = []
    for _ in range(3):
        y = 3 * x ** 2 + 4 * x + 2
        y.backward()
        grads.append(x.grad.clone())
    x.grad.zero_()
    grads.append(x.grad)
    y = x * 5
    y.backward()
    return grads + [x.grad, x.grad is not None]


@case
def leaf_backward_and_scalar_seed(t):
    x = leaf(t, 2.)
    x.backward()
    v = leaf(t, [1., 2.])
    v.backward(t.tensor([3., 4.]))
    return [x.grad, v.grad]


@case
def detach_and_data_share_storage(t):
    x = leaf(t, [1., 2., 3.])
    d = x.detach()
    d[0] = 5.
    dd = x.data
    dd[1] = 7.
    y = x * 2
    yd = y.detach()
    return [x, d, dd, d.requires_grad, dd.is_leaf, yd.grad_fn, yd.is_leaf, x.detach().numpy()]


@case
def numpy_shares_storage(t):
    a = t.tensor([1., 2., 3.])
    n = a.numpy()
    n[0] = 10.
    a.add_(1)
    a[2] = -1.
    x = leaf(t, [1., 2.])
    xn = x.detach().numpy()
    with t.no_grad():
        x[0] = 99.
    return [a, n.tolist(), xn.tolist(), str(t.tensor([1., 2.]).numpy()), x]


@case
def views_share_storage(t):
    a = t.zeros(2, 3)
    v = a[0]
    v += 1
    w = a.view(6)
    w[5] = 4.
    r = a.T
    r[0, 1] = 9.
    return [a, v, w, r, a.reshape(3, 2)]


@case
def requires_grad_flags(t):
    x = t.tensor([1., 2.])
    r1 = x.requires_grad_()
    y = x * 2
    x2 = x.requires_grad_(False)
    z = t.ones(2, requires_grad=True)
    z.requires_grad = False
    i = t.tensor([1, 2])
    return [r1 is x, x2 is x, x, y.requires_grad, z, err(lambda: i.requires_grad_()),
            err(lambda: y.requires_grad_(False)), err(lambda: t.ones(2, dtype=t.int64,
                                                                       requires_grad=True))]


@case
def scalar_conversions(t):
    s = leaf(t, 3.5).detach()  # float() of a tensor requiring grad warns once per process
    i = t.tensor(7)
    one = t.tensor([2.25])
    return [s.item(), i.item(), float(s), int(s), int(i), bool(i), bool(t.tensor(0.)),
            float(one), one.item(), t.tensor([[5]]).item(), t.tensor([1, 2]).tolist(),
            t.tensor([[1., 2.5]]).tolist(), s.tolist(), "{}".format(s), f"{i}", f"{s:.2f}",
            "{:>6}".format(i), err(lambda: f"{one:.2f}"), err(lambda: bool(t.ones(3))),
            err(lambda: t.ones(2).item()), t.tensor(True).item(), s.dtype, i.dtype]


@case
def len_iteration_unpacking(t):
    m = leaf(t, [[1., 2.], [3., 4.], [5., 6.]])
    rows = list(m)
    a, b, c = m
    first, *rest = t.tensor([4., 5., 6.])
    g, *_ = t.tensor([-36.])
    return [len(m), rows, a, c, first, rest, g, len(t.zeros(4, 2)), err(lambda: len(t.tensor(1.))),
            err(lambda: list(t.tensor(1.)))]


@case
def comparisons(t):
    x = leaf(t, [1., 2., 3.])
    y = t.tensor([1., 0., 3.])
    i = t.tensor([1, 2, 3])
    return [x > 1, 1 < x, x == y, x != 2, x >= y, x <= 2.5, i == 2, i > 1.5, x == i,
            (x > 1).dtype, 2 == x, t.tensor(2.) == 2, (x > 1) & (x < 3), (x > 2) | (x < 2),
            ~(x > 2), t.eq(x, y), x.eq(2), x.lt(y), x.gt(y)]


@case
def grad_is_not_tracked(t):
    x = leaf(t, [1., 2.])
    y = (x * x).sum()
    y.backward()
    g = x.grad
    return [g, g.requires_grad, g.grad_fn, g.is_leaf]


@case
def no_grad_and_enable_grad(t):
    x = leaf(t, [1., 2.])
    with t.no_grad():
        y = x * 2
        with t.enable_grad():
            z = x * 3
    with t.set_grad_enabled(False):
        w = x + 1
    @t.no_grad()
    def f(v):
        return v * 4

    @t.set_grad_enabled(False)
    def g(v):
        return v * 5

    t.set_grad_enabled(False)
    off = x * 6
    t.set_grad_enabled(True)
    return [y, z, w, f(x), g(x), x * 7, off, t.is_grad_enabled(), y.requires_grad, y.is_leaf]


@case
def grad_fn_objects(t):
    x = leaf(t, [1., 2.])
    y = x * 2
    fn = y.grad_fn
    acc = fn.next_functions[0][0]
    return [fn.name(), type(fn).__name__, acc.variable is x, acc.next_functions,
            type(acc).__name__, str(fn).split(" object at ")[0],
            fn.next_functions[1], (y.sum() * 1.2).grad_fn.next_functions[1]]


@case
def inplace_non_leaf_grad_fn_chain(t):
    x = leaf(t, [1., 2., 3.])
    y = x * 1
    y.mul_(2)
    y.add_(x, alpha=2)
    y.sub_(1)
    y.div_(2)
    y.sum().backward()
    e = x.exp()          # exp saves its result: changing it in place breaks the backward
    e.mul_(2)
    e.add_(1)
    return [y, x.grad, e, err(lambda: e.sum().backward())]


@case
def zero_grad_none_and_set(t):
    x = leaf(t, [1., 2.])
    (x * 3).sum().backward()
    x.grad = None
    (x * 2).sum().backward()
    g = x.grad
    x.grad = t.zeros(2)
    (x * 2).sum().backward()
    return [g, x.grad]


@case
def float64_int32_and_empty_reprs(t):
    x = leaf(t, [1., 2.], dtype=t.float64)
    y = (x * x).sum()
    y.backward()
    i32 = t.tensor([1, 2], dtype=t.int32)
    e = t.tensor([])
    return [x, y, x.grad, i32, i32 * 2, i32 + 1.5, e, t.zeros(0, 3), t.tensor([], dtype=t.int64),
            t.zeros(2, 0, dtype=t.float64), e.sum(), x.shape == (2,), x.shape[0], x.size()[-1]]


@case
def data_setter_and_detach_(t):
    x = leaf(t, [1., 2.])
    x.data = t.tensor([5., 6.])
    y = x * 3
    y.backward(t.ones(2))
    x.grad.data.zero_()
    z = t.tensor([1., 2.])
    z.data[0] = 9
    w = x * 2
    w2 = w.detach_()
    return [x, x.grad, z, x.data, y.data, y.data.requires_grad, w2 is w, w.is_leaf, w]


@case
def graph_survives_requires_grad_false(t):
    x = t.tensor(3., requires_grad=True)
    y = 3 * x ** 2 + 4 * x + 2
    return [y, x.requires_grad_(False), x, x.detach(), y.item(), y.grad_fn.name()]


@case
def retain_grad_on_a_view(t):
    x = leaf(t, [1., 2., 3.])
    y = x[1:]
    y.retain_grad()
    z = (y * y).sum()
    z.backward()
    return [y.grad, x.grad, y.retains_grad, z.retains_grad, y.grad_fn]


@case
def special_values(t):
    x = leaf(t, [0., 1., 4.])
    y = x.sqrt()
    y.backward(t.ones(3))
    z = leaf(t, [-1., 0., 1.])
    w = z.log()
    w.sum().backward()
    return [y, x.grad, w, z.grad, t.tensor([0.]) / 0, t.tensor([1.]) / 0, t.tensor([1]) / 0,
            t.tensor([-1.]).sqrt(), t.tensor([1., float("nan")]), t.tensor([float("inf"), -1.]),
            t.tensor([1e20, 1.]), t.tensor([123456789.]), t.tensor(1.5e-5),
            t.tensor([0.001, 1000.]), t.arange(10.).reshape(2, 5) / 3]


@case
def new_factories(t):
    x = t.tensor([1., 2.], dtype=t.float64)
    return [x.new_tensor([1, 2]), x.new_zeros(2, 3), x.new_ones((2,)), x.new_full((2,), 7),
            x.new_zeros(2, dtype=t.int64)]


@case
def inplace_through_views(t):
    x = leaf(t, [1., 2., 3.])
    y = x * 2
    v = y[0:2]
    v += 1                      # y becomes CopySlices, v is regenerated from it
    w = y[1:]                   # a sibling view, made before the next write
    y[2:].mul_(3)
    (y * y).sum().backward()
    g1 = x.grad.clone()
    x.grad = None
    h = x * 1
    h[1:] += 1                  # getitem, in-place add on the view, setitem
    (h * h).sum().backward()
    g2 = x.grad.clone()
    x.grad = None
    z = (x * 1).view(3, 1)
    z[0][0] = 5                 # setitem on a view of a view
    (z * z).sum().backward()
    return [y, v, w, g1, h, g2, z, x.grad]


@case
def inplace_view_errors(t):
    x = leaf(t, [[1., 2.], [3., 4.]])
    a, b = x * 1

    def view_of_leaf():
        v = x[0]
        v += 1

    return [err(lambda: b.mul_(3)), err(view_of_leaf), err(lambda: x[0].mul_(2)), b]


@pytest.mark.parametrize("fn", CASES, ids=[c.__name__ for c in CASES])
def test_matches_torch(fn):
    check(fn)
