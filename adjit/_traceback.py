"""Hide adjit's own frames from the tail of a user's traceback (as JAX filters its frames).

An error raised while adjit traces the user's function (a shape mismatch in their `x @ w`, an
unsupported NumPy call) should end at the user's line, not in twenty frames of adjit's
dispatch. `api_boundary` wraps the callables the public transforms return; on an exception it
relinks the traceback to skip frames whose code lives in the adjit package. Set
ADJIT_TRACEBACK=full to keep every frame (when debugging adjit itself).
"""
from __future__ import annotations

import functools
import os

from ._frames import is_adjit_file


def _internal(tb):
    return is_adjit_file(tb.tb_frame.f_code.co_filename)


def filter_traceback(tb):
    keep = []
    while tb is not None:
        if not _internal(tb):
            keep.append(tb)
        tb = tb.tb_next
    for a, b in zip(keep, keep[1:]):
        a.tb_next = b
    if keep:
        keep[-1].tb_next = None
        return keep[0]
    return None


_FUNCTION = type(filter_traceback)
# what update_wrapper copies on this Python (3.12 adds __type_params__: functools' own then)
_PLAIN = functools.WRAPPER_ASSIGNMENTS == ("__module__", "__name__", "__qualname__", "__doc__",
                                           "__annotations__") and \
    functools.WRAPPER_UPDATES == ("__dict__",)


def wraps(fn):
    """functools.wraps(fn), with a plain function's attributes copied by direct assignment
    (update_wrapper's getattr/setattr loop costs ~1 us, paid by every grad(f) made anew for a
    call): the same attributes, values and `__wrapped__`."""
    if type(fn) is not _FUNCTION or not _PLAIN:
        return functools.wraps(fn)

    def deco(wrapper):
        wrapper.__module__ = fn.__module__
        wrapper.__name__ = fn.__name__
        wrapper.__qualname__ = fn.__qualname__
        wrapper.__doc__ = fn.__doc__
        wrapper.__annotations__ = fn.__annotations__
        wrapper.__dict__.update(fn.__dict__)
        wrapper.__wrapped__ = fn
        return wrapper
    return deco


def api_boundary(fn):
    """Wrap a user-facing callable so its exceptions carry a filtered traceback."""
    @wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if os.environ.get("ADJIT_TRACEBACK") == "full":
                raise
            tb = filter_traceback(exc.__traceback__)
            raise exc.with_traceback(tb) from exc.__cause__ if exc.__cause__ else None
    wrapped.__wrapped_transform__ = fn
    return wrapped


def transform_boundary(transform):
    """`transform(f, ...)` returns a callable: wrap that callable (decorator use included)."""
    @functools.wraps(transform)
    def make(*args, **kwargs):
        out = transform(*args, **kwargs)
        return api_boundary(out) if callable(out) else out
    return make
