"""`adjit.autograd.Function`: PyTorch's custom autograd operator, on the eager tape and in jit.

    class Exp(adjit.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            y, = ctx.saved_tensors
            return g * y

On the tape, `apply` runs `forward` with grad mode off and records ONE equation whose outputs
are the forward's tensors (grad_fn `<ExpBackward>`); its derivative rule calls `backward` with
concrete tensors, so a graph holding one runs on the direct backward engine
(adjit/tracer/backward.py `run_direct`), and under `create_graph=True` the backward's own ops are
recorded (differentiable backward, to any order) unless it is `@once_differentiable`.

Under a transform (`adjit.jit`, `adjit.grad`, ... with Tensor arguments), `apply` is a
`custom_vjp` call: forward and backward are traced once into the `custom_vjp_call` equation, so
the function compiles, with its backward as the derivative rule.
"""
from __future__ import annotations

import functools
import warnings

import numpy as np

from ..ir import ops
from ..ir.core import EAGER, STATE, MultiRec, Node, Primitive, Rec, user_location
from ..tracer import backward as engine
from ..tracer.grad_fn import Function as _GradFn, function_class
from ..tracer.grad_mode import no_grad
from ..tracer.tape import TapeNode
from ..tracer.tensor import Tensor

_SECOND = engine._SECOND_BACKWARD


class FunctionCtx:
    """The `ctx` of forward/backward: save_for_backward/saved_tensors, mark_dirty,
    mark_non_differentiable, set_materialize_grads, needs_input_grad, any attribute."""

    def save_for_backward(self, *tensors):
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError("save_for_backward can only save variables, but argument "
                                f"{tensors.index(t)} is of type {type(t).__name__}")
        self.to_save = tensors

    def save_for_forward(self, *tensors):
        self.saved_for_forward = tensors

    def mark_dirty(self, *tensors):
        self.dirty_tensors = tensors

    def mark_non_differentiable(self, *tensors):
        self.non_differentiable = tensors

    def set_materialize_grads(self, value):
        self.materialize_grads = bool(value)

    @property
    def saved_tensors(self):
        saved = getattr(self, "_saved_pairs", None)
        if saved is None:
            return tuple(getattr(self, "to_save", ()))
        fn = getattr(self, "_grad_fn", None)
        if fn is not None and fn._freed:
            raise RuntimeError(_SECOND)
        out = []
        for t, v in saved:
            if t is None:
                out.append(None)
                continue
            n = t._n
            if n.version[0] != v:
                raise RuntimeError(engine._modified_message(n, v, result=False))
            out.append(t)
        return tuple(out)

    @property
    def saved_variables(self):
        return self.saved_tensors


class _BackwardFn(_GradFn):
    """The grad_fn of a custom Function's outputs: `<NameBackward>`; `.apply(*grads)` calls
    the user's backward."""
    __slots__ = ("ctx",)

    def apply(self, *grads):
        return type(self)._fn.backward(self.ctx, *grads)


_CLASSES: dict = {}


def _backward_class(fcls):
    cls = _CLASSES.get(fcls)
    if cls is None:
        cls = _CLASSES[fcls] = type(fcls.__name__ + "Backward", (_BackwardFn,),
                                    {"__slots__": (), "_fn": fcls})
    return cls


def once_differentiable(fn):
    """A backward that is not itself differentiable: it runs with grad mode off, and a second
    derivative through it raises PyTorch's error."""
    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with no_grad():
            outs = fn(ctx, *args)
        if not STATE.grad_enabled:
            return outs
        needs = any(isinstance(a, Tensor) and a.requires_grad for a in args)
        if not needs:
            return outs
        single = not isinstance(outs, tuple)
        ins = tuple(a._n for a in args if isinstance(a, Tensor) and a.requires_grad)
        res = tuple(_delayed_error(o, ins) if isinstance(o, Tensor) else o
                    for o in ((outs,) if single else outs))
        return res[0] if single else res
    wrapper._once_differentiable = True
    return wrapper


def _delayed_error_vjp(ct, *operands, out=None):
    raise RuntimeError("trying to differentiate twice a function that was marked with "
                       "@once_differentiable")


_DELAYED = Primitive("once_differentiable", lambda t: t, lambda x: x, _delayed_error_vjp,
                     saves=False)
engine.CALLBACK_PRIMS.add(_DELAYED)


def _delayed_error(t, ins):
    """t (computed with grad mode off) as the result of PyTorch's DelayedError node (named
    `Error`) over the backward's inputs that require grad: differentiating it raises."""
    n = t._n
    rec = Rec(_DELAYED, ins, {}, user_location(2))
    out = TapeNode(n.val, n.type, rec, EAGER, requires_grad=True)
    out.grad_fn = function_class("Error")(ins)
    return Tensor._wrap(out)


# --------------------------------------------------------------------------- the tape record
def _fn_shape_rule(*types, **params):  # pragma: no cover - records are made by hand
    raise TypeError("adjit.autograd.Function records are made by Function.apply")


def _fn_vjp(ct, *operands, out=None, ctx=None, nout=1):
    """Call the user's backward with the outputs' cotangents (concrete: arrays, or the tape's
    Nodes under create_graph) and return one cotangent per tensor operand."""
    fcls = ctx._fcls
    cts = ct if nout > 1 else (ct,)
    cg = STATE.grad_enabled
    grads = []
    for c, (shape, dt) in zip(cts, ctx._out_types):
        if c is None:
            if not ctx.materialize_grads:
                grads.append(None)
                continue
            c = np.zeros(shape, dt)
        if isinstance(c, Node):
            grads.append(Tensor._wrap(c))
        else:
            grads.append(Tensor._from_array(np.asarray(c)))
    name = fcls.__name__ + "Backward"
    res = fcls.backward(ctx, *grads)
    if not isinstance(res, tuple):
        res = (res,)
    nargs = len(ctx._arg_kinds)
    if len(res) != nargs:
        if len(res) > nargs and all(r is None for r in res[nargs:]):
            res = res[:nargs]
        else:
            raise RuntimeError(f"function {name} returned an incorrect number of gradients "
                               f"(expected {nargs}, got {len(res)})")
    out_cts = []
    for k, (r, kind) in enumerate(zip(res, ctx._arg_kinds)):
        if kind is None:
            if r is not None:
                raise RuntimeError(f"function {name} returned a gradient different than None at "
                                   f"position {k + 1}, but the corresponding forward input was "
                                   "not a Variable")
            continue
        if r is None:
            out_cts.append(None)
            continue
        if not isinstance(r, Tensor):
            raise TypeError(f"function {name} returned a gradient of type {type(r).__name__} at "
                            f"position {k + 1}; expected a Tensor or None")
        shape = tuple(kind)
        rn = r._n if cg else r._n.val
        if tuple(r.shape) != shape:
            try:
                ok = np.broadcast_shapes(tuple(r.shape), shape) == tuple(r.shape)
            except ValueError:
                ok = False
            if not ok:
                raise RuntimeError(f"Function {name} returned an invalid gradient at index {k} - "
                                   f"got {list(r.shape)} but expected shape compatible with "
                                   f"{list(shape)}")
            out_cts.append(ops.unbroadcast(rn, shape))
            continue
        out_cts.append(rn)
    return out_cts


_FN_PRIM = Primitive("autograd_function", _fn_shape_rule, None, _fn_vjp, saves=True)
engine.CALLBACK_PRIMS.add(_FN_PRIM)


class FunctionMeta(type):
    pass


class Function(metaclass=FunctionMeta):
    """Base class of custom autograd operators (see the module doc)."""

    def __init__(self, *args, **kwargs):
        warnings.warn(f"{type(self)} should not be instantiated. Methods on autograd functions "
                      "are all static, so you should invoke them on the class itself. "
                      "Instantiating an autograd function will raise an error in a future "
                      "version of PyTorch.", DeprecationWarning, stacklevel=2)

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward mode "
                                  "AD.")

    vjp = backward

    @staticmethod
    def jvp(ctx, *grad_inputs):
        raise NotImplementedError("You must implement the jvp function for custom "
                                  "autograd.Function to use it with forward mode AD.")

    @classmethod
    def apply(cls, *args, **kwargs):
        if kwargs:
            raise TypeError(f"{cls.__name__}.apply() takes positional arguments only (as "
                            "PyTorch's autograd.Function.apply)")
        if any(isinstance(a, Tensor) and isinstance(a._n, Node) and a._n.trace is not EAGER
               and a._n.trace.active for a in args):
            from .jit_function import apply_traced
            return apply_traced(cls, args)
        return _apply_eager(cls, args)


def _uses_setup_context(cls):
    return getattr(cls, "setup_context", None) is not getattr(Function, "setup_context")


def _apply_eager(cls, args):
    ctx = FunctionCtx()
    ctx.materialize_grads = True
    ctx._fcls = cls
    is_t = [isinstance(a, Tensor) for a in args]
    grad_on = STATE.grad_enabled
    ctx.needs_input_grad = tuple(t and a._n.requires_grad and grad_on for a, t in zip(args, is_t))
    with no_grad():
        if _uses_setup_context(cls):
            outs = cls.forward(*args)
            cls.setup_context(ctx, args, outs)
        else:
            outs = cls.forward(ctx, *args)
    single = not isinstance(outs, tuple)
    outs_t = (outs,) if single else outs
    ins = [a._n for a, t in zip(args, is_t) if t]
    record = grad_on and any(ctx.needs_input_grad)
    dirty = {id(t) for t in getattr(ctx, "dirty_tensors", ())}
    nondiff = {id(t) for t in getattr(ctx, "non_differentiable", ())}
    tensor_outs = [(k, o) for k, o in enumerate(outs_t) if isinstance(o, Tensor)]
    if not record:
        # nothing to differentiate: the outputs are what forward returned (inputs returned as
        # they are become views, as in PyTorch)
        res = list(outs_t)
        for k, o in tensor_outs:
            if any(o is a for a in args) and id(o) not in dirty:
                res[k] = Tensor._wrap(TapeNode(o._n.val, o._n.type, None, EAGER,
                                                      version=o._n.version))
        _set_saved(ctx, None)
        return res[0] if single else tuple(res)
    loc = user_location(2)
    ctx._arg_kinds = tuple(tuple(a._n.type.shape) if t else None for a, t in zip(args, is_t))
    ctx._out_types = tuple((o._n.type.shape, o._n.val.dtype) for _, o in tensor_outs)
    nout = len(tensor_outs)
    params = {"ctx": ctx, "nout": nout}
    if nout > 1:
        rec = MultiRec(_FN_PRIM, tuple(ins), params, loc, None)
        rec.types = tuple(o._n.type for _, o in tensor_outs)
    else:
        rec = Rec(_FN_PRIM, tuple(ins), params, loc, None)
    fn = _backward_class(cls)(tuple(ins))
    fn.ctx = ctx
    ctx._grad_fn = fn
    res = list(outs_t)
    nodes = []
    for k, o in tensor_outs:
        n = o._n
        diff = id(o) not in nondiff and n.val.dtype.kind == "f"
        new = TapeNode(n.val, n.type, rec, EAGER, requires_grad=diff, version=n.version)
        if diff:
            new.grad_fn = fn
        nodes.append(new)
        if any(o is a for a in args) and id(o) not in dirty:
            res[k] = Tensor._wrap(new)  # an input returned as it is: a new tensor (a view)
        else:
            if id(o) in dirty:
                if n.rec is None and n.requires_grad:
                    raise RuntimeError("a leaf Variable that requires grad is being used in an "
                                       "in-place operation.")
            o._n = new  # PyTorch returns forward's own tensor objects with the grad_fn set
            res[k] = o
    if nout > 1:
        import weakref
        rec.outs = tuple(weakref.ref(n) for n in nodes)
    _set_saved(ctx, res)
    saved, extra = [], []
    for t, v in getattr(ctx, "_saved_pairs", ()):
        if t is None:
            continue
        for j, i in enumerate(ins):
            if t._n is i:
                saved.append((j, v))
                break
        else:
            if any(t._n is m for m in nodes):
                saved.append((-1, nodes[0].version[0]))
            else:  # neither input nor output: checked at the version it was saved at
                saved.append((-2 - len(extra), v))
                extra.append(t._n)
    fn._extra = tuple(extra)
    fn._saved = tuple(saved)
    return res[0] if single else tuple(res)


def _set_saved(ctx, outputs):
    ts = getattr(ctx, "to_save", ())
    ctx._saved_pairs = tuple((None, 0) if t is None else (t, t._n.version[0]) for t in ts)
