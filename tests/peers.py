"""Optional peer libraries (torch, jax, ...) that tests compare adjit against.

``require(name)`` imports a peer or skips the calling test module when it is missing.  Setting
``ADJIT_REQUIRE_PEERS=1`` turns a missing peer into a failure, so CI that installs the peers
cannot silently skip every comparison.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def peers_required() -> bool:
    return os.environ.get("ADJIT_REQUIRE_PEERS", "") == "1"


def require(name: str, minversion: str | None = None) -> ModuleType:
    """Import and return peer module ``name``; skip (or fail, see module doc) if unavailable.

    Meant to be called at module level of a test file: ``torch = require("torch")``.
    """
    if peers_required():
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            pytest.fail(
                f"peer {name!r} is required (ADJIT_REQUIRE_PEERS=1) but cannot be imported: "
                f"{exc}",
                pytrace=False,
            )
        if minversion is not None:
            # importorskip does the version comparison; with the module importable it can only
            # skip for a too-old version, which we also want to be a failure here.
            try:
                pytest.importorskip(name, minversion=minversion)
            except pytest.skip.Exception as exc:
                pytest.fail(f"peer {name!r}: {exc}", pytrace=False)
        return module
    return pytest.importorskip(name, minversion=minversion)


# ------------------------------------------------------------------ shared subprocess helper
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout


def run_adjit(args, cwd=None, stdin=None, env=None, timeout=120, text=True):
    """`python -m adjit ARGS` in a subprocess of this interpreter, from `cwd` (default: the
    checkout's root), with os.environ plus `env` (the test run's private ADJIT_CACHE_DIR
    included, see conftest.py). `stdin` is text, or bytes with text=False."""
    import subprocess
    import sys
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "adjit", *args], input=stdin, text=text,
                          capture_output=True, cwd=cwd or ROOT, env=e, timeout=timeout)


# ------------------------------------------------------------------ adjit against torch
def same_as_torch(scenario, rtol=1e-12, atol=1e-14):
    """Run `scenario(T)` with T = adjit and T = torch and assert the observations agree:
    Tensors as (values, dtype, requires_grad), tuples and lists element by element (the kind
    of sequence too), exceptions as (type name, message), anything else by ==. Returns adjit's
    observation."""
    import numpy as np
    import adjit
    torch = require("torch")

    def norm(o):
        if isinstance(o, (adjit.Tensor, torch.Tensor)):
            return ("tensor", np.array(o.detach().numpy()), o.requires_grad)
        if isinstance(o, (tuple, list)):
            return (type(o).__name__,) + tuple(norm(x) for x in o)
        return o

    def same(x, y):
        if isinstance(x, np.ndarray):
            assert isinstance(y, np.ndarray) and x.dtype == y.dtype and x.shape == y.shape, \
                (x, y)
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)
        elif isinstance(x, tuple):
            assert isinstance(y, tuple) and len(x) == len(y), (x, y)
            for u, v in zip(x, y):
                same(u, v)
        else:
            assert x == y, (x, y)

    out = {}
    for name, T in (("adjit", adjit), ("torch", torch)):
        try:
            out[name] = norm(scenario(T))
        except Exception as e:  # noqa: BLE001 - the exception is the observation
            out[name] = (type(e).__name__, str(e))
    same(out["adjit"], out["torch"])
    return out["adjit"]


def central_diff(f, x, h=1e-6):
    """The independent reference for gradients: central differences of scalar `f` at `x`
    (each perturbed point a new array; an integer x is taken as float64)."""
    import numpy as np
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g
