"""Quiet floating point: adjit's NumPy evaluation emits no "invalid value encountered in log"
RuntimeWarnings. PyTorch, JAX and adjit's own native code return nan/inf silently, so the
interpreted path must too (a `where(m, x.log(), x)` computes the log of the discarded negative
elements, which the user never sees).

`np.errstate` would do it but costs about half an eager op (it builds its state object on every
entry); NumPy >= 2 keeps that state in a context variable, so setting the variable to one
prebuilt "ignore everything" state around an evaluation costs ~0.1 us:

    token = FP_STATE.set(FP_QUIET)
    try:
        ...NumPy calls...
    finally:
        FP_STATE.reset(token)

With an older NumPy (no such variable) `FP_STATE` is a context variable nobody reads: the
computation is the same and NumPy's warnings are not suppressed.
"""
from __future__ import annotations

import contextvars

try:  # NumPy >= 2
    from numpy._core._ufunc_config import _extobj_contextvar as FP_STATE, _make_extobj
    FP_QUIET = _make_extobj(all="ignore")
except (ImportError, TypeError):  # pragma: no cover - NumPy 1.x
    FP_STATE = contextvars.ContextVar("adjit_fp_state_unused", default=None)
    FP_QUIET = None

# the bound methods, made once: `FP_STATE.set(...)` builds a bound method per call (~40 ns of
# the ~130 a set and reset cost), and the eager tape pays it on every operation
fp_set, fp_reset = FP_STATE.set, FP_STATE.reset


def quiet_fp(f):
    """Decorate `f` to run its NumPy calls quietly (see above)."""
    import functools

    @functools.wraps(f)
    def quiet(*args, **kwargs):
        token = FP_STATE.set(FP_QUIET)
        try:
            return f(*args, **kwargs)
        finally:
            FP_STATE.reset(token)
    return quiet
