"""Differentiating many small functions once each: adjit.grad (no jit) vs HIPS autograd and JAX.

    ADJIT_TIER=auto python benchmarks/oneshot.py [--n 200] [--impls adjit,autograd,jax]
                                                 [--profile] [--json OUT]

What a notebook or a test suite does: 200 distinct small NumPy functions (of one or two arrays
of a few elements, in the style of HIPS autograd's tests), each differentiated once. Every
function is generated from its own source text and compiled to its own code object for each
implementation, so no cache keyed by code can serve a later one. Run in a fresh process with
an empty ADJIT_CACHE_DIR (made here unless ADJIT_ONESHOT_KEEP_CACHE=1); every implementation
is warmed up on one function of its own first (imports, JIT engines). Reports the median per
function and the total, per implementation. ADJIT_TIER chooses adjit's tier (auto: interpret
first, compile when hot; native: compile before the first call returns).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
if os.environ.get("ADJIT_ONESHOT_KEEP_CACHE") != "1":
    os.environ["ADJIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="adjit-oneshot-")

import numpy  # noqa: E402

UNARY = ["np.sin({})", "np.cos({})", "np.tanh({})", "np.exp(0.3 * {})", "np.log(1.5 + {} ** 2)",
         "np.sqrt(2.0 + {})", "({}) ** 3", "np.abs({})", "1.0 / (1.0 + np.exp(-{}))",
         "np.arctan({})", "np.sinh(0.5 * {})", "np.log1p(np.exp({}))", "({}) * ({})",
         "np.maximum({}, 0.1)", "np.where({} > 0, {}, 0.5 * {})", "np.expm1(0.2 * {})"]
REDUCE = ["np.sum({})", "np.mean({})", "np.sum({} ** 2)", "np.max({})", "np.prod(1.0 + 0.1 * {})",
          "np.sum(np.dot({}, W))", "np.linalg.norm({})", "np.sum(np.cumsum({}))",
          "np.sum({}[1:] - {}[:-1])", "np.sum(np.outer({}, {}))",
          "np.sum({}.reshape(2, 3).T @ np.ones(2))", "np.var({})"]


def sources(n):
    """n distinct function sources f(x) -> scalar, x of shape (6,)."""
    out = []
    k = 0
    nu, nr = len(UNARY), len(REDUCE)
    while len(out) < n:
        a, b, r = UNARY[k % nu], UNARY[(k // nu + 3 * k) % nu], REDUCE[(k * 7 + k // nu) % nr]
        inner = a.replace("{}", "x")
        outer = b.replace("{}", f"({inner})")
        body = r.replace("{}", f"({outer})")
        scale = 1.0 + 0.01 * k  # every source differs
        out.append(f"def f{k}(x):\n    W = np.arange(6.0) / 6\n    return {scale!r} * {body}\n")
        k += 1
    return out


def build(src, name, np_module):
    ns = {"np": np_module}
    exec(compile(src, f"<oneshot {name}>", "exec"), ns)
    return ns[name]


def run_impl(impl, srcs, x, profile=False):
    if impl == "adjit":
        import adjit
        np_mod, grad = numpy, adjit.grad
    elif impl == "autograd":
        import autograd
        import autograd.numpy as anp
        np_mod, grad = anp, autograd.grad
    elif impl == "jax":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        np_mod, grad = jnp, jax.grad
    else:
        raise SystemExit(f"unknown implementation {impl!r}")
    warm = "def warm(x):\n    return np.sum(np.sin(x) * x)\n"
    numpy.asarray(grad(build(warm, "warm", np_mod))(x))
    fns = [build(s, f"f{k}", np_mod) for k, s in enumerate(srcs)]
    times, results = [], []
    prof = None
    if profile:
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    t_all = time.perf_counter()
    for f in fns:
        t0 = time.perf_counter()
        g = numpy.asarray(grad(f)(x))
        times.append(time.perf_counter() - t0)
        results.append(g)
    total = time.perf_counter() - t_all
    if prof is not None:
        prof.disable()
        import pstats
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
    return {"median": statistics.median(times), "total": total, "max": max(times)}, results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--impls", default="adjit,autograd,jax")
    ap.add_argument("--profile", action="store_true", help="cProfile adjit's run")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    srcs = sources(a.n)
    assert len(set(srcs)) == len(srcs)
    x = numpy.linspace(-0.9, 1.1, 6)
    rows, ref = {}, None
    tier = os.environ.get("ADJIT_TIER", "") or "default"
    for impl in a.impls.split(","):
        r, res = run_impl(impl, srcs, x, profile=a.profile and impl == "adjit")
        if ref is None:
            ref = res
        else:  # the same gradients (the benchmark measures nothing wrong)
            bad = [k for k, (p, q) in enumerate(zip(ref, res))
                   if not numpy.allclose(p, q, rtol=1e-9, atol=1e-12)]
            if bad:
                print(f"warning: {impl} disagrees on functions {bad[:10]}", file=sys.stderr)
        rows[impl] = r
    print(f"{a.n} distinct functions, grad once each (adjit: ADJIT_TIER={tier})")
    print(f"{'impl':<10}{'median ms':>11}{'max ms':>9}{'total s':>9}{'vs autograd':>13}")
    base = rows.get("autograd", {}).get("total")
    for impl, r in rows.items():
        rel = f"{r['total'] / base:12.1f}x" if base else ""
        print(f"{impl:<10}{1e3 * r['median']:11.2f}{1e3 * r['max']:9.1f}{r['total']:9.2f}{rel}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"tier": tier, "n": a.n, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
