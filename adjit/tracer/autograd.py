"""The eager tape's backward: grad_fn objects, grad mode, and `run_backward`.

`backward()` does not walk closures: it extracts the recorded subgraph reachable from the root
as a Graph, applies the grad transform (`vjp_graph`, cached by the graph's structure so a training
loop builds it once), and evaluates the adjoint with every leaf value as a runtime input.
"""
from __future__ import annotations

import functools
import threading
import warnings

import numpy as np

from ..ir.core import EAGER, STATE, Node
from ..ir.graph import extract
from ..ir.autodiff import vjp_graph


# ------------------------------------------------------------------------------- grad mode
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
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Disable recording for the tape: `with adjit.no_grad(): w -= lr * w.grad`."""
    mode = False


class enable_grad(_GradMode):
    mode = True


class set_grad_enabled(_GradMode):
    def __init__(self, mode):
        self.mode = bool(mode)
        self._prev = STATE.grad_enabled
        STATE.grad_enabled = self.mode

    def __enter__(self):
        return self


def is_grad_enabled():
    return STATE.grad_enabled


# ------------------------------------------------------------------------------- grad_fn
class Function:
    """A node of the backward graph as PyTorch shows it (`<MulBackward0 object at 0x…>`)."""
    __slots__ = ("_inputs", "__weakref__")

    def __init__(self, inputs):
        self._inputs = inputs  # Nodes (or None for an operand that is not a tensor)

    def name(self):
        return type(self).__name__

    @property
    def next_functions(self):
        out = []
        for n in self._inputs:
            out.append((function_of(n), 0))
        return tuple(out)

    def __repr__(self):
        return f"<{self.name()} object at {hex(id(self))}>"


class AccumulateGrad(Function):
    __slots__ = ("variable_node",)

    def __init__(self, node):
        super().__init__(())
        self.variable_node = node

    @property
    def variable(self):
        from .tensor import Tensor
        return Tensor._wrap(self.variable_node)

    @property
    def next_functions(self):
        return ()


_ACC = {}
_acc_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def function_class(name):
    return type(name, (Function,), {"__slots__": ()})


def function_of(n):
    """The grad_fn (or AccumulateGrad for a leaf that requires grad) feeding from node `n`."""
    if n is None or type(n) is not Node or not n.rg:
        return None
    if n.rec is None:
        acc = n.tag
        if acc is None:
            acc = n.tag = AccumulateGrad(n)
        return acc
    return n.tag


def tag(node, name, inputs):
    """Name the recorded node like PyTorch names the op that produced it."""
    if type(node) is Node and node.rec is not None and node.trace is EAGER:
        node.tag = function_class(name)(tuple(inputs))
    return node


# ------------------------------------------------------------------------------- backward
_VJP_CACHE = {}

_SECOND_BACKWARD = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed when "
    "you call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward "
    "through the graph a second time or if you need to access saved tensors after calling "
    "backward.")


def _collect(root):
    """Leaves that require grad, retained intermediates and the recorded equations."""
    leaves, retained, recs = [], [], []
    seen = set()
    stack = [root]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.trace is not EAGER:
            continue
        if n.rec is None:
            if n.rg:
                leaves.append(n)
            continue
        if n.retain and n is not root:
            retained.append(n)
        recs.append(n.rec)
        stack.extend(i for i in n.rec.inputs if type(i) is Node)
    return leaves, retained, recs


def _check(recs):
    for r in recs:
        if r.freed:
            raise RuntimeError(_SECOND_BACKWARD)
        if r.vers is None or not r.prim.saves:
            continue
        for i, v in zip(r.inputs, r.vers):
            if type(i) is Node and i.ver[0] != v:
                from .printing import torch_dtype_name
                tname = torch_dtype_name(i.val.dtype).split(".")[1].capitalize()
                shape = list(i.type.shape)
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by "
                    f"an inplace operation: [torch.{tname}Tensor {shape}], which is output 0 of "
                    f"{_forward_name(i)}, is at version {i.ver[0]}; "
                    f"expected version {v} instead. Hint: enable anomaly detection to find the "
                    "operation that failed to compute its gradient, with "
                    "torch.autograd.set_detect_anomaly(True, check_nan=False).")


def _forward_name(n):
    """`Add` for a tensor made by AddBackward0's forward op (PyTorch names the forward op)."""
    if n.tag is None or n.rec is None:
        return "a leaf"
    name = type(n.tag).__name__
    return name[:name.index("Backward")] if "Backward" in name else name


def accumulate(n, gval):
    from .tensor import Tensor
    gval = np.asarray(gval, dtype=n.val.dtype)
    if gval.shape != n.val.shape:
        gval = np.broadcast_to(gval, n.val.shape)
    if n.grad is None:
        n.grad = Tensor._from_array(np.array(gval, copy=True))
    else:
        gn = n.grad._n
        np.add(gn.val, gval, out=gn.val, casting="unsafe")
        gn.ver[0] += 1


def run_backward(root: Node, ct: np.ndarray, retain_graph=False):
    leaves, retained, recs = _collect(root)
    _check(recs)
    g, env = extract([root], EAGER, inputs=leaves, return_env=True, name="backward")
    extra = [env[id(n)] for n in retained]
    pos = {v: i for i, v in enumerate(e.outvars[0] for e in g.eqns if e.outvars)}
    key = (g.structure_key(), tuple(pos[v] for v in extra))
    vg = _VJP_CACHE.get(key)
    if vg is None:
        vg = vjp_graph(g, extra=extra)
        _VJP_CACHE[key] = vg
    consts = [c.val for c in g.consts]
    from ..execute import run_graph
    outs = run_graph(vg, [n.val for n in leaves] + [ct], consts)
    grads = outs[1:]
    for n, gval in zip(leaves + retained, grads):
        accumulate(n, gval)
    if not retain_graph:
        for r in recs:
            if r.prim.saves:
                r.freed = True


def warn_nonleaf_grad():
    warnings.warn(
        "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
        "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
        "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. "
        "If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor "
        "instead. See github.com/pytorch/pytorch/pull/30531 for more information.",
        UserWarning, stacklevel=3)
