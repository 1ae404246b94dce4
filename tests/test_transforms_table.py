"""Gradients of a table of NumPy programs (every function adjit dispatches appears in one) in
float32 and float64: against central finite differences, against adjit's own float64 result,
and against JAX (the same program run with jax.numpy). A hypothesis test composes random
programs from the dispatch list."""
from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import adjit
from adjit.tracer import np_dispatch

from peers import require

M = np.array([[True, False, True, False], [False, True, True, False], [True, True, False, True]])
W = np.linspace(-1.0, 1.0, 24).reshape(2, 12)
K = np.linspace(0.5, 1.5, 12).reshape(3, 4)

# name, fn(module, *args), argument shapes, domain ("any": (-1.5, 1.5), "pos": (0.5, 2))
CASES = [
    ("sin", lambda np, x: np.sum(np.sin(x)), [(3, 4)], "any"),
    ("cos_mean", lambda np, x: np.mean(np.cos(x)), [(3, 4)], "any"),
    ("tan", lambda np, x: np.sum(np.tan(x * 0.5)), [(3, 4)], "any"),
    ("tanh_sq", lambda np, x: np.sum(np.tanh(x) ** 2), [(3, 4)], "any"),
    ("softplus", lambda np, x: np.sum(np.log1p(np.exp(x))), [(3, 4)], "any"),
    ("log", lambda np, x: np.sum(np.log(x)), [(3, 4)], "pos"),
    ("sqrt", lambda np, x: np.sum(np.sqrt(x)), [(3, 4)], "pos"),
    ("expm1", lambda np, x: np.sum(np.expm1(x)), [(5,)], "any"),
    ("sinh_cosh", lambda np, x: np.sum(np.sinh(x) * np.cosh(x)), [(5,)], "any"),
    ("log2_log10", lambda np, x: np.sum(np.log2(x) + np.log10(x)), [(5,)], "pos"),
    ("exp2", lambda np, x: np.sum(np.exp2(x)), [(5,)], "any"),
    ("abs", lambda np, x: np.sum(np.abs(x) * x), [(3, 4)], "any"),
    ("absolute_fabs", lambda np, x: np.sum(np.absolute(x) + np.fabs(x) ** 2), [(5,)], "any"),
    ("sign", lambda np, x: np.sum(np.sign(x) * x ** 2), [(5,)], "any"),
    ("floor_ceil", lambda np, x: np.sum(np.floor(x * 3.0) * x + np.ceil(x) * x ** 2), [(5,)],
     "any"),
    ("negative_positive", lambda np, x: np.sum(np.negative(x) * np.positive(x)), [(5,)], "any"),
    ("square_reciprocal", lambda np, x: np.sum(np.square(x) + np.reciprocal(x)), [(5,)], "pos"),
    ("arith_ufuncs", lambda np, x, y: np.sum(np.divide(np.multiply(np.add(x, y),
                                                                   np.subtract(x, y)),
                                                       np.true_divide(y, 2.0) + 3.0)),
     [(3, 4), (3, 4)], "pos"),
    ("power", lambda np, x, y: np.sum(np.power(x, 3) + np.power(x, y)), [(4,), (4,)], "pos"),
    ("pow_ops", lambda np, x: np.sum(x ** 2.5 + 2.0 ** x + x ** 2), [(4,)], "pos"),
    ("maximum_minimum", lambda np, x, y: np.sum(np.maximum(x, 0.0) + np.minimum(x, y)),
     [(3, 4), (3, 4)], "any"),
    ("leaky_relu", lambda np, x: np.sum(np.where(x > 0, x, 0.01 * x)), [(3, 4)], "any"),
    ("less_greater", lambda np, x: np.sum(np.where(np.logical_and(np.less(x, 0.5),
                                                                  np.greater(x, -0.5)),
                                                   x ** 2, x)), [(3, 4)], "any"),
    ("compare_eq", lambda np, x, y: np.sum(np.where(np.less_equal(x, y), x, y) *
                                           np.where(np.greater_equal(x, 0), 1.0, 2.0)) +
     np.sum(np.where(np.equal(x, x), x, 0.0) + np.where(np.not_equal(x, y), y, 0.0)),
     [(3, 4), (3, 4)], "any"),
    ("logical", lambda np, x: np.sum(np.where(np.logical_or(x > 1, np.logical_not(x > -1)),
                                              x ** 3, np.sin(x))) +
     np.sum(np.where(np.invert(x > 0), x, 0.0)), [(3, 4)], "any"),
    ("bitwise_mask", lambda np, x: np.sum(np.where(np.bitwise_and(M, x > 0), x, 0.0)) +
     np.sum(np.where(np.bitwise_or(M, x > 1), x ** 2, 0.0)) +
     np.sum(np.where(np.bitwise_xor(M, x > 0.5), x ** 3, 0.0)), [(3, 4)], "any"),
    ("nan_checks", lambda np, x: np.sum(np.where(np.isnan(x) | np.isinf(x), 0.0, x) *
                                        np.where(np.isfinite(x), x, 0.0)), [(3, 4)], "any"),
    ("logaddexp", lambda np, x, y: np.sum(np.logaddexp(x, y)), [(3, 4), (3, 4)], "any"),
    # issue 15 item 1: the other ufuncs (domains away from their discontinuities)
    ("inverse_trig", lambda np, x: np.sum(np.arcsin(x * 0.5) + np.arccos(x * 0.4) +
                                          np.arctan(x) ** 2), [(3, 4)], "any"),
    ("inverse_hyperbolic", lambda np, x: np.sum(np.arcsinh(x) * np.arccosh(x + 1.0) +
                                                np.arctanh(x * 0.5)), [(5,)], "pos"),
    ("arctan2_hypot", lambda np, x, y: np.sum(np.arctan2(x, y) + np.hypot(x, y) ** 2),
     [(3, 4), (3, 4)], "any"),
    ("cbrt_logaddexp2", lambda np, x, y: np.sum(np.cbrt(x) + np.logaddexp2(x, y)),
     [(5,), (5,)], "pos"),
    ("sinc_angles", lambda np, x: np.sum(np.sinc(x) + np.deg2rad(x) * np.radians(x) +
                                         np.rad2deg(x) + np.degrees(x) ** 2), [(5,)], "any"),
    ("rounding", lambda np, x: np.sum(x * (np.trunc(x * 3.0) + np.rint(x * 3.0) +
                                           _fix(np)(x * 2.0) + np.round(x, 1) +
                                           np.around(x * 3.0))), [(5,)], "any"),
    ("division_family", lambda np, x, y: np.sum(np.mod(x, y) + np.remainder(x * 3, y) ** 2 +
                                                np.fmod(x * 3, y) * np.floor_divide(x * 3, y) +
                                                x % 0.7 + (x // 0.3) * x +
                                                divmod(x * 5, y)[1] + np.divmod(x, y)[0]),
     [(5,), (5,)], "pos"),
    ("fmax_fmin_copysign", lambda np, x, y: np.sum(np.fmax(x, y) * np.fmin(x, y * 0.5) +
                                                   np.copysign(x, y) * x), [(5,), (5,)], "any"),
    ("nan_to_num_float_power", lambda np, x: np.sum(np.nan_to_num(np.where(x > 1, x, np.nan)) +
                                                    np.float_power(x, 1.5)), [(5,)], "pos"),
    ("float_tests", lambda np, x: np.sum(np.where(np.signbit(x), x ** 2, x) *
                                         np.heaviside(x, 0.5)) + np.sum(np.positive(x)),
     [(5,)], "any"),
    ("real_imag_conj", lambda np, x: np.sum(np.real(x) * np.conj(x) + np.imag(x) +
                                            np.conjugate(x)), [(5,)], "any"),
    ("sum_keepdims", lambda np, x: np.sum(np.sum(x, axis=1, keepdims=True) * x), [(3, 4)],
     "any"),
    ("mean_axis", lambda np, x: np.sum(np.mean(x, axis=0) ** 2) + np.mean(x, axis=(0, 2)).sum(),
     [(2, 3, 4)], "any"),
    ("max_amax", lambda np, x: np.max(x, axis=1).sum() + np.amax(x), [(3, 4)], "any"),
    ("min_amin", lambda np, x: np.sum(np.min(x, axis=0)) + np.amin(x), [(3, 4)], "any"),
    ("prod", lambda np, x: np.prod(x) + np.sum(np.prod(x, axis=1)), [(3, 5)], "any"),
    ("var_std", lambda np, x: np.var(x) + np.sum(np.std(x, axis=1)) + np.var(x, ddof=1),
     [(3, 4)], "any"),
    ("norm", lambda np, x: np.linalg.norm(x) + np.linalg.norm(x, axis=1).sum() +
     np.linalg.norm(x, ord=1, axis=0).sum() + np.linalg.norm(x[0], ord=np.inf), [(3, 4)],
     "any"),
    ("cumsum", lambda np, x: np.sum(np.cumsum(x, axis=1) ** 2) + np.sum(np.cumsum(x) ** 2),
     [(3, 4)], "any"),
    ("argmax_argmin", lambda np, x: np.take(x, np.argmax(x)) * 2.0 +
     np.take(x, np.argmin(x, axis=None)) + np.sum(x[np.arange(3), np.argmax(x, axis=1)]),
     [(3, 4)], "any"),
    ("all_any", lambda np, x: np.where(np.all(x > -10), np.sum(x ** 2), 0.0) +
     np.where(np.any(x > 10), 1.0, np.sum(x)), [(3, 4)], "any"),
    ("clip", lambda np, x: np.sum(np.clip(x, -0.5, 0.5) ** 2 + np.clip(x, 0.0, None)),
     [(3, 4)], "any"),
    ("isclose_allclose", lambda np, x, y: np.sum(np.where(np.isclose(x, y), 0.0, x * y)) +
     np.where(np.allclose(x, x), np.sum(x), 0.0), [(3, 4), (3, 4)], "any"),
    ("reshape_transpose", lambda np, x: np.sum(np.transpose(np.reshape(x, (2, 6))) ** 2 *
                                               np.arange(12.0).reshape(6, 2)), [(3, 4)], "any"),
    ("swap_move", lambda np, x: np.sum(np.swapaxes(x, 0, 2) *
                                       np.swapaxes(np.moveaxis(x, 0, -1), 0, 1) ** 2),
     [(2, 3, 4)], "any"),
    ("expand_squeeze", lambda np, x: np.sum(np.squeeze(np.expand_dims(x, 0) * 2.0,
                                                       axis=0) ** 2), [(3, 4)], "any"),
    ("ravel_broadcast", lambda np, x: np.sum(np.broadcast_to(np.ravel(x), (2, 12)) * W),
     [(3, 4)], "any"),
    ("flip", lambda np, x: np.sum(np.flip(x, axis=1) * K) + np.sum(np.flip(x) * K ** 2),
     [(3, 4)], "any"),
    ("take", lambda np, x: np.sum(np.take(x, np.array([0, 2, 2]), axis=1) ** 2), [(3, 4)],
     "any"),
    ("concatenate", lambda np, x, y: np.sum(np.concatenate([x, y * 2], axis=0) ** 2),
     [(3, 4), (2, 4)], "any"),
    ("stack", lambda np, x, y: np.sum(np.stack([x, y], axis=1) ** 3), [(3, 4), (3, 4)], "pos"),
    ("hstack_vstack", lambda np, x, y: np.sum(np.hstack([x, y]).ravel() *
                                              np.vstack([x, y]).ravel()),
     [(3, 4), (3, 4)], "any"),
    ("like", lambda np, x: np.sum((x + np.zeros_like(x)) * (np.ones_like(x) +
                                                            np.full_like(x, 2.0))) *
     np.empty_like(x).shape[0], [(3, 4)], "any"),
    ("shape_ndim_size", lambda np, x: np.sum(x) * np.shape(x)[0] +
     np.ndim(x) * np.sum(x ** 2) / np.size(x), [(3, 4)], "any"),
    ("copy", lambda np, x: np.sum(np.copy(x) ** 2), [(3, 4)], "any"),
    ("dot", lambda np, x, y: np.sum(np.dot(x, y.T)) + np.dot(x[0], y[1]), [(3, 4), (3, 4)],
     "any"),
    ("matmul", lambda np, x, y: np.sum(np.matmul(x, y.T) ** 2) + np.sum(K.T @ x),
     [(3, 4), (3, 4)], "any"),
    ("matmul_batched", lambda np, x, y: np.sum(np.sin(x @ y)), [(2, 3, 4), (4, 2)], "any"),
    ("tensordot", lambda np, x, y: np.sum(np.tensordot(x, y, axes=([1], [1]))) +
     np.tensordot(x, y), [(3, 4), (3, 4)], "any"),
    ("outer", lambda np, x, y: np.sum(np.outer(x, y) ** 2), [(3,), (4,)], "any"),
    # a ufunc's methods (np_ufunc_methods: composed from the dispatched functions)
    ("ufunc_methods", lambda np, x, y: np.sum(np.add.reduce(x, axis=0) *
                                              np.maximum.accumulate(y, axis=1)[0]) +
     np.sum(np.subtract.outer(x[0], y[1]) ** 2) + np.multiply.reduce(x[1], axis=None),
     [(3, 4), (3, 4)], "any"),
    ("inner", lambda np, x, y: np.inner(x, y) + np.sum(np.inner(K, x)), [(4,), (4,)], "any"),
    ("vdot", lambda np, x, y: np.vdot(x, y) ** 2, [(3, 4), (4, 3)], "any"),
    ("einsum", lambda np, x, y: np.einsum("ij,kj->ik", x, y).sum() + np.einsum("ij->", x) +
     np.sum(np.einsum("ij,ij->i", x, y) ** 2), [(3, 4), (3, 4)], "any"),
    ("einsum_trace", lambda np, x: np.einsum("ii", x @ x.T) + np.trace(x @ x.T), [(3, 4)],
     "any"),
    ("softmax_xent", lambda np, x: -np.sum(np.log(np.exp(x - np.max(x, axis=1, keepdims=True))
                                                  / np.sum(np.exp(x - np.max(x, axis=1,
                                                                             keepdims=True)),
                                                           axis=1, keepdims=True))[
        np.arange(3), np.array([1, 0, 3])]), [(3, 4)], "any"),
    ("basic_index", lambda np, x: np.sum(x[1:, ::2] ** 2) + x[0, -1] + np.sum(x[:, None, 1]) +
     np.sum(x[..., 2]), [(3, 4)], "any"),
    ("fancy_index", lambda np, x: np.sum(x[np.array([0, 2]), :] * x[np.array([1, 1])]) +
     np.sum(x[:, np.array([3, 0])] ** 2), [(3, 4)], "any"),
    ("mask_index", lambda np, x: np.sum(x[x > 0] ** 2) + np.sum(x[M]), [(3, 4)], "any"),
    ("negative_step", lambda np, x: np.sum(x[::-1, 1] * x[:, 0]) + np.sum(x[:, ::-2] ** 2),
     [(3, 4)], "any"),
    ("int_promotion", lambda np, x: np.sum(x * np.arange(12).reshape(3, 4)) +
     np.sum(x / np.arange(1, 13).reshape(3, 4)), [(3, 4)], "any"),
    ("poly", lambda np, x: np.sum(3 * x ** 3 - 2 * x ** 2 + x - 1), [(5,)], "any"),
    ("rational", lambda np, x: np.sum(1.0 / (1.0 + x ** 2)), [(5,)], "any"),
    ("sigmoid", lambda np, x: np.sum(1 / (1 + np.exp(-x))), [(5,)], "any"),
    ("standardize", lambda np, x: np.sum(((x - np.mean(x, axis=0, keepdims=True)) /
                                          np.std(x, axis=0, keepdims=True)) * K), [(3, 4)],
     "any"),
    ("branch", lambda np, x: np.sum(x ** 2) if np.sum(x) > 0 else np.sum(np.sin(x)), [(4,)],
     "any"),
    ("iterate", lambda np, x: sum(np.sum(r * (i + 1)) for i, r in enumerate(x)), [(3, 2)],
     "any"),
    ("scalar_loop", lambda np, x: np.sum(_loop(np, x)), [(3,)], "any"),
    ("linalg_solve_inv", lambda np, x, y: np.sum(np.linalg.solve(x + 3 * np.eye(3), y) ** 2) +
     np.sum(np.linalg.inv(x + 3 * np.eye(3))), [(3, 3), (3,)], "any"),
    ("linalg_det_slogdet", lambda np, x: np.linalg.det(x + 3 * np.eye(3)) +
     np.linalg.slogdet(x + 3 * np.eye(3))[1], [(3, 3)], "any"),
    ("linalg_cholesky_eigh", lambda np, x: np.sum(np.linalg.cholesky(x @ x.T + np.eye(3))) +
     np.sum(np.linalg.eigh(x @ x.T)[0] ** 2) + np.sum(np.linalg.eigvalsh(x + x.T)),
     [(3, 3)], "any"),
    ("linalg_svd_norms", lambda np, x: np.sum(np.linalg.svd(x, full_matrices=False)[1] ** 2) +
     np.sum(np.linalg.svd(x, full_matrices=False)[0] ** 2 * K[:, :3]) +
     np.sum(np.linalg.svdvals(x)) + np.linalg.matrix_norm(x, ord="nuc") +
     np.linalg.matrix_norm(x, ord=2) + np.sum(np.linalg.vector_norm(x, ord=3, axis=1)),
     [(3, 4)], "any"),
    ("linalg_pinv_lstsq", lambda np, x, y: np.sum(np.linalg.pinv(x) ** 2) +
     np.sum(np.linalg.lstsq(x.T, y, rcond=None)[0] ** 2), [(3, 4), (4,)], "any"),
    ("linalg_qr", lambda np, x: np.sum(np.linalg.qr(x)[0] * K[:, :3]) +
     np.sum(np.linalg.qr(x)[1] * K) + np.sum(np.linalg.qr(x.T, mode="r") * K.T[:3]),
     [(3, 4)], "any"),
    ("linalg_power_multi_dot", lambda np, x: np.sum(np.linalg.matrix_power(x, 3)) +
     np.sum(np.linalg.multi_dot([x, x.T, x])), [(3, 3)], "any"),
    # shape and indexing functions (issue 15 item 2)
    ("roll_repeat_tile", lambda np, x: np.sum(np.roll(x, 1, axis=1) * K) +
     np.sum(np.repeat(x, np.array([1, 0, 2]), axis=0) ** 2) + np.sum(np.tile(x, (2, 1))[1:] ** 3) +
     np.sum(np.roll(x, -5) * K ** 2), [(3, 4)], "any"),
    ("flips_rot90_rollaxis", lambda np, x: np.sum(np.flipud(x) * K) + np.sum(np.fliplr(x) ** 2 *
     K) + np.sum(np.rot90(x) ** 3) + np.sum(np.rollaxis(x, 1) * K.T ** 2), [(3, 4)], "any"),
    ("diagonals", lambda np, x: np.sum(np.diag(x, 1) ** 2) + np.sum(np.diag(x[0], -1) @ K[:, :]
     [:, :1].repeat(5, 0)[:5]) + np.sum(np.diagonal(x, -1) * 3.0) + np.trace(x, 1) +
     np.sum(np.diagflat(x[1]) ** 2), [(3, 4)], "any"),
    ("triangles", lambda np, x: np.sum(np.triu(x, -1) ** 2 * K) + np.sum(np.tril(x) ** 3),
     [(3, 4)], "any"),
    ("kron_cross", lambda np, x, y: np.sum(np.kron(x[:2, :2], y[:, :2]) ** 2) +
     np.sum(np.cross(x[:, :3], y[:, 1:]) ** 2), [(3, 4), (3, 4)], "any"),
    ("cumprod_diff", lambda np, x: np.sum(np.cumprod(x, axis=1) * K) + np.sum(np.cumprod(x)) +
     np.sum(np.diff(x, 2, axis=1, prepend=0.5) ** 2) + np.sum(np.ediff1d(x, to_end=1.0) ** 2) +
     np.sum(np.gradient(x, 0.5, axis=1) ** 2), [(3, 4)], "any"),
    ("sort_take_along", lambda np, x: np.sum(np.sort(x, axis=1) * K) + np.sum(np.sort(x, axis=0)
     ** 2 * K) + np.sum(np.take_along_axis(x, np.argsort(x, axis=1), axis=1) ** 3),
     [(3, 4)], "any"),
    ("partition", lambda np, x: np.sum(np.partition(x, 1, axis=1)[:, 1] ** 2 * K[:, 0]) +  # kth
     np.sum(np.take_along_axis(x, np.argpartition(x, 2, axis=0)[2:], axis=0) ** 3),  # values
     [(3, 4)], "any"),
    ("median_percentile", lambda np, x: np.median(x) + np.sum(np.median(x, axis=0) ** 2) +
     np.sum(np.percentile(x, np.array([10.0, 55.0]), axis=1) ** 2) + np.quantile(x, 0.3) ** 2,
     [(3, 4)], "any"),
    ("split_stack", lambda np, x: sum(np.sum(p * (i + 1)) for i, p in enumerate(
        np.split(x, [1, 3], axis=1) + np.array_split(x, 2) + np.hsplit(x, 2) + np.vsplit(x, 3) +
        np.dsplit(x[..., None], 1))) + np.sum(np.column_stack([x[0], x[1]]) ** 2) +
     np.sum(np.dstack([x, x * 2]) ** 2) + np.sum(np.block([[x, x], [x, x]]) * 0.5) +
     np.sum(np.atleast_1d(x[0, 0]) + np.atleast_2d(x[0]) ** 2 + np.atleast_3d(x) ** 3),
     [(3, 4)], "any"),
    ("pad_modes", lambda np, x: np.sum(np.pad(x, ((1, 2), (0, 3)), constant_values=0.5) ** 2) +
     np.sum(np.pad(x, 2, mode="edge") * 3.0 * np.pad(x, 2, mode="reflect")) +
     np.sum(np.pad(x, ((5, 1), (1, 2)), mode="wrap") ** 3), [(3, 4)], "any"),
    ("select_piecewise", lambda np, x: np.sum(np.select([x > 0.5, x < -0.5], [x ** 2, x * 3.0],
                                                        default=0.25)) +
     np.sum(np.piecewise(x, [x < 0, x >= 0], [lambda v: v ** 3, lambda v: np.sin(v)])),
     [(3, 4)], "any"),
    ("append_insert_delete", lambda np, x: np.sum(np.append(x, x[:1] * 2, axis=0) ** 2) +
     np.sum(np.insert(x, 2, x[0, 0], axis=1) ** 2) + np.sum(np.delete(x, np.array([0, 2]), axis=1) ** 3),
     [(3, 4)], "any"),
    ("meshgrid_linspace", lambda np, x: sum(np.sum(g * K[:, :3] ** (i + 1)) for i, g in
                                            enumerate(np.meshgrid(x[:3], x[1:4]))) +
     np.sum(np.linspace(x[0], x[1], 5) ** 2), [(4,)], "any"),
    ("nan_reductions", lambda np, x: np.nansum(x) + np.sum(np.nanmean(x, axis=0) ** 2) +
     np.nanmax(x) + np.nanmin(x) + np.nanvar(x) + np.sum(np.nanstd(x, axis=1)) +
     np.sum(np.nanprod(x, axis=0)), [(3, 4)], "any"),
    ("data_dependent_sizes", lambda np, x: np.sum(x[np.nonzero(x > 0)] ** 2) +
     np.sum(np.argwhere(x > 0) * 0.0) + np.sum(np.take(x, np.flatnonzero(x < 0))) +
     np.sum(np.unique(x) ** 3), [(3, 4)], "any"),
]
# functions whose shapes depend on the values: JAX cannot trace them under jax.grad
JAX_NO_DATA_DEPENDENT = {"data_dependent_sizes"}
# dispatched only to refuse (they write into an ndarray in place): no gradient to test
REFUSING = {"put_along_axis", "copyto"}


def _fix(np):
    return getattr(np, "fix", None) or np.trunc  # jax.numpy has no fix (deprecated)


def _loop(np, x):
    y = x
    for _ in range(3):
        y = np.tanh(y) * x + 0.5
    return y


NAMES = [c[0] for c in CASES]


def make_args(case, dtype, seed=0):
    rng = np.random.default_rng(zlib.crc32(case[0].encode()) + seed)
    lo, hi = (-1.5, 1.5) if case[3] == "any" else (0.5, 2.0)
    return [rng.uniform(lo, hi, s).astype(dtype) for s in case[2]]


def fd(f, args, eps=1e-6):
    out = []
    for k, a in enumerate(args):
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            lo, hi = [x.copy() for x in args], [x.copy() for x in args]
            lo[k][i] -= eps
            hi[k][i] += eps
            g[i] = (f(*hi) - f(*lo)) / (2 * eps)
        out.append(g)
    return out


def adjit_grad(case, args):
    fn = case[1]
    n = len(args)
    return adjit.value_and_grad(lambda *a: fn(np, *a), argnums=tuple(range(n)))(*args)


@pytest.mark.parametrize("case", CASES, ids=NAMES)
def test_grad_f64_vs_finite_differences(case):
    args = make_args(case, np.float64)
    v, gs = adjit_grad(case, args)
    assert v == pytest.approx(float(case[1](np, *args)), rel=1e-12, abs=1e-12)
    for g, want, a in zip(gs, fd(lambda *a: case[1](np, *a), args), args):
        assert g.dtype == np.float64 and g.shape == a.shape
        np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=NAMES)
def test_grad_f32(case):
    args = make_args(case, np.float32)
    v, gs = adjit_grad(case, args)
    assert np.asarray(v).dtype == np.asarray(case[1](np, *args)).dtype  # NumPy's promotion
    _, g64 = adjit_grad(case, [a.astype(np.float64) for a in args])
    for g, want in zip(gs, g64):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, want, rtol=2e-3, atol=2e-3)


def test_every_dispatched_function_has_a_gradient_test(monkeypatch):
    used = set()
    real = np_dispatch._dispatch

    def recording(name, *args, **kwargs):
        used.add(name)
        return real(name, *args, **kwargs)
    monkeypatch.setattr(np_dispatch, "_dispatch", recording)
    # the reductions' short path and ufunc calls do not go through `_dispatch`: record them too
    real_fast, real_ufunc = np_dispatch._reduce_fast, np_dispatch.array_ufunc

    def fast(name, *args, **kwargs):
        r = real_fast(name, *args, **kwargs)
        if r is not None:
            used.add(name)
        return r

    def ufunc(uf, *args, **kwargs):
        out = real_ufunc(uf, *args, **kwargs)
        used.add(uf.__name__)
        return out
    monkeypatch.setattr(np_dispatch, "_reduce_fast", fast)
    monkeypatch.setattr(np_dispatch, "array_ufunc", ufunc)
    # a ufunc call accepted once is served without `_dispatch` later: start with none
    monkeypatch.setattr(np_dispatch, "_UFAST", {})
    monkeypatch.setattr(np_dispatch, "_UFAST_LOOPS", {})
    for case in CASES:
        adjit_grad(case, make_args(case, np.float64))
    missing = (set(np_dispatch.FUNCS) | set(np_dispatch.UFUNCS)) - used - REFUSING
    assert not missing, f"dispatched NumPy functions without a gradient test: {sorted(missing)}"
    assert len(CASES) >= 60


# --- JAX ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def jax():
    return require("jax")


# every case in float64; some in float32 too (JAX runs op by op: keep the suite quick). Every
# case's float32 gradient is also checked against adjit's float64 one above.
JAX_PARAMS = [pytest.param(c, np.float64, id=f"{c[0]}-f64") for c in CASES
              if c[0] not in JAX_NO_DATA_DEPENDENT] + \
    [pytest.param(c, np.float32, id=f"{c[0]}-f32") for c in CASES[::5]
     if c[0] not in JAX_NO_DATA_DEPENDENT]


@pytest.mark.parametrize("case,dtype", JAX_PARAMS)
def test_grad_vs_jax(jax, case, dtype):
    import jax.numpy as jnp
    args = make_args(case, dtype)
    n = len(args)
    _, gs = adjit_grad(case, args)
    with jax.enable_x64(dtype == np.float64):
        want = jax.grad(lambda *a: case[1](jnp, *a), argnums=tuple(range(n)))(*args)
    tol = 1e-9 if dtype == np.float64 else 2e-4
    for g, w in zip(gs, want):
        np.testing.assert_allclose(g, np.asarray(w), rtol=tol, atol=tol)


# --- random programs -------------------------------------------------------------------------
UNARY = [
    ("sin", lambda np, a: np.sin(a)), ("tanh", lambda np, a: np.tanh(a)),
    ("square", lambda np, a: np.square(a)), ("exp_tanh", lambda np, a: np.exp(np.tanh(a))),
    ("log1p_sq", lambda np, a: np.log1p(a * a)), ("sqrt1", lambda np, a: np.sqrt(a * a + 1.0)),
    ("abs", lambda np, a: np.abs(a)), ("neg", lambda np, a: -a),
    ("cumsum", lambda np, a: np.cumsum(a)), ("flip", lambda np, a: np.flip(a)),
    ("clip", lambda np, a: np.clip(a, -1.0, 1.0)), ("cosh", lambda np, a: np.cosh(a)),
    ("roll", lambda np, a: np.concatenate([a[1:], a[:1]])), ("scale", lambda np, a: 2.5 * a),
    ("sigmoid", lambda np, a: 1.0 / (1.0 + np.exp(-a))),
]
BINARY = [
    ("add", lambda np, a, b: a + b), ("sub", lambda np, a, b: np.subtract(a, b)),
    ("mul", lambda np, a, b: a * b), ("div", lambda np, a, b: a / (1.0 + b * b)),
    ("maximum", lambda np, a, b: np.maximum(a, b)), ("minimum", lambda np, a, b: np.minimum(a, b)),
    ("where", lambda np, a, b: np.where(a > b, a, b * 2.0)),
    ("logaddexp", lambda np, a, b: np.logaddexp(a, b)),
    ("outer_row", lambda np, a, b: np.outer(a, b) @ np.ones(a.shape[0])),
]
REDUCE = [
    ("sum", lambda np, a: np.sum(a)), ("mean", lambda np, a: np.mean(a)),
    ("max", lambda np, a: np.max(a)), ("norm", lambda np, a: np.linalg.norm(a)),
    ("var", lambda np, a: np.var(a)), ("std", lambda np, a: np.std(a) + 0.0),
    ("prod", lambda np, a: np.prod(np.tanh(a))), ("dot_self", lambda np, a: np.dot(a, a)),
    ("einsum", lambda np, a: np.einsum("i,i->", a, a)),
]


@st.composite
def programs(draw):
    steps = []
    for k in range(draw(st.integers(1, 5))):
        nvals = 2 + k
        if draw(st.booleans()):
            steps.append(("u", draw(st.integers(0, len(UNARY) - 1)),
                          draw(st.integers(0, nvals - 1))))
        else:
            steps.append(("b", draw(st.integers(0, len(BINARY) - 1)),
                          draw(st.integers(0, nvals - 1)), draw(st.integers(0, nvals - 1))))
    return steps, draw(st.integers(0, len(REDUCE) - 1))


def run_program(prog, np, x, y):
    steps, r = prog
    vals = [x, y]
    for s in steps:
        if s[0] == "u":
            vals.append(UNARY[s[1]][1](np, vals[s[2]]))
        else:
            vals.append(BINARY[s[1]][1](np, vals[s[2]], vals[s[3]]))
    return REDUCE[r][1](np, vals[-1])


@settings(max_examples=40, deadline=None, derandomize=True)
@given(programs(), st.integers(0, 1000))
def test_random_programs_vs_finite_differences(prog, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-1.5, 1.5, 4), rng.uniform(-1.5, 1.5, 4)
    f = lambda a, b: run_program(prog, np, a, b)  # noqa: E731
    v, (gx, gy) = adjit.value_and_grad(f, argnums=(0, 1))(x, y)
    assert v == pytest.approx(f(x, y), rel=1e-12, abs=1e-12)
    wx, wy = fd(f, [x, y])
    np.testing.assert_allclose(gx, wx, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gy, wy, rtol=1e-4, atol=1e-5)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(programs(), st.integers(0, 1000))
def test_random_programs_vs_jax(jax, prog, seed):
    import jax.numpy as jnp
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-1.5, 1.5, 4), rng.uniform(-1.5, 1.5, 4)
    gx, gy = adjit.grad(lambda a, b: run_program(prog, np, a, b), argnums=(0, 1))(x, y)
    with jax.enable_x64(True):
        wx, wy = jax.grad(lambda a, b: run_program(prog, jnp, a, b), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, np.asarray(wx), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(gy, np.asarray(wy), rtol=1e-9, atol=1e-9)
