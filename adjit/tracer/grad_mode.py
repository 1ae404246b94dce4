"""Grad mode: `adjit.no_grad()`, `enable_grad()`, `set_grad_enabled(mode)` (context managers
and decorators, as in PyTorch) over the recorder's thread-local switch."""
from __future__ import annotations

import functools

from ..ir.core import STATE


class _GradMode:
    """Base of no_grad / enable_grad: a context manager and a decorator."""
    mode = True

    def __enter__(self):
        self._prev = STATE.grad_enabled
        STATE.grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        STATE.grad_enabled = self._prev
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _Scope(mode):
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Disable recording for the tape: `with adjit.no_grad(): w -= lr * w.grad`."""
    mode = False


class enable_grad(_GradMode):
    mode = True


class set_grad_enabled(_GradMode):
    """Takes effect when called (`adjit.set_grad_enabled(False)` as a statement), is undone by
    `with` on exit, and as a decorator only applies inside the function."""

    def __init__(self, mode):
        self.mode = bool(mode)
        self._prev = STATE.grad_enabled
        STATE.grad_enabled = self.mode

    def __enter__(self):
        return self

    def __call__(self, fn):
        STATE.grad_enabled = self._prev
        return super().__call__(fn)


class _Scope(_GradMode):
    def __init__(self, mode):
        self.mode = mode


def is_grad_enabled():
    return STATE.grad_enabled
