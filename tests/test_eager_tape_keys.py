"""The eager tape's caches: a backward graph is reused only for the very same structure
(literals, operand sharing, retained nodes), the checks PyTorch makes still fire on a reused
graph, and the no_grad in-place update path writes where the slow path writes."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import adjit


def _grad(f, x0):
    x = adjit.tensor(x0, requires_grad=True)
    f(x).backward()
    return x.grad.numpy()


def test_literals_are_part_of_the_structure():
    x0 = np.array([1.0, -2.0, 3.0], np.float32)
    for _ in range(2):  # alternate: each must get its own graph
        for c in (2.0, 3.0, 2, -0.0, 0.0):
            g = _grad(lambda x: (x * c).sum(), x0)
            np.testing.assert_array_equal(g, np.full(3, c, np.float32))
            assert np.all(np.signbit(g) == np.signbit(np.float32(c)))


def test_operand_sharing_is_part_of_the_structure():
    x0 = np.array([1.0, 2.0], np.float32)
    w = adjit.tensor([5.0, 7.0])  # same type as x, but another tensor
    for _ in range(2):
        np.testing.assert_allclose(_grad(lambda x: (x * x).sum(), x0), 2 * x0)
        np.testing.assert_allclose(_grad(lambda x: (x * w).sum(), x0), [5.0, 7.0])
        np.testing.assert_allclose(_grad(lambda x: (x * 2 * (x * 2)).sum(), x0), 8 * x0)


def test_retained_nodes_are_part_of_the_structure():
    for retain in (True, False, True):
        x = adjit.tensor([1.0, 2.0], requires_grad=True)
        y = x * 3
        if retain:
            y.retain_grad()
        (y * y).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), [18.0, 36.0])
        if retain:
            np.testing.assert_allclose(y.grad.numpy(), [6.0, 12.0])
        else:
            with pytest.warns(UserWarning):
                assert y.grad is None


def test_checks_fire_on_a_reused_graph():
    def step(modify):
        x = adjit.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        z = y.exp()  # saves its result
        if modify:
            with adjit.no_grad():
                z.mul_(2)
        return z.sum()

    step(False).backward()  # the structure is cached now
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        step(True).backward()
    loss = step(False)
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_consts_are_arguments_not_cached_values():
    w = adjit.tensor([1.0, 1.0], requires_grad=True)
    for k in range(3):
        x = adjit.tensor([k, 2.0 * k])  # a fresh input without grad, same structure
        (w * x).sum().backward()
        np.testing.assert_allclose(w.grad.numpy(), [k, 2.0 * k])
        w.grad.zero_()


def test_no_grad_inplace_update_matches_the_general_path():
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((4, 3)).astype(np.float32)
    g0 = rng.standard_normal((4, 3)).astype(np.float32)
    p = adjit.tensor(p0, requires_grad=True)
    g = adjit.tensor(g0)
    v = p._n.version[0]
    with adjit.no_grad():
        p -= 0.05 * g
        p *= 2
        p += 1
        p /= 3
    np.testing.assert_array_equal(p.detach().numpy(), ((p0 - np.float32(0.05) * g0) * 2 + 1) / 3)
    assert p._n.version[0] == v + 4 and p.requires_grad and p.is_leaf
    row = p.detach()[1]  # a view: the write reaches the base
    with adjit.no_grad():
        row -= 1.0
    np.testing.assert_array_equal(p.detach().numpy()[1], row.numpy())


def test_relu_gradient_at_zero_and_integer_relu():
    x = adjit.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    adjit.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 1.0])
    r = adjit.tensor([-3, 0, 4]).relu()
    assert r.dtype == adjit.int64 and r.tolist() == [0, 0, 4]


def test_two_structures_from_two_threads():
    errors = []

    def run(c):
        try:
            for _ in range(200):
                x = adjit.tensor([1.0, 2.0], requires_grad=True)
                ((x * c) ** 2).sum().backward()
                np.testing.assert_allclose(x.grad.numpy(), 2 * c * c * np.array([1.0, 2.0]),
                                           rtol=1e-6)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in (2.0, 3.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
