"""The eager tape's recording fast path (adjit/ir/core.py `_record_eager`, issue 14 item 1's
speed condition): an operation whose signature was seen before skips `_record`'s operand loop,
literal lookup and shape rule, and records exactly the equation `_record` records (the same
shared signature, Lit operands, result type), so the backward's structure key, literal
promotion and PyTorch-equal results are unchanged. Values and gradients against PyTorch."""
import math
import sys

import numpy as np
import pytest

import adjit
from adjit.ir import core

from peers import require

torch = require("torch")


def _calls_of(fn, names):
    calls = []

    def prof(frame, event, arg):
        if event == "call" and frame.f_code.co_filename == core.__file__ and \
                frame.f_code.co_name in names:
            calls.append(frame.f_code.co_name)

    sys.setprofile(prof)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def test_a_repeated_operation_skips_the_general_recorder():
    x = adjit.tensor([1.0, 2.0, 3.0], requires_grad=True)
    step = lambda: ((x * 2) ** 2 + x).mean()  # noqa: E731
    step()
    assert _calls_of(step, {"_record", "_learn"}) == []
    assert _calls_of(step, {"_record_eager"})  # (the path the test is about was taken)


OPS = [
    ("mul literal", lambda t: t * 2.5), ("rmul int", lambda t: 3 * t),
    ("pow 2", lambda t: t ** 2), ("pow 0.5", lambda t: t.abs() ** 0.5),
    ("rsub", lambda t: 1.0 - t), ("div", lambda t: t / 4),
    ("add tensors", lambda t: t + t.exp()), ("broadcast add", lambda t: t + t[:1]),
    ("mean", lambda t: t.mean()), ("sum dim", lambda t: t.reshape(2, 2).sum(0)),
    ("transpose view", lambda t: t.reshape(2, 2).t() * 1.5), ("neg", lambda t: -t),
    ("mul -0.0", lambda t: t * -0.0), ("mul 0.0", lambda t: t * 0.0),
    ("add nan", lambda t: t + math.nan), ("mul True", lambda t: t * True),
    ("mul 1", lambda t: t * 1), ("mul 1.0", lambda t: t * 1.0),
    ("relu", lambda t: t.relu()),  # select with a literal zero: three operands
    ("where -0.0", lambda t: (t * 2).relu() * -0.0),
]


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("name,op", OPS, ids=[o[0] for o in OPS])
def test_fast_path_records_what_record_records(name, op, dt):
    data = np.array([0.5, -1.25, 2.0, 3.5], dt)
    ours, recs = [], []
    for _ in range(3):  # the first call learns the signature, the others take the fast path
        x = adjit.tensor(data, requires_grad=True)
        y = op(x)
        ours.append(y)
        recs.append(y._n.rec)
    a, b = recs[0], recs[2]
    assert b.sig is a.sig or (a.sig is None and b.sig is None)
    assert b.prim is a.prim and b.params == a.params
    assert [type(i) for i in b.inputs] == [type(i) for i in a.inputs]
    for i, j in zip(a.inputs, b.inputs):
        if type(i) is core.Lit:
            assert (j.dtype, type(j.value)) == (i.dtype, type(i.value))
            assert np.array_equal(np.asarray(i.value), np.asarray(j.value), equal_nan=True)
            assert math.copysign(1, i.value) == math.copysign(1, j.value)
    assert ours[2]._n.type == ours[0]._n.type
    tx = torch.tensor(data, requires_grad=True)
    ty = op(tx)
    want = ty.detach().numpy()
    got = ours[2].detach().numpy()
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    ty.sum().backward()
    ours[2].sum().backward()
    # the leaf of the third call
    x3 = ours[2]._n
    while x3.rec is not None:
        x3 = next(i for i in x3.rec.inputs if type(i) is not core.Lit)
    assert x3.grad is not None
    np.testing.assert_allclose(x3.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


def test_literal_values_keep_their_own_signatures_and_gradients():
    """-0.0 and 0.0, 1 and 1.0 and True, and nan are different literals (the fast path keys
    Python numbers by type and value, a zero or nan float by its bits)."""
    x = adjit.tensor([1.0, -2.0], requires_grad=True)
    sigs = {}
    for lit in (0.0, -0.0, 1, 1.0, True, math.nan, 2.0, 2):
        for _ in range(2):
            y = x * lit
        sigs.setdefault(y._n.rec.sig, []).append(lit)
    assert all(len(v) == 1 for v in sigs.values()), sigs
    tx = torch.tensor([1.0, -2.0], requires_grad=True)
    for lit in (-0.0, 3.0, 5, 3.0):
        (x * lit).sum().backward()
        (tx * lit).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_a_view_recorded_on_the_fast_path_shares_its_base_counter():
    """broadcast and transpose results are NumPy views: a write to the base is seen through
    the view's version counter, as PyTorch's error shows."""
    for _ in range(3):
        x = adjit.tensor(np.ones((2, 3)), requires_grad=True)
        y = x * 2.0
        v = y.t()
        z = (v * v).sum()
        with adjit.no_grad():
            y.mul_(3.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.backward()
    tx = torch.ones((2, 3), dtype=torch.float64, requires_grad=True)
    ty = tx * 2.0
    tv = ty.t()
    tz = (tv * tv).sum()
    with torch.no_grad():
        ty.mul_(3.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        tz.backward()


def test_a_removed_primitive_leaves_no_fast_path_entry():
    from adjit.ir.prims import elementwise  # noqa: F401 (the registry is populated)
    p = core.Primitive("fast_twice", lambda t: t, lambda a: a * 2.0,
                       vjp=lambda ct, a, out: (ct * 2.0,), kind="unary")
    with core.registered(p):
        x = adjit.tensor([1.0, 2.0], requires_grad=True)
        for _ in range(2):
            core.bind(p, x._n)
        assert any(k[0] is p for k in core._EAGER)
    assert not any(k[0] is p for k in core._EAGER)


@pytest.mark.parametrize("lib", ["adjit", "torch"])
def test_a_broadcast_operand_shares_its_base_counter(lib):
    """broadcast_in_dim's result is a view made directly of its operand's array (tape.py
    `view_of` answers by identity): a write to the operand is a write to the saved broadcast."""
    m = adjit if lib == "adjit" else torch
    for _ in range(3):
        c = m.tensor([1.0, 2.0, 3.0], requires_grad=True)
        w = m.tensor(np.ones((2, 3)), requires_grad=True)
        y = c * 2.0
        z = (w * y).sum()  # y broadcast to (2, 3), saved for w's gradient
        with m.no_grad():
            y.mul_(3.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.backward()
    c = m.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = m.tensor(np.ones((2, 3)), requires_grad=True)
    (w * (c * 2.0)).sum().backward()
    np.testing.assert_allclose(np.asarray(w.grad.numpy()), np.tile([2.0, 4.0, 6.0], (2, 1)))
