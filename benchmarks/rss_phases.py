"""Extra RSS of a workload's step in the user's process, phase by phase (docs/speed.md F9).

    python benchmarks/rss_phases.py [W3] [--tiers deterministic,interp,native] [--json OUT]

One fresh process per row (NumPy by hand, then adjit under each ADJIT_TIER given). Each process
imports adjit and the workload, makes the inputs and sets the implementation up, then records
its RSS (`base`, after a GC) and runs the phases below. A phase's figure is the process's peak
RSS during it (VmHWM, reset to the current RSS through /proc/self/clear_refs before the
phase) minus `base`, in MB: what the calls added above the start, the pages they touched and
kept included (RSS never goes down between phases: nothing is trimmed). `kept` is the RSS after
the last phase, a GC and malloc_trim(0), minus `base`.

Phases (adjit, ADJIT_TIER=deterministic: call 20 waits for the worker's code and links it):
    call 1       the trace (jit's first call)
    calls 2-19   interpreted (ADJIT_TIER=native: native from the first call)
    call 20      the switch to native code
    calls 21-40  native code

The row `numpy` runs NumPy by hand the same way. Linux only (/proc).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHASES = (("call 1", 1), ("calls 2-19", 18), ("call 20", 1), ("calls 21-40", 20))


def _status():
    d = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, v = line.split(":", 1)
            if k in ("VmRSS", "VmHWM"):
                d[k] = int(v.split()[0]) / 1024
    return d


def child(name, impl):
    import ctypes
    import gc
    from adjit.bench import discover
    w = discover()[name]
    run = w.impls[impl](w.inputs(0))
    gc.collect()
    base = _status()["VmRSS"]
    out = {}
    for phase, n in PHASES:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the high-water mark (VmHWM) starts again at the current RSS
        for _ in range(n):
            r = run()
            del r
        out[phase] = round(_status()["VmHWM"] - base, 2)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    out["kept"] = round(_status()["VmRSS"] - base, 2)
    return out


def measure(name, impl, tier=None, env=None):
    """The phases of one fresh process: {phase: MB}."""
    e = {**os.environ, **(env or {})}
    e["PYTHONPATH"] = ROOT + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    if tier is not None:
        e["ADJIT_TIER"] = tier
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", name, impl],
                       capture_output=True, text=True, env=e, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"{impl} ({tier}) failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workload", nargs="?", default="W3")
    ap.add_argument("--tiers", default="deterministic,interp,native")
    ap.add_argument("--json")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(*a.child)))
        return 0
    rows = {"numpy": measure(a.workload, "numpy")}
    for tier in [t for t in a.tiers.split(",") if t]:
        rows[f"adjit {tier}"] = measure(a.workload, "adjit", tier)
    cols = [p for p, _ in PHASES] + ["kept"]
    print(f"| {a.workload} extra RSS, MB | " + " | ".join(cols) + " |")
    print("| --- |" + " ---: |" * len(cols))
    for row, d in rows.items():
        print(f"| {row} | " + " | ".join(f"{d[c]:.2f}" for c in cols) + " |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
