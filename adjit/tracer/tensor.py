"""`adjit.Tensor`: PyTorch's eager semantics on top of the recorder.

A Tensor is a handle on a Node (its value and the equation that made it). Operations compute at
once and, when some input requires grad, record one typed equation per primitive; the final
node of each PyTorch-level operation carries a grad_fn named as PyTorch names it.
"""
from __future__ import annotations

import weakref

import numpy as np

from ..ir.core import EAGER, MODES_ON, STATE, atype_of, user_location
from .tape import TapeNode, adopt_storage
from ..ir.types import AType
from . import backward as engine, grad_fn
from .printing import format_tensor


class dtype:
    """`adjit.float32` etc.: PyTorch-style dtype objects backed by a NumPy dtype."""
    __slots__ = ("name", "np", "is_floating_point", "itemsize")

    def __init__(self, name, np_dtype):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = self.np.kind == "f"
        self.itemsize = self.np.itemsize

    def __repr__(self):
        return f"adjit.{self.name}"

    def __reduce__(self):
        return (_dtype_by_name, (self.name,))


float32 = dtype("float32", np.float32)
float64 = dtype("float64", np.float64)
int32 = dtype("int32", np.int32)
int64 = dtype("int64", np.int64)
bool_ = dtype("bool", np.bool_)
float = float32  # noqa: A001  (torch.float)
double = float64
long = int64
int = int32  # noqa: A001  (torch.int)
_DTYPES = {d.np: d for d in (float32, float64, int32, int64, bool_)}


def _dtype_by_name(name):
    return {"float32": float32, "float64": float64, "int32": int32, "int64": int64,
            "bool": bool_}[name]


def to_np_dtype(dt):
    if dt is None:
        return None
    if isinstance(dt, dtype):
        return dt.np
    d = np.dtype(dt)
    if d not in _DTYPES:
        raise TypeError(f"adjit supports float32, float64, int32, int64 and bool, not {dt}")
    return d


def from_np_dtype(d):
    return _DTYPES[np.dtype(d)]


def shape_error(message):
    """PyTorch's RuntimeError, with the user's source line attached (as `.adjit_location` and as
    a note that tracebacks print) but kept out of the message, which stays PyTorch's."""
    exc = RuntimeError(message)
    loc = user_location(1)
    if loc is not None:
        exc.adjit_location = loc
        if hasattr(exc, "add_note"):  # Python 3.11+
            exc.add_note(f"at {loc[0]}:{loc[1]}")
    return exc


class Size(tuple):
    """`torch.Size([2, 3])`."""
    __slots__ = ()

    def __repr__(self):
        return f"adjit.Size([{', '.join(str(d) for d in self)}])"

    def numel(self):
        n = 1
        for d in self:
            n *= d
        return n


class Tensor:
    # _view_base: the tensor a view was taken from (PyTorch's `_base`), set by view ops only
    # _views: live views of this tensor, when it requires grad (refreshed after a write via one)
    __slots__ = ("_n", "_view_base", "_views", "__weakref__")
    __array_priority__ = 1000

    # ----------------------------------------------------------------------- construction
    @classmethod
    def _wrap(cls, node):
        t = object.__new__(cls)
        t._n = node
        t._view_base = None  # set: getattr() of an unset slot raises (slowly) inside
        if MODES_ON[0] and STATE.inference:  # (MODES_ON: see adjit/ir/core.py)
            grad_fn.INFERENCE.add(node)
        return t

    @classmethod
    def _from_array(cls, arr, requires_grad=False):
        arr = np.asarray(arr)
        t = cls._wrap(TapeNode(arr, atype_of(arr), None, EAGER, requires_grad=requires_grad))
        if requires_grad:
            grad_fn.LEAF_TENSORS[t._n] = weakref.ref(t)
        return t

    def __init__(self, *args, **kwargs):
        raise TypeError("create tensors with adjit.tensor(data), adjit.ones(...), ...")

    # ----------------------------------------------------------------------- properties
    @property
    def data(self):
        n = self._n
        return Tensor._wrap(TapeNode(n.val, n.type, None, EAGER, requires_grad=False, version=[0]))

    @data.setter
    def data(self, other):
        arr = np.asarray(other._n.val if isinstance(other, Tensor) else other)
        self._n.val = arr
        self._n.type = AType(arr.shape, arr.dtype)

    @property
    def _version(self):
        """PyTorch's version counter: the number of in-place writes to this tensor's storage
        (shared by a view and its base; a plain traced value inside a transform has none: 0)."""
        v = getattr(self._n, "version", None)
        return 0 if v is None else v[0]

    def _is_view(self):
        return getattr(self, "_view_base", None) is not None

    @property
    def _base(self):
        return getattr(self, "_view_base", None)

    @property
    def shape(self):
        return Size(self._n.val.shape)

    def size(self, dim=None):
        s = self._n.val.shape
        if dim is None:
            return Size(s)
        from .tensor_ops import wrap_dim
        return s[wrap_dim(dim, len(s), scalar=False)]

    @property
    def dtype(self):
        return from_np_dtype(self._n.val.dtype)

    @property
    def ndim(self):
        return self._n.val.ndim

    def dim(self):
        return self._n.val.ndim

    def numel(self):
        return builtins_int(self._n.val.size)

    @property
    def device(self):
        return "cpu"

    @property
    def requires_grad(self):
        return self._n.requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad=True):
        n = self._n
        if n.rec is not None and n.requires_grad and not requires_grad:
            raise RuntimeError("you can only change requires_grad flags of leaf variables. If "
                               "you want to use a computed variable in a subgraph that doesn't "
                               "require differentiation use var_no_grad = var.detach().")
        if requires_grad and n.val.dtype.kind != "f":
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        if requires_grad and not STATE.inference and self.is_inference():
            raise RuntimeError("Setting requires_grad=True on inference tensor outside "
                               "InferenceMode is not allowed.")
        n.requires_grad = bool(requires_grad)
        if n.requires_grad and n.rec is None:
            grad_fn.LEAF_TENSORS[n] = weakref.ref(self)
        return self

    def is_inference(self):
        """Whether this tensor (or the tensor it is a view of) was made under
        adjit.inference_mode()."""
        if not grad_fn.INFERENCE_REFS:
            return False
        base = getattr(self, "_view_base", None)
        return self._n in grad_fn.INFERENCE or (base is not None and base.is_inference())

    @property
    def is_leaf(self):
        return self._n.rec is None or not self._n.requires_grad

    @property
    def grad_fn(self):
        n = self._n
        if type(n) is not TapeNode:  # a value traced by a transform: no eager graph
            return None
        return n.grad_fn if (n.rec is not None and n.requires_grad) else None

    @property
    def grad(self):
        n = self._n
        if type(n) is not TapeNode:  # a value traced by a transform: its gradient is what
            return None               # the transform returns, never accumulated here
        if n.rec is not None and n.requires_grad and not n.retains_grad:  # a non-leaf
            grad_fn.warn_nonleaf_grad()
        return n.grad

    @grad.setter
    def grad(self, value):
        if type(self._n) is not TapeNode:
            raise RuntimeError("cannot set .grad of a tensor traced by a transform (adjit.jit, "
                               "adjit.grad, ...): gradients inside a transform are values it "
                               "returns (use adjit.autograd.grad)")
        self._n.grad = value

    @property
    def retains_grad(self):
        return type(self._n) is TapeNode and self._n.retains_grad and not self.is_leaf

    def retain_grad(self):
        if self._n.rec is None and not self._n.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if type(self._n) is not TapeNode:
            raise RuntimeError("retain_grad() of a tensor traced by a transform (adjit.jit, "
                               "adjit.grad, ...) is not supported: gradients inside a transform "
                               "are values it returns (use adjit.autograd.grad)")
        if not self.is_leaf:
            self._n.retains_grad = True

    def detach(self):
        n = self._n
        if n.trace is not EAGER and n.trace.active:
            # inside a transform: the traced value with no derivative (never a constant of the
            # trace, which would freeze this call's value into the compiled code)
            from ..ir import ops
            return Tensor._wrap(ops.stop_gradient(n))
        return Tensor._wrap(TapeNode(n.val, n.type, None, EAGER, version=n.version))

    def detach_(self):
        self._n = self.detach()._n
        return self

    # ----------------------------------------------------------------------- conversions
    def numpy(self, force=False):
        if self._n.requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        return self._n.val

    def item(self):
        v = self._n.val
        if v.size != 1:
            raise RuntimeError(f"a Tensor with {v.size} elements cannot be converted to Scalar")
        return _looked_at(self._n).reshape(()).item()

    def tolist(self):
        return _looked_at(self._n).tolist()

    def _scalar(self):
        if self._n.val.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return self.item()

    def __float__(self):
        if self._n.requires_grad and self._n.trace is EAGER:
            grad_fn.warn_scalar_conversion()
        return builtins_float(self._scalar())

    def __int__(self):
        if self._n.requires_grad and self._n.trace is EAGER:
            grad_fn.warn_scalar_conversion()
        return builtins_int(self._scalar())

    def __index__(self):
        if self._n.val.dtype.kind not in "iub" or self._n.val.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
        return builtins_int(self.item())

    def __bool__(self):
        n = self._n
        v = n.val
        if v.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        val = bool(v.reshape(()).item())
        if n.trace is not EAGER and n.trace.active:  # a guard, as TracedArray.__bool__
            from ..ir import ops
            from ..ir.core import REGISTRY, bind
            c = ops.reshape(n, ())
            if n.type.dtype != "bool":
                c = ops.ne(c, 0)
            bind(REGISTRY["guard"], c, expect=val)
        return val

    def __len__(self):
        if self._n.val.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._n.val.shape[0]

    def __iter__(self):
        if self._n.val.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        from .tensor_index import unbind
        return iter(unbind(self))

    def __format__(self, spec):
        if self._n.val.ndim == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    def __array__(self, dtype=None, copy=None):
        if self._n.requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        return self._n.val if dtype is None else self._n.val.astype(dtype)

    def __hash__(self):
        return id(self)

    def __repr__(self):
        n = self._n
        suffixes = []
        d = n.val.dtype
        name = None
        if d not in (np.float32, np.int64, np.bool_):
            name = repr(from_np_dtype(d))
        if type(n) is TapeNode and n.rec is not None and n.requires_grad and \
                n.grad_fn is not None:
            suffixes.append(f"grad_fn=<{n.grad_fn.name()}>")
        elif n.requires_grad:
            suffixes.append("requires_grad=True")
        return format_tensor(n.val, suffixes=suffixes, dtype_name=name)

    __str__ = __repr__

    # ----------------------------------------------------------------------- backward
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        n = self._n
        if not n.requires_grad or (n.rec is None and not n.requires_grad):
            raise RuntimeError("element 0 of tensors does not require grad and does not have a "
                               "grad_fn")
        if gradient is None:
            if n.val.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            ct = _ones(n.val)
        else:
            ct = np.asarray(gradient._n.val if isinstance(gradient, Tensor) else gradient,
                            dtype=n.val.dtype)
            if ct.shape != n.val.shape:
                raise shape_error(
                    f"Mismatch in shape: grad_output[0] has a shape of {Size(ct.shape)!r} "
                    f"and output[0] has a shape of {Size(n.val.shape)!r}."
                    .replace("adjit.Size", "torch.Size"))
        if inputs is not None:
            inputs = {id(t._n) for t in (inputs if isinstance(inputs, (list, tuple)) else
                                          (inputs,))}
        if create_graph:
            grad_fn.warn_create_graph_cycle()
            seed = gradient._n if isinstance(gradient, Tensor) and ct.shape == n.val.shape \
                and gradient._n.val.dtype == n.val.dtype else TapeNode(ct, n.type, None, EAGER)
            engine.run_direct([n], [seed], create_graph=True, inputs=inputs,
                              retain_graph=True if retain_graph is None else bool(retain_graph))
            return
        if n.rec is None and not (grad_fn.HOOKS.data or grad_fn.POST_HOOKS.data):
            engine.accumulate(n, ct)  # a leaf: its gradient is the seed itself
            return
        if n.rec is None:
            engine.run_direct([n], [ct], inputs=inputs)
            return
        engine.run_backward(n, ct, retain_graph=bool(retain_graph), inputs=inputs)

    def register_hook(self, hook):
        """Run `hook(grad)` when this tensor's gradient is computed; a Tensor it returns
        replaces the gradient. Returns a handle whose `remove()` unregisters it."""
        n = self._n
        if not n.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        return grad_fn.add_hook(grad_fn.HOOKS, n, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Run `hook(tensor)` after the backward accumulated this leaf's .grad."""
        n = self._n
        if not n.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if n.rec is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                               "tensors")
        return grad_fn.add_hook(grad_fn.POST_HOOKS, n, hook)

    def zero_(self):
        self._inplace_check()
        n = self._n
        if not n.val.flags.writeable:
            from .tensor_ops import refuse_overlap
            refuse_overlap(self, n.val)
        if n.rec is not None and n.requires_grad and STATE.grad_enabled:
            # PyTorch records ZeroBackward0: the tensor becomes a new result (zeros) whose
            # gradient to the old value is zero; the storage is written, as for any in-place op
            from ..ir import ops
            from . import tensor_ops, views
            shape, dt = n.type.shape, n.type.dtype
            out = grad_fn.tag(ops.select(np.zeros(shape, bool), n, ops.zeros(shape, dt)),
                               "ZeroBackward0", [n])
            tensor_ops.write(n, out.val)
            adopt_storage(out, n)
            grad_fn.inplace_result(out, n)
            self._n = out
            views.rebase(self)
            return self
        v = n.val
        if not v.flags.writeable:
            n.val = v = v.copy()
        v.fill(0)
        if type(n) is TapeNode:  # (a value traced by a transform has no counter)
            n.version[0] += 1
        return self

    def _inplace_check(self):
        n = self._n
        if grad_fn.INFERENCE_REFS and not STATE.inference and self.is_inference():
            raise RuntimeError("Inplace update to inference tensor outside InferenceMode is not "
                               "allowed.You can make a clone to get a normal tensor before doing "
                               "inplace update.See https://github.com/pytorch/rfcs/pull/17 for "
                               "more details.")
        if not STATE.grad_enabled:
            return
        if n.rec is None and n.requires_grad:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place "
                               "operation.")
        base = getattr(self, "_view_base", None)
        if base is not None and base._n.rec is None and base._n.requires_grad:
            raise RuntimeError("a view of a leaf Variable that requires grad is being used in an "
                               "in-place operation.")
        if type(n) is TapeNode and n.grad_fn is not None and \
                type(n.grad_fn).__name__ == "UnbindBackward0":
            # unbind's outputs are reshape(slice(x)): the slice start is the output's index
            k = max(n.rec.inputs[0].rec.params["start"], default=0)
            raise RuntimeError(f"Output {k} of Unbind is a view and is being modified inplace. "
                               "This view is the output of a function that returns multiple "
                               "views. Such functions do not allow the output views to be "
                               "modified inplace. You should replace the inplace operation by "
                               "an out-of-place one.")


_ONES = {}


def _ones(v):
    """The implicit seed of backward(): a shared read-only array of ones (backward only reads
    it, and copies what it keeps)."""
    key = (v.shape, v.dtype)
    ct = _ONES.get(key)
    if ct is None:
        ct = np.ones(v.shape, v.dtype)
        ct.flags.writeable = False
        if len(_ONES) < 64:
            _ONES[key] = ct
    return ct


builtins_float = __builtins__["float"] if isinstance(__builtins__, dict) else __builtins__.float
builtins_int = __builtins__["int"] if isinstance(__builtins__, dict) else __builtins__.int


def _looked_at(n):
    """The value of Node n as Python reads it (item(), float(), int(), tolist(), an index).
    Inside a transform's trace (jit) this records a guard that a replay sees bitwise the same
    value, as TracedArray does, so a later call with other values traces again instead of
    replaying the first call's branch."""
    v = np.asarray(n.val)
    if n.trace is EAGER or not n.trace.active:
        return v
    from ..ir import composites
    from ..ir import ops
    from ..ir.core import REGISTRY, bind, const_node
    if v.size == 1:
        same = composites.same_value(ops.reshape(n, ()), v.reshape(()))
    else:
        flat = ops.reshape(n, (v.size,))
        want = v.reshape(-1)
        if v.dtype.kind == "f":
            it = {4: np.int32, 8: np.int64}[v.dtype.itemsize]
            flat = ops.bitcast_convert_type(flat, new_dtype="i32" if it is np.int32 else "i64")
            want = want.view(it)
        eq = ops.convert(ops.eq(flat, const_node(np.ascontiguousarray(want))), "i64")
        same = ops.eq(ops.reduce_sum(eq, (0,)), builtins_int(v.size))
    bind(REGISTRY["guard"], same, expect=True)
    return v
