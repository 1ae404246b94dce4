"""The value model (docs/architecture.md): the eager backward reads the values PyTorch's
grad_fns read at backward time (recorded buffers, not a replay from the leaves' current
values), and Python scalars that change every step do not recompile every step."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
from adjit.runtime import cache_info
from peers import require

torch = require("torch")

X0 = [1.0, -2.0, 3.0, -4.0]


def _run(lib, script):
    """script(lib) -> leaf tensor after backward; returns its grad, or the error message."""
    try:
        x = script(lib)
    except RuntimeError as exc:
        return str(exc)
    return np.asarray(x.grad.detach().numpy(), np.float64)


def _same(script):
    ours, ref = _run(adjit, script), _run(torch, script)
    if isinstance(ref, str):
        assert ours == ref
    else:
        assert not isinstance(ours, str), ours
        np.testing.assert_allclose(ours, ref, rtol=1e-6)


def _leaf_changed_after_record(t):
    x = t.tensor(X0, requires_grad=True)
    y = ((x + 1) ** 2).sum()  # pow saves x + 1, not x
    with t.no_grad():
        x.add_(100)
    y.backward()
    return x


def _zero_non_leaf(t):
    x = t.tensor(X0, requires_grad=True)
    h = x * 2
    h.zero_()
    (h * 3).sum().backward()
    return x


def _zero_after_use(t):
    x = t.tensor(X0, requires_grad=True)
    h = x * 2
    y = (h * 3).sum()  # mul by a scalar saves nothing: zero_ is legal
    h.zero_()
    y.backward()
    return x


def _data_write_on_saved_input(t):
    x = t.tensor(X0, requires_grad=True)
    y = (x * x).sum()
    x.data.mul_(2)  # unseen by the version counter: shows through
    y.backward()
    return x


def _data_write_on_saved_result(t):
    x = t.tensor(X0, requires_grad=True)
    r = (x * 2).exp()  # ExpBackward0 saves its result
    r.data.mul_(2)
    r.sum().backward()
    return x


def _numpy_write_on_saved_result(t):
    x = t.tensor(X0, requires_grad=True)
    r = (x * 2).tanh()
    y = r.sum()
    r.detach().numpy()[:] = 0.5
    y.backward()
    return x


def _seen_write_on_saved_input(t):
    x = t.tensor(X0, requires_grad=True)
    y = (x * x).sum()
    with t.no_grad():
        x.mul_(2)
    y.backward()
    return x


def _detach_write_on_saved_input(t):
    x = t.tensor(X0, requires_grad=True)
    y = (x * x).sum()
    x.detach().mul_(2)
    y.backward()
    return x


def _non_leaf_changed_not_saved(t):
    x = t.tensor(X0, requires_grad=True)
    h = x * 2
    r = h.relu()  # saves its result only: changing h is legal
    h.add_(5)
    (r * h).sum().backward()
    return x


def _view_changed_after_record(t):
    x = t.tensor(X0, requires_grad=True)
    h = x * 1.5
    v = h.view(2, 2)
    y = (v.sigmoid() * 3).sum()  # SigmoidBackward0 saves its result
    with t.no_grad():
        h.mul_(-1)
    y.backward()
    return x


@pytest.mark.parametrize("script", [
    _leaf_changed_after_record, _zero_non_leaf, _zero_after_use, _data_write_on_saved_input,
    _data_write_on_saved_result, _numpy_write_on_saved_result, _seen_write_on_saved_input,
    _detach_write_on_saved_input, _non_leaf_changed_not_saved, _view_changed_after_record])
def test_backward_reads_recorded_values_like_torch(script):
    _same(script)
    _same(script)  # a second time: through the cached backward graph


def test_zero_records_zero_backward():
    x = adjit.tensor(X0, requires_grad=True)
    h = x * 2
    h.zero_()
    assert h.grad_fn.name() == "ZeroBackward0"
    assert h.grad_fn.next_functions[0][0].name() == "MulBackward0"
    np.testing.assert_array_equal(h.detach().numpy(), 0)


# --- literal slots: a scalar that changes every step compiles at most twice ------------------
def _misses():
    return cache_info()["misses"]


def test_eager_backward_new_float_each_step():
    x0 = np.linspace(-1.0, 2.0, 7)
    x = adjit.tensor(x0, requires_grad=True)
    xt = torch.tensor(x0, requires_grad=True)
    m0 = _misses()
    for step in range(100):
        temp, n = 0.5 + 0.013 * step, float(step + 1)
        x.grad = None
        xt.grad = None
        ((x / temp).tanh() ** 3 / n + x * temp).sum().backward()
        ((xt / temp).tanh() ** 3 / n + xt * temp).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert _misses() - m0 <= 2


def test_pow_exponent_slots():
    x0 = np.array([0.5, 1.5, 2.5])
    for p in (2.0, 3.0, 0.5, 4.0, 2.0, -1.0, 1.25):
        x = adjit.tensor(x0, requires_grad=True)
        xt = torch.tensor(x0, requires_grad=True)
        (x ** p).sum().backward()
        (xt ** p).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-13)


def test_grad_new_float_each_step():
    x0 = np.linspace(-1.0, 2.0, 5)

    def f(x, t, n):
        return (np.tanh(x * t) ** 3 / n).sum() + t

    g = adjit.grad(f)
    m0 = _misses()
    for step in range(100):
        t, n = 0.5 + 0.01 * step, float(step + 1)
        th = np.tanh(x0 * t)
        np.testing.assert_allclose(g(x0, t, n), 3 * th ** 2 * (1 - th ** 2) * t / n,
                                   rtol=1e-12)
    assert _misses() - m0 <= 2


def test_jit_new_float_argument_each_step():
    x0 = np.linspace(-1.0, 2.0, 5)
    f = adjit.jit(lambda x, t: (np.tanh(x * t) ** 3).sum() * t)
    m0 = _misses()
    for step in range(100):
        t = 0.5 + 0.01 * step
        np.testing.assert_allclose(f(x0, t), (np.tanh(x0 * t) ** 3).sum() * t, rtol=1e-12)
    assert _misses() - m0 <= 1
    assert f.stats()["misses"] == 1
