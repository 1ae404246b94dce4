"""adjit's NumPy tensor printer must match torch's ``repr`` character for character."""

from __future__ import annotations

import numpy as np
import pytest

from adjit.tracer.printing import format_tensor, torch_dtype_name

from peers import require

torch = require("torch")

_rng = np.random.default_rng(20240613)
_DEFAULT_DTYPES = (np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_))


def _f32(x):
    return np.asarray(x, dtype=np.float32)


def _f64(x):
    return np.asarray(x, dtype=np.float64)


CASES = {
    "normal_vec": _f32(_rng.standard_normal(7)),
    "normal_mat": _f32(_rng.standard_normal((4, 5))),
    "normal_vec_f64": _f64(_rng.standard_normal(6)),
    "normal_3d": _f32(_rng.standard_normal((2, 3, 4))),
    "normal_4d": _f32(_rng.standard_normal((2, 2, 2, 3))),
    "seed_grad": _f32([20.0, 28.0, 36.0]) / 3,
    "int_valued": _f32([1.0, 2.0, 3.0]),
    "int_valued_neg": _f32([[-1.0, 20.0], [300.0, 4.0]]),
    "scalar_int_valued": _f32(41.0),
    "scalar_frac": _f32(51.666666),
    "scalar_f64": _f64(4.28),
    "scalar_tiny": _f32(1.5e-7),
    "scalar_nan": _f32(np.nan),
    "scalar_int": np.array(7, dtype=np.int64),
    "scalar_bool": np.array(True),
    "large": _f32([1.5e9, 2.0, 3.0]),
    "large_ints": _f32([1e9, 2e9]),
    "tiny": _f32([1e-5, 2e-5, 0.5e-5]),
    "wide_ratio": _f32([0.001, 10.0, 2.0]),
    "ratio_edge": _f32([0.01, 10.0]),
    "sci_f64": _f64([1e-300, 1e300, -3.0]),
    "nan_inf": _f32([np.nan, np.inf, -np.inf, 1.5]),
    "nan_inf_int_valued": _f32([np.nan, 1.0, -np.inf, 100.0]),
    "only_nan": _f32([np.nan, np.nan]),
    "only_zeros": _f32([0.0, 0.0, 0.0]),
    "neg_zero": _f32([-0.0, 0.0, 1.0]),
    "neg_zero_frac": _f32([-0.0, 0.5]),
    "ints": np.array([1, 2, 3], dtype=np.int64),
    "ints_neg_wide": np.array([[-100, 2], [3, 123456]], dtype=np.int64),
    "int32": np.array([1, -2, 3], dtype=np.int32),
    "uint8": np.array([0, 255, 7], dtype=np.uint8),
    "bools": np.array([True, False]),
    "bools_2d": np.array([[True, False, True], [False, False, True]]),
    "f64_vec": _f64([1.0, 2.0]),
    "f64_frac": _f64([0.1, 0.2, 0.30000000000000004]),
    "f32_rounding": _f32([0.1, 0.00015, 1.00005]),
    "f16": np.array([0.5, 1.25, 3.0], dtype=np.float16),
    "empty": _f32([]),
    "empty_2d": np.zeros((0, 3), dtype=np.float32),
    "empty_int": np.zeros((0,), dtype=np.int64),
    "empty_bool_2d": np.zeros((2, 0), dtype=np.bool_),
    "empty_f64": np.zeros((0,), dtype=np.float64),
    "summarized_vec": _f32(np.arange(2000) * 0.5),
    "summarized_mat": _f32(_rng.standard_normal((50, 40))),
    "summarized_3d": _f32(_rng.standard_normal((10, 11, 12))),
    "summarized_ints": np.arange(1001, dtype=np.int64),
    "summarized_sci": _f64(np.logspace(-10, 10, 1500)),
    "summarized_rows_only": _f32(_rng.standard_normal((1001, 2))),
    "wide_row_wrap": _f32(_rng.standard_normal(40) * 100),
    "wide_int_wrap": np.arange(100, dtype=np.int64) * 1000,
    "wide_mat_wrap": _f32(_rng.standard_normal((3, 30))),
    "wide_sci_wrap": _f64(_rng.standard_normal(20) * 1e10),
    "wide_3d_wrap": _f32(_rng.standard_normal((2, 2, 25))),
    "single_column": _f32([[1.0], [2.5], [3.0]]),
    "one_element_vec": _f32([4.0]),
    "huge_ints_wrap": np.array([2**62, -(2**62), 5] * 10, dtype=np.int64),
    "mixed_magnitudes": _f64([123456.789, 0.5, -42.0]),
}


def _dtype_name(a: np.ndarray) -> str | None:
    # The caller's rule (what adjit's Tensor.__repr__ must do): name only non-default dtypes.
    return None if a.dtype in _DEFAULT_DTYPES else torch_dtype_name(a.dtype)


def _torch_tensor(a: np.ndarray):
    # from_numpy keeps the dtype and values exactly; copy so torch owns writable memory.
    return torch.from_numpy(np.array(a, copy=True))


@pytest.mark.parametrize("name", sorted(CASES))
def test_plain_repr_matches_torch(name):
    a = CASES[name]
    assert format_tensor(a, dtype_name=_dtype_name(a)) == repr(_torch_tensor(a))


FLOAT_CASES = sorted(k for k, v in CASES.items() if np.issubdtype(v.dtype, np.floating))


@pytest.mark.parametrize("name", FLOAT_CASES)
def test_requires_grad_suffix_matches_torch(name):
    a = CASES[name]
    t = _torch_tensor(a).requires_grad_()
    got = format_tensor(a, dtype_name=_dtype_name(a), suffixes=["requires_grad=True"])
    assert got == repr(t)


@pytest.mark.parametrize("name", FLOAT_CASES)
def test_grad_fn_suffix_matches_torch(name):
    a = CASES[name]
    t = _torch_tensor(a).requires_grad_() * 1  # same values, grad_fn=<MulBackward0>
    got = format_tensor(a, dtype_name=_dtype_name(a), suffixes=["grad_fn=<MulBackward0>"])
    assert got == repr(t)


def test_long_suffix_wraps_like_torch():
    # A long grad_fn name forces the suffix onto its own line in torch's layout.
    a = _f32(_rng.standard_normal((2, 9)))
    t = _torch_tensor(a).requires_grad_().log_softmax(1)
    expected = repr(t)
    got = format_tensor(t.detach().numpy(), suffixes=["grad_fn=<LogSoftmaxBackward0>"])
    assert got == expected


def test_documented_examples():
    assert format_tensor(_f32([20.0, 28.0, 36.0]) / 3) == "tensor([ 6.6667,  9.3333, 12.0000])"
    assert (format_tensor(_f32(41.0), suffixes=["grad_fn=<AddBackward0>"])
            == "tensor(41., grad_fn=<AddBackward0>)")
    assert (format_tensor(_f32([[1, 2], [3, 4]]), suffixes=["requires_grad=True"])
            == "tensor([[1., 2.],\n        [3., 4.]], requires_grad=True)")
    assert format_tensor(np.array([1, 2, 3])) == "tensor([1, 2, 3])"
    assert format_tensor(np.array([True, False])) == "tensor([ True, False])"
    assert (format_tensor(_f64([1, 2]), dtype_name="torch.float64")
            == "tensor([1., 2.], dtype=torch.float64)")
    assert format_tensor(np.zeros((0, 3), np.float32)) == "tensor([], size=(0, 3))"
