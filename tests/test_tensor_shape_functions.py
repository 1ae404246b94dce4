"""The Tensor front of issue 15's shape, sorting and indexing functions, by PyTorch's meaning:
values, dtypes, gradients and grad_fn names against PyTorch 2.13 itself."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import adjit

from peers import require

RNG = np.random.default_rng(1513)
X = RNG.normal(size=(3, 4))
SQ = RNG.normal(size=(3, 3))
V = RNG.normal(size=5)
W3 = RNG.normal(size=(4, 3))

# name -> f(torch, x, sq, v, w3): a tensor or a tuple of tensors (inputs require grad)
CASES = {
    "repeat_interleave": lambda t, x, s, v, w: x.repeat_interleave(2, dim=0),
    "repeat_interleave_flat": lambda t, x, s, v, w: t.repeat_interleave(x, 3),
    "repeat_interleave_tensor": lambda t, x, s, v, w: x.repeat_interleave(
        t.tensor([1, 0, 2]), dim=0),
    "repeat": lambda t, x, s, v, w: x.repeat(2, 1, 2),
    "tile": lambda t, x, s, v, w: t.tile(x, (2,)),
    "sort": lambda t, x, s, v, w: tuple(x.sort(dim=1)),
    "sort_desc_stable": lambda t, x, s, v, w: tuple(t.sort(x, dim=0, descending=True, stable=True)),
    "argsort": lambda t, x, s, v, w: (x * 1.0, x.argsort(dim=0, descending=True)),
    "msort": lambda t, x, s, v, w: t.msort(x),
    "roll": lambda t, x, s, v, w: x.roll(1, 1),
    "roll_flat": lambda t, x, s, v, w: t.roll(x, -5),
    "roll_two": lambda t, x, s, v, w: x.roll((1, -2), (0, 1)),
    "flip": lambda t, x, s, v, w: x.flip(0, 1),
    "fliplr": lambda t, x, s, v, w: t.fliplr(x),
    "flipud": lambda t, x, s, v, w: x.flipud(),
    "rot90": lambda t, x, s, v, w: x.rot90(3, [1, 0]),
    "diag_of_matrix": lambda t, x, s, v, w: x.diag(1),
    "diag_of_vector": lambda t, x, s, v, w: t.diag(v, -1),
    "diagonal": lambda t, x, s, v, w: x.diagonal(-1),
    "trace": lambda t, x, s, v, w: t.trace(s),
    "triu": lambda t, x, s, v, w: x.triu(1),
    "tril": lambda t, x, s, v, w: t.tril(x, -1),
    "kron": lambda t, x, s, v, w: t.kron(x, s),
    "cross": lambda t, x, s, v, w: t.cross(w, w.flip(0), dim=1),
    "linalg_cross": lambda t, x, s, v, w: t.linalg.cross(s, w[:1]),
    "cumprod": lambda t, x, s, v, w: x.cumprod(1),
    "median": lambda t, x, s, v, w: x.median(),
    "median_dim": lambda t, x, s, v, w: tuple(x.median(dim=1)),
    "median_keepdim": lambda t, x, s, v, w: tuple(t.median(x, 0, keepdim=True)),
    "quantile": lambda t, x, s, v, w: x.quantile(0.3),
    "quantile_dim": lambda t, x, s, v, w: t.quantile(x, t.tensor([0.2, 0.75],
                                                                 dtype=x.dtype), dim=1),
    "quantile_keepdim": lambda t, x, s, v, w: x.quantile(0.4, dim=0, keepdim=True,
                                                         interpolation="midpoint"),
    "quantile_lower": lambda t, x, s, v, w: x.quantile(0.5, interpolation="lower"),
    "diff": lambda t, x, s, v, w: x.diff(),
    "diff_prepend": lambda t, x, s, v, w: t.diff(x, n=2, dim=0, prepend=s[:1, :1].expand(1, 4)),
    "take_along_dim": lambda t, x, s, v, w: t.take_along_dim(x, x.argsort(1), 1),
    "take_along_dim_flat": lambda t, x, s, v, w: x.take_along_dim(t.tensor([3, 0, 11])),
    "gather": lambda t, x, s, v, w: x.gather(1, t.tensor([[0, 0], [3, 1]])),
    "meshgrid": lambda t, x, s, v, w: t.meshgrid(v, v[:2], indexing="ij"),
    "meshgrid_xy": lambda t, x, s, v, w: t.meshgrid(v, v[:2], x[0], indexing="xy"),
    "split": lambda t, x, s, v, w: x.split(3, 1),
    "split_sizes": lambda t, x, s, v, w: t.split(x, [1, 3], 1),
    "chunk": lambda t, x, s, v, w: x.chunk(2, 1),
    "tensor_split": lambda t, x, s, v, w: x.tensor_split(3, 1),
    "hstack": lambda t, x, s, v, w: t.hstack([x, s]),
    "vstack": lambda t, x, s, v, w: t.vstack([x, x[0]]),
    "dstack": lambda t, x, s, v, w: t.dstack([x, x]),
    "column_stack": lambda t, x, s, v, w: t.column_stack([v, v * 2]),
    "clamp_min": lambda t, x, s, v, w: x.clamp_min(0.1),
    "clamp_max": lambda t, x, s, v, w: t.clamp_max(x, 0.1),
    "clamp_min_tensor": lambda t, x, s, v, w: x.clamp_min(s[:1, :1] * 0.1),
}


def _run(t, name, dtype):
    args = [t.tensor(a, dtype=dtype, requires_grad=True) for a in (X, SQ, V, W3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = CASES[name](t, *args)
    outs = list(out) if isinstance(out, tuple) else [out]
    diff = [o for o in outs if o.dtype in (t.float32, t.float64)]
    loss = sum((o * t.linspace(0.5, 1.5, o.numel(), dtype=dtype).reshape(o.shape)).sum()
               for o in diff)
    grads = t.autograd.grad(loss, args, allow_unused=True)
    return outs, [None if g is None else g.detach().numpy() for g in grads]


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_values_grads_and_grad_fn_names_match_pytorch(name, dtype):
    torch = require("torch")
    got, ggot = _run(adjit, name, getattr(adjit, dtype))
    want, gwant = _run(torch, name, getattr(torch, dtype))
    assert len(got) == len(want)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == "float64" else dict(rtol=2e-6, atol=2e-6)
    for g, w in zip(got, want):
        assert tuple(g.shape) == tuple(w.shape)
        assert str(g.dtype).split(".")[-1] == str(w.dtype).split(".")[-1]
        np.testing.assert_allclose(g.detach().numpy(), w.detach().numpy(), **tol)
        gn = g.grad_fn.name() if g.grad_fn is not None else None
        wn = w.grad_fn.name() if w.grad_fn is not None else None
        assert gn == wn, (gn, wn)
    for g, w in zip(ggot, gwant):
        if w is None:
            assert g is None or not np.any(g)
        else:
            np.testing.assert_allclose(g, w, **tol)


def test_sort_median_quantile_with_nan_and_ties_match_pytorch():
    torch = require("torch")
    a = np.array([[2.0, np.nan, 1.0, 2.0, -3.0], [1.0, 1.0, 0.5, 1.0, 4.0]])
    for t in (adjit, torch):
        x = t.tensor(a)
        r = (x.sort(dim=1, stable=True), x.sort(dim=1, descending=True, stable=True), x.median(1),
             x.median(), x.quantile(0.5, dim=1))
        if t is adjit:
            mine = r
        else:
            theirs = r
    for m, w in zip(mine[:2], theirs[:2]):
        np.testing.assert_array_equal(m.values.numpy(), w.values.numpy())
        np.testing.assert_array_equal(m.indices.numpy(), w.indices.numpy())
    np.testing.assert_array_equal(mine[2].values.numpy(), theirs[2].values.numpy())
    np.testing.assert_array_equal(mine[2].indices.numpy()[0], theirs[2].indices.numpy()[0])
    np.testing.assert_array_equal(mine[3].numpy(), theirs[3].numpy())
    np.testing.assert_array_equal(mine[4].numpy(), theirs[4].numpy())


def test_integer_tensors_match_pytorch():
    torch = require("torch")
    a = RNG.integers(-5, 5, (3, 4))
    for name in ("repeat_interleave", "repeat", "sort", "roll", "flip", "diag_of_matrix",
                 "triu", "kron", "cumprod", "diff", "split", "hstack"):
        got = CASES[name](adjit, adjit.tensor(a), adjit.tensor(a[:, :3]), None, None)
        want = CASES[name](torch, torch.tensor(a), torch.tensor(a[:, :3]), None, None)
        got = got if isinstance(got, tuple) else (got,)
        want = want if isinstance(want, tuple) else (want,)
        for g, w in zip(got, want):
            assert str(g.dtype) == str(w.dtype).replace("torch", "adjit"), name
            np.testing.assert_array_equal(g.numpy(), w.numpy(), err_msg=name)


def test_bad_arguments_are_pytorchs_errors():
    x = adjit.zeros(3, 4)
    with pytest.raises(RuntimeError, match="Number of dimensions of repeat dims"):
        x.repeat(2)
    with pytest.raises(RuntimeError, match="split_with_sizes expects"):
        x.split([1, 2], 1)
    with pytest.raises(RuntimeError, match="must have length 3"):
        adjit.linalg.cross(x, x)
    with pytest.raises(RuntimeError, match="interpolation must be one of"):
        x.quantile(0.5, interpolation="cubic")
    with pytest.raises(TypeError, match="dtype= is not supported"):
        x.cumprod(0, dtype=adjit.float64)
