"""The public names of the JAX-style transforms (re-exported by adjit/__init__.py)."""
from ..ir.core import GuardFailed
from ..tracer.ndarray import TracedArray
from . import autodiff as _t
from . import vmap as _v
from .._traceback import transform_boundary
from .autodiff import stop_gradient, make_ir
from .custom import custom_jvp, custom_vjp
from .jit import jit

# the callables these return hide adjit's frames from the user's traceback
grad = transform_boundary(_t.grad)
value_and_grad = transform_boundary(_t.value_and_grad)
jacrev = transform_boundary(_v.jacrev)
jacfwd = transform_boundary(_v.jacfwd)
hessian = transform_boundary(_v.hessian)
vmap = transform_boundary(_v.vmap)
vjp = _t.vjp
jvp = _t.jvp
jacobian = jacrev

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacrev", "jacfwd", "jacobian", "hessian",
           "vmap", "jit", "stop_gradient", "make_ir", "custom_vjp", "custom_jvp",
           "TracedArray", "GuardFailed"]
