"""Reductions, math functions, shape operations, joins and factories against torch (see
test_tensor_vs_torch for how a case is compared)."""
from __future__ import annotations

import numpy as np
import pytest

from test_tensor_vs_torch import check, err, leaf

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def _mat(t):
    return leaf(t, [[1., -2., 3.], [4., 5., -6.]])


def _grads_of(outs, *xs, square=False):
    """Backward through a weighted sum of every output (of their squares, for outputs whose
    sum is constant); the leaves' grads."""
    total = None
    for k, o in enumerate(outs):
        term = ((o * o if square else o) * (k + 1)).sum()
        total = term if total is None else total + term
    total.backward()
    return [x.grad for x in xs]


@case
def sum_mean_dims(t):
    m = _mat(t)
    outs = [m.sum(), m.sum(0), m.sum(1), m.sum(-1, keepdim=True), m.sum((0, 1)), m.mean(),
            m.mean(0), m.mean(1, keepdim=True), t.sum(m), t.mean(m, dim=0), m.sum(dim=[0, 1]),
            m.mean((0, 1), keepdim=True)]
    return outs + _grads_of(outs, m)


@case
def int_reductions(t):
    i = t.tensor([[1, 2, 3], [4, 5, 6]])
    b = t.tensor([True, False, True])
    return [i.sum(), i.sum(0), b.sum(), i.max(), i.min(1), i.argmax(), i.argmin(0),
            i.prod(), i.float().mean(), err(lambda: i.mean()), i.sum(dtype=t.float32)]


@case
def max_min_whole_tie_splitting(t):
    x = leaf(t, [1., 3., 3., 0.])
    y = leaf(t, [2., -1., -1., 5.])
    outs = [x.max(), y.min(), t.max(x), t.min(y)]
    return outs + _grads_of(outs, x, y)


@case
def max_min_dim_index_routing(t):
    m = leaf(t, [[1., 4., 4.], [2., 2., 0.], [7., 7., 7.]])
    r = m.max(1)
    r2 = m.min(dim=0, keepdim=True)
    v, i = m.max(0)
    outs = [r.values, r2.values, v]
    grads = _grads_of(outs, m)
    return [r, r2, v, i, r.indices, r2.indices, r[0], r[1]] + grads


@case
def norm_var_std_prod(t):
    x = leaf(t, [3., -4., 1., 2.])
    m = leaf(t, [[1., 2.], [3., 5.], [0.5, -1.]])
    outs = [x.norm(), m.norm(dim=1), x.norm(p=1), x.var(), x.std(), m.var(0), m.std(1),
            x.var(unbiased=False), x.prod(), m.prod(1), m.prod(0, keepdim=True),
            t.norm(m), m.norm(dim=0, keepdim=True)]
    return outs + _grads_of(outs, x, m)


@case
def prod_with_zero(t):
    x = leaf(t, [2., 0., 3.])
    y = x.prod()
    y.backward()
    return [y, x.grad]


@case
def softmax_family(t):
    m = leaf(t, [[1., 2., 3.], [0.5, 1., -1.]])
    x = leaf(t, [0.5, -1., 2.])
    outs = [m.softmax(1), m.softmax(0), m.log_softmax(1), x.softmax(0), x.log_softmax(-1),
            t.softmax(m, dim=1), t.log_softmax(x, 0), m.softmax(dim=-1)]
    return outs + _grads_of(outs, m, x, square=True)


@case
def relu_sigmoid_at_kinks(t):
    x = leaf(t, [-1., 0., 2.])
    outs = [x.relu(), t.relu(x), x.sigmoid(), t.sigmoid(x), x.abs(), x.clamp(0., 1.),
            x.clamp(min=0.), x.clamp(max=0.5), x.sign()]
    return outs + _grads_of(outs, x)


@case
def unary_math(t):
    fns = [lambda x: x.exp(), lambda x: x.log(), lambda x: x.sin(), lambda x: x.cos(),
           lambda x: x.tan(), lambda x: x.tanh(), lambda x: x.sqrt(), lambda x: x.rsqrt(),
           lambda x: x.log1p(), lambda x: x.expm1(), t.exp, t.log, t.sqrt, t.tanh, t.sin,
           lambda x: t.abs(-x), lambda x: -x, abs]
    res = []
    for f in fns:  # one leaf per function: each gradient is one formula, not a long sum
        x = leaf(t, [0.5, 1., 2.])
        y = f(x)
        y.backward(t.tensor([1., -2., 0.5]))
        res += [y, x.grad]
    return res


@case
def int_inputs_to_float_math(t):
    i = t.tensor([1, 2, 4])
    return [i.exp(), i.sqrt(), i.log(), i.sigmoid(), i.float(), i.double(), i.to(t.float32),
            i.abs(), -i, err(lambda: i.softmax(0)), err(lambda: t.tensor([[1, 2]]).softmax(0))]


@case
def shape_ops(t):
    m = leaf(t, np.arange(6.).reshape(2, 3).tolist())
    outs = [m.reshape(3, 2), m.view(6), m.view(-1, 2), m.reshape((1, 6)), m.T, m.t(),
            m.transpose(0, 1), m.permute(1, 0), m.unsqueeze(0), m.unsqueeze(-1),
            m.unsqueeze(1).squeeze(1), m.view(1, 2, 3).squeeze(), m.view(1, 2, 3).squeeze(0),
            m[0].expand(4, 3), m[:, :1].expand(-1, 4), m.flatten(), m.T.reshape(6),
            m.T.flatten(), m.view_as(t.zeros(3, 2)), m.reshape(2, 3), m.mT, m.clone()]
    return outs + _grads_of(outs, m)


@case
def shape_ops_on_vectors(t):
    x = leaf(t, [1., 2., 3.])
    s = leaf(t, 5.)
    outs = [x.flatten(), x.view(3), x.reshape(3, 1), x.unsqueeze(0), x.t(), s.reshape(1),
            s.flatten(), s.unsqueeze(0), s.view(1, 1)]
    return outs + _grads_of(outs, x, s) + [x.size(), x.size(0), x.shape, x.dim(), x.ndim,
                                           x.numel(), s.shape, t.Size([2, 3])]


@case
def cat_stack_where(t):
    x, y = leaf(t, [1., 2.]), leaf(t, [3., 4., 5.])
    a, b = leaf(t, [[1., 2.]]), leaf(t, [[3., 4.], [5., 6.]])
    c = t.ones(2)
    mask = t.tensor([True, False])
    outs = [t.cat([x, y]), t.cat([a, b]), t.cat((a, b), dim=0), t.cat([b, b], dim=1),
            t.cat([x, c]), t.stack([x, c]), t.stack([x, x], dim=1), t.stack((b, b), -1),
            t.where(mask, x, c), t.where(x > 1, x, 0.), t.where(mask, 1., x),
            t.where(b > 4, b, a)]
    return outs + _grads_of(outs, x, y, a, b) + [t.cat([t.tensor([1]), t.tensor([2.5])]),
                                                 t.where(t.tensor([1., 0.]) > 0)]


@case
def factories(t):
    return [t.tensor([1, 2.5]), t.tensor([[1, 2], [3, 4]]), t.tensor([True, False]),
            t.tensor(3), t.tensor(2.5), t.tensor([]), t.tensor([[]]), t.tensor([1, True]),
            t.tensor([1., 2.], dtype=t.float64), t.tensor([1, 2], dtype=t.float32),
            t.tensor(np.array([1., 2.])), t.tensor(np.array([1, 2], dtype=np.int32)),
            t.arange(5), t.arange(1, 4), t.arange(0, 1, 0.25), t.arange(5.), t.arange(2, 11, 3),
            t.linspace(0, 1, 5), t.linspace(-1, 1, steps=3), t.zeros(2, 3), t.zeros((2, 3)),
            t.ones([2]), t.ones(2, dtype=t.int64), t.zeros(3, requires_grad=True),
            t.ones((2, 2), requires_grad=True), t.full((2, 2), 7.), t.full((2,), 3),
            t.eye(2), t.zeros_like(t.ones(2, dtype=t.int32)), t.ones_like(t.zeros(2, 2)),
            t.empty(2, 3).shape, t.tensor(t.tensor([1., 2.])), t.as_tensor([1, 2]),
            t.from_numpy(np.array([1., 2.])), t.tensor([[1., 2.]], requires_grad=True),
            t.arange(3, dtype=t.float32), t.tensor([2 ** 40]), t.tensor(1e-5), t.tensor(1e10),
            t.tensor([1e-5, 1.]), t.tensor([0.1, 100000.]), t.full((2,), True)]


@case
def dtype_objects(t):
    x = t.tensor([1., 2.])
    return [t.float32, t.float64, t.int64, t.int32, t.bool, t.float, t.double, t.long,
            x.dtype == t.float32, x.double().dtype, x.is_floating_point(),
            t.tensor([1]).is_floating_point(), x.to(t.float64), x.type(t.float64),
            x.long(), x.int(), x.bool(), t.tensor([1.5, -2.5]).long(), x.type(),
            t.tensor([1]).type(), t.is_tensor(x), t.is_tensor([1]), t.numel(x)]


@case
def cumsum_and_misc(t):
    x = leaf(t, [1., 2., 3.])
    m = leaf(t, [[1., 2.], [3., 4.]])
    outs = [x.cumsum(0), m.cumsum(1), m.cumsum(dim=0), t.cumsum(x, 0)]
    return outs + _grads_of(outs, x, m)


@case
def floor_div_and_bitwise(t):
    i = t.tensor([7, -7, 4])
    f = t.tensor([7., -7., 4.5])
    b = t.tensor([True, False, True])
    return [i // 2, f // 2, 7 // t.tensor([2, 3, 4]), b & t.tensor([True, True, False]),
            b | False, ~b, i & 3, b ^ b]


def test_max_gradient_has_no_negative_zero():
    import adjit
    x = adjit.tensor([1., 3., 0.], requires_grad=True)
    (x.max() * -2).backward()
    assert repr(x.grad) == "tensor([ 0., -2.,  0.])"


@pytest.mark.parametrize("fn", CASES, ids=[c.__name__ for c in CASES])
def test_matches_torch(fn):
    check(fn)
