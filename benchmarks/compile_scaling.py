"""Compile time against graph size: adjit's stages vs JAX's `jax.jit(f).lower(*args).compile()`.

    python benchmarks/compile_scaling.py [--families chain,mlp,lstm] [--sizes S,M,...]
                                         [--no-jax] [--json OUT] [--profile FAMILY:SIZE]
                                         [--cpu]

Warm process, cold cache: one warm-up compile first (LLVM and JAX initialised), then every
measured graph is new (its own structure, so no memory cache can serve it) and adjit runs with a
fresh, empty ADJIT_CACHE_DIR and cleared in-memory caches. JAX runs with x64 and its persistent
compilation cache off. Both sides compile the same computation in float64:

- `chain`: an elementwise chain of n steps (sin, mul, add, tanh, exp, ...) on f64[256]; forward only.
- `mlp`:   value_and_grad of a tanh MLP stack of n layers (64 wide, batch 32), squared loss.
- `lstm`:  value_and_grad of an n-step unrolled LSTM (hidden 32, input 16, batch 8), squared loss.

adjit's time is split into the stages of its pipeline:
  trace    make_ir(f)(*args): the forward graph recorded from the NumPy code
  autodiff ir.autodiff.vjp_graph (value and gradient in one graph; mlp and lstm)
  passes   ir.passes.optimize (DCE, CSE, folding, simplification)
  lower    codegen.lower: inlining, fusion planning, LLVM IR text
  llvm     runtime.engine.optimize: parse + verify + the -O3 pipeline
  codegen  runtime.engine.emit_object: machine code
and `eqns` is the number of equations of the graph that is compiled (after `passes`).
JAX's time is `lower` (trace + StableHLO) and `compile` (XLA).
`--cpu` measures the process's CPU time (time.process_time, every thread) instead of wall
time: on a loaded machine wall time counts the other processes' turns too.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

clock = time.perf_counter  # --cpu: time.process_time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

if "ADJIT_CACHE_DIR" not in os.environ or os.environ.get("ADJIT_SCALING_KEEP_CACHE") != "1":
    os.environ["ADJIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="adjit-scaling-")

import numpy as np  # noqa: E402

# ----------------------------------------------------------------------------- the functions
# Each builder returns (f, args, grad): f written once against a NumPy-like module `xp`, so the
# same code is traced by adjit (plain numpy) and JAX (jax.numpy).


def chain(n, xp):
    # 5 equations per step (sin, mul, add, tanh/exp, mul)
    steps = max(1, n // 5)

    def f(x):
        for i in range(steps):
            y = xp.sin(x) * (1.0 + 1e-3 * i)
            x = y + (xp.tanh(x) if i % 2 else xp.exp(-x * x)) * 0.5
        return x
    return f, (np.linspace(-1, 1, 256),), False


def mlp(n, xp):
    rng = np.random.default_rng(0)
    layers = max(1, n)
    Ws = tuple(rng.standard_normal((64, 64)) / 8 for _ in range(layers))
    X = rng.standard_normal((32, 64))
    T = rng.standard_normal((32, 64))

    def f(Ws, X, T):
        h = X
        for W in Ws:
            h = xp.tanh(h @ W)
        return xp.sum((h - T) ** 2)
    return f, (Ws, X, T), True


def lstm(n, xp):
    rng = np.random.default_rng(0)
    H, I, B = 32, 16, 8
    W = rng.standard_normal((I + H, 4 * H)) / 8
    b = np.zeros(4 * H)
    xs = rng.standard_normal((n, B, I))
    T = rng.standard_normal((B, H))

    def sigmoid(z):
        return 0.5 * (xp.tanh(0.5 * z) + 1.0)

    def f(params, xs, T):
        W, b = params
        h = xp.zeros((B, H))
        c = xp.zeros((B, H))
        for t in range(n):
            z = xp.concatenate([xs[t], h], axis=1) @ W + b
            i, fg, o, g = (sigmoid(z[:, :H]), sigmoid(z[:, H:2 * H]),
                           sigmoid(z[:, 2 * H:3 * H]), xp.tanh(z[:, 3 * H:]))
            c = fg * c + i * g
            h = o * xp.tanh(c)
        return xp.sum((h - T) ** 2)
    return f, ((W, b), xs, T), True


FAMILIES = {"chain": chain, "mlp": mlp, "lstm": lstm}
# sizes are the builders' parameter: chain equations, MLP layers, LSTM steps
SIZES = {"chain": [100, 300, 1000, 3000, 10000], "mlp": [2, 8, 32, 128, 256],
         "lstm": [5, 15, 50, 150]}


# ----------------------------------------------------------------------------- adjit
def _leaves(x):
    return sum(_leaves(y) for y in x) if isinstance(x, (tuple, list)) else 1


def adjit_compile(f, args, grad, profile=None):
    import adjit
    from adjit.ir.autodiff import vjp_graph
    from adjit.ir.passes import optimize
    from adjit.codegen.lower import lower
    from adjit.runtime import engine, cache_clear
    cache_clear()
    t = {}
    prof = None
    if profile:
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    t0 = clock()
    g = adjit.make_ir(f)(*args)
    t["trace"] = clock() - t0
    if grad:
        t0 = clock()
        # d/d every leaf of the first argument (a tuple of parameters), as jax.grad's argnums=0
        g = vjp_graph(g, wrt=list(range(_leaves(args[0]))))
        t["autodiff"] = clock() - t0
    else:
        t["autodiff"] = 0.0
    t0 = clock()
    opt = optimize(g)
    t["passes"] = clock() - t0
    t0 = clock()
    text, meta = lower(opt)
    t["lower"] = clock() - t0
    t0 = clock()
    mod = engine.optimize(text, "scaling")
    t["llvm"] = clock() - t0
    t0 = clock()
    engine.emit_object(mod, "scaling")
    t["codegen"] = clock() - t0
    if prof is not None:
        prof.disable()
        import pstats
        pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    t["total"] = sum(t[k] for k in ("trace", "autodiff", "passes", "lower", "llvm", "codegen"))
    t["eqns"] = len(opt.eqns)
    t["traced_eqns"] = len(g.eqns)
    return t


def adjit_jit_total(f, args, grad):
    """End to end through the user API: jit (of value_and_grad), native tier, until the first
    call that runs native code has returned (trace + compile + run)."""
    import adjit
    from adjit.runtime import cache_clear
    cache_clear()
    fn = adjit.jit(adjit.value_and_grad(f) if grad else f)
    t0 = clock()
    for _ in range(3):  # jit compiles on its first or second call
        fn(*args)
    return clock() - t0


# ----------------------------------------------------------------------------- jax
def jax_compile(builder, n):
    import jax
    import jax.numpy as jnp
    f, args, grad = builder(n, jnp)
    fn = jax.value_and_grad(f) if grad else f
    t0 = clock()
    lowered = jax.jit(fn).lower(*args)
    t1 = clock()
    lowered.compile()
    t2 = clock()
    return {"lower": t1 - t0, "compile": t2 - t1, "total": t2 - t0}


def setup_jax():
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_enable_compilation_cache", False)
    return jax


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", default="chain,mlp,lstm")
    ap.add_argument("--sizes", default=None, help="override the sizes (builder parameters)")
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--profile", default=None, help="FAMILY:SIZE: cProfile adjit's compile")
    ap.add_argument("--jit", action="store_true", help="also time adjit.jit end to end")
    ap.add_argument("--cpu", action="store_true", help="CPU time instead of wall time")
    a = ap.parse_args(argv)
    global clock
    if a.cpu:
        clock = time.process_time
    os.environ.setdefault("ADJIT_TIER", "native")
    if a.profile:
        fam, size = a.profile.split(":")
        b = FAMILIES[fam]
        f, args, grad = b(2, np)
        adjit_compile(f, args, grad)  # warm-up
        f, args, grad = b(int(size), np)
        print(adjit_compile(f, args, grad, profile=True))
        return
    jax = None if a.no_jax else setup_jax()
    rows = []
    # warm-up: LLVM, the math library, JAX's backend
    for fam in FAMILIES.values():
        f, args, grad = fam(2, np)
        adjit_compile(f, args, grad)
        if jax is not None:
            jax_compile(fam, 2)
    print(f"{'graph':<12}{'eqns':>7}{'trace':>8}{'ad':>7}{'passes':>8}{'lower':>8}{'llvm':>8}"
          f"{'codegen':>8}{'adjit':>8}{'jax':>8}  (ms)" + ("  jit" if a.jit else ""))
    for name in a.families.split(","):
        b = FAMILIES[name]
        sizes = [int(s) for s in a.sizes.split(",")] if a.sizes else SIZES[name]
        for n in sizes:
            f, args, grad = b(n, np)
            t = adjit_compile(f, args, grad)
            row = {"graph": f"{name}-{n}", **t}
            if jax is not None:
                row["jax"] = jax_compile(b, n)
            if a.jit:
                f, args, grad = b(n, np)
                row["jit"] = adjit_jit_total(f, args, grad)
            rows.append(row)
            ms = {k: 1e3 * v for k, v in t.items() if k not in ("eqns", "traced_eqns")}
            jx = f"{1e3 * row['jax']['total']:8.0f}" if jax is not None else f"{'-':>8}"
            print(f"{row['graph']:<12}{t['eqns']:>7}{ms['trace']:8.0f}{ms['autodiff']:7.0f}"
                  f"{ms['passes']:8.0f}{ms['lower']:8.0f}{ms['llvm']:8.0f}{ms['codegen']:8.0f}"
                  f"{ms['total']:8.0f}{jx}" + (f"  {1e3 * row['jit']:.0f}" if a.jit else ""),
                  flush=True)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
