"""What a first touch of fresh memory costs, and W4's first call under a controlled page state
(docs/speed.md, "W4 at 10M: the first call's system time"). Linux only.

    python benchmarks/first_touch.py delays [0 0.5 1 2 4]
    python benchmarks/first_touch.py pairs [recycled|reported|none] [--repeat 5] [--n4 10000000]

`delays`: one process frees 480 MB (six 80 MB arrays), waits d seconds, then writes six new
80 MB arrays (np.ones) and reports the wall time, system time and minor page faults of that
write, three times per delay. The faults are the same at every delay; on a virtual machine
whose balloon reports free pages to the host (virtio-balloon free page reporting: the guest
hands freed memory back after a delay), the system time is not.

`pairs`: adjit's first call (jit(grad), ADJIT_TIER=interp) and NumPy by hand's first call of W4,
each in a fresh process, pairs in alternating order, medians. Right before the measured call the
child sets the state of the pages it will get: `recycled` writes and frees 640 MB (the call's
faults get pages just freed, still backed by the host); `reported` does the same and then sleeps
4 s (they have been handed back: each first touch is the host's fault too); `none` leaves the
state as the previous processes left it (what interp_tier.py measures).
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MB80 = 10_000_000  # float64 elements of an 80 MB array


def _usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime, r.ru_stime, r.ru_minflt


def _since(u0):
    u1 = _usage()
    return {"ms": (u1[0] - u0[0]) * 1e3, "user": (u1[1] - u0[1]) * 1e3,
            "sys": (u1[2] - u0[2]) * 1e3, "faults": u1[3] - u0[3]}


def delays(ds):
    import numpy as np

    def touch():
        u0 = _usage()
        bufs = [np.ones(MB80) for _ in range(6)]
        r = _since(u0)
        del bufs
        return r
    touch()
    for d in ds:
        rs = []
        for _ in range(3):
            touch()  # frees 480 MB when it returns
            time.sleep(d)
            rs.append(touch())
        print(f"delay {d:4.1f} s: wall " + " ".join(f"{r['ms']:5.0f}" for r in rs) + " ms; sys "
              + " ".join(f"{r['sys']:5.0f}" for r in rs) + " ms; faults "
              + " ".join(str(r["faults"]) for r in rs), flush=True)


def child(impl, state, n4):
    import numpy as np
    from adjit.bench.workloads import w4_elementwise as mod
    mod.N = n4
    w = mod.workload()
    run = w.impls[impl](w.inputs(0))
    if state != "none":
        bufs = [np.ones(MB80) for _ in range(8)]
        del bufs
        if state == "reported":
            time.sleep(4)
    u0 = _usage()
    run()
    print(json.dumps(_since(u0)))


def pairs(state, repeat, n4):
    env = dict(os.environ, ADJIT_TIER="interp", OMP_NUM_THREADS="2",
               OPENBLAS_NUM_THREADS="2", MKL_NUM_THREADS="2")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    res = {"adjit": [], "numpy": []}
    for k in range(repeat):
        for impl in (("adjit", "numpy") if k % 2 == 0 else ("numpy", "adjit")):
            r = subprocess.run([sys.executable, __file__, "--child", impl, state, str(n4)],
                               capture_output=True, text=True, env=env)
            if r.returncode != 0:
                raise RuntimeError(r.stderr[-2000:])
            res[impl].append(json.loads(r.stdout.strip().splitlines()[-1]))
    for impl, rs in res.items():
        print(f"{state:9} {impl:6} " + " ".join(
            f"{key} {statistics.median(r[key] for r in rs):6.0f}" for key in rs[0])
            + " | ms: " + " ".join(f"{r['ms']:.0f}" for r in rs), flush=True)
    ratio = [a["ms"] / b["ms"] for a, b in zip(res["adjit"], res["numpy"])]
    print(f"{state:9} adjit/numpy by pair: " + " ".join(f"{x:.2f}" for x in ratio)
          + f"; median {statistics.median(ratio):.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["delays", "pairs"], nargs="?", default="pairs")
    ap.add_argument("args", nargs="*")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--n4", type=int, default=MB80)
    ap.add_argument("--child", nargs=3)
    a = ap.parse_args(argv)
    if a.child:
        child(a.child[0], a.child[1], int(a.child[2]))
    elif a.mode == "delays":
        delays([float(d) for d in a.args] or [0.0, 0.5, 1.0, 2.0, 4.0])
    else:
        for state in a.args or ["recycled", "reported", "none"]:
            pairs(state, a.repeat, a.n4)


if __name__ == "__main__":
    main()
