"""SciPy's functions on traced arrays (as `jax.scipy` and `autograd.scipy`): `adjit.scipy.special`,
`adjit.scipy.stats`, `adjit.scipy.linalg` Each submodule is imported on first use (SciPy is not imported with
adjit)."""
import importlib as _importlib


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        mod = _importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"{__name__}.{name}":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        raise
    globals()[name] = mod
    return mod
