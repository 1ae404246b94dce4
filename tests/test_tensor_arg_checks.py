"""Argument checks of the Tensor front as PyTorch 2.13's: clamp/clip (and the in-place
clamp_/clip_) take min and max both Tensors or both numbers (one alone either way; a 0-d tensor
without requires_grad passes as a number); the factories refuse a storage whose size overflows
int64 with PyTorch's RuntimeError naming the sizes, and one no memory can hold with PyTorch's
RuntimeError too (the NumPy front keeps NumPy's ValueError)."""
from __future__ import annotations

import os
import traceback

import numpy as np
import pytest

import adjit
from adjit._frames import is_adjit_file
from peers import require

torch = require("torch")

HERE = os.path.basename(__file__)
X = np.array([-1.5, 0.25, 0.75, 2.0])


def _outcome(T, call):
    t = T.tensor(X, requires_grad=True)
    try:
        y = call(T, t)
    except Exception as e:  # noqa: BLE001 - the exception is the observation
        return e
    (g,) = T.autograd.grad((y * y).sum(), (t,))
    return (y.detach().numpy(), g.numpy(), type(y.grad_fn).__name__, str(y.dtype).split(".")[-1])


CLAMP = {  # (T, t): t a leaf that requires grad
    # refused by PyTorch: a Tensor bound with a number bound
    "tensor-min-number-max": lambda T, t: T.clamp(t, min=T.zeros(4), max=1.0),
    "number-min-tensor-max": lambda T, t: T.clamp(t, min=0.0, max=T.ones(4)),
    "positional": lambda T, t: T.clamp(t, T.zeros(4), 1.0),
    "method": lambda T, t: t.clamp(T.zeros(4), 1),
    "method-keywords": lambda T, t: t.clamp(min=-1, max=T.ones(4)),
    "clip": lambda T, t: T.clip(t, min=T.zeros(4), max=1.0),
    "clip-method": lambda T, t: t.clip(0.0, T.ones(4)),
    "numpy-scalar": lambda T, t: T.clamp(t, np.float64(0.0), T.ones(4)),
    "0d-requires-grad": lambda T, t: T.clamp(t, T.tensor(0.0, requires_grad=True), 1.0),
    "ndarray-min": lambda T, t: T.clamp(t, np.zeros(4)),
    "ndarray-max-clip-method": lambda T, t: t.clip(max=np.ones(4)),
    "0d-ndarray": lambda T, t: T.clamp(t, np.array(0.0), 1.0),
    "clamp_-ndarrays": lambda T, t: (t * 2).clamp_(np.zeros(4), np.ones(4)),
    # taken by PyTorch
    "tensor-min-only": lambda T, t: T.clamp(t, min=T.zeros(4)),
    "tensor-max-only": lambda T, t: t.clamp(max=T.ones(4)),
    "tensor-min-none-max": lambda T, t: T.clamp(t, T.zeros(4), None),
    "both-tensors": lambda T, t: T.clip(t, T.zeros(4), T.ones(4)),
    "both-numbers": lambda T, t: t.clip(0, 1.5),
    "0d-tensor-as-number": lambda T, t: T.clamp(t, T.tensor(0.0), 1.0),
    "0d-f64-as-number": lambda T, t: T.clamp(t.float(), T.tensor(0.0, dtype=T.float64), 1),
    "clamp_min-tensor": lambda T, t: T.clamp_min(t, T.zeros(4)),
    # the in-place forms: PyTorch's argument check comes before its leaf check
    "clamp_-mixed": lambda T, t: t.clamp_(T.zeros(4), 1.0),
    "clip_-mixed": lambda T, t: (t * 1).clip_(min=0.0, max=T.ones(4)),
    "torch.clamp_-mixed": lambda T, t: T.clamp_(t * 2, T.zeros(4), 1.0),
    "clamp_-leaf": lambda T, t: t.clamp_(0.0, 1.0),
    "clamp_-no-bounds": lambda T, t: (t * 2).clamp_(),
    "clamp_-numbers": lambda T, t: (t * 2).clamp_(0, 1),
    "clip_-tensors": lambda T, t: (t * 2).clip_(T.zeros(4), T.ones(4)),
    "torch.clip_-tensor-min": lambda T, t: T.clip_(t * 2, T.full((4,), 0.6)),
    "clamp_-0d-as-number": lambda T, t: (t * 2).clamp_(max=1.0, min=T.tensor(0.0)),
}


@pytest.mark.parametrize("name", CLAMP)
def test_clamp_bounds_as_pytorch(name):
    want = _outcome(torch, CLAMP[name])
    got = _outcome(adjit, CLAMP[name])
    if isinstance(want, Exception):
        assert type(got) is type(want), (got, want)
        if isinstance(want, TypeError):
            fn = "clip" if "clip" in name else "clamp"
            fn += "_" if "_-" in name else ""
            assert f"{fn}() received an invalid combination of arguments" in str(got), str(got)
        else:
            assert str(got) == str(want)
        # the traceback ends at the user's line (the lambda above), then adjit's frames
        frames = [f for f in traceback.extract_tb(got.__traceback__)
                  if not is_adjit_file(f.filename)]
        assert frames[-1].filename.endswith(HERE), frames
        return
    assert not isinstance(got, Exception), got
    for w, g in zip(want[:2], got[:2]):
        np.testing.assert_allclose(g, w, rtol=1e-6)
    assert got[2:] == want[2:]


def test_clamp_mixed_bounds_refused_under_jit():
    f = lambda t: adjit.clamp(t, min=adjit.zeros(4), max=1.0)  # noqa: E731
    with pytest.raises(TypeError) as want:
        torch.clamp(torch.tensor(X), min=torch.zeros(4), max=1.0)
    with pytest.raises(want.type, match="invalid combination"):
        adjit.jit(f)(adjit.tensor(X))


BIG = {
    "empty": lambda T: T.empty(2 ** 62, 2 ** 62),
    "zeros": lambda T: T.zeros(2 ** 62, 2 ** 62),
    "ones-tuple": lambda T: T.ones((2 ** 62, 2 ** 62)),
    "full": lambda T: T.full((2 ** 62, 2 ** 62), 1.0),
    "full-int": lambda T: T.full((2 ** 61, 4), 3),
    "randn": lambda T: T.randn(2 ** 62, 2 ** 62),
    "rand": lambda T: T.rand(2 ** 62, 4),
    "randint": lambda T: T.randint(0, 3, (2 ** 62, 4)),
    "zeros-1d": lambda T: T.zeros(2 ** 63 - 1),
    "zeros-f64": lambda T: T.zeros(2 ** 61, 8, dtype=T.float64),
    "bool": lambda T: T.zeros(2 ** 62, 2, dtype=T.bool),
    "empty-3d": lambda T: T.empty(2 ** 31, 2 ** 31, 4),
    "new_zeros": lambda T: T.zeros(1).new_zeros(2 ** 62, 2 ** 62),
    "new_full": lambda T: T.zeros(1).new_full((2 ** 62, 2 ** 62), 2.0),
    "arange": lambda T: T.arange(2 ** 62),
    "eye": lambda T: T.eye(2 ** 40),
}


@pytest.mark.parametrize("name", BIG)
def test_overflowing_sizes_raise_pytorchs_runtime_error(name):
    with pytest.raises(RuntimeError) as want:
        BIG[name](torch)
    with pytest.raises(want.type) as got:
        BIG[name](adjit)
    assert type(got.value) is type(want.value)
    if "Storage size calculation overflowed" in str(want.value):
        assert str(got.value) == str(want.value)
    else:
        assert "overflow" in str(got.value)


# sizes whose storage fits int64 but no memory (4 PiB and more: beyond x86-64's 128 TiB address
# space, so no allocation succeeds whatever the machine's overcommit)
UNALLOCATABLE = {
    "zeros": lambda T: T.zeros(2 ** 40, 2 ** 10),
    "empty": lambda T: T.empty(2 ** 40, 2 ** 10),
    "randn": lambda T: T.randn(2 ** 40, 2 ** 10),
    "full": lambda T: T.full((2 ** 40, 2 ** 10), 1.0),
    "new_ones": lambda T: T.zeros(1).new_ones(2 ** 40, 2 ** 10),
    "bool": lambda T: T.ones(2 ** 52, dtype=T.bool),
    "arange": lambda T: T.arange(2 ** 50),
    "eye": lambda T: T.eye(2 ** 26),
}


@pytest.mark.parametrize("name", UNALLOCATABLE)
def test_unallocatable_sizes_raise_pytorchs_runtime_error(name):
    with pytest.raises(RuntimeError, match="can't allocate memory") as want:
        UNALLOCATABLE[name](torch)
    with pytest.raises(want.type, match="can't allocate memory") as got:
        UNALLOCATABLE[name](adjit)
    assert type(got.value) is type(want.value) and "PiB" in str(got.value)


def test_a_traced_fill_value_checks_the_sizes_too():
    with pytest.raises(RuntimeError) as want:
        torch.full((2 ** 62, 2 ** 62), torch.tensor(1.0).item())
    with pytest.raises(want.type, match="Storage size calculation overflowed"):
        adjit.jit(lambda v: adjit.full((2 ** 62, 2 ** 62), v).sum())(1.0)


@pytest.mark.parametrize("call", [
    lambda np_, x: np_.full((2 ** 62, 2 ** 62), x).sum(),
    lambda np_, x: np.zeros_like(x, shape=(2 ** 62, 2 ** 62)).sum() + x,
])
def test_the_numpy_front_keeps_numpys_value_error(call):
    import adjit.numpy as anp
    with pytest.raises(ValueError) as want:
        call(np, np.float64(1.0))
    with pytest.raises(want.type, match="too big"):
        adjit.jit(lambda x: call(anp, x))(1.0)


def _inplace_outcome(T, k):
    x = T.tensor(X, requires_grad=True)
    lo = T.tensor([0.0, 0.5, 0.0, 0.1], requires_grad=True)
    try:
        out = INPLACE[k](T, x, lo)
    except Exception as e:  # noqa: BLE001 - the exception is the observation
        return type(e), str(e).split(" - ")[0]
    obs = [out.detach().numpy(), None if out.grad_fn is None else type(out.grad_fn).__name__]
    try:
        grads = T.autograd.grad(out.sum(), (x, lo), allow_unused=True)
        obs.append([None if g is None else g.numpy() for g in grads])
    except RuntimeError as e:
        obs.append((RuntimeError, str(e)[:60]))
    return obs


def _clamped_y(T, x, lo):
    y = x * 2
    y.clamp_(0, 1)
    return y


def _clipped_view(T, x, lo):
    y = x * 1
    y[1:].clip_(max=0.5)
    return y


def _zeros_clamped_by_bounds(T, x, lo):
    y = T.zeros(4)
    T.clamp_(y, lo, T.ones(4))  # the old zeros are read by lo's derivative
    return y


def _saved_then_clamped(T, x, lo):
    y = x * 2
    z = y.exp()
    y.clamp_(lo)
    return z + y


def _clamped_input_of_sin(T, x, lo):
    y = x * 2
    s = y.sin()  # saves y, which clamp_ writes: PyTorch's error at backward
    y.clamp_(0, 1)
    return s * y


def _int_clamped_to_float(T, x, lo):
    y = T.arange(4)
    y.clamp_(0.5, 2)
    return y


INPLACE = [_clamped_y, _clipped_view, _zeros_clamped_by_bounds, _saved_then_clamped,
           _clamped_input_of_sin, _int_clamped_to_float]


@pytest.mark.parametrize("k", range(len(INPLACE)), ids=[f.__name__ for f in INPLACE])
def test_clamp_inplace_as_pytorch(k):
    want = _inplace_outcome(torch, k)
    got = _inplace_outcome(adjit, k)
    if isinstance(want, tuple):
        assert got[0] is want[0], (got, want)
        return
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    assert got[1] == want[1]
    if isinstance(want[2], tuple):
        assert got[2][0] is want[2][0] and got[2][1] == want[2][1], got[2]
        return
    for g, w in zip(got[2], want[2]):
        assert (g is None) == (w is None)
        if w is not None:
            np.testing.assert_allclose(g, w, rtol=1e-6)


@pytest.mark.parametrize("dims", [([5], [0]), ([1], [7]), ([-3], [0]), ([0, 1], [0, 2]),
                                  ([-1], [0]), ([1], [-2])])
def test_tensordot_dims_checked_as_pytorch(dims):
    # an out-of-range contracted dim: PyTorch's IndexError and words (was Python's bare
    # "tuple index out of range"); negative dims in range contract as PyTorch's do
    a, b = np.linspace(-1.0, 1.0, 6).reshape(2, 3), np.linspace(0.0, 2.0, 12).reshape(3, 4)
    out = []
    for T in (torch, adjit):
        try:
            r = T.tensordot(T.tensor(a), T.tensor(b), dims=dims)
            out.append(("ok", r.numpy()))
        except Exception as e:  # noqa: BLE001 - the exception is the observation
            out.append((type(e), str(e)))
    (kt, vt), (ka, va) = out
    assert kt is ka or (kt == "ok") == (ka == "ok"), out
    if kt == "ok":
        np.testing.assert_allclose(va, vt, rtol=1e-12)
    else:
        assert kt is ka and va == vt, out
