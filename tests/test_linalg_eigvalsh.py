"""np.linalg.eigvalsh through its own primitive (syevd jobz 'N', as NumPy: eigh's jobz 'V'
eigenvalues differ in the last bits): values bit for bit against NumPy (native, interpreter,
vmap, f32/f64, both UPLO), first and second derivatives against JAX x64."""
from __future__ import annotations

import numpy as np
import pytest

import adjit
from peers import require

jax = require("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

RNG = np.random.default_rng(61)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 3), (2, 8, 8), (20, 20), (0, 0)])
@pytest.mark.parametrize("uplo", ["L", "U"])
def test_eigvalsh_bit_for_bit(dt, shape, uplo):
    a = RNG.standard_normal(shape).astype(dt)
    a = a + a.swapaxes(-1, -2)
    want = np.linalg.eigvalsh(a, UPLO=uplo)
    for got in (adjit.jit(lambda x: np.linalg.eigvalsh(x * 1, UPLO=uplo))(a),
                adjit.vjp(lambda x: np.linalg.eigvalsh(x, UPLO=uplo), a)[0],
                adjit.vmap(lambda y: np.linalg.eigvalsh(y, UPLO=uplo))(a[None])[0]):
        got = np.asarray(got)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_eigvalsh_is_native_syevd():
    from adjit.codegen.lower import lower
    from adjit.ir import extract, new_trace, AType
    from adjit.ir.core import Node, REGISTRY, bind
    with new_trace() as tr:
        x = Node(None, AType((4, 4), "f64"), None, tr)
        g = extract([bind(REGISTRY["eigvalsh"], x, uplo="L")], tr, inputs=[x], name="ev")
    assert "lapack_dsyevd" in lower(g)[1]["imports"]


def test_eigvalsh_derivatives_vs_jax():
    a = RNG.standard_normal((2, 4, 4))
    w = RNG.standard_normal((2, 4))
    t = RNG.standard_normal((2, 4, 4))
    fa = lambda x: (np.sin(np.linalg.eigvalsh(x)) * w).sum()  # noqa: E731
    fj = lambda x: (jnp.sin(jnp.linalg.eigvalsh(x)) * w).sum()  # noqa: E731
    g = jax.grad(fj)(a)
    np.testing.assert_allclose(adjit.grad(fa)(a), g, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(adjit.jit(adjit.grad(fa))(a), g, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(adjit.jvp(fa, (a,), (t,))[1], jax.jvp(fj, (a,), (t,))[1],
                               rtol=1e-9, atol=1e-10)
    hv = jax.jvp(jax.grad(fj), (a,), (t,))[1]
    np.testing.assert_allclose(adjit.jvp(adjit.grad(fa), (a,), (t,))[1], hv, rtol=1e-7,
                               atol=1e-8)
    np.testing.assert_allclose(adjit.grad(lambda x: (adjit.grad(fa)(x) * t).sum())(a), hv,
                               rtol=1e-7, atol=1e-8)
