"""One way to run a Graph: native code when it can be compiled, else the reference interpreter.

Every user of graphs (Tensor.backward, grad, jit) calls `run_graph`, so switching the backend
(ADJIT_DISABLE_JIT=1 for debugging) happens in one place.
"""
from __future__ import annotations

import os

from .ir.graph import eval_graph


def jit_enabled() -> bool:
    return os.environ.get("ADJIT_DISABLE_JIT", "") in ("", "0")


def run_graph(g, args, consts=None):
    """Evaluate `g` on NumPy arrays (inputs by position, then the constvars' bindings)."""
    return eval_graph(g, args, consts)
