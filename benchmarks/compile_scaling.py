"""Compile time against graph size: adjit's stages vs JAX's `jax.jit(f).lower(*args).compile()`.

    python benchmarks/compile_scaling.py [--families chain,mlp,lstm,bench]
                                         [--sizes FAMILY=S,M,... ...] [--no-jax] [--json OUT]
                                         [--profile FAMILY:SIZE] [--cpu]

Warm process, cold cache: one warm-up compile first (LLVM and JAX initialised), then every
measured graph is new (its own structure, so no memory cache can serve it) and adjit runs with a
fresh, empty ADJIT_CACHE_DIR and cleared in-memory caches. `gc.collect()` runs before each
measured compile, on both sides: the garbage one side's compile left (JAX's allocates ~10^5
objects) otherwise triggered a full collection inside the next measurement (chain-100's
`lower` 77-91 ms instead of 13-17, a 141 ms generation-2 collection, measured with gc.callbacks). JAX runs with x64 and its persistent
compilation cache off. Both sides compile the same computation in float64:

- `chain`: an elementwise chain of n steps (sin, mul, add, tanh, exp, ...) on f64[256]; forward only.
- `mlp`:   value_and_grad of a tanh MLP stack of n layers (64 wide, batch 32), squared loss.
- `lstm`:  value_and_grad of an n-step unrolled LSTM (hidden 32, input 16, batch 8), squared loss.
- `bench`: the `adjit bench` workloads (sizes are workload names, W1 ... W10; not in the default
  `--families`): the graphs the benchmark's adjit row compiles for its steady state (the
  `adjit.pytree` row where a workload has one, as the targets) against JAX's
  `lower(*args).compile()` of every `jax.jit` function the workload's `jax` row makes, called
  with the arguments that row passes. The steady-state graphs are the ones the background
  compiler is asked for while the row runs `HOT_CALLS + 2` calls (as `adjit bench` does before
  timing). adjit's `trace` column is the first call minus the second (interpreted) call of a
  second setup of the row with cleared caches (trace, autodiff and passes of every graph,
  the interpreter's first plan; the process's one-time costs of the workload were paid by
  the capture run, as JAX's side pays them outside its timing); `autodiff` is inside it (0);
  `passes` is the optimisation the compile worker runs on the graphs sent to it as traced
  (small ones: runtime/worker.py), and `lower`, `llvm` and `codegen` are summed over the
  optimised graphs, run in this process as for the other families; `eqns` is the optimised
  graphs' total.

`--sizes` is given per family: `--sizes mlp=32,128 --sizes lstm=50` (or `mlp=32,128;lstm=50`);
a family without sizes there uses its default list. A bare list (`--sizes 32,128`) is accepted
only with a single family.

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
import gc
import json
import os
import shutil
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
# sizes are the builders' parameter: chain equations, MLP layers, LSTM steps; bench: workloads
SIZES = {"chain": [100, 300, 1000, 3000, 10000], "mlp": [2, 8, 32, 128, 256, 1000],
         "lstm": [5, 15, 50, 150],
         "bench": ["W1", "W2", "W3", "W3g", "W4", "W5", "W6", "W7", "W8", "W9", "W10"]}
ALL_FAMILIES = ("chain", "mlp", "lstm", "bench")


def parse_sizes(specs, families):
    """{family: [sizes]} for `families` from the --sizes arguments `specs` (a list of strings
    `FAMILY=S,M,...`, several per string separated by `;`): a family not named gets SIZES'
    list. A bare `S,M,...` is accepted for a single family only. Sizes are ints, except the
    bench family's workload names. Raises ValueError naming the bad part."""
    out = {fam: list(SIZES[fam]) for fam in families}
    for spec in specs or ():
        for part in (p.strip() for p in spec.split(";")):
            if not part:
                continue
            if "=" in part:
                fam, _, vals = part.partition("=")
                fam = fam.strip()
                if fam not in families:
                    raise ValueError(f"--sizes {part!r}: family {fam!r} is not among --families "
                                     f"({','.join(families)})")
            elif len(families) == 1:
                fam, vals = families[0], part
            else:
                raise ValueError(f"--sizes {part!r}: name the family (FAMILY=S,M,...) when "
                                 f"several families run ({','.join(families)})")
            items = [v.strip() for v in vals.split(",") if v.strip()]
            if not items:
                raise ValueError(f"--sizes {part!r}: no sizes given")
            if fam == "bench":
                out[fam] = items
            else:
                try:
                    out[fam] = [int(v) for v in items]
                except ValueError:
                    raise ValueError(f"--sizes {part!r}: {fam} sizes are integers") from None
    return out


# ----------------------------------------------------------------------------- adjit
def _leaves(x):
    return sum(_leaves(y) for y in x) if isinstance(x, (tuple, list)) else 1


def adjit_compile(f, args, grad, profile=None):
    import adjit
    from adjit.ir.autodiff import vjp_graph
    from adjit.ir.passes import optimize
    from adjit.runtime import cache_clear
    cache_clear()
    gc.collect()  # the garbage of what ran before (JAX's compile) is not this compile's cost
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
    t.update(adjit_stages(opt))
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


def adjit_stages(g):
    """{lower, llvm, codegen} seconds of an optimised graph, compiled in this process."""
    from adjit.codegen.lower import lower
    from adjit.runtime import engine
    t = {}
    t0 = clock()
    text, _ = lower(g)
    t["lower"] = clock() - t0
    t0 = clock()
    mod = engine.optimize(text, "scaling")
    t["llvm"] = clock() - t0
    t0 = clock()
    engine.emit_object(mod, "scaling")
    t["codegen"] = clock() - t0
    return t


def _bench_workload(name):
    from adjit.bench import discover
    found = discover()
    if name not in found:
        raise SystemExit(f"bench: no workload {name!r} (have {', '.join(found)})")
    return found[name]


def bench_graphs(name):
    """(front seconds, [optimised graphs]) of workload `name`'s adjit row: the graphs it asks
    the background compiler for within HOT_CALLS + 2 calls (its steady state); then, with
    cleared caches and a fresh setup, its first call's time minus its second (interpreted)
    call's. The capture run first pays the process's one-time costs of running the workload
    at all (its arrays' first page faults, BLAS threads), as JAX's side has them outside its
    timing (W3g's first call took 48 ms more without)."""
    from adjit.runtime import HOT_CALLS, background, cache_clear, wait_for_compiles
    w = _bench_workload(name)
    row = "adjit.pytree" if w.impls.get("adjit.pytree") else "adjit"
    graphs = {}
    real = background.Compiler.submit

    def submit(self, skey, graph, **kw):
        # small graphs are sent as traced (optimize=True): the worker runs the passes on them
        # first, and so does bench_compile (timed in its `passes` column)
        graphs.setdefault(skey, (graph, bool(kw.get("optimize"))))
        return real(self, skey, graph, **kw)
    old = {k: os.environ.get(k) for k in ("ADJIT_TIER", "ADJIT_CACHE_DIR")}
    os.environ["ADJIT_TIER"] = "auto"  # the benchmark's tiers: interpreted, then compiled
    dirs = []

    def fresh_cache():
        # an empty disk cache: no hot mark of an earlier run links code without a compile
        dirs.append(tempfile.mkdtemp(prefix="adjit-scaling-bench-"))
        os.environ["ADJIT_CACHE_DIR"] = dirs[-1]
        cache_clear()
    try:
        fresh_cache()
        background.Compiler.submit = submit
        run = w.impls[row](w.inputs(0))
        for _ in range(HOT_CALLS + 2):
            run()
        wait_for_compiles(300)
        background.Compiler.submit = real
        fresh_cache()
        run = w.impls[row](w.inputs(0))
        gc.collect()
        t0 = clock()
        run()
        first = clock() - t0
        t0 = clock()
        run()  # interpreted still (not hot)
        second = clock() - t0
        for _ in range(HOT_CALLS):  # (its compiles are not waited for)
            run()
    finally:
        background.Compiler.submit = real
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return max(0.0, first - second), list(graphs.values())  # [(graph, sent as traced)]


def bench_compile(name):
    from adjit.ir.passes import optimize
    front, graphs = bench_graphs(name)
    t = {"trace": front, "autodiff": 0.0, "passes": 0.0, "lower": 0.0, "llvm": 0.0,
         "codegen": 0.0}
    gc.collect()
    compiled = []
    for g, traced in graphs:
        if traced:  # what the worker does with a graph sent as traced
            t0 = clock()
            g = optimize(g)
            t["passes"] += clock() - t0
        compiled.append(g)
        for k, v in adjit_stages(g).items():
            t[k] += v
    graphs = compiled
    t["total"] = sum(t[k] for k in ("trace", "autodiff", "passes", "lower", "llvm", "codegen"))
    t["eqns"] = sum(len(g.eqns) for g in graphs)
    t["traced_eqns"] = t["eqns"]
    t["graphs"] = len(graphs)
    return t


def bench_jax_compile(name):
    """JAX's lower + compile of every function workload `name`'s jax row passes to jax.jit,
    each at its first call's arguments."""
    import jax
    w = _bench_workload(name)
    setup = w.impls.get("jax")
    if setup is None:
        return None
    t = {"lower": 0.0, "compile": 0.0, "functions": 0}
    real = jax.jit

    def recording_jit(fun=None, **kw):
        if fun is None:
            return lambda f: recording_jit(f, **kw)
        jitted = real(fun, **kw)
        seen = []

        def call(*args, **kwargs):
            if not seen:
                seen.append(1)
                gc.collect()
                t0 = clock()
                lowered = jitted.lower(*args, **kwargs)
                t1 = clock()
                lowered.compile()
                t2 = clock()
                t["lower"] += t1 - t0
                t["compile"] += t2 - t1
                t["functions"] += 1
            return jitted(*args, **kwargs)
        return call
    jax.jit = recording_jit
    try:
        run = setup(w.inputs(0))
        run()
    finally:
        jax.jit = real
    t["total"] = t["lower"] + t["compile"]
    return t


# ----------------------------------------------------------------------------- jax
def jax_compile(builder, n):
    import jax
    import jax.numpy as jnp
    f, args, grad = builder(n, jnp)
    fn = jax.value_and_grad(f) if grad else f
    gc.collect()
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


def _print_row(row, t, with_jax, with_jit):
    ms = {k: 1e3 * v for k, v in t.items() if k not in ("eqns", "traced_eqns", "graphs")}
    jx = f"{1e3 * row['jax']['total']:8.0f}" if with_jax else f"{'-':>8}"
    print(f"{row['graph']:<12}{t['eqns']:>7}{ms['trace']:8.0f}{ms['autodiff']:7.0f}"
          f"{ms['passes']:8.0f}{ms['lower']:8.0f}{ms['llvm']:8.0f}{ms['codegen']:8.0f}"
          f"{ms['total']:8.0f}{jx}" + (f"  {1e3 * row['jit']:.0f}" if with_jit else ""),
          flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--families", default="chain,mlp,lstm",
                    help=f"comma-separated, of {','.join(ALL_FAMILIES)}")
    ap.add_argument("--sizes", action="append", default=None,
                    help="FAMILY=S,M,... (repeatable, or ';'-separated): that family's sizes")
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--profile", default=None, help="FAMILY:SIZE: cProfile adjit's compile")
    ap.add_argument("--jit", action="store_true", help="also time adjit.jit end to end")
    ap.add_argument("--cpu", action="store_true", help="CPU time instead of wall time")
    a = ap.parse_args(argv)
    global clock
    if a.cpu:
        clock = time.process_time
    families = [f.strip() for f in a.families.split(",") if f.strip()]
    for fam in families:
        if fam not in ALL_FAMILIES:
            ap.error(f"--families: unknown family {fam!r} (have {','.join(ALL_FAMILIES)})")
    try:
        sizes = parse_sizes(a.sizes, families)
    except ValueError as exc:
        ap.error(str(exc))
    os.environ.setdefault("ADJIT_TIER", "native")  # after the usage checks (a test calls main)
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
    for name in families:
        b = FAMILIES.get(name)
        for n in sizes[name]:
            if name == "bench":
                t = bench_compile(n)
                row = {"graph": n, **t}
                if jax is not None:
                    row["jax"] = bench_jax_compile(n)
                rows.append(row)
                _print_row(row, t, jax is not None and row["jax"] is not None, False)
                continue
            f, args, grad = b(n, np)
            t = adjit_compile(f, args, grad)
            row = {"graph": f"{name}-{n}", **t}
            if jax is not None:
                row["jax"] = jax_compile(b, n)
            if a.jit:
                f, args, grad = b(n, np)
                row["jit"] = adjit_jit_total(f, args, grad)
            rows.append(row)
            _print_row(row, t, jax is not None, a.jit)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
