"""torch.linalg on adjit Tensors against PyTorch 2.13: values, grad_fn names, gradients
through the eager backward (multi-result equations: slogdet, eigh)."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
from peers import require

torch = require("torch")

RNG = np.random.default_rng(7)
A = RNG.standard_normal((2, 3, 3)) + 2 * np.eye(3)
S = A @ A.swapaxes(-1, -2) + np.eye(3)
B = RNG.standard_normal((2, 3, 2))


def _run(lib):
    a = lib.tensor(A, requires_grad=True)
    s = lib.tensor(S, requires_grad=True)
    b = lib.tensor(B, requires_grad=True)
    outs = [lib.linalg.solve(a, b), lib.linalg.solve(a, b[..., 0]), lib.linalg.inv(a),
            lib.linalg.det(a), lib.linalg.slogdet(a)[1], lib.linalg.slogdet(a).sign,
            lib.linalg.cholesky(s), lib.linalg.cholesky(s, upper=True),
            lib.linalg.eigh(s)[0], lib.linalg.eigh(s).eigenvectors, lib.linalg.eigvalsh(s)]
    names = [o.grad_fn.name() if lib is torch else type(o.grad_fn).__name__ for o in outs]
    vals = [np.asarray(o.detach()) for o in outs]
    w = np.random.default_rng(3)
    tot = sum((o * lib.tensor(w.standard_normal(tuple(o.shape)))).sum() for i, o in
              enumerate(outs) if i not in (5, 9))
    tot = tot + (outs[9].abs() * 0.5).sum()
    tot.backward()
    return names, vals, [np.asarray(t.grad) for t in (a, s, b)]


def test_torch_linalg_matches_pytorch():
    ours, theirs = _run(adjit), _run(torch)
    skip = {5: "SgnBackward0"}  # PyTorch gives the sign of slogdet a node of its own
    for i, (n1, n2) in enumerate(zip(ours[0], theirs[0])):
        if i not in skip and i != 9:
            assert n1 == n2, (i, n1, n2)
    for x, y in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(np.abs(x) if x.ndim == 3 else x,
                                   np.abs(y) if y.ndim == 3 else y, rtol=1e-10, atol=1e-12)
    for x, y in zip(ours[2], theirs[2]):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-10)


def test_torch_linalg_errors():
    with pytest.raises(RuntimeError, match="square"):
        adjit.linalg.inv(adjit.ones(2, 3))
    with pytest.raises(np.linalg.LinAlgError):
        adjit.linalg.inv(adjit.ones(3, 3, requires_grad=True))
