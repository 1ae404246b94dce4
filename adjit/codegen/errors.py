"""The error of native compilation, shared by codegen (lowering) and the runtime (LLVM)."""
from __future__ import annotations


class CompileError(RuntimeError):
    """Native compilation failed; says what was being compiled and why. Callers may fall back
    to the interpreter."""

    def __init__(self, what: str, reason: str):
        super().__init__(f"adjit could not compile {what}: {reason}")
        self.what = what
        self.reason = reason
