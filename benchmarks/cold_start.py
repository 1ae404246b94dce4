"""First call in a fresh process, and peak memory: what `adjit bench` cannot measure in-process.

    python benchmarks/cold_start.py [W2 W3 ...] [--impls adjit,jax] [--repeat 3] [--cold-cache]
                                    [--calls 10] [--new-steps 5] [--evict-mb 64] [--json OUT]

For every workload and implementation it starts `--repeat` + 1 fresh Python processes (the first
one only warms the disk caches: adjit's ADJIT_CACHE_DIR, the OS page cache of every library;
torch.compile gets one persistent Inductor folder for the run, so its later processes see a
warm Inductor cache too). Each process imports the workload, makes the inputs, sets up the
implementation, calls it once (the *first call*), then `--calls` more times. It reports:

- `import`: `import adjit` (every implementation pays it: the workloads import adjit.bench);
- `setup`: the peer's own import and setup (torch, jax, ...);
- `first`: the first call (adjit: trace + compile or disk-cache load + run);
- `second`: the second call (an implementation that traces on the first call and compiles on
  the second, as adjit.jit does at the moment, pays its compilation here: `first + second` is
  the honest "time to the first compiled result");
- `next`: the median of the last `--calls` calls after those two (adjit: of the `--calls` calls
  after native code started; earlier stops' tables took the last ones, mostly interpreted);
- `slowest 20`: the slowest of the first 20 calls; `cpu 20`: the largest CPU time of the
  calling thread (time.thread_time) in one of them, which a busy machine inflates less than
  wall time and which excludes adjit's background threads;
- `after 20`: the slowest call after the 20th (until native code runs, and `--calls` more):
  a call that waited for a compile or a link would show here;
- `native at` (adjit): the first call that ran native code and no graph on the interpreter
  tier (ADJIT_TIER:
  `native` compiles before the first call returns, `auto` interprets until the graph is hot);
  the child keeps calling (up to 10 s) until native code runs;
- `compile`: adjit, compile time in this process (`runtime.compile_now`: the native tier, a
  disk-cache hit included); JAX, XLA's backend compile time (jax.monitoring), all of it in
  the first call;
- `worker` (adjit): time from submitting a graph to the compile worker to its code being
  linked (the worker's compile, its queue included), summed over graphs;
- `total`: the process's wall time, start to exit, measured by the parent;
- `peak`: the process's peak RSS (os.wait4's rusage, as /usr/bin/time -v reports it);
- `base`: RSS right before the first call; `extra1`: the peak during the first two calls above
  `base`; `extra`: the peak during the following calls above `base` (Linux: the high-water
  mark is reset through /proc/self/clear_refs before each phase).

- `new step` / `new 20` (`--new-steps K`): afterwards, in the same (now warm) process, K new
  steps: the workload's modules loaded again from their files as a package of their own (new
  function and code objects, as a notebook cell or a test that defines a new step), each set up
  and called 20 times: the median over the K steps of the first call / of the slowest of the
  20 (every implementation: HIPS autograd's too). The other columns are read before them,
  except `process` and `peak`, which cover the whole process. With `--evict-mb M`, the child
  writes an M-MB array right before each new step's first call (more than the CPU's last-level
  cache: what a notebook's other work between two cells does to it), so `new step` shows the
  first call of new code with cold CPU caches, the share of a fresh process's first call that
  is not process start-up.

`--cold-cache` gives every adjit process an empty ADJIT_CACHE_DIR (a cold disk cache).
Times are medians over the repeats; RSS in MB. Thread variables are set as `adjit bench` sets
them (2 threads).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------------------ the child

def _rss_mb():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return None


def _hwm_reset():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
        return True
    except OSError:
        return False


def _hwm_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class _Tiers:
    """What the child observes of adjit's tiers (wrappers installed in the child only): whether
    a call ran a graph on the interpreter, and the compile time: in this process (native tier:
    `compile_now`) or in the worker (submitted -> linked, wall time: the worker's queue
    included)."""

    def __init__(self):
        from adjit import runtime
        from adjit.runtime import background
        from adjit.runtime.call import CompiledGraph
        self.interpreted = False
        self.native = False  # native code has run (sticky: jit then calls it directly)
        self.compile = 0.0
        self.worker = 0.0
        self._t0 = {}
        run, now = runtime.Interpreted.run, runtime.compile_now

        def run_(it, g, *a, **k):
            r = run(it, g, *a, **k)
            if g.native is it:
                self.interpreted = True
            else:  # promoted during this call: it ran the native code
                self.native = True
            return r

        def compile_now(*a, **k):
            t0 = time.perf_counter()
            try:
                return now(*a, **k)
            finally:
                self.compile += time.perf_counter() - t0
        cg_call = CompiledGraph.__call__

        def cg_call_(cg, *a, **k):
            self.native = True
            return cg_call(cg, *a, **k)
        runtime.Interpreted.run = run_
        runtime.compile_now = compile_now
        CompiledGraph.__call__ = cg_call_
        # once native code runs, the per-call wrappers go (they would slow `next` down)
        self.unwrap_calls = lambda: (setattr(runtime.Interpreted, "run", run),
                                     setattr(CompiledGraph, "__call__", cg_call))
        submit, finish = background.Compiler.submit, background.Job.finish

        def submit_(c, skey, graph, *a, **k):
            job = submit(c, skey, graph, *a, **k)
            self._t0.setdefault(id(job), time.perf_counter())
            return job

        def finish_(job, *a, **k):
            t0 = self._t0.pop(id(job), None)
            if t0 is not None:
                self.worker += time.perf_counter() - t0
            return finish(job, *a, **k)
        background.Compiler.submit = submit_
        background.Job.finish = finish_


class _JaxCompiles:
    """XLA compile time reported by jax.monitoring (backend compile events)."""

    def __init__(self):
        import jax.monitoring as m
        self.seconds = 0.0

        def listen(event, duration, **kw):
            if "backend_compile" in event:
                self.seconds += duration
        m.register_event_duration_secs_listener(listen)


NATIVE_WAIT = 10.0  # seconds of calls the child waits at most for adjit's native code


def _fresh_workload(name, k):
    """Workload `name` from a new copy of the workloads package (its modules executed again
    from their files under the package name `_cold_start_fresh<k>`): new functions, new code."""
    import types
    from adjit import bench
    import adjit.bench.workloads as wl
    pkg_name = f"_cold_start_fresh{k}"
    pkg = types.ModuleType(pkg_name)
    pkg.__path__ = list(wl.__path__)
    pkg.__package__ = pkg_name
    sys.modules[pkg_name] = pkg
    return bench.discover(pkg_name)[name]


def child(name, impl, calls, new_steps=0, evict_mb=0):
    t0 = time.perf_counter()
    import adjit  # noqa: F401
    from adjit import bench
    t_import = time.perf_counter() - t0
    w = bench.discover()[name]
    setup = w.impls.get(impl)
    if setup is None:
        print(json.dumps({"status": "missing"}))
        return
    tiers = _Tiers() if impl.startswith("adjit") else None
    jaxc = _JaxCompiles() if impl.startswith("jax") else None
    inp = w.inputs(0)
    t0 = time.perf_counter()
    run = setup(inp)
    t_setup = time.perf_counter() - t0
    native_at = None
    count = 0

    cpus = []

    def call():
        nonlocal native_at, count
        count += 1
        if tiers is not None:
            tiers.interpreted = False
        c0 = time.thread_time()
        t0 = time.perf_counter()
        run()
        dt = time.perf_counter() - t0
        if count <= 20:
            cpus.append(time.thread_time() - c0)
        if tiers is not None and native_at is None and tiers.native and not tiers.interpreted:
            native_at = count
            tiers.unwrap_calls()
        return dt
    base = _rss_mb()
    can_reset = _hwm_reset()
    t_first = call()
    jax_first = jaxc.seconds if jaxc is not None else None
    t_second = call()
    hwm1 = _hwm_mb()
    _hwm_reset()
    times = []
    t_end = time.perf_counter() + NATIVE_WAIT
    # at least `calls` more calls; with adjit, on until native code runs (or NATIVE_WAIT) and
    # then `calls` more, so that `next` is native code's (the calls served until then were
    # the interpreter's)
    while len(times) < calls or (tiers is not None and (
            native_at is None and time.perf_counter() < t_end or
            native_at is not None and count - native_at < calls)):
        times.append(call())
    slowest20 = max([t_first, t_second] + times[:18])
    after20 = max(times[18:]) if len(times) > 18 else None
    hwm = _hwm_mb()
    out = {"status": "ok", "import": t_import, "setup": t_setup, "first": t_first,
           "second": t_second, "next": statistics.median(times[-calls:]) if times else None,
           "base": base, "slowest20": slowest20, "cpu20": max(cpus), "after20": after20,
           "native_at": native_at}
    if tiers is not None:
        out["compile"] = tiers.compile
        out["worker"] = tiers.worker
    if jaxc is not None:
        out["compile"] = jaxc.seconds
        out["compile_first"] = jax_first
    # (compile and worker times above are the workload's own: read before the new steps)
    firsts, slowest = [], []
    evict = None
    if new_steps and evict_mb:
        import numpy as np
        evict = np.zeros(evict_mb << 17)  # float64: evict_mb MB
    for k in range(new_steps):  # new steps in this warm process
        fw = _fresh_workload(name, k)
        frun = fw.impls[impl](fw.inputs(0))
        ts = []
        if evict is not None:
            evict += 1.0  # every cache line written: the caches hold this array now
        for _ in range(20):
            t0 = time.perf_counter()
            frun()
            ts.append(time.perf_counter() - t0)
        firsts.append(ts[0])
        slowest.append(max(ts))
    if firsts:
        out["new_first"] = statistics.median(firsts)
        out["new20"] = statistics.median(slowest)
    if can_reset and base is not None:
        out["extra1"] = max(0.0, hwm1 - base)
        out["extra"] = max(0.0, hwm - base)
    print(json.dumps(out))


# ------------------------------------------------------------------------------ the parent

def run_child(name, impl, calls, env, new_steps=0, evict_mb=0):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, impl, str(calls),
           str(new_steps), str(evict_mb)]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         cwd=ROOT, text=True)
    # wait4 returns this child's own rusage (ru_maxrss: its peak RSS, KiB on Linux)
    _, status, ru = os.wait4(p.pid, 0)
    total = time.perf_counter() - t0
    out, err = p.stdout.read(), p.stderr.read()
    p.returncode = os.waitstatus_to_exitcode(status)
    try:
        d = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        lines = err.strip().splitlines() or ["no output"]
        return {"status": "error", "message": lines[-1][:200]}
    d["total"] = total
    d["peak"] = ru.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)
    return d


def measure(name, impl, repeat, calls, cold_cache, inductor_dir, new_steps=0, evict_mb=0):
    from adjit import bench
    env = dict(os.environ, **bench.limit_threads())
    env["ADJIT_BENCH_INDUCTOR_CACHE"] = inductor_dir
    runs = []
    for k in range(repeat + 1):
        tmp = None
        if cold_cache:
            tmp = env["ADJIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="adjit-cold-")
        try:
            d = run_child(name, impl, calls, env, new_steps, evict_mb)
        finally:
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)
        if d["status"] != "ok":
            return d
        if k or cold_cache:  # the first process only warms the caches
            runs.append(d)
    keys = ("import", "setup", "first", "second", "next", "total", "peak", "base", "extra1",
            "extra", "slowest20", "cpu20", "after20", "native_at", "compile", "worker",
            "new_first", "new20")
    res = {"status": "ok", "workload": name, "impl": impl, "repeat": len(runs)}
    for key in keys:
        vals = [r[key] for r in runs if r.get(key) is not None]
        res[key] = statistics.median(vals) if vals else None
    return res


def _t(s):
    if s is None:
        return "-"
    return f"{s * 1e3:.1f} ms" if s >= 1e-3 else f"{s * 1e6:.0f} us"


def _mb(x):
    return "-" if x is None else f"{x:.0f} MB" if x >= 10 else f"{x:.1f} MB"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="workloads (default: all)")
    ap.add_argument("--impls", default="adjit,numpy,torch,torch.func,torch.compile,jax,autograd")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--cold-cache", action="store_true",
                    help="an empty ADJIT_CACHE_DIR for every process")
    ap.add_argument("--new-steps", type=int, default=0,
                    help="then K new steps (the workload's code loaded again) in the same process")
    ap.add_argument("--evict-mb", type=int, default=0,
                    help="write an array of this many MB before each new step's first call")
    ap.add_argument("--json")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    ns = ap.parse_args(argv)
    if ns.child:
        child(ns.child[0], ns.child[1], int(ns.child[2]), int(ns.child[3]), int(ns.child[4]))
        return 0
    from adjit import bench
    found = bench.discover()
    names = ns.names or list(found)
    impls = [i.strip() for i in ns.impls.split(",") if i.strip()]
    results = []
    inductor_dir = tempfile.mkdtemp(prefix="adjit-cold-inductor-")
    header = ("workload", "impl", "import", "setup", "first call", "second", "next", "slowest 20",
              "cpu 20", "after 20", "native at", "compile", "worker", "process", "peak RSS",
              "base", "extra 1st", "extra") + (("new step", "new 20") if ns.new_steps else ())
    rows = [header]
    try:
        for name in names:
            for impl in impls:
                if found[name].impls.get(impl) is None:
                    continue
                print(f"{name} {impl} ...", file=sys.stderr, flush=True)
                r = measure(name, impl, ns.repeat, ns.calls, ns.cold_cache, inductor_dir,
                            ns.new_steps, ns.evict_mb)
                r.setdefault("workload", name)
                r.setdefault("impl", impl)
                results.append(r)
                if r["status"] != "ok":
                    rows.append((name, impl, r["status"], r.get("message", "")[:60])
                                + ("",) * (len(header) - 4))
                    continue
                nat = r.get("native_at")
                rows.append((name, impl, _t(r["import"]), _t(r["setup"]), _t(r["first"]),
                             _t(r["second"]), _t(r["next"]), _t(r.get("slowest20")),
                             _t(r.get("cpu20")), _t(r.get("after20")),
                             "-" if nat is None else f"#{nat:.0f}", _t(r.get("compile")),
                             _t(r.get("worker")), _t(r["total"]), _mb(r["peak"]),
                             _mb(r["base"]), _mb(r["extra1"]), _mb(r["extra"]))
                            + ((_t(r.get("new_first")), _t(r.get("new20")))
                               if ns.new_steps else ()))
    finally:
        shutil.rmtree(inductor_dir, ignore_errors=True)
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    for k, r in enumerate(rows):
        print("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    if ns.json:
        with open(ns.json, "w") as f:
            json.dump({"cold_cache": ns.cold_cache, "repeat": ns.repeat, "calls": ns.calls,
                       "new_steps": ns.new_steps, "evict_mb": ns.evict_mb,
                       "results": results}, f, indent=1)
        print(f"wrote {ns.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
