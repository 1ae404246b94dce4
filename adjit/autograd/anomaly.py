"""`adjit.autograd.detect_anomaly` / `set_detect_anomaly`: PyTorch's anomaly mode over the
eager tape. While it is on, each recorded op keeps the user's stack of its forward call, every
backward runs on the direct engine (one derivative rule at a time), and with `check_nan` a rule
that produces NaN raises PyTorch's RuntimeError ("Function 'DivBackward0' returned nan values in
its 1th output.") after a UserWarning showing the forward call's stack."""
from __future__ import annotations

import functools
import warnings

from ..ir.core import STATE

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "is_anomaly_check_nan_enabled"]


class detect_anomaly:
    """Context manager (and decorator) turning anomaly detection on inside."""

    def __init__(self, check_nan=True):
        self.check_nan = bool(check_nan)
        warnings.warn("Anomaly Detection has been enabled. This mode will increase the runtime "
                      "and should only be enabled for debugging.", UserWarning, stacklevel=2)

    def __enter__(self):
        self._prev = (STATE.anomaly, STATE.anomaly_nan)
        STATE.anomaly, STATE.anomaly_nan = True, self.check_nan
        return self

    def __exit__(self, *exc):
        STATE.anomaly, STATE.anomaly_nan = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = (STATE.anomaly, STATE.anomaly_nan)
            STATE.anomaly, STATE.anomaly_nan = True, self.check_nan
            try:
                return fn(*args, **kwargs)
            finally:
                STATE.anomaly, STATE.anomaly_nan = prev
        return wrapper


class set_detect_anomaly:
    """Takes effect when called (`adjit.autograd.set_detect_anomaly(True)` as a statement);
    as a context manager it restores the previous mode on exit."""

    def __init__(self, mode, check_nan=True):
        self._prev = (STATE.anomaly, STATE.anomaly_nan)
        STATE.anomaly, STATE.anomaly_nan = bool(mode), bool(check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        STATE.anomaly, STATE.anomaly_nan = self._prev
        return False


def is_anomaly_enabled():
    return STATE.anomaly


def is_anomaly_check_nan_enabled():
    return STATE.anomaly_nan
