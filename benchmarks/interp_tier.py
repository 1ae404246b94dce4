"""The interpreter tier against NumPy by hand: time and peak memory of a first call and of an
interpreted call (issue 18: <= 1.5x NumPy).

    python benchmarks/interp_tier.py [W2 W3 W4 W5] [--n4 10000000] [--calls 5] [--repeat 3]

Each (workload, implementation) runs in a fresh process with ADJIT_TIER=interp, so every
adjit call after the first is interpreted:
- `first`: the first call (adjit.jit: the trace, which evaluates while recording);
- `early`: the median of the next `--calls` calls (a plan's first calls run its loop);
- `interp`: the median of `--calls` calls after a warm-up (calls until 0.3 s or 200 calls have
  run: a plan generates its straight-line function once its loop has run about as long as
  generating takes), the steady interpreted call;
- `numpy`: the median of NumPy by hand (the workload's reference), measured the same way;
- `np first`: NumPy by hand's own first call in its fresh process (at 10M elements both first
  calls are dominated by the kernel's page faults for fresh memory, which vary several-fold
  between runs on a shared machine: `1st/np 1st` compares like with like);
- `extra MB: first`: the high-water mark of the RSS during the first call above the RSS right
  before it; `interp` / `numpy`: the high-water mark during the steady calls above the RSS
  before them (Linux: the mark is reset through /proc/self/clear_refs before each; that reset
  also resets what `/usr/bin/time -v` reports as the process's maximum RSS, so that figure is
  the steady calls' high-water mark, and it is not used); the last `np first` column is NumPy
  by hand's first-call high-water mark;
- `1st user/np`, `1st sys ms`, `1st faults`: the first calls' user and system CPU time and minor
  page faults (getrusage of the process, adjit's then NumPy's): with the same faults, the system
  time of a first touch varies 10-20x on this VM (docs/speed.md, "W4 at 10M: the first call's
  system time"), the user time does not.
`--n4` sets W4's element count (its default is 1,000,000). `--repeat K` runs K pairs of fresh
processes, adjit's first in odd pairs and NumPy's first in even ones (a process that starts
right after another freed its memory touches recycled pages, which on a virtual machine can be
several times cheaper than the first touch of fresh ones), and prints the medians.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def _status_mb(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _rss_mb():
    return _status_mb("VmRSS")


def _hwm_reset():
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # Linux: the peak RSS (VmHWM) starts again from the current RSS


def child(name, impl, calls, n4):
    from adjit.bench import workloads
    import importlib
    import pkgutil
    mods = {m.name.split("_")[0].upper(): m.name for m in pkgutil.iter_modules(workloads.__path__)
            if m.name[0] == "w"}
    mod = importlib.import_module(f"adjit.bench.workloads.{mods[name]}")
    if name == "W4" and n4:
        mod.N = n4
    w = mod.workload()
    run = w.impls[impl](w.inputs(0))
    _hwm_reset()
    base = _rss_mb()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    run()
    first = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    first_extra = _status_mb("VmHWM") - base

    def timed(n):
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            run()
            ts.append(time.perf_counter() - t0)
        return ts
    early = statistics.median(timed(calls))
    t_end, k = time.perf_counter() + 0.3, 0
    while time.perf_counter() < t_end and k < 200:
        run()
        k += 1
    base2 = _rss_mb()
    _hwm_reset()
    steady = statistics.median(timed(calls))
    print(json.dumps({"first": first, "first_user": r1.ru_utime - r0.ru_utime,
                      "first_sys": r1.ru_stime - r0.ru_stime,
                      "first_faults": r1.ru_minflt - r0.ru_minflt,
                      "early": early, "next": steady, "base": base,
                      "first_extra": first_extra, "next_extra": _status_mb("VmHWM") - base2}))


def measure(name, impl, calls, n4):
    env = dict(os.environ, ADJIT_TIER="interp", OMP_NUM_THREADS="2",
               OPENBLAS_NUM_THREADS="2", MKL_NUM_THREADS="2")
    r = subprocess.run([sys.executable, __file__, "--child", name, impl,
                        str(calls), str(n4 or 0)], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", default=["W2", "W3", "W4", "W5"])
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--n4", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1,
                    help="pairs of fresh processes, in alternating order (medians)")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        name, impl, calls, n4 = a.child
        child(name, impl, int(calls), int(n4))
        return
    print(f"{'workload':10} {'adjit first':>12} {'early':>10} {'interp':>10} {'numpy':>10} "
          f"{'interp/np':>9} {'early/np':>8} {'first/np':>8} {'np first':>10} {'1st/np 1st':>10} "
          f"{'extra MB: first':>15} {'interp':>7} {'numpy':>7} {'np first':>8} "
          f"{'1st user/np':>11} {'1st sys ms':>11} {'np':>6} {'1st faults':>10} {'np':>6}")
    for name in a.names:
        ads, npys = [], []
        for k in range(a.repeat):
            for impl in (("adjit", "numpy") if k % 2 == 0 else ("numpy", "adjit")):
                (ads if impl == "adjit" else npys).append(measure(name, impl, a.calls, a.n4))
        ad = {key: statistics.median(r[key] for r in ads) for key in ads[0]}
        npy = {key: statistics.median(r[key] for r in npys) for key in npys[0]}
        label = name + (f"@{a.n4:.0e}" if name == "W4" and a.n4 else "")
        print(f"{label:10} {ad['first'] * 1e3:10.2f}ms {ad['early'] * 1e3:8.3f}ms "
              f"{ad['next'] * 1e3:8.3f}ms {npy['next'] * 1e3:8.3f}ms "
              f"{ad['next'] / npy['next']:8.2f}x {ad['early'] / npy['next']:7.2f}x "
              f"{ad['first'] / npy['next']:7.1f}x {npy['first'] * 1e3:8.2f}ms "
              f"{ad['first'] / npy['first']:9.2f}x {ad['first_extra']:15.1f} {ad['next_extra']:7.1f} "
              f"{npy['next_extra']:7.1f} {npy['first_extra']:8.1f} "
              f"{ad['first_user'] / npy['first_user']:10.2f}x {ad['first_sys'] * 1e3:11.0f} "
              f"{npy['first_sys'] * 1e3:6.0f} {ad['first_faults']:10.0f} "
              f"{npy['first_faults']:6.0f}",
              flush=True)


if __name__ == "__main__":
    main()
