"""`adjit.func`: torch.func's composable transforms (grad, grad_and_value, vjp, jvp, vmap,
jacrev, jacfwd, hessian) over adjit's own transforms (adjit/transforms), which trace the
function once and run the derived graph (compiled natively). PyTorch 2.13's signatures, result
structure and argument errors; see docs/torch_reference.md. `functional_call` needs `nn`
(not part of adjit)."""
from __future__ import annotations

import functools

from . import transforms as _tr
from .tracer import pytree
from .tracer.tensor import Tensor

__all__ = ["grad", "grad_and_value", "vjp", "jvp", "vmap", "jacrev", "jacfwd", "hessian"]


def _scalar_checked(func, has_aux):
    """func with torch.func's checks of what grad / grad_and_value need it to return."""
    @functools.wraps(func)
    def f(*args, **kwargs):
        out = func(*args, **kwargs)
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise RuntimeError("grad_and_value(f)(*args): output of function f should be a "
                                   "tuple: (output, aux) if has_aux is True")
            val = out[0]
        else:
            val = out
        if not isinstance(val, Tensor):
            raise RuntimeError("grad_and_value(f)(*args): Expected f(*args) to return a Tensor, "
                               f"got {type(val)}")
        if val.dim() != 0:
            raise RuntimeError("grad_and_value(f)(*args): Expected f(*args) to return a scalar "
                               f"Tensor, got tensor with {val.dim()} dims. Maybe you wanted to "
                               "use the vjp or jacrev APIs instead?")
        return out
    return f


def _check_argnums(argnums, nargs):
    for a in (argnums if isinstance(argnums, tuple) else (argnums,)):
        if not isinstance(a, int):
            raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
        if not -nargs <= a < nargs:
            raise RuntimeError(f"Got argnum={a}, but only {nargs} positional inputs")


def grad_and_value(func, argnums=0, has_aux=False):
    """(gradient, value) of a scalar func; with has_aux, (gradient, (value, aux))."""
    vg = _tr.value_and_grad(_scalar_checked(func, has_aux), argnums, has_aux)

    @functools.wraps(func)
    def f(*args, **kwargs):
        _check_argnums(argnums, len(args))
        value, g = vg(*args, **kwargs)
        return g, value
    return f


def grad(func, argnums=0, has_aux=False):
    """The gradient of a scalar func w.r.t. argnums; with has_aux, (gradient, aux)."""
    gv = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def f(*args, **kwargs):
        g, value = gv(*args, **kwargs)
        return (g, value[1]) if has_aux else g
    return f


def vjp(func, *primals, has_aux=False):
    """(func(*primals), vjp_fn) (and aux); vjp_fn(cotangents) is a tuple, one per primal."""
    return _tr.vjp(func, *primals, has_aux=has_aux)


def jvp(func, primals, tangents, *, strict=False, has_aux=False):
    """(func(*primals), J @ tangents) (and aux): primals and tangents are tuples."""
    if not isinstance(primals, tuple):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals to be a tuple. E.g. it "
                           "should be valid to call f(*primals).")
    ps, pt = pytree.flatten(primals)
    ts, tt = pytree.flatten(tangents)
    if pt != tt:
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to have the "
                           "same python structure. For example, if primals is a tuple of 3 "
                           "tensors, tangents also must be.")
    for p, t in zip(ps, ts):
        if tuple(p.shape) != tuple(t.shape):
            sp, st = list(p.shape), list(t.shape)
            raise RuntimeError("Trying to set a forward gradient that has a different size than "
                               "that of the original Tensor, this is not supported. Tensor is "
                               f"of size {sp} while the given forward gradient is of size {st}.")
    if strict:
        func = _strict(func, has_aux)
    return _tr.jvp(func, primals, tangents, has_aux=has_aux)


def _strict(func, has_aux):
    """func, refusing (as torch.func.jvp's strict=True) an output that is not computed from
    the traced inputs (an eager Tensor inside the trace)."""
    from .ir.core import EAGER

    @functools.wraps(func)
    def f(*args):
        out = func(*args)
        for t in pytree.leaves(out[0] if has_aux else out):
            if not isinstance(t, Tensor) or t._n.trace is EAGER:
                raise RuntimeError("jvp(f, primals, tangents, strict=True): The output of f is "
                                   "independent of the inputs. This is not allowed with "
                                   "strict=True.")
        return out
    return f


def _randomness(randomness):
    if randomness not in ("error", "different", "same"):
        raise RuntimeError("Only allowed values for randomness are 'error', 'different', or "
                           f"'same'. Got {randomness}")
    if randomness != "error":
        raise NotImplementedError(f"adjit.func: randomness={randomness!r} is not supported "
                                  "(random functions are not traced by adjit's transforms)")


def _chunk_size(chunk_size, what):
    if chunk_size is not None:
        raise NotImplementedError(f"adjit.func.{what}: chunk_size is not supported (the whole "
                                  "batch is one graph)")


def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """Map func over a dimension of its inputs (torch.func.vmap over adjit.vmap)."""
    _randomness(randomness)
    _chunk_size(chunk_size, "vmap")
    return _tr.vmap(func, in_axes=in_dims, out_axes=out_dims)


def jacrev(func, argnums=0, *, has_aux=False, chunk_size=None, _preallocate_and_copy=False):
    """The Jacobian by reverse mode (batched vjps)."""
    _chunk_size(chunk_size, "jacrev")
    jf = _tr.jacrev(func, argnums, has_aux)

    @functools.wraps(func)
    def f(*args, **kwargs):
        _check_argnums(argnums, len(args))
        return jf(*args, **kwargs)
    return f


def jacfwd(func, argnums=0, has_aux=False, *, randomness="error"):
    """The Jacobian by forward mode (batched jvps)."""
    _randomness(randomness)
    jf = _tr.jacfwd(func, argnums, has_aux)

    @functools.wraps(func)
    def f(*args, **kwargs):
        _check_argnums(argnums, len(args))
        return jf(*args, **kwargs)
    return f


def hessian(func, argnums=0):
    """jacfwd(jacrev(func, argnums), argnums), as torch.func.hessian."""
    return jacfwd(jacrev(func, argnums), argnums)
