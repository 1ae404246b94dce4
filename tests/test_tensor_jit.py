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
