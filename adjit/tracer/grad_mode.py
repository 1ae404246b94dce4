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


class inference_mode:
    """`with adjit.inference_mode():` / `@adjit.inference_mode()` / `@adjit.inference_mode`:
    grad mode off, and every tensor made inside is an inference tensor (`is_inference()`):
    outside the mode it cannot require grad, be written in place, or be saved for backward by
    an op that records (PyTorch's errors). `inference_mode(False)` turns the mode off inside."""

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, bool):  # @adjit.inference_mode
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode=True):
        self.mode = bool(mode)

    def __enter__(self):
        self._prev = (STATE.grad_enabled, STATE.inference)
        STATE.inference = self.mode
        if self.mode:
            STATE.grad_enabled = False
        return self

    def __exit__(self, *exc):
        STATE.grad_enabled, STATE.inference = self._prev
        return False

    def __call__(self, fn):
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return fn(*args, **kwargs)
        return wrapper

    def clone(self):
        return inference_mode(self.mode)


def is_inference_mode_enabled():
    return STATE.inference


class _Scope(_GradMode):
    def __init__(self, mode):
        self.mode = mode


def is_grad_enabled():
    return STATE.grad_enabled
