"""`adjit.autograd.gradcheck` / `gradgradcheck`: PyTorch's check of the analytical Jacobian
(reverse mode on the eager tape, one vjp per output element) against central finite
differences, with PyTorch 2.13's defaults, layout (rows: input elements, columns: output
elements) and GradcheckError message. `fast_mode=True` runs the full check (the same verdict
the fast check approximates); the batched and forward-mode checks are refused."""
from __future__ import annotations

import warnings

import numpy as np

from ..tracer.grad_mode import enable_grad
from ..tracer.tensor import Tensor
from .engine import grad as _grad

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    """Raised by gradcheck / gradgradcheck when a Jacobian does not match."""


def _outputs(out):
    if isinstance(out, Tensor):
        return (out,)
    if isinstance(out, (tuple, list)):
        return tuple(o for o in out if isinstance(o, Tensor))
    return ()


def _refuse(**flags):
    for name, on in flags.items():
        if on:
            raise NotImplementedError(f"adjit.autograd.gradcheck: {name}=True is not supported")


def _numerical(func, inputs, diff, k_out, eps):
    """Central differences: per differentiable input j, an array (n_in_j, n_out)."""
    base = list(inputs)
    res = []
    for j in diff:
        x = inputs[j]
        v0 = np.array(x.detach().numpy(), dtype=x.detach().numpy().dtype)
        cols = []
        for e in range(v0.size):
            vals = []
            for step in (eps, -eps):
                v = v0.copy().reshape(-1)
                v[e] += step
                args = list(base)
                args[j] = Tensor._from_array(v.reshape(v0.shape), requires_grad=True)
                with enable_grad():  # func may differentiate (gradgradcheck)
                    outs = _outputs(func(*args))
                vals.append([np.asarray(o.detach().numpy(), np.float64).reshape(-1)
                             for o in outs])
            cols.append([(a - b) / (2 * eps) for a, b in zip(*vals)])
        res.append(cols)
    # res[j][e][k] -> per (output k, input j): (n_in, n_out)
    return [[np.array([res[jj][e][k] for e in range(inputs[j].numel())]).reshape(
        inputs[j].numel(), -1) if inputs[j].numel() else np.zeros((0, 0))
        for jj, j in enumerate(diff)] for k in range(k_out)]


def _analytical(outputs, inputs, diff):
    """Per (output k, input j): (n_in, n_out), one vjp per output element."""
    res = []
    for o in outputs:
        n_out = o.numel()
        cols = {j: np.zeros((inputs[j].numel(), n_out)) for j in diff}
        if o.requires_grad:
            flat = o.reshape(-1)
            for e in range(n_out):
                g = _grad((flat[e],), tuple(inputs[j] for j in diff), retain_graph=True,
                          allow_unused=True)
                for j, gj in zip(diff, g):
                    if gj is not None:
                        cols[j][:, e] = np.asarray(gj.detach().numpy(), np.float64).reshape(-1)
        res.append([cols[j] for j in diff])
    return res


def _show(a, like):
    from ..tracer.factory import tensor
    return repr(tensor(a, dtype=like.dtype))


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
              nondet_tol=0.0, check_undefined_grad=True, check_grad_dtypes=False,
              check_batched_grad=False, check_batched_forward_grad=False,
              check_forward_ad=False, check_backward_ad=True, fast_mode=False, masked=None):
    """True when func's analytical Jacobians match central finite differences within
    atol + rtol * |numerical|; otherwise GradcheckError (or False with raise_exception=False)."""
    _refuse(check_batched_grad=check_batched_grad,
            check_batched_forward_grad=check_batched_forward_grad,
            check_forward_ad=check_forward_ad, masked=bool(masked))
    if not check_backward_ad:
        return True
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    diff = [j for j, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff:
        raise ValueError("gradcheck expects at least one input tensor to require gradient, but "
                         "none of them have requires_grad=True.")
    for j in diff:
        if inputs[j].dtype.is_floating_point and inputs[j]._n.val.dtype != np.float64:
            warnings.warn(f"Input #{j} requires gradient and is not a double precision floating "
                          "point or complex. This check will likely fail if all the inputs are "
                          "not of double precision floating point or complex. ", UserWarning,
                          stacklevel=2)
    try:
        with enable_grad():
            outputs = _outputs(func(*inputs))
            num = _numerical(func, inputs, diff, len(outputs), eps)
            ana = _analytical(outputs, inputs, diff)
        for k, o in enumerate(outputs):
            if not o.requires_grad:
                if any(np.any(n != 0) for n in num[k]):
                    raise GradcheckError("Numerical gradient for function expected to be zero")
                continue
            for jj, j in enumerate(diff):
                n, a = num[k][jj], ana[k][jj]
                if not np.all(np.abs(a - n) <= atol + rtol * np.abs(n)):
                    raise GradcheckError(
                        f"Jacobian mismatch for output {k} with respect to input {j},\n"
                        f"numerical:{_show(n, inputs[j])}\nanalytical:{_show(a, inputs[j])}\n")
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  gen_non_contig_grad_outputs=False, raise_exception=True, nondet_tol=0.0,
                  check_undefined_grad=True, check_grad_dtypes=False, check_batched_grad=False,
                  check_fwd_over_rev=False, check_rev_over_rev=True, fast_mode=False,
                  masked=False):
    """gradcheck of the function (inputs, grad_outputs) -> the gradients of func's outputs
    (vjp with grad_outputs, create_graph=True): second derivatives against finite differences.
    Without grad_outputs, random ones (float64, requiring grad) are used, as PyTorch does."""
    _refuse(check_batched_grad=check_batched_grad, check_fwd_over_rev=check_fwd_over_rev,
            masked=bool(masked))
    if not check_rev_over_rev:
        return True
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    if grad_outputs is None:
        with enable_grad():
            outs = _outputs(func(*inputs))
        rng = np.random.default_rng()
        grad_outputs = tuple(Tensor._from_array(rng.standard_normal(o.shape).astype(
            o._n.val.dtype), requires_grad=o.dtype.is_floating_point) for o in outs)
    else:
        grad_outputs = (grad_outputs,) if isinstance(grad_outputs, Tensor) else \
            tuple(grad_outputs)
    n_in = len(inputs)
    diff = [j for j, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]

    def new_func(*args):
        xs, gos = args[:n_in], args[n_in:]
        outs = _outputs(func(*xs))
        keep = [k for k, o in enumerate(outs) if o.requires_grad]
        if not keep:
            return ()
        g = _grad(tuple(outs[k] for k in keep), tuple(xs[j] for j in diff),
                  tuple(gos[k] for k in keep), create_graph=True, allow_unused=True)
        return tuple(x for x in g if x is not None)
    return gradcheck(new_func, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, fast_mode=fast_mode)
