"""torch.linalg.svd/svdvals/norm/matrix_norm/vector_norm/pinv/lstsq on adjit Tensors against
PyTorch 2.13: values, result types, grad_fn names and gradients through the eager backward."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
from peers import require

torch = require("torch")

RNG = np.random.default_rng(11)
A = RNG.standard_normal((2, 4, 3))
B = RNG.standard_normal((2, 4, 2))
INF = float("inf")


def _cases(lib, a, b):
    la = lib.linalg
    return [
        ("svd.S", lambda: la.svd(a).S),
        ("svd.Uabs", lambda: la.svd(a, full_matrices=False).U.abs()),
        ("svd.Vh.abs", lambda: la.svd(a)[2].abs()),
        ("svd.full.U.abs", lambda: la.svd(a).U.abs()),  # extra columns: cotangent dropped
        ("svd.wide.full.Vh.abs", lambda: la.svd(a.transpose(-1, -2)).Vh.abs()),
        ("svdvals", lambda: la.svdvals(a)),
        ("norm", lambda: la.norm(a)),
        ("norm.dim", lambda: la.norm(a, dim=-1)),
        ("norm.ord3", lambda: la.norm(a[0, 0], 3)),
        ("norm.nuc", lambda: la.norm(a, "nuc", dim=(0, 2), keepdim=True)),
        ("norm.2", lambda: la.norm(a[1], 2)),
        ("matrix_norm", lambda: la.matrix_norm(a)),
        ("matrix_norm.-2", lambda: la.matrix_norm(a, ord=-2)),
        ("matrix_norm.1", lambda: la.matrix_norm(a, ord=1)),
        ("matrix_norm.-inf", lambda: la.matrix_norm(a, ord=-INF, dim=(2, 1))),
        ("vector_norm", lambda: la.vector_norm(a)),
        ("vector_norm.inf", lambda: la.vector_norm(a, ord=INF, dim=(0, 2), keepdim=True)),
        ("vector_norm.0.5", lambda: la.vector_norm(a, ord=0.5, dim=1)),
        ("pinv", lambda: la.pinv(a)),
        ("pinv.T", lambda: la.pinv(a.transpose(-1, -2), rtol=1e-3)),
        ("lstsq", lambda: la.lstsq(a, b).solution),
        ("lstsq.gelsd.res", lambda: la.lstsq(a, b, driver="gelsd").residuals),
        ("qr.Q", lambda: la.qr(a).Q),
        ("qr.R", lambda: la.qr(a)[1]),
        ("qr.wide.R", lambda: la.qr(a.transpose(-1, -2)).R),
        ("qr.square.complete.Q", lambda: la.qr(a[:, :3], mode="complete").Q),
        ("lstsq.vec", lambda: la.lstsq(a[0], b[0, :, 0], driver="gelss").solution),
    ]


def _run(lib, name):
    a = lib.tensor(A, requires_grad=True)
    b = lib.tensor(B, requires_grad=True)
    fn = dict(_cases(lib, a, b))[name]
    out = fn()
    grad_fn = out.grad_fn.name() if lib is torch else type(out.grad_fn).__name__
    w = lib.tensor(np.random.default_rng(3).standard_normal(tuple(out.shape)))
    (out * w).sum().backward()
    gb = None if b.grad is None else np.asarray(b.grad)
    return grad_fn, np.asarray(out.detach()), np.asarray(a.grad), gb


NAMES = [n for n, _ in _cases(np, None, None)]


@pytest.mark.parametrize("name", NAMES)
def test_matches_pytorch(name):
    ours, theirs = _run(adjit, name), _run(torch, name)
    if not name.endswith("abs"):  # PyTorch's abs node is AbsBackward0 on both sides
        assert ours[0] == theirs[0]
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-8, atol=1e-10)
    if theirs[3] is not None:
        np.testing.assert_allclose(ours[3], theirs[3], rtol=1e-8, atol=1e-10)


def test_result_tuples_match_pytorch():
    a, b = A.copy(), B.copy()
    a[1, :, 2] = a[1, :, 1]  # rank 2
    for driver in (None, "gelsy", "gelsd", "gelss"):
        ours = adjit.linalg.lstsq(adjit.tensor(a), adjit.tensor(b), driver=driver)
        theirs = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
        assert type(ours).__name__ == type(theirs).__name__ == "linalg_lstsq"
        for x, y in zip(ours, theirs):
            assert tuple(x.shape) == tuple(y.shape), (driver, x.shape, y.shape)
            assert str(x.dtype).split(".")[-1] == str(y.dtype).split(".")[-1]
        np.testing.assert_array_equal(np.asarray(ours.rank), theirs.rank.numpy())
        np.testing.assert_allclose(np.asarray(ours.singular_values),
                                   theirs.singular_values.numpy(), rtol=1e-12, atol=1e-14)
        # the minimum-norm solution (every driver but gels), rank-deficient batch included
        np.testing.assert_allclose(np.asarray(ours.solution), theirs.solution.numpy(),
                                   rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(np.asarray(ours.residuals), theirs.residuals.numpy())
    for full in (True, False):
        ours = adjit.linalg.svd(adjit.tensor(A), full_matrices=full)
        theirs = torch.linalg.svd(torch.tensor(A), full_matrices=full)
        assert type(ours).__name__ == type(theirs).__name__ == "linalg_svd"
        for x, y in zip(ours, theirs):
            assert tuple(x.shape) == tuple(y.shape)
        u, s, vh = (np.asarray(t) for t in ours)
        np.testing.assert_allclose((u[..., :3] * s[..., None, :]) @ vh, A, atol=1e-12)
        np.testing.assert_allclose(np.abs(u), np.abs(theirs.U.numpy()), atol=1e-12)


def test_qr_values_modes_and_errors_match_pytorch():
    for mode in ("reduced", "complete", "r"):
        ours = adjit.linalg.qr(adjit.tensor(A), mode=mode)
        theirs = torch.linalg.qr(torch.tensor(A), mode=mode)
        assert type(ours).__name__ == type(theirs).__name__ == "linalg_qr"
        for x, y in zip(ours, theirs):
            assert tuple(x.shape) == tuple(y.shape)
            np.testing.assert_allclose(np.asarray(x), y.numpy(), rtol=1e-12, atol=1e-13)
    a = adjit.tensor(A, requires_grad=True)
    with pytest.raises(RuntimeError, match="unrecognized mode"):
        adjit.linalg.qr(a, mode="raw")


@pytest.mark.parametrize("shape,mode,out", [((4, 3), "r", 1), ((3, 5), "r", 1),
                                            ((3, 3), "r", 1), ((4, 3), "complete", 0),
                                            ((2, 4, 3), "complete", 1)])
def test_qr_derivative_refused_at_backward_as_pytorch(shape, mode, out):
    # PyTorch computes the forward (with a grad_fn) and raises when the derivative runs:
    # backward, autograd.grad, forward mode; the same message here
    x = RNG.standard_normal(shape)
    theirs_t = torch.tensor(x, requires_grad=True)
    ours_t = adjit.tensor(x, requires_grad=True)
    theirs = torch.linalg.qr(theirs_t, mode=mode)[out]
    ours = adjit.linalg.qr(ours_t, mode=mode)[out]
    assert type(ours.grad_fn).__name__ == type(theirs.grad_fn).__name__
    np.testing.assert_allclose(np.asarray(ours.detach()), theirs.detach().numpy(), atol=1e-12)
    with pytest.raises(RuntimeError) as want:
        theirs.sum().backward()
    with pytest.raises(RuntimeError) as got:
        ours.sum().backward()
    assert str(got.value) == str(want.value)
    with pytest.raises(RuntimeError) as got:
        adjit.autograd.grad(adjit.linalg.qr(ours_t, mode=mode)[out].sum(), ours_t)
    assert str(got.value) == str(want.value)
    t = RNG.standard_normal(shape)
    with pytest.raises(RuntimeError) as want:
        torch.func.jvp(lambda y: torch.linalg.qr(y, mode=mode)[out], (torch.tensor(x),),
                       (torch.tensor(t),))
    with pytest.raises(RuntimeError) as got:
        adjit.func.jvp(lambda y: adjit.linalg.qr(y, mode=mode)[out], (adjit.tensor(x),),
                       (adjit.tensor(t),))
    assert str(got.value) == str(want.value)
    # without a derivative nothing is raised; the other modes stay differentiable
    with torch.no_grad():
        want_r = torch.linalg.qr(torch.tensor(x), mode=mode)[1]
    np.testing.assert_allclose(np.asarray(adjit.linalg.qr(adjit.tensor(x), mode=mode)[1]),
                               want_r.numpy(), atol=1e-12)
    ok_t = torch.tensor(x, requires_grad=True)
    torch.linalg.qr(ok_t, mode="reduced")[1].sum().backward()
    ok = adjit.tensor(x, requires_grad=True)
    adjit.linalg.qr(ok, mode="reduced")[1].sum().backward()
    np.testing.assert_allclose(np.asarray(ok.grad), ok_t.grad.numpy(), atol=1e-10)


def test_refusals():
    a = adjit.tensor(A)
    with pytest.raises(NotImplementedError, match="gels"):
        adjit.linalg.lstsq(a, adjit.tensor(B), driver="gels")
    with pytest.raises(RuntimeError, match="driver"):
        adjit.linalg.svd(a, driver="gesvd")
    with pytest.raises(RuntimeError, match="1D or 2D"):
        adjit.linalg.norm(a, 2)
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        adjit.linalg.svd(adjit.ones(3))
    with pytest.raises(NotImplementedError, match="dtype"):
        adjit.linalg.vector_norm(a, dtype=adjit.float32)
