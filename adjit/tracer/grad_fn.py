"""grad_fn emulation for the eager tape: the objects `Tensor.grad_fn` shows (`MulBackward0`,
`AccumulateGrad`, ... named as PyTorch names them), what each saves (`Saves`, for PyTorch's
"modified by an inplace operation" and "backward through the graph a second time" errors),
`tag` (names a recorded node), and PyTorch's autograd warnings. The backward engine that runs
the recorded graph is adjit/tracer/backward.py.
"""
from __future__ import annotations

import enum
import weakref
import warnings

import numpy as np

from ..ir.core import EAGER, MODES_ON, REGISTRY, STATE, bind, on_register
from .tape import TapeNode


# ------------------------------------------------------------------------------- grad_fn
class Function:
    """A node of the backward graph as PyTorch shows it (`<MulBackward0 object at 0x…>`).

    `_saved` lists what PyTorch's node would save, for the version check and for "backward a
    second time": (input position, version at record time), position -1 being the result and
    -2 - k the k-th of `_extra` (saved tensors that are no differentiable input: an index).
    """
    __slots__ = ("_inputs", "_saved", "_freed", "_extra", "__weakref__")

    def __init__(self, inputs, saved=()):
        self._inputs = inputs  # Nodes (or None for an operand that is not a tensor)
        self._saved = saved
        self._freed = False
        self._extra = ()

    def name(self):
        return type(self).__name__

    @property
    def next_functions(self):
        return tuple((function_of(n), 0) for n in self._inputs)

    def __repr__(self):
        return f"<{self.name()} object at {hex(id(self))}>"


class AccumulateGrad(Function):
    # a weak reference: the leaf node holds this object as its tag, and must not be kept alive
    # (in a reference cycle) by it
    __slots__ = ("_node_ref",)

    def __init__(self, node):
        super().__init__(())
        self._node_ref = weakref.ref(node)

    @property
    def variable_node(self):
        return self._node_ref()

    @property
    def variable(self):
        from .tensor import Tensor
        ref = LEAF_TENSORS.get(self.variable_node)
        t = ref() if ref is not None else None
        return t if t is not None else Tensor._wrap(self.variable_node)

    @property
    def next_functions(self):
        return ()


# leaf node -> weakref to the Tensor the user holds, so `acc.variable is x` as in PyTorch
LEAF_TENSORS = weakref.WeakKeyDictionary()


_FUNCTION_CLASSES: dict = {}


def function_class(name):
    cls = _FUNCTION_CLASSES.get(name)
    if cls is None:
        cls = _FUNCTION_CLASSES[name] = type(name, (Function,), {"__slots__": ()})
    return cls


def function_of(n):
    """The grad_fn (or AccumulateGrad for a leaf that requires grad) feeding from node `n`."""
    if n is None or type(n) is not TapeNode:
        return None
    if n.rec is None:
        acc = n.grad_fn  # made when an op first used the leaf: it outlives requires_grad_(False)
        if acc is None and n.requires_grad:
            acc = n.grad_fn = AccumulateGrad(n)
        return acc
    return n.grad_fn if n.requires_grad else None


# What PyTorch's backward nodes save (tools/autograd/derivatives.yaml), which decides when an
# in-place change breaks a backward and which graphs can be run twice (PyTorch's errors; the
# backward graph itself reads whatever recorded values adjit's rules need, see _build).
_SAVES_NOTHING = frozenset((
    "AddBackward0", "SubBackward0", "RsubBackward1", "NegBackward0", "SumBackward0",
    "SumBackward1", "MeanBackward0", "MeanBackward1", "ViewBackward0", "UnsafeViewBackward0",
    "SelectBackward0", "SliceBackward0", "UnsqueezeBackward0", "SqueezeBackward0",
    "SqueezeBackward1", "SqueezeBackward2", "SqueezeBackward4", "PermuteBackward0",
    "TransposeBackward0", "TBackward0", "ExpandBackward0", "AliasBackward0", "CloneBackward0",
    "CatBackward0", "StackBackward0", "ToCopyBackward0", "CumsumBackward0", "CopySlices",
    "UnbindBackward0", "IndexBackward0", "WhereBackward0", "MaxBackward0", "MinBackward0",
    "AsStridedBackward0", "ZeroBackward0", "FillBackward2", "FillBackward3",
    # (these save the mask / index: save_extra)
    "MaskedFillBackward0", "MaskedFillBackward1", "IndexFillBackward0", "IndexFillBackward1"))
_RESULT_ONLY = frozenset((
    "ReluBackward0", "SoftmaxBackward0", "LogSoftmaxBackward0", "ReciprocalBackward0",
    "PowBackward2"))
_INPUTS_AND_RESULT = frozenset((
    "LinalgVectorNormBackward0", "MaxBackward1", "MinBackward1", "StdBackward0",
    "ProdBackward0", "ProdBackward1", "PowBackward1"))
# products save each operand only for the other operand's gradient
_CROSS = frozenset(("MulBackward0", "MmBackward0", "MvBackward0", "DotBackward0",
                    "BmmBackward0"))


def _ver(n):
    return n.version[0] if type(n) is TapeNode else 0


def _rg(n):
    return type(n) is TapeNode and n.requires_grad


class Saves(enum.Enum):
    """What a grad_fn saves (decides the version check and "backward a second time")."""
    NOTHING = 0            # AddBackward0, ViewBackward0, ...
    RESULT = 1             # ReluBackward0, SoftmaxBackward0, ...: its own result
    CROSS = 2              # products: each operand, only for the other operand's gradient
    DIV = 3                # DivBackward0: the divisor always, the dividend for the divisor
    INPUTS = 4             # every input (the default)
    INPUTS_AND_RESULT = 5  # LinalgVectorNormBackward0, ProdBackward0, ...


_RECORD_SAVES = {"nothing": Saves.NOTHING, "result": Saves.RESULT, "inputs": Saves.INPUTS}


# grad_fn name -> the first registered primitive that names it (made on the first `_kind`
# and kept current by on_register): one pass over the registry per process, where `_kind`
# made one per new grad_fn name (~14 us each in a process's first backward)
_PRIM_OF: dict = {}
_PRIM_INDEXED = []


def _index_add(p):
    if p.grad_fn is not None:
        _PRIM_OF.setdefault(p.grad_fn, p)


def _index_remove(p):
    if _PRIM_OF.get(p.grad_fn) is p:
        del _PRIM_OF[p.grad_fn]
        for q in REGISTRY.values():  # the next one in registration order, if any
            if q.grad_fn == p.grad_fn:
                _PRIM_OF[p.grad_fn] = q
                break


def _kind(name):
    # the grad_fns of primitive records (ExpBackward0, SignBackward0, ...) say it themselves
    if not _PRIM_INDEXED:
        _PRIM_INDEXED.append(True)
        on_register(_index_add, _index_remove)
    p = _PRIM_OF.get(name)
    if p is not None:
        _KINDS[name] = k = _RECORD_SAVES[p.torch_saves]
        return k
    k = (Saves.NOTHING if name in _SAVES_NOTHING else Saves.RESULT if name in _RESULT_ONLY
         else Saves.CROSS if name in _CROSS else Saves.DIV if name == "DivBackward0"
         else Saves.INPUTS_AND_RESULT if name in _INPUTS_AND_RESULT else Saves.INPUTS)
    _KINDS[name] = k
    return k


_KINDS: dict = {}  # grad_fn name -> what it saves
# the members as module globals: `Saves.X` is a class attribute lookup through EnumType (~50 ns)
# and `_saved` runs on every recorded op
_S_NOTHING, _S_RESULT, _S_CROSS, _S_DIV, _S_INPUTS_AND_RESULT = (
    Saves.NOTHING, Saves.RESULT, Saves.CROSS, Saves.DIV, Saves.INPUTS_AND_RESULT)


def _saved(name, inputs, node):
    k = _KINDS.get(name)
    if k is None:
        k = _kind(name)
    if k is _S_NOTHING:
        return ()
    if k is _S_RESULT:
        return ((-1, node.version[0]),)
    if k is _S_CROSS and len(inputs) == 2:
        a, b = inputs
        if type(b) is TapeNode and b.requires_grad:
            if type(a) is TapeNode and a.requires_grad:
                return ((0, _ver(a)), (1, b.version[0]))
            return ((0, _ver(a)),)
        return ((1, _ver(b)),) if type(a) is TapeNode and a.requires_grad else ()
    if k is _S_DIV and len(inputs) == 2:
        a, b = inputs
        return tuple((i, _ver(x)) for i, x, need in ((0, a, _rg(b)), (1, b, _rg(a) or _rg(b)))
                     if need)
    if len(inputs) == 1:
        saved = ((0, _ver(inputs[0])),)
    else:
        saved = tuple((i, _ver(x)) for i, x in enumerate(inputs))
    if k is _S_INPUTS_AND_RESULT:
        saved += ((-1, node.version[0]),)
    return saved


# grad_fn -> the forward call's user stack, recorded under anomaly detection
FORWARD_STACK = weakref.WeakKeyDictionary()


def _user_stack():
    """The user's frames of the current call (adjit's own left out), formatted as PyTorch's
    anomaly mode prints the forward call."""
    import sys
    import traceback
    from .._frames import is_adjit_file
    f, frames = sys._getframe(2), []
    while f is not None:
        if not is_adjit_file(f.f_code.co_filename):
            frames.append((f, f.f_lineno))
        f = f.f_back
    return "".join(traceback.format_list(traceback.StackSummary.extract(reversed(frames))))


# the Nodes of inference tensors (made under adjit.inference_mode())
INFERENCE = weakref.WeakSet()
# "is there any inference tensor?" on every recorded op: the truth of the WeakSet's own set of
# weak references (a set, tested in C) -- `bool(INFERENCE)` runs WeakSet.__len__ in Python. It
# can still hold a reference whose tensor is gone (removal is deferred during iteration): that
# only means the exact test (`in INFERENCE`) runs.
INFERENCE_REFS = INFERENCE.data


def _no_saved_inference(fn):
    """PyTorch's error when an op recorded for backward would save an inference tensor."""
    for i, _ in fn._saved:
        if i >= 0 and fn._inputs[i] in INFERENCE:
            raise RuntimeError("Inference tensors cannot be saved for backward. Please do not "
                               "use Tensors created in inference mode in computation tracked "
                               "by autograd. To work around this, you can make a clone to get "
                               "a normal tensor and use it in autograd, or use "
                               "`torch.no_grad()` instead of `torch.inference_mode()`.")


def tag(node, name, inputs):
    """Name the recorded node like PyTorch names the op that produced it."""
    if type(node) is not TapeNode or node.trace is not EAGER:
        return node
    if node.rec is None or node.grad_fn is not None:
        # the op was an identity (ops.reshape to the same shape returns its input, a sum over
        # no axes too): PyTorch still records a node of its own
        # and a result with storage of its own (a write to it must not reach the input)
        if not (node.requires_grad and STATE.grad_enabled):
            return TapeNode(node.val.copy(), node.type, None, EAGER) if _is_input(node, inputs) \
                else node
        old = node
        node = bind(_RESHAPE, node, shape=node.type.shape)
        if np.may_share_memory(node.val, old.val):
            node.val = node.val.copy()
    inputs = tuple(inputs)
    for i in inputs:
        if type(i) is TapeNode and i.rec is None and i.requires_grad and i.grad_fn is None:
            i.grad_fn = AccumulateGrad(i)  # PyTorch's graph holds it from now on
    cls = _FUNCTION_CLASSES.get(name) or function_class(name)
    node.grad_fn = cls(inputs, _saved(name, inputs, node))
    if INFERENCE_REFS and node.requires_grad:
        _no_saved_inference(node.grad_fn)
    if MODES_ON[0] and STATE.anomaly:  # (MODES_ON: see adjit/ir/core.py)
        FORWARD_STACK[node.grad_fn] = _user_stack()
    return node


_RESHAPE = REGISTRY["reshape"]


def _is_input(node, inputs):
    for i in inputs:
        if i is node:
            return True
    return False


def tag_outputs(nodes, name, inputs):
    """Name several results of one PyTorch op (unbind): they share one grad_fn object."""
    fn = None
    for n in nodes:
        if type(n) is TapeNode and n.rec is not None and n.trace is EAGER and n.grad_fn is None:
            fn = fn or function_class(name)(tuple(inputs))
            n.grad_fn = fn
    return nodes


# node replaced by an in-place op -> weakref to its successor: errors name the op that last
# wrote the storage, as PyTorch does (the tensor's grad_fn at the time of the check)
_SUCCESSOR = weakref.WeakKeyDictionary()


def save_extra(node, extra):
    """`node`'s grad_fn also saves the tensors `extra` (Nodes: gather's and indexing's index
    tensors, as PyTorch's GatherBackward0 and IndexBackward0 do): an in-place write to one
    before backward is PyTorch's "modified by an inplace operation" error."""
    fn = getattr(node, "grad_fn", None) if type(node) is TapeNode else None
    extra = [e for e in extra if type(e) is TapeNode]
    if fn is None or not extra or type(fn) is AccumulateGrad:
        return node
    k0 = len(fn._extra)
    fn._extra = fn._extra + tuple(extra)
    fn._saved = fn._saved + tuple((-2 - k0 - k, e.version[0]) for k, e in enumerate(extra))
    return node


def inplace_result(node, old):
    """After an in-place op wrote its result into `old`'s storage: the op's own read of the old
    value (its first input) is no saved tensor (PyTorch keeps a copy when it needs one), and
    the result is saved at the version it now has. The same tensor as another operand
    (`y.mul_(y)`) stays saved at its old version: backward refuses it, as PyTorch does."""
    if type(node) is not TapeNode:  # an in-place op on a value traced by a transform
        return
    if old.rec is not None:
        _SUCCESSOR[old] = weakref.ref(node)
    fn = node.grad_fn
    if fn is not None and fn._saved:
        ins = fn._inputs
        own = next((j for j, m in enumerate(ins) if m is old), None)
        fn._saved = tuple((i, node.version[0]) if i == -1 else (i, v) for i, v in fn._saved
                          if i != own)


def warn_nonleaf_grad():
    warnings.warn(
        "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
        "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
        "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. "
        "If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor "
        "instead. See github.com/pytorch/pytorch/pull/30531 for more information.",
        UserWarning, stacklevel=3)


_WARNED_ONCE_KEYS = set()


def warn_once(key, message, stacklevel=3):
    """PyTorch's TORCH_WARN_ONCE: the first occurrence in the process only."""
    if key not in _WARNED_ONCE_KEYS:
        _WARNED_ONCE_KEYS.add(key)
        warnings.warn(message, UserWarning, stacklevel=stacklevel + 1)


def warn_scalar_conversion():
    warn_once("scalar", "Converting a tensor with requires_grad=True to a scalar may lead to "
              "unexpected behavior.\nConsider using tensor.detach() first.", stacklevel=4)


# ------------------------------------------------------------------------------- hooks
# node -> {handle id: fn}: Tensor.register_hook (run on the node's gradient when the backward
# has summed it, before it is accumulated or propagated) and register_post_accumulate_grad_hook
# (run with the leaf tensor after its .grad was updated). A backward that meets a hooked node
# runs on the direct engine (adjit/tracer/backward.py `run_direct`).
HOOKS = weakref.WeakKeyDictionary()
POST_HOOKS = weakref.WeakKeyDictionary()


class RemovableHandle:
    """What register_hook returns: `remove()` unregisters the hook (twice is harmless)."""
    _next = [0]

    def __init__(self, table, node):
        self._table = table
        self._node = weakref.ref(node)
        RemovableHandle._next[0] += 1
        self.id = RemovableHandle._next[0]

    def remove(self):
        n = self._node()
        if n is None:
            return
        hooks = self._table.get(n)
        if hooks is not None:
            hooks.pop(self.id, None)
            if not hooks:
                del self._table[n]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def add_hook(table, node, fn):
    h = RemovableHandle(table, node)
    table.setdefault(node, {})[h.id] = fn
    return h


def warn_create_graph_cycle():
    warnings.warn(
        "Using backward() with create_graph=True will create a reference cycle between the "
        "parameter and its gradient which can cause a memory leak. We recommend using "
        "autograd.grad when creating the graph to avoid this. If you have to use this function, "
        "make sure to reset the .grad fields of your parameters to None after use to break the "
        "cycle and avoid the leak.", UserWarning, stacklevel=3)
