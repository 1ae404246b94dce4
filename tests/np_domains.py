"""Sampling domains of the NumPy dispatch table (issue 15 item 4), one entry per dispatched
function (np_dispatch.FUNCS) and ufunc (np_dispatch.UFUNCS): tests/test_np_dispatch_fuzz.py
fails for a dispatched name without one, so a new function must declare its domain here.

An entry `D(lo, hi, call, avoid=..., jax=..., fwd=...)`:
- `call(np_, x)` uses the function on x, a (3, 4) float64 array whose 12 values are distinct
  (at least 0.4 * (hi - lo) / 12 apart: no ties for sort, max, median, ...) in [lo, hi];
  `np_` is NumPy (adjit traces it) or jax.numpy. It returns an array or a tuple of arrays.
  Second operands are built from x (np_.flip(x) pairs every element with a different one).
- `avoid=(period, offset)`: the function jumps or kinks at offset + k * period; sampled values
  closer than 0.03 to one are moved 0.06 away (floor, round, abs, clip, comparisons, ...).
- `jax=`: JAX's spelling where jax.numpy differs or cannot trace a data-dependent size
  (nonzero, unique): the same value up to entries that `term` maps to zero.
- `fwd=False`: reverse mode only.
`SKIP` names the dispatched functions without a derivative to check, with the reason.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional


class D(NamedTuple):
    lo: float
    hi: float
    call: Callable
    avoid: Optional[tuple] = None
    jax: Optional[Callable] = None
    fwd: bool = True


INT = (1.0, 0.0)   # jumps at the integers
HALF = (1.0, 0.5)  # jumps at the half-integers


def F(np_, x):
    return np_.flip(x)


def _spd(np_, x):
    a = x[:, :3]
    return a @ a.T + 3.0 * np_.eye(3)


def _where(np_, c, x):
    return np_.where(c, x, x * x)


SKIP = {
    "copyto": "writes into its first argument in place (no traced result; JAX has none)",
    "put_along_axis": "adjit refuses it (it writes into its argument in place)",
    "empty_like": "its values are whatever memory holds",
}

DOMAINS = {
    # --- ufuncs ------------------------------------------------------------------------------
    "absolute": D(-2, 2, lambda np_, x: np_.absolute(x), INT),
    "fabs": D(-2, 2, lambda np_, x: np_.fabs(x), INT),
    "add": D(-2, 2, lambda np_, x: np_.add(x, F(np_, x))),
    "subtract": D(-2, 2, lambda np_, x: np_.subtract(x, F(np_, x))),
    "multiply": D(-2, 2, lambda np_, x: np_.multiply(x, F(np_, x))),
    "divide": D(0.5, 2, lambda np_, x: np_.divide(x, F(np_, x))),
    "negative": D(-2, 2, lambda np_, x: np_.negative(x)),
    "positive": D(-2, 2, lambda np_, x: np_.positive(x) * x),
    "power": D(0.3, 2, lambda np_, x: np_.power(x, F(np_, x))),
    "float_power": D(0.3, 2, lambda np_, x: np_.float_power(x, 1.7)),
    "square": D(-2, 2, lambda np_, x: np_.square(x)),
    "reciprocal": D(0.5, 2, lambda np_, x: np_.reciprocal(x)),
    "sqrt": D(0.2, 2, lambda np_, x: np_.sqrt(x)),
    "cbrt": D(0.2, 2, lambda np_, x: np_.cbrt(x)),
    "exp": D(-2, 2, lambda np_, x: np_.exp(x)),
    "exp2": D(-2, 2, lambda np_, x: np_.exp2(x)),
    "expm1": D(-2, 2, lambda np_, x: np_.expm1(x)),
    "log": D(0.2, 3, lambda np_, x: np_.log(x)),
    "log2": D(0.2, 3, lambda np_, x: np_.log2(x)),
    "log10": D(0.2, 3, lambda np_, x: np_.log10(x)),
    "log1p": D(-0.5, 3, lambda np_, x: np_.log1p(x)),
    "logaddexp": D(-2, 2, lambda np_, x: np_.logaddexp(x, F(np_, x))),
    "logaddexp2": D(-2, 2, lambda np_, x: np_.logaddexp2(x, F(np_, x))),
    "sin": D(-3, 3, lambda np_, x: np_.sin(x)),
    "cos": D(-3, 3, lambda np_, x: np_.cos(x)),
    "tan": D(-1.2, 1.2, lambda np_, x: np_.tan(x)),
    "arcsin": D(-0.9, 0.9, lambda np_, x: np_.arcsin(x)),
    "arccos": D(-0.9, 0.9, lambda np_, x: np_.arccos(x)),
    "arctan": D(-3, 3, lambda np_, x: np_.arctan(x)),
    "arctan2": D(-2, 2, lambda np_, x: np_.arctan2(x, F(np_, x) + 3.0)),
    "hypot": D(-2, 2, lambda np_, x: np_.hypot(x, F(np_, x))),
    "sinh": D(-2, 2, lambda np_, x: np_.sinh(x)),
    "cosh": D(-2, 2, lambda np_, x: np_.cosh(x)),
    "tanh": D(-2, 2, lambda np_, x: np_.tanh(x)),
    "arcsinh": D(-2, 2, lambda np_, x: np_.arcsinh(x)),
    "arccosh": D(1.1, 3, lambda np_, x: np_.arccosh(x)),
    "arctanh": D(-0.9, 0.9, lambda np_, x: np_.arctanh(x)),
    "deg2rad": D(-2, 2, lambda np_, x: np_.deg2rad(x)),
    "radians": D(-2, 2, lambda np_, x: np_.radians(x)),
    "rad2deg": D(-2, 2, lambda np_, x: np_.rad2deg(x)),
    "degrees": D(-2, 2, lambda np_, x: np_.degrees(x)),
    "floor": D(0.1, 3.9, lambda np_, x: np_.floor(x) * x, INT),
    "ceil": D(0.1, 3.9, lambda np_, x: np_.ceil(x) * x, INT),
    "trunc": D(-2, 2, lambda np_, x: np_.trunc(x) * x, INT),
    "rint": D(0.1, 3.9, lambda np_, x: np_.rint(x) * x, HALF),
    "remainder": D(0.1, 3.9, lambda np_, x: np_.remainder(x, 0.5), (0.5, 0.0)),
    "fmod": D(-2, 2, lambda np_, x: np_.fmod(x, 0.5), (0.5, 0.0)),
    "floor_divide": D(0.1, 3.9, lambda np_, x: np_.floor_divide(x, 0.5) * x, (0.5, 0.0)),
    "divmod": D(0.1, 3.9, lambda np_, x: np_.divmod(x, 0.5), (0.5, 0.0)),
    "maximum": D(-2, 2, lambda np_, x: np_.maximum(x, F(np_, x))),
    "minimum": D(-2, 2, lambda np_, x: np_.minimum(x, F(np_, x))),
    "fmax": D(-2, 2, lambda np_, x: np_.fmax(x, F(np_, x))),
    "fmin": D(-2, 2, lambda np_, x: np_.fmin(x, F(np_, x))),
    "copysign": D(0.1, 3.9, lambda np_, x: np_.copysign(x, F(np_, x) - 2.0), INT),
    "heaviside": D(0.1, 3.9, lambda np_, x: np_.heaviside(x - 2.0, 0.5) * x, INT),
    "sign": D(-2, 2, lambda np_, x: np_.sign(x) * x * x, INT),
    "signbit": D(-2, 2, lambda np_, x: _where(np_, np_.signbit(x), x), INT),
    "isfinite": D(-2, 2, lambda np_, x: _where(np_, np_.isfinite(x), x)),
    "isinf": D(-2, 2, lambda np_, x: _where(np_, np_.isinf(x), x)),
    "isnan": D(-2, 2, lambda np_, x: _where(np_, np_.isnan(x), x)),
    "conjugate": D(-2, 2, lambda np_, x: np_.conjugate(x) * x),
    "equal": D(-2, 2, lambda np_, x: _where(np_, np_.equal(x, F(np_, x)), x)),
    "not_equal": D(-2, 2, lambda np_, x: _where(np_, np_.not_equal(x, F(np_, x)), x)),
    "less": D(-2, 2, lambda np_, x: _where(np_, np_.less(x, F(np_, x)), x)),
    "less_equal": D(-2, 2, lambda np_, x: _where(np_, np_.less_equal(x, F(np_, x)), x)),
    "greater": D(-2, 2, lambda np_, x: _where(np_, np_.greater(x, F(np_, x)), x)),
    "greater_equal": D(-2, 2, lambda np_, x: _where(np_, np_.greater_equal(x, F(np_, x)), x)),
    "logical_and": D(0.1, 3.9, lambda np_, x: _where(np_, np_.logical_and(x > 2, F(np_, x) > 1),
                                                     x), INT),
    "logical_or": D(0.1, 3.9, lambda np_, x: _where(np_, np_.logical_or(x > 2, F(np_, x) > 3),
                                                    x), INT),
    "logical_not": D(0.1, 3.9, lambda np_, x: _where(np_, np_.logical_not(x > 2), x), INT),
    "bitwise_and": D(0.1, 3.9, lambda np_, x: _where(
        np_, np_.bitwise_and(np_.floor(x).astype(int), 1) == 1, x), INT),
    "bitwise_or": D(0.1, 3.9, lambda np_, x: _where(
        np_, np_.bitwise_or(np_.floor(x).astype(int), 1) == 3, x), INT),
    "bitwise_xor": D(0.1, 3.9, lambda np_, x: _where(
        np_, np_.bitwise_xor(np_.floor(x).astype(int), 2) == 0, x), INT),
    "invert": D(0.1, 3.9, lambda np_, x: _where(np_, np_.invert(x > 2), x), INT),
    "matmul": D(-2, 2, lambda np_, x: np_.matmul(x, x.T)),
    # --- functions ---------------------------------------------------------------------------
    "all": D(0.1, 3.9, lambda np_, x: np_.where(np_.all(x > 0.05), x, -x)),
    "any": D(0.1, 3.9, lambda np_, x: np_.where(np_.any(x > 5), x, -x)),
    "allclose": D(-2, 2, lambda np_, x: np_.where(np_.allclose(x, x + 1e-12), x, -x)),
    "isclose": D(-2, 2, lambda np_, x: _where(np_, np_.isclose(x, F(np_, x), atol=0.5), x)),
    "amax": D(-2, 2, lambda np_, x: np_.amax(x, axis=0)),
    "amin": D(-2, 2, lambda np_, x: np_.amin(x, axis=1)),
    "max": D(-2, 2, lambda np_, x: np_.max(x)),
    "min": D(-2, 2, lambda np_, x: np_.min(x, axis=0, keepdims=True)),
    "argmax": D(-2, 2, lambda np_, x: x.reshape(-1)[np_.argmax(x)]),
    "argmin": D(-2, 2, lambda np_, x: np_.take_along_axis(
        x, np_.expand_dims(np_.argmin(x, axis=1), 1), axis=1)),
    "sum": D(-2, 2, lambda np_, x: np_.sum(x * x, axis=1)),
    "mean": D(-2, 2, lambda np_, x: np_.mean(x * x, axis=0)),
    "prod": D(-2, 2, lambda np_, x: np_.prod(x, axis=1)),
    "var": D(-2, 2, lambda np_, x: np_.var(x, axis=1)),
    "std": D(-2, 2, lambda np_, x: np_.std(x, ddof=1)),
    "cumsum": D(-2, 2, lambda np_, x: np_.cumsum(x, axis=1)),
    "cumprod": D(-2, 2, lambda np_, x: np_.cumprod(x, axis=1)),
    "nansum": D(0.1, 3.9, lambda np_, x: np_.nansum(np_.where(x > 3, np_.nan, x), axis=0), INT),
    "nanprod": D(0.1, 3.9, lambda np_, x: np_.nanprod(np_.where(x > 3, np_.nan, x), axis=1),
                 INT),
    "nanmean": D(0.1, 3.9, lambda np_, x: np_.nanmean(np_.where(x > 3, np_.nan, x), axis=1),
                 INT),
    "nanmax": D(0.1, 3.9, lambda np_, x: np_.nanmax(np_.where(x > 3, np_.nan, x), axis=0),
                INT),
    "nanmin": D(0.1, 3.9, lambda np_, x: np_.nanmin(np_.where(x < 1, np_.nan, x), axis=1), INT),
    "nanvar": D(-2, 2, lambda np_, x: np_.nanvar(x, axis=1)),
    "nanstd": D(-2, 2, lambda np_, x: np_.nanstd(x, axis=0)),
    "nan_to_num": D(0.1, 3.9, lambda np_, x: np_.nan_to_num(np_.where(x > 3, np_.inf, x),
                                                            posinf=5.0) * x, INT),
    "clip": D(0.1, 3.9, lambda np_, x: np_.clip(x, 1.0, 3.0), INT),
    "around": D(0.1, 3.9, lambda np_, x: np_.around(x, 1) * x, (0.1, 0.05)),
    "round": D(0.1, 3.9, lambda np_, x: np_.round(x) * x, HALF),
    "fix": D(-2, 2, lambda np_, x: np_.fix(x) * x, INT, jax=lambda jnp, x: jnp.trunc(x) * x),
    "sinc": D(-2, 2, lambda np_, x: np_.sinc(x), INT),
    "real": D(-2, 2, lambda np_, x: np_.real(x) * x),
    "imag": D(-2, 2, lambda np_, x: np_.imag(x) + x),
    "where": D(0.1, 3.9, lambda np_, x: np_.where(x > 2, x, np_.sin(x)), INT),
    "select": D(0.1, 3.9, lambda np_, x: np_.select([x > 3, x < 1], [x, x * x], 0.5), INT),
    "piecewise": D(0.1, 3.9, lambda np_, x: np_.piecewise(x, [x > 2], [np_.sin, np_.cos]), INT),
    # shapes and copies
    "copy": D(-2, 2, lambda np_, x: np_.copy(x) * x),
    "zeros_like": D(-2, 2, lambda np_, x: x + np_.zeros_like(x)),
    "ones_like": D(-2, 2, lambda np_, x: x * np_.ones_like(x)),
    "full_like": D(-2, 2, lambda np_, x: x * np_.full_like(x, 2.5)),
    "shape": D(-2, 2, lambda np_, x: x * np_.shape(x)[1]),
    "size": D(-2, 2, lambda np_, x: x * np_.size(x)),
    "ndim": D(-2, 2, lambda np_, x: x * np_.ndim(x)),
    "reshape": D(-2, 2, lambda np_, x: np_.reshape(x, (4, 3)) * np_.arange(3.0)),
    "ravel": D(-2, 2, lambda np_, x: np_.ravel(x) * np_.arange(12.0)),
    "squeeze": D(-2, 2, lambda np_, x: np_.squeeze(x[None]) * np_.arange(4.0)),
    "expand_dims": D(-2, 2, lambda np_, x: np_.expand_dims(x, 1) * np_.arange(4.0)),
    "broadcast_to": D(-2, 2, lambda np_, x: np_.broadcast_to(x[0], (3, 4)) * x),
    "transpose": D(-2, 2, lambda np_, x: np_.transpose(x) * np_.arange(3.0)),
    "swapaxes": D(-2, 2, lambda np_, x: np_.swapaxes(x, 0, 1) * np_.arange(3.0)),
    "moveaxis": D(-2, 2, lambda np_, x: np_.moveaxis(x[None], 0, 2) * np_.arange(1.0, 2.0)),
    "rollaxis": D(-2, 2, lambda np_, x: np_.rollaxis(x, 1) * np_.arange(3.0)),
    "atleast_1d": D(-2, 2, lambda np_, x: np_.atleast_1d(x[0, 0]) * x),
    "atleast_2d": D(-2, 2, lambda np_, x: np_.atleast_2d(x[0]) * x),
    "atleast_3d": D(-2, 2, lambda np_, x: np_.atleast_3d(x) * np_.arange(4.0)[:, None]),
    "concatenate": D(-2, 2, lambda np_, x: np_.concatenate([x, x * x], axis=1)),
    "stack": D(-2, 2, lambda np_, x: np_.stack([x, x * x], axis=1)),
    "hstack": D(-2, 2, lambda np_, x: np_.hstack([x, x * x])),
    "vstack": D(-2, 2, lambda np_, x: np_.vstack([x, x[0] ** 3])),
    "dstack": D(-2, 2, lambda np_, x: np_.dstack([x, x * x])),
    "column_stack": D(-2, 2, lambda np_, x: np_.column_stack([x[0], x[1] ** 2])),
    "block": D(-2, 2, lambda np_, x: np_.block([[x, x * x], [x ** 3, x]])),
    "append": D(-2, 2, lambda np_, x: np_.append(x, x ** 2, axis=0)),
    "insert": D(-2, 2, lambda np_, x: np_.insert(x, 1, 5.0, axis=1) * np_.arange(5.0)),
    "delete": D(-2, 2, lambda np_, x: np_.delete(x, 1, axis=1) * np_.arange(3.0)),
    "pad": D(-2, 2, lambda np_, x: np_.pad(x, 1, mode="reflect") * np_.arange(6.0)),
    "split": D(-2, 2, lambda np_, x: tuple(np_.split(x, 2, axis=1))),
    "array_split": D(-2, 2, lambda np_, x: tuple(np_.array_split(x, 3, axis=1))),
    "hsplit": D(-2, 2, lambda np_, x: tuple(np_.hsplit(x, 2))),
    "vsplit": D(-2, 2, lambda np_, x: tuple(np_.vsplit(x, 3))),
    "dsplit": D(-2, 2, lambda np_, x: tuple(np_.dsplit(np_.stack([x, x * x], axis=2), 2))),
    "meshgrid": D(-2, 2, lambda np_, x: tuple(np_.meshgrid(x[0], x[1] ** 2))),
    "linspace": D(-2, 2, lambda np_, x: np_.linspace(x[0, 0], x[1, 1], 5)),
    "repeat": D(-2, 2, lambda np_, x: np_.repeat(x, 2, axis=0) * np_.arange(4.0)),
    "tile": D(-2, 2, lambda np_, x: np_.tile(x, (2, 1)) * np_.arange(4.0)),
    "roll": D(-2, 2, lambda np_, x: np_.roll(x, 1, axis=1) * np_.arange(4.0)),
    "flip": D(-2, 2, lambda np_, x: np_.flip(x, 1) * np_.arange(4.0)),
    "fliplr": D(-2, 2, lambda np_, x: np_.fliplr(x) * np_.arange(4.0)),
    "flipud": D(-2, 2, lambda np_, x: np_.flipud(x) * np_.arange(4.0)),
    "rot90": D(-2, 2, lambda np_, x: np_.rot90(x) * np_.arange(3.0)),
    "take": D(-2, 2, lambda np_, x: np_.take(x, np_.array([0, 2, 2]), axis=1)),
    "take_along_axis": D(-2, 2, lambda np_, x: np_.take_along_axis(
        x, np_.argsort(x, axis=1), axis=1) * np_.arange(4.0)),
    # diagonals, products, differences
    "diag": D(-2, 2, lambda np_, x: np_.diag(x, 1)),
    "diagflat": D(-2, 2, lambda np_, x: np_.diagflat(x[0]) * np_.arange(4.0)),
    "diagonal": D(-2, 2, lambda np_, x: np_.diagonal(x, -1)),
    "trace": D(-2, 2, lambda np_, x: np_.trace(x * x, 1)),
    "triu": D(-2, 2, lambda np_, x: np_.triu(x * x, 1)),
    "tril": D(-2, 2, lambda np_, x: np_.tril(x * x, -1)),
    "kron": D(-2, 2, lambda np_, x: np_.kron(x[:2, :2], x[1:, 2:])),
    "cross": D(-2, 2, lambda np_, x: np_.cross(x[:, :3], x[:, 1:])),
    "dot": D(-2, 2, lambda np_, x: np_.dot(x, x.T)),
    "vdot": D(-2, 2, lambda np_, x: np_.vdot(x, F(np_, x))),
    "inner": D(-2, 2, lambda np_, x: np_.inner(x, x)),
    "outer": D(-2, 2, lambda np_, x: np_.outer(x[0], x[1])),
    "tensordot": D(-2, 2, lambda np_, x: np_.tensordot(x, x.T, 1)),
    "einsum": D(-2, 2, lambda np_, x: np_.einsum("ij,kj->ik", x, x * x)),
    "diff": D(-2, 2, lambda np_, x: np_.diff(x * x, 2, axis=1)),
    "ediff1d": D(-2, 2, lambda np_, x: np_.ediff1d(x * x)),
    "gradient": D(-2, 2, lambda np_, x: tuple(np_.gradient(x * x))),
    # sorting and order statistics (values distinct: no ties)
    "sort": D(-2, 2, lambda np_, x: np_.sort(x, axis=0) * np_.arange(4.0)),
    "argsort": D(-2, 2, lambda np_, x: x.reshape(-1)[np_.argsort(x, axis=None)] *
                 np_.arange(12.0)),
    "partition": D(-2, 2, lambda np_, x: np_.partition(x, 1, axis=1)[:, 1],
                   jax=lambda jnp, x: jnp.sort(x, axis=1)[:, 1]),
    "argpartition": D(-2, 2, lambda np_, x: x.reshape(-1)[np_.argpartition(x, 5, axis=None)[5]],
                      jax=lambda jnp, x: x.reshape(-1)[jnp.argsort(x, axis=None)[5]]),
    "median": D(-2, 2, lambda np_, x: np_.median(x, axis=1)),
    "percentile": D(-2, 2, lambda np_, x: np_.percentile(x, 30.0)),
    "quantile": D(-2, 2, lambda np_, x: np_.quantile(x, np_.array([0.2, 0.7]), axis=0)),
    # data-dependent sizes (JAX: the same terms with zeros where the mask is False)
    "nonzero": D(0.1, 3.9, lambda np_, x: x[np_.nonzero(x > 2)], INT,
                 jax=lambda jnp, x: jnp.where(x > 2, x, 0.0)),
    "argwhere": D(0.1, 3.9, lambda np_, x: x[tuple(np_.argwhere(x > 2).T)], INT,
                  jax=lambda jnp, x: jnp.where(x > 2, x, 0.0)),
    "flatnonzero": D(0.1, 3.9, lambda np_, x: x.reshape(-1)[np_.flatnonzero(x > 2)], INT,
                     jax=lambda jnp, x: jnp.where(x > 2, x, 0.0)),
    "unique": D(-2, 2, lambda np_, x: np_.unique(np_.exp(x)) * np_.arange(12.0),
                jax=lambda jnp, x: jnp.sort(jnp.exp(x).reshape(-1)) * jnp.arange(12.0)),
    # linear algebra (symmetric positive definite matrices built from x)
    "linalg.norm": D(-2, 2, lambda np_, x: np_.linalg.norm(x)),
    "linalg.solve": D(-2, 2, lambda np_, x: np_.linalg.solve(_spd(np_, x), x[:, :2])),
    "linalg.inv": D(-2, 2, lambda np_, x: np_.linalg.inv(_spd(np_, x))),
    "linalg.det": D(-2, 2, lambda np_, x: np_.linalg.det(_spd(np_, x))),
    "linalg.slogdet": D(-2, 2, lambda np_, x: tuple(np_.linalg.slogdet(_spd(np_, x)))),
    "linalg.cholesky": D(-2, 2, lambda np_, x: np_.linalg.cholesky(_spd(np_, x))),
    "linalg.eigh": D(-2, 2, lambda np_, x: (np_.linalg.eigh(_spd(np_, x))[0],
                                            np_.linalg.eigh(_spd(np_, x))[1] ** 2)),
    "linalg.eigvalsh": D(-2, 2, lambda np_, x: np_.linalg.eigvalsh(_spd(np_, x))),
    "linalg.matrix_power": D(-2, 2, lambda np_, x: np_.linalg.matrix_power(_spd(np_, x), 3)),
    "linalg.multi_dot": D(-2, 2, lambda np_, x: np_.linalg.multi_dot([x, x.T, x])),
    # singular vectors only up to sign: squared; generic x has distinct singular values
    "linalg.svd": D(-2, 2, lambda np_, x: (np_.linalg.svd(x, full_matrices=False)[1],
                                           np_.linalg.svd(x, full_matrices=False)[0] ** 2)),
    "linalg.svdvals": D(-2, 2, lambda np_, x: np_.linalg.svdvals(x)),
    "linalg.matrix_norm": D(-2, 2, lambda np_, x: (np_.linalg.matrix_norm(x),
                                                   np_.linalg.matrix_norm(x, ord="nuc"),
                                                   np_.linalg.matrix_norm(x, ord=2))),
    "linalg.vector_norm": D(-2, 2, lambda np_, x: (np_.linalg.vector_norm(x),
                                                   np_.linalg.vector_norm(x, ord=3, axis=1))),
    "linalg.pinv": D(-2, 2, lambda np_, x: np_.linalg.pinv(x)),
    "linalg.lstsq": D(-2, 2, lambda np_, x: np_.linalg.lstsq(x.T, F(np_, x)[0], rcond=None)[0]),
    "linalg.qr": D(-2, 2, lambda np_, x: (np_.linalg.qr(x)[0], np_.linalg.qr(x.T)[1],
                                          np_.linalg.qr(x.T, mode="r"))),
}
