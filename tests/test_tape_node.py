"""The IR's Node knows nothing of the Tensor front (issue 13 items 2 and 8): the eager tape's
values are `TapeNode`s (adjit/tracer/tape.py) with the autograd state in slots; values traced
by a transform stay plain Nodes, and Tensors wrapping them behave as PyTorch's do under
torch.func (no grad_fn, no .grad), never an AttributeError."""
import sys

import numpy as np
import pytest

import adjit
from adjit.ir import core
from adjit.ir.core import Node
from adjit.tracer import tape
from adjit.tracer.tape import TapeNode

from peers import require

torch = require("torch")

TAPE_FIELDS = {"version", "recorded_version", "grad", "retains_grad", "grad_fn",
               # the old one- and two-letter names
               "rg", "ver", "v0", "retain", "tag"}


def test_ir_node_has_no_tensor_front_state():
    assert not TAPE_FIELDS & set(Node.__slots__)
    assert "__dict__" not in Node.__slots__
    n = Node(np.zeros(2), core.atype_of(np.zeros(2)), None, core.EAGER)
    for f in TAPE_FIELDS:
        assert not hasattr(n, f), f
    assert Node.__slots__ == ("val", "type", "rec", "trace", "requires_grad", "__weakref__")


def test_tape_values_are_tape_nodes_with_slots_only():
    assert issubclass(TapeNode, Node)
    assert core.TAPE_NODE is TapeNode
    x = adjit.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    z = y.t()  # a view: shares the version counter
    for t in (x, y, z, x.detach(), adjit.tensor([1.0])):
        assert type(t._n) is TapeNode
        assert not hasattr(t._n, "__dict__")  # slots: no per-value dict
    assert z._n.version is y._n.version
    assert set(TapeNode.__slots__) == TAPE_FIELDS - {"rg", "ver", "v0", "retain", "tag"}


def test_recording_an_eager_op_calls_nothing_of_the_tape_but_its_constructor():
    """The recorder constructs the tape's class directly: no lookup through a method, no
    helper call per recorded op (a NumPy view is the one case that asks `view_of`)."""
    a = adjit.tensor(np.ones(3), requires_grad=True)
    b = adjit.tensor(np.ones(3))
    a * b  # warm the shape-rule and literal caches
    calls = []

    def prof(frame, event, arg):
        if event == "call" and frame.f_code.co_filename == tape.__file__:
            calls.append(frame.f_code.co_name)

    sys.setprofile(prof)
    try:
        a * b
        a + 2.0
    finally:
        sys.setprofile(None)
    assert calls == ["__init__", "__init__"]


def _f(x):
    # read, not compared: inside a transform adjit shows no grad_fn (torch.func shows one)
    x.grad_fn, x.grad, x.retains_grad, x.is_leaf
    y = x * 2
    y.grad_fn, y.retains_grad
    z = y.clone()
    z.mul_(3)                 # in-place on a traced value
    v = z[1:]
    v.add_(1)                 # through a view
    z[0] = 5.0                # setitem
    d = z.detach()
    repr(z), repr(d)
    return (z ** 2).sum() + y.sum() + d.sum()


@pytest.mark.parametrize("transform", ["grad", "jit", "jit_backward"])
def test_tensors_traced_by_a_transform_wrap_plain_nodes(transform):
    x = np.array([1.0, 2.0, 3.0])
    if transform == "grad":
        got = adjit.grad(_f)(adjit.tensor(x)).numpy()
        want = torch.func.grad(_f)(torch.tensor(x)).numpy()
    elif transform == "jit":
        got = adjit.jit(_f)(adjit.tensor(x)).numpy()
        want = _f(torch.tensor(x)).numpy()
    else:
        xa, xt = adjit.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        adjit.jit(_f)(xa).backward()
        _f(xt).backward()
        got, want = xa.grad.numpy(), xt.grad.numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_tape_state_of_a_traced_tensor_is_refused_clearly():
    def set_grad(x):
        x.grad = x
        return x.sum()

    def retain(x):
        y = x * 2
        y.retain_grad()
        return y.sum()

    for f in (set_grad, retain):
        with pytest.raises(RuntimeError, match="traced by a transform"):
            adjit.grad(f)(adjit.tensor([1.0, 2.0]))
