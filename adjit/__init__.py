"""adjit: differentiate and compile numerical Python.

Eager, PyTorch-style tensors::

    >>> import adjit as torch
    >>> x = torch.tensor([1., 2., 3.], requires_grad=True)
    >>> ((x * 2 + 3) ** 2).mean().backward()
    >>> x.grad
    tensor([ 6.6667,  9.3333, 12.0000])
"""
from .ir import prims as _prims  # noqa: F401  (registers the primitives)
from .tracer.tensor import (Tensor, Size, dtype, float32, float64, int32, int64, bool_, float,
                            double, long, int)
from .tracer.tensor import bool_ as bool  # noqa: A001  (adjit.bool, as torch.bool)
from .tracer import methods as _methods
from .tracer.grad_mode import (no_grad, enable_grad, set_grad_enabled, is_grad_enabled,
                               inference_mode, is_inference_mode_enabled)
from .tracer.factory import (tensor, as_tensor, from_numpy, zeros, ones, full, empty, zeros_like,
                             ones_like, full_like, randn, rand, randint, randn_like, rand_like,
                             empty_like, arange,
                             linspace, eye, is_tensor, numel, cat, concat, stack, where,
                             manual_seed, Generator, FUNCTIONS as _FUNCTIONS)
from .viz.make_dot import make_dot

_methods.install()
Tensor.__module__ = "adjit"
globals().update(_FUNCTIONS)
from .tracer import tensor_ufuncs as _tensor_ufuncs  # noqa: E402  (issue 15: atan2, fmod, ...)
_tensor_ufuncs.install()
globals().update(_tensor_ufuncs.FUNCTIONS)
from .tracer import tensor_shape_functions as _tensor_shape  # noqa: E402  (issue 15: sort, ...)
_tensor_shape.install()
globals().update(_tensor_shape.FUNCTIONS)
from .tracer import tensor_inplace as _tensor_inplace  # noqa: E402  (sin_, fill_, masked_fill)
_tensor_inplace.install()
globals().update(_tensor_inplace.FUNCTIONS)

from .transforms import *  # noqa: F401,F403,E402  (the JAX-style transforms)
from . import autograd  # noqa: E402  (torch.autograd: Function, grad, functional, ...)
from .autograd.anomaly import (is_anomaly_enabled,  # noqa: E402,F401  (torch.is_anomaly_...)
                               is_anomaly_check_nan_enabled)
from . import func  # noqa: E402,F401  (torch.func: grad, vmap, jacrev, ... over the transforms)

from .runtime.cache import cache_info, cache_clear  # noqa: E402

from ._version import __version__  # noqa: E402,F401
from . import linalg  # noqa: E402,F401  (torch.linalg)
from . import flatten_util  # noqa: E402,F401  (jax.flatten_util: ravel_pytree)

# Loaded with adjit rather than by the first traced call or the first interpreted run: the
# NumPy front's dispatch tables (np_dispatch and the modules it registers) and the interpreter
# tier. They cost ~2 ms here; left lazy, the first call of a jitted step in a fresh process
# paid them (issue 18: the slowest of a new step's first 20 calls).
from .tracer import np_dispatch as _np_dispatch  # noqa: E402,F401
from .runtime import interpreter as _interpreter  # noqa: E402,F401

# Submodules reached as attributes after `import adjit` alone, as torch's are (`torch.special.
# expit(x)` with no `import torch.special`), imported on first use so `import adjit` stays cheap
# (adjit.scipy's submodules import SciPy). Any other missing name is an AttributeError.
_LAZY_SUBMODULES = ("special", "numpy", "scipy")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib
        mod = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = mod
        return mod
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))
