"""W3 mlp-medium, float32: W2's step at MNIST-like size, X[256,784], W1[784,512], W2[512,10].

About 0.5 GFLOP per step, almost all in five GEMMs (forward X@W1, h@W2; backward h.T@dz,
dz@W2.T, X.T@da): it should be BLAS-bound. `W3g` (w3_mlp_medium_gemm.py) times those five GEMMs
alone as the reference row. The implementations are in _mlp.py (shared with W2).
"""
from __future__ import annotations

from . import _mlp


def workload():
    return _mlp.workload("W3", "mlp-medium f32, value_and_grad", 256, 784, 512, 10)
