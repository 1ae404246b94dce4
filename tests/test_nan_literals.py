"""A float literal is keyed by its bits wherever a cache shares literals between equations
(ir.core's literal table, the eager tape's record keys, the promoted-literal and eager-backward
structure keys): float.hex() gave "nan" for every NaN, so a process that had recorded `x + nan`
handed that NaN to a later `x + (-nan)` and the result lost its sign bit (NumPy, PyTorch and
native code keep it)."""
from __future__ import annotations

import struct

import numpy as np
import pytest

try:
    from tests import peers
except ImportError:  # tests/ not a package on sys.path
    import peers

import adjit

NEG_NAN = struct.unpack("<d", bytes.fromhex("000000000000f8ff"))[0]   # sign bit set
PAYLOAD = struct.unpack("<d", (0x7ff00000000abc01).to_bytes(8, "little"))[0]  # a payload
NANS = [float("nan"), NEG_NAN, PAYLOAD, -PAYLOAD]


def _bits(a):
    return np.asarray(a, np.float64).view(np.int64)


def _want(fn, x, v):
    with np.errstate(invalid="ignore"):
        return fn(x, v)


@pytest.mark.parametrize("op", ["add", "mul", "rsub"])
def test_each_nan_literal_keeps_its_bits_after_another(monkeypatch, op):
    monkeypatch.setenv("ADJIT_TIER", "interp")
    fn = {"add": lambda x, v: x + v, "mul": lambda x, v: x * v,
          "rsub": lambda x, v: v - x}[op]
    x = np.ones(3)
    for v in NANS:  # the same process, one after the other: each a new function
        want = _want(fn, x, v)
        got = adjit.jit(lambda x, v=v: fn(x, v))(x)  # (v: a default, keyed by value)
        np.testing.assert_array_equal(_bits(got), _bits(want), err_msg=repr(v))
        g = adjit.make_ir(lambda x, v=v: fn(x, v))(x)
        np.testing.assert_array_equal(_bits(adjit.ir.eval_graph(g, [x])[0]), _bits(want))


def test_the_eager_tape_keeps_each_nans_bits():
    torch = peers.require("torch")
    for v in NANS:
        t = adjit.tensor([1.0, 2.0, 3.0], dtype=adjit.float64, requires_grad=True)
        r = t + v
        want = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64) + v
        assert (_bits(r.detach().numpy()) == _bits(want.numpy())).all(), repr(v)
        r2 = v * t
        want2 = v * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
        assert (_bits(r2.detach().numpy()) == _bits(want2.numpy())).all(), repr(v)
