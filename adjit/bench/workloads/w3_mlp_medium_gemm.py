"""W3g: the reference row of W3 - the five GEMMs of one W3 step alone, nothing else.

Forward X@W1 [256,784]x[784,512] and h@W2 [256,512]x[512,10]; backward h.T@dz, dz@W2.T and
X.T@da, with the same shapes and transposes (views, so BLAS gets a transpose flag) as the
hand-written NumPy step of W3. The `numpy` row is NumPy's @ (OpenBLAS); `adjit` runs the same
five products through adjit.jit (its BLAS path); `torch` and `jax` their own matmuls. W3's
target compares adjit's W3 median with this table's `numpy` median (<= 1.15x). The other peers
have no separate GEMM path: they show as `missing` here.
"""
from __future__ import annotations

import numpy as np

from adjit.bench import Workload, torch_threads
from ._common import impls, jax_ready
from ._mlp import make_inputs

_inputs = make_inputs(256, 784, 512, 10)


def inputs(seed):
    W1, b1, W2, b2, X, y = _inputs(seed)
    rng = np.random.default_rng(seed + 1)
    h = np.maximum(rng.standard_normal((256, 512)), 0).astype(np.float32)
    dz = (rng.standard_normal((256, 10)) / 256).astype(np.float32)
    da = (rng.standard_normal((256, 512)) / 256).astype(np.float32)
    return X, W1, W2, h, dz, da


def gemms(X, W1, W2, h, dz, da):
    return X @ W1, h @ W2, h.T @ dz, dz @ W2.T, X.T @ da


def numpy_setup(inp):
    return lambda: gemms(*inp)


def adjit_setup(inp):
    import adjit
    f = adjit.jit(gemms)
    return lambda: f(*inp)


def torch_setup(inp):
    torch = torch_threads()
    args = [torch.from_numpy(a) for a in inp]
    return lambda: gemms(*args)


def jax_setup(inp):
    import jax
    f = jax.jit(gemms)
    args = [jax.numpy.asarray(a) for a in inp]
    return lambda: jax_ready(f(*args))


def workload():
    return Workload(
        name="W3g", title="W3's five GEMMs alone (reference row)", inputs=inputs,
        impls=impls(adjit=adjit_setup, numpy=numpy_setup, torch=torch_setup, jax=jax_setup),
        rtol_f32=2e-4, atol_f32=1e-5)
