"""W2 mlp-small, float32: one training step's loss and gradients of a small MLP classifier.

X[32,20], W1[20,16], b1[16], W2[16,5], b2[5], int labels[32]; the mean softmax cross-entropy of
relu(X @ W1 + b1) @ W2 + b2; value and the gradients of the four parameters. Tiny GEMMs: this
measures per-call overhead (dispatch, tape or graph bookkeeping) more than arithmetic.
The implementations are in _mlp.py (shared with W3).
"""
from __future__ import annotations

from . import _mlp


def workload():
    return _mlp.workload("W2", "mlp-small f32, value_and_grad", 32, 20, 16, 5)
