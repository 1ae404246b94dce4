"""The Tensor front under jit: Python reading a traced Tensor (item(), float(), bool(), an index)
records a guard, index Tensors are data of the trace, and &, |, ^, ~, logical_not are recorded.
Each jitted function is compared, call after call with changing values, with the same function
run eagerly by PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
from peers import require

torch = require("torch")


def _check(fn, calls):
    """jit(fn) on adjit Tensors vs fn run eagerly on torch tensors, for each argument list."""
    jf = adjit.jit(fn)
    for args in calls:
        ours = jf(*[adjit.tensor(np.asarray(a)) for a in args])
        ref = fn(*[torch.tensor(np.asarray(a)) for a in args])
        ours = ours if isinstance(ours, tuple) else (ours,)
        ref = ref if isinstance(ref, tuple) else (ref,)
        for o, r in zip(ours, ref):
            np.testing.assert_array_equal(o.numpy(), r.numpy())
            assert str(o.dtype).split(".")[-1] == str(r.dtype).split(".")[-1]


VALUES = [[1.0, 2.0, 3.0], [-1.0, -2.0, -4.0], [0.5, 1.0, 5.0], [-0.0, 0.0, 2.0]]


def branch_cmp(x):
    if x.sum() > 0:
        return x * 2
    return x * 3


def branch_bool(x):
    return x + 1 if bool(x[0]) else x - 1


def use_item(x):
    return x * x.sum().item()


def use_float(x):
    return x * float(x[1]) + int(x[2])


def use_tolist(x):
    return x * sum(x.tolist())


@pytest.mark.parametrize("fn", [branch_cmp, branch_bool, use_item, use_float, use_tolist])
def test_python_reads_of_a_traced_tensor_are_guarded(fn):
    _check(fn, [[v] for v in VALUES])


def test_index_read_from_the_tensor_itself():
    _check(lambda x: x[int(x[0]) % 3] * x, [[[0.0, 1, 2]], [[1.0, 5, 7]], [[2.0, 3, 4]]])


X = np.arange(12.0).reshape(4, 3)


@pytest.mark.parametrize("fn", [lambda x, i: x[i], lambda x, i: x[i, 1:],
                                lambda x, i: x.T[:, i], lambda x, i: x[i][0] * x[i],
                                lambda x, i: x[x[:, 0] > i.sum()]])
def test_index_tensors_are_inputs(fn):
    _check(fn, [(X, i) for i in ([0, 1], [2, 3], [-1, 0], [3, 3], [-4, 2])])
    _check(fn, [(X, np.asarray(i)) for i in (1, 2, -1, 0)])


def test_traced_index_out_of_range_raises_on_replay():
    jf = adjit.jit(lambda x, i: x[i])
    jf(adjit.tensor(X), adjit.tensor([0, 1]))
    with pytest.raises(IndexError):
        jf(adjit.tensor(X), adjit.tensor([0, 7]))


I1, I2 = np.array([1, 2, 3, 12]), np.array([3, 1, 2, 5])
B1, B2 = I1 > 1, I2 > 2


@pytest.mark.parametrize("fn", [lambda a, b: a & b, lambda a, b: a | b, lambda a, b: a ^ b,
                                lambda a, b: (~a, ~b), lambda a, b: a.logical_not(),
                                lambda a, b: (a & 6, 5 | a, 3 ^ a, a.bitwise_xor(b)),
                                lambda a, b: (a > 1) ^ (b > 1)])
def test_bitwise_ops_are_recorded(fn):
    _check(fn, [(I1, I2), (I2, I1), (I1 * 3, I2 - 7)])
    _check(fn, [(B1, B2), (B2, B1), (~B1, B2)])


# a Tensor and a Python number as arguments (jit(f)(tensor, 0.3)): the number was a traced
# NumPy scalar, which no Tensor operation took (TypeError). It is a scalar input (one trace for
# every value) where Tensor operations take numbers; where f needs the number itself it is
# keyed by value (static), as torch.compile specialises a float
NUMBER_FNS = {
    "t*s": lambda T, t, s: (t * s).sin(),
    "s*t": lambda T, t, s: s * t + t,
    "t/s,s-t": lambda T, t, s: t / s + (s - t),
    "s/t": lambda T, t, s: s / t,
    "t**s": lambda T, t, s: t ** s,
    "s**t": lambda T, t, s: s ** t,
    "pow": lambda T, t, s: t.pow(s) + T.mul(t, s),
    "alpha": lambda T, t, s: t.add(t * t, alpha=s),
    "cmp": lambda T, t, s: t * (t > s) + t * (s < t),
    "s*s": lambda T, t, s: t * (s * s + 1),
    "clamp": lambda T, t, s: t.clamp(min=s),
    "where": lambda T, t, s: T.where(t > 1.5, t, s),
    "full": lambda T, t, s: t * T.full((3,), s),
    "if": lambda T, t, s: t * 2 if s > 0.35 else t,
    # in place on a tensor made inside f (its old value kept for the recorded op)
    "mul_": lambda T, t, s: t * s + T.tensor([1.0, 2.0, 3.0], dtype=t.dtype).mul_(s),
    "add_alpha": lambda T, t, s: T.tensor([1.0, 2.0, 3.0], dtype=t.dtype).add_(t, alpha=s),
}
# scalar inputs: one trace for every value of the number
ONE_TRACE = ("t*s", "s*t", "t/s,s-t", "s/t", "t**s", "s**t", "pow", "alpha", "cmp", "s*s",
             "clamp", "where", "full", "mul_", "add_alpha")


@pytest.mark.parametrize("name", sorted(NUMBER_FNS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tensor_and_python_number_arguments_match_torch(name, dtype):
    fn = NUMBER_FNS[name]
    jf = adjit.jit(lambda t, s: fn(adjit, t, s))
    for s in (0.3, 0.4, 2.5, 0.3):
        x0 = np.array([1.0, 2.0, 3.0])
        x = adjit.tensor(x0, dtype=getattr(adjit, dtype), requires_grad=True)
        t = torch.tensor(x0, dtype=getattr(torch, dtype), requires_grad=True)
        y, r = jf(x, s), fn(torch, t, s)
        assert type(y) is adjit.Tensor and y.requires_grad
        assert str(y.dtype).split(".")[-1] == str(r.dtype).split(".")[-1]
        rtol = 1e-6 if dtype == "float32" else 1e-14
        np.testing.assert_allclose(y.detach().numpy(), r.detach().numpy(), rtol=rtol)
        w = np.array([0.5, -1.0, 2.0])
        (y * adjit.tensor(w, dtype=y.dtype)).sum().backward()
        (r * torch.tensor(w, dtype=r.dtype)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=1e-12)
    if name in ONE_TRACE:
        assert jf.stats()["misses"] == 1, jf.stats()


@pytest.mark.parametrize("s", [0.5, 2, True])
def test_python_number_argument_promotes_as_torch_with_an_int_tensor(s):
    for fn in (lambda T, t, s: t * s, lambda T, t, s: s / t, lambda T, t, s: t ** s,
               lambda T, t, s: T.full((2,), s), lambda T, t, s: T.where(t > 1, t, s)):
        got = adjit.jit(lambda t, s: fn(adjit, t, s))(adjit.tensor([1, 2, 3]), s)
        want = fn(torch, torch.tensor([1, 2, 3]), s)
        assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


def test_python_number_keyword_and_closure_float_with_tensors():
    x0 = np.array([0.5, -1.0, 2.0])
    jf = adjit.jit(lambda t, scale=1.0: (t * scale).exp())
    for s in (0.25, 0.75):
        x = adjit.tensor(x0, requires_grad=True)
        t = torch.tensor(x0, requires_grad=True)
        y, r = jf(x, scale=s), (t * s).exp()
        y.sum().backward()
        r.sum().backward()
        np.testing.assert_allclose(y.detach().numpy(), r.detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-6)
    assert jf.stats()["misses"] == 1
    # a closure float that changes is promoted to a scalar input (README): with Tensors too,
    # not keyed by value on every new value
    lr = 0.1

    def step(t):
        return t * lr
    js = adjit.jit(step)
    for v in (0.1, 0.2, 0.3, 0.4):
        lr = v
        np.testing.assert_allclose(js(adjit.tensor(x0)).numpy(), (torch.tensor(x0) * v).numpy(),
                                   rtol=1e-6)
    assert js.stats()["misses"] == 2, js.stats()


def test_python_number_argument_f_needs_itself_is_keyed_by_value():
    # T.linspace(0, s, 3), T.tensor([s, s]): f needs the number itself; jit keys it by value
    # (each new value traces once; the first call traced once more to find that out)
    x0 = np.array([1.0, 2.0, 3.0])
    for fn in (lambda T, t, s: t * T.linspace(0, s, 3),
               lambda T, t, s: t + T.tensor([s, s, 2 * s], dtype=t.dtype)):
        jf = adjit.jit(lambda t, s: fn(adjit, t, s))
        for s in (0.5, 1.5, 0.5, 2.5, 1.5):
            x = adjit.tensor(x0, requires_grad=True)
            t = torch.tensor(x0, requires_grad=True)
            y, r = jf(x, s), fn(torch, t, s)
            np.testing.assert_allclose(y.detach().numpy(), r.detach().numpy(), rtol=1e-6)
            y.sum().backward()
            r.sum().backward()
            np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-6)
        assert jf.stats()["misses"] == 4, jf.stats()
    # an error of f's own is raised as it is (the number stays an input)
    jf = adjit.jit(lambda t, s: t.no_such_method(s))
    with pytest.raises(AttributeError, match="no_such_method"):
        jf(adjit.tensor(x0), 0.5)
    assert not jf._static_pos


def test_in_place_under_no_grad_inside_jit_is_recorded():
    # under no_grad the in-place fast path computed into the storage with the traced values of
    # the trace's call (a replay returned them for every later argument), and the op recorded
    # on a tensor made inside f read its storage after the write (a replay applied it twice)
    def f(T, t):
        with T.no_grad():
            c = T.tensor([1.0, 2.0, 3.0])
            c.mul_(t)
            u = t * 1.0
            u.add_(c)
        return c, u
    jf = adjit.jit(lambda t: f(adjit, t))
    for v in ([2.0, 2.0, 2.0], [2.0, 2.0, 2.0], [3.0, -1.0, 0.5]):
        got, want = jf(adjit.tensor(v)), f(torch, torch.tensor(v))
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w.numpy())
