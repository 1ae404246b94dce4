"""`adjit.autograd.functional`: torch.autograd.functional's jacobian, hessian, vjp, jvp, hvp
and vhp over adjit's eager tape (adjit.autograd.grad), with PyTorch 2.13's argument checks,
messages and result structure (a Tensor, a tuple, or a tuple of tuples, following whether the
inputs and the outputs were given as tuples).

Forward products (jvp, hvp) use the double-backward trick as PyTorch does: the reverse
product with a zero cotangent that requires grad is linear in that cotangent, so its gradient
with respect to the cotangent is the forward product. `vectorize=True` computes a jacobian
(and each stage of a hessian) without `create_graph` by adjit's vmap-based `jacrev`/`jacfwd`
transforms; with `create_graph=True` the rows are computed one by one on the tape (same values).
"""
from __future__ import annotations

import numpy as np

from ..tracer.grad_mode import enable_grad
from ..tracer.tensor import Tensor
from .engine import grad as _grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]


def _as_tuple(x, arg_name, fn_name):
    """(was_tuple, tuple of Tensors), with PyTorch's TypeError for anything else."""
    if isinstance(x, tuple):
        for i, el in enumerate(x):
            if not isinstance(el, Tensor):
                raise TypeError(f"The {arg_name} given to {fn_name} must be either a Tensor or a "
                                f"tuple of Tensors but the value at index {i} has type "
                                f"{_torch_type(el)}.")
        return True, x
    if not isinstance(x, Tensor):
        raise TypeError(f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple "
                        f"of Tensors but the given {arg_name} has type {_torch_type(x)}.")
    return False, (x,)


def _torch_type(x):
    return repr(type(x)).replace("adjit.Tensor", "torch.Tensor")


def _untuple(res, flags):
    """Undo the tupling of the inputs / outputs: flags are (was_tuple, ...) outermost first."""
    if len(flags) == 1:
        return res if flags[0] else res[0]
    inner = tuple(_untuple(r, flags[1:]) for r in res)
    return inner if flags[0] else inner[0]


def _prepare(inputs, create_graph, need_graph):
    """Inputs the user function sees: a differentiable alias of an input that requires grad
    when create_graph is on (the result stays connected to it), otherwise a fresh leaf."""
    out = []
    for t in inputs:
        if create_graph and t.requires_grad:
            out.append(t.view_as(t))
        else:  # (detach alone inside a transform: its stop_gradient node cannot be re-flagged)
            out.append(t.detach().requires_grad_(True) if need_graph else t.detach())
    return tuple(out)


def _finish(xs, create_graph):
    if isinstance(xs, tuple):
        return tuple(_finish(x, create_graph) for x in xs)
    if xs is None or create_graph:
        return xs
    return xs.detach()


def _check_v(v, other, is_other_tuple, fn_name):
    if len(v) != len(other):
        if is_other_tuple:
            raise RuntimeError(f"v is a tuple of invalid length: should be {len(other)} but got "
                               f"{len(v)}.")
        raise RuntimeError("The given v should contain a single Tensor.")
    for a, b in zip(v, other):
        if tuple(a.shape) != tuple(b.shape):
            raise RuntimeError("v has invalid size: should be "
                               f"{_size(b)} but got {_size(a)}.")


def _size(t):
    return repr(t.shape).replace("adjit.Size", "torch.Size")


def _check_outputs_rg(outputs, strict):
    if strict:
        for i, o in enumerate(outputs):
            if not o.requires_grad:
                raise RuntimeError(f"Output {i} of the user-provided function does not require "
                                   "gradients. The outputs must be computed in a differentiable "
                                   "manner from the input when running in strict mode.")


def _agrad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None):
    """autograd.grad over the outputs that require grad (None for unreached inputs); no
    output requiring grad gives all None, as PyTorch's helper does."""
    keep = [i for i, o in enumerate(outputs) if o is not None and o.requires_grad]
    if not keep:
        return (None,) * len(inputs)
    outs = tuple(outputs[i] for i in keep)
    gos = None if grad_outputs is None else tuple(grad_outputs[i] for i in keep)
    return _grad(outs, inputs, gos, retain_graph=retain_graph, create_graph=create_graph,
                 allow_unused=True)


def _zeros(t):
    from ..tracer.factory import zeros_like
    return zeros_like(t)


def _fill(res, refs, strict, msg):
    out = []
    for i, (r, ref) in enumerate(zip(res, refs)):
        if r is None:
            if strict:
                raise RuntimeError(msg(i))
            r = _zeros(ref)
        out.append(r)
    return tuple(out)


def _call(func, inputs, fn_name):
    outputs = func(*inputs)
    return _as_tuple(outputs, "outputs of the user-provided function", fn_name)


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(*inputs), v^T J) as torch.autograd.functional.vjp."""
    with enable_grad():
        in_t, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _prepare(inputs, create_graph, True)
        out_t, outputs = _call(func, inputs, "vjp")
        _check_outputs_rg(outputs, strict)
        if v is not None:
            _, v = _as_tuple(v, "v", "vjp")
            v = _prepare(v, create_graph, False)
            _check_v(v, outputs, out_t, "vjp")
        elif len(outputs) != 1 or outputs[0].numel() != 1:
            raise RuntimeError("The vector v can only be None if the user-provided function "
                               "returns a single Tensor with a single element.")
        res = _agrad(outputs, inputs, v, create_graph)
        res = _fill(res, inputs, strict, lambda i: (
            f"The output of the user-provided function is independent of input {i}. This is "
            "not allowed in strict mode."))
    return _untuple(_finish(outputs, create_graph), (out_t,)), \
        _untuple(_finish(res, create_graph), (in_t,))


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(*inputs), J v) as torch.autograd.functional.jvp (double-backward trick)."""
    with enable_grad():
        in_t, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _prepare(inputs, create_graph, True)
        if v is not None:
            _, v = _as_tuple(v, "v", "jvp")
            v = _prepare(v, create_graph, False)
            _check_v(v, inputs, in_t, "jvp")
        elif len(inputs) != 1 or inputs[0].numel() != 1:
            raise RuntimeError("The vector v can only be None if the input to the user-provided "
                               "function is a single Tensor with a single element.")
        out_t, outputs = _call(func, inputs, "jvp")
        _check_outputs_rg(outputs, strict)
        seeds = tuple(_zeros(o).requires_grad_(True) for o in outputs)
        back = _agrad(outputs, inputs, seeds, create_graph=True)
        back = _fill(back, inputs, strict, lambda i: (
            f"The output of the user-provided function is independent of input {i}. This is "
            "not allowed in strict mode."))
        res = _agrad(back, seeds, v, create_graph)
        res = _fill(res, outputs, strict, lambda i: (
            f"The gradient with respect to the input is independent of entry {i} in the "
            "grad_outputs when using the double backward trick to compute forward mode "
            "gradients. This is not allowed in strict mode."))
    return _untuple(_finish(outputs, create_graph), (out_t,)), \
        _untuple(_finish(res, create_graph), (out_t,))


def _rows(outputs, inputs, create_graph, strict):
    """jac[i][j] of output i with respect to input j, one reverse pass per output element."""
    from ..tracer.factory import stack
    jac = []
    for i, out in enumerate(outputs):
        flat = out.reshape(-1)
        per_in = [[] for _ in inputs]
        for k in range(flat.numel()):
            g = _agrad((flat[k],), inputs, None, create_graph, retain_graph=True)
            for j, (gj, inp) in enumerate(zip(g, inputs)):
                if gj is None:
                    if strict and create_graph and not inp.requires_grad:
                        raise RuntimeError("The jacobian of the user-provided function is "
                                           f"independent of input {i}. This is not allowed in "
                                           "strict mode when create_graph=True.")
                    if strict:
                        raise RuntimeError(f"Output {i} of the user-provided function is "
                                           f"independent of input {j}. This is not allowed in "
                                           "strict mode.")
                    gj = _zeros(inp)
                per_in[j].append(gj)
        row = []
        for j, inp in enumerate(inputs):
            if per_in[j]:
                r = stack(per_in[j]).reshape(tuple(out.shape) + tuple(inp.shape))
            else:  # an empty output
                from ..tracer.factory import zeros
                r = zeros(tuple(out.shape) + tuple(inp.shape), dtype=inp.dtype)
            row.append(r)
        jac.append(tuple(row))
    return tuple(jac)


def _transform_jac(func, inputs, forward):
    """The jacobian by adjit's jacrev / jacfwd transform (vectorized by vmap), as
    jac[i][j] tuples."""
    from .. import transforms as tr
    argnums = tuple(range(len(inputs)))
    flags = {}

    def f(*xs):
        o = func(*xs)
        was, outs = _as_tuple(o, "outputs of the user-provided function", "jacobian")
        flags["out"] = was
        return outs
    jf = (tr.jacfwd if forward else tr.jacrev)(f, argnums=argnums)
    res = jf(*[t.detach() for t in inputs])
    # jax's structure: outputs (a tuple) outermost, then argnums
    jac = tuple(tuple(Tensor._from_array(np.asarray(x.numpy() if isinstance(x, Tensor) else x))
                      for x in per_out) for per_out in res)
    return flags["out"], jac


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    """The Jacobian of func at inputs, as torch.autograd.functional.jacobian."""
    if strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode". '
                             'Hint: If your function has more outputs than inputs, "forward-mode" '
                             'tends to be more performant. Otherwise, prefer to use '
                             '"reverse-mode".')
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError("torch.autograd.functional.jacobian: `create_graph=True` "
                                      'and `strategy="forward-mode"` are not supported together '
                                      "(yet). Please either set `create_graph=False` or "
                                      '`strategy="reverse-mode"`.')
        if strict:
            raise RuntimeError("torch.autograd.functional.jacobian: `strict=True` and "
                               '`strategy="forward-mode"` are not supported together (yet). '
                               "Please either set `strict=False` or "
                               '`strategy="reverse-mode"`.')
        if not vectorize:
            raise NotImplementedError("Computing Jacobian using forward-AD or forward-over-"
                                      "reverse Hessian isonly implemented for `vectorize=True`.")
    with enable_grad():
        in_t, inputs = _as_tuple(inputs, "inputs", "jacobian")
        if vectorize and strict:
            raise RuntimeError("torch.autograd.functional.jacobian: `strict=True` and "
                               "`vectorized=True` are not supported together. Please either "
                               "set `strict=False` or `vectorize=False`.")
        if vectorize and not create_graph:
            out_t, jac = _transform_jac(func, inputs, strategy == "forward-mode")
            return _untuple(jac, (out_t, in_t))
        inputs = _prepare(inputs, create_graph, True)
        out_t, outputs = _call(func, inputs, "jacobian")
        _check_outputs_rg(outputs, strict)
        jac = _rows(outputs, inputs, create_graph, strict)
    return _untuple(_finish(jac, create_graph), (out_t, in_t))


def _scalar_out(func, name):
    def f(*xs):
        out = func(*xs)
        was, outs = _as_tuple(out, "outputs of the user-provided function", name)
        if was or len(outs) != 1:
            raise RuntimeError(f"The function given to {name} should return a single Tensor")
        if outs[0].numel() != 1:
            raise RuntimeError(f"The Tensor returned by the function given to {name} should "
                               "contain a single element")
        return outs[0].squeeze()
    return f


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a scalar func at inputs, as torch.autograd.functional.hessian."""
    in_t, inputs = _as_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in ("forward-mode", "reverse-mode"):
        raise AssertionError('Expected strategy to be either "forward-mode" or "reverse-mode".')
    f = _scalar_out(func, "hessian")
    if vectorize and not create_graph and not strict:
        from .. import transforms as tr
        argnums = tuple(range(len(inputs)))
        outer = tr.jacfwd if outer_jacobian_strategy == "forward-mode" else tr.jacrev
        res = outer(tr.jacrev(f, argnums=argnums), argnums=argnums)(
            *[t.detach() for t in inputs])
        h = tuple(tuple(Tensor._from_array(np.asarray(x.numpy())) for x in row) for row in res)
        return _untuple(h, (in_t, in_t))

    def jac_func(*xs):
        if outer_jacobian_strategy == "forward-mode":
            xs = tuple(t.requires_grad_(True) for t in xs)
        out = f(*xs)
        g = _agrad((out,), xs, None, create_graph=True)
        if strict:  # a jacobian that does not depend on the inputs counts as missing
            g = tuple(r if r is not None and r.requires_grad else None for r in g)
        g = _fill(g, xs, strict, lambda i: (
            "While computing the hessian, found that the jacobian of the user-provided function "
            f"with respect to input {i} is independent of the input. This is not allowed in "
            "strict mode. You should ensure that your function is twice differentiable and that "
            "the jacobian depends on the inputs (this would be violated by a linear function "
            "for example)."))
        return g
    res = jacobian(jac_func, inputs, create_graph=create_graph, strict=strict,
                   vectorize=vectorize, strategy=outer_jacobian_strategy)
    return _untuple(res, (in_t, in_t))


def _second(func, inputs, v, create_graph, strict, name):
    with enable_grad():
        in_t, inputs = _as_tuple(inputs, "inputs", name)
        inputs = _prepare(inputs, create_graph, True)
        if v is not None:
            _, v = _as_tuple(v, "v", name)
            v = _prepare(v, create_graph, False)
            _check_v(v, inputs, in_t, name)
        elif len(inputs) != 1 or inputs[0].numel() != 1:
            raise RuntimeError("The vector v can only be None if the input to the user-provided "
                               "function is a single Tensor with a single element.")
        out_t, outputs = _call(func, inputs, name)
        if out_t or len(outputs) != 1:
            raise RuntimeError(f"The function given to {name} should return a single Tensor")
        if outputs[0].numel() != 1:
            raise RuntimeError(f"The Tensor returned by the function given to {name} should "
                               "contain a single element")
        _check_outputs_rg(outputs, strict)
        jac = _agrad(outputs, inputs, None, create_graph=True)
        jac = _fill(jac, inputs, strict, lambda i: (
            f"The output of the user-provided function is independent of input {i}. This is "
            "not allowed in strict mode."))
        if name == "vhp":
            res = _agrad(jac, inputs, v, create_graph)
        else:  # hvp: the double-backward trick gives H v as a reverse product
            seeds = tuple(_zeros(t).requires_grad_(True) for t in inputs)
            back = _agrad(jac, inputs, seeds, create_graph=True)
            res = _agrad(back, seeds, v, create_graph)
        res = _fill(res, inputs, strict, lambda i: (
            f"The hessian of the user-provided function with respect to input {i} is "
            "independent of the input. This is not allowed in strict mode. You should ensure "
            "that your function is thrice differentiable and that the hessian depends on the "
            "inputs."))
    return _finish(outputs[0], create_graph), _untuple(_finish(res, create_graph), (in_t,))


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(*inputs), v^T H) as torch.autograd.functional.vhp."""
    return _second(func, inputs, v, create_graph, strict, "vhp")


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """(func(*inputs), H v) as torch.autograd.functional.hvp."""
    return _second(func, inputs, v, create_graph, strict, "hvp")
