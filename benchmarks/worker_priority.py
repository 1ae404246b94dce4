"""How much a compile in a background process slows the foreground, per nice level of the
compiler (docs/speed.md, "Compile worker priority"; issue 18 items 3 and 5).

    python benchmarks/worker_priority.py 0 5 10 19

Foreground: `jit(value_and_grad)` of W4's function on 1M elements (nests on 2 threads), median
call time alone, then while a process at the given nice level compiles chain-1000 over and
over (benchmarks/compile_scaling.py); prints both and the background's compile times.
"""
import os, sys, time, subprocess
import numpy as np
os.environ["ADJIT_TIER"] = "native"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import adjit  # noqa: E402
BG = (r'''
import os, sys, time
os.nice(int(sys.argv[1]))
sys.path.insert(0, {bench!r})
import numpy as np, compile_scaling as cs
f, a, g = cs.chain(1000, np)
cs.adjit_compile(f, a, g)
while True:
    t0 = time.perf_counter(); f, a, g = cs.chain(1000, np); cs.adjit_compile(f, a, g)
    print(time.perf_counter() - t0, flush=True)
''').replace('{bench!r}', repr(os.path.dirname(os.path.abspath(__file__))))
def fg(x):
    return np.sum(np.sin(x) * x + np.tanh(x) ** 2)
step = adjit.jit(adjit.value_and_grad(fg))
x = np.linspace(-1, 1, 1_000_000)
for _ in range(25): step(x)
def measure(sec=4.0):
    ts = []; end = time.perf_counter() + sec
    while time.perf_counter() < end:
        t0 = time.perf_counter(); step(x); ts.append(time.perf_counter() - t0)
    return np.median(ts)
for n in [int(v) for v in sys.argv[1:]]:
    base = measure()
    p = subprocess.Popen([sys.executable, "-c", BG, str(n)], stdout=subprocess.PIPE, text=True)
    time.sleep(2.0)
    busy = measure(6.0)
    p.kill(); out = p.stdout.read().split()
    print(f"nice {n:2d}: foreground {1e3*base:.2f} -> {1e3*busy:.2f} ms ({100*(busy/base-1):+.0f}%), "
          f"worker compiles of chain-1000: {len(out)} done, {', '.join(f'{float(v):.2f}' for v in out[:4])} s; load {os.getloadavg()[0]:.1f}", flush=True)
