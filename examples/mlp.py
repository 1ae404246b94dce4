"""A one-hidden-layer MLP's loss in plain NumPy, for `adjit dump`, `adjit graph` and the demo.

    adjit dump examples/mlp.py:loss --args "f32[32,20] f32[20,16] f32[16]" --grad 1,2
"""
import numpy as np


def loss(x, w, v):
    h = np.tanh(x @ w)
    return np.mean((h @ v) ** 2)


def layer(x, w):
    """Operator-style code only: traceable even without the NumPy front."""
    h = x @ w
    return (h * h + 2 * h).sum()
