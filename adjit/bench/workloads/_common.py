"""Helpers shared by the workload modules (a leading underscore: not a workload itself).

- `peers()`: which optional peers are installed (without importing them).
- `impls(...)`: the `impls` dict of a Workload, a peer's setup replaced by None when missing.
- `cold_inductor()`: torch.compile's caches pointed at a fresh, empty folder, so that the first
  call of a torch.compile peer includes the whole Inductor compilation ("cold inductor cache").
  `ADJIT_BENCH_INDUCTOR_CACHE=DIR` keeps one folder instead (benchmarks/cold_start.py uses it
  to measure a warm disk cache).
- `jax_x64()`: JAX with float64 enabled (W1 turns it on process-wide anyway; float32 inputs stay
  float32 under it).
- `jax_ready(tree)`: block until every array of a result is computed.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from adjit.bench import installed

PEER_MODULES = {"torch": "torch", "torch.func": "torch", "torch.compile": "torch",
                "jax": "jax", "autograd": "autograd"}


def peers():
    return {m: installed(m) for m in ("torch", "jax", "autograd")}


def impls(**setups):
    """{peer name: setup or None}; keyword names use `_` for `.` (torch_func -> torch.func,
    adjit_pytree -> adjit.pytree)."""
    have = peers()
    out = {}
    for key, setup in setups.items():
        name = key.replace("_", ".") if key.startswith(("torch_", "adjit_")) else key
        mod = PEER_MODULES.get(name)
        out[name] = setup if (mod is None or have[mod]) else None
    return out


_TMP_DIRS = []


def cold_inductor():
    """Fresh Inductor cache folder and cleared in-memory caches; returns torch."""
    import torch
    keep = os.environ.get("ADJIT_BENCH_INDUCTOR_CACHE")
    if keep:
        os.makedirs(keep, exist_ok=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = keep
        return torch
    d = tempfile.mkdtemp(prefix="adjit-bench-inductor-")
    if not _TMP_DIRS:
        atexit.register(lambda: [shutil.rmtree(p, ignore_errors=True) for p in _TMP_DIRS])
    _TMP_DIRS.append(d)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = d
    try:
        from torch._inductor.utils import clear_caches
        clear_caches()
    except Exception:  # noqa: BLE001 - an internal helper; a fresh folder is the main thing
        pass
    return torch


def jax_x64():
    import jax
    jax.config.update("jax_enable_x64", True)
    return jax


def jax_ready(tree):
    import jax
    return jax.block_until_ready(tree)
