"""Derivative rules record no equation whose result another equation already gives: a reshape
of a reshape's result reshapes the original, -(-x) is x and -full(v) is full(-v), a select's
+0 branch is a literal (no `full` per select), and reduce_max/min's vjp marks its positions
with `eq or isnan` (a NaN element makes its slice's extremum NaN). The values at the special
points (ties, NaN, signed zeros, zero-size, keepdims) stay those of docs/ir.md, checked against
JAX (x64) and PyTorch."""
from __future__ import annotations

import numpy as np
import pytest

import adjit

try:
    from tests.peers import require
except ImportError:
    from peers import require


def _eqns(g):
    """name -> (primitive, operand names) of a printed graph."""
    out = {}
    for line in str(g).splitlines()[1:]:
        if " = " not in line:
            continue
        lhs, rhs = line.split(" = ", 1)
        name = lhs.strip().split(":")[0]
        words = rhs.split()
        prim = words[0].split("[")[0]
        out[name] = (prim, [w for w in rhs.split("]")[-1].split() if w.isidentifier()]
                     if "[" in words[0] else words[1:], rhs)
    return out


def _w2_loss(*args):
    from adjit.bench.workloads import _mlp  # W2's own loss, as the benchmark runs it
    return _mlp.loss(*args)


def _w2_inputs():
    from adjit.bench.workloads import _mlp
    return _mlp.make_inputs(32, 20, 16, 5)(0)


def test_w2_adjoint_records_no_redundant_equation():
    inp = _w2_inputs()
    eq = _eqns(adjit.make_ir(adjit.value_and_grad(_w2_loss, argnums=(0, 1, 2, 3)))(*inp))
    for name, (prim, args, _) in eq.items():
        if prim in ("reshape", "neg"):
            src = eq.get(args[0], (None,))[0]
            assert src not in (prim, "full"), (name, prim, args, src)
        if prim == "select":
            for a in args[1:]:  # a literal +0 instead of a `full` of zeros
                assert "value=0.0" not in eq.get(a, (0, 0, ""))[2], (name, args)
    # reduce_max's mask: eq, ne (isnan), or -- no `ne big big` / `and`
    assert sum(e[0] == "and" for e in eq.values()) == 0


def test_w2_gradient_matches_jax():
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    inp = [np.asarray(a, np.float64) if a.dtype.kind == "f" else a for a in _w2_inputs()]

    def jloss(W1, b1, W2, b2, X, y):
        h = jnp.maximum(X @ W1 + b1, 0)
        z = h @ W2 + b2
        z = z - jnp.max(z, axis=1, keepdims=True)
        logp = z - jnp.log(jnp.sum(jnp.exp(z), axis=1, keepdims=True))
        return -jnp.mean(logp[jnp.arange(X.shape[0]), y])
    v, g = adjit.jit(adjit.value_and_grad(_w2_loss, argnums=(0, 1, 2, 3)))(*inp)
    jv, jg = jax.value_and_grad(jloss, argnums=(0, 1, 2, 3))(*inp)
    np.testing.assert_allclose(v, jv, rtol=1e-12)
    for a, b in zip(g, jg):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-10, atol=1e-14)


def _bits_equal(got, want, label):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (label, got.shape, want.shape)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=label)
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-12, atol=0, err_msg=label)
    nz = ok & (want != 0)
    np.testing.assert_array_equal(np.signbit(got[nz]), np.signbit(want[nz]), err_msg=label)
    # docs/ir.md: a lost operand / a position off the extremum gets +0 (a select, not a product
    # with a 0/1 mask: JAX gives -0 there for a negative cotangent)
    assert not np.signbit(got[ok & (want == 0)]).any(), (label, got)


_MAX_CASES = [  # (x, axis, keepdims): ties, signed-zero ties, NaN-free rows next to NaN rows
    (np.array([[1.0, 3.0, 3.0, 2.0], [-0.0, 0.0, -1.0, -0.0], [5.0, 5.0, 5.0, 5.0]]), 1, False),
    (np.array([[1.0, 3.0, 3.0, 2.0], [-0.0, 0.0, -1.0, -0.0], [5.0, 5.0, 5.0, 5.0]]), 0, True),
    (np.array([[1.0, 3.0, 3.0, 2.0], [-0.0, 0.0, -1.0, -0.0]]), (0, 1), False),
    (np.zeros((0, 3)), 1, False),  # zero-size, reduced along a non-empty axis
    (np.zeros((0, 3)), 1, True),
]


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("case", range(len(_MAX_CASES)))
@pytest.mark.parametrize("tier", ["grad", "jit"])
def test_extremum_vjp_ties_zero_size_keepdims_vs_jax(name, case, tier):
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    x, axis, keep = _MAX_CASES[case]
    w = np.arange(1.0, 1.0 + x.size // max(x.shape[1] if axis == 1 else 1, 1) + 7)

    def f(m, a):
        r = getattr(m, name)(a, axis=axis, keepdims=keep)
        return m.sum(r * w[:r.size].reshape(r.shape)) if r.size else m.sum(r)
    g = adjit.grad(lambda a: f(np, a))
    got = (adjit.jit(g) if tier == "jit" else g)(x)
    want = np.asarray(jax.grad(lambda a: f(jnp, a))(jnp.asarray(x)))
    _bits_equal(got, want, (name, case, tier))


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("tier", ["grad", "jit"])
def test_extremum_vjp_nan_vs_torch(name, tier):
    # docs/ir.md: a NaN in the slice makes the result NaN and its gradient is shared evenly
    # among the NaN positions (PyTorch's full reduction `max()`), +0 elsewhere
    torch = require("torch")
    for x in (np.array([1.0, np.nan, 3.0, np.nan, 3.0]), np.array([np.nan, 2.0, -0.0]),
              np.array([2.0, -np.inf, np.inf, np.inf])):
        g = adjit.grad(lambda a: getattr(np, name)(a) * 3.0)
        got = (adjit.jit(g) if tier == "jit" else g)(x)
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        (getattr(t, name)() * 3.0).backward()
        _bits_equal(got, t.grad.numpy(), (name, x))


def test_extremum_vjp_nan_rows_along_axis():
    # a NaN row shares among its NaN positions; the row without NaN among its ties
    x = np.array([[np.nan, 1.0, np.nan, 4.0], [2.0, 4.0, 4.0, -1.0]])
    got = adjit.jit(adjit.grad(lambda a: np.sum(np.max(a, axis=1) * np.array([2.0, 6.0]))))(x)
    _bits_equal(got, [[1.0, 0.0, 1.0, 0.0], [0.0, 3.0, 3.0, 0.0]], "nan rows")


@pytest.mark.parametrize("tier", ["grad", "jit"])
def test_maximum_minimum_select_vjp_ties_nan_signed_zeros_vs_jax(tier):
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    x = np.array([1.0, 2.0, 2.0, -0.0, 0.0, np.nan, 3.0, -5.0])
    y = np.array([2.0, 1.0, 2.0, 0.0, -0.0, 1.0, np.nan, -5.0])
    ct = np.array([1.0, -2.0, 3.0, -4.0, 5.0, -6.0, 7.0, -8.0])
    fs = {"maximum": lambda m, a, b: m.maximum(a, b), "minimum": lambda m, a, b: m.minimum(a, b),
          "where": lambda m, a, b: m.where(a > b, a, b),
          "relu": lambda m, a, b: m.maximum(a, 0.0) + b}
    for label, f in fs.items():
        g = adjit.grad(lambda a, b: np.sum(f(np, a, b) * ct), argnums=(0, 1))
        got = (adjit.jit(g) if tier == "jit" else g)(x, y)
        want = jax.grad(lambda a, b: jnp.sum(f(jnp, a, b) * ct), argnums=(0, 1))(
            jnp.asarray(x), jnp.asarray(y))
        for k in range(2):
            _bits_equal(got[k], np.asarray(want[k]), (label, k))


@pytest.mark.parametrize("tier", ["grad", "jit"])
def test_reshape_chain_and_double_negation_vs_jax(tier):
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    x = np.linspace(-1.0, 2.0, 12).reshape(3, 4)

    def f(m, a):
        s = m.sum(a, axis=1, keepdims=True)  # reduce, reshape (3,) -> (3, 1)
        r = (a * s).reshape(2, 6).reshape(12).reshape(4, 3)
        return -m.mean(-(-(m.exp(r) * r)))
    g = adjit.value_and_grad(lambda a: f(np, a))
    v, got = (adjit.jit(g) if tier == "jit" else g)(x)
    jv, want = jax.value_and_grad(lambda a: f(jnp, a))(jnp.asarray(x))
    np.testing.assert_allclose(v, jv, rtol=1e-13)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-12, atol=1e-15)


def test_double_negation_keeps_nan_bits():
    # -(-x) folds to x: bit for bit NumPy's -(-x), NaN sign and payload included
    x = np.array([1.5, -0.0, np.inf], np.float32)
    x = np.concatenate([x, np.array([0x7fc12345, 0xffc00001], np.uint32).view(np.float32)])
    got = adjit.jit(lambda a: -(-a) * 1.0)(x)
    np.testing.assert_array_equal(np.asarray(got).view(np.uint32), (-(-x) * np.float32(1.0))
                                  .view(np.uint32))


@pytest.mark.parametrize("tier", ["grad", "jit"])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_constant_seed_folds_keep_ieee_bits_vs_jax(tier, dt):
    # mean's seed 1/n (inexact for n = 3, 7), a division by 0 (inf) and by -0 (-inf), 0/0 (NaN),
    # a negated seed: a `full` of the quotient computed in the dtype, as JAX divides
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    fs = [lambda m, a: m.mean(a), lambda m, a: -m.mean(a, axis=1).sum() / 7.0,
          lambda m, a: m.sum(a) / 0.0, lambda m, a: -m.sum(a) / -0.0,
          lambda m, a: (m.sum(a) * 0.0) / 0.0]
    x = np.linspace(-1.0, 1.0, 6).reshape(2, 3).astype(dt)
    for k, f in enumerate(fs):
        g = adjit.grad(lambda a: f(np, a))
        got = np.asarray((adjit.jit(g) if tier == "jit" else g)(x))
        want = np.asarray(jax.grad(lambda a: f(jnp, a))(jnp.asarray(x)))
        if k == 1:  # JAX multiplies by 1/n in f32: NumPy's chain of IEEE divisions instead
            want = np.full(x.shape, -(dt(1.0) / dt(7.0)) / dt(3.0), dt)
        assert got.dtype == want.dtype, (k, got.dtype, want.dtype)
        np.testing.assert_array_equal(got, want, err_msg=str(k))
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want), err_msg=str(k))


@pytest.mark.parametrize("tier", ["grad", "jit"])
def test_folds_do_not_cross_no_grad_vs_jax(tier):
    # under no_grad the fold must not hand back the original value (it carries a derivative)
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    x = np.linspace(-1.0, 2.0, 6).reshape(2, 3)

    def f(a):
        r, n = a.reshape(6), -a
        with adjit.no_grad():
            b = r.reshape(2, 3)
            c = -n
        return np.sum(b * a) + np.sum(c * a * a)

    def jf(a):
        sg = jax.lax.stop_gradient
        return jnp.sum(sg(a) * a) + jnp.sum(sg(a) * a * a)
    g = adjit.grad(f)
    got = (adjit.jit(g) if tier == "jit" else g)(x)
    np.testing.assert_allclose(got, np.asarray(jax.grad(jf)(jnp.asarray(x))), rtol=1e-13)
