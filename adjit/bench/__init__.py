"""The benchmark framework behind `adjit bench`: workloads, timing, agreement checks.

A workload is a module in `adjit/bench/workloads/` whose `workload()` returns a `Workload`:

    Workload(name="W1", title="scalar poly, grad", inputs=make_inputs,
             impls={"adjit": adjit_setup, "numpy": numpy_setup, "torch": torch_setup, ...})

`inputs(seed)` makes the inputs (NumPy arrays, seeded). Every implementation is a *setup*
callable, or None when its library is not installed (a peer a workload does not list has no row
in the table: `measure` says "n/a"): `setup(inputs)` converts the inputs once
(outside the timing) and returns `run`, a zero-argument callable that computes the result
(arrays, tensors, scalars, or a tuple of them). The runner times `run`: the first call alone
(it includes compilation for the jitting peers), then per-call median, p10 and p90 after
warm-up, and the process's peak RSS; and checks every result against the reference (NumPy by
default) within the workload's tolerances. PEERS lists the implementation names in table order.

`adjit.pytree` (VARIANTS) is an optional row: adjit called the way JAX users write the same
step (e.g. `value_and_grad(loss)(params, X, labels)` with `params` a dict). A workload that has
it is judged by it: `ratio` takes that row as adjit's, and no adjit row counts as a peer.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import re
import resource
import sys
import time

import numpy as np

PEERS = ("adjit", "adjit.pytree", "numpy", "torch", "torch.func", "torch.compile", "jax",
         "autograd")
VARIANTS = ("adjit.pytree",)  # optional rows: only the workloads that define them list them
THREADS = 2
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


class Workload:
    """One benchmark: its name, how to make inputs, its implementations (see module doc)."""

    def __init__(self, name, title, inputs, impls, reference="numpy", rtol=1e-6, atol=1e-9,
                 rtol_f32=2e-4, atol_f32=1e-5):
        self.name = name
        self.title = title
        self.inputs = inputs
        self.impls = dict(impls)
        self.reference = reference
        self.rtol, self.atol = rtol, atol
        self.rtol_f32, self.atol_f32 = rtol_f32, atol_f32


class Result:
    """The measurement of one implementation of one workload (times in seconds)."""
    FIELDS = ("workload", "impl", "status", "median", "p10", "p90", "first", "calls",
              "peak_rss_mb", "max_err", "message")

    def __init__(self, workload, impl, status, **kw):
        self.workload, self.impl, self.status = workload, impl, status
        for f in self.FIELDS[3:]:
            setattr(self, f, kw.get(f))

    def as_dict(self):
        return {f: getattr(self, f) for f in self.FIELDS}


def limit_threads(n=THREADS):
    """Environment for `n` threads in every peer (must be set before NumPy, torch, jax load
    their thread pools); returns the variables it set."""
    env = {v: str(n) for v in THREAD_VARS}
    env["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                        f" intra_op_parallelism_threads={n}").strip()
    os.environ.update(env)
    return env


def torch_threads(n=THREADS):
    """`torch.set_num_threads(n)` if torch is importable (call from a torch setup)."""
    import torch
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch


def installed(modname) -> bool:
    """Whether a peer library is installed (without importing it: torch takes seconds)."""
    try:
        return importlib.util.find_spec(modname) is not None
    except (ImportError, ValueError):
        return False


# ------------------------------------------------------------------------------ discovery

def discover(package="adjit.bench.workloads"):
    """{name: Workload} of every module of the workloads package, in name order."""
    try:
        pkg = importlib.import_module(package)
    except ImportError as exc:
        raise RuntimeError(f"cannot import the workloads package {package!r}: {exc}") from None
    found = {}
    def order(m):  # w2 before w10
        num = re.match(r"w(\d+)", m.name)
        return (int(num.group(1)) if num else 0, m.name)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=order):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{package}.{info.name}")
        make = getattr(mod, "workload", None)
        if make is None:
            continue
        w = make()
        found[w.name] = w
    return found


# ------------------------------------------------------------------------------ results

def as_arrays(res):
    """A result (array, tensor, scalar, or a tuple/list/dict of them, nested) as a flat list of
    NumPy arrays; a dict's values in sorted key order (as JAX flattens a dict), so that
    implementations building the same dict in another order compare equal."""
    if isinstance(res, dict):
        try:
            keys = sorted(res)
        except TypeError:  # keys of mixed types: by their text
            keys = sorted(res, key=repr)
        res = [res[k] for k in keys]
    if isinstance(res, (tuple, list)):
        out = []
        for r in res:
            out.extend(as_arrays(r))
        return out
    if hasattr(res, "detach"):  # torch
        res = res.detach().cpu().numpy()
    elif hasattr(res, "block_until_ready"):  # jax
        res = np.asarray(res)
    elif hasattr(res, "numpy") and not isinstance(res, np.ndarray):  # adjit.Tensor
        res = res.numpy()
    return [np.asarray(res)]


def compare(got, want, w: Workload):
    """Max error scaled by tolerance (<= 1 passes) and a message, comparing lists of arrays."""
    if len(got) != len(want):
        return float("inf"), f"{len(got)} outputs, reference has {len(want)}"
    worst = 0.0
    for g, r in zip(got, want):
        if g.shape != r.shape:
            return float("inf"), f"shape {g.shape}, reference {r.shape}"
        f32 = np.float32 in (g.dtype, r.dtype)
        rtol, atol = (w.rtol_f32, w.atol_f32) if f32 else (w.rtol, w.atol)
        g64, r64 = g.astype(np.float64), r.astype(np.float64)
        if not np.array_equal(np.isnan(g64), np.isnan(r64)):
            return float("inf"), "NaN where the reference has none (or the reverse)"
        err = np.abs(g64 - r64) / (atol + rtol * np.abs(r64))
        err = err[~np.isnan(err)]
        worst = max(worst, float(err.max()) if err.size else 0.0)
    return worst, "" if worst <= 1 else f"max error {worst:.3g}x the tolerance"


# ------------------------------------------------------------------------------ timing

def peak_rss_mb():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1 << 20) if sys.platform == "darwin" else r / 1024  # bytes on macOS, KiB else


def time_calls(run, quick=False, budget=None):
    """(first call, [per-call seconds of each sample], calls per sample)."""
    t0 = time.perf_counter()
    first_out = run()
    first = time.perf_counter() - t0
    budget = budget if budget is not None else (0.05 if quick else 1.0)
    n_samples = 7 if quick else 31
    # warm up, then size a sample to ~budget / n_samples so timer resolution does not matter
    number, t = 1, 0.0
    deadline = time.perf_counter() + budget / 4
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        for _ in range(number):
            run()
        t = time.perf_counter() - t0
        if t > budget / n_samples:
            break
        number *= 2
    # adjit's tiers: enough calls that every graph asked for its code, which is ready (and
    # switched to) before timing: the samples time the steady state
    from ..runtime import HOT_CALLS, wait_for_compiles
    for _ in range(HOT_CALLS + 1):
        run()
    wait_for_compiles(120)
    for _ in range(2):
        run()
    number = max(1, int(number * (budget / n_samples) / max(t, 1e-9)))
    samples = []
    for _ in range(n_samples):
        t0 = time.perf_counter()
        for _ in range(number):
            run()
        samples.append((time.perf_counter() - t0) / number)
    return first, samples, number, first_out


def measure(w: Workload, impl: str, quick=False, seed=0, reference=None) -> Result:
    """Set up, check and time one implementation. `reference`: the reference's outputs."""
    if impl not in w.impls:
        return Result(w.name, impl, "n/a", message="not defined by this workload")
    setup = w.impls[impl]
    if setup is None:
        return Result(w.name, impl, "missing", message="not installed")
    try:
        run = setup(w.inputs(seed))
        first, samples, number, out = time_calls(run, quick)
    except Exception as exc:  # noqa: BLE001 - a failing peer is a table entry, not a crash
        msg = str(exc).strip().splitlines()
        return Result(w.name, impl, "error",
                      message=f"{type(exc).__name__}: {msg[0] if msg else ''}"[:200])
    err, msg = (0.0, "") if reference is None else compare(as_arrays(out), reference, w)
    p10, med, p90 = np.percentile(samples, [10, 50, 90])
    return Result(w.name, impl, "ok" if err <= 1 else "mismatch", median=float(med),
                  p10=float(p10), p90=float(p90), first=first, calls=number * len(samples),
                  peak_rss_mb=peak_rss_mb(), max_err=err, message=msg)


def reference_outputs(w: Workload, seed=0):
    setup = w.impls.get(w.reference)
    if setup is None:
        raise RuntimeError(f"{w.name}: the reference implementation {w.reference!r} is missing")
    return as_arrays(setup(w.inputs(seed))())


def adjit_row(results, workload):
    """The adjit implementation a workload is judged by: its `adjit.pytree` variant when it has
    one (measured), else `adjit`."""
    have = {r.impl for r in results if r.workload == workload}
    return "adjit.pytree" if "adjit.pytree" in have else "adjit"


def ratio(results, workload):
    """(adjit median / best peer median, best peer name) over the peers that ran correctly;
    adjit's row is `adjit_row`'s."""
    ok = {r.impl: r for r in results if r.workload == workload and r.status == "ok"}
    mine = adjit_row(results, workload)
    if mine not in ok:
        return None, None
    peers = [r for name, r in ok.items() if not name.startswith("adjit")]
    if not peers:
        return None, None
    best = min(peers, key=lambda r: r.median)
    return ok[mine].median / best.median, best.impl
