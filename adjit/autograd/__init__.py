"""`adjit.autograd`: PyTorch's `torch.autograd` API over adjit's eager tape.

Function (custom operators), grad, backward, the grad-mode switches, functional (jacobian,
hessian, vjp, jvp, hvp, vhp), gradcheck/gradgradcheck. See docs/torch_reference.md.
"""
from __future__ import annotations

from ..tracer.grad_mode import (enable_grad, inference_mode, is_grad_enabled, no_grad,
                                set_grad_enabled)
from .function import Function, FunctionCtx, once_differentiable
from .engine import backward, grad
from . import functional
from .gradcheck import gradcheck, gradgradcheck, GradcheckError
from .anomaly import (detect_anomaly, set_detect_anomaly, is_anomaly_enabled,
                      is_anomaly_check_nan_enabled)

__all__ = ["Function", "FunctionCtx", "once_differentiable", "grad", "backward", "no_grad",
           "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode", "functional",
           "gradcheck", "gradgradcheck", "GradcheckError", "detect_anomaly",
           "set_detect_anomaly", "is_anomaly_enabled", "is_anomaly_check_nan_enabled"]
