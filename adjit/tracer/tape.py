"""The eager tape's values: `TapeNode`, the IR's `Node` plus the state of PyTorch's autograd.

The IR's `Node` holds what the recorder needs (value, type, producer, trace level,
requires_grad) and nothing of the Tensor front. A value of the eager tape (trace level 0,
`adjit.ir.core.EAGER`) is a TapeNode: `set_tape_node` hands this class to the recorder, which
constructs it directly for every tape value (its state lives in slots: no dict, no extra call
per recorded op). Values recorded by a transform (`adjit.jit`, `adjit.grad`, ... over Tensor
code) stay plain Nodes: a Tensor wrapping one has no grad_fn, no .grad, no version counter, and
the Tensor front checks `type(n) is TapeNode` before it reads or writes that state.
"""
from __future__ import annotations

import numpy as np

from ..ir.core import Node, set_tape_node


class TapeNode(Node):
    """A value on the eager tape.

    version           the storage's version counter: a one-element list shared by every value
                      that aliases one storage (views, detach(), in-place results), bumped by
                      each write the Tensor front makes
    recorded_version  the counter when `val` was recorded: `version[0] != recorded_version`
                      means the storage was written since (the eager backward then recomputes
                      this value instead of reading it)
    grad              the accumulated gradient (a Tensor) of a leaf or of a retained non-leaf
    retains_grad      `retain_grad()` was called on this non-leaf
    grad_fn           the PyTorch-named backward node (or AccumulateGrad of a leaf)
    """
    __slots__ = ("version", "recorded_version", "grad", "retains_grad", "grad_fn")

    def __init__(self, val, typ, rec, trace, requires_grad=False, version=None):
        self.val = val
        self.type = typ
        self.rec = rec
        self.trace = trace
        self.requires_grad = requires_grad
        if version is None:
            self.version = [0]
            self.recorded_version = 0
        else:
            self.version = version
            self.recorded_version = version[0]
        self.grad = None
        self.retains_grad = False
        self.grad_fn = None

    def view_of(self, operands):
        """This value is a NumPy view of an operand's storage (the recorder calls this when the
        result has a base): a write to that storage changes it too, so it shares the operand's
        version counter (as PyTorch's views do)."""
        val = self.val
        base = val.base
        for a in operands:
            # (a view made directly of the operand's array, as broadcast_in_dim's: the identity
            # answers what np.may_share_memory would, without its ~0.4 us)
            if type(a) is TapeNode and ((base is a.val and val.size) or
                                        np.may_share_memory(val, a.val)):
                self.version, self.recorded_version = a.version, a.version[0]
                return


def adopt_storage(node, old):
    """`node` (an in-place op's result) now stands for `old`'s storage: the same array and,
    on the tape, the same version counter at its current count."""
    node.val = old.val
    if type(node) is TapeNode and type(old) is TapeNode:
        node.version, node.recorded_version = old.version, old.version[0]


set_tape_node(TapeNode)
