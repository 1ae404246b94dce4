"""The eager tape's backward: grad_fn objects, saved-tensor checks and `run_backward`.

`backward()` does not walk closures: it extracts the recorded subgraph reachable from the root
as a Graph, applies the grad transform (`vjp_graph`, cached by the graph's structure so a training
loop builds it once), and evaluates the adjoint with every leaf value as a runtime input.
"""
from __future__ import annotations

import collections
import functools
import weakref
import warnings

import numpy as np

from ..ir.core import EAGER, REGISTRY, STATE, Node, bind
from ..ir.graph import extract
from ..ir.autodiff import vjp_graph
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401


# ------------------------------------------------------------------------------- grad_fn
class Function:
    """A node of the backward graph as PyTorch shows it (`<MulBackward0 object at 0x…>`).

    `_saved` lists what PyTorch's node would save, for the version check and for "backward a
    second time": (input position, version at record time), position -1 being the result.
    """
    __slots__ = ("_inputs", "_saved", "_freed", "__weakref__")

    def __init__(self, inputs, saved=()):
        self._inputs = inputs  # Nodes (or None for an operand that is not a tensor)
        self._saved = saved
        self._freed = False

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


@functools.lru_cache(maxsize=None)
def function_class(name):
    return type(name, (Function,), {"__slots__": ()})


def function_of(n):
    """The grad_fn (or AccumulateGrad for a leaf that requires grad) feeding from node `n`."""
    if n is None or type(n) is not Node:
        return None
    if n.rec is None:
        acc = n.tag  # made when an op first used the leaf: it outlives requires_grad_(False)
        if acc is None and n.rg:
            acc = n.tag = AccumulateGrad(n)
        return acc
    return n.tag if n.rg else None


# What PyTorch's backward nodes save (tools/autograd/derivatives.yaml), which decides when an
# in-place change breaks a backward and which graphs can be run twice. adjit itself replays
# the forward from the leaves and needs none of it: this is for PyTorch's errors only.
_SAVES_NOTHING = frozenset((
    "AddBackward0", "SubBackward0", "RsubBackward1", "NegBackward0", "SumBackward0",
    "SumBackward1", "MeanBackward0", "MeanBackward1", "ViewBackward0", "UnsafeViewBackward0",
    "SelectBackward0", "SliceBackward0", "UnsqueezeBackward0", "SqueezeBackward0",
    "SqueezeBackward1", "SqueezeBackward2", "SqueezeBackward4", "PermuteBackward0",
    "TransposeBackward0", "TBackward0", "ExpandBackward0", "AliasBackward0", "CloneBackward0",
    "CatBackward0", "StackBackward0", "ToCopyBackward0", "CumsumBackward0", "CopySlices",
    "UnbindBackward0", "IndexBackward0", "WhereBackward0", "MaxBackward0", "MinBackward0",
    "SignBackward0", "AsStridedBackward0"))
_RESULT_ONLY = frozenset((
    "ExpBackward0", "Expm1Backward0", "TanhBackward0", "SigmoidBackward0", "SqrtBackward0",
    "RsqrtBackward0", "ReluBackward0", "SoftmaxBackward0", "LogSoftmaxBackward0",
    "TanBackward0", "ReciprocalBackward0", "PowBackward2"))
_INPUTS_AND_RESULT = frozenset((
    "LinalgVectorNormBackward0", "MaxBackward1", "MinBackward1", "StdBackward0",
    "ProdBackward0", "ProdBackward1", "PowBackward1"))
# products save each operand only for the other operand's gradient
_CROSS = frozenset(("MulBackward0", "MmBackward0", "MvBackward0", "DotBackward0",
                    "BmmBackward0"))


def _ver(n):
    return n.ver[0] if type(n) is Node else 0


def _rg(n):
    return type(n) is Node and n.rg


def _saved(name, inputs, node):
    if name in _SAVES_NOTHING:
        return ()
    if name in _RESULT_ONLY:
        return ((-1, node.ver[0]),)
    if name in _CROSS and len(inputs) == 2:
        a, b = inputs
        return tuple((i, _ver(x)) for i, x in ((0, a), (1, b)) if _rg(b if i == 0 else a))
    if name == "DivBackward0" and len(inputs) == 2:
        a, b = inputs
        return tuple((i, _ver(x)) for i, x, need in ((0, a, _rg(b)), (1, b, _rg(a) or _rg(b)))
                     if need)
    saved = tuple((i, _ver(x)) for i, x in enumerate(inputs))
    if name in _INPUTS_AND_RESULT:
        saved += ((-1, node.ver[0]),)
    return saved


def tag(node, name, inputs):
    """Name the recorded node like PyTorch names the op that produced it."""
    if type(node) is not Node or node.trace is not EAGER:
        return node
    if node.rec is None or node.tag is not None:
        # the op was an identity (ops.reshape to the same shape returns its input, a sum over
        # no axes too): PyTorch still records a node of its own
        if not (node.rg and STATE.grad_enabled):
            return node
        node = bind(_RESHAPE, node, shape=node.type.shape)
    inputs = tuple(inputs)
    for i in inputs:
        if type(i) is Node and i.rec is None and i.rg and i.tag is None:
            i.tag = AccumulateGrad(i)  # PyTorch's graph holds it from now on
    node.tag = function_class(name)(inputs, _saved(name, inputs, node))
    return node


_RESHAPE = REGISTRY["reshape"]


def tag_outputs(nodes, name, inputs):
    """Name several results of one PyTorch op (unbind): they share one grad_fn object."""
    fn = None
    for n in nodes:
        if type(n) is Node and n.rec is not None and n.trace is EAGER and n.tag is None:
            fn = fn or function_class(name)(tuple(inputs))
            n.tag = fn
    return nodes


# node replaced by an in-place op -> weakref to its successor: errors name the op that last
# wrote the storage, as PyTorch does (the tensor's grad_fn at the time of the check)
_SUCCESSOR = weakref.WeakKeyDictionary()


def inplace_result(node, old):
    """After an in-place op wrote its result into `old`'s storage: the op's own read of the old
    value is no saved tensor (PyTorch keeps a copy when it needs one), and the result is saved
    at the version it now has."""
    if old.rec is not None:
        _SUCCESSOR[old] = weakref.ref(node)
    fn = node.tag
    if fn is not None and fn._saved:
        fn._saved = tuple((i, node.ver[0]) if i < 0 else (i, v) for i, v in fn._saved
                          if i < 0 or fn._inputs[i] is not old)


# ------------------------------------------------------------------------------- backward
_SECOND_BACKWARD = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed when "
    "you call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward "
    "through the graph a second time or if you need to access saved tensors after calling "
    "backward.")
_TENSOR_TYPE = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
                "bool": "Bool"}


def _walk(root):
    """One pass over the recorded graph under `root`: its recorded nodes in recording order,
    the leaves requiring grad, the other unrecorded inputs (consts), retained nodes."""
    nodes, leaves, consts, retained = [], [], [], []
    seen = set()
    stack = [root]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.rec is None or n.trace is not EAGER:
            (leaves if n.rg and n.rec is None else consts).append(n)
            continue
        nodes.append(n)
        if n.retain and n is not root:
            retained.append(n)
        for i in n.rec.inputs:
            if type(i) is Node and id(i) not in seen:
                stack.append(i)
    nodes.sort(key=_seq)
    return nodes, leaves, consts, retained


def _seq(n):
    return n.rec.seq


def _check(nodes):
    for n in nodes:
        fn = n.tag
        if fn is None or not fn._saved:
            continue
        if fn._freed:
            raise RuntimeError(_SECOND_BACKWARD)
        for i, v in fn._saved:
            m = n if i < 0 else fn._inputs[i]
            if type(m) is Node and m.ver[0] != v:
                raise RuntimeError(_modified_message(m, v, result=i < 0))


def _modified_message(m, v, result):
    what = f"[torch.{_TENSOR_TYPE[m.val.dtype.name]}Tensor {list(m.type.shape)}]"
    # a saved input is named by the op that last wrote it; a saved result by its own op
    while not result and m in _SUCCESSOR and _SUCCESSOR[m]() is not None:
        m = _SUCCESSOR[m]()
    if m.rec is not None and m.tag is not None:
        name = type(m.tag).__name__
        op = name[:name.index("Backward")] if "Backward" in name else name
        what += f", which is output 0 of {op},"
    return ("one of the variables needed for gradient computation has been modified by an "
            f"inplace operation: {what} is at version {m.ver[0]}; expected version {v} instead. "
            "Hint: enable anomaly detection to find the operation that failed to compute its "
            "gradient, with torch.autograd.set_detect_anomaly(True, check_nan=False).")


def _lit_key(x):
    v = x.value
    return ("lit", v.hex() if type(v) is float else v, type(v).__name__, x.dtype)


def _params_key(params):
    # kwargs keep their call-site order; a different order only costs a cache miss
    return tuple(params.items()) if params else ()


def structure_key(nodes, leaves, consts, retained):
    """What identifies the backward graph, up to the values of leaves and consts: each
    equation's primitive, parameters, operands (by position) and literals, and the types.
    Cheaper than printing the extracted Graph, and computed without building it."""
    slot = {}
    parts = [len(leaves), len(consts)]
    for k, n in enumerate(leaves):
        slot[id(n)] = k
        parts.append(n.type)
    for k, n in enumerate(consts, len(leaves)):
        slot[id(n)] = k
        parts.append(n.type)
    base = len(leaves) + len(consts)
    for k, n in enumerate(nodes, base):
        slot[id(n)] = k
        r = n.rec
        parts.append((r.prim.name, _params_key(r.params), n.type,
                      tuple(slot[id(i)] if type(i) is Node else _lit_key(i) for i in r.inputs)))
    parts.append(tuple(slot[id(n)] for n in retained))
    return tuple(parts)


_VJP_CACHE = collections.OrderedDict()
_VJP_CACHE_SIZE = 256  # graphs whose structure changes every step must not grow it forever


def _vjp_for(root, nodes, leaves, consts, retained):
    key = structure_key(nodes, leaves, consts, retained)
    try:
        hit = _VJP_CACHE.get(key)
    except TypeError:  # an unhashable parameter value: its text stands for it
        key = repr(key)
        hit = _VJP_CACHE.get(key)
    if hit is not None:
        _VJP_CACHE.move_to_end(key)
        return hit
    g, env = extract([root], EAGER, inputs=leaves, const_inputs=consts, return_env=True,
                     name="backward")
    vg = vjp_graph(g, extra=[env[id(n)] for n in retained])
    # constants the transform added are bound here once; the graph's own are passed per call,
    # so the cache keeps no reference to this step's tensors
    extra_consts = [c.val if type(c) is Node else c for c in vg.consts[len(consts):]]
    vg.consts = [None] * len(consts) + extra_consts
    hit = _VJP_CACHE[key] = (vg, extra_consts)
    if len(_VJP_CACHE) > _VJP_CACHE_SIZE:
        _VJP_CACHE.popitem(last=False)
    return hit


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


def run_backward(root: Node, ct: np.ndarray, retain_graph=False, inputs=None):
    nodes, leaves, consts, retained = _walk(root)
    _check(nodes)
    vg, extra_consts = _vjp_for(root, nodes, leaves, consts, retained)
    from ..execute import run_graph
    outs = run_graph(vg, [n.val for n in leaves] + [ct],
                     [c.val for c in consts] + extra_consts)
    for n, gval in zip(leaves + retained, outs[1:]):
        if inputs is None or id(n) in inputs:
            accumulate(n, gval)
    if not retain_graph:
        for n in nodes:
            fn = n.tag
            if fn is not None and fn._saved:
                fn._freed = True


def warn_nonleaf_grad():
    warnings.warn(
        "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
        "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
        "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. "
        "If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor "
        "instead. See github.com/pytorch/pytorch/pull/30531 for more information.",
        UserWarning, stacklevel=3)


_WARNED = set()


def warn_once(key, message, stacklevel=3):
    """PyTorch's TORCH_WARN_ONCE: the first occurrence in the process only."""
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, UserWarning, stacklevel=stacklevel + 1)


def warn_scalar_conversion():
    warn_once("scalar", "Converting a tensor with requires_grad=True to a scalar may lead to "
              "unexpected behavior.\nConsider using tensor.detach() first.", stacklevel=4)
