"""`adjit.autograd.grad` and `adjit.autograd.backward`: PyTorch's entry points into the eager
backward (adjit/tracer/backward.py). With `create_graph=True` the derivative rules run on the
tape's own values, so the gradients are recorded (with grad_fns) and differentiable again."""
from __future__ import annotations

import numpy as np

from ..ir.core import EAGER, Node
from ..tracer.tape import TapeNode
from ..tracer import backward as engine
from ..tracer.tensor import Tensor, Size, _ones


def _seq(x, what):
    if isinstance(x, Tensor):
        return (x,)
    if isinstance(x, (list, tuple)):
        for t in x:
            if not isinstance(t, Tensor):
                raise TypeError(f"{what} must be Tensors, got {type(t).__name__}")
        return tuple(x)
    raise TypeError(f"{what} must be a Tensor or a sequence of Tensors, got "
                    f"{type(x).__name__}")


def _seeds(outputs, grad_outputs, create_graph):
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = (grad_outputs,)
    else:
        grad_outputs = tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad requires one grad_output per output: got {len(grad_outputs)} "
                           f"grad_outputs and {len(outputs)} outputs")
    seeds = []
    for i, (o, g) in enumerate(zip(outputs, grad_outputs)):
        n = o._n
        if not n.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have "
                               "a grad_fn")
        if g is None:
            if n.val.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            ct = _ones(n.val)
            seeds.append(TapeNode(ct, n.type, None, EAGER) if create_graph else ct)
            continue
        gv = g._n.val if isinstance(g, Tensor) else np.asarray(g)
        if gv.shape != n.val.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output[{i}] has a shape of "
                f"{Size(gv.shape)!r} and output[{i}] has a shape of {Size(n.val.shape)!r}."
                .replace("adjit.Size", "torch.Size"))
        if create_graph:
            seeds.append(g._n if isinstance(g, Tensor) else
                         TapeNode(np.asarray(gv, n.val.dtype), n.type, None, EAGER))
        else:
            seeds.append(np.asarray(gv, n.val.dtype))
    return seeds


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False,
         materialize_grads=False):
    """The gradients of `outputs` with respect to `inputs` (a tuple), as torch.autograd.grad:
    nothing is accumulated into `.grad`."""
    if is_grads_batched:
        raise NotImplementedError("adjit.autograd.grad: is_grads_batched=True is not supported "
                                  "(use adjit.func.vmap over adjit.func.vjp)")
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when "
                         "materialize_grads=True, but got: allow_unused=False.")
    if allow_unused is None:
        allow_unused = materialize_grads
    outputs = _seq(outputs, "outputs")
    inputs = _seq(inputs, "inputs")
    traced = outputs and outputs[0]._n.trace is not EAGER
    if traced:  # inside adjit.jit / adjit.grad: recorded on that trace, compiled with it
        return _grad_traced(outputs, inputs, grad_outputs, create_graph, allow_unused,
                            materialize_grads)
    for t in inputs:
        if not t._n.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    seeds = _seeds(outputs, grad_outputs, create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    res = engine.run_direct([o._n for o in outputs], seeds, create_graph=bool(create_graph),
                            retain_graph=bool(retain_graph), targets=[t._n for t in inputs],
                            accumulate_leaves=False)
    out = []
    for k, (t, r) in enumerate(zip(inputs, res)):
        if r is None:
            _check_used(k, allow_unused)
            out.append(Tensor._from_array(np.zeros(t._n.type.shape, t._n.val.dtype))
                       if materialize_grads else None)
        elif isinstance(r, Node):
            if r is t._n or r.rec is None and r.val is t._n.val:
                r = TapeNode(np.array(r.val, copy=True), r.type, None, EAGER) if not r.requires_grad else r
            out.append(Tensor._wrap(r) if r.val.shape == t._n.val.shape else
                       Tensor._wrap(TapeNode(np.broadcast_to(r.val, t._n.val.shape).copy(),
                                         t._n.type, None, EAGER)))
        else:
            out.append(Tensor._from_array(np.array(np.broadcast_to(
                np.asarray(r, t._n.val.dtype), t._n.val.shape), copy=True)))
    return tuple(out)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False,
             grad_variables=None, inputs=None):
    """torch.autograd.backward: accumulate the gradients of `tensors` into the leaves' .grad."""
    tensors = _seq(tensors, "tensors")
    if grad_tensors is None:
        grad_tensors = grad_variables
    if len(tensors) == 1:
        g = grad_tensors[0] if isinstance(grad_tensors, (list, tuple)) else grad_tensors
        return tensors[0].backward(g, retain_graph=retain_graph, create_graph=create_graph,
                                   inputs=inputs)
    seeds = _seeds(tensors, grad_tensors, create_graph)
    if retain_graph is None:
        retain_graph = create_graph
    ids = None
    if inputs is not None:
        ids = {id(t._n) for t in _seq(inputs, "inputs")}
    engine.run_direct([t._n for t in tensors], seeds, create_graph=bool(create_graph),
                      retain_graph=bool(retain_graph), inputs=ids)


def _grad_traced(outputs, inputs, grad_outputs, create_graph, allow_unused, materialize_grads):
    from ..ir import ops
    seeds = []
    gos = (None,) * len(outputs) if grad_outputs is None else (
        (grad_outputs,) if isinstance(grad_outputs, Tensor) else tuple(grad_outputs))
    for o, g in zip(outputs, gos):
        n = o._n
        if g is None:
            if int(np.prod(n.type.shape)) != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            seeds.append(ops.full(n.type.shape, 1.0, n.type.dtype))
        else:
            seeds.append(g._n if isinstance(g, Tensor) else np.asarray(g, n.type.np_dtype))
    res = engine.run_direct([o._n for o in outputs], seeds, create_graph=bool(create_graph),
                            retain_graph=True, targets=[t._n for t in inputs],
                            accumulate_leaves=False)
    out = []
    for k, (t, r) in enumerate(zip(inputs, res)):
        if r is None:
            _check_used(k, allow_unused)
            out.append(Tensor._wrap(ops.zeros(t._n.type.shape, t._n.type.dtype))
                       if materialize_grads else None)
        else:
            out.append(Tensor._wrap(r) if isinstance(r, Node) else Tensor._wrap(
                ops.broadcast_to(r, t._n.type.shape)))
    return tuple(out)


def _check_used(k, allow_unused):
    """PyTorch's error for an input `autograd.grad` never reached, unless allow_unused."""
    if not allow_unused:
        raise RuntimeError(f"The differentiated Tensor at index {k} appears to not have been "
                           "used in the graph. Set allow_unused=True if this is the desired "
                           "behavior.")
