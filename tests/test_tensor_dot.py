"""adjit.make_dot draws the graph torchviz.make_dot draws: same node labels and colours, same
edges (compared through adjit.cli.notebook.describe_dot, which ignores ids and layout)."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
from adjit.cli.notebook import describe_dot, normalize

from peers import require
from test_tensor_vs_torch import leaf

torch = require("torch")
torchviz = require("torchviz")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torchviz LooseVersion

GRAPHS = []


def graph(fn):
    GRAPHS.append(fn)
    return fn


@graph
def seed_like(t):
    a = leaf(t, [[1., 2.], [3., 4.]])
    b = t.ones((2, 2), requires_grad=True)
    c = a + b
    d = b * c
    d = d + a
    d.retain_grad()
    e = t.mean(d) + t.mean(b)
    return e, {}


@graph
def params_named(t):
    w, b = leaf(t, [[1., 2.], [3., 4.]]), leaf(t, [0.5, -0.5])
    x = t.tensor([1., 2.])
    y = (x @ w + b).relu().sum()
    return y, {"w": w, "b": b}


@graph
def growing_loop(t):
    x = leaf(t, [1., 2.])
    y = x.sum()
    while y.data.norm() < 12:
        y = y * 1.2
    return y, {}


@graph
def constants_and_reversed(t):
    x = leaf(t, [1., 2., 3.])
    return (10 - x) * 2 + 2 / x - x ** 2, {}


@graph
def indexing_chain(t):
    m = leaf(t, np.arange(12.).reshape(3, 4).tolist())
    return (m[0, [1, 2]].sum() + m[1:, None].mean() + m[..., 2].max()), {}


@graph
def matmul_chains(t):
    x, W = leaf(t, [1., 2., 3.]), leaf(t, np.ones((3, 2)).tolist())
    A = leaf(t, np.ones((2, 2, 3)).tolist())
    return (x @ W).sum() + (A @ W).sum() + (A @ x).sum(), {}


@graph
def shared_subexpression(t):
    x = leaf(t, [1., 2.])
    y = x.exp()
    return (y * y + y).sum(), {}


@graph
def setitem_and_inplace(t):
    x = leaf(t, [1., 2., 3.])
    y = x * 2
    y[0] = x[1] * 5
    y += 1
    return y.sum(), {}


@graph
def unbind_outputs(t):
    m = leaf(t, [[1., 2.], [3., 4.]])
    a, b = m
    return (a * b).sum(), {}


@graph
def view_root(t):
    x = leaf(t, [[1., 2.], [3., 4.]])
    return x[0], {}


@graph
def view_of_intermediate_root(t):
    x = leaf(t, [[1., 2.], [3., 4.]])
    return (x * 2).T, {}


@graph
def leaf_root(t):
    return leaf(t, [1., 2.]), {}


@graph
def tuple_of_roots(t):
    x = leaf(t, [1., 2.])
    return (x * 2, x.sum()), {}


@graph
def softmax_and_reductions(t):
    m = leaf(t, [[1., 2.], [3., 0.]])
    return (m.softmax(1).max(0).values.sum() + m.norm() + m.std() + t.cat([m, m]).prod()), {}


@pytest.mark.parametrize("fn", GRAPHS, ids=[g.__name__ for g in GRAPHS])
def test_make_dot_matches_torchviz(fn):
    var_t, params_t = fn(torch)
    var_a, params_a = fn(adjit)
    expected = normalize(describe_dot(torchviz.make_dot(var_t, params=params_t or None)))
    got = normalize(describe_dot(adjit.make_dot(var_a, params=params_a or None)))
    assert got == expected


def test_make_dot_graph_attributes():
    x = adjit.tensor([1., 2.], requires_grad=True)
    dot = adjit.make_dot((x * 2).sum())
    tx = torch.tensor([1., 2.], requires_grad=True)
    tdot = torchviz.make_dot((tx * 2).sum())
    assert dot.node_attr == tdot.node_attr
    assert dot.graph_attr == tdot.graph_attr
