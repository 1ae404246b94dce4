"""The public names of the JAX-style transforms (re-exported by adjit/__init__.py)."""
from .ir.core import GuardFailed
from .tracer.ndarray import TracedArray
from .transforms import (grad, value_and_grad, vjp, jvp, jacrev, jacfwd, hessian, vmap,
                         stop_gradient, make_ir)
from .transforms_custom import custom_jvp, custom_vjp
from .transforms_jit import jit

jacobian = jacrev

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacrev", "jacfwd", "jacobian", "hessian",
           "vmap", "jit", "stop_gradient", "make_ir", "custom_vjp", "custom_jvp",
           "TracedArray", "GuardFailed"]
